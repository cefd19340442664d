//! Runtime control state shared by every session: the live policy engine (replaced
//! atomically on reload), approvals, the login and rate guards, and the alert sink.
//! Sessions take a snapshot of the engine at each statement, so a reload applies from
//! their next statement. [`reload`] replaces the engine; `crate::admin` exposes approvals,
//! locks and reloads over HTTP.

pub mod alerts;
pub mod approvals;
pub mod guards;
pub mod reload;

use crate::policy::engine::Engine;
use std::sync::Arc;
use tokio::sync::watch;

pub use alerts::AlertSink;
pub use approvals::ApprovalStore;
pub use guards::Guards;
pub use reload::{ReloadTrigger, Reloader};

/// Everything policy-related a session consults.
pub struct Control {
    pub engine: watch::Receiver<Arc<Engine>>,
    pub approvals: ApprovalStore,
    pub guards: Guards,
    pub alerts: AlertSink,
}

impl Control {
    /// The engine in force right now.
    pub fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.engine.borrow())
    }
}
