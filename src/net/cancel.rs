//! Routing CancelRequests: the proxy hands clients the server's own backend key, records
//! which upstream each key belongs to, and forwards a cancel only for a key it handed out.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Default)]
pub struct CancelRegistry {
    keys: Mutex<HashMap<(i32, Bytes), String>>,
}

impl CancelRegistry {
    pub fn register(&self, pid: i32, secret: Bytes, upstream: String) {
        if let Ok(mut k) = self.keys.lock() {
            k.insert((pid, secret), upstream);
        }
    }

    pub fn unregister(&self, pid: i32, secret: &Bytes) {
        if let Ok(mut k) = self.keys.lock() {
            k.remove(&(pid, secret.clone()));
        }
    }

    /// Forward a client's CancelRequest if the key is one of ours; unknown keys are dropped
    /// silently, as Postgres itself does, so the request cannot probe for sessions.
    pub async fn forward(&self, pid: i32, secret: &Bytes, raw: &Bytes) {
        let target = self
            .keys
            .lock()
            .ok()
            .and_then(|k| k.get(&(pid, secret.clone())).cloned());
        match target {
            Some(upstream) => send_cancel(&upstream, raw).await,
            None => tracing::debug!(pid, "cancel request for an unknown backend key ignored"),
        }
    }
}

/// How long to wait for the server to confirm (by closing) that it processed a cancel.
const CANCEL_CONFIRM: Duration = Duration::from_secs(5);

/// Send a raw CancelRequest packet to the upstream and wait until the server closes the
/// connection, which it does once it has signalled the backend.
///
/// Waiting matters: libpq's `PQcancel` waits for that close so that the client's next
/// command cannot be hit by a cancel still in flight ("cancel zaps the wrong query"). The
/// caller closes the client's cancel connection only after this returns, so the client
/// keeps that guarantee through the proxy.
pub async fn send_cancel(upstream: &str, raw: &[u8]) {
    match TcpStream::connect(upstream).await {
        Ok(mut s) => {
            if let Err(e) = s.write_all(raw).await {
                tracing::warn!(error = %e, "sending cancel upstream failed");
                return;
            }
            let _ = s.shutdown().await;
            let mut sink = [0u8; 64];
            let confirmed = tokio::time::timeout(CANCEL_CONFIRM, async {
                while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            if confirmed.is_err() {
                tracing::warn!("the server did not close the cancel connection in time");
            }
        }
        Err(e) => tracing::warn!(error = %e, "connecting upstream to cancel failed"),
    }
}

/// Build a CancelRequest packet for a backend key.
pub fn cancel_packet(pid: i32, secret: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + secret.len());
    p.extend_from_slice(&((12 + secret.len()) as i32).to_be_bytes());
    p.extend_from_slice(&80_877_102i32.to_be_bytes());
    p.extend_from_slice(&pid.to_be_bytes());
    p.extend_from_slice(secret);
    p
}
