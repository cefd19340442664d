//! Unit tests of the policy loader: the example, every kind of error, lookups, merging, check.

use super::*;
use std::path::Path;
use tempfile::TempDir;

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("classification/example.yaml")
}

/// Write `files` (name, text) into a fresh directory.
fn dir_with(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn load_text(text: &str) -> Result<Policy, PolicyErrors> {
    let dir = dir_with(&[("p.yaml", text)]);
    Policy::load(&dir.path().join("p.yaml"))
}

/// The errors of loading `text`, as (key path, reason).
fn errors_of(text: &str) -> Vec<(String, String)> {
    match load_text(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(PolicyErrors(errors)) => {
            for e in &errors {
                assert!(e.file.ends_with("p.yaml"), "error names the file: {e}");
            }
            errors.into_iter().map(|e| (e.key_path, e.reason)).collect()
        }
    }
}

/// Assert exactly one error at `key_path` whose reason contains `fragment`.
fn assert_one_error(text: &str, key_path: &str, fragment: &str) {
    let errors = errors_of(text);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:?}");
    assert_eq!(errors[0].0, key_path, "key path of {errors:?}");
    assert!(
        errors[0].1.contains(fragment),
        "reason {:?} should contain {fragment:?}",
        errors[0].1
    );
}

// ---- the example ----------------------------------------------------------------------

#[test]
fn example_loads_with_every_section() {
    let policy = Policy::load(&example_path()).unwrap();
    assert_eq!(policy.dataset(), "default");
    assert_eq!(policy.default_class(), Class::Internal);
    assert!(policy.access_control_enabled());
    assert_eq!(policy.roles().count(), 4);
    assert_eq!(policy.rules().len(), 7);
    let ssn = policy.column_rule("public", "customers", "ssn").unwrap();
    assert_eq!(
        ssn,
        &ColumnRule {
            class: Class::Restricted,
            mask: Mask::Last4,
            blind_index: Some("ssn_bidx".into()),
            encrypt: true
        }
    );
    let card = policy
        .column_rule("public", "customers", "card_number")
        .unwrap();
    assert_eq!((card.mask, card.encrypt), (Mask::First6Last4, true));
    assert!(
        !policy
            .column_rule("public", "customers", "email")
            .unwrap()
            .encrypt
    );
    for (table, class) in [
        ("customers", Class::Confidential),
        ("products", Class::Public),
        ("orders", Class::Confidential),
        ("tickets", Class::Internal),
        ("pgbench_accounts", Class::Confidential),
        ("pgbench_branches", Class::Internal),
        ("pgbench_tellers", Class::Internal),
        ("pgbench_history", Class::Internal),
    ] {
        assert_eq!(policy.table_class("public", table), class, "{table}");
        assert!(policy.is_classified("public", table));
    }
}

#[test]
fn example_rules_and_security_compile_to_typed_values() {
    let policy = Policy::load(&example_path()).unwrap();
    let after_hours = policy
        .rules()
        .iter()
        .find(|r| r.name == "after-hours")
        .unwrap();
    assert_eq!(
        after_hours.classes,
        vec![Class::Confidential, Class::Restricted]
    );
    let hours = after_hours.outside_hours.as_ref().unwrap();
    assert_eq!(hours.days, [true, true, true, true, true, false, false]);
    assert_eq!((hours.start_minute, hours.end_minute), (8 * 60, 18 * 60));
    assert_eq!(hours.zone, "Europe/Berlin");
    assert!(hours.includes_day(time::Weekday::Friday));
    assert!(!hours.includes_day(time::Weekday::Sunday));
    assert_eq!(after_hours.severity, Severity::Medium);
    let approval = policy
        .rules()
        .iter()
        .find(|r| r.name == "restricted-needs-approval")
        .unwrap();
    assert_eq!(
        approval.roles.as_deref(),
        Some(&["CUSTOMER_SUPPORT".to_string()][..])
    );
    assert!(approval.require_approval);
    assert_eq!(
        (approval.action, approval.severity),
        (RuleAction::Block, Severity::High)
    );
    let export = policy
        .rules()
        .iter()
        .find(|r| r.name == "bulk-export")
        .unwrap();
    assert_eq!(export.statement, Some(StatementKindMatch::CopyTo));
    let cross = policy
        .rules()
        .iter()
        .find(|r| r.name == "cross-class")
        .unwrap();
    assert_eq!(cross.classes.len(), 4, "no class: every class");
    assert_eq!(
        cross.classes_together,
        vec![Class::Restricted, Class::Confidential]
    );

    let logins = &policy.security().failed_logins;
    let five_minutes = std::time::Duration::from_secs(300);
    assert_eq!(
        logins.warn,
        Some(Rate {
            count: 5,
            window: five_minutes
        })
    );
    assert_eq!(
        logins.lock,
        Some(Rate {
            count: 10,
            window: five_minutes
        })
    );
    assert_eq!(
        logins.attack,
        Some(Rate {
            count: 50,
            window: five_minutes
        })
    );
    assert_eq!(logins.lock_for, std::time::Duration::from_secs(900));
    assert_eq!(logins.lock_scope, LockScope::UserAddress);
    let limit = &policy.security().rate_limit;
    assert_eq!(
        limit.per_user,
        Some(Rate {
            count: 1000,
            window: std::time::Duration::from_secs(60)
        })
    );
    assert_eq!(limit.total_alert.map(|r| r.count), Some(10_000));
}

