//! Carrying out policy decisions per statement: the frontend half asks the engine (and the
//! rate limiter) before a statement is forwarded and hands the result, a [`Decided`], to
//! the backend half through the [`Pending`](super::Pending) queue; the backend half
//! enforces row thresholds with it and puts it into the audit event.

use super::resolve::{CursorUse, PlannedStatement, StatementShape};
use crate::error::{Blame, ClientError};
use crate::policy::engine::{Approval, Decision, Engine, RateLimiter, SessionUsage, Verdict};
use crate::policy::Severity;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// What the engine needs from outside the session for one client message.
pub struct PolicyInput<'a> {
    pub engine: &'a Arc<Engine>,
    pub approvals: &'a [Approval],
    /// The session's rows before this statement (statements still streaming are not in it).
    pub usage: SessionUsage,
    pub now: OffsetDateTime,
    pub rate: &'a Mutex<RateLimiter>,
    /// The database user (rate limits count per user).
    pub user: &'a str,
}

/// An alert to raise once the statement is audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertNote {
    pub rule: String,
    pub severity: &'static str,
    pub message: String,
}

/// The decision on one statement, made before it is forwarded.
#[derive(Debug)]
pub struct Decided {
    pub verdict: Arc<Verdict>,
    /// Set when the statement must not run: a policy block (42501) or the rate limit (53400).
    pub refusal: Option<ClientError>,
    /// Alerts of matched `alert` rules (and the total rate alert).
    pub alerts: Vec<AlertNote>,
}

impl Decided {
    /// The audit `decision`.
    pub fn decision(&self) -> Decision {
        if self.refusal.is_some() {
            Decision::Block
        } else {
            self.verdict.decision
        }
    }
}

/// The client message for a read that needs masking (names columns, never values).
fn masked_refusal(columns: &[(String, String)]) -> String {
    let names: Vec<String> = columns.iter().map(|(t, c)| format!("{t}.{c}")).collect();
    format!(
        "pgvigil: reading RESTRICTED column(s) {} requires restricted:read; masked reads are \
         not available in this version, so leave these columns out or ask for restricted:read",
        names.join(", ")
    )
}

pub fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    }
}

/// Several texts Parsed under one name before the server confirmed any: each is a
/// candidate for what a Bind of that name runs. Bounded; past the bound the name is
/// ambiguous and Binds to it are refused (fail closed).
const MAX_CANDIDATES: usize = 16;

/// The frontend half's policy state.
#[derive(Default)]
pub struct Gate {
    /// Verdicts that depend only on the statement's shape (policies without rules), by
    /// shape identity; valid for `cached_for` only.
    verdicts: HashMap<ShapeKey, Arc<Verdict>>,
    cached_for: Option<Arc<Engine>>,
    /// Texts Parsed under each statement name, as candidates for what a Bind runs.
    ///
    /// Why candidates and not the last Parse: this half runs ahead of the server's answers,
    /// and a Parse may fail (a name already in use, a bad text) or a Close may be skipped
    /// after an error, so "the last Parse under this name" can differ from what the server
    /// holds. Deciding on the strictest candidate cannot let a forbidden statement run
    /// under a harmless name; the cost is a false refusal only for a client that reuses a
    /// name it once used for a statement it may not run. The unnamed statement is exact:
    /// every Parse of it drops the previous one, even a Parse that fails.
    prepared: HashMap<Box<str>, Vec<Arc<PlannedStatement>>>,
    /// Names with more candidates than the bound.
    ambiguous: std::collections::HashSet<Box<str>>,
    /// The DECLARE of each SQL cursor, whose data a FETCH reads.
    cursors: HashMap<String, Arc<StatementShape>>,
    /// SQL-level `PREPARE name AS ...`: the statement an `EXECUTE name` (or a protocol
    /// Bind to that name) runs. Decided on at every execution, not only at PREPARE, so a
    /// revoked approval or a row cap applies to each run.
    sql_prepared: HashMap<String, Arc<StatementShape>>,
}

