//! The rule table: each condition, role scopes, at_least, monitor mode, allow, row
//! thresholds, approvals and business hours across DST in Europe/Berlin.

use super::*;
use crate::policy::{RuleAction, RuleMode, Severity};
use time::Duration;

fn email(engine: &Engine, user: &str) -> Access {
    select(engine, user, "customers", &["email"])
}

fn ssn(engine: &Engine, user: &str) -> Access {
    select(engine, user, "customers", &["ssn"])
}

#[test]
fn rule_without_condition_matches_any_access_to_its_class() {
    let engine =
        engine_with_rules("  - { name: conf, class: CONFIDENTIAL, action: alert, severity: HIGH }");
    let v = decide(&engine, &email(&engine, "app_backend"));
    assert_eq!(v.decision, Decision::Alert);
    assert_eq!(
        v.rules,
        [RuleHit {
            name: "conf".into(),
            action: RuleAction::Alert,
            severity: Severity::High,
            mode: RuleMode::Enforce,
        }]
    );
    let v = decide(
        &engine,
        &select(&engine, "app_backend", "products", &["name"]),
    );
    assert!(v.rules.is_empty(), "PUBLIC data is not CONFIDENTIAL");
}

#[test]
fn rule_without_class_matches_every_class_but_only_when_data_is_touched() {
    let engine = engine_with_rules("  - { name: all, action: alert }");
    let v = decide(
        &engine,
        &select(&engine, "app_backend", "products", &["name"]),
    );
    assert_eq!(hit_names(&v), ["all"]);
    let v = decide(
        &engine,
        &Access::new(StatementKind::Select, "app_backend", "x"),
    );
    assert!(v.rules.is_empty());
}

#[test]
fn roles_and_except_roles_scope_a_rule() {
    let engine = engine_with_rules(
        "  - { name: only-support, class: CONFIDENTIAL, roles: [CUSTOMER_SUPPORT], action: alert }
  - { name: not-support, class: CONFIDENTIAL, except_roles: [CUSTOMER_SUPPORT], action: alert }",
    );
    assert_eq!(
        hit_names(&decide(&engine, &email(&engine, "support_bot"))),
        ["only-support"]
    );
    assert_eq!(
        hit_names(&decide(&engine, &email(&engine, "app_backend"))),
        ["not-support"]
    );
}

#[test]
fn at_least_covers_higher_classes_only() {
    let engine = engine_with_rules(
        "  - { name: sensitive, class: CONFIDENTIAL, at_least: true, action: alert }",
    );
    assert_eq!(
        hit_names(&decide(&engine, &ssn(&engine, "app_backend"))),
        ["sensitive"]
    );
    assert_eq!(
        hit_names(&decide(&engine, &email(&engine, "app_backend"))),
        ["sensitive"]
    );
    let tickets = select(&engine, "app_backend", "tickets", &["subject"]);
    assert!(decide(&engine, &tickets).rules.is_empty());
}

#[test]
fn monitor_mode_turns_a_block_into_an_alert() {
    let engine = engine_with_rules(
        "  - { name: dry-run, class: CONFIDENTIAL, action: block, mode: monitor }",
    );
    let v = decide(&engine, &email(&engine, "app_backend"));
    assert_eq!(v.decision, Decision::Alert);
    assert_eq!(v.sqlstate, None);
    assert_eq!(
        v.rules[0].action,
        RuleAction::Block,
        "the hit keeps the action as written"
    );
    assert_eq!(v.rules[0].mode, RuleMode::Monitor);
    assert_eq!(v.rules[0].effective(), Decision::Alert);
}

#[test]
fn block_names_the_rule_and_every_match_is_recorded() {
    let engine = engine_with_rules(
        "  - { name: first, class: CONFIDENTIAL, action: alert }
  - { name: wall, class: CONFIDENTIAL, action: block }
  - { name: last, class: CONFIDENTIAL, action: allow }",
    );
    let v = decide(&engine, &email(&engine, "app_backend"));
    assert_eq!(v.decision, Decision::Block);
    assert_eq!(v.sqlstate, Some(SQLSTATE_DENIED));
    assert_eq!(v.message, "blocked by pgvigil rule \"wall\"");
    assert_eq!(hit_names(&v), ["first", "wall", "last"]);
}

