//! One client connection from accept to close: startup, authentication, relay, and the
//! connect / auth / disconnect audit events.

use super::handshake::{self, HandshakeError, Startup};
use super::listener::Shared;
use super::relay;
use crate::audit::{EventKind, Outcome, SessionInfo};
use crate::policy::engine::{LoginAlert, SQLSTATE_LOCKED};
use crate::protocol::build;
use crate::session::backend::Now;
use crate::session::gate;
use crate::session::resolve::NameContext;
use crate::session::{BackendSession, FrontendSession};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn now() -> Now {
    Now {
        mono: Instant::now(),
        wall: SystemTime::now(),
    }
}

/// Serve one client until either side closes.
pub async fn run(mut client: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let mut client_buf = BytesMut::with_capacity(8 * 1024);
    // One deadline for the whole startup and authentication phase, as PostgreSQL's
    // authentication_timeout: a client that sends nothing, or half a startup packet, or
    // never answers the password request, is not held forever.
    let deadline = tokio::time::Instant::now() + shared.config.startup_timeout;
    let startup = match tokio::time::timeout_at(
        deadline,
        handshake::read_startup(&mut client, &mut client_buf, &shared.cancels),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return refuse(&mut client, &e).await,
        // Like PostgreSQL for an incomplete startup packet: close without a word.
        Err(_) => {
            let _ = client.shutdown().await;
            return;
        }
    };
    let Startup::Session { params, raw } = startup else {
        return;
    };
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let user = param("user").unwrap_or_default();
    let info = Arc::new(SessionInfo {
        session_id: uuid::Uuid::new_v4().to_string(),
        database: param("database").unwrap_or_else(|| user.clone()),
        user: user.clone(),
        client_addr: peer.ip().to_string(),
        client_port: peer.port(),
        tls: false,
    });
    let mut backend = BackendSession::new(
        Arc::clone(&info),
        Arc::clone(&shared.policy),
        param("application_name"),
    );
    let ev = backend.event(EventKind::Connect, now());
    record(&shared, ev).await;

    if let Some(remaining) = locked_out(&shared, &user, &info.client_addr) {
        return refuse_locked(&mut client, &shared, &mut backend, remaining).await;
    }

    let connecting = tokio::time::timeout_at(deadline, TcpStream::connect(&shared.config.upstream));
    let mut server = match connecting.await {
        Ok(Ok(s)) => s,
        Err(_) => return startup_timed_out(&mut client, &shared, &mut backend).await,
        Ok(Err(e)) => {
            tracing::warn!(upstream = %shared.config.upstream, error = %e, "upstream unreachable");
            let msg = format!(
                "pgvigil: cannot reach the upstream server {}",
                shared.config.upstream
            );
            let _ = client
                .write_all(&build::error_response("FATAL", "08006", &msg))
                .await;
            let _ = client.shutdown().await;
            // The session ends here: close its connect event.
            let mut ev = backend.event(EventKind::Disconnect, now());
            ev.outcome = Some(Outcome::Error);
            ev.sqlstate = Some("08006".into());
            record(&shared, ev).await;
            return;
        }
    };
    let _ = server.set_nodelay(true);
    let mut server_buf = BytesMut::with_capacity(16 * 1024);
    if server.write_all(&raw).await.is_err() {
        return;
    }
    let auth = match tokio::time::timeout_at(
        deadline,
        handshake::relay_auth(&mut client, &mut client_buf, &mut server, &mut server_buf),
    )
    .await
    {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return refuse(&mut client, &e).await,
        Err(_) => {
            let _ = server.write_all(&build::terminate()).await;
            return startup_timed_out(&mut client, &shared, &mut backend).await;
        }
    };
    let kind = if auth.authenticated {
        EventKind::AuthOk
    } else {
        EventKind::AuthFailed
    };
    let mut ev = backend.event(kind, now());
    ev.sqlstate = auth.sqlstate.clone();
    record(&shared, ev).await;
    watch_login(&shared, &mut backend, &auth).await;
    for (name, value) in &auth.parameters {
        backend.on_startup_parameter(name, value);
    }
    if !auth.ready {
        return;
    }
    if let Some((pid, secret)) = &auth.backend_key {
        shared
            .cancels
            .register(*pid, secret.clone(), shared.config.upstream.clone());
    }

    let names = NameContext::from_startup(&user, &params).with_client_addr(&info.client_addr);
    let frontend = FrontendSession::new(
        names,
        Arc::clone(&shared.policy),
        shared.block_without_audit(),
    );
    let catalog = shared.catalogs.for_database(&info.database);
    let parts = relay::Parts {
        client,
        client_buf,
        server,
        server_buf,
        frontend,
        backend,
        catalog,
    };
    let (mut backend, ended) = relay::run(parts, &shared, auth.backend_key.clone()).await;

    if let Some((pid, secret)) = &auth.backend_key {
        shared.cancels.unregister(*pid, secret);
    }
    let mut ev = backend.event(EventKind::Disconnect, now());
    if let Some(reason) = ended.error {
        ev.outcome = Some(Outcome::Error);
        ev.sqlstate = Some(reason.sqlstate.to_owned());
    }
    record(&shared, ev).await;
}

