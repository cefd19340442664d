//! Permission derivation and masking against the example policy's roles (SPEC 5, S-06).

use super::*;

#[test]
fn support_bot_reads_customer_email() {
    let engine = example();
    let v = decide(
        &engine,
        &select(&engine, "support_bot", "customers", &["email"]),
    );
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.sqlstate, None);
    assert_eq!(
        v.permissions_required,
        ["confidential:read|table:public.customers:read"]
    );
    assert!(v
        .permissions_held
        .contains(&"confidential:read".to_string()));
    assert!(v.masked_columns.is_empty());
    assert_eq!(v.classes, classes(&[Class::Confidential]));
}

/// S-06: a denied statement names required versus held permissions.
#[test]
fn support_bot_writing_customers_is_denied_with_required_and_held() {
    let engine = example();
    let access = write(
        &engine,
        StatementKind::Update,
        "support_bot",
        "customers",
        &["email"],
    );
    let v = decide(&engine, &access);
    assert_eq!(v.decision, Decision::Block);
    assert_eq!(v.sqlstate, Some(SQLSTATE_DENIED));
    assert_eq!(
        v.message,
        "permission denied: requires confidential:write or table:public.customers:write"
    );
    assert_eq!(
        v.permissions_required,
        ["confidential:write|table:public.customers:write"]
    );
    assert_eq!(
        v.permissions_held,
        [
            "confidential:read",
            "internal:read",
            "public:read",
            "table:public.tickets:write"
        ]
    );
    assert!(v.row_limits.is_empty(), "a blocked statement never runs");
}

#[test]
fn support_bot_reading_ssn_is_masked_not_refused() {
    // Without the example's approval rule the only effect is the mask.
    let engine = engine_with_rules("  []");
    let v = decide(
        &engine,
        &select(&engine, "support_bot", "customers", &["id", "ssn"]),
    );
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(
        v.masked_columns,
        [("public.customers".to_string(), "ssn".to_string())]
    );
    assert_eq!(
        v.permissions_required,
        ["confidential:read|table:public.customers:read"],
        "restricted:read is not required: the mask replaces it"
    );
    assert_eq!(
        v.classes,
        classes(&[Class::Confidential, Class::Restricted])
    );
}

#[test]
fn support_bot_reading_ssn_in_example_needs_an_approval() {
    let engine = example();
    let access = select(&engine, "support_bot", "customers", &["ssn"]);
    let v = decide(&engine, &access);
    assert_eq!(v.decision, Decision::Block);
    assert_eq!(v.sqlstate, Some(SQLSTATE_DENIED));
    assert!(
        v.message.contains("restricted-needs-approval"),
        "{}",
        v.message
    );
    assert_eq!(v.masked_columns.len(), 1, "the permission side still masks");

    let approval = Approval {
        user: "support_bot".into(),
        class: Some(Class::Restricted),
        table: None,
        expires_at: BUSINESS + time::Duration::hours(1),
    };
    let v = engine.decide_before(&access, &SessionUsage::default(), &[approval], BUSINESS);
    assert_eq!(v.decision, Decision::Alert);
    assert_eq!(hit_names(&v), ["restricted-any-access"]);
    assert_eq!(
        v.masked_columns.len(),
        1,
        "an approval lifts the rule, not the mask"
    );
}

#[test]
fn app_backend_can_copy_to() {
    let engine = example();
    let mut access = select(&engine, "app_backend", "products", &[]);
    access.kind = StatementKind::CopyTo;
    let v = decide(&engine, &access);
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(
        v.permissions_required,
        ["data:export", "public:read|table:public.products:read"]
    );
    assert!(v.permissions_held.contains(&"data:export".to_string()));
}

#[test]
fn copy_to_without_data_export_is_denied() {
    let engine = example();
    let mut access = select(&engine, "support_bot", "products", &[]);
    access.kind = StatementKind::CopyTo;
    let v = decide(&engine, &access);
    assert_eq!(v.decision, Decision::Block);
    assert!(v.message.contains("data:export"), "{}", v.message);
}

#[test]
fn user_not_in_principals_is_denied_by_default() {
    let engine = example();
    let v = decide(&engine, &select(&engine, "mallory", "products", &["name"]));
    assert_eq!(v.decision, Decision::Block);
    assert_eq!(v.sqlstate, Some(SQLSTATE_DENIED));
    assert!(v.permissions_held.is_empty());
    assert_eq!(
        v.permissions_required,
        ["public:read|table:public.products:read"]
    );
}

#[test]
fn catalogs_are_public_and_need_public_read() {
    let engine = example();
    let class = engine.policy().table_class("pg_catalog", "pg_class");
    assert_eq!(class, Class::Public);
    let access = Access::new(StatementKind::Select, "support_bot", "10.0.0.1")
        .table("pg_catalog", "pg_class", class, false)
        .column("pg_catalog", "pg_class", "relname", class, false);
    let v = decide(&engine, &access);
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(
        v.permissions_required,
        ["public:read|table:pg_catalog.pg_class:read"]
    );
    let mut stranger = access;
    stranger.user = "mallory".into();
    assert_eq!(decide(&engine, &stranger).decision, Decision::Block);
}

#[test]
fn statements_touching_no_data_need_nothing() {
    let engine = example();
    for kind in [
        StatementKind::Set,
        StatementKind::Transaction,
        StatementKind::Select,
    ] {
        let v = decide(&engine, &Access::new(kind, "mallory", "10.0.0.1"));
        assert_eq!(v.decision, Decision::Allow, "{kind:?}");
        assert!(v.permissions_required.is_empty());
        assert!(v.rules.is_empty(), "no data touched, no rule matches");
    }
}

