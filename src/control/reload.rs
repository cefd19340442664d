//! Policy hot reload (SPEC section 5): load and compile the classification again, build a
//! new engine, and only when both succeed publish it (sessions pick it up at their next
//! statement) and retune the login and rate guards. An invalid policy is refused with a
//! logged error and the old one stays in force. Every attempt is a `reload` audit event.
//!
//! Triggers: SIGHUP (`Proxy::reload`), `POST /reload`, and a change of the classification
//! files, noticed by polling their modification times (no inotify dependency).

use super::Control;
use crate::audit::{AuditEvent, AuditSink, EventKind, Outcome, SessionInfo};
use crate::policy::engine::Engine;
use crate::policy::Policy;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How often the classification files are checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// SQLSTATE recorded on a refused reload (config_file_error).
const SQLSTATE_RELOAD_FAILED: &str = "F0000";

/// What started a reload (recorded in the audit event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadTrigger {
    Signal,
    Admin,
    FileChange,
}

impl ReloadTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadTrigger::Signal => "sighup",
            ReloadTrigger::Admin => "admin",
            ReloadTrigger::FileChange => "file_change",
        }
    }
}

/// A successful reload.
#[derive(Debug, Clone)]
pub struct Reloaded {
    pub message: String,
}

/// A refused reload: every validation message, each naming file and key path.
#[derive(Debug, Clone)]
pub struct ReloadRefused {
    pub errors: Vec<String>,
}

pub struct Reloader {
    source: Option<PathBuf>,
    engine_tx: watch::Sender<Arc<Engine>>,
    control: Arc<Control>,
    audit: AuditSink,
    /// One reload at a time, so two triggers never publish out of order.
    running: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(
        source: Option<PathBuf>,
        engine_tx: watch::Sender<Arc<Engine>>,
        control: Arc<Control>,
        audit: AuditSink,
    ) -> Self {
        Self {
            source,
            engine_tx,
            control,
            audit,
            running: tokio::sync::Mutex::new(()),
        }
    }

    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Reload now. `Err` keeps the policy in force.
    pub async fn reload(&self, trigger: ReloadTrigger) -> Result<Reloaded, ReloadRefused> {
        let _running = self.running.lock().await;
        let Some(source) = self.source.clone() else {
            let refused = ReloadRefused {
                errors: vec!["no classification is configured (serve --classification PATH); nothing to reload".into()],
            };
            self.audit_outcome(trigger, Err(&refused)).await;
            return Err(refused);
        };
        let built = tokio::task::spawn_blocking(move || build(&source)).await;
        let result = match built {
            Ok(Ok(engine)) => {
                let policy = Arc::clone(engine.policy());
                self.retune_guards(&policy);
                self.engine_tx.send_replace(Arc::new(engine));
                let message = format!(
                    "policy reloaded from {} ({} tables, {} roles, {} rules)",
                    self.source()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    policy.tables().count(),
                    policy.roles().count(),
                    policy.rules().len()
                );
                tracing::info!(trigger = trigger.as_str(), "{message}");
                Ok(Reloaded { message })
            }
            Ok(Err(errors)) => {
                for e in &errors {
                    tracing::error!(trigger = trigger.as_str(), "policy reload refused: {e}");
                }
                tracing::error!("the previous policy stays in force");
                Err(ReloadRefused { errors })
            }
            Err(e) => Err(ReloadRefused {
                errors: vec![format!("the reload task failed: {e}")],
            }),
        };
        self.audit_outcome(trigger, result.as_ref()).await;
        result
    }

    fn retune_guards(&self, policy: &Policy) {
        let security = policy.security();
        match self.control.guards.logins.lock() {
            Ok(mut logins) => logins.update_settings(security.failed_logins.clone()),
            Err(p) => p
                .into_inner()
                .update_settings(security.failed_logins.clone()),
        }
        match self.control.guards.rate.lock() {
            Ok(mut rate) => rate.update_settings(security.rate_limit.clone()),
            Err(p) => p.into_inner().update_settings(security.rate_limit.clone()),
        }
    }

    async fn audit_outcome(
        &self,
        trigger: ReloadTrigger,
        result: Result<&Reloaded, &ReloadRefused>,
    ) {
        let mut event = control_event(EventKind::Reload, "pgvigil", "local", 0);
        let path = self.source().map(|p| p.display().to_string());
        match result {
            Ok(ok) => {
                event.outcome = Some(Outcome::Ok);
                event.message = Some(ok.message.clone());
                event.detail = Some(serde_json::json!({
                    "trigger": trigger.as_str(), "path": path, "outcome": "ok",
                }));
            }
            Err(refused) => {
                event.outcome = Some(Outcome::Error);
                event.sqlstate = Some(SQLSTATE_RELOAD_FAILED.into());
                event.message =
                    Some("policy reload refused; the previous policy stays in force".into());
                event.detail = Some(serde_json::json!({
                    "trigger": trigger.as_str(), "path": path, "outcome": "error",
                    "errors": refused.errors,
                }));
            }
        }
        if self.audit.record(event).await.is_err() {
            tracing::error!("reload not audited: the audit writer has shut down");
        }
    }

    /// Poll the classification files every `interval`; reload when their fingerprint
    /// changes. Ends when `shutdown` turns true.
    pub async fn watch_files(
        self: Arc<Self>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let Some(source) = self.source.clone() else {
            return;
        };
        let mut last = fingerprint(&source);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            let path = source.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&path)).await else {
                continue;
            };
            if now != last {
                last = now;
                tracing::info!(path = %source.display(), "classification changed on disk; reloading");
                let _ = self.reload(ReloadTrigger::FileChange).await;
            }
        }
    }
}

/// Load, compile and build an engine: everything that can fail, before anything changes.
fn build(source: &Path) -> Result<Engine, Vec<String>> {
    let policy =
        Policy::load(source).map_err(|e| e.0.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    Engine::new(Arc::new(policy)).map_err(|e| vec![e.to_string()])
}

/// Names, sizes and modification times of the policy file(s); the directory's own entry
/// catches files added or removed.
fn fingerprint(source: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let entry = |p: &Path| {
        let meta = std::fs::metadata(p).ok();
        (
            p.to_path_buf(),
            meta.as_ref().map_or(0, |m| m.len()),
            meta.and_then(|m| m.modified().ok()),
        )
    };
    let mut out = vec![entry(source)];
    if source.is_dir() {
        if let Ok(entries) = std::fs::read_dir(source) {
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            files.sort();
            out.extend(files.iter().map(|p| entry(p)));
        }
    }
    out
}

/// An audit event made by the proxy itself (admin API, reloads), outside any client
/// session: a fresh session id, `seq` 1.
pub fn control_event(
    kind: EventKind,
    user: &str,
    client_addr: &str,
    client_port: u16,
) -> AuditEvent {
    let info = Arc::new(SessionInfo {
        session_id: uuid::Uuid::new_v4().to_string(),
        user: user.to_owned(),
        database: String::new(),
        client_addr: client_addr.to_owned(),
        client_port,
        tls: false,
    });
    AuditEvent::new(kind, &info, 1, SystemTime::now())
}