/// A shape by identity; the key holds the `Arc` so the address cannot be reused.
#[derive(Clone)]
struct ShapeKey(Arc<StatementShape>);

impl PartialEq for ShapeKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for ShapeKey {}
impl std::hash::Hash for ShapeKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state);
    }
}

/// An unparsed statement whose tables the fallback scan cannot see: identifiers written
/// as `U&"..."` escapes, or a DO block that builds SQL at run time (`EXECUTE`). Under
/// access control these fail closed; statements that merely defeat the parser but name
/// their tables plainly (DO blocks with static SQL, `BEGIN ISOLATION LEVEL ...`) still run.
fn hides_its_tables(plan: &PlannedStatement) -> bool {
    if plan.shape.kind != crate::sql::StatementKind::Unparsed {
        return false;
    }
    let normalized = plan.shape.normalized.to_ascii_lowercase();
    if normalized.contains("u&\"") {
        return true;
    }
    let is_do = normalized.split_whitespace().next() == Some("do");
    is_do
        && plan
            .text
            .to_ascii_lowercase()
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .any(|w| w == "execute")
}

/// What a statement does with SQL-level prepared statements.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PreparedUse {
    Prepare(String),
    Execute(String),
    /// `DEALLOCATE [PREPARE] name`, or `ALL` / `DISCARD ALL` (None).
    Deallocate(Option<String>),
}

/// Read the prepared-statement name from a normalized text (identifiers are kept there;
/// unquoted ones fold to lower case like Postgres).
fn sql_prepared_use(normalized: &str) -> Option<PreparedUse> {
    let mut words = normalized
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty());
    let first = words.next()?.to_ascii_lowercase();
    let ident = |w: &str| match w.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(q) => q.replace("\"\"", "\""),
        None => w.to_lowercase(),
    };
    match first.as_str() {
        "prepare" => {
            let name = words.next()?;
            (!name.eq_ignore_ascii_case("transaction")).then(|| PreparedUse::Prepare(ident(name)))
        }
        "execute" => words.next().map(|n| PreparedUse::Execute(ident(n))),
        "deallocate" => {
            let mut name = words.next()?;
            if name.eq_ignore_ascii_case("prepare") {
                name = words.next()?;
            }
            Some(if name.eq_ignore_ascii_case("all") {
                PreparedUse::Deallocate(None)
            } else {
                PreparedUse::Deallocate(Some(ident(name)))
            })
        }
        "discard" => words
            .next()
            .filter(|w| w.eq_ignore_ascii_case("all"))
            .map(|_| PreparedUse::Deallocate(None)),
        _ => None,
    }
}

/// Bound on cached verdicts per session; cleared when full.
const MAX_VERDICTS: usize = 1024;

impl Gate {
    /// Note a Parse (see `prepared`).
    pub fn on_parse(&mut self, name: &str, plan: Option<Arc<PlannedStatement>>) {
        if name.is_empty() {
            match plan {
                Some(p) => {
                    self.prepared.insert("".into(), vec![p]);
                }
                None => {
                    self.prepared.remove("");
                }
            }
            return;
        }
        let Some(plan) = plan else { return };
        let list = self.prepared.entry(name.into()).or_default();
        if list.iter().any(|p| p.normalized == plan.normalized) {
            return;
        }
        if list.len() >= MAX_CANDIDATES {
            self.ambiguous.insert(name.into());
            return;
        }
        list.push(plan);
    }