#[test]
fn example_roles_and_principals() {
    let policy = Policy::load(&example_path()).unwrap();
    let names = |user: &str| {
        policy
            .roles_of(user)
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names("app_backend"), ["DATA_PROCESSOR"]);
    assert_eq!(names("support_bot"), ["CUSTOMER_SUPPORT"]);
    assert!(names("someone_else").is_empty(), "default_roles: []");
    let support = policy.role("CUSTOMER_SUPPORT").unwrap();
    let write_tickets = Permission {
        resource: Resource::Table {
            schema: NamePattern::Exact("public".into()),
            table: NamePattern::Exact("tickets".into()),
        },
        action: Action::Write,
    };
    assert!(support.permissions.iter().any(|p| p.covers(&write_tickets)));
    assert_eq!(write_tickets.to_string(), "table:public.tickets:write");
    let admin = policy.role("SYSTEM_ADMIN").unwrap();
    let ddl = Permission {
        resource: Resource::Ddl,
        action: Action::Execute,
    };
    assert!(admin.permissions.iter().any(|p| p.covers(&ddl)));
    let restricted_read = Permission {
        resource: Resource::Class(Class::Restricted),
        action: Action::Read,
    };
    assert!(!admin.permissions.iter().any(|p| p.covers(&restricted_read)));
}

#[test]
fn example_checks_without_warnings() {
    let policy = Policy::load(&example_path()).unwrap();
    assert_eq!(check(&policy), Vec::<Warning>::new());
}

// ---- shape errors: unknown keys, duplicate keys, invalid YAML ---------------------------

#[test]
fn unknown_key_at_top_level() {
    assert_one_error("datasett: x\n", "datasett", "unknown key \"datasett\"");
}

#[test]
fn unknown_key_in_table() {
    assert_one_error(
        "tables:\n  public.t: { clas: PUBLIC }\n",
        "tables.public.t.clas",
        "unknown key \"clas\"",
    );
}

#[test]
fn unknown_key_in_column_lists_expected_keys() {
    let text = "tables:\n  public.customers:\n    columns:\n      ssn: { class: RESTRICTED, maks: last4 }\n";
    assert_one_error(
        text,
        "tables.public.customers.columns.ssn.maks",
        "expected one of class, mask, blind_index, encrypt",
    );
}

#[test]
fn unknown_key_in_rule_and_security() {
    let text = "rules:\n  - { name: a, action: alert, rows_per_sesion: 5 }\n\
                security:\n  failed_logins: { wran: 5/5m }\n";
    let errors = errors_of(text);
    let paths: Vec<&str> = errors.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        paths,
        ["rules[0].rows_per_sesion", "security.failed_logins.wran"]
    );
}

#[test]
fn errors_in_several_tables_are_all_reported() {
    let text = "tables:\n  a: { clas: PUBLIC }\n  b: { class: SECRET }\n  c: { columns: { x: { mask: last5 } } }\n";
    let errors = errors_of(text);
    let paths: Vec<&str> = errors.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        paths,
        ["tables.a.clas", "tables.b.class", "tables.c.columns.x.mask"]
    );
}

