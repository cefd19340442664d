//! `GET|POST /approvals`, `DELETE /approvals/{id}`: grant, list and revoke time-bound
//! approvals. A grant needs an approver whose roles hold `approval:grant` in the policy
//! in force, who is not the user approved. Every grant, revocation and refusal is an
//! audit event of kind `approval`.

use super::routes::Reply;
use super::AdminState;
use crate::audit::{EventKind, Outcome};
use crate::control::approvals::{format_time, random_id, ApprovalRecord};
use crate::control::reload::control_event;
use crate::policy::{Action, Permission, Policy, Resource};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use time::OffsetDateTime;

/// Longest approval that can be granted.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);
/// Longest user / approver name (PostgreSQL's identifier limit).
const MAX_NAME: usize = 63;
const MAX_REASON: usize = 1000;

/// Body of `POST /approvals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    pub approver: String,
    pub user: String,
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default)]
    pub table: Option<String>,
    #[serde(rename = "for")]
    pub duration: String,
    pub reason: String,
}

/// Why a grant was refused: 403 (not allowed) or 422 (invalid request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal {
        status: 422,
        message: message.into(),
    }
}

fn forbidden(message: impl Into<String>) -> Refusal {
    Refusal {
        status: 403,
        message: message.into(),
    }
}

/// Check a grant against `policy` and build the record (pure: no I/O).
pub fn validate(
    policy: &Policy,
    request: &GrantRequest,
    now: OffsetDateTime,
) -> Result<ApprovalRecord, Refusal> {
    let approver = request.approver.trim();
    let user = request.user.trim();
    for (field, value) in [("approver", approver), ("user", user)] {
        if value.is_empty() {
            return Err(invalid(format!("{field} is empty")));
        }
        if value.len() > MAX_NAME || value.chars().any(char::is_control) {
            return Err(invalid(format!(
                "{field} must be a database user name (at most {MAX_NAME} bytes)"
            )));
        }
    }
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err(invalid("reason is empty: give a ticket or justification"));
    }
    if reason.chars().count() > MAX_REASON || reason.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(format!(
            "reason must be at most {MAX_REASON} characters without control characters"
        )));
    }
    let class = match request.class.as_deref() {
        Some(c) => Some(
            crate::policy::parse_class(&c.trim().to_uppercase())
                .map_err(|e| invalid(format!("class: {e}")))?,
        ),
        None => None,
    };
    let table = match request.table.as_deref() {
        Some(t) => {
            let (schema, table) = crate::policy::parse_table_key(t.trim())
                .map_err(|e| invalid(format!("table: {e}")))?;
            Some(format!("{schema}.{table}"))
        }
        None => None,
    };
    if class.is_some() == table.is_some() {
        return Err(invalid("give exactly one of class or table"));
    }
    let duration = crate::policy::parse_duration(&request.duration)
        .map_err(|e| invalid(format!("for: {e}")))?;
    if duration > MAX_DURATION {
        return Err(invalid(format!(
            "for: {:?} is longer than the maximum of 30d",
            request.duration
        )));
    }
    check_approver(policy, approver, user)?;
    let expires = now + duration;
    Ok(ApprovalRecord {
        id: random_id(),
        approver: approver.to_owned(),
        user: user.to_owned(),
        class,
        table,
        reason: reason.to_owned(),
        granted_at: format_time(now),
        expires_at: format_time(expires),
        expires_unix: expires.unix_timestamp(),
    })
}

fn check_approver(policy: &Policy, approver: &str, user: &str) -> Result<(), Refusal> {
    if approver == user {
        return Err(forbidden(format!(
            "{approver} cannot approve their own access: the approver must be someone else"
        )));
    }
    let grant = Permission {
        resource: Resource::Approval,
        action: Action::Grant,
    };
    let holds = policy
        .roles_of(approver)
        .iter()
        .any(|role| role.permissions.iter().any(|p| p.covers(&grant)));
    if !holds {
        let why = if policy.access_control_enabled() {
            "no role of theirs holds approval:grant"
        } else {
            "the policy has no roles, so no one holds approval:grant"
        };
        return Err(forbidden(format!(
            "{approver} may not grant approvals: {why}"
        )));
    }
    Ok(())
}

fn record_json(r: &ApprovalRecord) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
    if let Some(map) = v.as_object_mut() {
        map.remove("expires_unix");
    }
    v
}