#[test]
fn allow_rule_is_recorded_and_overrides_nothing() {
    let engine = engine_with_rules(
        "  - { name: ok, class: CONFIDENTIAL, action: allow }
  - { name: wall, class: CONFIDENTIAL, action: block }",
    );
    let v = decide(&engine, &email(&engine, "app_backend"));
    assert_eq!(
        v.decision,
        Decision::Block,
        "allow never short-circuits a block"
    );
    assert_eq!(hit_names(&v), ["ok", "wall"]);
    let only_allow = engine_with_rules("  - { name: ok, class: CONFIDENTIAL, action: allow }");
    let v = decide(&only_allow, &email(&only_allow, "app_backend"));
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(hit_names(&v), ["ok"]);
}

#[test]
fn rules_are_evaluated_when_a_permission_is_missing() {
    let engine = engine_with_rules("  - { name: conf, class: CONFIDENTIAL, action: alert }");
    let v = decide(&engine, &email(&engine, "mallory"));
    assert_eq!(v.decision, Decision::Block);
    assert!(v.message.starts_with("permission denied"), "{}", v.message);
    assert_eq!(
        hit_names(&v),
        ["conf"],
        "the refused attempt is still evidence"
    );
}

#[test]
fn statement_condition_matches_its_kind() {
    let engine = engine_with_rules(
        "  - { name: bulk-export, class: CONFIDENTIAL, statement: copy_to, action: block }",
    );
    assert!(decide(&engine, &email(&engine, "app_backend"))
        .rules
        .is_empty());
    let mut copy = email(&engine, "app_backend");
    copy.kind = StatementKind::CopyTo;
    let v = decide(&engine, &copy);
    assert_eq!(v.decision, Decision::Block);
    assert_eq!(hit_names(&v), ["bulk-export"]);
}

#[test]
fn classes_together_needs_all_classes_in_one_statement() {
    let engine = engine_with_rules(
        "  - { name: cross, classes_together: [RESTRICTED, CONFIDENTIAL], action: alert }",
    );
    assert!(decide(&engine, &ssn(&engine, "app_backend"))
        .rules
        .is_empty());
    assert!(decide(&engine, &email(&engine, "app_backend"))
        .rules
        .is_empty());
    let both = select(&engine, "app_backend", "customers", &["ssn", "email"]);
    assert_eq!(hit_names(&decide(&engine, &both)), ["cross"]);
}

#[test]
fn rows_per_query_block_cuts_off_after_the_threshold() {
    let engine = engine_with_rules(
        "  - { name: cap, class: RESTRICTED, rows_per_query: 1000, action: block, severity: CRITICAL }
  - { name: watch, class: RESTRICTED, rows_per_query: 10, action: alert }",
    );
    let v = decide(&engine, &ssn(&engine, "app_backend"));
    assert_eq!(
        v.decision,
        Decision::Allow,
        "nothing matches before rows flow"
    );
    let mut limits = v.row_limits;
    assert_eq!(limits.next_trigger(), 10);
    assert_eq!(limits.check(10), None);
    let event = limits.check(11).expect("alert above 10 rows");
    assert_eq!(event.alerts.len(), 1);
    assert_eq!(event.alerts[0].name, "watch");
    assert!(event.block.is_none());
    assert_eq!(limits.check(12), None, "each alert fires once");
    assert_eq!(
        limits.check(1000),
        None,
        "the client gets exactly 1000 rows"
    );
    let event = limits.check(1001).expect("block above 1000 rows");
    let block = event.block.expect("block");
    assert_eq!(block.sqlstate, SQLSTATE_ROW_LIMIT);
    assert_eq!(block.rule.name, "cap");
    assert!(block.message.contains("cap"));
    assert!(limits.is_empty(), "nothing fires after a block");
    assert_eq!(limits.check(5000), None);
}