/// The startup deadline passed after a complete startup packet: FATAL 08P01 to the client
/// and a `disconnect` event closing the session's `connect`.
async fn startup_timed_out(client: &mut TcpStream, shared: &Shared, backend: &mut BackendSession) {
    tracing::debug!("startup timeout: closing connection");
    let _ = client
        .write_all(&build::error_response(
            "FATAL",
            "08P01",
            "pgvigil: timeout during startup",
        ))
        .await;
    let _ = client.shutdown().await;
    let mut ev = backend.event(EventKind::Disconnect, now());
    ev.outcome = Some(Outcome::Error);
    ev.sqlstate = Some("08P01".into());
    record(shared, ev).await;
}

/// How long `user` at `addr` is still locked out at the proxy, if at all.
fn locked_out(shared: &Shared, user: &str, addr: &str) -> Option<std::time::Duration> {
    let logins = shared.control.guards.logins.lock().ok()?;
    logins.is_locked(user, addr, time::OffsetDateTime::now_utc())
}

/// Refuse a login while its user (and address) is locked: FATAL 28000 before anything
/// reaches the server, audited as `auth_failed` with a CRITICAL alert.
async fn refuse_locked(
    client: &mut TcpStream,
    shared: &Shared,
    backend: &mut BackendSession,
    remaining: std::time::Duration,
) {
    let secs = remaining.as_secs().max(1);
    let message = format!(
        "pgvigil: account locked at the proxy after repeated failed logins; \
         try again in {secs} s or ask an admin to clear the lock"
    );
    let mut ev = backend.event(EventKind::AuthFailed, now());
    ev.sqlstate = Some(SQLSTATE_LOCKED.to_owned());
    ev.outcome = Some(Outcome::Blocked);
    ev.message = Some(message.clone());
    record(shared, ev).await;
    let alert = backend.event(EventKind::Alert, now());
    shared
        .control
        .alerts
        .raise(
            alert,
            "failed_logins.lock",
            "CRITICAL",
            format!("login refused: account locked for another {secs} s"),
        )
        .await;
    let _ = client
        .write_all(&build::error_response("FATAL", SQLSTATE_LOCKED, &message))
        .await;
    let _ = client.shutdown().await;
}

/// Count the authentication outcome for failed-login detection and raise its alerts.
async fn watch_login(shared: &Shared, backend: &mut BackendSession, auth: &handshake::AuthResult) {
    let info = backend.info();
    let alerts = {
        let Ok(mut logins) = shared.control.guards.logins.lock() else {
            return;
        };
        if auth.authenticated {
            logins.record_success(&info.user, &info.client_addr);
            return;
        }
        // Only a refused authentication counts, not a startup error (a missing database).
        if auth
            .sqlstate
            .as_deref()
            .is_some_and(|s| !s.starts_with("28"))
        {
            return;
        }
        logins.record_failure(
            &info.user,
            &info.client_addr,
            time::OffsetDateTime::now_utc(),
        )
    };
    for alert in alerts {
        let severity = gate::severity_str(alert.severity());
        let (rule, message) = match &alert {
            LoginAlert::Warn {
                failures, limit, ..
            } => (
                "failed_logins.warn",
                format!(
                    "{failures} failed logins within {}s (warn at {})",
                    limit.window.as_secs(),
                    limit.count
                ),
            ),
            LoginAlert::Locked { until, .. } => (
                "failed_logins.lock",
                format!("logins locked at the proxy until {until}"),
            ),
            LoginAlert::Attack { failures, limit } => (
                "failed_logins.attack",
                format!(
                    "{failures} failed logins across all users within {}s",
                    limit.window.as_secs()
                ),
            ),
        };
        let ev = backend.event(EventKind::Alert, now());
        shared
            .control
            .alerts
            .raise(ev, rule, severity, message)
            .await;
    }
}

async fn record(shared: &Shared, ev: crate::audit::AuditEvent) {
    if shared.audit.record(ev).await.is_err() {
        tracing::error!("audit event dropped: the writer has shut down");
    }
}

/// End a connection that broke the startup rules, telling the client why with 08P01.
async fn refuse(client: &mut TcpStream, err: &HandshakeError) {
    match err {
        HandshakeError::Closed | HandshakeError::Io(_) => {}
        HandshakeError::Unsupported(_) => {
            let msg = format!("pgvigil: {err}");
            let _ = client
                .write_all(&build::error_response("FATAL", "0A000", &msg))
                .await;
        }
        HandshakeError::Protocol(_) | HandshakeError::Unexpected(_) => {
            tracing::debug!(error = %err, "closing connection");
            let msg = format!("pgvigil: {err}");
            let _ = client
                .write_all(&build::error_response("FATAL", "08P01", &msg))
                .await;
        }
    }
    let _ = client.shutdown().await;
}
