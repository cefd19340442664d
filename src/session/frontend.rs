//! The client-to-server half: decides what goes upstream for each client message and what
//! response to expect. Statement texts arrive here already analysed (the analysis is cached
//! by the caller) and with the catalog names they mention already fetched.

use super::catalog::CatalogView;
use super::pending::Pending;
use super::resolve::{NameContext, PlannedStatement};
use crate::error::ClientError;
use crate::policy::Policy;
use crate::protocol::build;
use crate::protocol::frontend::FrontendMessage;
use crate::sql::Analysis;
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
}

impl FrontendSession {
    pub fn new(names: NameContext, policy: Arc<Policy>, block_without_audit: bool) -> Self {
        Self {
            names,
            policy,
            block_without_audit,
        }
    }

    /// A simple Query: every statement planned in order, each seeing the session effects
    /// (search_path, actor) of the ones before it.
    pub fn on_query(
        &mut self,
        text: &Arc<str>,
        analysis: &Analysis,
        catalog: &dyn CatalogView,
        audit_ok: bool,
        now: Instant,
    ) -> FrontendStep {
        let statements = self.plan_all(text, analysis, catalog);
        let refusal = self.refusal(audit_ok);
        let upstream = match refusal {
            Some(_) => Upstream::Replace(build::query(build::REFUSED_STATEMENT)),
            None => Upstream::Forward,
        };
        let pending = Pending::Query {
            statements,
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
    ) -> FrontendStep {
        let mut planned = self.plan_all(text, analysis, catalog);
        let statement = if planned.len() == 1 {
            planned.pop()
        } else {
            None
        };
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
        now: Instant,
    ) -> FrontendStep {
        match msg {
            FrontendMessage::Bind { portal, statement } => {
                self.on_bind(portal, statement, audit_ok)
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
            FrontendMessage::FunctionCall => {
                FrontendStep::forward(Some(Pending::FunctionCall), true)
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

    fn on_bind(&mut self, portal: &str, statement: &str, audit_ok: bool) -> FrontendStep {
        let refusal = self.refusal(audit_ok);
        let upstream = match refusal {
            Some(_) => Upstream::Replace(build::bind(portal, build::REFUSED_STATEMENT_NAME)),
            None => Upstream::Forward,
        };
        let pending = Pending::Bind {
            portal: portal.into(),
            statement: statement.into(),
            refusal,
        };
        FrontendStep {
            upstream,
            pending: Some(pending),
            flush: false,
            terminate: false,
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
