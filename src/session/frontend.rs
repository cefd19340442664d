//! The client-to-server half: decides what goes upstream for each client message and what
//! response to expect. Statement texts arrive here already analysed (the analysis is cached
//! by the caller) and with the catalog names they mention already fetched.

use super::catalog::CatalogView;
use super::gate::{Decided, Gate, PolicyInput};
use super::pending::Pending;
use super::resolve::{NameContext, PlannedStatement};
use crate::error::ClientError;
use crate::policy::Policy;
use crate::protocol::build;
use crate::protocol::frontend::FrontendMessage;
use crate::sql::{Analysis, SessionEffect};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;

/// What to send upstream for one client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The client's bytes, unchanged.
    Forward,
    /// A substitute message (a refusal the server will fail in protocol order).
    Replace(Bytes),
}

/// The outcome of one client message.
#[derive(Debug)]
pub struct FrontendStep {
    pub upstream: Upstream,
    pub pending: Option<Pending>,
    /// The client asked for output now (Flush, Sync, Query): write without waiting.
    pub flush: bool,
    /// The client said goodbye.
    pub terminate: bool,
}

impl FrontendStep {
    fn forward(pending: Option<Pending>, flush: bool) -> Self {
        Self {
            upstream: Upstream::Forward,
            pending,
            flush,
            terminate: false,
        }
    }
}

pub struct FrontendSession {
    names: NameContext,
    policy: Arc<Policy>,
    /// `on_audit_failure: block`: refuse statements while the trail cannot record.
    block_without_audit: bool,
    gate: Gate,
}

impl FrontendSession {
    pub fn new(names: NameContext, policy: Arc<Policy>, block_without_audit: bool) -> Self {
        Self {
            names,
            policy,
            block_without_audit,
            gate: Gate::default(),
        }
    }

    /// Share the session's standard_conforming_strings flag with the backend half.
    pub fn with_standard_conforming_strings(
        mut self,
        flag: Arc<std::sync::atomic::AtomicBool>,
    ) -> Self {
        self.names = self.names.with_standard_conforming_strings(flag);
        self
    }

    /// How to lex the client's next Query or Parse: as the server will, given the
    /// standard_conforming_strings it reported and the session's own SETs sent since.
    pub fn lex_options(&self) -> crate::sql::LexOptions {
        self.names.lex_options()
    }

    /// Plan with the classification of the engine in force: a reloaded policy reclassifies
    /// from the next statement on.
    fn use_policy(&mut self, input: &PolicyInput) {
        let current = input.engine.policy();
        if !Arc::ptr_eq(&self.policy, current) {
            self.policy = Arc::clone(current);
            self.names.forget_shapes();
        }
    }

    /// A simple Query: every statement planned in order, each seeing the session effects
    /// (search_path, actor) of the ones before it.
    ///
    /// Policy: every statement is decided before anything is forwarded. If one of them is
    /// refused, the whole Query is refused (replaced by a statement the server fails, so
    /// nothing of it runs, as with a syntax error anywhere in it) and every statement is
    /// audited as blocked, each with its own verdict. Running the statements before the
    /// refused one would need the Query split on the wire, and a client sending several
    /// statements in one Query expects them to succeed or fail together (one implicit
    /// transaction).
    pub fn on_query(
        &mut self,
        text: &Arc<str>,
        analysis: &Analysis,
        catalog: &dyn CatalogView,
        audit_ok: bool,
        input: &PolicyInput,
        now: Instant,
    ) -> FrontendStep {
        self.use_policy(input);
        let lex_before = self.names.lex_options();
        let statements = self.plan_all(text, analysis, catalog);
        let decisions: Vec<Arc<Decided>> = statements
            .iter()
            .map(|plan| Arc::new(self.gate.decide(plan, input)))
            .collect();
        let refusal = self
            .refusal(audit_ok)
            .or_else(|| decisions.iter().find_map(|d| d.refusal.clone()));
        if refusal.is_some() {
            // Nothing of a refused Query reaches the server, so no ParameterStatus would
            // ever undo its `SET standard_conforming_strings`: the proxy would keep lexing
            // in a mode the server is not in (a text crafted for that gap could then hide
            // a table), so the optimistic lexing mode is taken back.
            self.undo_lexing_effects(analysis, lex_before);
        }
        let opens_transaction = self.refusal(audit_ok).is_none()
            && opens_transaction_before_refusal(&statements, &decisions);
        let upstream = match refusal {
            // The client's Query opened a transaction block before the refused statement:
            // with a server error there, the block would be left open and failed, so the
            // substitute opens it too and then fails (at run time, after BEGIN ran).
            Some(_) if opens_transaction => {
                Upstream::Replace(build::query(build::REFUSED_IN_TRANSACTION))
            }
            Some(_) => Upstream::Replace(build::query(build::REFUSED_STATEMENT)),
            None => Upstream::Forward,
        };
        let pending = Pending::Query {
            statements,
            decisions,
            started: now,
            refusal,
        };
        FrontendStep {
            upstream,
            pending: Some(pending),
            flush: true,
            terminate: false,
        }
    }

