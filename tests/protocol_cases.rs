//! Wire-protocol cases (../shared/cases/protocol.md): the same bytes sent directly to
//! PostgreSQL and through pgvigil must get the same answers.

mod support;

use std::time::Duration;
use support::proxy::TestProxy;
use support::wire::*;

/// Run `script` on a fresh session directly and through the proxy; return both answers.
fn both(db: &str, proxy: &TestProxy, script: &[u8], readies: usize) -> (Vec<Msg>, Vec<Msg>) {
    let mut direct = RawConn::connect(support::cluster().addr(), "postgres", db);
    direct.send(script);
    let d = direct.read_until_ready(readies);
    let mut via = RawConn::connect(proxy.addr, "postgres", db);
    via.send(script);
    let v = via.read_until_ready(readies);
    (d, v)
}

fn assert_same(db: &str, proxy: &TestProxy, script: &[u8], readies: usize) -> Vec<Msg> {
    let (d, v) = both(db, proxy, script, readies);
    assert_eq!(tags(&v), tags(&d), "message sequence differs");
    let codes = |m: &[Msg]| m.iter().map(Msg::sqlstate).collect::<Vec<_>>();
    assert_eq!(codes(&v), codes(&d), "SQLSTATEs differ");
    v
}

#[test]
fn p01_error_in_the_middle_of_a_pipeline() {
    let db = support::fresh_database("p01");
    support::cluster()
        .run_sql(&db, "CREATE TABLE t(id int)")
        .unwrap();
    let proxy = TestProxy::start();
    let script = batch(&[
        p("", "INSERT INTO t VALUES (1)", &[]),
        b("", "", &[]),
        d_p(""),
        e("", 0),
        p("", "SELEC 1", &[]),
        b("", "", &[]),
        d_p(""),
        e("", 0),
        p("", "SELECT 3", &[]),
        b("", "", &[]),
        d_p(""),
        e("", 0),
        c_s(""),
        s(),
    ]);
    let v = assert_same(&db, &proxy, &script, 1);
    assert_eq!(tags(&v), "1 2 n C E Z");
    assert_eq!(v[4].sqlstate().as_deref(), Some("42601"));
    let count = support::cluster()
        .run_sql(&db, "SELECT count(*) FROM t")
        .unwrap();
    assert_eq!(
        count.trim(),
        "0",
        "the implicit transaction was rolled back"
    );
    // The session stays usable and in step afterwards.
    let v = assert_same(&db, &proxy, &q("SELECT 1"), 1);
    assert_eq!(tags(&v), "T D C Z");
}

#[test]
fn p03_flush_instead_of_sync() {
    let db = support::fresh_database("p03");
    support::cluster()
        .run_sql(
            &db,
            "CREATE TABLE c(id int, ssn text); INSERT INTO c VALUES (1, 'x')",
        )
        .unwrap();
    let proxy = TestProxy::start();
    let mut conn = RawConn::connect(proxy.addr, "postgres", &db);
    conn.send(&batch(&[
        p("", "SELECT ssn FROM c WHERE id = $1", &[]),
        d_s(""),
        h(),
    ]));
    let first = conn.read_for(Duration::from_millis(500));
    assert_eq!(
        tags(&first),
        "1 t T",
        "Flush must deliver without a ReadyForQuery"
    );
    conn.send(&batch(&[b("", "", &[Some("1")]), e("", 0), s()]));
    assert_eq!(tags(&conn.read_until_ready(1)), "2 D C Z");
}

#[test]
fn p04_statement_registry_lifecycle() {
    let db = support::fresh_database("p04");
    support::cluster()
        .run_sql(&db, "CREATE TABLE t(id int)")
        .unwrap();
    let proxy = TestProxy::start();
    // A failed Parse registers nothing; a retry after Sync works.
    let script = batch(&[
        p("s1", "SELEC 1", &[]),
        s(),
        p("s1", "SELECT 1", &[]),
        b("", "s1", &[]),
        e("", 0),
        s(),
    ]);
    let v = assert_same(&db, &proxy, &script, 2);
    assert_eq!(tags(&v), "E Z 1 2 D C Z");
    // DEALLOCATE ALL in a pipeline, then a new statement.
    let script = batch(&[
        p("a", "SELECT 1", &[]),
        s(),
        q("DEALLOCATE ALL"),
        p("b", "SELECT 2", &[]),
        b("", "b", &[]),
        e("", 0),
        b("", "a", &[]),
        e("", 0),
        s(),
    ]);
    let v = assert_same(&db, &proxy, &script, 3);
    assert_eq!(tags(&v), "1 Z C Z 1 2 D C E Z");
    // The unnamed statement is replaced by every later unnamed Parse.
    let script = batch(&[
        p("", "BEGIN", &[]),
        p("", "INSERT INTO t VALUES ($1)", &[23]),
        b("", "", &[Some("5")]),
        e("", 0),
        s(),
    ]);
    let v = assert_same(&db, &proxy, &script, 1);
    assert_eq!(tags(&v), "1 1 2 C Z");
}