#[test]
fn duplicate_key_at_top_level() {
    assert_one_error("dataset: a\ndataset: b\n", "dataset", "duplicate key");
}

#[test]
fn duplicate_table() {
    let text = "tables:\n  public.t: { class: PUBLIC }\n  public.t: { class: RESTRICTED }\n";
    assert_one_error(text, "tables.public.t", "duplicate key");
}

#[test]
fn duplicate_column_is_not_silently_dropped() {
    let text = "tables:\n  public.customers:\n    columns:\n      ssn: { class: RESTRICTED }\n      ssn: { class: PUBLIC }\n";
    assert_one_error(text, "tables.public.customers.columns.ssn", "duplicate key");
}

#[test]
fn duplicate_key_inside_a_rule_in_a_list() {
    let text = "rules:\n  - name: a\n    action: alert\n  - name: b\n    action: alert\n    action: block\n";
    assert_one_error(text, "rules[1].action", "duplicate key");
}

#[test]
fn duplicate_role_and_principal() {
    let text = "roles:\n  A: []\n  A: []\nprincipals:\n  u: [A]\n  u: [A]\n";
    let paths: Vec<String> = errors_of(text).into_iter().map(|e| e.0).collect();
    assert_eq!(paths, ["roles.A", "principals.u"]);
}

#[test]
fn same_table_written_two_ways_in_one_file() {
    let text =
        "tables:\n  customers: { class: PUBLIC }\n  public.customers: { class: RESTRICTED }\n";
    let errors = errors_of(text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].1.contains("already defined earlier in this file"),
        "{errors:?}"
    );
}

#[test]
fn invalid_yaml_reports_line_and_column() {
    let errors = errors_of("dataset: default\ntables: [\n  public.t: {\n");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].0.starts_with("line "), "{errors:?}");
    assert!(errors[0].0.contains(" column "), "{errors:?}");
    assert!(errors[0].1.starts_with("invalid YAML"), "{errors:?}");
}

#[test]
fn empty_file_and_comment_only_file() {
    assert_one_error("", "(document)", "file is empty");
    assert_one_error("# nothing yet\n", "(document)", "file is empty");
}

#[test]
fn top_level_must_be_a_mapping() {
    assert_one_error("- a\n- b\n", "(document)", "expected a mapping");
}

#[test]
fn wrong_type_is_reported_with_path() {
    let errors = errors_of("tables:\n  public.t:\n    columns:\n      x: { encrypt: maybe }\n");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "tables.public.t.columns.x.encrypt");
}

