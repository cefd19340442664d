//! End-to-end tests of `analyze`: kinds, relations, columns, effects and the never-panic
//! property, on realistic statements from drivers, tools and the cases file.

use super::*;

fn one(text: &str) -> StatementInfo {
    let analysis = analyze(text);
    assert_eq!(analysis.statements.len(), 1, "{text}: {analysis:?}");
    analysis
        .statements
        .into_iter()
        .next()
        .unwrap_or_else(|| unreachable!())
}

#[test]
fn empty_texts_have_no_statements() {
    for text in ["", ";", "  ;; ", "-- only a comment", "/* c */"] {
        assert!(analyze(text).statements.is_empty(), "{text:?}");
    }
}

#[test]
fn pgbench_select_smoke() {
    let info = one("SELECT abalance FROM pgbench_accounts WHERE aid = $1");
    assert_eq!(info.kind, StatementKind::Select);
}

fn rel(name: &str) -> RelationName {
    match name.split_once('.') {
        Some((schema, table)) => RelationName {
            schema: Some(schema.into()),
            name: table.into(),
        },
        None => RelationName {
            schema: None,
            name: name.into(),
        },
    }
}

fn rels(info: &StatementInfo) -> Vec<String> {
    info.relations
        .iter()
        .map(|r| match &r.schema {
            Some(s) => format!("{s}.{}", r.name),
            None => r.name.clone(),
        })
        .collect()
}

/// Columns as `table.column` / `?.column`, with a `w:` prefix for writes.
fn cols(info: &StatementInfo) -> Vec<String> {
    info.columns
        .iter()
        .map(|c| {
            let table = c
                .relation
                .as_ref()
                .map_or("?".to_string(), |r| match &r.schema {
                    Some(s) => format!("{s}.{}", r.name),
                    None => r.name.clone(),
                });
            let prefix = if c.write { "w:" } else { "" };
            format!("{prefix}{table}.{}", c.column)
        })
        .collect()
}

#[test]
fn pgbench_statements() {
    let select = one("SELECT abalance FROM pgbench_accounts WHERE aid = $1");
    assert_eq!(rels(&select), ["pgbench_accounts"]);
    assert_eq!(
        cols(&select),
        ["pgbench_accounts.abalance", "pgbench_accounts.aid"]
    );
    assert_eq!(
        select.normalized,
        "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
    );

    let update = one("UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2");
    assert_eq!(update.kind, StatementKind::Update);
    assert_eq!(
        cols(&update),
        [
            "w:pgbench_accounts.abalance",
            "pgbench_accounts.abalance",
            "pgbench_accounts.aid"
        ]
    );

    let insert = one("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)");
    assert_eq!(insert.kind, StatementKind::Insert);
    assert_eq!(rels(&insert), ["pgbench_history"]);
    assert_eq!(
        cols(&insert),
        [
            "w:pgbench_history.tid",
            "w:pgbench_history.bid",
            "w:pgbench_history.aid",
            "w:pgbench_history.delta",
            "w:pgbench_history.mtime"
        ]
    );

    let tellers = one("UPDATE pgbench_tellers SET tbalance = tbalance + 5 WHERE tid = 3");
    assert_eq!(
        tellers.normalized,
        "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2"
    );
}

#[test]
fn multi_statement_text() {
    let analysis = analyze("BEGIN; SELECT 1; UPDATE t SET a = 'x;y'; COMMIT;");
    let kinds: Vec<StatementKind> = analysis.statements.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            StatementKind::Transaction,
            StatementKind::Select,
            StatementKind::Update,
            StatementKind::Transaction
        ]
    );
    assert_eq!(analysis.statements[2].normalized, "UPDATE t SET a = $1");
}