pub fn list(state: &AdminState) -> Reply {
    let list: Vec<Value> = state
        .control
        .approvals
        .list(OffsetDateTime::now_utc())
        .iter()
        .map(record_json)
        .collect();
    Reply::ok(200, json!({ "approvals": list }))
}

pub async fn grant(state: &AdminState, body: &[u8], peer: SocketAddr) -> Reply {
    let request: GrantRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            let raw: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let message =
                format!("the body must be JSON {{approver, user, class|table, for, reason}}: {e}");
            audit_refusal(state, &raw, &invalid(message.clone()), peer).await;
            return Reply::error(if raw.is_null() { 400 } else { 422 }, &message);
        }
    };
    let engine = state.control.engine();
    let now = OffsetDateTime::now_utc();
    let record = match validate(engine.policy(), &request, now) {
        Ok(r) => r,
        Err(refusal) => {
            let raw = json!({
                "approver": request.approver, "user": request.user, "class": request.class,
                "table": request.table, "for": request.duration, "reason": request.reason,
            });
            audit_refusal(state, &raw, &refusal, peer).await;
            return Reply::error(refusal.status, &refusal.message);
        }
    };
    if !state.audit.can_record() {
        return Reply::error(503, "the audit trail cannot record: approval not granted");
    }
    let control = Arc::clone(&state.control);
    let stored = record.clone();
    let persisted = tokio::task::spawn_blocking(move || control.approvals.grant(stored, now)).await;
    match persisted {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "approval not granted");
            return Reply::error(500, &format!("approval not stored: {e}"));
        }
        Err(e) => return Reply::error(500, &format!("approval not stored: {e}")),
    }
    let roles = role_names(engine.policy(), &record.approver);
    let message = format!(
        "{} granted {} an approval until {}",
        record.approver, record.user, record.expires_at
    );
    if !audit(
        state,
        &record,
        "granted",
        Outcome::Ok,
        None,
        message,
        roles,
        peer,
    )
    .await
    {
        // An approval without its audit record must not stay in force.
        let _ = state.control.approvals.revoke(&record.id, now);
        return Reply::error(503, "the audit trail cannot record: approval not granted");
    }
    tracing::info!(id = %record.id, approver = %record.approver, user = %record.user, expires_at = %record.expires_at, "approval granted");
    Reply::ok(201, record_json(&record))
}

pub async fn revoke(state: &AdminState, id: &str, peer: SocketAddr) -> Reply {
    let control = Arc::clone(&state.control);
    let now = OffsetDateTime::now_utc();
    let key = id.to_owned();
    let revoked = tokio::task::spawn_blocking(move || control.approvals.revoke(&key, now)).await;
    let record = match revoked {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => return Reply::error(404, &format!("no approval {id:?} is in force")),
        Ok(Err(e)) => return Reply::error(500, &format!("approval not revoked: {e}")),
        Err(e) => return Reply::error(500, &format!("approval not revoked: {e}")),
    };
    let message = format!("approval {} of {} revoked", record.id, record.user);
    audit(
        state,
        &record,
        "revoked",
        Outcome::Ok,
        None,
        message,
        Vec::new(),
        peer,
    )
    .await;
    tracing::info!(id = %record.id, user = %record.user, "approval revoked");
    let mut body = record_json(&record);
    body["revoked"] = true.into();
    Reply::ok(200, body)
}