#[test]
fn yaml_tags_are_rejected() {
    let errors = errors_of("dataset: !secret foo\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].1.contains("tags"), "{errors:?}");
}

// ---- value errors ---------------------------------------------------------------------

#[test]
fn unknown_class() {
    assert_one_error(
        "default_class: SECRET\n",
        "default_class",
        "unknown class \"SECRET\"",
    );
    assert_one_error(
        "default_class: restricted\n",
        "default_class",
        "expected one of PUBLIC",
    );
}

#[test]
fn unknown_mask_message_matches_the_brief() {
    let text = "tables:\n  public.customers:\n    columns:\n      ssn: { class: RESTRICTED, mask: last5 }\n";
    let Err(PolicyErrors(errors)) = load_text(text) else {
        panic!("expected an error")
    };
    let line = errors[0].to_string();
    assert!(
        line.ends_with(
            "p.yaml: tables.public.customers.columns.ssn.mask: unknown mask \"last5\" \
             (expected one of last4, first6last4, redact, null, hash)"
        ),
        "{line}"
    );
}

#[test]
fn mask_null_is_the_null_mask_not_absent() {
    let policy =
        load_text("tables:\n  t:\n    columns:\n      c: { class: RESTRICTED, mask: null }\n")
            .unwrap();
    assert_eq!(
        policy.column_rule("public", "t", "c").unwrap().mask,
        Mask::Null
    );
}

#[test]
fn encrypt_only_for_restricted() {
    let text = "tables:\n  t:\n    columns:\n      c: { class: CONFIDENTIAL, encrypt: true }\n";
    assert_one_error(text, "tables.t.columns.c.encrypt", "only to RESTRICTED");
}

#[test]
fn encrypt_defaults_to_true_for_restricted_only() {
    let text = "tables:\n  t:\n    class: RESTRICTED\n    columns:\n      a: {}\n      b: { encrypt: false }\n      c: { class: INTERNAL }\n";
    let policy = load_text(text).unwrap();
    let rule = |c: &str| policy.column_rule("public", "t", c).unwrap().clone();
    assert_eq!(
        (rule("a").class, rule("a").encrypt, rule("a").mask),
        (Class::Restricted, true, Mask::Redact)
    );
    assert!(!rule("b").encrypt);
    assert!(!rule("c").encrypt);
    let warnings = check(&policy);
    assert!(
        warnings
            .iter()
            .any(|w| w.key_path == "tables.t.columns.b.encrypt"),
        "{warnings:?}"
    );
}

#[test]
fn blind_index_errors() {
    let same = "tables:\n  t:\n    columns:\n      c: { class: RESTRICTED, blind_index: c }\n";
    assert_one_error(same, "tables.t.columns.c.blind_index", "another column");
    let shared = "tables:\n  t:\n    columns:\n      a: { class: RESTRICTED, blind_index: x }\n      b: { class: RESTRICTED, blind_index: x }\n";
    assert_one_error(
        shared,
        "tables.t.columns.b.blind_index",
        "also used by column \"a\"",
    );
}

#[test]
fn bad_table_keys() {
    assert_one_error(
        "tables:\n  a.b.c: {}\n",
        "tables.a.b.c",
        "must be <schema.table>",
    );
    assert_one_error("tables:\n  .t: {}\n", "tables..t", "empty");
}

#[test]
fn unknown_role_in_principals() {
    let text = "roles:\n  A: [\"public:read\"]\nprincipals:\n  u: [A, B]\n";
    assert_one_error(
        text,
        "principals.u[1]",
        "unknown role \"B\" (defined roles: A)",
    );
}

#[test]
fn unknown_role_without_roles_key() {
    assert_one_error(
        "default_roles: [READER]\n",
        "default_roles[0]",
        "no roles are defined",
    );
}

#[test]
fn unknown_roles_in_rules() {
    let text = "roles: {A: []}\nrules:\n  - { name: r, roles: [A, X], except_roles: [Y], action: alert }\n";
    let paths: Vec<String> = errors_of(text).into_iter().map(|e| e.0).collect();
    assert_eq!(paths, ["rules[0].roles[1]", "rules[0].except_roles[0]"]);
}

#[test]
fn bad_permissions() {
    let text = "roles:\n  A: [\"restricted:raed\", \"ddl:read\", \"secret:read\", \"table:a.b.c:read\", \"public\", \"*:*\"]\n";
    let paths: Vec<String> = errors_of(text).into_iter().map(|e| e.0).collect();
    assert_eq!(
        paths,
        [
            "roles.A[0]",
            "roles.A[1]",
            "roles.A[2]",
            "roles.A[3]",
            "roles.A[4]"
        ]
    );
}

#[test]
fn bad_rate() {
    let text = "security:\n  failed_logins: { warn: 5/5x }\n";
    assert_one_error(text, "security.failed_logins.warn", "invalid rate \"5/5x\"");
    let text = "security:\n  rate_limit: { per_user: 0/1m, total_alert: ten/1m }\n";
    let paths: Vec<String> = errors_of(text).into_iter().map(|e| e.0).collect();
    assert_eq!(
        paths,
        [
            "security.rate_limit.per_user",
            "security.rate_limit.total_alert"
        ]
    );
}

#[test]
fn bad_lock_settings() {
    let text =
        "security:\n  failed_logins: { lock: 10/5m, lock_for: forever, lock_scope: address }\n";
    let paths: Vec<String> = errors_of(text).into_iter().map(|e| e.0).collect();
    assert_eq!(
        paths,
        [
            "security.failed_logins.lock_for",
            "security.failed_logins.lock_scope"
        ]
    );
}

#[test]
fn bad_outside_hours() {
    for bad in [
        "Mon-Fri 08:00-18:00",
        "Mon-Fry 08:00-18:00 Europe/Berlin",
        "Fri-Mon 08:00-18:00 Europe/Berlin",
        "Mon-Fri 8:00-18:00 Europe/Berlin",
        "Mon-Fri 08:00-25:00 Europe/Berlin",
        "Mon-Fri 08:00-08:00 Europe/Berlin",
        "Mon-Fri 08:00-18:00 europe berlin",
        "Mon-Fri 08:00-18:00 Europe//Berlin",
    ] {
        let text = format!("rules:\n  - {{ name: r, outside_hours: \"{bad}\", action: alert }}\n");
        assert_one_error(&text, "rules[0].outside_hours", "invalid outside_hours");
    }
}

#[test]
fn good_outside_hours_variants() {
    for (text, days) in [
        (
            "Mon,Wed,Fri 09:00-17:00 UTC",
            [true, false, true, false, true, false, false],
        ),
        (
            "Mon-Wed,Sat-Sun 22:00-06:00 America/Argentina/Buenos_Aires",
            [true, true, true, false, false, true, true],
        ),
        (
            "Sun 00:00-24:00 Etc/GMT+2",
            [false, false, false, false, false, false, true],
        ),
    ] {
        let yaml = format!("rules:\n  - {{ name: r, outside_hours: \"{text}\", action: alert }}\n");
        let policy = load_text(&yaml).unwrap();
        assert_eq!(
            policy.rules()[0].outside_hours.as_ref().unwrap().days,
            days,
            "{text}"
        );
    }
}

#[test]
fn rule_value_errors_are_all_reported() {
    let text = "rules:\n  - { name: a, class: SECRET, action: deny, severity: URGENT, mode: dry, statement: copy }\n  \
                - { name: a, rows_per_query: 0, classes_together: [RESTRICTED], action: block }\n  \
                - { class: [PUBLIC, PUBLIC], action: alert }\n  \
                - { name: d, at_least: true, action: alert }\n";
    let paths: Vec<String> = errors_of(text).into_iter().map(|e| e.0).collect();
    assert_eq!(
        paths,
        [
            "rules[0].class",
            "rules[0].action",
            "rules[0].severity",
            "rules[0].mode",
            "rules[0].statement",
            "rules[1].name",
            "rules[1].rows_per_query",
            "rules[1].classes_together",
            "rules[2].name",
            "rules[2].class[1]",
            "rules[3].at_least",
        ]
    );
}

#[test]
fn at_least_expands_to_higher_classes() {
    let policy =
        load_text("rules:\n  - { name: r, class: CONFIDENTIAL, at_least: true, action: alert }\n")
            .unwrap();
    assert_eq!(
        policy.rules()[0].classes,
        vec![Class::Confidential, Class::Restricted]
    );
}

#[test]
fn bad_dataset() {
    assert_one_error("dataset: my.data\n", "dataset", "invalid dataset");
}

#[test]
fn hostile_inputs_do_not_panic() {
    for text in [
        "\u{0}",
        "[",
        "a: &x [*x]",
        "? [a, b]\n: c\n",
        "tables: {? [a]: {}}\n",
        "tables:\n  t: [1, 2]\n",
        "rules: {a: b}\n",
        "rules:\n  - 5\n",
        "roles:\n  A: \"public:read\"\n",
        "---\na: 1\n---\nb: 2\n",
        "security: 7\n",
        "tables:\n  t:\n    columns:\n      c: { class: [PUBLIC] }\n",
        "rules:\n  - { name: r, outside_hours: \"Mon-Fri \u{e9}\u{e9}:00-18:00 UTC\", action: alert }\n",
        "rules:\n  - { name: r, outside_hours: \"Mon 08:00-18:00 Europe/\u{e9}\", action: alert }\n",
        "security:\n  failed_logins: { warn: \"5/99999999999999999999d\" }\n",
        "security:\n  failed_logins: { warn: \"5/\u{e9}m\" }\n",
    ] {
        let _ = load_text(text);
    }
}

// ---- directories ----------------------------------------------------------------------

#[test]
fn directory_merges_tables_in_name_order() {
    let dir = dir_with(&[
        (
            "20-more.yml",
            "tables:\n  public.orders: { class: CONFIDENTIAL }\n",
        ),
        (
            "10-base.yaml",
            "default_class: PUBLIC\ntables:\n  public.customers: { class: RESTRICTED }\n",
        ),
        ("notes.txt", "not: [yaml"),
        (".#10-base.yaml", "broken: ["),
    ]);
    let policy = Policy::load(dir.path()).unwrap();
    assert_eq!(policy.table_class("public", "customers"), Class::Restricted);
    assert_eq!(policy.table_class("public", "orders"), Class::Confidential);
    assert_eq!(policy.table_class("public", "other"), Class::Public);
    let sources: Vec<_> = policy
        .tables()
        .map(|t| t.source.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(sources, ["10-base.yaml", "20-more.yml"]);
}

#[test]
fn directory_duplicate_table_names_both_files() {
    let dir = dir_with(&[
        (
            "a.yaml",
            "tables:\n  public.customers: { class: RESTRICTED }\n",
        ),
        ("b.yaml", "tables:\n  customers: { class: PUBLIC }\n"),
    ]);
    let PolicyErrors(errors) = Policy::load(dir.path()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].file.ends_with("b.yaml"));
    assert_eq!(errors[0].key_path, "tables.customers");
    assert!(errors[0].reason.contains("a.yaml"), "{}", errors[0]);
}

#[test]
fn directory_single_sections_in_one_file_only() {
    let dir = dir_with(&[
        ("a.yaml", "roles: {A: []}\ndataset: x\n"),
        ("b.yaml", "roles: {B: []}\ndataset: y\n"),
    ]);
    let PolicyErrors(errors) = Policy::load(dir.path()).unwrap_err();
    let got: Vec<_> = errors
        .iter()
        .map(|e| (e.file.ends_with("b.yaml"), e.key_path.as_str()))
        .collect();
    assert_eq!(got, [(true, "dataset"), (true, "roles")]);
    assert!(errors[0].reason.contains("a.yaml"));
}

#[test]
fn directory_collects_errors_from_every_file() {
    let dir = dir_with(&[("a.yaml", "datasett: x\n"), ("b.yaml", "tables: [\n")]);
    let PolicyErrors(errors) = Policy::load(dir.path()).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].file.ends_with("a.yaml") && errors[1].file.ends_with("b.yaml"));
}

