//! Spawning a pgvigil proxy in front of the shared cluster, for end-to-end tests.
//!
//! The proxy runs on its own thread with its own Tokio runtime, so both async tests
//! (tokio-postgres) and sync tests (psql, pgbench child processes) can use it, and so
//! shutting it down never blocks inside a test's runtime.

use pgvigil::config::{AuditFailureMode, Config, Flags};
use pgvigil::net::Proxy;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// How to start a test proxy.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    pub classification: Option<PathBuf>,
    pub on_audit_failure: Option<AuditFailureMode>,
    /// Use this audit path instead of a fresh one in a temporary directory.
    pub audit_log: Option<PathBuf>,
    /// Override `max_message_bytes` (the framing limit for one message).
    pub max_message_bytes: Option<usize>,
    /// Serve the admin API on 127.0.0.1:0 with this bearer token.
    pub admin_token: Option<String>,
    /// Keep approvals in this file (default: next to the audit log, in the temp dir).
    pub approvals_file: Option<PathBuf>,
    /// `alert_webhook` URL.
    pub alert_webhook: Option<String>,
    /// How often the classification files are polled for changes.
    pub policy_poll: Option<std::time::Duration>,
    /// Use this upstream instead of the shared cluster.
    pub upstream: Option<String>,
    /// Override `startup_timeout` (the deadline for startup and authentication).
    pub startup_timeout: Option<std::time::Duration>,
}

/// A running proxy; `shutdown` flushes the audit trail and returns its events.
pub struct TestProxy {
    pub addr: SocketAddr,
    /// The admin endpoint, when `ProxyOptions::admin_token` was given.
    pub admin_addr: Option<SocketAddr>,
    pub audit_path: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestProxy {
    pub fn start() -> Self {
        Self::start_with(ProxyOptions::default())
    }

    /// The example classification shipped with the project.
    pub fn start_with_example() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("classification/example.yaml");
        Self::start_with(ProxyOptions {
            classification: Some(path),
            ..ProxyOptions::default()
        })
    }

    pub fn start_with(opts: ProxyOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the audit log");
        let audit_path = opts
            .audit_log
            .clone()
            .unwrap_or_else(|| dir.path().join("audit.jsonl"));
        let mut config = Config::build(Flags {
            listen: Some("127.0.0.1:0".into()),
            upstream: Some(
                opts.upstream
                    .clone()
                    .unwrap_or_else(|| super::cluster().addr().to_string()),
            ),
            classification: opts.classification.clone(),
            audit_log: Some(audit_path.clone()),
            ..Flags::default()
        })
        .expect("test proxy configuration");
        if let Some(mode) = opts.on_audit_failure {
            config.audit.on_failure = mode;
        }
        if let Some(max) = opts.max_message_bytes {
            config.max_message_bytes = max;
        }
        if let Some(token) = &opts.admin_token {
            config.admin = Some(pgvigil::config::AdminConfig {
                listen: "127.0.0.1:0".into(),
                token: pgvigil::admin::AdminToken::new(token.clone()).expect("admin token"),
            });
        }
        if let Some(path) = &opts.approvals_file {
            config.approvals_file = path.clone();
        }
        if let Some(url) = &opts.alert_webhook {
            config.alert_webhook =
                Some(pgvigil::control::alerts::WebhookTarget::parse(url).expect("webhook URL"));
        }
        if let Some(timeout) = opts.startup_timeout {
            config.startup_timeout = timeout;
        }
        if let Some(poll) = opts.policy_poll {
            config.policy_poll = poll;
        }
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let proxy = match Proxy::start(config).await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = addr_tx.send(Ok((proxy.local_addr(), proxy.admin_addr())));
                let _ = stop_rx.await;
                proxy.shutdown().await;
            });
        });
        let (addr, admin_addr) = addr_rx.recv().expect("proxy thread").expect("proxy start");
        TestProxy {
            addr,
            admin_addr,
            audit_path,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A key=value connection string through the proxy.
    pub fn conn_str(&self, db: &str, user: &str, password: Option<&str>) -> String {
        super::connection_string(&self.host(), self.port(), db, user, password)
    }

    /// Connect through the proxy as the superuser.
    pub async fn connect(&self, db: &str) -> tokio_postgres::Client {
        super::connect(&self.conn_str(db, "postgres", None))
            .await
            .expect("connect through the proxy")
    }

    /// Events written so far (the writer may lag by a batch; prefer `shutdown`).
    pub fn events_now(&self) -> Vec<serde_json::Value> {
        read_events(&self.audit_path)
    }

    /// Stop the proxy (sessions end, the audit trail is flushed) and return every event.
    pub fn shutdown(mut self) -> Vec<serde_json::Value> {
        self.stop_thread();
        read_events(&self.audit_path)
    }

    fn stop_thread(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// Parse a JSON-lines audit file; every line must be valid JSON.
pub fn read_events(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// Statement events of one database, in order.
pub fn statements_in(events: &[serde_json::Value], db: &str) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "statement" && e["database"] == db)
        .cloned()
        .collect()
}