    /// Decide on a Bind of `statement`. `None`: nothing known about the name (the server
    /// fails the Bind, or it is a SQL-level PREPARE, checked when it was prepared).
    pub fn decide_bind(&mut self, statement: &str, input: &PolicyInput) -> Option<Decided> {
        if self.ambiguous.contains(statement) {
            let verdict = Arc::new(input.engine.decide_before(
                &crate::policy::engine::Access::new(crate::sql::StatementKind::Unparsed, "", ""),
                &input.usage,
                input.approvals,
                input.now,
            ));
            return Some(Decided {
                verdict,
                refusal: Some(denied(
                    "pgvigil: too many different statements were prepared under this name; \
                     close it and prepare under a new name"
                        .into(),
                )),
                alerts: Vec::new(),
            });
        }
        let Some(candidates) = self.prepared.get(statement).cloned() else {
            // A Bind to a name made by SQL-level PREPARE runs that statement.
            let shape = self.sql_prepared.get(statement)?;
            let verdict = Arc::new(decide_shape(shape, input));
            return Some(self.finish(verdict, input));
        };
        let mut best: Option<Decided> = None;
        for plan in &candidates {
            let verdict = self.verdict(plan, input);
            let stricter = best
                .as_ref()
                .is_none_or(|b| verdict.decision > b.verdict.decision);
            if stricter {
                best = Some(Decided {
                    verdict,
                    refusal: None,
                    alerts: Vec::new(),
                });
            }
        }
        best.map(|b| self.finish(b.verdict, input))
    }

    /// Decide on one statement of a simple Query.
    pub fn decide(&mut self, plan: &Arc<PlannedStatement>, input: &PolicyInput) -> Decided {
        if input.engine.policy().access_control_enabled() && hides_its_tables(plan) {
            let verdict = self.verdict(plan, input);
            return Decided {
                verdict,
                refusal: Some(denied(
                    "pgvigil: this statement cannot be analysed well enough to check access \
                     (Unicode-escaped identifiers, or dynamic SQL in a DO block); write table \
                     names plainly and run dynamic SQL as ordinary statements"
                        .into(),
                )),
                alerts: Vec::new(),
            };
        }
        match sql_prepared_use(&plan.shape.normalized) {
            Some(PreparedUse::Prepare(name)) => {
                self.sql_prepared.insert(name, Arc::clone(&plan.shape));
            }
            Some(PreparedUse::Deallocate(Some(name))) => {
                self.sql_prepared.remove(&name);
            }
            Some(PreparedUse::Deallocate(None)) => self.sql_prepared.clear(),
            Some(PreparedUse::Execute(name))
                if !self.sql_prepared.contains_key(&name)
                    && input.engine.policy().access_control_enabled() =>
            {
                // Prepared before the proxy could see it, or its PREPARE was refused: the
                // proxy cannot know what it reads, so it does not run.
                let verdict = self.verdict(plan, input);
                return Decided {
                    verdict,
                    refusal: Some(denied(format!(
                        "pgvigil: prepared statement \"{name}\" was not prepared through this \
                         session's proxy, so its access cannot be checked; PREPARE it again"
                    ))),
                    alerts: Vec::new(),
                };
            }
            _ => {}
        }
        let verdict = self.verdict(plan, input);
        if let Some(CursorUse::Declare(name)) = &plan.cursor {
            self.cursors.insert(name.clone(), Arc::clone(&plan.shape));
        }
        self.finish(verdict, input)
    }

    fn finish(&mut self, verdict: Arc<Verdict>, input: &PolicyInput) -> Decided {
        let mut alerts: Vec<AlertNote> = verdict
            .rules
            .iter()
            .filter(|h| h.effective() == Decision::Alert)
            .map(|h| AlertNote {
                rule: h.name.clone(),
                severity: severity_str(h.severity),
                message: format!("rule \"{}\" matched", h.name),
            })
            .collect();
        let mut refusal = verdict.sqlstate.map(|sqlstate| ClientError {
            sqlstate,
            message: verdict.message.clone(),
            blame: Blame::Client,
        });
        // The engine says these RESTRICTED columns must reach this caller masked. Until
        // field encryption applies masks to result rows, the only safe way to honour that
        // is not to run the statement: fail closed rather than return plaintext.
        if refusal.is_none() && !verdict.masked_columns.is_empty() {
            refusal = Some(ClientError {
                sqlstate: crate::policy::engine::SQLSTATE_DENIED,
                message: masked_refusal(&verdict.masked_columns),
                blame: Blame::Client,
            });
        }
        let admission = match input.rate.lock() {
            Ok(mut rate) => rate.admit(input.user, input.now),
            Err(_) => Default::default(),
        };
        if let (None, Some(r)) = (&refusal, admission.refused) {
            refusal = Some(ClientError {
                sqlstate: r.sqlstate,
                message: r.message,
                blame: Blame::Client,
            });
        }
        if let Some(a) = admission.alert {
            alerts.push(AlertNote {
                rule: "rate_limit.total_alert".into(),
                severity: severity_str(Severity::High),
                message: format!(
                    "more than {} statements in {}s across all users",
                    a.limit.count,
                    a.limit.window.as_secs()
                ),
            });
        }
        Decided {
            verdict,
            refusal,
            alerts,
        }
    }