#[test]
fn kinds_of_many_statements() {
    use StatementKind::*;
    let cases = [
        ("SELECT 1", Select),
        ("VALUES (1, 2)", Select),
        ("SHOW search_path", Select),
        ("EXPLAIN SELECT * FROM t", Select),
        ("EXPLAIN UPDATE t SET a = 1", Other),
        ("EXPLAIN ANALYZE UPDATE t SET a = 1", Update),
        ("DECLARE c CURSOR FOR SELECT * FROM t", Select),
        ("FETCH 10 FROM c", Select),
        ("INSERT INTO t VALUES (1)", Insert),
        ("DELETE FROM t WHERE a = 1", Delete),
        (
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a",
            Merge,
        ),
        ("COPY t TO STDOUT", CopyTo),
        ("COPY (SELECT a FROM t) TO STDOUT", CopyTo),
        ("COPY t (a, b) FROM STDIN", CopyFrom),
        ("CREATE TABLE t (a int)", Ddl),
        ("ALTER TABLE t ADD COLUMN b int", Ddl),
        ("DROP TABLE t", Ddl),
        ("TRUNCATE t", Ddl),
        ("GRANT SELECT ON t TO bob", Ddl),
        ("REVOKE SELECT ON t FROM bob", Ddl),
        ("COMMENT ON TABLE t IS 'x'", Ddl),
        ("CREATE INDEX i ON t (a)", Ddl),
        ("SET search_path TO app", Set),
        ("RESET search_path", Set),
        ("SELECT set_config('search_path', 'a', false)", Set),
        ("BEGIN", Transaction),
        ("START TRANSACTION", Transaction),
        ("COMMIT", Transaction),
        ("ROLLBACK", Transaction),
        ("SAVEPOINT s", Transaction),
        ("RELEASE SAVEPOINT s", Transaction),
        ("ROLLBACK TO SAVEPOINT s", Transaction),
        ("LISTEN ch", Other),
        ("NOTIFY ch", Other),
        ("DISCARD ALL", Other),
        ("DEALLOCATE p", Other),
        ("VACUUM t", Other),
        ("CALL p(1)", Other),
        ("EXECUTE p(1)", Other),
        ("LOCK TABLE t", Other),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(text, kind)| one(text).kind != *kind)
        .map(|(text, kind)| format!("{text}: {:?} != {kind:?}", one(text).kind))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn prepare_uses_inner_statement() {
    let info = one("PREPARE q (int) AS UPDATE customers SET ssn = $2 WHERE id = $1");
    assert_eq!(info.kind, StatementKind::Update);
    assert_eq!(rels(&info), ["customers"]);
    assert!(cols(&info).contains(&"w:customers.ssn".to_string()));
}

#[test]
fn q01_valid_postgres_that_sqlparser_rejects() {
    // Each is recorded as Unparsed (sqlparser 0.64 rejects it); relations still come from
    // the lexer so the proxy can refuse writes naming encrypted tables.
    let insert =
        one("INSERT INTO customers(id, ssn) SELECT 1, '111-22-3333' ON CONFLICT DO NOTHING");
    let do_block =
        one("DO $$ BEGIN INSERT INTO customers(id, ssn) VALUES (2, '111-22-3333'); END $$");
    let begin = one("BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE");
    let set_tx = one("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE");
    let uescape = one("SELECT U&'d!0061t' UESCAPE '!'");
    for info in [&insert, &do_block, &begin, &set_tx, &uescape] {
        assert_eq!(info.kind, StatementKind::Unparsed, "{info:?}");
        assert!(!info.normalized.contains("111-22-3333"));
    }
    assert_eq!(rels(&insert), ["customers"]);
    assert_eq!(rels(&do_block), ["customers"]);
    assert!(rels(&begin).is_empty());
    assert!(rels(&set_tx).is_empty());
    assert!(rels(&uescape).is_empty());
    assert_eq!(uescape.normalized, "SELECT $1");
}

#[test]
fn table_command_is_rejected_by_sqlparser() {
    // `TABLE name` is valid Postgres (same as SELECT * FROM name) but sqlparser 0.64's
    // PostgreSqlDialect rejects it; the lexer fallback still names the relation.
    let info = one("TABLE Customers");
    assert_eq!(info.kind, StatementKind::Unparsed);
    assert_eq!(rels(&info), ["customers"]);
}

#[test]
fn q03_comments_and_tags() {
    let analysis = analyze("/* actor='alice',request_id='r-42' */ SELECT ssn FROM customers");
    assert_eq!(analysis.tags.actor.as_deref(), Some("alice"));
    assert_eq!(analysis.tags.request_id.as_deref(), Some("r-42"));
    assert_eq!(
        analysis.statements[0].normalized,
        "SELECT ssn FROM customers"
    );
    assert_eq!(rels(&analysis.statements[0]), ["customers"]);

    let dont = one("SELECT 1 -- don't");
    assert_eq!(dont.kind, StatementKind::Select);
    assert_eq!(dont.normalized, "SELECT $1");
}

#[test]
fn q04_names_fold_like_postgres() {
    let upper = one("SELECT SSN FROM CUSTOMERS");
    assert_eq!(upper.relations, [rel("customers")]);
    assert_eq!(cols(&upper), ["customers.ssn"]);
    let quoted = one(r#"SELECT "SSN" FROM "Customers""#);
    assert_eq!(quoted.relations, [rel("Customers")]);
    assert_eq!(cols(&quoted), ["Customers.SSN"]);
    let qualified = one("SELECT c.ssn FROM Public.Customers c");
    assert_eq!(qualified.relations, [rel("public.customers")]);
    assert_eq!(cols(&qualified), ["public.customers.ssn"]);
    let three_part = one("SELECT ssn FROM mydb.app.customers");
    assert_eq!(three_part.relations, [rel("app.customers")]);
}

#[test]
fn joins_resolve_aliases() {
    let info = one(
        "SELECT c.name, o.total, amount FROM customers c JOIN orders AS o ON o.customer_id = c.id \
         LEFT JOIN app.items i USING (order_id) WHERE c.ssn = $1 ORDER BY o.total",
    );
    assert_eq!(rels(&info), ["customers", "orders", "app.items"]);
    assert_eq!(
        cols(&info),
        [
            "customers.name",
            "orders.total",
            "?.amount",
            "orders.customer_id",
            "customers.id",
            "customers.ssn"
        ]
    );
}

#[test]
fn unaliased_qualifiers_resolve_to_tables() {
    let info = one("SELECT customers.ssn, public.orders.total FROM customers, public.orders");
    assert_eq!(cols(&info), ["customers.ssn", "public.orders.total"]);
}

#[test]
fn ctes_are_not_relations() {
    let info = one(
        "WITH recent AS (SELECT id, ssn FROM customers WHERE created > now() - interval '1 day') \
         SELECT r.ssn FROM recent r JOIN orders o ON o.cid = r.id",
    );
    assert_eq!(rels(&info), ["customers", "orders"]);
    assert!(cols(&info).contains(&"customers.ssn".to_string()));
    assert!(cols(&info).contains(&"?.ssn".to_string()));
}

#[test]
fn cte_named_like_a_table_only_shadows_in_scope() {
    let info = one(
        "SELECT * FROM (WITH customers AS (SELECT 1 AS a) SELECT a FROM customers) x, customers",
    );
    assert_eq!(rels(&info), ["customers"]);
    let self_ref = one("WITH customers AS (SELECT * FROM customers) SELECT * FROM customers");
    assert_eq!(rels(&self_ref), ["customers"]);
}

#[test]
fn subqueries_and_correlation() {
    let info = one(
        "SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.cid = c.id) \
         AND id IN (SELECT cid FROM vip)",
    );
    assert_eq!(rels(&info), ["customers", "orders", "vip"]);
    let c = cols(&info);
    for expected in ["customers.name", "orders.cid", "customers.id", "vip.cid"] {
        assert!(c.contains(&expected.to_string()), "{expected} in {c:?}");
    }
}

#[test]
fn derived_tables() {
    let info = one("SELECT x.ssn FROM (SELECT ssn FROM customers) AS x");
    assert_eq!(rels(&info), ["customers"]);
    // The visitor reaches the SELECT list before the FROM clause.
    assert_eq!(cols(&info), ["?.ssn", "customers.ssn"]);
}

#[test]
fn table_functions_are_not_relations() {
    let info = one("SELECT g FROM generate_series(1, 10) AS g");
    assert!(info.relations.is_empty(), "{info:?}");
    let unnest = one("SELECT u FROM unnest(ARRAY[1, 2]) u, customers");
    assert_eq!(rels(&unnest), ["customers"]);
}

#[test]
fn select_star_has_no_columns() {
    let info = one("SELECT * FROM customers");
    assert!(info.columns.is_empty());
    let q = one("SELECT c.* FROM customers c");
    assert!(q.columns.is_empty());
}

#[test]
fn order_by_output_alias_is_not_a_column() {
    let info = one("SELECT upper(name) AS n FROM customers ORDER BY n");
    assert_eq!(cols(&info), ["customers.name"]);
}

#[test]
fn q06_writes_that_bypass_naive_rewriters() {
    let insert_select = one("INSERT INTO customers SELECT * FROM staging");
    assert_eq!(insert_select.kind, StatementKind::Insert);
    assert_eq!(rels(&insert_select), ["customers", "staging"]);
    assert!(insert_select.columns.is_empty());

    let update = one("UPDATE customers SET ssn = other_col");
    assert_eq!(cols(&update), ["w:customers.ssn", "customers.other_col"]);

    let cte =
        one("WITH x AS (UPDATE customers SET ssn = $1 WHERE id = $2 RETURNING *) SELECT * FROM x");
    assert_eq!(cte.kind, StatementKind::Update);
    assert_eq!(rels(&cte), ["customers"]);
    assert_eq!(cols(&cte), ["w:customers.ssn", "customers.id"]);

    let same_param = one("UPDATE customers SET ssn = $1 WHERE ssn = $1");
    assert_eq!(cols(&same_param), ["w:customers.ssn", "customers.ssn"]);

    let upsert = one(
        "INSERT INTO customers (id, ssn) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET ssn = EXCLUDED.ssn",
    );
    assert_eq!(
        cols(&upsert),
        ["w:customers.id", "w:customers.ssn", "customers.ssn"]
    );
}

#[test]
fn update_from_and_delete_using() {
    let update = one(
        "UPDATE customers c SET name = s.name FROM staging s WHERE s.id = c.id RETURNING c.ssn",
    );
    assert_eq!(rels(&update), ["customers", "staging"]);
    assert_eq!(
        cols(&update),
        [
            "w:customers.name",
            "staging.name",
            "staging.id",
            "customers.id",
            "customers.ssn"
        ]
    );
    let delete = one("DELETE FROM customers c USING banned b WHERE b.id = c.id");
    assert_eq!(delete.kind, StatementKind::Delete);
    assert_eq!(rels(&delete), ["customers", "banned"]);
}

#[test]
fn merge_reads_and_writes() {
    let info = one("MERGE INTO customers t USING staging s ON t.id = s.id \
         WHEN MATCHED THEN UPDATE SET ssn = s.ssn \
         WHEN NOT MATCHED THEN INSERT (id, ssn) VALUES (s.id, s.ssn)");
    assert_eq!(rels(&info), ["customers", "staging"]);
    let c = cols(&info);
    for expected in [
        "w:customers.ssn",
        "w:customers.id",
        "staging.ssn",
        "customers.id",
    ] {
        assert!(c.contains(&expected.to_string()), "{expected} in {c:?}");
    }
}

#[test]
fn copy_targets_and_columns() {
    let to = one("COPY customers (id, ssn) TO STDOUT");
    assert_eq!(rels(&to), ["customers"]);
    assert_eq!(cols(&to), ["customers.id", "customers.ssn"]);
    let from = one("COPY app.customers (ssn) FROM STDIN WITH (FORMAT csv)");
    assert_eq!(cols(&from), ["w:app.customers.ssn"]);
    let query = one("COPY (SELECT ssn FROM customers) TO STDOUT");
    assert_eq!(query.kind, StatementKind::CopyTo);
    assert_eq!(cols(&query), ["customers.ssn"]);
}

#[test]
fn ddl_relations() {
    assert_eq!(rels(&one("TRUNCATE a, app.b")), ["a", "app.b"]);
    assert_eq!(rels(&one("DROP TABLE IF EXISTS a, b")), ["a", "b"]);
    assert_eq!(
        rels(&one("ALTER TABLE Customers ADD COLUMN x int")),
        ["customers"]
    );
    assert_eq!(rels(&one("CREATE INDEX ON customers (ssn)")), ["customers"]);
    assert_eq!(
        rels(&one("LOCK TABLE customers IN SHARE MODE")),
        ["customers"]
    );
    assert_eq!(
        rels(&one("GRANT SELECT ON customers TO bob")),
        ["customers"]
    );
    assert_eq!(
        rels(&one("COMMENT ON COLUMN customers.ssn IS 'pii'")),
        ["customers"]
    );
    let ctas = one("CREATE TABLE copy AS SELECT ssn FROM customers");
    assert_eq!(rels(&ctas), ["copy", "customers"]);
    assert_eq!(cols(&ctas), ["customers.ssn"]);
    let view = one("CREATE VIEW v AS SELECT ssn FROM customers");
    assert_eq!(rels(&view), ["v", "customers"]);
}

#[test]
fn session_effects_from_statements() {
    let info = one("SET search_path TO app, public");
    assert_eq!(
        info.effects,
        [SessionEffect::SearchPath(vec![
            "app".into(),
            "public".into()
        ])]
    );
    let temp = one("CREATE TEMP TABLE customers (id int)");
    assert_eq!(temp.kind, StatementKind::Ddl);
    assert_eq!(temp.effects, [SessionEffect::TempTable("customers".into())]);
    let actor = one("SET pgvigil.actor = 'alice'");
    assert_eq!(actor.kind, StatementKind::Set);
    assert_eq!(actor.effects, [SessionEffect::Actor(Some("alice".into()))]);
    assert!(!actor.normalized.contains("alice"));
    let config = one("SELECT set_config('search_path', 'a, b', false)");
    assert_eq!(config.kind, StatementKind::Set);
    assert_eq!(
        config.effects,
        [SessionEffect::SearchPath(vec!["a".into(), "b".into()])]
    );
    assert_eq!(one("DISCARD ALL").effects, [SessionEffect::ResetAll]);
    assert_eq!(one("RESET ALL").effects, [SessionEffect::ResetAll]);
}

#[test]
fn q02_psql_describe_table_query() {
    // What psql sends for `\d customers` (first query of the describe sequence).
    let info = one(
        "SELECT c.oid,\n  n.nspname,\n  c.relname\nFROM pg_catalog.pg_class c\n     \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n\
         WHERE c.relname OPERATOR(pg_catalog.~) '^(customers)$' COLLATE pg_catalog.default\n  \
         AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 2, 3;",
    );
    assert_eq!(info.kind, StatementKind::Select);
    assert_eq!(
        rels(&info),
        ["pg_catalog.pg_class", "pg_catalog.pg_namespace"]
    );
    let c = cols(&info);
    for expected in [
        "pg_catalog.pg_class.oid",
        "pg_catalog.pg_namespace.nspname",
        "pg_catalog.pg_class.relname",
        "pg_catalog.pg_class.relnamespace",
    ] {
        assert!(c.contains(&expected.to_string()), "{expected} in {c:?}");
    }
    assert!(!info.normalized.contains("customers"));
}

#[test]
fn q02_psql_describe_columns_query() {
    let info = one(
        "SELECT a.attname,\n  pg_catalog.format_type(a.atttypid, a.atttypmod),\n  \
         (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)\n   FROM pg_catalog.pg_attrdef d\n   \
         WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),\n  a.attnotnull\n\
         FROM pg_catalog.pg_attribute a\nWHERE a.attrelid = '16384' AND a.attnum > 0 AND NOT a.attisdropped\n\
         ORDER BY a.attnum;",
    );
    assert_eq!(info.kind, StatementKind::Select);
    assert_eq!(
        rels(&info),
        ["pg_catalog.pg_attribute", "pg_catalog.pg_attrdef"]
    );
    assert!(cols(&info).contains(&"pg_catalog.pg_attrdef.adbin".to_string()));
    assert!(cols(&info).contains(&"pg_catalog.pg_attribute.atthasdef".to_string()));
}

#[test]
fn q02_psql_list_databases() {
    let info = one(
        "SELECT d.datname as \"Name\", pg_catalog.pg_get_userbyid(d.datdba) as \"Owner\", \
         pg_catalog.array_to_string(d.datacl, E'\\n') AS \"Access privileges\" \
         FROM pg_catalog.pg_database d ORDER BY 1;",
    );
    assert_eq!(info.kind, StatementKind::Select);
    assert_eq!(rels(&info), ["pg_catalog.pg_database"]);
}

#[test]
fn q02_array_subquery_projection() {
    let info = one(
        "SELECT c.relname, ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid) AS cols \
         FROM pg_catalog.pg_class c WHERE c.relkind = 'r'",
    );
    assert_eq!(info.kind, StatementKind::Select);
    assert_eq!(
        rels(&info),
        ["pg_catalog.pg_class", "pg_catalog.pg_attribute"]
    );
    assert!(cols(&info).contains(&"pg_catalog.pg_attribute.attname".to_string()));
    assert!(cols(&info).contains(&"pg_catalog.pg_class.oid".to_string()));
}

#[test]
fn q02_json_operators() {
    for (text, parsed) in [
        (
            "SELECT doc #>> '{a,b}' FROM docs WHERE doc @> '{\"k\": 1}'",
            true,
        ),
        ("SELECT doc->'a'->>'b' FROM docs", true),
        ("SELECT * FROM docs WHERE doc ? 'k'", true),
        ("SELECT * FROM docs WHERE doc ?| array['a', 'b']", true),
        ("SELECT * FROM docs WHERE doc ?& array['a', 'b']", true),
    ] {
        let info = one(text);
        assert_eq!(
            info.kind != StatementKind::Unparsed,
            parsed,
            "{text}: {info:?}"
        );
        assert_eq!(rels(&info), ["docs"], "{text}");
    }
}

#[test]
fn normalized_text_never_holds_literals() {
    let secrets = [
        ("SELECT 'secret'", "secret"),
        (r"SELECT E'sec\'ret'", "ret"),
        ("SELECT $x$secret$x$", "secret"),
        ("SELECT U&'d!0061t' UESCAPE '!'", "0061"),
        ("ALTER ROLE app PASSWORD 'hunter2'", "hunter2"),
        ("INSERT INTO customers (ssn) VALUES ('111-22-3333')", "111"),
        ("SET pgvigil.actor TO 'alice'", "alice"),
        ("SET my.secret TO hunter2j", "hunter2j"),
        ("SET my.secret = \"hunter2j\"", "hunter2j"),
        ("SELECT * FROM t WHERE a = 987654 AND b = 1.25e3", "987654"),
        ("UPDATE t SET b = X'DEADBEEF'", "DEADBEEF"),
        ("/* actor='zed' */ SELECT 1", "zed"),
        ("SELECT 1 -- password hunter2", "hunter2"),
    ];
    for (text, secret) in secrets {
        let analysis = analyze(text);
        for statement in &analysis.statements {
            assert!(
                !statement.normalized.contains(secret),
                "{text:?} -> {:?}",
                statement.normalized
            );
        }
    }
}

#[test]
fn fingerprint_groups_statements_differing_only_in_literals() {
    let a = one("SELECT * FROM t WHERE id = 1");
    let b = one("select * from t where id = 2".to_uppercase().as_str());
    let c = one("SELECT  *  FROM t /* x */ WHERE id = 42");
    assert_eq!(a.fingerprint, c.fingerprint);
    assert_eq!(a.fingerprint.len(), 16);
    assert_eq!(b.normalized, "SELECT * FROM T WHERE ID = $1");
}

#[test]
fn never_panics_on_prefixes_of_tricky_inputs() {
    let tricky = [
        "SELECT 'it''s', E'a\\'b', $t$x;y$t$, U&'d!0061t' UESCAPE '!', \"q\"\"i\" FROM t -- c\n; /* a /* b */ c */ SELECT 1",
        "WITH x AS (UPDATE customers SET ssn = $1 WHERE id = $2 RETURNING *) SELECT * FROM x",
        "INSERT INTO customers(id, ssn) SELECT 1, '111-22-3333' ON CONFLICT DO NOTHING",
        "DO $$ BEGIN INSERT INTO customers(id, ssn) VALUES (2, '111-22-3333'); END $$",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
        "SET search_path = \"$user\", public; SELECT set_config('search_path', 'a', false)",
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a",
        "SELECT ARRAY(SELECT 1), doc ?| array['a'] FROM (SELECT 1) x JOIN LATERAL f(x) ON true",
        "/* actor='a%2',request_id='r */ COPY (SELECT 1) TO STDOUT",
        "SELECT é, \u{1F600} FROM \"ünï\" WHERE x = 'ß'",
    ];
    for text in tricky {
        for (index, _) in text.char_indices() {
            let _ = analyze(&text[..index]);
            let _ = analyze(&text[index..]);
        }
    }
}

#[test]
fn never_panics_on_pseudo_random_garbage() {
    const ALPHABET: &[&str] = &[
        "'", "\"", "$", "$$", "$a$", "--", "/*", "*/", ";", "(", ")", "E'", "U&'", "\\", "1", ".",
        "SELECT", "FROM", "t", " ", "\n", "WITH", "UPDATE", "SET", ",", "=", "?", "é", "INTO",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..300 {
        let mut text = String::new();
        for _ in 0..40 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push_str(ALPHABET[(state % ALPHABET.len() as u64) as usize]);
        }
        let _ = analyze(&text);
    }
}

#[test]
fn huge_and_deep_inputs_do_not_crash() {
    let long_list = format!("SELECT {} FROM t", vec!["a + 1"; 2000].join(", "));
    assert_eq!(one(&long_list).kind, StatementKind::Select);
    let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(analyze(&deep).statements.len(), 1);
    let chain = format!("SELECT {}", vec!["a"; 5000].join(" + "));
    let _ = analyze(&chain);
    let unterminated = format!("SELECT '{}", "x".repeat(100_000));
    assert!(!one(&unterminated).normalized.contains("xxx"));
}

#[test]
fn explain_option_form_of_analyze() {
    assert_eq!(
        one("EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1").kind,
        StatementKind::Update
    );
    assert_eq!(
        one("EXPLAIN (ANALYZE false) UPDATE t SET a = 1").kind,
        StatementKind::Other
    );
    assert_eq!(
        one("EXPLAIN (ANALYZE off) DELETE FROM t").kind,
        StatementKind::Other
    );
    assert_eq!(
        one("EXPLAIN (COSTS off) SELECT 1").kind,
        StatementKind::Select
    );
}

#[test]
fn two_phase_commit_and_move_are_unparsed_by_sqlparser() {
    // Valid Postgres that sqlparser 0.64 rejects; recorded so a parser upgrade shows up.
    for text in [
        "PREPARE TRANSACTION 'tx1'",
        "COMMIT PREPARED 'tx1'",
        "MOVE 1 IN c",
    ] {
        let info = one(text);
        assert_eq!(info.kind, StatementKind::Unparsed, "{text}");
        assert!(!info.normalized.contains("tx1"));
    }
}

#[test]
fn value_keywords_are_not_columns() {
    let info = one("INSERT INTO t VALUES (DEFAULT, current_user, CURRENT_TIMESTAMP)");
    assert!(info.columns.is_empty(), "{info:?}");
}

#[test]
fn group_having_union_and_row_comparisons() {
    let grouped = one("SELECT x, count(*) FROM t GROUP BY x HAVING count(*) > 1");
    assert_eq!(cols(&grouped), ["t.x"]);
    let union = one("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1");
    assert_eq!(rels(&union), ["t", "u"]);
    assert_eq!(cols(&union), ["t.a", "u.b"]);
    let row = one("SELECT * FROM t WHERE (a, b) IN (SELECT 1, 2)");
    assert_eq!(cols(&row), ["t.a", "t.b"]);
}

#[test]
fn cursors_read_their_query() {
    let info = one("DECLARE c CURSOR FOR SELECT ssn FROM customers");
    assert_eq!(info.kind, StatementKind::Select);
    assert_eq!(cols(&info), ["customers.ssn"]);
    assert_eq!(one("CLOSE c").kind, StatementKind::Other);
}

#[test]
fn cached_analysis_equals_fresh_analysis_for_literal_variants() {
    let cache = crate::sql::StructureCache::new(100);
    for text in [
        "SELECT abalance FROM pgbench_accounts WHERE aid = 42",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 43",
        "/* actor='alice' */ UPDATE customers SET ssn = '111-22-3333' WHERE id = 1",
        "/* actor='bob' */ UPDATE customers SET ssn = '999-88-7777' WHERE id = 2",
        "SET search_path = app, public",
        "SET pgvigil.actor = 'carol'",
        "SET pgvigil.actor = 'dave'",
    ] {
        assert_eq!(
            crate::sql::analyze_cached(text, &cache),
            crate::sql::analyze(text),
            "{text}"
        );
    }
}

#[test]
fn do_blocks_never_share_a_cached_structure() {
    let cache = crate::sql::StructureCache::new(100);
    let first = crate::sql::analyze_cached("DO $$ BEGIN PERFORM 1 FROM orders; END $$", &cache);
    let second = crate::sql::analyze_cached(
        "DO $$ BEGIN PERFORM string_agg(ssn, ',') FROM customers; END $$",
        &cache,
    );
    assert_eq!(
        first.statements[0].normalized,
        second.statements[0].normalized
    );
    assert_eq!(rels(&first.statements[0]), ["orders"]);
    assert_eq!(rels(&second.statements[0]), ["customers"]);
    assert!(cache.is_empty(), "Unparsed structures must not be stored");
}

#[test]
fn unparsed_statements_with_the_same_normalized_text_do_not_share() {
    // Rejected by sqlparser; the fallback reads each text on its own.
    let cache = crate::sql::StructureCache::new(100);
    for text in [
        "COPY a FROM STDIN WITH (FORMAT 'csv') BOGUS",
        "DO $x$ BEGIN DELETE FROM secrets; END $x$",
        "DO $x$ BEGIN DELETE FROM audit_log; END $x$",
    ] {
        assert_eq!(
            crate::sql::analyze_cached(text, &cache),
            crate::sql::analyze(text),
            "{text}"
        );
    }
}

#[test]
fn explain_analyze_literal_variants_do_not_share() {
    let cache = crate::sql::StructureCache::new(100);
    let off = crate::sql::analyze_cached("EXPLAIN (ANALYZE 0) DELETE FROM customers", &cache);
    let on = crate::sql::analyze_cached("EXPLAIN (ANALYZE 1) DELETE FROM customers", &cache);
    assert_eq!(off.statements[0].normalized, on.statements[0].normalized);
    assert_eq!(
        off.statements[0].kind,
        crate::sql::analyze("EXPLAIN (ANALYZE 0) DELETE FROM customers").statements[0].kind
    );
    assert_eq!(on.statements[0].kind, StatementKind::Delete);
}

#[test]
fn parsed_literal_variants_still_share_one_parse() {
    let cache = crate::sql::StructureCache::new(100);
    crate::sql::analyze_cached("SELECT a FROM t WHERE id = 1", &cache);
    crate::sql::analyze_cached("SELECT a FROM t WHERE id = 2", &cache);
    assert_eq!(cache.len(), 1);
}

#[test]
fn set_config_with_other_content_is_a_select_with_its_relations() {
    let info =
        one("SELECT set_config('a.b','c',false), (SELECT string_agg(ssn, ',') FROM customers)");
    assert_eq!(info.kind, StatementKind::Select);
    assert_eq!(rels(&info), ["customers"]);
    assert_eq!(cols(&info), ["customers.ssn"]);

    let with_path =
        one("SELECT set_config('search_path', 'app', false), (SELECT ssn FROM customers LIMIT 1)");
    assert_eq!(with_path.kind, StatementKind::Select);
    assert_eq!(rels(&with_path), ["customers"]);
    assert_eq!(
        with_path.effects,
        [SessionEffect::SearchPath(vec!["app".into()])]
    );

    let inside = one("SELECT set_config('a.b', (SELECT ssn FROM customers LIMIT 1), false)");
    assert_eq!(inside.kind, StatementKind::Select);
    assert_eq!(rels(&inside), ["customers"]);

    let alone = one("SELECT set_config('search_path', 'app', false)");
    assert_eq!(alone.kind, StatementKind::Set);
    assert!(alone.relations.is_empty());
}

fn off() -> LexOptions {
    LexOptions {
        standard_conforming_strings: false,
    }
}

#[test]
fn backslash_mode_keeps_one_statement_and_its_table() {
    let text = r"SELECT 'a\' ; SELECT 1 --', count(*) FROM customers";
    let analysis = analyze_with(text, off());
    assert_eq!(analysis.statements.len(), 1, "{analysis:?}");
    let info = &analysis.statements[0];
    assert_eq!(rels(info), ["customers"]);
    assert_eq!(info.kind, StatementKind::Select);
    assert_eq!(info.normalized, "SELECT $1, count(*) FROM customers");
    // Read as standard_conforming_strings = on, the same text is two statements.
    assert_eq!(analyze(text).statements.len(), 2);
}

#[test]
fn backslash_mode_normalization_does_not_leak() {
    let text = r"ALTER ROLE x PASSWORD 'pa\'ss hunter3b'";
    let info = &analyze_with(text, off()).statements[0];
    assert_eq!(info.normalized, "ALTER ROLE x PASSWORD $1");
    for text in [
        r"SELECT 'a\'b secret1', 1",
        r"SELECT N'a\'b secret1'",
        r"SELECT 'x\\', 'secret1'",
        r"INSERT INTO t VALUES ('\'', 'secret1')",
    ] {
        for s in &analyze_with(text, off()).statements {
            assert!(!s.normalized.contains("secret1"), "{text} -> {s:?}");
        }
    }
}

#[test]
fn backslash_mode_parse_reads_strings_as_the_server_does() {
    // On-mode sqlparser would see two strings and no table; the server (off) reads
    // `customers` after one string.
    let text = r"SELECT 'a\' , ' , ssn FROM customers --'";
    let info = &analyze_with(text, off()).statements[0];
    assert_eq!(rels(info), ["customers"], "{info:?}");
    assert_eq!(info.kind, StatementKind::Select);
    assert_eq!(cols(info), ["customers.ssn"]);
    // And on-mode reads it as the on-mode server does: two strings, no table.
    assert!(one(text).relations.is_empty());
    // A string without a backslash parses the same in both modes.
    let plain = &analyze_with("SELECT ssn FROM customers WHERE name = 'x'", off()).statements[0];
    assert_eq!(cols(plain), ["customers.ssn", "customers.name"]);
    // N'' with a backslash in off mode: left to the fallback, which still finds the table.
    let national = &analyze_with(r"SELECT N'a\'b', ssn FROM customers", off()).statements[0];
    assert_eq!(rels(national), ["customers"]);
}

#[test]
fn backslash_mode_reaches_do_bodies_and_effects() {
    let text = r"DO $$ BEGIN PERFORM 'a\' ; x'; PERFORM 1 FROM customers; END $$";
    assert_eq!(
        rels(&analyze_with(text, off()).statements[0]),
        ["customers"]
    );
    let set = &analyze_with(r"SET pgvigil.actor = 'al\'ice'", off()).statements[0];
    assert_eq!(set.effects, [SessionEffect::Actor(Some("al'ice".into()))]);
}

#[test]
fn structure_cache_keys_include_the_lexing_mode() {
    let cache = StructureCache::new(100);
    // One text, two readings: each mode gets its own entry and its own answer.
    let text = r"SELECT 'a\' , ' , ssn FROM customers --'";
    let on = analyze_cached(text, &cache);
    let off_mode = analyze_cached_with(text, off(), &cache);
    assert_eq!(off_mode, analyze_with(text, off()));
    assert_eq!(on, analyze(text));
    let a = analyze_cached_with("SELECT ssn FROM customers WHERE id = 1", off(), &cache);
    let b = analyze_cached("SELECT ssn FROM customers WHERE id = 1", &cache);
    assert_eq!(a.statements[0].normalized, b.statements[0].normalized);
    // Two texts, each in two modes.
    assert_eq!(cache.len(), 4);
}

#[test]
fn set_standard_conforming_strings_is_an_effect_and_its_value_is_hidden() {
    let info = one("SET standard_conforming_strings = off");
    assert_eq!(
        info.effects,
        [SessionEffect::StandardConformingStrings(false)]
    );
    assert_eq!(info.normalized, "SET standard_conforming_strings = $1");
}
