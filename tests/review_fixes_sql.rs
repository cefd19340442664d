//! End-to-end checks of the SQL-analysis review fixes through the proxy against the real
//! PostgreSQL of the test harness: standard_conforming_strings = off is honoured (set by
//! the session, pipelined, or in force from startup), so a text is split, normalized and
//! read for tables the way the server reads it.

mod policy_common;
mod support;

use serde_json::Value;
use support::proxy::{statements_in, TestProxy};
use support::{connect_superuser, fresh_database, quote_ident, unique_name};
use tokio_postgres::SimpleQueryMessage;

const SPLIT_TRAP: &str = r"SELECT 'a\' ; SELECT 1 --', count(*) FROM customers";

async fn setup(prefix: &str) -> (String, String) {
    let db = fresh_database(prefix);
    let role = unique_name("scs_role");
    let admin = connect_superuser(&db).await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE customers (id int PRIMARY KEY, ssn text);
             INSERT INTO customers VALUES (1, '111-22-3333'), (2, '222-33-4444');
             CREATE ROLE {} LOGIN",
            quote_ident(&role)
        ))
        .await
        .expect("setup");
    (db, role)
}

fn rows(msgs: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect()
}

fn tables(ev: &Value) -> Vec<String> {
    ev["tables"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The statement events of the split trap: exactly one, reading customers.
fn assert_trap_audited_as_one_read(events: &[Value], db: &str) {
    let trap: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["query"]
                .as_str()
                .is_some_and(|q| q.ends_with("count(*) FROM customers"))
        })
        .collect();
    assert_eq!(trap.len(), 1, "{:#?}", statements_in(events, db));
    assert_eq!(trap[0]["statement_kind"], "select", "{}", trap[0]);
    assert_eq!(tables(trap[0]), ["public.customers"], "{}", trap[0]);
    assert_eq!(trap[0]["query"], "SELECT $1, count(*) FROM customers");
    for e in statements_in(events, db) {
        let q = e["query"].as_str().unwrap_or_default();
        assert!(!q.contains("hunter3b") && !q.contains("ss "), "leak: {e}");
        assert_ne!(q, "SELECT $1", "the trap was split: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_conforming_strings_off_is_honoured() {
    let (db, role) = setup("scs_set").await;
    let proxy = TestProxy::start();
    let conn = proxy.connect(&db).await;
    conn.batch_execute("SET standard_conforming_strings = off")
        .await
        .unwrap();
    let got = conn.simple_query(SPLIT_TRAP).await.unwrap();
    assert_eq!(rows(&got).len(), 1, "the server ran one statement");
    conn.batch_execute(&format!(
        r"ALTER ROLE {} PASSWORD 'pa\'ss hunter3b'",
        quote_ident(&role)
    ))
    .await
    .unwrap();
    drop(conn);
    let events = proxy.shutdown();
    assert_trap_audited_as_one_read(&events, &db);
    let alter = statements_in(&events, &db)
        .into_iter()
        .find(|e| {
            e["query"]
                .as_str()
                .is_some_and(|q| q.starts_with("ALTER ROLE"))
        })
        .expect("ALTER ROLE audited");
    assert!(
        alter["query"].as_str().unwrap().ends_with("PASSWORD $1"),
        "{alter}"
    );
}

/// The SET and the trap are pipelined: the trap is analysed before the server's
/// ParameterStatus for the SET can arrive, so the SET's own effect must already count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_set_applies_before_the_server_reports_it() {
    let (db, _role) = setup("scs_pipe").await;
    let proxy = TestProxy::start();
    let conn = proxy.connect(&db).await;
    let (set, trap) = tokio::join!(
        conn.simple_query("SET standard_conforming_strings = off"),
        conn.simple_query(SPLIT_TRAP)
    );
    set.unwrap();
    assert_eq!(rows(&trap.unwrap()).len(), 1);
    drop(conn);
    let events = proxy.shutdown();
    assert_trap_audited_as_one_read(&events, &db);
}

/// Off from startup (a per-database default): the server's startup ParameterStatus is
/// what the proxy learns it from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_conforming_strings_off_from_startup() {
    let (db, _role) = setup("scs_startup").await;
    let admin = connect_superuser(&db).await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} SET standard_conforming_strings = off",
            quote_ident(&db)
        ))
        .await
        .unwrap();
    let proxy = TestProxy::start();
    let conn = proxy.connect(&db).await;
    assert_eq!(rows(&conn.simple_query(SPLIT_TRAP).await.unwrap()).len(), 1);
    // Back on for the session: the ordinary reading returns.
    conn.batch_execute("SET standard_conforming_strings = on")
        .await
        .unwrap();
    conn.simple_query(r"SELECT 'b\', ssn FROM customers WHERE id = 1")
        .await
        .unwrap();
    drop(conn);
    let events = proxy.shutdown();
    assert_trap_audited_as_one_read(&events, &db);
    let on = statements_in(&events, &db)
        .into_iter()
        .find(|e| e["query"] == "SELECT $1, ssn FROM customers WHERE id = $2")
        .expect("on-mode statement audited");
    assert_eq!(tables(&on), ["public.customers"]);
}

/// A refused Query never reaches the server, so its `SET standard_conforming_strings = off`
/// must not switch the proxy's lexing either: the server stays on, and a text crafted for
/// the gap (one long literal when read as off) must still show its table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_set_does_not_switch_the_lexing_mode() {
    let fx = policy_common::fixture("scs_refused", 3);
    let policy = format!(
        "{}rules:\n  - {{ name: no-export, class: CONFIDENTIAL, statement: copy_to, action: block, severity: HIGH }}\n",
        policy_common::TABLES
    );
    let (proxy, _dir) = policy_common::proxy(&policy);
    let conn = proxy.connect(&fx.db).await;
    let refused = conn
        .simple_query("SET standard_conforming_strings = off; COPY customers TO STDOUT")
        .await;
    assert!(refused.is_err(), "the Query must be refused");
    let on_text = r"SELECT 'a\', ssn FROM customers WHERE name = 'zq9secret'";
    assert_eq!(rows(&conn.simple_query(on_text).await.unwrap()).len(), 0);
    drop(conn);
    let events = tokio::task::spawn_blocking(move || policy_common::shutdown(proxy))
        .await
        .unwrap();
    let read = statements_in(&events, &fx.db)
        .into_iter()
        .find(|e| e["query"] == "SELECT $1, ssn FROM customers WHERE name = $2")
        .unwrap_or_else(|| panic!("{:#?}", statements_in(&events, &fx.db)));
    assert_eq!(tables(&read), ["public.customers"]);
    for e in statements_in(&events, &fx.db) {
        assert!(
            !e["query"]
                .as_str()
                .unwrap_or_default()
                .contains("zq9secret"),
            "{e}"
        );
    }
}
