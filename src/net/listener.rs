//! The listener: accepts clients, runs one task per connection, and shuts down in order
//! (stop accepting, end sessions, drain the audit trail).

use super::cancel::CancelRegistry;
use super::catalog::Catalogs;
use super::connection;
use crate::audit::{AuditSink, AuditWriter};
use crate::config::{AuditFailureMode, Config};
use crate::control::reload::{ReloadRefused, Reloaded};
use crate::control::{AlertSink, ApprovalStore, Control, ReloadTrigger, Reloader};
use crate::policy::Policy;
use crate::session::cache::AnalysisCache;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long sessions get to end on their own at shutdown before they are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What every connection shares.
pub struct Shared {
    pub config: Config,
    pub policy: Arc<Policy>,
    pub audit: AuditSink,
    pub catalogs: Catalogs,
    pub cancels: CancelRegistry,
    pub analyses: AnalysisCache,
    pub shutdown: watch::Receiver<bool>,
    pub control: Arc<Control>,
}

impl Shared {
    pub fn block_without_audit(&self) -> bool {
        self.config.audit.on_failure == AuditFailureMode::Block
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot open the audit log {path}: {source}")]
    Audit {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Policy(#[from] crate::policy::PolicyErrors),
    #[error("{0}")]
    Engine(#[from] crate::policy::engine::EngineError),
    #[error("{0}")]
    Approvals(#[from] crate::control::approvals::ApprovalsError),
    #[error("cannot listen for the admin endpoint on {addr}: {source}")]
    Admin {
        addr: String,
        source: std::io::Error,
    },
}

/// A running proxy.
pub struct Proxy {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
    writer: AuditWriter,
    /// Publishes a new engine on reload; sessions see it from their next statement.
    reloader: Arc<Reloader>,
    admin_addr: Option<SocketAddr>,
    /// The admin endpoint and the file watcher; they end with the shutdown signal.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    /// Load the policy, open the audit trail, bind, and start accepting.
    pub async fn start(config: Config) -> Result<Proxy, StartError> {
        let policy = match &config.classification {
            Some(path) => Policy::load(path)?,
            None => Policy::unclassified(),
        };
        // Before the audit writer starts: a bad approvals file stops startup cleanly.
        let approvals =
            ApprovalStore::open(&config.approvals_file, time::OffsetDateTime::now_utc())?;
        tracing::info!(
            path = %config.approvals_file.display(),
            in_force = approvals.list(time::OffsetDateTime::now_utc()).len(),
            "approvals loaded"
        );
        let (audit, writer) =
            AuditWriter::start(&config.audit).map_err(|source| StartError::Audit {
                path: config.audit.path.display().to_string(),
                source,
            })?;
        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen.clone(),
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let policy = Arc::new(policy);
        let engine = Arc::new(crate::policy::engine::Engine::new(Arc::clone(&policy))?);
        let (engine_tx, engine_rx) = watch::channel(engine);
        let control = Arc::new(Control {
            engine: engine_rx,
            approvals,
            guards: crate::control::Guards::new(&policy),
            alerts: AlertSink::with_webhook(audit.clone(), config.alert_webhook.clone()),
        });
        let reloader = Arc::new(Reloader::new(
            config.classification.clone(),
            engine_tx,
            Arc::clone(&control),
            audit.clone(),
        ));
        let mut background = Vec::new();
        let admin_addr = match &config.admin {
            Some(admin) => {
                let admin_err = |source| StartError::Admin {
                    addr: admin.listen.clone(),
                    source,
                };
                let admin_listener = TcpListener::bind(&admin.listen).await.map_err(admin_err)?;
                let addr = admin_listener.local_addr().map_err(admin_err)?;
                let state = Arc::new(crate::admin::AdminState::new(
                    Arc::clone(&control),
                    Arc::clone(&reloader),
                    audit.clone(),
                    shutdown_rx.clone(),
                    &admin.token,
                ));
                background.push(tokio::spawn(crate::admin::serve(admin_listener, state)));
                tracing::info!(admin = %addr, "admin endpoint listening");
                Some(addr)
            }
            None => None,
        };
        if config.classification.is_some() {
            background.push(tokio::spawn(
                Arc::clone(&reloader).watch_files(config.policy_poll, shutdown_rx.clone()),
            ));
        }
        let shared = Arc::new(Shared {
            catalogs: Catalogs::new(config.upstream.clone(), config.catalog.clone()),
            config,
            policy,
            audit,
            cancels: CancelRegistry::default(),
            analyses: AnalysisCache::new(10_000),
            shutdown: shutdown_rx,
            control,
        });
        let accept = tokio::spawn(accept_loop(listener, shared));
        Ok(Proxy {
            local_addr,
            shutdown,
            accept,
            writer,
            reloader,
            admin_addr,
            background,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the admin endpoint listens, when it is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Reload the policy now (SIGHUP). An invalid policy is refused (logged and audited)
    /// and the one in force stays.
    pub async fn reload(&self) -> Result<Reloaded, ReloadRefused> {
        self.reloader.reload(ReloadTrigger::Signal).await
    }

    /// Stop accepting, let sessions end (cut after a grace period), then flush and fsync
    /// the audit trail. Every event recorded before this returns is on disk.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Err(e) = self.accept.await {
            tracing::error!(error = %e, "accept loop ended abnormally");
        }
        for task in self.background {
            let _ = task.await;
        }
        // The reloader holds an audit sink: the writer ends only when every sink is gone.
        drop(self.reloader);
        let writer = self.writer;
        if tokio::task::spawn_blocking(move || writer.finish())
            .await
            .is_err()
        {
            tracing::error!("audit writer could not be joined");
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    sessions.spawn(connection::run(socket, peer, Arc::clone(&shared)));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = sessions.len(),
            "sessions still open after the grace period; closing them"
        );
        sessions.shutdown().await;
    }
}
