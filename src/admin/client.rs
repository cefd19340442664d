//! The client side: one HTTP call with timeouts (used by webhook delivery), and the logic
//! of `pgvigil approve` against a running instance's admin endpoint.

use super::http::{self, HttpError, Response};
use std::time::Duration;
use tokio::net::TcpStream;

/// Default admin endpoint of `serve --admin` and of `approve --admin`.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:6433";

/// Largest response body read.
const MAX_RESPONSE_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr} did not answer within {secs}s")]
    Timeout { addr: String, secs: u64 },
    #[error("{addr}: {source}")]
    Http { addr: String, source: HttpError },
}

/// One request to `addr` (`host:port`) with a deadline for the whole exchange.
pub async fn call(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    deadline: Duration,
) -> Result<Response, CallError> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|source| CallError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        let http_err = |source: HttpError| CallError::Http {
            addr: addr.to_owned(),
            source,
        };
        http::write_request(&mut stream, method, addr, path, headers, body)
            .await
            .map_err(|e| http_err(e.into()))?;
        http::read_response(&mut stream, MAX_RESPONSE_BODY)
            .await
            .map_err(http_err)
    };
    tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| CallError::Timeout {
            addr: addr.to_owned(),
            secs: deadline.as_secs(),
        })?
}

/// `host:port` from `host:port` or `http://host:port[/]`.
pub fn admin_host_port(addr: &str) -> String {
    let addr = addr.strip_prefix("http://").unwrap_or(addr);
    addr.trim_end_matches('/').to_owned()
}

/// What `pgvigil approve` was asked to do.
#[derive(Debug, Clone)]
pub enum ApproveCommand {
    Grant {
        approver: String,
        user: String,
        class: Option<String>,
        table: Option<String>,
        duration: String,
        reason: String,
    },
    List,
    Revoke {
        id: String,
    },
}

/// How `approve` ended: text for stdout, or a refusal / failure for stderr.
#[derive(Debug)]
pub enum ApproveOutcome {
    Done(String),
    /// The server said no (4xx): exit 1 with its message.
    Refused(String),
    /// Could not reach the server or it failed (5xx): exit 1.
    Failed(String),
}

/// Run `approve` against `admin` with the bearer `token`.
pub async fn approve(admin: &str, token: &str, command: &ApproveCommand) -> ApproveOutcome {
    let addr = admin_host_port(admin);
    let auth = format!("Bearer {token}");
    let headers = [("Authorization", auth.as_str())];
    let (method, path, body) = match command {
        ApproveCommand::Grant {
            approver,
            user,
            class,
            table,
            duration,
            reason,
        } => {
            let mut body = serde_json::json!({
                "approver": approver, "user": user, "for": duration, "reason": reason,
            });
            if let Some(class) = class {
                body["class"] = class.clone().into();
            }
            if let Some(table) = table {
                body["table"] = table.clone().into();
            }
            ("POST", "/approvals".to_owned(), Some(body.to_string()))
        }
        ApproveCommand::List => ("GET", "/approvals".to_owned(), None),
        ApproveCommand::Revoke { id } => (
            "DELETE",
            format!("/approvals/{}", http::percent_encode(id)),
            None,
        ),
    };
    let response = match call(
        &addr,
        method,
        &path,
        &headers,
        body.as_deref().map(str::as_bytes),
        Duration::from_secs(15),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return ApproveOutcome::Failed(e.to_string()),
    };
    let json: serde_json::Value =
        serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null);
    if !(200..300).contains(&response.status) {
        let message = json["error"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&response.body).trim().to_owned());
        let text = format!(
            "{} {}: {message}",
            response.status,
            http::reason(response.status)
        );
        return if response.status < 500 {
            ApproveOutcome::Refused(text)
        } else {
            ApproveOutcome::Failed(text)
        };
    }
    ApproveOutcome::Done(describe(command, &json))
}

fn describe(command: &ApproveCommand, json: &serde_json::Value) -> String {
    match command {
        ApproveCommand::Grant { .. } => format!(
            "approval {} granted to {} for {} until {}",
            json["id"].as_str().unwrap_or("?"),
            json["user"].as_str().unwrap_or("?"),
            what(json),
            json["expires_at"].as_str().unwrap_or("?"),
        ),
        ApproveCommand::Revoke { id } => format!("approval {id} revoked"),
        ApproveCommand::List => {
            let list = json["approvals"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                return "no approvals in force".into();
            }
            list.iter()
                .map(|a| {
                    format!(
                        "{}  user={} {}  until={}  approver={}  reason={}",
                        a["id"].as_str().unwrap_or("?"),
                        a["user"].as_str().unwrap_or("?"),
                        what(a),
                        a["expires_at"].as_str().unwrap_or("?"),
                        a["approver"].as_str().unwrap_or("?"),
                        a["reason"].as_str().unwrap_or(""),
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

fn what(json: &serde_json::Value) -> String {
    match (json["class"].as_str(), json["table"].as_str()) {
        (Some(c), Some(t)) => format!("class {c} in {t}"),
        (Some(c), None) => format!("class {c}"),
        (None, Some(t)) => format!("table {t}"),
        (None, None) => "?".into(),
    }
}
