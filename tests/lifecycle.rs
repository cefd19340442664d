//! Session lifecycle through pgvigil (../shared/cases/protocol.md P-11..P-13, security.md
//! S-08): cancel requests, clients that disappear mid-query, a slow neighbour, and the
//! message-size limit. What is observed is PostgreSQL's own state (pg_stat_activity, row
//! locks, SQLSTATEs), polled against a deadline rather than timed.

mod support;

use std::time::{Duration, Instant};
use support::proxy::{ProxyOptions, TestProxy};
use support::wire::*;
use tokio_postgres::{Client, NoTls};

/// How long PostgreSQL gets to reflect what the proxy did before a test fails.
const DEADLINE: Duration = Duration::from_secs(15);

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_owned())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

/// A tokio-postgres client through the proxy with this application_name.
async fn via_named(proxy: &TestProxy, db: &str, app: &str) -> Client {
    support::connect(&format!(
        "{} application_name={app}",
        proxy.conn_str(db, "postgres", None)
    ))
    .await
    .expect("connect through the proxy")
}

/// States of the sessions named `app`, as PostgreSQL sees them.
async fn activity(direct: &Client, app: &str) -> Vec<(String, Option<String>)> {
    direct
        .query(
            "SELECT coalesce(state, ''), wait_event_type FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Wait until the session named `app` is running a statement (waiting on `wait`, if given).
async fn wait_active(direct: &Client, app: &str, wait: Option<&str>) {
    let start = Instant::now();
    loop {
        let now = activity(direct, app).await;
        if now
            .iter()
            .any(|(s, w)| s == "active" && (wait.is_none() || w.as_deref() == wait))
        {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "session {app} never became active: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until no session named `app` is left.
async fn wait_gone(direct: &Client, app: &str) {
    let start = Instant::now();
    loop {
        let now = activity(direct, app).await;
        if now.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the upstream session {app} is still there after its client left: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn p12_cancel_reaches_the_right_session_only() {
    let db = support::fresh_database("lc_cancel");
    let proxy = TestProxy::start();
    let direct = support::connect_superuser(&db).await;
    let (app, other_app) = (
        support::unique_name("sleeper"),
        support::unique_name("other"),
    );
    let sleeper = via_named(&proxy, &db, &app).await;
    let other = via_named(&proxy, &db, &other_app).await;
    let token = sleeper.cancel_token();
    let sleeping = tokio::spawn(async move {
        let r = sleeper.simple_query("SELECT pg_sleep(60)").await;
        (sleeper, r.map(|_| ()).map_err(|e| sqlstate(&e)))
    });
    let neighbour = tokio::spawn(async move {
        let r = other
            .query_one("SELECT pg_sleep(2)::text, 7::int4", &[])
            .await
            .map(|r| r.get::<_, i32>(1));
        (other, r.map_err(|e| sqlstate(&e)))
    });
    wait_active(&direct, &app, None).await;
    wait_active(&direct, &other_app, None).await;
    // The client connected to the proxy, so its cancel goes to the proxy too.
    token.cancel_query(NoTls).await.unwrap();
    let (sleeper, res) = tokio::time::timeout(Duration::from_secs(30), sleeping)
        .await
        .expect("the cancelled query returns")
        .unwrap();
    assert_eq!(res, Err("57014".to_owned()));
    let (other, res) = neighbour.await.unwrap();
    assert_eq!(res, Ok(7), "the other session is untouched");
    // Both sessions still work.
    for c in [&sleeper, &other] {
        let r = c.query_one("SELECT $1::int4 + 1", &[&1i32]).await.unwrap();
        assert_eq!(r.get::<_, i32>(0), 2);
    }
}

#[test]
fn p12_late_and_unknown_cancels_are_harmless() {
    let db = support::fresh_database("lc_latecancel");
    let proxy = TestProxy::start();
    let (mut session, startup) =
        RawConn::connect_params(proxy.addr, &[("user", "postgres"), ("database", &db)]);
    let (pid, secret) = backend_key(&startup).expect("BackendKeyData through the proxy");
    session.send(&q("SELECT 1"));
    assert_eq!(tags(&session.read_until_ready(1)), "T D C Z");

    // A cancel after the query finished. The proxy closes the cancel connection only once
    // PostgreSQL has processed the request (as libpq expects), so the next query cannot be
    // hit by it.
    let mut cancel = RawConn::open(proxy.addr);
    cancel.send(&cancel_request(pid, &secret));
    assert!(cancel.read_raw(DEADLINE).is_empty(), "no reply to a cancel");
    for i in 0..3 {
        session.send(&q(&format!("SELECT {i}")));
        let msgs = session.read_until_ready(1);
        assert_eq!(tags(&msgs), "T D C Z", "query {i} after a late cancel");
    }

    // Unknown keys: no reply, the connection is closed, nothing else is affected.
    for (pid, secret) in [(pid, vec![0u8; secret.len()]), (1, secret.clone())] {
        let mut cancel = RawConn::open(proxy.addr);
        cancel.send(&cancel_request(pid, &secret));
        assert!(cancel.read_raw(DEADLINE).is_empty());
    }
    session.send(&q("SELECT pg_sleep(0.2), 5"));
    let msgs = session.read_until_ready(1);
    assert_eq!(tags(&msgs), "T D C Z");
    let mut fresh = RawConn::connect(proxy.addr, "postgres", &db);
    fresh.send(&q("SELECT 6"));
    assert_eq!(tags(&fresh.read_until_ready(1)), "T D C Z");
}

/// Start `script` on a raw session named `app` through the proxy, wait until PostgreSQL
/// runs it, then vanish without a Terminate.
async fn start_and_vanish(
    proxy: &TestProxy,
    db: &str,
    app: &str,
    script: Vec<u8>,
    direct: &Client,
    wait: Option<&str>,
) {
    let (mut conn, _) = RawConn::connect_params(
        proxy.addr,
        &[
            ("user", "postgres"),
            ("database", db),
            ("application_name", app),
        ],
    );
    conn.send(&script);
    wait_active(direct, app, wait).await;
    drop(conn);
}

#[tokio::test]
async fn p13_client_disappears_during_a_long_query() {
    let db = support::fresh_database("lc_vanish");
    let proxy = TestProxy::start();
    let direct = support::connect_superuser(&db).await;
    // Simple protocol.
    let app = support::unique_name("vanish_simple");
    start_and_vanish(&proxy, &db, &app, q("SELECT pg_sleep(300)"), &direct, None).await;
    wait_gone(&direct, &app).await;
    // Extended protocol, Flush instead of Sync: the Execute is running, no Sync was sent.
    let app = support::unique_name("vanish_ext");
    let script = batch(&[
        p("", "SELECT pg_sleep(300)", &[]),
        b("", "", &[]),
        e("", 0),
        h(),
    ]);
    start_and_vanish(&proxy, &db, &app, script, &direct, None).await;
    wait_gone(&direct, &app).await;
    // The proxy still serves.
    let via = proxy.connect(&db).await;
    assert_eq!(
        via.query_one("SELECT 3", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        3
    );
}

#[tokio::test]
async fn p13_client_disappears_inside_a_transaction_and_a_blocked_update() {
    let db = support::fresh_database("lc_locks");
    support::cluster()
        .run_sql(
            &db,
            "CREATE TABLE t(id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)",
        )
        .unwrap();
    let proxy = TestProxy::start();
    let mut direct = support::connect_superuser(&db).await;

    // Killed while idle inside a transaction holding a row lock: the lock is released.
    let app = support::unique_name("vanish_tx");
    let (mut conn, _) = RawConn::connect_params(
        proxy.addr,
        &[
            ("user", "postgres"),
            ("database", &db),
            ("application_name", &app),
        ],
    );
    conn.send(&q(
        "BEGIN; UPDATE t SET v = 100 WHERE id = 1; SELECT v FROM t WHERE id = 1 FOR UPDATE",
    ));
    let msgs = conn.read_until_ready(1);
    assert_eq!(tags(&msgs), "C C T D C Z");
    drop(conn);
    // lock_timeout is the deadline: the UPDATE fails with 55P03 if the lock is still held.
    direct
        .batch_execute("SET lock_timeout = '15s'")
        .await
        .unwrap();
    let n = direct
        .execute("UPDATE t SET v = v + 1 WHERE id = 1", &[])
        .await
        .unwrap_or_else(|e| panic!("the row lock was not released: {e}"));
    assert_eq!(n, 1);
    let v: i32 = direct
        .query_one("SELECT v FROM t WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 1, "the vanished client's transaction was rolled back");
    wait_gone(&direct, &app).await;

    // Killed while its UPDATE waits for a lock held elsewhere: only a cancel can end it
    // while the lock is still held, so the upstream session disappearing proves it.
    let tx = direct.transaction().await.unwrap();
    tx.query("SELECT * FROM t WHERE id = 1 FOR UPDATE", &[])
        .await
        .unwrap();
    let app = support::unique_name("vanish_blocked");
    let watcher = support::connect_superuser(&db).await;
    start_and_vanish(
        &proxy,
        &db,
        &app,
        q("UPDATE t SET v = 999 WHERE id = 1"),
        &watcher,
        Some("Lock"),
    )
    .await;
    wait_gone(&watcher, &app).await;
    tx.rollback().await.unwrap();
    let v: i32 = direct
        .query_one("SELECT v FROM t WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 1, "the cancelled UPDATE changed nothing");
}

#[tokio::test]
async fn s08_slow_neighbour_does_not_hold_up_other_sessions() {
    let db = support::fresh_database("lc_slow");
    let proxy = TestProxy::start();
    let direct = support::connect_superuser(&db).await;
    let app = support::unique_name("slow");
    let slow = via_named(&proxy, &db, &app).await;
    let token = slow.cancel_token();
    let sleeping = tokio::spawn(async move {
        slow.simple_query("SELECT pg_sleep(30)")
            .await
            .map_err(|e| sqlstate(&e))
            .map(|_| ())
    });
    wait_active(&direct, &app, None).await;
    let fast = proxy.connect(&db).await;
    let st = fast.prepare("SELECT $1::int4 + 1").await.unwrap();
    for i in 0..200i32 {
        let r = fast.query_one(&st, &[&i]).await.unwrap();
        assert_eq!(r.get::<_, i32>(0), i + 1);
        if i % 50 == 0 {
            let r = fast.simple_query("SELECT 1").await.unwrap();
            assert_eq!(r.len(), 3);
        }
    }
    // Ordering, not timing: all 200 finished while the sleeper was still running.
    assert!(!sleeping.is_finished(), "the sleeper finished first");
    assert_eq!(
        activity(&direct, &app).await.first().map(|a| a.0.as_str()),
        Some("active")
    );
    token.cancel_query(NoTls).await.unwrap();
    assert_eq!(sleeping.await.unwrap(), Err("57014".to_owned()));
}

#[tokio::test]
async fn p11_messages_over_the_limit_are_refused_and_others_keep_working() {
    let db = support::fresh_database("lc_limit");
    let limit = 1 << 20;
    let proxy = TestProxy::start_with(ProxyOptions {
        max_message_bytes: Some(limit),
        ..ProxyOptions::default()
    });
    let direct = support::connect_superuser(&db).await;
    let bystander = proxy.connect(&db).await;

    // A client announces a 2 MB Query: refused with 08P01 from the header alone.
    let app = support::unique_name("too_big");
    let (mut conn, _) = RawConn::connect_params(
        proxy.addr,
        &[
            ("user", "postgres"),
            ("database", &db),
            ("application_name", &app),
        ],
    );
    let mut header = vec![b'Q'];
    header.extend_from_slice(&(2u32 << 20).to_be_bytes());
    header.extend_from_slice(b"SELECT ");
    conn.send(&header);
    let msgs = conn.read_for(Duration::from_secs(10));
    assert_eq!(tags(&msgs), "E", "{msgs:?}");
    assert_eq!(msgs[0].sqlstate().as_deref(), Some("08P01"));
    wait_gone(&direct, &app).await;

    // Just under the limit passes, through a real driver.
    let value = "x".repeat(limit - 4096);
    let r = bystander
        .query_one("SELECT length($1::text)", &[&value])
        .await
        .unwrap();
    assert_eq!(r.get::<_, i32>(0), (limit - 4096) as i32);
    // A result row over the limit ends that session with 08P01; others are unaffected.
    let victim = proxy.connect(&db).await;
    let err = victim
        .query("SELECT repeat('y', 2 * 1024 * 1024)", &[])
        .await
        .expect_err("an oversized DataRow");
    assert_eq!(sqlstate(&err), "08P01", "{err}");
    let r = bystander.query_one("SELECT 11", &[]).await.unwrap();
    assert_eq!(r.get::<_, i32>(0), 11);
    let fresh = proxy.connect(&db).await;
    assert_eq!(
        fresh
            .query_one("SELECT 12", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        12
    );
}
