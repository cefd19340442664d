//! The listener: accepts clients, runs one task per connection, and shuts down in order
//! (stop accepting, end sessions, drain the audit trail).

use super::cancel::CancelRegistry;
use super::catalog::Catalogs;
use super::connection;
use crate::audit::{AuditSink, AuditWriter};
use crate::config::{AuditFailureMode, Config};
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
    pub control: Arc<crate::control::Control>,
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
}

/// A running proxy.
pub struct Proxy {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
    writer: AuditWriter,
    /// Publishes a new engine on reload; sessions see it from their next statement.
    #[allow(dead_code)]
    engine_tx: watch::Sender<Arc<crate::policy::engine::Engine>>,
}

impl Proxy {
    /// Load the policy, open the audit trail, bind, and start accepting.
    pub async fn start(config: Config) -> Result<Proxy, StartError> {
        let policy = match &config.classification {
            Some(path) => Policy::load(path)?,
            None => Policy::unclassified(),
        };
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
        let control = Arc::new(crate::control::Control {
            engine: engine_rx,
            approvals: crate::control::ApprovalStore::default(),
            guards: crate::control::Guards::new(&policy),
            alerts: crate::control::AlertSink::new(audit.clone()),
        });
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
            engine_tx,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting, let sessions end (cut after a grace period), then flush and fsync
    /// the audit trail. Every event recorded before this returns is on disk.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Err(e) = self.accept.await {
            tracing::error!(error = %e, "accept loop ended abnormally");
        }
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
