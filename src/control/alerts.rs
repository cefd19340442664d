//! Alerts: each one is an audit event (kind `alert`) and a `tracing` warning. (Optional
//! webhook delivery builds on this, off the statement path.)

use crate::audit::{AuditEvent, AuditSink, EventKind};

#[derive(Clone)]
pub struct AlertSink {
    audit: AuditSink,
}

impl AlertSink {
    pub fn new(audit: AuditSink) -> Self {
        Self { audit }
    }

    /// Record an alert. `event` carries the session fields; this sets the kind and logs it.
    pub async fn raise(
        &self,
        mut event: AuditEvent,
        rule: &str,
        severity: &'static str,
        message: String,
    ) {
        event.kind = EventKind::Alert;
        event.rule = Some(rule.to_owned());
        event.severity = Some(severity);
        tracing::warn!(rule, severity, user = %event.session.user, %message, "pgvigil alert");
        event.message = Some(message);
        if self.audit.record(event).await.is_err() {
            tracing::error!(rule, "alert not recorded: the audit writer has shut down");
        }
    }
}
