//! End-to-end SQL cases of the audit trail (../shared/cases/sql.md): result columns
//! attributed from RowDescription, names resolved the way Postgres resolved them,
//! and tool catalog queries and JSON operators, through the proxy against the real
//! PostgreSQL of the test harness. Every event is checked against the shipped schema.

mod audit_common;
mod support;

use audit_common::{assert_reads_ssn, columns, dump, one, statements, strings, Fixture};
use serde_json::Value;
use std::time::Duration;
use tokio_postgres::SimpleQueryMessage;

fn rows_of(msgs: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect()
}

/// Result-column attribution: aliases, `*`, joins, derived tables, RETURNING, cursors and
/// prepared statements all attribute `ssn` as RESTRICTED of public.customers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_columns_attributed_from_row_description() {
    let fx = Fixture::new("attribution");
    let conn = fx.connect().await;
    let simple_cases = [
        "SELECT ssn AS x FROM customers",
        "SELECT * FROM customers",
        "SELECT p.title, c.ssn AS s FROM products p JOIN customers c ON c.id = p.id",
        "SELECT d.x FROM (SELECT ssn AS x, id FROM customers) AS d WHERE d.id > 1",
        "INSERT INTO customers(id, name, ssn) VALUES (60, 'r', '600-00-0000') RETURNING ssn",
    ];
    for sql in simple_cases {
        conn.simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    conn.batch_execute("BEGIN").await.unwrap();
    conn.batch_execute("DECLARE c CURSOR FOR SELECT ssn FROM customers")
        .await
        .unwrap();
    let fetched = conn.simple_query("FETCH 2 FROM c").await.unwrap();
    assert_eq!(rows_of(&fetched).len(), 2);
    conn.batch_execute("COMMIT").await.unwrap();
    // Extended protocol: a prepared statement, executed twice.
    let stmt = conn
        .prepare("SELECT ssn AS hidden FROM customers WHERE id = $1")
        .await
        .unwrap();
    for id in [1i32, 2] {
        let rows = conn.query(&stmt, &[&id]).await.unwrap();
        assert_eq!(rows.len(), 1);
    }
    // Unnamed statement, `*` over the extended protocol.
    let rows = conn
        .query("SELECT * FROM customers WHERE id < $1", &[&3i32])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    drop(conn);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = fx.finish();

    for sql in simple_cases {
        let normalized = &pgvigil::sql::analyze(sql).statements[0].normalized;
        let ev = one(&events, normalized);
        assert_reads_ssn(ev);
    }
    let star = one(&events, "SELECT * FROM customers");
    let cols = columns(star);
    for (col, class) in [
        ("id", "CONFIDENTIAL"),
        ("email", "CONFIDENTIAL"),
        ("ssn", "RESTRICTED"),
        ("card_number", "RESTRICTED"),
        ("created_at", "INTERNAL"),
    ] {
        assert!(
            cols.contains(&("public.customers".into(), col.into(), class.into())),
            "{col} {class} missing: {star}"
        );
    }
    assert_eq!(star["rows"], 3, "before the INSERT ... RETURNING");
    let join = one(
        &events,
        "SELECT p.title, c.ssn AS s FROM products p JOIN customers c ON c.id = p.id",
    );
    assert!(
        columns(join).contains(&("public.products".into(), "title".into(), "PUBLIC".into())),
        "{join}"
    );
    let fetch = one(&events, "FETCH $1 FROM c");
    assert_reads_ssn(fetch);
    assert_eq!(fetch["rows"], 2);
    let prepared: Vec<&Value> = statements(&events)
        .into_iter()
        .filter(|e| e["query"] == "SELECT ssn AS hidden FROM customers WHERE id = $1")
        .collect();
    assert_eq!(
        prepared.len(),
        2,
        "one event per execution: {}",
        dump(&events)
    );
    for ev in prepared {
        assert_reads_ssn(ev);
        assert_eq!(ev["rows"], 1);
    }
    let ext_star = one(&events, "SELECT * FROM customers WHERE id < $1");
    assert_reads_ssn(ext_star);
    assert_eq!(ext_star["rows"], 2);
}

