//! The server-to-client half: matches each server message to the [`Pending`] entry it
//! answers, keeps the registry of prepared statements and portals as the server confirms
//! them, counts rows, and emits one audit event per executed statement.

mod attribution;

use super::catalog::CatalogView;
use super::gate::{severity_str, AlertNote, Decided};
use super::pending::Pending;
use super::resolve::{CursorUse, PlannedStatement, StatementShape};
use crate::audit::{AuditEvent, ColumnAccess, EventKind, Outcome, SessionInfo};
use crate::error::ClientError;
use crate::policy::engine::{RowBlock, RowEvent, RowLimits, SessionUsage};
use crate::policy::{Class, Policy};
use crate::protocol::backend::{self as msg, ColumnOrigin};
use crate::protocol::build;
use crate::protocol::{Frame, FrameError};
use attribution::{Attribution, AttributionKey};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

/// What to send the client for one server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Forward,
    /// The proxy's own ErrorResponse in place of the server's answer to a substitute.
    Replace(Bytes),
    /// Nothing: the client already has its answer (the rest of a result cut off by a row
    /// threshold, or the answer to a message the proxy sent on its own).
    Drop,
}

/// A prepared statement or portal as the server has confirmed it.
#[derive(Debug, Clone, Default)]
struct Prepared {
    plan: Option<Arc<PlannedStatement>>,
    /// Result columns from a Describe, reused by later Executes (which send no RowDescription).
    result: Option<Arc<[ColumnOrigin]>>,
    /// Portals: the policy decision made at their Bind.
    decided: Option<Arc<Decided>>,
    /// Portals: row thresholds and rows so far across Executes with a row limit.
    rows: PortalRows,
}

/// Row thresholds carried across the pieces of one result (Executes of a portal, FETCHes
/// of a cursor), so that the pieces add up (case S-02).
#[derive(Debug, Clone, Default)]
struct PortalRows {
    /// `None` until the first piece takes its thresholds from the decision.
    limits: Option<RowLimits>,
    rows: u64,
}

/// The statement currently producing results.
#[derive(Debug)]
struct Run {
    plan: Option<Arc<PlannedStatement>>,
    started: Instant,
    rows: u64,
    bytes: u64,
    result: Option<Arc<[ColumnOrigin]>>,
    copy_in: bool,
    decided: Option<Arc<Decided>>,
    /// Thresholds checked against `base + rows` (one compare per row while none is near).
    limits: RowLimits,
    /// Rows of the same portal or cursor before this piece.
    base: u64,
    /// The row threshold that cut this result off.
    cut: Option<RowBlock>,
    /// Where the thresholds go back when this piece ends.
    owner: RowsOwner,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RowsOwner {
    Statement,
    /// The portal of the Execute at the head of the queue.
    Portal,
    Cursor(Box<str>),
}

impl Run {
    fn new(
        plan: Option<Arc<PlannedStatement>>,
        decided: Option<Arc<Decided>>,
        started: Instant,
    ) -> Self {
        let limits = decided
            .as_ref()
            .map(|d| d.verdict.row_limits.clone())
            .unwrap_or_default();
        Run {
            plan,
            started,
            rows: 0,
            bytes: 0,
            result: None,
            copy_in: false,
            decided,
            limits,
            base: 0,
            cut: None,
            owner: RowsOwner::Statement,
        }
    }
}

/// Times for one message: monotonic for durations, wall clock for timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: Instant,
    pub wall: SystemTime,
}

pub struct BackendSession {
    info: Arc<SessionInfo>,
    policy: Arc<Policy>,
    queue: VecDeque<Pending>,
    statements: HashMap<Box<str>, Prepared>,
    portals: HashMap<Box<str>, Prepared>,
    /// After an error in an extended-protocol batch the server skips to Sync; so do we.
    skipping: bool,
    run: Option<Run>,
    /// A COPY FROM STDIN ended on the server before the client's CopyDone/CopyFail arrived;
    /// see [`BackendSession::end_copy_in`].
    copy_end_owed: bool,
    /// Index of the next statement of the Query at the head of the queue.
    query_index: usize,
    seq: u64,
    application_name: Option<Arc<str>>,
    /// The policy roles of this session's user, stamped on every event.
    roles: Arc<[String]>,
    /// Transaction status of the last ReadyForQuery (`I`, `T`, `E`).
    pub status: u8,
    attributions: HashMap<AttributionKey, Attribution>,
    attributions_generation: u64,
    /// Rows of this session's statements by classes, read by the frontend half for
    /// `rows_per_session` before each statement.
    usage: Arc<Mutex<SessionUsage>>,
    /// standard_conforming_strings as the server last reported it (ParameterStatus at
    /// startup and on every change), shared with the frontend half, which lexes by it.
    standard_conforming_strings: Arc<std::sync::atomic::AtomicBool>,
    /// SQL cursors: thresholds and rows across FETCHes.
    cursors: HashMap<Box<str>, PortalRows>,
    /// A result was cut off by a row threshold: everything the server still sends for it,
    /// up to its ReadyForQuery, is dropped (the client already has its ErrorResponse).
    swallowing: bool,
    /// While swallowing, the server reported an error (normally 57014 from our cancel).
    server_failed: bool,
    /// The relay should cancel the server's running query.
    cancel_wanted: bool,
    /// The client was told its transaction failed but the server's is still good: the
    /// relay must make the server fail it before the client's next message.
    failure_owed: bool,
}

