//! One audit record (contract: field names and value shapes of SPEC section 6).

use crate::policy::Class;
use crate::sql::StatementKind;
use serde::Serialize;
use std::sync::Arc;
use std::time::SystemTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Statement,
    Connect,
    Disconnect,
    AuthOk,
    AuthFailed,
    Alert,
    Approval,
    Reload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Error,
    Blocked,
}

/// A column a statement touched, with its class.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ColumnAccess {
    pub table: String,
    pub column: String,
    pub class: Class,
}

/// Facts fixed for the life of a connection, shared by all its events.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub session_id: String,
    pub user: String,
    pub database: String,
    pub client_addr: String,
    pub client_port: u16,
    pub tls: bool,
}

/// One line of the audit trail. `None` fields are left out of the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    /// Filled by the writer thread (see `writer::EventIds`), off the session's path.
    pub event_id: String,
    /// Filled by the writer from `at`, off the session's path.
    pub ts: String,
    /// When the event happened; serialized as `ts`.
    #[serde(skip)]
    pub at: SystemTime,
    pub kind: EventKind,
    #[serde(flatten)]
    pub session: Arc<SessionInfo>,
    pub seq: u64,
    /// Always present: a session that set none has Postgres' default, the empty string,
    /// and the schema requires the field so collectors need no special case.
    #[serde(serialize_with = "empty_if_none")]
    pub application_name: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub roles: Arc<[String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement_kind: Option<StatementKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables: Option<Arc<[String]>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Arc<[ColumnAccess]>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Arc<[Class]>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Normalized text (no literal values), capped by the writer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Keyed HMAC of the full statement text, computed by the writer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_hmac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Execute stopped at its row limit (PortalSuspended); more rows may follow.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub suspended: bool,
    /// Names of the policy rules that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions_required: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions_held: Option<Vec<String>>,
    /// Alert events: the rule (or guard) that raised it, and its severity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<&'static str>,
    /// Client-safe explanation (alerts, refusals, approvals, reloads): never a data value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Kind-specific details (approval fields, alert context).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    /// The raw statement text, only so the writer can HMAC it: never serialized.
    #[serde(skip)]
    pub hmac_source: Option<Arc<str>>,
}

impl AuditEvent {
    /// An event of `kind` for `session`, stamped now; the caller fills the rest.
    pub fn new(kind: EventKind, session: &Arc<SessionInfo>, seq: u64, now: SystemTime) -> Self {
        Self {
            event_id: String::new(),
            ts: String::new(),
            at: now,
            kind,
            session: Arc::clone(session),
            seq,
            application_name: None,
            actor: None,
            roles: Arc::from(Vec::new()),
            statement_kind: None,
            tables: None,
            columns: None,
            classes: None,
            fingerprint: None,
            query: None,
            query_hmac: None,
            rows: None,
            bytes: None,
            duration_ms: None,
            outcome: None,
            sqlstate: None,
            decision: None,
            request_id: None,
            traceparent: None,
            suspended: false,
            rules: None,
            permissions_required: None,
            permissions_held: None,
            rule: None,
            severity: None,
            message: None,
            detail: None,
            hmac_source: None,
        }
    }
}

fn empty_if_none<S: serde::Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_deref().unwrap_or(""))
}

/// RFC 3339 in UTC with an explicit `+00:00` offset and microseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00"
    );
    dt.format(&fmt)
        .unwrap_or_else(|_| dt.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_with_offset() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123456+00:00");
    }

    #[test]
    fn hmac_source_is_never_serialized() {
        let info = Arc::new(SessionInfo {
            session_id: "s".into(),
            user: "u".into(),
            database: "d".into(),
            client_addr: "127.0.0.1".into(),
            client_port: 1,
            tls: false,
        });
        let mut ev = AuditEvent::new(EventKind::Statement, &info, 1, SystemTime::now());
        ev.hmac_source = Some("SELECT 'secret-value'".into());
        let json = serde_json::to_string(&ev).unwrap();
        assert!(!json.contains("secret-value"), "{json}");
        assert!(json.contains("\"user\":\"u\""), "{json}");
    }
}