#[test]
fn p05_bind_format_codes_and_nulls() {
    let db = support::fresh_database("p05");
    let proxy = TestProxy::start();
    let one = 1i32.to_be_bytes();
    let script = batch(&[
        p("", "SELECT $1::int4, $2::int4", &[23, 23]),
        b_full("", "", &[1], &[Some(&one), Some(&one)], &[]),
        e("", 0),
        s(),
        b_full("", "", &[], &[Some(b"7"), None], &[]),
        e("", 0),
        s(),
        p("", "SELECT 1", &[]),
        b_full("", "", &[], &[], &[]),
        e("", 0),
        s(),
        p("", "SELECT $1::int4", &[23]),
        b_full("", "", &[], &[], &[]),
        e("", 0),
        s(),
    ]);
    let v = assert_same(&db, &proxy, &script, 4);
    assert_eq!(tags(&v), "1 2 D C Z 2 D C Z 1 2 D C Z 1 E Z");
    assert_eq!(v.last().map(|m| m.tag), Some(b'Z'));
    assert_eq!(v[15].sqlstate().as_deref(), Some("08P01"));
}

#[test]
fn p07_copy_through_the_extended_protocol() {
    let db = support::fresh_database("p07");
    support::cluster()
        .run_sql(&db, "CREATE TABLE t(id int, name text)")
        .unwrap();
    let proxy = TestProxy::start();
    for conn_addr in [support::cluster().addr(), proxy.addr] {
        let mut conn = RawConn::connect(conn_addr, "postgres", &db);
        conn.send(&batch(&[
            p("", "COPY t FROM STDIN", &[]),
            b("", "", &[]),
            e("", 0),
            s(),
        ]));
        let first = conn.read_for(Duration::from_millis(300));
        assert_eq!(tags(&first), "1 2 G");
        conn.send(&batch(&[copy_data(b"1\tone\n2\ttwo\n"), copy_done(), s()]));
        assert_eq!(
            tags(&conn.read_until_ready(1)),
            "C Z",
            "one Z for two Syncs"
        );
        // Still in step: the next query answers normally.
        conn.send(&q("SELECT count(*) FROM t"));
        assert_eq!(tags(&conn.read_until_ready(1)), "T D C Z");
    }
    let count = support::cluster()
        .run_sql(&db, "SELECT count(*) FROM t")
        .unwrap();
    assert_eq!(count.trim(), "4");
}

#[test]
fn p08_unrequested_messages() {
    let db = support::fresh_database("p08");
    let proxy = TestProxy::start();
    let script = batch(&[
        q("SET application_name = 'a1'; SET application_name = 'a2'"),
        q("DROP TABLE IF EXISTS nope"),
    ]);
    let v = assert_same(&db, &proxy, &script, 2);
    // Postgres reports the final value once, before ReadyForQuery.
    assert_eq!(tags(&v), "C C S Z N C Z");
}

#[test]
fn p09_empty_queries() {
    let db = support::fresh_database("p09");
    let proxy = TestProxy::start();
    let script = batch(&[
        q(";"),
        q(""),
        q("-- only a comment"),
        q("BEGIN"),
        q("SELECT 1/0"),
        q(";"),
        q("-- c"),
        q("ROLLBACK"),
        p("", "", &[]),
        b("", "", &[]),
        e("", 0),
        s(),
    ]);
    let v = assert_same(&db, &proxy, &script, 9);
    assert_eq!(tags(&v), "I Z I Z I Z C Z E Z I Z I Z C Z 1 2 I Z");
}

