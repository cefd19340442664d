//! Row thresholds through the proxy against the real PostgreSQL: a result cut off
//! mid-stream (S-03) in the simple and extended protocols and in COPY TO, and row counts
//! adding up across FETCH, Execute row limits and COPY TO within a session (S-02).

mod policy_common;
mod support;

use policy_common::*;
use std::time::Duration;
use support::wire::*;

fn cap_policy(rule: &str) -> String {
    format!("{TABLES}rules:\n  - {rule}\n")
}

/// Active queries on `db` other than the one asking.
fn active_queries(db: &str) -> String {
    support::cluster()
        .run_sql(
            db,
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' \
                 AND state = 'active' AND pid <> pg_backend_pid()"
            ),
        )
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn s03_row_cap_cuts_the_result_mid_stream_and_cancels_the_server_query() {
    let f = fixture("s03", 50);
    let (proxy, _dir) = proxy(&cap_policy(
        "{ name: ssn-cap, class: RESTRICTED, rows_per_query: 10, action: block, severity: CRITICAL }",
    ));
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    // A query that would run for many minutes: rows come out slowly (wide, so that the
    // server's 8 kB output buffer goes out every few rows), the cap cuts it at 10.
    let sql =
        "SELECT ssn, repeat('x', 3000), pg_sleep(0.02) FROM customers, generate_series(1, 1000)";
    let t = std::time::Instant::now();
    let r = query(&mut c, sql);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(count(&r, b'D'), 10, "{}", tags(&r));
    let (state, message) = error_of(&r).expect("cut off");
    assert_eq!(state, "54000");
    assert!(message.contains("ssn-cap"), "{message}");
    assert_eq!(tags(&r[r.len() - 2..]), "E Z");
    assert_eq!(status(&r), b'I');
    assert_eq!(active_queries(&f.db), "0", "the server query was cancelled");
    // The connection still works.
    let r = query(&mut c, "SELECT ssn FROM customers WHERE id = 1");
    assert_eq!(count(&r, b'D'), 1);
    assert!(error_of(&r).is_none());

    // Inside a transaction block the transaction is failed on both sides.
    query(&mut c, "BEGIN");
    let r = query(&mut c, sql);
    assert_eq!(count(&r, b'D'), 10);
    assert_eq!(status(&r), b'E');
    let r = query(&mut c, "SELECT 1");
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("25P02"));
    query(&mut c, "ROLLBACK");
    let r = query(&mut c, "SELECT 1");
    assert_eq!(count(&r, b'D'), 1);
    drop(c);

    let events = shutdown(proxy);
    let cut = events_of(&events, &f.db, "statement")
        .into_iter()
        .find(|e| e["sqlstate"] == "54000")
        .expect("the cut statement is audited");
    assert_eq!(cut["outcome"], "blocked");
    assert_eq!(cut["decision"], "block");
    assert_eq!(cut["rows"], 10);
    assert!(strings(&cut["rules"]).contains(&"ssn-cap".to_string()));
}

#[test]
fn s03_a_result_the_server_finished_before_the_cancel_still_fails_the_transaction() {
    // 11 fast rows: the server has sent everything before the cancel can land.
    let f = fixture("s03fast", 11);
    let (proxy, _dir) = proxy(&cap_policy(
        "{ name: ssn-cap, class: RESTRICTED, rows_per_query: 10, action: block }",
    ));
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    query(&mut c, "BEGIN");
    query(&mut c, "UPDATE customers SET name = 'changed' WHERE id = 1");
    let r = query(&mut c, "SELECT ssn FROM customers");
    assert_eq!(count(&r, b'D'), 10);
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("54000"));
    assert_eq!(status(&r), b'E');
    let r = query(&mut c, "SELECT 1");
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("25P02"));
    // COMMIT of a failed transaction rolls back, on the server too.
    let r = query(&mut c, "COMMIT");
    assert_eq!(status(&r), b'I');
    drop(c);
    let n = support::cluster()
        .run_sql(
            &f.db,
            "SELECT count(*) FROM customers WHERE name = 'changed'",
        )
        .unwrap();
    assert_eq!(n.trim(), "0");
}

#[test]
fn s03_extended_protocol_and_copy_to_are_cut_too() {
    let f = fixture("s03ext", 30);
    let (proxy, _dir) = proxy(&cap_policy(
        "{ name: ssn-cap, class: RESTRICTED, rows_per_query: 10, action: block }",
    ));
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    c.send(&batch(&[
        p("", "SELECT ssn FROM customers", &[]),
        b("", "", &[]),
        e("", 0),
        s(),
    ]));
    let r = c.read_until_ready(1);
    assert_eq!(count(&r, b'D'), 10);
    assert_eq!(tags(&r[r.len() - 2..]), "E Z");
    assert_eq!(r[r.len() - 2].sqlstate().as_deref(), Some("54000"));

    let r = query(&mut c, "COPY (SELECT ssn FROM customers) TO STDOUT");
    assert_eq!(count(&r, b'd'), 10, "{}", tags(&r));
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("54000"));
    let r = query(&mut c, "SELECT 1");
    assert!(error_of(&r).is_none());
}

