//! Alerts: each one is an audit event (kind `alert`) and a `tracing` warning, and, when
//! `alert_webhook` is configured, a JSON POST delivered by a background task.
//!
//! Webhook delivery never blocks the statement path: `raise` only `try_send`s onto a
//! bounded queue. A full queue drops the webhook copy (logged); the audit event, which is
//! the record of the alert, is written regardless. Failed deliveries are retried with
//! exponential backoff ([`BACKOFF`]) and then given up with an error log.

use crate::audit::event::rfc3339;
use crate::audit::{AuditEvent, AuditSink, EventKind};
use std::time::Duration;
use tokio::sync::mpsc;

/// Alerts waiting for webhook delivery at most; more are dropped (the audit copy stays).
pub const WEBHOOK_QUEUE: usize = 1024;

/// Waits between attempts: 5 retries after the first attempt, then give up.
pub const BACKOFF: [Duration; 5] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

/// Deadline of one delivery attempt (connect, send, read the status).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where alerts are POSTed: `http://host:port/path` (plain HTTP; see the example config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// `host:port`
    pub addr: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl WebhookTarget {
    /// Parse `http://host[:port][/path]`; https is refused with a pointer to a relay.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("https://") {
            return Err(format!(
                "{url:?}: https is not supported yet; point alert_webhook at a local relay or collector over http"
            ));
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?} is not an http:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{url:?} needs a host (and no user info)"));
        }
        let addr = match authority.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                authority.to_owned()
            }
            Some(_) => return Err(format!("{url:?} has an invalid port")),
            None => format!("{authority}:80"),
        };
        if path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(format!(
                "{url:?} has spaces or control characters in its path"
            ));
        }
        Ok(Self {
            addr,
            path: path.to_owned(),
        })
    }
}

#[derive(Clone)]
pub struct AlertSink {
    audit: AuditSink,
    webhook: Option<mpsc::Sender<serde_json::Value>>,
}

impl AlertSink {
    /// Alerts go to the audit trail and the log only.
    pub fn new(audit: AuditSink) -> Self {
        Self {
            audit,
            webhook: None,
        }
    }

    /// Also deliver alerts to `target`; spawns the delivery task on the current runtime.
    pub fn with_webhook(audit: AuditSink, target: Option<WebhookTarget>) -> Self {
        let webhook = target.map(|target| {
            let (tx, rx) = mpsc::channel(WEBHOOK_QUEUE);
            tokio::spawn(deliver_all(target, rx, BACKOFF.to_vec()));
            tx
        });
        Self { audit, webhook }
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
        // Alerts are rare: give this one its id now, so the webhook copy and the audit
        // record can be matched (other events get theirs on the writer thread).
        event.event_id = uuid::Uuid::new_v4().to_string();
        event.rule = Some(rule.to_owned());
        event.severity = Some(severity);
        tracing::warn!(rule, severity, user = %event.session.user, %message, "pgvigil alert");
        event.message = Some(message);
        if let Some(tx) = &self.webhook {
            match tx.try_send(webhook_body(&event)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::error!(rule, "alert webhook queue full: webhook copy dropped (the audit event is still written)");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::error!(rule, "alert webhook task has stopped: webhook copy dropped");
                }
            }
        }
        if self.audit.record(event).await.is_err() {
            tracing::error!(rule, "alert not recorded: the audit writer has shut down");
        }
    }
}

/// The webhook payload: the alert's audit fields (ids and hashes are assigned later by
/// the writer, so they are left out), with its own timestamp.
fn webhook_body(event: &AuditEvent) -> serde_json::Value {
    let mut body = serde_json::to_value(event).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(map) = body.as_object_mut() {
        map.remove("query_hmac");
        map.insert("ts".into(), rfc3339(event.at).into());
        map.insert("source".into(), "pgvigil".into());
    }
    body
}

async fn deliver_all(
    target: WebhookTarget,
    mut rx: mpsc::Receiver<serde_json::Value>,
    backoff: Vec<Duration>,
) {
    while let Some(body) = rx.recv().await {
        deliver(&target, &body, &backoff).await;
    }
}

/// POST one alert, retrying transport errors, 5xx, 408 and 429 after each wait in
/// `backoff`. Other 4xx answers will not change on retry: given up at once.
pub async fn deliver(
    target: &WebhookTarget,
    body: &serde_json::Value,
    backoff: &[Duration],
) -> bool {
    let bytes = body.to_string();
    let rule = body["rule"].as_str().unwrap_or("?").to_owned();
    let mut waits = backoff.iter();
    let mut attempt = 1;
    loop {
        let result = crate::admin::client::call(
            &target.addr,
            "POST",
            &target.path,
            &[],
            Some(bytes.as_bytes()),
            ATTEMPT_TIMEOUT,
        )
        .await;
        let problem = match result {
            Ok(r) if (200..300).contains(&r.status) => return true,
            Ok(r) if r.status >= 500 || r.status == 408 || r.status == 429 => {
                format!("HTTP {}", r.status)
            }
            Ok(r) => {
                tracing::error!(
                    rule,
                    status = r.status,
                    "alert webhook refused the alert; not retried"
                );
                return false;
            }
            Err(e) => e.to_string(),
        };
        let Some(wait) = waits.next() else {
            tracing::error!(rule, attempts = attempt, error = %problem, "alert webhook delivery failed; giving up");
            return false;
        };
        tracing::warn!(rule, attempt, error = %problem, retry_in_ms = wait.as_millis() as u64, "alert webhook delivery failed; retrying");
        tokio::time::sleep(*wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls() {
        let t = WebhookTarget::parse("http://hooks.local:8080/alerts?x=1").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.path.as_str()),
            ("hooks.local:8080", "/alerts?x=1")
        );
        let t = WebhookTarget::parse("http://hooks.local").unwrap();
        assert_eq!((t.addr.as_str(), t.path.as_str()), ("hooks.local:80", "/"));
        assert!(WebhookTarget::parse("https://x/y")
            .unwrap_err()
            .contains("relay"));
        assert!(WebhookTarget::parse("ftp://x").is_err());
        assert!(WebhookTarget::parse("http://x:99999/").is_err());
        assert!(WebhookTarget::parse("http:///p").is_err());
    }
}