/// Bound on tracked SQL cursors per session (oldest forgotten first is not needed: a
/// session past it drops them all, losing only cross-FETCH counts, not session counts).
const MAX_CURSORS: usize = 256;

impl BackendSession {
    pub fn new(
        info: Arc<SessionInfo>,
        policy: Arc<Policy>,
        application_name: Option<String>,
    ) -> Self {
        let roles = policy
            .roles_of(&info.user)
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
            .into();
        Self {
            roles,
            info,
            policy,
            queue: VecDeque::new(),
            statements: HashMap::new(),
            portals: HashMap::new(),
            skipping: false,
            run: None,
            copy_end_owed: false,
            query_index: 0,
            seq: 0,
            application_name: application_name.map(Arc::from),
            status: b'I',
            attributions: HashMap::new(),
            attributions_generation: 0,
            usage: Arc::default(),
            standard_conforming_strings: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            cursors: HashMap::new(),
            swallowing: false,
            server_failed: false,
            cancel_wanted: false,
            failure_owed: false,
        }
    }

    /// The session's standard_conforming_strings flag, shared with the frontend half.
    pub fn standard_conforming_strings(&self) -> Arc<std::sync::atomic::AtomicBool> {
        Arc::clone(&self.standard_conforming_strings)
    }

    /// A ParameterStatus the server sent before the relay started (during startup); only
    /// standard_conforming_strings is taken from it (application_name already came from
    /// the startup packet and is on the Connect event).
    pub fn on_startup_parameter(&mut self, name: &str, value: &str) {
        if name == "standard_conforming_strings" {
            self.on_parameter(name, value);
        }
    }

    /// The session's row usage, shared with the frontend half.
    pub fn usage(&self) -> Arc<Mutex<SessionUsage>> {
        Arc::clone(&self.usage)
    }

    /// Whether the server's running query must be cancelled (a result was cut off). Reset
    /// by reading.
    pub fn take_cancel(&mut self) -> bool {
        std::mem::take(&mut self.cancel_wanted)
    }

    /// Whether the server must be made to fail the open transaction before the client's
    /// next message (see [`Pending::Injected`]). Reset by reading.
    pub fn take_failure_owed(&mut self) -> bool {
        std::mem::take(&mut self.failure_owed)
    }

    pub fn push(&mut self, pending: Pending) {
        if self.copy_end_owed {
            match pending {
                // The end of a COPY the server already finished: it will not be answered.
                Pending::CopyEnd => {
                    self.copy_end_owed = false;
                    return;
                }
                Pending::Sync => {}
                // A client that moved on to new commands will not end that COPY any more.
                _ => self.copy_end_owed = false,
            }
        }
        self.queue.push_back(pending);
    }

