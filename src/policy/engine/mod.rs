//! Policy decisions as pure functions: a statement's [`Access`], the session's
//! [`SessionUsage`], active [`Approval`]s and `now` in, a [`Verdict`] out. No I/O after
//! [`Engine::new`] (which reads the time zones the rules name), no clock, no global state.
//!
//! # Two evaluation points
//!
//! - [`Engine::decide_before`], before the statement is forwarded: the permission check
//!   and every rule whose conditions do not depend on rows. Row conditions become
//!   thresholds in [`Verdict::row_limits`].
//! - [`RowLimits::check`], as rows stream: one `u64` compare per row until a threshold is
//!   crossed. The caller owns the counts: it feeds the cumulative rows of the statement
//!   (or of the cursor / portal across FETCH and Execute) and adds finished rows to its
//!   [`SessionUsage`].
//!
//! Rate limits and failed logins are counters shared across sessions, kept apart:
//! [`RateLimiter`] and [`FailedLogins`] (pure too: `now` is a parameter).
//!
//! # Semantics
//!
//! - Permissions (SPEC 5): see `permissions::touches` for what a statement touches. Either
//!   the class permission or `table:<schema.table>:<action>` suffices. A RESTRICTED column
//!   read without `restricted:read` by a SELECT or COPY TO is masked, not refused; in any
//!   other statement (INSERT ... SELECT, CREATE TABLE AS) the plaintext would be copied
//!   server-side where no mask applies, so it is refused. Without a `roles` key nothing is
//!   checked or masked, but the required permissions are still listed for the audit.
//! - Rules are evaluated in file order and **every** match is recorded (SPEC: "every
//!   match is audited"). The decision is the most severe effective action: block > alert >
//!   allow, where `mode: monitor` turns a block into an alert. An `allow` rule records an
//!   explicit, audited match and nothing more: it never overrides another rule's block or
//!   a missing permission. Exemptions are written with `except_roles`, which keeps every
//!   block visible in the rule that causes it (an allow-that-short-circuits would let a
//!   rule earlier in the file silently disable a later block).
//! - Rules are evaluated even when a permission is missing, so a refused attempt still
//!   records e.g. `restricted-any-access`.
//! - A statement that touches no data (`SELECT 1`, SET, BEGIN) matches no rule: a rule
//!   without `class` applies to every class, but only when some data is touched.
//! - Blocks before running answer 42501; a row threshold crossed mid-stream answers 54000.

mod access;
mod hours;
mod logins;
mod matching;
mod permissions;
mod rate;
mod verdict;

#[cfg(test)]
mod tests;

pub use access::{Access, Approval, ClassSet, ColumnRef, SessionUsage, TableRef};
pub use hours::system_zone;
pub use logins::{FailedLogins, LoginAlert, SQLSTATE_LOCKED};
pub use rate::{Admission, RateAlert, RateLimiter, Refusal, SQLSTATE_RATE_LIMITED};
pub use verdict::{
    Decision, RowBlock, RowEvent, RowLimits, RuleHit, Verdict, SQLSTATE_DENIED, SQLSTATE_ROW_LIMIT,
};

use super::{Permission, Policy, StatementKindMatch};
use hours::Zones;
use matching::{Facts, Match};
use std::sync::Arc;
use time::OffsetDateTime;

/// A policy could not be turned into an engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("rule {rule:?}: unknown time zone {zone:?} in outside_hours (not in the system tz database)")]
    UnknownZone { rule: String, zone: String },
}

/// The decision engine for one policy version. Immutable: share it behind an `Arc` and
/// build a new one on reload.
#[derive(Debug)]
pub struct Engine {
    policy: Arc<Policy>,
    zones: Zones,
}

impl Engine {
    /// Build with zones from the system tz database.
    pub fn new(policy: Arc<Policy>) -> Result<Self, EngineError> {
        Self::with_zone_resolver(policy, system_zone)
    }

    /// Build with a custom zone source (tests pin zone rules this way).
    pub fn with_zone_resolver(
        policy: Arc<Policy>,
        resolve: impl Fn(&str) -> Option<tz::TimeZone>,
    ) -> Result<Self, EngineError> {
        let mut zones = Zones::default();
        for rule in policy.rules() {
            let Some(hours) = &rule.outside_hours else {
                continue;
            };
            if zones.contains(&hours.zone) {
                continue;
            }
            let zone = resolve(&hours.zone).ok_or_else(|| EngineError::UnknownZone {
                rule: rule.name.clone(),
                zone: hours.zone.clone(),
            })?;
            zones.insert(&hours.zone, zone);
        }
        Ok(Self { policy, zones })
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Decide on a statement before it runs. `usage` holds the session's rows before this
    /// statement; `approvals` the approvals in force (expired ones are ignored).
    pub fn decide_before(
        &self,
        access: &Access,
        usage: &SessionUsage,
        approvals: &[Approval],
        now: OffsetDateTime,
    ) -> Verdict {
        let roles = self.policy.roles_of(&access.user);
        let held: Vec<&Permission> = roles.iter().flat_map(|r| &r.permissions).collect();
        let role_names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        let touches = permissions::touches(access, &self.policy);
        let classes = permissions::classes_of(&touches);
        let enforce = self.policy.access_control_enabled();
        let perms = permissions::check(access, &touches, &held, enforce);

        let facts = Facts {
            user: &access.user,
            roles: &role_names,
            kind: StatementKindMatch::from(access.kind),
            touches: &touches,
            classes,
            usage,
            approvals,
            now,
            zones: &self.zones,
        };
        let (mut hits, mut row_alerts, mut row_blocks) = (Vec::new(), Vec::new(), Vec::new());
        for rule in self.policy.rules() {
            let threshold = match matching::evaluate(rule, &facts) {
                Match::No => continue,
                Match::Now => None,
                Match::AboveRows(n) => Some(n),
            };
            // Built only on a match: most rules miss most statements.
            let hit = RuleHit {
                name: rule.name.clone(),
                action: rule.action,
                severity: rule.severity,
                mode: rule.mode,
            };
            match threshold {
                None => hits.push(hit),
                Some(n) if hit.effective() == Decision::Block => row_blocks.push((n, hit)),
                Some(n) => row_alerts.push((n, hit)),
            }
        }
        let rule_decision = hits.iter().map(RuleHit::effective).max();
        let (decision, message) = if !perms.missing.is_empty() {
            // `a|b` in the audit; spelled out for the client.
            let missing = perms.missing.join(", ").replace('|', " or ");
            (
                Decision::Block,
                format!("permission denied: requires {missing}"),
            )
        } else if let Some(block) = hits.iter().find(|h| h.effective() == Decision::Block) {
            let message = format!("blocked by pgvigil rule \"{}\"", block.name);
            (Decision::Block, message)
        } else {
            (rule_decision.unwrap_or(Decision::Allow), String::new())
        };
        Verdict {
            decision,
            sqlstate: (decision == Decision::Block).then_some(SQLSTATE_DENIED),
            message,
            rules: hits,
            permissions_required: perms.required,
            permissions_held: perms.held,
            masked_columns: perms.masked,
            classes,
            // A blocked statement never runs: no rows to watch.
            row_limits: if decision == Decision::Block {
                RowLimits::default()
            } else {
                RowLimits::new(row_alerts, row_blocks)
            },
        }
    }
}