#[test]
fn empty_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let PolicyErrors(errors) = Policy::load(dir.path()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].reason.contains("no *.yaml"));
}

#[test]
fn missing_file_is_an_error_not_a_panic() {
    let PolicyErrors(errors) = Policy::load(Path::new("/nonexistent/policy.yaml")).unwrap_err();
    assert!(errors[0].reason.starts_with("cannot read"));
}

// ---- lookups ---------------------------------------------------------------------------

#[test]
fn lookups_fall_back_in_order() {
    let text =
        "default_class: CONFIDENTIAL\ntables:\n  t:\n    columns:\n      c: { class: PUBLIC }\n  \
                pg_catalog.pg_authid: { class: RESTRICTED }\n";
    let policy = load_text(text).unwrap();
    assert_eq!(
        policy.table_class("public", "t"),
        Class::Confidential,
        "listed without class: default_class"
    );
    assert_eq!(policy.column_class("public", "t", "c"), Class::Public);
    assert_eq!(
        policy.column_class("public", "t", "other"),
        Class::Confidential
    );
    assert_eq!(policy.table_class("pg_catalog", "pg_class"), Class::Public);
    assert_eq!(
        policy.table_class("information_schema", "tables"),
        Class::Public
    );
    assert_eq!(
        policy.table_class("pg_catalog", "pg_authid"),
        Class::Restricted,
        "catalogs may be classified"
    );
    assert_eq!(policy.table_class("other", "t"), Class::Confidential);
    assert!(policy.column_rule("public", "t", "other").is_none());
    assert!(
        !policy.is_classified("public", "T"),
        "names are matched exactly"
    );
}