/// names fold like Postgres, and the table audited is the one Postgres read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q04_names_resolve_like_postgres() {
    let fx = Fixture::new("q04");
    support::cluster()
        .run_sql(
            &fx.db,
            "CREATE TABLE \"Customers\"(id int, ssn text); \
             INSERT INTO \"Customers\" VALUES (1, 'quoted-table'); \
             CREATE SCHEMA app; CREATE TABLE app.customers(id int, ssn text); \
             INSERT INTO app.customers VALUES (1, 'app-table');",
        )
        .unwrap();
    let conn = fx.connect().await;
    let first_ssn = |msgs: Vec<SimpleQueryMessage>| rows_of(&msgs)[0][0].clone().unwrap();

    let upper = conn
        .simple_query("SELECT ssn FROM CUSTOMERS WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(first_ssn(upper), "111-22-3333");
    let quoted = conn
        .simple_query("SELECT ssn FROM \"Customers\" WHERE id = 1 AND true")
        .await
        .unwrap();
    assert_eq!(first_ssn(quoted), "quoted-table");
    conn.batch_execute("SET search_path = app, public")
        .await
        .unwrap();
    let app = conn
        .simple_query("SELECT ssn FROM customers WHERE id = 1 AND 1 = 1")
        .await
        .unwrap();
    assert_eq!(first_ssn(app), "app-table", "Postgres reads app.customers");
    conn.batch_execute("RESET search_path").await.unwrap();

    // A temp table shadows the classified one for this session.
    conn.batch_execute(
        "CREATE TEMP TABLE customers(id int, ssn text); \
         INSERT INTO customers VALUES (1, 'temp-table')",
    )
    .await
    .unwrap();
    let temp = conn
        .simple_query("SELECT ssn FROM customers WHERE id = 1 AND ssn IS NOT NULL")
        .await
        .unwrap();
    assert_eq!(
        first_ssn(temp),
        "temp-table",
        "Postgres reads the temp table"
    );
    let explicit = conn
        .simple_query("SELECT ssn FROM public.customers WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(first_ssn(explicit), "111-22-3333");
    drop(conn);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = fx.finish();

    let upper = one(&events, "SELECT ssn FROM CUSTOMERS WHERE id = $1");
    assert_eq!(strings(&upper["tables"]), vec!["public.customers"]);
    assert_reads_ssn(upper);

    let quoted = one(
        &events,
        "SELECT ssn FROM \"Customers\" WHERE id = $1 AND true",
    );
    assert_eq!(
        strings(&quoted["tables"]),
        vec!["public.Customers"],
        "{quoted}"
    );
    assert_eq!(strings(&quoted["classes"]), vec!["INTERNAL"], "{quoted}");

    let app = one(
        &events,
        "SELECT ssn FROM customers WHERE id = $1 AND $2 = $3",
    );
    assert_eq!(strings(&app["tables"]), vec!["app.customers"], "{app}");
    // `id` is read by the predicate, `ssn` by the projection: both of app.customers.
    assert_eq!(
        columns(app),
        vec![
            ("app.customers".into(), "id".into(), "INTERNAL".into()),
            ("app.customers".into(), "ssn".into(), "INTERNAL".into()),
        ]
    );
    assert_eq!(strings(&app["classes"]), vec!["INTERNAL"]);

    let temp = one(
        &events,
        "SELECT ssn FROM customers WHERE id = $1 AND ssn IS NOT NULL",
    );
    assert_eq!(
        strings(&temp["tables"]),
        vec!["pg_temp.customers"],
        "{temp}"
    );
    assert_eq!(
        columns(temp),
        vec![
            ("pg_temp.customers".into(), "id".into(), "INTERNAL".into()),
            ("pg_temp.customers".into(), "ssn".into(), "INTERNAL".into()),
        ]
    );
    let explicit = one(&events, "SELECT ssn FROM public.customers WHERE id = $1");
    assert_reads_ssn(explicit);
}

/// psql's `\d customers`, `\dt`, `\dn` through the proxy answer exactly as directly, and
/// are audited as catalog reads (tables in pg_catalog, class PUBLIC).
#[test]
fn q02_psql_catalog_queries() {
    let fx = Fixture::new("q02_psql");
    let cluster = support::cluster();
    let psql = |port: u16, cmd: &str| {
        let out = std::process::Command::new(cluster.psql_path())
            .args(["-X", "-w", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-U", "postgres", "-d", &fx.db, "-c", cmd])
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("run psql");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for cmd in ["\\d customers", "\\dt", "\\dn"] {
        let direct = psql(cluster.port(), cmd);
        let via = psql(fx.proxy.port(), cmd);
        assert_eq!(via.0, Some(0), "{cmd} through the proxy: {}", via.2);
        assert_eq!(via, direct, "{cmd}: proxy and direct differ");
    }
    let events = fx.finish();
    let stmts = statements(&events);
    assert!(stmts.len() >= 3, "{}", dump(&events));
    let mut catalog_reads = 0;
    for ev in &stmts {
        assert_eq!(ev["outcome"], "ok", "{ev}");
        let tables = strings(&ev["tables"]);
        for t in &tables {
            assert!(
                t.starts_with("pg_catalog.") || t.starts_with("information_schema."),
                "{t} is not a catalog in {ev}"
            );
        }
        for c in strings(&ev["classes"]) {
            assert_eq!(c, "PUBLIC", "{ev}");
        }
        if !tables.is_empty() {
            catalog_reads += 1;
            assert_eq!(strings(&ev["classes"]), vec!["PUBLIC"], "{ev}");
        }
    }
    assert!(catalog_reads >= 3, "{}", dump(&events));
}

/// JSON operators `?`, `?|`, `@>`, `#>>` through the proxy, simple and extended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q02_json_operators() {
    let fx = Fixture::new("q02_json");
    let conn = fx.connect().await;
    let direct = support::connect_superuser(&fx.db).await;
    let sql = "SELECT doc ? 'color', doc ?| array['x', 'tags'], doc @> '{\"color\": \"blue\"}', \
               doc #>> '{dim,w}' FROM products WHERE doc ? $1";
    let via: Vec<(bool, bool, bool, String)> = conn
        .query(sql, &[&"color"])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let want: Vec<(bool, bool, bool, String)> = direct
        .query(sql, &[&"color"])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(via, want);
    assert_eq!(via, vec![(true, true, true, "3".to_owned())]);
    let simple = conn
        .simple_query("SELECT doc #>> '{dim,w}' FROM products WHERE doc ?| array['color']")
        .await
        .unwrap();
    assert_eq!(rows_of(&simple), vec![vec![Some("3".to_owned())]]);
    drop(conn);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = fx.finish();
    let stmts = statements(&events);
    assert_eq!(stmts.len(), 2, "{}", dump(&events));
    for ev in stmts {
        assert_eq!(ev["statement_kind"], "select", "{ev}");
        assert_eq!(strings(&ev["tables"]), vec!["public.products"], "{ev}");
        assert_eq!(strings(&ev["classes"]), vec!["PUBLIC"], "{ev}");
        assert_eq!(ev["rows"], 1);
    }
}

/// The catalog cache connects as the session's user unless `catalog_user` is configured. A
/// user whose password the proxy does not have (md5) cannot open it; that must not switch
/// attribution off for the other users of the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_failure_for_one_user_does_not_blind_the_others() {
    let fx = Fixture::new("catalog_user");
    let role = support::create_md5_role("cat", "cat-pass");
    support::cluster()
        .run_sql(&fx.db, &format!("GRANT SELECT ON customers TO {role}"))
        .unwrap();
    let md5 = support::connect(&fx.proxy.conn_str(&fx.db, &role, Some("cat-pass")))
        .await
        .expect("md5 login through the proxy");
    md5.simple_query("SELECT * FROM customers WHERE id = 1")
        .await
        .unwrap();
    let admin = fx.connect().await;
    admin
        .simple_query("SELECT * FROM customers WHERE id = 2")
        .await
        .unwrap();
    drop(md5);
    drop(admin);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = fx.finish();
    let ev = statements(&events)
        .into_iter()
        .find(|e| e["user"] == "postgres")
        .expect("the superuser's statement");
    assert_reads_ssn(ev);
}