fn role_names(policy: &Policy, user: &str) -> Vec<String> {
    policy
        .roles_of(user)
        .iter()
        .map(|r| r.name.clone())
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn audit(
    state: &AdminState,
    record: &ApprovalRecord,
    outcome_word: &str,
    outcome: Outcome,
    sqlstate: Option<&str>,
    message: String,
    roles: Vec<String>,
    peer: SocketAddr,
) -> bool {
    let mut event = control_event(
        EventKind::Approval,
        &record.user,
        &peer.ip().to_string(),
        peer.port(),
    );
    event.actor = Some(record.approver.clone());
    event.roles = roles.into();
    event.outcome = Some(outcome);
    event.sqlstate = sqlstate.map(str::to_owned);
    event.message = Some(message);
    event.classes = record.class.map(|c| Arc::from(vec![c]));
    event.tables = record.table.clone().map(|t| Arc::from(vec![t]));
    event.detail = Some(json!({
        "id": record.id, "approver": record.approver, "user": record.user,
        "class": record.class, "table": record.table, "expires_at": record.expires_at,
        "reason": record.reason, "outcome": outcome_word,
    }));
    state.audit.record(event).await.is_ok()
}

async fn audit_refusal(state: &AdminState, raw: &Value, refusal: &Refusal, peer: SocketAddr) {
    let text = |k: &str| raw[k].as_str().unwrap_or_default().to_owned();
    let mut event = control_event(
        EventKind::Approval,
        &text("user"),
        &peer.ip().to_string(),
        peer.port(),
    );
    let approver = text("approver");
    if !approver.is_empty() {
        event.actor = Some(approver.clone());
    }
    event.outcome = Some(Outcome::Blocked);
    event.sqlstate = Some(
        if refusal.status == 403 {
            "42501"
        } else {
            "22023"
        }
        .into(),
    );
    event.message = Some(format!("approval refused: {}", refusal.message));
    event.detail = Some(json!({
        "approver": approver, "user": text("user"), "class": raw.get("class"),
        "table": raw.get("table"), "for": raw.get("for"), "reason": raw.get("reason"),
        "outcome": "refused", "status": refusal.status, "error": refusal.message,
    }));
    if state.audit.record(event).await.is_err() {
        tracing::error!("approval refusal not audited: the audit writer has shut down");
    }
    tracing::warn!(
        status = refusal.status,
        "approval refused: {}",
        refusal.message
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Class;

    fn policy() -> Policy {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(
            &path,
            "roles:\n  ADMIN: [\"approval:grant\"]\n  WILD: [\"*:*\"]\n  SUPPORT: [\"public:read\"]\n\
             principals:\n  alice: [ADMIN]\n  wanda: [WILD]\n  bob: [SUPPORT]\n",
        )
        .unwrap();
        Policy::load(&path).unwrap()
    }

    fn req(approver: &str, user: &str) -> GrantRequest {
        GrantRequest {
            approver: approver.into(),
            user: user.into(),
            class: Some("restricted".into()),
            table: None,
            duration: "2h".into(),
            reason: "TICKET-42".into(),
        }
    }

    #[test]
    fn grants_need_approval_grant_and_another_user() {
        let p = policy();
        let now = OffsetDateTime::now_utc();
        let r = validate(&p, &req("alice", "bob"), now).unwrap();
        assert_eq!(r.class, Some(Class::Restricted));
        assert_eq!(
            r.expires_unix,
            (now + time::Duration::hours(2)).unix_timestamp()
        );
        assert!(validate(&p, &req("wanda", "bob"), now).is_ok());
        assert_eq!(
            validate(&p, &req("alice", "alice"), now)
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(
            validate(&p, &req("bob", "alice"), now).unwrap_err().status,
            403
        );
        assert_eq!(
            validate(&p, &req("nobody", "bob"), now).unwrap_err().status,
            403
        );
    }

    #[test]
    fn bad_requests_are_422_with_the_field_named() {
        let p = policy();
        let now = OffsetDateTime::now_utc();
        let cases: Vec<(GrantRequest, &str)> = vec![
            (
                GrantRequest {
                    duration: "31d".into(),
                    ..req("alice", "bob")
                },
                "for",
            ),
            (
                GrantRequest {
                    duration: "soon".into(),
                    ..req("alice", "bob")
                },
                "for",
            ),
            (
                GrantRequest {
                    reason: "  ".into(),
                    ..req("alice", "bob")
                },
                "reason",
            ),
            (
                GrantRequest {
                    class: Some("SECRET".into()),
                    ..req("alice", "bob")
                },
                "class",
            ),
            (
                GrantRequest {
                    table: Some("public.t".into()),
                    ..req("alice", "bob")
                },
                "exactly one",
            ),
            (
                GrantRequest {
                    class: None,
                    ..req("alice", "bob")
                },
                "exactly one",
            ),
            (
                GrantRequest {
                    class: None,
                    table: Some("a.b.c".into()),
                    ..req("alice", "bob")
                },
                "table",
            ),
            (
                GrantRequest {
                    user: "".into(),
                    ..req("alice", "bob")
                },
                "user",
            ),
        ];
        for (r, word) in cases {
            let e = validate(&p, &r, now).unwrap_err();
            assert_eq!(e.status, 422, "{e:?}");
            assert!(e.message.contains(word), "{e:?}");
        }
        let t = GrantRequest {
            class: None,
            table: Some("public.customers".into()),
            ..req("alice", "bob")
        };
        assert_eq!(
            validate(&p, &t, now).unwrap().table.as_deref(),
            Some("public.customers")
        );
    }
}