#[test]
fn unclassified_policy() {
    let policy = Policy::unclassified();
    assert_eq!(policy.table_class("public", "x"), Class::Internal);
    assert!(!policy.access_control_enabled());
    assert!(check(&policy).is_empty());
}

#[test]
fn without_roles_access_control_is_off() {
    let policy = load_text("dataset: d\n").unwrap();
    assert!(!policy.access_control_enabled());
    assert!(policy.roles_of("anyone").is_empty());
}

#[test]
fn empty_roles_turn_access_control_on() {
    let policy = load_text("roles: {}\n").unwrap();
    assert!(policy.access_control_enabled());
    assert!(policy.roles_of("anyone").is_empty());
}

#[test]
fn default_roles_apply_to_unlisted_users() {
    let policy =
        load_text("roles: {R: [\"public:read\"]}\ndefault_roles: [R]\nprincipals: {admin: []}\n")
            .unwrap();
    assert_eq!(policy.roles_of("stranger").len(), 1);
    assert!(
        policy.roles_of("admin").is_empty(),
        "a listed user gets exactly their roles"
    );
}

// ---- check -----------------------------------------------------------------------------

#[test]
fn check_warns_about_wildcard_restricted_read() {
    let text = "tables:\n  t:\n    columns:\n      c: { class: RESTRICTED }\n\
                roles:\n  OPS: [\"*:read\"]\n  ALL: [\"*:*\"]\n  OK: [\"*:*\", \"restricted:read\"]\n  TBL: [\"table:public.*:read\"]\n";
    let policy = load_text(text).unwrap();
    let warnings = check(&policy);
    let paths: Vec<&str> = warnings.iter().map(|w| w.key_path.as_str()).collect();
    assert_eq!(
        paths,
        ["roles.ALL", "roles.OPS", "roles.TBL"],
        "{warnings:?}"
    );
    assert!(warnings[0]
        .to_string()
        .contains("p.yaml: roles.ALL: gets restricted:read only through the wildcard *:*"));
}