#[test]
fn row_limits_fire_every_threshold_crossed_at_once() {
    // A FETCH 500 reported as one jump crosses both thresholds (S-02: totals add up).
    let engine = engine_with_rules(
        "  - { name: a, class: RESTRICTED, rows_per_query: 10, action: alert }
  - { name: b, class: RESTRICTED, rows_per_query: 100, action: block, mode: monitor }
  - { name: c, class: RESTRICTED, rows_per_query: 300, action: block }",
    );
    let mut limits = decide(&engine, &ssn(&engine, "app_backend")).row_limits;
    let event = limits.check(500).expect("crossed");
    let names: Vec<&str> = event.alerts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "a monitored block alerts");
    assert_eq!(event.block.expect("block").rule.name, "c");
}

#[test]
fn rows_per_session_counts_earlier_statements() {
    let engine = engine_with_rules(
        "  - { name: bulk, class: CONFIDENTIAL, rows_per_session: 50, action: alert }",
    );
    let access = email(&engine, "app_backend");
    let mut usage = SessionUsage::default();
    let v = engine.decide_before(&access, &usage, &[], BUSINESS);
    assert_eq!(v.row_limits.next_trigger(), 50);

    usage.add_rows(v.classes, 40);
    // Rows of statements that touched no CONFIDENTIAL data do not count.
    usage.add_rows(classes(&[Class::Public]), 1000);
    let mut v = engine.decide_before(&access, &usage, &[], BUSINESS);
    assert!(v.rules.is_empty());
    assert_eq!(v.row_limits.check(10), None, "40 + 10 is not above 50");
    assert_eq!(
        v.row_limits.check(11).expect("above 50").alerts[0].name,
        "bulk"
    );

    usage.add_rows(v.classes, 11);
    let v = engine.decide_before(&access, &usage, &[], BUSINESS);
    assert_eq!(
        hit_names(&v),
        ["bulk"],
        "already past the limit: matches before rows"
    );
}

#[test]
fn session_rows_touching_several_classes_count_once() {
    let mut usage = SessionUsage::default();
    usage.add_rows(classes(&[Class::Confidential, Class::Restricted]), 30);
    usage.add_rows(classes(&[Class::Restricted]), 5);
    usage.add_rows(ClassSet::default(), 99);
    assert_eq!(
        usage.rows_touching(classes(&[Class::Confidential, Class::Restricted])),
        35
    );
    assert_eq!(usage.rows_touching(classes(&[Class::Confidential])), 30);
    assert_eq!(usage.rows_touching(classes(&[Class::Public])), 0);
}

#[test]
fn rows_condition_combines_with_other_conditions() {
    let engine = engine_with_rules(
        "  - { name: night-bulk, class: CONFIDENTIAL, rows_per_query: 5, outside_hours: \"Mon-Fri 08:00-18:00 Europe/Berlin\", action: block }",
    );
    let access = email(&engine, "app_backend");
    let v = decide(&engine, &access);
    assert!(
        v.row_limits.is_empty(),
        "inside business hours the rule cannot match"
    );
    let night = datetime!(2026-01-14 22:00 UTC);
    let v = engine.decide_before(&access, &SessionUsage::default(), &[], night);
    assert_eq!(v.row_limits.next_trigger(), 5);
}

fn approval(
    user: &str,
    class: Option<Class>,
    table: Option<&str>,
    expires_at: OffsetDateTime,
) -> Approval {
    Approval {
        user: user.into(),
        class,
        table: table.map(str::to_string),
        expires_at,
    }
}

