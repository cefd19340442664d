//! Errors that may reach a client: each carries a SQLSTATE and a message safe to show.

use std::fmt;

/// Who caused a failure: decides logging level and whether the client sees details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    Client,
    Server,
    Proxy,
}

/// An error the proxy reports to a client as an ErrorResponse.
///
/// The message must never contain a literal or parameter value from the client's statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub sqlstate: &'static str,
    pub message: String,
    pub blame: Blame,
}

impl ClientError {
    /// 08P01: the peer broke the framing rules; the connection is closed afterwards.
    pub fn protocol_violation(message: impl Into<String>) -> Self {
        Self {
            sqlstate: "08P01",
            message: message.into(),
            blame: Blame::Client,
        }
    }

    /// 58030: the audit trail cannot record, and `on_audit_failure: block` is in force.
    pub fn audit_unavailable() -> Self {
        Self {
            sqlstate: "58030",
            message: "pgvigil: the audit trail cannot record right now, so the statement was not run \
                      (on_audit_failure: block); retry later or ask the operator to check the audit log path"
                .into(),
            blame: Blame::Proxy,
        }
    }

    /// 08006: the upstream server could not be reached or went away.
    pub fn upstream_unavailable(message: impl Into<String>) -> Self {
        Self {
            sqlstate: "08006",
            message: message.into(),
            blame: Blame::Server,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.sqlstate)
    }
}

impl std::error::Error for ClientError {}