    /// A Parse: planned when it holds exactly one statement (the server rejects more).
    pub fn on_parse(
        &mut self,
        name: &str,
        text: &Arc<str>,
        analysis: &Analysis,
        catalog: &dyn CatalogView,
        input: &PolicyInput,
    ) -> FrontendStep {
        self.use_policy(input);
        let lex_before = self.names.lex_options();
        let mut planned = self.plan_all(text, analysis, catalog);
        // A Parse runs nothing: a `SET standard_conforming_strings` in it takes effect only
        // if and when it is executed, and the server then reports it (ParameterStatus)
        // before the Execute completes. Applying it now would leave the proxy lexing in
        // the wrong mode for good if it is never executed.
        self.undo_lexing_effects(analysis, lex_before);
        let statement = if planned.len() == 1 {
            planned.pop()
        } else {
            None
        };
        self.gate.on_parse(name, statement.clone());
        FrontendStep::forward(
            Some(Pending::Parse {
                name: name.into(),
                statement,
            }),
            false,
        )
    }

    /// Every other message; Query and Parse go through `on_query` / `on_parse`.
    pub fn on_message(
        &mut self,
        msg: &FrontendMessage<'_>,
        audit_ok: bool,
        input: Option<&PolicyInput>,
        now: Instant,
    ) -> FrontendStep {
        match msg {
            FrontendMessage::Bind { portal, statement } => {
                self.on_bind(portal, statement, audit_ok, input)
            }
            FrontendMessage::Describe { portal, name } => FrontendStep::forward(
                Some(Pending::Describe {
                    portal: *portal,
                    name: name.as_ref().into(),
                }),
                false,
            ),
            FrontendMessage::Execute { portal, .. } => FrontendStep::forward(
                Some(Pending::Execute {
                    portal: portal.as_ref().into(),
                    started: now,
                }),
                false,
            ),
            FrontendMessage::Close { portal, name } => FrontendStep::forward(
                Some(Pending::Close {
                    portal: *portal,
                    name: name.as_ref().into(),
                }),
                false,
            ),
            FrontendMessage::Sync => FrontendStep::forward(Some(Pending::Sync), true),
            FrontendMessage::Flush => FrontendStep::forward(None, true),
            FrontendMessage::FunctionCall { oid } => {
                self.on_function_call(*oid, audit_ok, input, now)
            }
            FrontendMessage::CopyDone | FrontendMessage::CopyFail => {
                FrontendStep::forward(Some(Pending::CopyEnd), true)
            }
            FrontendMessage::Terminate => FrontendStep {
                upstream: Upstream::Forward,
                pending: None,
                flush: true,
                terminate: true,
            },
            FrontendMessage::Query { .. } | FrontendMessage::Parse { .. } => {
                FrontendStep::forward(None, false)
            }
            FrontendMessage::CopyData | FrontendMessage::Other { .. } => {
                FrontendStep::forward(None, false)
            }
        }
    }