    /// The engine's verdict, cached by shape while the policy has no rules (then it
    /// depends on nothing but the shape: no usage, time or approvals).
    fn verdict(&mut self, plan: &Arc<PlannedStatement>, input: &PolicyInput) -> Arc<Verdict> {
        let shape = match &plan.cursor {
            Some(CursorUse::Fetch(name)) => self.cursors.get(name).unwrap_or(&plan.shape),
            _ => match sql_prepared_use(&plan.shape.normalized) {
                Some(PreparedUse::Execute(name)) => {
                    self.sql_prepared.get(&name).unwrap_or(&plan.shape)
                }
                _ => &plan.shape,
            },
        };
        let shape = &Arc::clone(shape);
        let cacheable = input.engine.policy().rules().is_empty();
        if !cacheable {
            return Arc::new(decide_shape(shape, input));
        }
        let current = self
            .cached_for
            .as_ref()
            .is_some_and(|e| Arc::ptr_eq(e, input.engine));
        if !current || self.verdicts.len() >= MAX_VERDICTS {
            self.verdicts.clear();
            self.cached_for = Some(Arc::clone(input.engine));
        }
        let key = ShapeKey(Arc::clone(shape));
        if let Some(v) = self.verdicts.get(&key) {
            return Arc::clone(v);
        }
        let v = Arc::new(decide_shape(shape, input));
        self.verdicts.insert(key, Arc::clone(&v));
        v
    }

    /// The DECLAREd cursors' shapes (FETCH decides on the DECLARE's data).
    pub fn forget_cursors(&mut self) {
        self.cursors.clear();
    }
}

fn decide_shape(shape: &StatementShape, input: &PolicyInput) -> Verdict {
    input
        .engine
        .decide_before(&shape.access, &input.usage, input.approvals, input.now)
}

fn denied(message: String) -> ClientError {
    ClientError {
        sqlstate: crate::policy::engine::SQLSTATE_DENIED,
        message,
        blame: Blame::Client,
    }
}

#[cfg(test)]
mod prepared_tests {
    use super::*;

    #[test]
    fn reads_sql_prepared_statement_names() {
        assert_eq!(
            sql_prepared_use("PREPARE p AS SELECT ssn FROM customers"),
            Some(PreparedUse::Prepare("p".into()))
        );
        assert_eq!(
            sql_prepared_use("PREPARE P(int) AS SELECT $1"),
            Some(PreparedUse::Prepare("p".into()))
        );
        assert_eq!(
            sql_prepared_use("EXECUTE p($1)"),
            Some(PreparedUse::Execute("p".into()))
        );
        assert_eq!(
            sql_prepared_use("EXECUTE \"Q\""),
            Some(PreparedUse::Execute("Q".into()))
        );
        assert_eq!(
            sql_prepared_use("DEALLOCATE PREPARE p"),
            Some(PreparedUse::Deallocate(Some("p".into())))
        );
        assert_eq!(
            sql_prepared_use("DEALLOCATE ALL"),
            Some(PreparedUse::Deallocate(None))
        );
        assert_eq!(
            sql_prepared_use("DISCARD ALL"),
            Some(PreparedUse::Deallocate(None))
        );
        assert_eq!(sql_prepared_use("PREPARE TRANSACTION $1"), None);
        assert_eq!(sql_prepared_use("SELECT 1"), None);
    }
}