#[test]
fn require_approval_is_lifted_by_an_active_approval_and_returns_when_it_expires() {
    let engine = engine_with_rules(
        "  - { name: approve, class: RESTRICTED, require_approval: true, action: block }",
    );
    let access = ssn(&engine, "app_backend");
    let usage = SessionUsage::default();
    let expires = BUSINESS + Duration::minutes(30);
    let by_class = [approval(
        "app_backend",
        Some(Class::Restricted),
        None,
        expires,
    )];
    let by_table = [approval(
        "app_backend",
        None,
        Some("public.customers"),
        expires,
    )];
    let other_table = [approval(
        "app_backend",
        None,
        Some("public.orders"),
        expires,
    )];
    let other_user = [approval(
        "support_bot",
        Some(Class::Restricted),
        None,
        expires,
    )];
    let other_class = [approval(
        "app_backend",
        Some(Class::Confidential),
        None,
        expires,
    )];
    let empty = [approval("app_backend", None, None, expires)];

    let decision = |approvals: &[Approval], now| {
        engine
            .decide_before(&access, &usage, approvals, now)
            .decision
    };
    assert_eq!(decision(&[], BUSINESS), Decision::Block);
    assert_eq!(decision(&by_class, BUSINESS), Decision::Allow);
    assert_eq!(decision(&by_table, BUSINESS), Decision::Allow);
    assert_eq!(decision(&other_table, BUSINESS), Decision::Block);
    assert_eq!(decision(&other_user, BUSINESS), Decision::Block);
    assert_eq!(decision(&other_class, BUSINESS), Decision::Block);
    assert_eq!(
        decision(&empty, BUSINESS),
        Decision::Block,
        "an approval must name something"
    );
    let just_before = expires - Duration::seconds(1);
    assert_eq!(decision(&by_class, just_before), Decision::Allow);
    assert_eq!(
        decision(&by_class, expires),
        Decision::Block,
        "expired at expires_at"
    );
}

#[test]
fn approval_for_one_table_does_not_cover_another_restricted_table() {
    let engine = engine_with_rules(
        "  - { name: approve, class: RESTRICTED, require_approval: true, action: block }",
    );
    let access = ssn(&engine, "app_backend")
        .table("public", "vault", Class::Restricted, false)
        .column("public", "vault", "secret", Class::Restricted, false);
    let approvals = [approval(
        "app_backend",
        None,
        Some("public.customers"),
        BUSINESS + Duration::hours(1),
    )];
    let v = engine.decide_before(&access, &SessionUsage::default(), &approvals, BUSINESS);
    assert_eq!(v.decision, Decision::Block);
}

/// The after-hours rule of the example at `now` (UTC), for a CONFIDENTIAL read.
fn after_hours_matches(engine: &Engine, now: OffsetDateTime) -> bool {
    let access = email(engine, "app_backend");
    let v = engine.decide_before(&access, &SessionUsage::default(), &[], now);
    hit_names(&v).contains(&"after-hours")
}

#[test]
fn outside_hours_follows_berlin_across_the_spring_dst_change() {
    let engine = example();
    // Friday before the change (CET, UTC+1): 06:30 UTC is 07:30, outside; 07:30 UTC is 08:30.
    let friday = datetime!(2026-03-27 06:30 UTC);
    assert_eq!(friday.weekday(), time::Weekday::Friday);
    assert!(after_hours_matches(&engine, friday));
    assert!(!after_hours_matches(
        &engine,
        datetime!(2026-03-27 07:30 UTC)
    ));
    // Monday after the change (CEST, UTC+2): the same 06:30 UTC is 08:30, inside.
    let monday = datetime!(2026-03-30 06:30 UTC);
    assert_eq!(monday.weekday(), time::Weekday::Monday);
    assert!(!after_hours_matches(&engine, monday));
    // 16:30 UTC is 18:30 CEST: outside.
    assert!(after_hours_matches(
        &engine,
        datetime!(2026-03-30 16:30 UTC)
    ));
    // The weekend is outside whatever the hour.
    assert!(after_hours_matches(
        &engine,
        datetime!(2026-03-28 10:00 UTC)
    ));
}

