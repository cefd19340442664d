//! Alert webhook delivery to a tiny HTTP server in the test: the alert is an audit event
//! and a JSON POST; a 500 answer is retried with backoff; an unreachable webhook never
//! delays `raise`.

use pgvigil::audit::{AuditEvent, AuditWriter, EventKind, SessionInfo};
use pgvigil::config::{Config, Flags};
use pgvigil::control::alerts::{deliver, AlertSink, WebhookTarget};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A server answering each request with the next status of `statuses` (then 200), and
/// reporting each request body.
async fn hook_server(statuses: Vec<u16>) -> (String, mpsc::UnboundedReceiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut statuses = statuses.into_iter();
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = stream.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
                        break Some(body.to_owned());
                    }
                }
            };
            let status = statuses.next().unwrap_or(200);
            let _ = stream
                .write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await;
            if let Some(body) = body {
                let _ = tx.send(serde_json::from_str(&body).unwrap_or(Value::Null));
            }
        }
    });
    (format!("http://{addr}/hook"), rx)
}

fn event() -> AuditEvent {
    let info = Arc::new(SessionInfo {
        session_id: uuid::Uuid::new_v4().to_string(),
        user: "bob".into(),
        database: "shop".into(),
        client_addr: "127.0.0.1".into(),
        client_port: 5555,
        tls: false,
    });
    AuditEvent::new(EventKind::Statement, &info, 3, SystemTime::now())
}

#[tokio::test]
async fn a_500_is_retried_with_backoff_and_then_delivered() {
    let (url, mut rx) = hook_server(vec![500, 503]).await;
    let target = WebhookTarget::parse(&url).unwrap();
    let body = serde_json::json!({"rule": "r", "severity": "HIGH"});
    let started = Instant::now();
    let delivered = deliver(
        &target,
        &body,
        &[Duration::from_millis(50), Duration::from_millis(100)],
    )
    .await;
    assert!(delivered);
    assert!(started.elapsed() >= Duration::from_millis(150));
    for _ in 0..3 {
        assert_eq!(rx.recv().await.unwrap(), body);
    }
    // Out of retries: given up, reported as not delivered.
    let (url, _rx) = hook_server(vec![500, 500, 500]).await;
    let target = WebhookTarget::parse(&url).unwrap();
    assert!(
        !deliver(
            &target,
            &body,
            &[Duration::from_millis(10), Duration::from_millis(10)]
        )
        .await
    );
    // A 4xx other than 408/429 is not retried.
    let (url, mut rx) = hook_server(vec![400]).await;
    let target = WebhookTarget::parse(&url).unwrap();
    assert!(!deliver(&target, &body, &[Duration::from_millis(10)]).await);
    assert!(rx.recv().await.is_some());
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv())
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raise_writes_the_audit_event_and_posts_the_alert_after_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let (url, mut rx) = hook_server(vec![500]).await;
    let config = Config::build(Flags {
        upstream: Some("127.0.0.1:5432".into()),
        audit_log: Some(audit_path.clone()),
        ..Flags::default()
    })
    .unwrap();
    let (audit, writer) = AuditWriter::start(&config.audit).unwrap();
    let sink = AlertSink::with_webhook(audit, Some(WebhookTarget::parse(&url).unwrap()));
    sink.raise(
        event(),
        "restricted-any-access",
        "HIGH",
        "bob read RESTRICTED data".into(),
    )
    .await;
    // First attempt answered 500, the retry (after 0.5 s) gets the same alert.
    let mut webhook_id = String::new();
    for _ in 0..2 {
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("webhook POST")
            .unwrap();
        assert_eq!(got["kind"], "alert");
        assert_eq!(got["rule"], "restricted-any-access");
        assert_eq!(got["severity"], "HIGH");
        assert_eq!(got["user"], "bob");
        assert_eq!(got["message"], "bob read RESTRICTED data");
        assert!(got["ts"].as_str().unwrap().ends_with("+00:00"));
        webhook_id = got["event_id"].as_str().unwrap_or_default().to_owned();
    }
    drop(sink);
    tokio::task::spawn_blocking(move || writer.finish())
        .await
        .unwrap();
    let text = std::fs::read_to_string(&audit_path).unwrap();
    let alerts: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &Value| e["kind"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["rule"], "restricted-any-access");
    assert!(!webhook_id.is_empty());
    assert_eq!(
        alerts[0]["event_id"],
        webhook_id.as_str(),
        "webhook and audit copies match"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_webhook_never_delays_raise() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: every attempt fails and is retried in the background.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", free.local_addr().unwrap());
    drop(free);
    let config = Config::build(Flags {
        upstream: Some("127.0.0.1:5432".into()),
        audit_log: Some(dir.path().join("audit.jsonl")),
        ..Flags::default()
    })
    .unwrap();
    let (audit, writer) = AuditWriter::start(&config.audit).unwrap();
    let sink = AlertSink::with_webhook(audit, Some(WebhookTarget::parse(&url).unwrap()));
    let started = Instant::now();
    for i in 0..2000 {
        sink.raise(event(), "flood", "LOW", format!("alert {i}"))
            .await;
    }
    // 2000 alerts (more than the webhook queue holds) without waiting for any delivery.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(sink);
    tokio::task::spawn_blocking(move || writer.finish())
        .await
        .unwrap();
    let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("\"kind\":\"alert\""))
            .count(),
        2000
    );
}
