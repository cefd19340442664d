//! The responses the backend half expects, in the order the client's messages were sent.

use super::gate::Decided;
use super::resolve::PlannedStatement;
use crate::error::ClientError;
use std::sync::Arc;
use std::time::Instant;

/// One client message that the server will answer (or, after an error, skip).
#[derive(Debug)]
pub enum Pending {
    /// A simple Query: one result group per statement, then ReadyForQuery.
    Query {
        statements: Vec<Arc<PlannedStatement>>,
        /// The policy decision on each statement (same order; empty when none was made).
        decisions: Vec<Arc<Decided>>,
        started: Instant,
        refusal: Option<ClientError>,
    },
    /// `None` when the text holds no single analysable statement.
    Parse {
        name: Box<str>,
        statement: Option<Arc<PlannedStatement>>,
    },
    Bind {
        portal: Box<str>,
        statement: Box<str>,
        refusal: Option<ClientError>,
        /// The policy decision made at this Bind (P-02: Parse only registers).
        decided: Option<Arc<Decided>>,
    },
    Describe {
        portal: bool,
        name: Box<str>,
    },
    Execute {
        portal: Box<str>,
        started: Instant,
    },
    Close {
        portal: bool,
        name: Box<str>,
    },
    Sync,
    /// A fast-path FunctionCall: answered by FunctionCallResponse or ErrorResponse, then
    /// ReadyForQuery. Audited as a statement of kind `other` (its arguments never are).
    FunctionCall {
        oid: u32,
        started: Instant,
        refusal: Option<ClientError>,
    },
    /// CopyDone or CopyFail: marks where a COPY FROM STDIN's data ends, because the server
    /// ignores Syncs that arrive while it is in copy-in mode.
    CopyEnd,
    /// A Query the proxy sent on its own to leave the server's transaction failed (see
    /// `BackendSession::owe_failure`): its ErrorResponse and ReadyForQuery go nowhere.
    Injected,
}

impl Pending {
    /// Whether ReadyForQuery answers this entry.
    pub fn ends_at_ready(&self) -> bool {
        matches!(
            self,
            Pending::Query { .. }
                | Pending::Sync
                | Pending::FunctionCall { .. }
                | Pending::Injected
        )
    }
}