#[test]
fn check_warns_about_rules_that_never_match() {
    let text = "roles: {A: []}\nrules:\n  - { name: nobody, roles: [], action: alert }\n  \
                - { name: excluded, roles: [A], except_roles: [A], action: alert }\n  \
                - { name: no-restricted, class: RESTRICTED, action: alert }\n  \
                - { name: dry, mode: monitor, action: alert }\n";
    let policy = load_text(text).unwrap();
    let warnings = check(&policy);
    let paths: Vec<&str> = warnings.iter().map(|w| w.key_path.as_str()).collect();
    assert_eq!(
        paths,
        ["rules[0]", "rules[1]", "rules[2]", "rules[3]"],
        "{warnings:?}"
    );
}

#[test]
fn check_warns_about_ineffective_settings() {
    let text = "tables:\n  t:\n    class: RESTRICTED\n  u:\n    columns:\n      c: { class: INTERNAL, mask: hash }\n      \
                d: { class: RESTRICTED }\n\
                security:\n  failed_logins: { warn: 10/5m, lock: 5/5m }\n";
    let policy = load_text(text).unwrap();
    let warnings = check(&policy);
    let paths: Vec<&str> = warnings.iter().map(|w| w.key_path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "tables.u.columns.c.mask",
            "tables.t",
            "tables.u",
            "security.failed_logins.warn"
        ],
        "{warnings:?}"
    );
}

/// Why `dupes.rs` exists: serde_yaml keeps the last of two equal keys when the target is a
/// map. If this ever fails, serde_yaml changed and the walker may be simplified.
#[test]
fn serde_yaml_alone_keeps_the_last_duplicate_in_maps() {
    let map: std::collections::BTreeMap<String, u8> = serde_yaml::from_str("a: 1\na: 2\n").unwrap();
    assert_eq!(map.get("a"), Some(&2));
}

#[test]
fn shape_errors_do_not_leak_internal_type_names() {
    let errors = errors_of("rules:\n  - 5\n");
    assert_eq!(
        errors,
        [(
            "rules[0]".to_string(),
            "invalid type: integer `5`, expected a mapping".to_string()
        )]
    );
    let errors = errors_of("roles:\n  A: \"public:read\"\n");
    assert_eq!(
        errors[0].1,
        "invalid type: string \"public:read\", expected a list"
    );
}

#[test]
fn principals_without_roles_are_flagged_by_check() {
    let policy = load_text("principals: {u: []}\n").unwrap();
    let warnings = check(&policy);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].key_path, "principals");
}