    /// A Bind: the policy decision for the statement it runs is made here (P-02), and a
    /// refusal replaces the Bind with one the server fails, so the server skips to Sync
    /// exactly as after a real Bind error.
    fn on_bind(
        &mut self,
        portal: &str,
        statement: &str,
        audit_ok: bool,
        input: Option<&PolicyInput>,
    ) -> FrontendStep {
        let decided = input.and_then(|i| self.gate.decide_bind(statement, i).map(Arc::new));
        let refusal = self
            .refusal(audit_ok)
            .or_else(|| decided.as_ref().and_then(|d| d.refusal.clone()));
        let upstream = match refusal {
            Some(_) => Upstream::Replace(build::bind(portal, build::REFUSED_STATEMENT_NAME)),
            None => Upstream::Forward,
        };
        let pending = Pending::Bind {
            portal: portal.into(),
            statement: statement.into(),
            refusal,
            decided,
        };
        FrontendStep {
            upstream,
            pending: Some(pending),
            flush: false,
            terminate: false,
        }
    }

    /// A fast-path FunctionCall: its arguments are values, not SQL the proxy can analyse
    /// (query_to_xml takes a query as a text argument), so with access control on it is
    /// refused (replaced by a call the server fails, which keeps the protocol state exact);
    /// either way it is audited.
    fn on_function_call(
        &mut self,
        oid: u32,
        audit_ok: bool,
        input: Option<&PolicyInput>,
        now: Instant,
    ) -> FrontendStep {
        let access_control = input.is_some_and(|i| i.engine.policy().access_control_enabled());
        let refusal = self.refusal(audit_ok).or_else(|| {
            access_control.then(|| ClientError {
                sqlstate: crate::policy::engine::SQLSTATE_DENIED,
                message: "pgvigil: the fast-path function call interface is not allowed \
                          through pgvigil because its arguments cannot be analysed; \
                          call the function in a SQL statement instead"
                    .into(),
                blame: crate::error::Blame::Client,
            })
        });
        let upstream = match refusal {
            Some(_) => Upstream::Replace(build::function_call(build::REFUSED_FUNCTION_OID)),
            None => Upstream::Forward,
        };
        FrontendStep {
            upstream,
            pending: Some(Pending::FunctionCall {
                oid,
                started: now,
                refusal,
            }),
            flush: true,
            terminate: false,
        }
    }

    /// Put the lexing mode back to `before` if the analysed text changed it (SET/RESET
    /// standard_conforming_strings, RESET ALL, DISCARD ALL).
    fn undo_lexing_effects(&mut self, analysis: &Analysis, before: crate::sql::LexOptions) {
        let changes_mode = analysis.statements.iter().any(|s| {
            s.effects.iter().any(|e| {
                matches!(
                    e,
                    SessionEffect::StandardConformingStrings(_) | SessionEffect::ResetAll
                )
            })
        });
        if changes_mode {
            self.names.set_lex_options(before);
        }
    }

    fn refusal(&self, audit_ok: bool) -> Option<ClientError> {
        (self.block_without_audit && !audit_ok).then(ClientError::audit_unavailable)
    }

    fn plan_all(
        &mut self,
        text: &Arc<str>,
        analysis: &Analysis,
        catalog: &dyn CatalogView,
    ) -> Vec<Arc<PlannedStatement>> {
        let mut planned = Vec::with_capacity(analysis.statements.len());
        for info in &analysis.statements {
            planned.push(Arc::new(self.names.plan(
                info,
                &analysis.tags,
                text,
                catalog,
                &self.policy,
            )));
            // Effects are applied as the statement is sent: a SET that then fails upstream
            // leaves the proxy's view ahead of the server's until the next SET.
            for effect in &info.effects {
                self.names.apply(effect);
            }
        }
        planned
    }
}

/// Whether the Query starts with a transaction block (its first statement) that is still
/// open when the refused statement would run. Only the first statement qualifies: the
/// substitute's own BEGIN answers for it, so the audit of what ran stays exact.
fn opens_transaction_before_refusal(
    statements: &[Arc<PlannedStatement>],
    decisions: &[Arc<crate::session::gate::Decided>],
) -> bool {
    let Some(refused) = decisions.iter().position(|d| d.refusal.is_some()) else {
        return false;
    };
    let word = |plan: &Arc<PlannedStatement>| {
        plan.normalized
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let starts = statements
        .first()
        .is_some_and(|p| matches!(word(p).as_str(), "begin" | "start"));
    starts
        && refused > 0
        && !statements.iter().take(refused).skip(1).any(|p| {
            matches!(
                word(p).as_str(),
                "commit" | "rollback" | "end" | "abort" | "begin" | "start"
            )
        })
}