    /// Whether every message sent so far has been answered.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.run.is_none()
    }

    /// A new event of `kind` with the next sequence number.
    pub fn event(&mut self, kind: EventKind, now: Now) -> AuditEvent {
        self.seq += 1;
        let mut ev = AuditEvent::new(kind, &self.info, self.seq, now.wall);
        ev.application_name = self.application_name.clone();
        ev.roles = self.roles.clone();
        ev
    }

    /// Handle one server message. Events for finished statements are appended to `events`.
    pub fn on_message(
        &mut self,
        frame: &Frame,
        catalog: &dyn CatalogView,
        now: Now,
        events: &mut Vec<AuditEvent>,
    ) -> Result<Reply, FrameError> {
        let body = frame.body();
        if matches!(self.queue.front(), Some(Pending::Injected)) {
            return self.on_injected_answer(frame.tag, body);
        }
        let reply = match frame.tag {
            b'D' | b'd' => return Ok(self.count_row(frame.bytes.len(), now, events)),
            b'Z' if self.swallowing => return self.end_swallow(body),
            b'E' if self.swallowing => {
                self.server_failed = true;
                self.on_error(body, catalog, now, events)?;
                return Ok(Reply::Drop);
            }
            _ => self.on_other(frame.tag, body, catalog, now, events)?,
        };
        // Notices, notifications and parameter changes are not part of the cut-off result.
        if self.swallowing && !matches!(frame.tag, b'N' | b'A' | b'S') {
            return Ok(Reply::Drop);
        }
        Ok(reply)
    }

    fn on_other(
        &mut self,
        tag: u8,
        body: &[u8],
        catalog: &dyn CatalogView,
        now: Now,
        events: &mut Vec<AuditEvent>,
    ) -> Result<Reply, FrameError> {
        match tag {
            b'T' => self.on_row_description(body)?,
            b'C' => self.on_command_complete(body, catalog, now, events)?,
            b'E' => return self.on_error(body, catalog, now, events),
            b'1' => self.on_parse_complete(),
            b'2' => self.on_bind_complete(),
            b'3' => self.on_close_complete(),
            b'n' => self.pop_describe(None),
            b's' => self.finish(catalog, now, events, Outcome::Ok, None, None, true),
            b'I' => self.on_empty_query(),
            b'G' => self.on_copy_in(),
            b'Z' => self.on_ready(body)?,
            b'V' => self.audit_function_call(catalog, now, events, Outcome::Ok, None, None),
            b'S' => self.on_parameter_status(body),
            _ => {}
        }
        Ok(Reply::Forward)
    }

    /// The hot path: one DataRow or CopyData row. Counting and the threshold check are a
    /// few integer operations; nothing is allocated unless a threshold is crossed.
    fn count_row(&mut self, len: usize, now: Now, events: &mut Vec<AuditEvent>) -> Reply {
        if self.swallowing {
            return Reply::Drop;
        }
        if self.run.is_none() {
            self.ensure_run(Instant::now());
        }
        let Some(run) = self.run.as_mut() else {
            return Reply::Forward;
        };
        run.rows += 1;
        run.bytes += len as u64;
        match run.limits.check(run.base + run.rows) {
            None => Reply::Forward,
            Some(event) => self.on_row_event(event, len, now, events),
        }
    }

    /// A row threshold was crossed. Alerts are raised; a block withholds this row, answers
    /// the client with 54000, asks the relay to cancel the server's query, and drops the
    /// rest of the result.
    #[cold]
    fn on_row_event(
        &mut self,
        event: RowEvent,
        len: usize,
        now: Now,
        events: &mut Vec<AuditEvent>,
    ) -> Reply {
        for hit in &event.alerts {
            let note = AlertNote {
                rule: hit.name.clone(),
                severity: severity_str(hit.severity),
                message: format!("rule \"{}\": row threshold crossed", hit.name),
            };
            let ev = self.alert_event(&note, now);
            events.push(ev);
        }
        let Some(block) = event.block else {
            return Reply::Forward;
        };
        let Some(run) = self.run.as_mut() else {
            return Reply::Forward;
        };
        // The row that crossed the threshold is not forwarded: the client gets exactly
        // the rows allowed.
        run.rows -= 1;
        run.bytes -= len as u64;
        let reply = build::error_response("ERROR", block.sqlstate, &block.message);
        run.cut = Some(block);
        self.swallowing = true;
        self.server_failed = false;
        self.cancel_wanted = true;
        Reply::Replace(reply)
    }

    /// The ReadyForQuery that ends a cut-off result. The client got an ErrorResponse, so
    /// its transaction must be failed like after a server error. If the server failed too
    /// (our cancel, normally) it already is. If the server finished first, a transaction
    /// block is still good on the server: the client is told 'E' and the relay makes the
    /// server fail it before the client's next message. Outside a transaction block there
    /// is nothing to fail: the statement has ended either way.
    fn end_swallow(&mut self, body: &[u8]) -> Result<Reply, FrameError> {
        self.swallowing = false;
        self.on_ready(body)?;
        if !self.server_failed && self.status == b'T' {
            self.status = b'E';
            self.failure_owed = true;
            return Ok(Reply::Replace(ready_for_query(b'E')));
        }
        Ok(Reply::Forward)
    }

    /// The answer to a Query the proxy injected: an ErrorResponse, then ReadyForQuery.
    fn on_injected_answer(&mut self, tag: u8, body: &[u8]) -> Result<Reply, FrameError> {
        if tag == b'Z' {
            self.queue.pop_front();
            self.status = msg::ready_status(body)?;
        }
        Ok(match tag {
            b'N' | b'A' | b'S' => Reply::Forward,
            _ => Reply::Drop,
        })
    }

    /// Start the next statement of the head entry if none is running.
    fn ensure_run(&mut self, now: Instant) {
        if self.run.is_some() {
            return;
        }
        let (plan, decided, started, result, portal) = match self.queue.front() {
            // A Query an error already ended runs nothing more: a second ErrorResponse
            // before its ReadyForQuery (a client that left during COPY FROM STDIN gets
            // "protocol synchronization was lost" after the COPY's own error) belongs to
            // no statement.
            Some(Pending::Query { .. }) if self.query_index == usize::MAX => return,
            Some(Pending::Query {
                statements,
                decisions,
                started,
                ..
            }) => (
                statements.get(self.query_index).cloned(),
                decisions.get(self.query_index).cloned(),
                if self.query_index == 0 { *started } else { now },
                None,
                None,
            ),
            Some(Pending::Execute { portal, started }) => {
                let p = self.portals.get_mut(portal);
                match p {
                    Some(p) => (
                        p.plan.clone(),
                        p.decided.clone(),
                        *started,
                        p.result.clone(),
                        Some(std::mem::take(&mut p.rows)),
                    ),
                    None => (None, None, *started, None, None),
                }
            }
            _ => return,
        };
        let mut run = Run::new(plan, decided, started);
        run.result = result;
        // Thresholds continue where the cursor's last FETCH or the portal's last Execute
        // left them; a new statement starts from its verdict.
        let fetch = match run.plan.as_deref().and_then(|p| p.cursor.as_ref()) {
            Some(CursorUse::Fetch(name)) => self
                .cursors
                .get_mut(name.as_str())
                .map(|c| (name.as_str().into(), std::mem::take(c))),
            _ => None,
        };
        let carried = match (fetch, portal) {
            (Some((name, rows)), _) => {
                run.owner = RowsOwner::Cursor(name);
                rows
            }
            (None, Some(rows)) => {
                run.owner = RowsOwner::Portal;
                rows
            }
            (None, None) => PortalRows::default(),
        };
        if let Some(limits) = carried.limits {
            run.limits = limits;
        }
        run.base = carried.rows;
        self.run = Some(run);
    }

    fn on_row_description(&mut self, body: &[u8]) -> Result<(), FrameError> {
        let cols: Arc<[ColumnOrigin]> = msg::row_description(body)?.into();
        match self.queue.front() {
            Some(Pending::Describe { .. }) => self.pop_describe(Some(cols)),
            Some(Pending::Query { .. }) => {
                self.ensure_run(Instant::now());
                if let Some(run) = self.run.as_mut() {
                    run.result = Some(cols);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn pop_describe(&mut self, cols: Option<Arc<[ColumnOrigin]>>) {
        if let Some(Pending::Describe { portal, name }) = self.queue.front() {
            let registry = if *portal {
                &mut self.portals
            } else {
                &mut self.statements
            };
            if let Some(p) = registry.get_mut(name) {
                p.result = cols;
            }
            self.queue.pop_front();
        }
    }

    fn on_command_complete(
        &mut self,
        body: &[u8],
        catalog: &dyn CatalogView,
        now: Now,
        events: &mut Vec<AuditEvent>,
    ) -> Result<(), FrameError> {
        let tag = msg::command_tag(body)?;
        let rows = msg::tag_rows(tag);
        self.finish(catalog, now, events, Outcome::Ok, None, rows, false);
        Ok(())
    }

    fn on_error(
        &mut self,
        body: &[u8],
        catalog: &dyn CatalogView,
        now: Now,
        events: &mut Vec<AuditEvent>,
    ) -> Result<Reply, FrameError> {
        let info = msg::error_info(body)?;
        let refusal = self.head_refusal();
        let (outcome, sqlstate) = match &refusal {
            Some(r) => (Outcome::Blocked, r.sqlstate.to_owned()),
            None => (Outcome::Error, info.sqlstate),
        };
        match self.queue.front() {
            // A second error of a Query an error already ended (see `ensure_run`): the
            // server's own words go to the client, with no statement to audit.
            Some(Pending::Query { .. }) if self.query_index == usize::MAX => {
                return Ok(Reply::Forward);
            }
            Some(Pending::Query { .. }) if refusal.is_some() && self.run.is_none() => {
                let message = refusal.as_ref().map(|r| r.message.clone());
                self.audit_refused_query(catalog, now, events, sqlstate, message);
                self.query_index = usize::MAX;
            }
            Some(Pending::Query { .. }) => {
                self.finish(catalog, now, events, outcome, Some(sqlstate), None, false);
                // The rest of the Query is not run; ReadyForQuery ends it.
                self.query_index = usize::MAX;
            }
            Some(Pending::Bind { .. }) if refusal.is_some() => {
                let message = refusal.as_ref().map(|r| r.message.clone());
                self.audit_refused_bind(catalog, now, events, sqlstate, message);
                self.queue.pop_front();
                self.skip_to_sync();
            }
            Some(Pending::Execute { .. }) => {
                self.finish(catalog, now, events, outcome, Some(sqlstate), None, false);
                self.skip_to_sync();
            }
            // A statement that failed before it could run (a missing table at Parse, a bad
            // parameter at Bind) is audited like one that failed while running.
            Some(Pending::Parse { .. } | Pending::Bind { .. }) => {
                let (plan, decided, unknown) = match self.queue.pop_front() {
                    Some(Pending::Parse { statement, .. }) => {
                        (statement, None, "parse of a text pgvigil could not analyse")
                    }
                    Some(Pending::Bind {
                        statement, decided, ..
                    }) => (
                        self.statements.get(&statement).and_then(|p| p.plan.clone()),
                        decided,
                        "bind of a statement pgvigil does not know",
                    ),
                    _ => (None, None, ""),
                };
                self.audit_failed_before_run(
                    plan, decided, unknown, catalog, now, events, sqlstate,
                );
                self.skip_to_sync();
            }
            Some(Pending::FunctionCall { .. }) => {
                let message = refusal.as_ref().map(|r| r.message.clone());
                self.audit_function_call(catalog, now, events, outcome, Some(sqlstate), message);
            }
            Some(Pending::Sync) | None => {}
            Some(_) => {
                self.queue.pop_front();
                self.skip_to_sync();
            }
        }
        Ok(match refusal {
            Some(r) => Reply::Replace(build::error_response("ERROR", r.sqlstate, &r.message)),
            None => Reply::Forward,
        })
    }

    /// Every statement of a refused Query is audited as blocked, each with its own verdict
    /// (the whole Query was replaced, so none of them ran).
    fn audit_refused_query(
        &mut self,
        catalog: &dyn CatalogView,
        now: Now,
        events: &mut Vec<AuditEvent>,
        sqlstate: String,
        message: Option<String>,
    ) {
        let Some(Pending::Query {
            statements,
            decisions,
            started,
            ..
        }) = self.queue.front()
        else {
            return;
        };
        let started = *started;
        // Statements the substitute really ran (its BEGIN) were audited as they finished.
        let first = self.query_index.min(statements.len());
        let runs: Vec<Run> = (first..statements.len().max(1))
            .map(|i| {
                Run::new(
                    statements.get(i).cloned(),
                    decisions.get(i).cloned(),
                    started,
                )
            })
            .collect();
        for run in runs {
            // A statement refused by its own verdict says why; the others were refused
            // with the Query they were part of.
            let own = run
                .decided
                .as_ref()
                .and_then(|d| d.refusal.as_ref())
                .map(|r| (r.sqlstate.to_owned(), r.message.clone()));
            let (state, text) = match own {
                Some((state, text)) => (state, Some(text)),
                None => (
                    sqlstate.clone(),
                    message.as_ref().map(|m| {
                        format!("not run: another statement of its Query was refused ({m})")
                    }),
                ),
            };
            self.emit_blocked(run, catalog, now, events, state, text);
        }
    }

    fn audit_refused_bind(
        &mut self,
        catalog: &dyn CatalogView,
        now: Now,
        events: &mut Vec<AuditEvent>,
        sqlstate: String,
        message: Option<String>,
    ) {
        let Some(Pending::Bind {
            statement, decided, ..
        }) = self.queue.front()
        else {
            return;
        };
        let plan = self.statements.get(statement).and_then(|p| p.plan.clone());
        let run = Run::new(plan, decided.clone(), Instant::now());
        self.emit_blocked(run, catalog, now, events, sqlstate, message);
    }

    /// An ErrorResponse to a Parse or a Bind: the statement's event (from its plan), or,
    /// when no single statement is known, an `unparsed` event saying what failed.
    #[allow(clippy::too_many_arguments)]
    fn audit_failed_before_run(
        &mut self,
        plan: Option<Arc<PlannedStatement>>,
        decided: Option<Arc<Decided>>,
        unknown: &str,
        catalog: &dyn CatalogView,
        now: Now,
        events: &mut Vec<AuditEvent>,
        sqlstate: String,
    ) {
        if plan.is_some() {
            let run = Run::new(plan, decided, now.mono);
            self.emit(
                run,
                catalog,
                now,
                events,
                Outcome::Error,
                Some(sqlstate),
                None,
                false,
                None,
            );
            return;
        }
        let run = Run::new(None, decided, now.mono);
        let mut ev = self.statement_event(
            run,
            catalog,
            now,
            Outcome::Error,
            Some(sqlstate),
            None,
            false,
        );
        label_event(&mut ev, crate::sql::StatementKind::Unparsed, unknown);
        events.push(ev);
    }

    /// The answer (FunctionCallResponse or ErrorResponse) to the FunctionCall at the head
    /// of the queue: one statement event of kind `other` naming the function by OID, never
    /// its arguments. The entry stays queued until its ReadyForQuery.
    fn audit_function_call(
        &mut self,
        catalog: &dyn CatalogView,
        now: Now,
        events: &mut Vec<AuditEvent>,
        outcome: Outcome,
        sqlstate: Option<String>,
        message: Option<String>,
    ) {
        let Some(Pending::FunctionCall { oid, started, .. }) = self.queue.front() else {
            return;
        };
        let query = format!("function call (oid {oid})");
        let run = Run::new(None, None, *started);
        let rows = (outcome == Outcome::Ok).then_some(1);
        let mut ev = self.statement_event(run, catalog, now, outcome, sqlstate, rows, false);
        label_event(&mut ev, crate::sql::StatementKind::Other, &query);
        if message.is_some() {
            ev.message = message;
        }
        events.push(ev);
    }

    fn head_refusal(&self) -> Option<ClientError> {
        match self.queue.front() {
            Some(
                Pending::Query { refusal, .. }
                | Pending::Bind { refusal, .. }
                | Pending::FunctionCall { refusal, .. },
            ) => refusal.clone(),
            _ => None,
        }
    }

    /// The server discards everything up to the next Sync; drop what we expected of it.
    fn skip_to_sync(&mut self) {
        while let Some(front) = self.queue.front() {
            if matches!(front, Pending::Sync) {
                break;
            }
            self.queue.pop_front();
        }
        self.skipping = true;
    }

    fn on_parse_complete(&mut self) {
        if let Some(Pending::Parse { name, statement }) = self.queue.pop_front() {
            self.statements.insert(
                name,
                Prepared {
                    plan: statement,
                    ..Prepared::default()
                },
            );
        }
    }

    fn on_bind_complete(&mut self) {
        if let Some(Pending::Bind {
            portal,
            statement,
            decided,
            ..
        }) = self.queue.pop_front()
        {
            let mut prepared = self.statements.get(&statement).cloned().unwrap_or_default();
            prepared.decided = decided;
            self.portals.insert(portal, prepared);
        }
    }

    fn on_close_complete(&mut self) {
        if let Some(Pending::Close { portal, name }) = self.queue.pop_front() {
            if portal {
                self.portals.remove(&name);
            } else {
                self.statements.remove(&name);
            }
        }
    }

    fn on_empty_query(&mut self) {
        if matches!(self.queue.front(), Some(Pending::Execute { .. })) {
            self.queue.pop_front();
        }
        self.run = None;
    }

    fn on_copy_in(&mut self) {
        self.ensure_run(Instant::now());
        if let Some(run) = self.run.as_mut() {
            run.copy_in = true;
        }
    }

    fn on_ready(&mut self, body: &[u8]) -> Result<(), FrameError> {
        self.status = msg::ready_status(body)?;
        while let Some(front) = self.queue.pop_front() {
            if front.ends_at_ready() {
                break;
            }
        }
        self.run = None;
        self.query_index = 0;
        self.skipping = false;
        // Unnamed portals do not outlive the transaction; named ones end with it too unless
        // they are holdable cursors, which are SQL-level and not tracked here.
        if self.status == b'I' {
            self.portals.clear();
        }
        Ok(())
    }

    fn on_parameter_status(&mut self, body: &[u8]) {
        let mut r = crate::protocol::reader::BodyReader::new(body);
        if let (Ok(name), Ok(value)) = (r.cstr(), r.cstr()) {
            self.on_parameter(name, value);
        }
    }

    fn on_parameter(&mut self, name: &str, value: &str) {
        match name {
            "application_name" => self.application_name = Some(Arc::from(value)),
            // The server reports `on` or `off`; anything else is read as off (backslash
            // escapes), the reading the frontend's lexer treats as the exception.
            "standard_conforming_strings" => self
                .standard_conforming_strings
                .store(value == "on", std::sync::atomic::Ordering::Release),
            _ => {}
        }
    }

    /// End the running statement of the head entry and audit it.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        catalog: &dyn CatalogView,
        now: Now,
        events: &mut Vec<AuditEvent>,
        outcome: Outcome,
        sqlstate: Option<String>,
        tag_rows: Option<u64>,
        suspended: bool,
    ) {
        self.ensure_run(now.mono);
        let Some(run) = self.run.take() else { return };
        let portal_done = match self.queue.front() {
            Some(Pending::Query { .. }) => {
                self.query_index = self.query_index.saturating_add(1);
                None
            }
            Some(Pending::Execute { .. }) => self.queue.pop_front(),
            _ => None,
        };
        if run.copy_in {
            self.end_copy_in();
        }
        let rows = match &run.cut {
            Some(_) => run.rows,
            None => tag_rows.unwrap_or(run.rows),
        };
        self.account_rows(&run, rows, outcome, suspended, portal_done);
        self.emit(
            run, catalog, now, events, outcome, sqlstate, tag_rows, suspended, None,
        );
    }

    /// Session usage for `rows_per_session`, and the thresholds a cursor or a suspended
    /// portal carries to its next piece.
    fn account_rows(
        &mut self,
        run: &Run,
        rows: u64,
        outcome: Outcome,
        suspended: bool,
        execute: Option<Pending>,
    ) {
        if let Some(d) = &run.decided {
            if rows > 0 && !d.verdict.classes.is_empty() {
                if let Ok(mut usage) = self.usage.lock() {
                    usage.add_rows(d.verdict.classes, rows);
                }
            }
        }
        let carried = || PortalRows {
            limits: Some(run.limits.clone()),
            rows: run.base + run.rows,
        };
        match (&run.owner, execute) {
            (RowsOwner::Cursor(name), _) => {
                if let Some(c) = self.cursors.get_mut(name) {
                    *c = carried();
                }
            }
            (RowsOwner::Portal, Some(Pending::Execute { portal, .. })) if suspended => {
                if let Some(p) = self.portals.get_mut(&portal) {
                    p.rows = carried();
                }
            }
            _ => {}
        }
        let declared = match run.plan.as_deref().and_then(|p| p.cursor.as_ref()) {
            Some(CursorUse::Declare(name)) if outcome == Outcome::Ok => name,
            _ => return,
        };
        if self.cursors.len() >= MAX_CURSORS {
            self.cursors.clear();
        }
        let limits = run.decided.as_ref().map(|d| d.verdict.row_limits.clone());
        self.cursors.insert(
            declared.as_str().into(),
            PortalRows {
                limits: Some(limits.unwrap_or_default()),
                rows: 0,
            },
        );
    }

    /// Audit a statement, then raise the alerts of its verdict.
    /// The event of a statement the proxy refused: it never ran, so no rows.
    fn emit_blocked(
        &mut self,
        run: Run,
        catalog: &dyn CatalogView,
        now: Now,
        events: &mut Vec<AuditEvent>,
        sqlstate: String,
        message: Option<String>,
    ) {
        let outcome = Outcome::Blocked;
        self.emit(
            run,
            catalog,
            now,
            events,
            outcome,
            Some(sqlstate),
            None,
            false,
            message,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        run: Run,
        catalog: &dyn CatalogView,
        now: Now,
        events: &mut Vec<AuditEvent>,
        outcome: Outcome,
        sqlstate: Option<String>,
        tag_rows: Option<u64>,
        suspended: bool,
        message: Option<String>,
    ) {
        // A later Execute of a suspended portal continues the statement its Bind decided
        // on: its alerts were raised with the first piece.
        let continuation = run.owner == RowsOwner::Portal && run.base > 0;
        let decided = run.decided.clone().filter(|_| !continuation);
        let plan = run.plan.clone();
        let mut ev =
            self.statement_event(run, catalog, now, outcome, sqlstate, tag_rows, suspended);
        if message.is_some() {
            ev.message = message;
        }
        events.push(ev);
        let Some(decided) = decided else { return };
        for note in &decided.alerts {
            let mut alert = self.alert_event(note, now);
            if let Some(plan) = &plan {
                alert.statement_kind = Some(plan.kind);
                alert.fingerprint = Some(plan.fingerprint.clone());
                alert.query = Some(plan.normalized.clone());
                alert.actor = plan.actor.clone();
            }
            events.push(alert);
        }
    }

    /// An `alert` event (the relay hands it to the alert sink).
    fn alert_event(&mut self, note: &AlertNote, now: Now) -> AuditEvent {
        let mut ev = self.event(EventKind::Alert, now);
        ev.rule = Some(note.rule.clone());
        ev.severity = Some(note.severity);
        ev.message = Some(note.message.clone());
        ev
    }

    /// The server has left copy-in mode (CommandComplete or ErrorResponse for a COPY FROM
    /// STDIN). PostgreSQL ignores Syncs that arrive in copy-in mode and silently drops copy
    /// messages that arrive after it has left it, so neither gets an answer: forget the Syncs
    /// the client sent along with its data (drivers send one right after Execute, before any
    /// data) and the CopyDone/CopyFail that ends it. When the server failed on a row while
    /// the client was still streaming, that CopyDone/CopyFail has not been sent yet; it is
    /// owed, and dropped on arrival. Without this, one Sync too many stays queued and every
    /// later answer is matched to the wrong message (statements go unaudited, registries
    /// drift).
    ///
    /// Assumes what every driver does: no Sync interleaved within the copy data after the
    /// row that failed (PostgreSQL would answer such a Sync).
    fn end_copy_in(&mut self) {
        let start = usize::from(matches!(self.queue.front(), Some(Pending::Query { .. })));
        let mut idx = start;
        while idx < self.queue.len() {
            match self.queue[idx] {
                Pending::Sync => {
                    self.queue.remove(idx);
                }
                Pending::CopyEnd => {
                    self.queue.remove(idx);
                    return;
                }
                _ => idx += 1,
            }
        }
        self.copy_end_owed = true;
    }

    #[allow(clippy::too_many_arguments)]
    fn statement_event(
        &mut self,
        run: Run,
        catalog: &dyn CatalogView,
        now: Now,
        outcome: Outcome,
        sqlstate: Option<String>,
        tag_rows: Option<u64>,
        suspended: bool,
    ) -> AuditEvent {
        let mut ev = self.event(EventKind::Statement, now);
        let attribution = self.attribution(&run, catalog);
        if let Some(plan) = &run.plan {
            ev.statement_kind = Some(plan.kind);
            ev.fingerprint = Some(plan.fingerprint.clone());
            ev.query = Some(plan.normalized.clone());
            ev.actor = plan.actor.clone();
            ev.request_id = plan.request_id.clone();
            ev.traceparent = plan.traceparent.clone();
            ev.hmac_source = Some(Arc::clone(&plan.text));
        } else {
            // A result the proxy has no statement for (the server ran more than the text
            // was split into, or a portal of a statement prepared outside the protocol):
            // still a complete event.
            label_event(
                &mut ev,
                crate::sql::StatementKind::Unparsed,
                "statement pgvigil could not analyse",
            );
        }
        ev.tables = Some(attribution.tables);
        ev.columns = Some(attribution.columns);
        ev.classes = Some(attribution.classes);
        ev.rows = Some(tag_rows.unwrap_or(run.rows));
        ev.bytes = Some(run.bytes);
        ev.duration_ms = Some(
            now.mono
                .saturating_duration_since(run.started)
                .as_secs_f64()
                * 1000.0,
        );
        let cut = run.cut.as_ref();
        ev.decision = Some(if outcome == Outcome::Blocked || cut.is_some() {
            "block"
        } else {
            run.decided
                .as_ref()
                .map_or("allow", |d| d.decision().as_str())
        });
        if let Some(d) = &run.decided {
            let mut rules: Vec<String> = d.verdict.rules.iter().map(|h| h.name.clone()).collect();
            rules.extend(cut.map(|c| c.rule.name.clone()));
            ev.rules = Some(rules);
            ev.permissions_required = Some(d.verdict.permissions_required.clone());
            ev.permissions_held = Some(d.verdict.permissions_held.clone());
        }
        let (outcome, sqlstate) = match cut {
            Some(block) => {
                ev.message = Some(block.message.clone());
                (Outcome::Blocked, Some(block.sqlstate.to_owned()))
            }
            None => (outcome, sqlstate),
        };
        ev.outcome = Some(outcome);
        ev.sqlstate = sqlstate;
        ev.suspended = suspended;
        ev
    }
}

impl BackendSession {
    /// The session's fixed facts.
    pub fn info(&self) -> Arc<SessionInfo> {
        Arc::clone(&self.info)
    }

    /// Classify with `policy` from now on (after a reload): roles and cached attributions
    /// were derived from the old one.
    pub fn use_policy(&mut self, policy: &Arc<Policy>) {
        if Arc::ptr_eq(&self.policy, policy) {
            return;
        }
        self.policy = Arc::clone(policy);
        self.roles = policy
            .roles_of(&self.info.user)
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
            .into();
        self.attributions.clear();
    }

    /// The database user of this session.
    pub fn user(&self) -> &str {
        &self.info.user
    }
}

/// The statement fields of an event for a message with no analysable SQL text: `query` is
/// a description made by the proxy (it holds no value the client sent).
fn label_event(ev: &mut AuditEvent, kind: crate::sql::StatementKind, query: &str) {
    ev.statement_kind = Some(kind);
    ev.fingerprint = Some(fingerprint(query));
    ev.hmac_source = Some(Arc::from(query));
    ev.query = Some(query.to_owned());
}

/// The fingerprint of a normalized text as the SQL analysis computes it (64-bit FNV-1a, hex),
/// for events of messages that carry no SQL text.
fn fingerprint(normalized: &str) -> String {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = normalized.bytes().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    });
    format!("{hash:016x}")
}

/// A ReadyForQuery with the given transaction status.
fn ready_for_query(status: u8) -> Bytes {
    Bytes::copy_from_slice(&[b'Z', 0, 0, 0, 5, status])
}

#[cfg(test)]
mod tests;
