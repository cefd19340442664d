//! What the engine returns: a [`Verdict`] before a statement runs, and [`RowLimits`] that
//! the session checks as rows stream (one `u64` compare per row until a threshold).

use super::access::ClassSet;
use crate::policy::{RuleAction, RuleMode, Severity};

/// SQLSTATE for a statement refused by a permission check or a rule (insufficient_privilege).
pub const SQLSTATE_DENIED: &str = "42501";
/// SQLSTATE for a result cut off by a row threshold (program_limit_exceeded, SPEC 5).
pub const SQLSTATE_ROW_LIMIT: &str = "54000";

/// The overall decision, ordered: the verdict takes the most severe of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    Allow,
    Alert,
    Block,
}

impl Decision {
    /// Audit `decision` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Alert => "alert",
            Decision::Block => "block",
        }
    }
}

/// One rule that matched: every match is audited, whatever its action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    pub name: String,
    /// The action as written.
    pub action: RuleAction,
    pub severity: Severity,
    pub mode: RuleMode,
}

impl RuleHit {
    /// What the hit does: `mode: monitor` turns a block into an alert.
    pub fn effective(&self) -> Decision {
        match (self.action, self.mode) {
            (RuleAction::Allow, _) => Decision::Allow,
            (RuleAction::Alert, _) | (RuleAction::Block, RuleMode::Monitor) => Decision::Alert,
            (RuleAction::Block, RuleMode::Enforce) => Decision::Block,
        }
    }
}

/// The decision on one statement before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// Set iff `decision` is `Block`.
    pub sqlstate: Option<&'static str>,
    /// Client-safe: names the missing permission or the rule, never a data value. Empty
    /// when allowed.
    pub message: String,
    /// Rules matched before the statement runs, in policy order.
    pub rules: Vec<RuleHit>,
    /// Canonical permission strings; `a|b` when either suffices (class or table).
    pub permissions_required: Vec<String>,
    pub permissions_held: Vec<String>,
    /// RESTRICTED columns read without `restricted:read`: `(schema.table, column)`; the
    /// session shows their mask instead of the value.
    pub masked_columns: Vec<(String, String)>,
    /// Classes of the data the statement touches; feed back into
    /// [`SessionUsage::add_rows`](super::SessionUsage::add_rows) with its row count.
    pub classes: ClassSet,
    /// Row thresholds still to watch while this statement's rows stream.
    pub row_limits: RowLimits,
}

/// A threshold crossed while rows stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowEvent {
    /// Rules whose alert threshold was crossed (each fires once per statement).
    pub alerts: Vec<RuleHit>,
    /// Set when a blocking rule's threshold was crossed: stop forwarding rows, cancel the
    /// server query, send an ErrorResponse with this SQLSTATE and message.
    pub block: Option<RowBlock>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowBlock {
    pub rule: RuleHit,
    pub sqlstate: &'static str,
    pub message: String,
}

/// Per-statement row thresholds, computed once by `decide_before`. A rule fires when the
/// statement's row count goes *above* its threshold: call [`check`](Self::check) with the
/// count including the row about to be forwarded, and do not forward it on a block, so
/// the client gets exactly `threshold` rows.
///
/// Keep one `RowLimits` per cursor or portal and feed it that cursor's cumulative total,
/// so FETCH after FETCH (and Execute with a row limit) add up (case S-02).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowLimits {
    /// (threshold, hit), ascending by threshold.
    alerts: Vec<(u64, RuleHit)>,
    /// The lowest blocking threshold and its rule.
    block: Option<(u64, RuleHit)>,
    /// Index of the next alert not yet fired.
    next_alert: usize,
    /// Nothing can fire while rows <= this: the hot path is one compare.
    next_trigger: u64,
}

impl Default for RowLimits {
    /// Nothing to watch.
    fn default() -> Self {
        Self::new(Vec::new(), Vec::new())
    }
}

impl RowLimits {
    pub(crate) fn new(mut alerts: Vec<(u64, RuleHit)>, blocks: Vec<(u64, RuleHit)>) -> Self {
        alerts.sort_by_key(|(t, _)| *t);
        let block = blocks.into_iter().min_by_key(|(t, _)| *t);
        let mut limits = Self {
            alerts,
            block,
            next_alert: 0,
            next_trigger: u64::MAX,
        };
        limits.next_trigger = limits.compute_next_trigger();
        limits
    }

    /// No threshold to watch: the session may skip counting against this statement.
    pub fn is_empty(&self) -> bool {
        self.next_trigger == u64::MAX
    }

    /// The row count above which the next rule fires (`u64::MAX`: none).
    pub fn next_trigger(&self) -> u64 {
        self.next_trigger
    }

    /// Check the statement's row count so far. `None` in the common case.
    #[inline]
    pub fn check(&mut self, rows_this_statement: u64) -> Option<RowEvent> {
        if rows_this_statement <= self.next_trigger {
            return None;
        }
        self.fire(rows_this_statement)
    }

    #[cold]
    fn fire(&mut self, rows: u64) -> Option<RowEvent> {
        let mut alerts = Vec::new();
        while let Some((threshold, hit)) = self.alerts.get(self.next_alert) {
            if rows <= *threshold {
                break;
            }
            alerts.push(hit.clone());
            self.next_alert += 1;
        }
        let block = match &self.block {
            Some((threshold, hit)) if rows > *threshold => {
                let block = RowBlock {
                    message: format!(
                        "result cut off after {threshold} rows by pgvigil rule \"{}\"",
                        hit.name
                    ),
                    rule: hit.clone(),
                    sqlstate: SQLSTATE_ROW_LIMIT,
                };
                // Blocked: nothing more fires for this statement.
                self.block = None;
                self.alerts.clear();
                self.next_alert = 0;
                Some(block)
            }
            _ => None,
        };
        self.next_trigger = self.compute_next_trigger();
        (!alerts.is_empty() || block.is_some()).then_some(RowEvent { alerts, block })
    }

    fn compute_next_trigger(&self) -> u64 {
        let alert = self.alerts.get(self.next_alert).map(|(t, _)| *t);
        let block = self.block.as_ref().map(|(t, _)| *t);
        alert.into_iter().chain(block).min().unwrap_or(u64::MAX)
    }
}
