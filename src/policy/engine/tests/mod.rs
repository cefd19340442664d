//! Unit tests of the decision engine and its counters: no network, time passed in.

mod counters;
mod permissions;
mod rules;

use super::*;
use crate::policy::{Class, Policy};
use crate::sql::StatementKind;
use std::path::Path;
use std::sync::Arc;
use time::macros::datetime;
use time::OffsetDateTime;

/// Europe/Berlin as a POSIX rule (CET/CEST, last Sunday of March and October): pins the
/// DST tests to known rules whether or not the machine has a tz database.
const BERLIN_POSIX: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

fn pinned_zones(name: &str) -> Option<tz::TimeZone> {
    match name {
        "Europe/Berlin" => tz::TimeZone::from_posix_tz(BERLIN_POSIX).ok(),
        "UTC" => Some(tz::TimeZone::utc()),
        _ => None,
    }
}

/// Wednesday 10:00 in Berlin: inside the example's business hours.
const BUSINESS: OffsetDateTime = datetime!(2026-01-14 09:00 UTC);

fn example_policy() -> Arc<Policy> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("classification/example.yaml");
    Arc::new(Policy::load(&path).expect("example policy loads"))
}

fn example() -> Engine {
    Engine::with_zone_resolver(example_policy(), pinned_zones).expect("zones resolve")
}

/// Load a policy from YAML text.
fn policy_from(text: &str) -> Arc<Policy> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("p.yaml");
    std::fs::write(&path, text).expect("write policy");
    match Policy::load(&path) {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("policy does not load: {e}\n{text}"),
    }
}

/// The example's tables, roles and principals (plus `admin` and `auditor`), with `rules`.
fn engine_with_rules(rules: &str) -> Engine {
    let text = format!(
        "default_class: INTERNAL
tables:
  public.customers:
    class: CONFIDENTIAL
    columns:
      ssn:         {{ class: RESTRICTED, mask: last4 }}
      email:       {{ class: CONFIDENTIAL }}
      created_at:  {{ class: INTERNAL }}
  public.products: {{ class: PUBLIC }}
  public.tickets:  {{ class: INTERNAL }}
roles:
  SYSTEM_ADMIN:       [ \"ddl:*\", \"public:*\", \"internal:*\", \"confidential:read\", \"audit:read\", \"approval:grant\" ]
  DATA_PROCESSOR:     [ \"public:*\", \"internal:*\", \"confidential:*\", \"restricted:read\", \"restricted:write\", \"data:export\" ]
  COMPLIANCE_AUDITOR: [ \"audit:*\", \"public:read\", \"internal:read\" ]
  CUSTOMER_SUPPORT:   [ \"public:read\", \"internal:read\", \"confidential:read\", \"table:public.tickets:write\" ]
principals:
  app_backend: [ DATA_PROCESSOR ]
  support_bot: [ CUSTOMER_SUPPORT ]
  admin: [ SYSTEM_ADMIN ]
  auditor: [ COMPLIANCE_AUDITOR ]
default_roles: []
rules:
{rules}
"
    );
    Engine::with_zone_resolver(policy_from(&text), pinned_zones).expect("zones resolve")
}

/// `SELECT <columns> FROM public.<table>` by `user`, classes from the engine's policy.
fn select(engine: &Engine, user: &str, table: &str, columns: &[&str]) -> Access {
    let policy = engine.policy();
    let mut access = Access::new(StatementKind::Select, user, "10.0.0.1").table(
        "public",
        table,
        policy.table_class("public", table),
        false,
    );
    for column in columns {
        let class = policy.column_class("public", table, column);
        access = access.column("public", table, column, class, false);
    }
    access
}

/// A statement of `kind` writing `columns` of `public.<table>` (whole rows if none).
fn write(
    engine: &Engine,
    kind: StatementKind,
    user: &str,
    table: &str,
    columns: &[&str],
) -> Access {
    let policy = engine.policy();
    let mut access = Access::new(kind, user, "10.0.0.1").table(
        "public",
        table,
        policy.table_class("public", table),
        true,
    );
    for column in columns {
        let class = policy.column_class("public", table, column);
        access = access.column("public", table, column, class, true);
    }
    access
}

fn decide(engine: &Engine, access: &Access) -> Verdict {
    engine.decide_before(access, &SessionUsage::default(), &[], BUSINESS)
}

fn hit_names(verdict: &Verdict) -> Vec<&str> {
    verdict.rules.iter().map(|h| h.name.as_str()).collect()
}

fn classes(list: &[Class]) -> ClassSet {
    list.iter().copied().collect()
}
