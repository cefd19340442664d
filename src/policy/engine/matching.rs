//! Whether one rule matches one statement: class scope, role scope, and conditions. Row
//! conditions become a per-statement threshold instead of a yes/no.

use super::access::{Approval, ClassSet, SessionUsage};
use super::hours::{is_outside, Zones};
use super::permissions::Touch;
use crate::policy::{Rule, StatementKindMatch};
use time::OffsetDateTime;

/// How a rule applies to a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    No,
    /// Matches before any row.
    Now,
    /// Matches once the statement's row count goes above this.
    AboveRows(u64),
}

/// Facts about one statement that every rule reads.
pub(crate) struct Facts<'a> {
    pub user: &'a str,
    pub roles: &'a [&'a str],
    pub kind: StatementKindMatch,
    pub touches: &'a [Touch<'a>],
    pub classes: ClassSet,
    pub usage: &'a SessionUsage,
    pub approvals: &'a [Approval],
    pub now: OffsetDateTime,
    pub zones: &'a Zones,
}

/// All conditions of a rule must hold (they are ANDed); a rule without any matches every
/// access to its classes.
pub(crate) fn evaluate(rule: &Rule, facts: &Facts) -> Match {
    let rule_classes: ClassSet = rule.classes.iter().copied().collect();
    let together: ClassSet = rule.classes_together.iter().copied().collect();
    let in_scope = facts.classes.intersects(rule_classes)
        && facts.classes.contains_all(together)
        && roles_match(rule, facts.roles);
    if !in_scope
        || rule.statement.is_some_and(|s| s != facts.kind)
        || (rule.require_approval && approved(rule_classes, facts))
        || rule
            .outside_hours
            .as_ref()
            .is_some_and(|hours| match facts.zones.get(&hours.zone) {
                Some(zone) => !is_outside(hours, zone, facts.now),
                // Unreachable after `Engine::new` resolved every zone; if it happens, the
                // rule errs towards matching.
                None => false,
            })
    {
        return Match::No;
    }
    row_condition(rule, rule_classes, facts.usage)
}

/// `roles`: the caller holds at least one; `except_roles`: the caller holds none.
fn roles_match(rule: &Rule, roles: &[&str]) -> bool {
    let holds = |list: &[String]| list.iter().any(|r| roles.contains(&r.as_str()));
    rule.roles.as_deref().is_none_or(holds) && !holds(&rule.except_roles)
}

/// Every touch of the rule's classes is covered by an active approval for this user
/// (by its class or its table).
fn approved(rule_classes: ClassSet, facts: &Facts) -> bool {
    facts
        .touches
        .iter()
        .filter(|t| rule_classes.contains(t.class))
        .all(|t| {
            facts
                .approvals
                .iter()
                .any(|a| a.covers(facts.user, t.class, t.schema, t.table, facts.now))
        })
}

/// `rows_per_query: N` matches above N rows of this statement; `rows_per_session: N`
/// above N rows of the session's statements touching the rule's classes, this one
/// included, i.e. above `N - before` rows of this one (immediately if the session is
/// already past N). Both given: both must hold, so the higher threshold counts.
fn row_condition(rule: &Rule, rule_classes: ClassSet, usage: &SessionUsage) -> Match {
    let per_query = rule.rows_per_query;
    let per_session = rule.rows_per_session.map(|limit| {
        let before = usage.rows_touching(rule_classes);
        limit.checked_sub(before)
    });
    match (per_query, per_session) {
        (None, None) => Match::Now,
        (Some(q), None) => Match::AboveRows(q),
        // Already past the session limit before this statement.
        (None, Some(None)) => Match::Now,
        (None, Some(Some(s))) => Match::AboveRows(s),
        (Some(q), Some(s)) => Match::AboveRows(q.max(s.unwrap_or(0))),
    }
}
