//! Admin API routes: dispatch on method and path, plus the small handlers (health,
//! readiness, reload, locks). Approvals live in [`super::approvals`].

use super::http::{percent_decode, Request};
use super::AdminState;
use crate::audit::{EventKind, Outcome};
use crate::control::reload::control_event;
use crate::control::ReloadTrigger;
use serde_json::{json, Value};
use std::net::SocketAddr;
use time::OffsetDateTime;

/// A JSON answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(status: u16, body: Value) -> Self {
        Self { status, body }
    }

    pub fn error(status: u16, message: &str) -> Self {
        Self {
            status,
            body: json!({ "error": message }),
        }
    }
}

pub async fn route(state: &AdminState, request: Request, peer: SocketAddr) -> Reply {
    let Some(path) = percent_decode(&request.path) else {
        return Reply::error(400, "bad percent-encoding in the path");
    };
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let method = request.method.as_str();
    match (method, segments.as_slice()) {
        ("GET", ["health"]) => Reply::ok(200, json!({ "status": "ok" })),
        ("GET", ["ready"]) => ready(state),
        ("POST", ["reload"]) => reload(state).await,
        ("GET", ["approvals"]) => super::approvals::list(state),
        ("POST", ["approvals"]) => super::approvals::grant(state, &request.body, peer).await,
        ("DELETE", ["approvals", id]) => super::approvals::revoke(state, id, peer).await,
        ("GET", ["locks"]) => locks(state),
        ("DELETE", ["locks", user]) => clear_lock(state, user, peer).await,
        (_, ["health" | "ready" | "reload" | "approvals" | "locks"])
        | (_, ["approvals" | "locks", _]) => Reply::error(405, "method not allowed here"),
        _ => Reply::error(
            404,
            "no such route (GET /health, GET /ready, POST /reload, GET|POST /approvals, \
             DELETE /approvals/ID, GET /locks, DELETE /locks/USER)",
        ),
    }
}

/// Ready while the proxy accepts clients and the audit trail can take events.
fn ready(state: &AdminState) -> Reply {
    if *state.shutdown.borrow() {
        return Reply::ok(503, json!({ "ready": false, "reason": "shutting down" }));
    }
    if !state.audit.can_record() {
        return Reply::ok(
            503,
            json!({ "ready": false, "reason": "the audit trail cannot record" }),
        );
    }
    Reply::ok(200, json!({ "ready": true }))
}

async fn reload(state: &AdminState) -> Reply {
    match state.reloader.reload(ReloadTrigger::Admin).await {
        Ok(done) => Reply::ok(200, json!({ "outcome": "ok", "message": done.message })),
        Err(refused) => Reply::ok(
            422,
            json!({
                "outcome": "error",
                "error": "policy reload refused; the previous policy stays in force",
                "errors": refused.errors,
            }),
        ),
    }
}

fn locks(state: &AdminState) -> Reply {
    let now = OffsetDateTime::now_utc();
    let locks = match state.control.guards.logins.lock() {
        Ok(logins) => logins.locks(now),
        Err(p) => p.into_inner().locks(now),
    };
    let locks: Vec<Value> = locks
        .into_iter()
        .map(|(user, client_addr, until)| {
            json!({
                "user": user,
                "client_addr": client_addr,
                "locked_until": crate::control::approvals::format_time(until),
            })
        })
        .collect();
    Reply::ok(200, json!({ "locks": locks }))
}

async fn clear_lock(state: &AdminState, user: &str, peer: SocketAddr) -> Reply {
    if user.is_empty() {
        return Reply::error(422, "name the user whose lock to clear");
    }
    let now = OffsetDateTime::now_utc();
    let cleared = {
        let mut logins = match state.control.guards.logins.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        let before = logins.locks(now).iter().filter(|l| l.0 == user).count();
        logins.clear(user);
        before
    };
    let mut event = control_event(
        EventKind::Approval,
        user,
        &peer.ip().to_string(),
        peer.port(),
    );
    event.outcome = Some(Outcome::Ok);
    event.message = Some(format!(
        "login lock of {user} cleared by an admin ({cleared} lock(s) in force)"
    ));
    event.detail = Some(json!({
        "action": "clear_lock", "user": user, "locks_cleared": cleared, "outcome": "cleared",
    }));
    if state.audit.record(event).await.is_err() {
        tracing::error!(
            user,
            "lock clear not audited: the audit writer has shut down"
        );
    }
    tracing::info!(
        user,
        cleared,
        "login lock cleared through the admin endpoint"
    );
    Reply::ok(200, json!({ "user": user, "locks_cleared": cleared }))
}
