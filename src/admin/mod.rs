//! The admin HTTP endpoint (`serve --admin ADDR`, SPEC section 7): health, readiness,
//! reload, approvals and login locks, behind a bearer token (`PGVIGIL_ADMIN_TOKEN`).
//!
//! One request per connection (`Connection: close`), bodies up to [`MAX_BODY`], a
//! deadline per request and a cap on concurrent connections: the endpoint is for
//! operators and the `approve` command, not for traffic. Every request is authenticated
//! before its body is read; the token is compared in constant time.

pub mod approvals;
pub mod client;
pub mod http;
pub mod routes;

use crate::audit::AuditSink;
use crate::control::{Control, Reloader};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// Deadline for reading one request (head and body).
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent admin connections at most; more wait in the accept backlog.
const MAX_CONNECTIONS: usize = 32;
/// Shortest token accepted: a guessable admin token is no control at all.
pub const MIN_TOKEN_LEN: usize = 16;

/// The bearer token, kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// Validate a token from the environment.
    pub fn new(token: String) -> Result<Self, String> {
        let token = token.trim().to_owned();
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "must be at least {MIN_TOKEN_LEN} characters (e.g. `openssl rand -hex 32`)"
            ));
        }
        if token.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err("must be printable ASCII without spaces".into());
        }
        Ok(Self(token))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// What the handlers work on.
pub struct AdminState {
    pub control: Arc<Control>,
    pub reloader: Arc<Reloader>,
    pub audit: AuditSink,
    /// Turns true when the proxy stops accepting clients.
    pub shutdown: watch::Receiver<bool>,
    token_digest: [u8; 32],
}

impl AdminState {
    pub fn new(
        control: Arc<Control>,
        reloader: Arc<Reloader>,
        audit: AuditSink,
        shutdown: watch::Receiver<bool>,
        token: &AdminToken,
    ) -> Self {
        Self {
            control,
            reloader,
            audit,
            shutdown,
            token_digest: Sha256::digest(token.0.as_bytes()).into(),
        }
    }

    /// Whether an `Authorization` header carries the token. Digests of equal length are
    /// compared without an early exit, so timing reveals neither content nor length.
    fn authorized(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(|h| {
            let (scheme, token) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        }) else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        digest
            .iter()
            .zip(self.token_digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Serve the admin API on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    let mut shutdown = state.shutdown.clone();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut requests = tokio::task::JoinSet::new();
    loop {
        while requests.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let state = Arc::clone(&state);
                    requests.spawn(async move {
                        handle(stream, peer, state).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    // Requests in flight get a moment to answer; the rest are cut so shutdown (and the
    // audit flush, which waits for every holder of an audit sink) is not held up.
    let drained = tokio::time::timeout(Duration::from_secs(2), async {
        while requests.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        requests.shutdown().await;
    }
}

async fn handle(mut stream: TcpStream, peer: SocketAddr, state: Arc<AdminState>) {
    let reply = match read_authorized(&mut stream, &state, peer).await {
        Ok(request) => routes::route(&state, request, peer).await,
        Err(reply) => reply,
    };
    let extra: &[(&str, &str)] = if reply.status == 401 {
        &[("WWW-Authenticate", "Bearer realm=\"pgvigil\"")]
    } else {
        &[]
    };
    if let Err(e) = http::write_json_response(&mut stream, reply.status, extra, &reply.body).await {
        tracing::debug!(%peer, error = %e, "admin response not delivered");
    }
}

/// Read the head, check the token, then read the body: unauthenticated peers never get
/// to make the server buffer a body.
async fn read_authorized(
    stream: &mut TcpStream,
    state: &AdminState,
    peer: SocketAddr,
) -> Result<http::Request, routes::Reply> {
    let read = async {
        let (mut request, rest) = http::read_request_head(stream).await?;
        if !state.authorized(http::header(&request.headers, "authorization")) {
            return Ok(Err(request));
        }
        http::read_request_body(stream, &mut request, rest, MAX_BODY).await?;
        Ok::<_, http::HttpError>(Ok(request))
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Err(_) => Err(routes::Reply::error(408, "request not received in time")),
        Ok(Err(http::HttpError::TooLarge(what))) => {
            Err(routes::Reply::error(413, &format!("{what} too large")))
        }
        Ok(Err(http::HttpError::LengthRequired)) => Err(routes::Reply::error(
            411,
            "a body needs Content-Length (chunked encoding is not supported)",
        )),
        Ok(Err(e)) => Err(routes::Reply::error(400, &e.to_string())),
        Ok(Ok(Err(request))) => {
            tracing::warn!(%peer, method = %request.method, path = %request.path, "admin request without a valid bearer token");
            Err(routes::Reply::error(
                401,
                "missing or wrong bearer token (Authorization: Bearer $PGVIGIL_ADMIN_TOKEN)",
            ))
        }
        Ok(Ok(Ok(request))) => Ok(request),
    }
}