#[test]
fn p10_several_statements_in_one_query() {
    let db = support::fresh_database("p10");
    support::cluster()
        .run_sql(&db, "CREATE TABLE t(id int)")
        .unwrap();
    let proxy = TestProxy::start();
    let v = assert_same(
        &db,
        &proxy,
        &q("INSERT INTO t VALUES (1); SELECT 1/0; INSERT INTO t VALUES (2)"),
        1,
    );
    assert_eq!(tags(&v), "C E Z");
    let count = support::cluster()
        .run_sql(&db, "SELECT count(*) FROM t")
        .unwrap();
    assert_eq!(count.trim(), "0");
    let v = assert_same(&db, &proxy, &q("SELECT 1; SELECT 2"), 1);
    assert_eq!(tags(&v), "T D C T D C Z");
}

#[test]
fn execute_row_limits_and_portal_suspended() {
    let db = support::fresh_database("rowlimit");
    let proxy = TestProxy::start();
    let script = batch(&[
        q("BEGIN"),
        p("", "SELECT generate_series(1, 5)", &[]),
        b("c1", "", &[]),
        e("c1", 2),
        e("c1", 2),
        e("c1", 2),
        s(),
        q("COMMIT"),
    ]);
    let v = assert_same(&db, &proxy, &script, 3);
    assert_eq!(tags(&v), "C Z 1 2 D D s D D s D C Z C Z");
}

#[test]
fn p14_negotiation_then_plain_startup() {
    let db = support::fresh_database("p14");
    let proxy = TestProxy::start();
    let mut conn = RawConn::open(proxy.addr);
    conn.send(&gssenc_request());
    assert_eq!(conn.read_raw(Duration::from_millis(300)), b"N");
    conn.send(&ssl_request());
    assert_eq!(conn.read_raw(Duration::from_millis(300)), b"N");
    conn.send(&startup(&[("user", "postgres"), ("database", &db)]));
    let msgs = conn.read_until_ready(1);
    assert_eq!(msgs.first().map(|m| m.tag), Some(b'R'));
    // Bytes pipelined right after SSLRequest are a protocol violation, not data.
    let mut conn = RawConn::open(proxy.addr);
    conn.send(&batch(&[ssl_request(), startup(&[("user", "postgres")])]));
    let reply = conn.read_for(Duration::from_millis(500));
    assert_eq!(tags(&reply), "E");
    assert_eq!(reply[0].sqlstate().as_deref(), Some("08P01"));
}

#[test]
fn framing_violations_end_the_connection_with_08p01() {
    let db = support::fresh_database("framing");
    let proxy = TestProxy::start();
    // An impossible length.
    let mut conn = RawConn::connect(proxy.addr, "postgres", &db);
    conn.send(b"Q\x00\x00\x00\x02");
    let reply = conn.read_for(Duration::from_millis(500));
    assert_eq!(
        reply.last().and_then(Msg::sqlstate).as_deref(),
        Some("08P01")
    );
    // An unknown startup code.
    let mut conn = RawConn::open(proxy.addr);
    conn.send(&[0, 0, 0, 8, 0, 9, 9, 9]);
    let reply = conn.read_for(Duration::from_millis(500));
    assert_eq!(
        reply.first().and_then(Msg::sqlstate).as_deref(),
        Some("08P01")
    );
    // An absurd startup length.
    let mut conn = RawConn::open(proxy.addr);
    conn.send(&[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]);
    let reply = conn.read_for(Duration::from_millis(500));
    assert_eq!(
        reply.first().and_then(Msg::sqlstate).as_deref(),
        Some("08P01")
    );
    // A server error does not end the connection.
    let mut conn = RawConn::connect(proxy.addr, "postgres", &db);
    conn.send(&batch(&[q("SELECT * FROM nope"), q("SELECT 1")]));
    assert_eq!(tags(&conn.read_until_ready(2)), "E Z T D C Z");
}

/// A second SSLRequest after the first was answered is refused as Postgres refuses it.
#[test]
fn p14_a_repeated_ssl_request_is_refused_like_postgres() {
    let proxy = TestProxy::start();
    let mut answers = Vec::new();
    for addr in [support::cluster().addr(), proxy.addr] {
        let mut conn = RawConn::open(addr);
        conn.send(&ssl_request());
        assert_eq!(conn.read_raw(Duration::from_millis(300)), b"N");
        conn.send(&ssl_request());
        let reply = conn.read_for(Duration::from_millis(500));
        answers.push((tags(&reply), reply.first().and_then(Msg::sqlstate)));
    }
    assert_eq!(answers[1], answers[0], "proxy vs direct");
}