#[test]
fn table_permission_suffices_in_place_of_the_class_one() {
    let engine = example();
    let access = write(
        &engine,
        StatementKind::Insert,
        "support_bot",
        "tickets",
        &["subject"],
    );
    let v = decide(&engine, &access);
    assert_eq!(v.decision, Decision::Allow, "{}", v.message);
    assert_eq!(
        v.permissions_required,
        ["internal:write|table:public.tickets:write"]
    );
}

#[test]
fn column_less_sensitive_than_its_table_needs_only_its_own_class() {
    let engine = engine_with_rules("  []");
    // auditor holds internal:read only; created_at is INTERNAL inside a CONFIDENTIAL table.
    let v = decide(
        &engine,
        &select(&engine, "auditor", "customers", &["created_at"]),
    );
    assert_eq!(v.decision, Decision::Allow, "{}", v.message);
    // Without a column list (count(*)) the table's own class counts.
    let v = decide(&engine, &select(&engine, "auditor", "customers", &[]));
    assert_eq!(v.decision, Decision::Block);
    assert!(v.message.contains("confidential:read"));
}

#[test]
fn whole_row_delete_needs_write_on_every_listed_class() {
    let engine = engine_with_rules("  []");
    let delete = |user: &str| write(&engine, StatementKind::Delete, user, "customers", &[]);
    let v = decide(&engine, &delete("app_backend"));
    assert_eq!(v.decision, Decision::Allow, "{}", v.message);
    assert!(v
        .permissions_required
        .contains(&"restricted:write|table:public.customers:write".to_string()));
    let v = decide(&engine, &delete("support_bot"));
    assert_eq!(v.decision, Decision::Block);
    assert!(v.message.contains("restricted:write"), "{}", v.message);
    assert!(v.message.contains("confidential:write"), "{}", v.message);
}

#[test]
fn restricted_read_copied_server_side_is_refused_not_masked() {
    let engine = engine_with_rules("  []");
    // INSERT INTO tickets(subject) SELECT ssn FROM customers: no row reaches the client to mask.
    let access = write(
        &engine,
        StatementKind::Insert,
        "support_bot",
        "tickets",
        &["subject"],
    )
    .table("public", "customers", Class::Confidential, false)
    .column("public", "customers", "ssn", Class::Restricted, false);
    let v = decide(&engine, &access);
    assert_eq!(v.decision, Decision::Block);
    assert!(v.message.contains("restricted:read"), "{}", v.message);
    assert!(v.masked_columns.is_empty());
}

#[test]
fn ddl_needs_ddl_execute() {
    let engine = engine_with_rules("  []");
    let ddl = |user: &str| {
        Access::new(StatementKind::Ddl, user, "10.0.0.1").table(
            "public",
            "tickets",
            Class::Internal,
            false,
        )
    };
    let v = decide(&engine, &ddl("admin"));
    assert_eq!(v.decision, Decision::Allow, "{}", v.message);
    assert!(v.permissions_required.contains(&"ddl:execute".to_string()));
    let v = decide(&engine, &ddl("support_bot"));
    assert_eq!(v.decision, Decision::Block);
    assert_eq!(v.message, "permission denied: requires ddl:execute");
}

#[test]
fn unparsed_statement_needs_read_and_write() {
    let engine = engine_with_rules("  []");
    let access = Access::new(StatementKind::Unparsed, "support_bot", "10.0.0.1").table(
        "public",
        "products",
        Class::Public,
        false,
    );
    let v = decide(&engine, &access);
    assert_eq!(v.decision, Decision::Block);
    assert!(v.message.contains("public:write"), "{}", v.message);
}

#[test]
fn without_roles_access_control_is_off() {
    let engine = Engine::new(policy_from(
        "tables:\n  public.customers:\n    class: CONFIDENTIAL\n    columns:\n      ssn: { class: RESTRICTED }\n",
    ))
    .expect("no zones to resolve");
    let access = write(
        &engine,
        StatementKind::Update,
        "anyone",
        "customers",
        &["ssn"],
    )
    .column("public", "customers", "ssn", Class::Restricted, false);
    let v = decide(&engine, &access);
    assert_eq!(v.decision, Decision::Allow);
    assert!(v.masked_columns.is_empty(), "plaintext for everyone");
    assert!(v.permissions_held.is_empty());
    assert_eq!(
        v.permissions_required,
        [
            "restricted:read|table:public.customers:read",
            "restricted:write|table:public.customers:write"
        ],
        "still listed for the audit"
    );
}

#[test]
fn statement_kind_converts_one_to_one() {
    use crate::policy::StatementKindMatch;
    let kinds = [
        StatementKind::Select,
        StatementKind::Insert,
        StatementKind::Update,
        StatementKind::Delete,
        StatementKind::Merge,
        StatementKind::CopyTo,
        StatementKind::CopyFrom,
        StatementKind::Ddl,
        StatementKind::Set,
        StatementKind::Transaction,
        StatementKind::Other,
        StatementKind::Unparsed,
    ];
    for (kind, name) in kinds.iter().zip(StatementKindMatch::NAMES) {
        assert_eq!(
            StatementKindMatch::from(*kind),
            StatementKindMatch::parse(name).unwrap()
        );
        // Same snake_case name as the audit trail's statement_kind.
        assert_eq!(serde_json::to_value(kind).unwrap(), name);
    }
}