#[test]
fn outside_hours_follows_berlin_across_the_autumn_dst_change() {
    let engine = example();
    // Friday 23 October, CEST: 16:30 UTC is 18:30, outside.
    assert!(after_hours_matches(
        &engine,
        datetime!(2026-10-23 16:30 UTC)
    ));
    // Monday 26 October, CET: 16:30 UTC is 17:30, inside; 06:30 UTC is 07:30, outside.
    assert!(!after_hours_matches(
        &engine,
        datetime!(2026-10-26 16:30 UTC)
    ));
    assert!(after_hours_matches(
        &engine,
        datetime!(2026-10-26 06:30 UTC)
    ));
    // End of the span is exclusive: 17:00 UTC is 18:00 CET.
    assert!(after_hours_matches(
        &engine,
        datetime!(2026-10-26 17:00 UTC)
    ));
    assert!(!after_hours_matches(
        &engine,
        datetime!(2026-10-26 16:59 UTC)
    ));
}

#[test]
fn system_tz_database_agrees_with_the_pinned_rule() {
    let Some(zone) = system_zone("Europe/Berlin") else {
        eprintln!("no system tz database: skipped");
        return;
    };
    let pinned = pinned_zones("Europe/Berlin").expect("pinned zone");
    for now in [
        datetime!(2026-03-29 00:59 UTC),
        datetime!(2026-03-29 01:00 UTC),
        datetime!(2026-10-25 00:59 UTC),
        datetime!(2026-10-25 01:00 UTC),
    ] {
        let t = now.unix_timestamp();
        let offset = |z: &tz::TimeZone| z.find_local_time_type(t).map(|l| l.ut_offset()).ok();
        assert_eq!(offset(&zone), offset(&pinned), "at {now}");
    }
    assert!(Engine::new(example_policy()).is_ok());
}

#[test]
fn overnight_hours_belong_to_the_day_they_start() {
    let engine = engine_with_rules(
        "  - { name: off-shift, class: CONFIDENTIAL, outside_hours: \"Mon-Fri 22:00-06:00 UTC\", action: alert }",
    );
    let matches = |now: OffsetDateTime| {
        let v = engine.decide_before(
            &email(&engine, "app_backend"),
            &SessionUsage::default(),
            &[],
            now,
        );
        !v.rules.is_empty()
    };
    assert!(
        !matches(datetime!(2026-01-16 23:00 UTC)),
        "Friday night shift"
    );
    assert!(
        !matches(datetime!(2026-01-17 03:00 UTC)),
        "Saturday 03:00 is Friday's shift"
    );
    assert!(
        matches(datetime!(2026-01-18 03:00 UTC)),
        "Sunday 03:00: no Saturday shift"
    );
    assert!(
        matches(datetime!(2026-01-14 12:00 UTC)),
        "midday is outside a night shift"
    );
}

#[test]
fn unknown_time_zone_is_an_engine_error() {
    let policy = policy_from(
        "rules:\n  - { name: x, outside_hours: \"Mon-Fri 08:00-18:00 Mars/Olympus_Mons\", action: alert }\n",
    );
    let err = Engine::new(policy).expect_err("unknown zone");
    assert_eq!(
        err,
        EngineError::UnknownZone {
            rule: "x".into(),
            zone: "Mars/Olympus_Mons".into()
        }
    );
}

#[test]
fn system_zone_refuses_path_like_names() {
    assert!(system_zone("../etc/passwd").is_none());
    assert!(system_zone("/etc/localtime").is_none());
    assert!(system_zone("Europe//Berlin").is_none());
    assert!(system_zone("UTC").is_some(), "UTC needs no tz database");
}

/// The example's rules on a statement by support_bot reading ssn and email after hours.
#[test]
fn example_rules_on_a_cross_class_read_after_hours() {
    let engine = example();
    let access = select(&engine, "support_bot", "customers", &["ssn", "email"]);
    let night = datetime!(2026-01-14 21:00 UTC);
    let v = engine.decide_before(&access, &SessionUsage::default(), &[], night);
    assert_eq!(
        hit_names(&v),
        [
            "restricted-any-access",
            "restricted-needs-approval",
            "after-hours",
            "cross-class"
        ]
    );
    assert_eq!(v.decision, Decision::Block);
    assert!(v.message.contains("restricted-needs-approval"));
}