#[test]
fn s02_execute_row_limits_add_up_per_portal() {
    let f = fixture("s02portal", 100);
    let (proxy, _dir) = proxy(&cap_policy(
        "{ name: ssn-cap, class: RESTRICTED, rows_per_query: 25, action: block }",
    ));
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    query(&mut c, "BEGIN");
    c.send(&batch(&[
        p("", "SELECT ssn FROM customers", &[]),
        b("p", "", &[]),
        e("p", 10),
        e("p", 10),
        e("p", 10),
        s(),
    ]));
    let r = c.read_until_ready(1);
    assert_eq!(count(&r, b'D'), 25, "{}", tags(&r));
    assert_eq!(count(&r, b's'), 2);
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("54000"));
    assert_eq!(status(&r), b'E');
    query(&mut c, "ROLLBACK");
}

#[test]
fn s02_cursor_fetches_and_copy_to_add_up_within_the_session() {
    let f = fixture("s02", 400);
    let (proxy, _dir) = proxy(&cap_policy(
        "{ name: ssn-session, class: RESTRICTED, rows_per_session: 250, action: block, severity: HIGH }",
    ));
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    query(&mut c, "BEGIN");
    query(&mut c, "DECLARE c CURSOR FOR SELECT ssn FROM customers");
    for _ in 0..2 {
        let r = query(&mut c, "FETCH 100 FROM c");
        assert_eq!(count(&r, b'D'), 100, "{}", tags(&r));
        assert!(error_of(&r).is_none());
    }
    let r = query(&mut c, "FETCH 100 FROM c");
    assert_eq!(count(&r, b'D'), 50, "{}", tags(&r));
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("54000"));
    assert_eq!(status(&r), b'E');
    query(&mut c, "ROLLBACK");
    // The session is past its budget: COPY TO gets nothing more.
    let r = query(&mut c, "COPY (SELECT ssn FROM customers) TO STDOUT");
    assert_eq!(count(&r, b'd'), 0, "{}", tags(&r));
    assert!(error_of(&r).is_some());
    drop(c);

    // COPY TO counts as well, in a fresh session.
    let mut c = RawConn::connect(proxy.addr, &f.bob, &f.db);
    let r = query(
        &mut c,
        "COPY (SELECT ssn FROM customers LIMIT 200) TO STDOUT",
    );
    assert_eq!(count(&r, b'd'), 200);
    let r = query(&mut c, "SELECT ssn FROM customers");
    assert_eq!(count(&r, b'D'), 50, "{}", tags(&r));
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("54000"));
    let r = query(&mut c, "SELECT 1");
    assert!(error_of(&r).is_none());
    drop(c);
    std::thread::sleep(Duration::from_millis(50));
    let events = shutdown(proxy);
    assert!(events_of(&events, &f.db, "statement")
        .iter()
        .any(|e| e["sqlstate"] == "54000"
            && strings(&e["rules"]).contains(&"ssn-session".to_string())));
}

#[test]
fn a_row_alert_fires_once_and_the_result_is_complete() {
    let f = fixture("rowalert", 30);
    let (proxy, _dir) = proxy(&cap_policy(
        "{ name: many-ssn, class: RESTRICTED, rows_per_query: 5, action: alert, severity: MEDIUM }",
    ));
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    let r = query(&mut c, "SELECT ssn FROM customers");
    assert_eq!(count(&r, b'D'), 30);
    assert!(error_of(&r).is_none());
    drop(c);
    let events = shutdown(proxy);
    let alerts: Vec<_> = events_of(&events, &f.db, "alert")
        .into_iter()
        .filter(|a| a["rule"] == "many-ssn")
        .collect();
    assert_eq!(alerts.len(), 1);
}

/// SQL-level PREPARE/EXECUTE (review H7): every EXECUTE is decided on the prepared
/// statement, so its row cap applies, and a protocol Bind to a SQL-prepared name is
/// decided the same way.
#[test]
fn sql_prepare_execute_is_decided_at_every_execution() {
    let f = fixture("sqlprep", 50);
    let (proxy, _dir) = proxy(&cap_policy(
        "{ name: ssn-cap, class: RESTRICTED, rows_per_query: 10, action: block, severity: CRITICAL }",
    ));
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    let r = query(&mut c, "PREPARE p AS SELECT ssn FROM customers");
    assert!(error_of(&r).is_none(), "{}", tags(&r));
    let r = query(&mut c, "EXECUTE p");
    assert_eq!(count(&r, b'D'), 10, "{}", tags(&r));
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("54000"));
    // A Bind to the SQL-prepared name runs the same statement: cut the same way.
    c.send(&batch(&[b("", "p", &[]), e("", 0), s()]));
    let r = c.read_until_ready(1);
    assert_eq!(count(&r, b'D'), 10, "{}", tags(&r));
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("54000"));
    let r = query(&mut c, "DEALLOCATE p");
    assert!(error_of(&r).is_none());
    // Access control is off in this policy (no `roles`), so an unknown name is the
    // server's to refuse, exactly as without the proxy.
    let r = query(&mut c, "EXECUTE p");
    assert_eq!(
        error_of(&r).map(|e| e.0).as_deref(),
        Some("26000"),
        "{}",
        tags(&r)
    );
}
