//! Policy enforcement through the proxy against the real PostgreSQL (issue 4): permissions
//! (S-06), rule actions and modes, rate limits, failed-login locks, a Bind refused inside a
//! pipeline (P-02), and no slow-down of other sessions with many rules (S-08).

mod policy_common;
mod support;

use policy_common::*;
use std::time::{Duration, Instant};
use support::wire::*;

fn roles_policy(reader: &str, exporter: &str, rules: &str) -> String {
    format!(
        "{TABLES}\
roles:
  SUPPORT:  [ \"internal:read\", \"public:read\" ]
  ANALYST:  [ \"internal:read\", \"confidential:read\", \"restricted:read\", \"data:export\" ]
principals:
  {reader}: [ SUPPORT ]
  {exporter}: [ ANALYST ]
{rules}"
    )
}

#[test]
fn s06_select_without_permission_is_blocked_and_audited() {
    let f = fixture("s06", 5);
    let policy = roles_policy(
        &f.alice,
        &f.bob,
        "rules:\n  - { name: bulk-export, class: CONFIDENTIAL, statement: copy_to, action: block, severity: HIGH }\n",
    );
    let (proxy, _dir) = proxy(&policy);

    let mut alice = RawConn::connect(proxy.addr, &f.alice, &f.db);
    let r = query(&mut alice, "SELECT email FROM customers WHERE id = 1");
    let (state, message) = error_of(&r).expect("refused");
    assert_eq!(state, "42501");
    assert!(message.contains("confidential:read"), "{message}");
    assert_eq!(count(&r, b'D'), 0);
    // The connection stays usable; what the role may read still works.
    let r = query(&mut alice, "SELECT id FROM customers WHERE id = 1");
    assert_eq!(count(&r, b'D'), 1, "{}", tags(&r));

    // A rule block names the rule.
    let mut bob = RawConn::connect(proxy.addr, &f.bob, &f.db);
    let r = query(&mut bob, "COPY (SELECT email FROM customers) TO STDOUT");
    let (state, message) = error_of(&r).expect("rule block");
    assert_eq!(state, "42501");
    assert!(message.contains("bulk-export"), "{message}");
    assert_eq!(count(&r, b'd'), 0);
    let r = query(&mut bob, "SELECT email FROM customers WHERE id = 2");
    assert_eq!(count(&r, b'D'), 1);
    drop((alice, bob));

    let events = shutdown(proxy);
    let denied = statement(&events, &f.db, "SELECT email FROM customers WHERE");
    assert_eq!(denied["outcome"], "blocked");
    assert_eq!(denied["decision"], "block");
    assert_eq!(denied["sqlstate"], "42501");
    assert!(
        strings(&denied["permissions_required"])
            .iter()
            .any(|p| p.starts_with("confidential:read")),
        "{denied}"
    );
    assert_eq!(
        strings(&denied["permissions_held"]),
        vec!["internal:read".to_string(), "public:read".to_string()]
    );
    let copy = statement(&events, &f.db, "COPY");
    assert_eq!(copy["outcome"], "blocked");
    assert_eq!(strings(&copy["rules"]), vec!["bulk-export".to_string()]);
    assert!(strings(&copy["permissions_required"]).contains(&"data:export".to_string()));
}

#[test]
fn without_roles_nothing_is_blocked_but_rules_still_apply() {
    let f = fixture("noroles", 3);
    let policy = format!(
        "{TABLES}rules:\n  - {{ name: watch-ssn, class: RESTRICTED, action: alert, severity: HIGH }}\n"
    );
    let (proxy, _dir) = proxy(&policy);
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    let r = query(&mut c, "SELECT ssn, email FROM customers");
    assert_eq!(count(&r, b'D'), 3, "{}", tags(&r));
    drop(c);
    let events = shutdown(proxy);
    let ev = statement(&events, &f.db, "SELECT ssn, email");
    assert_eq!(ev["decision"], "alert");
    assert_eq!(ev["outcome"], "ok");
    assert!(strings(&ev["permissions_held"]).is_empty());
    let alerts = events_of(&events, &f.db, "alert");
    assert!(alerts
        .iter()
        .any(|a| a["rule"] == "watch-ssn" && a["severity"] == "HIGH"));
}

#[test]
fn monitor_mode_turns_a_block_into_an_alert() {
    let f = fixture("monitor", 4);
    let policy = format!(
        "{TABLES}rules:\n  - {{ name: dry-run, class: RESTRICTED, action: block, mode: monitor, severity: CRITICAL }}\n"
    );
    let (proxy, _dir) = proxy(&policy);
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    let r = query(&mut c, "SELECT ssn FROM customers");
    assert!(error_of(&r).is_none(), "{:?}", error_of(&r));
    assert_eq!(count(&r, b'D'), 4);
    drop(c);
    let events = shutdown(proxy);
    let ev = statement(&events, &f.db, "SELECT ssn FROM customers");
    assert_eq!(ev["decision"], "alert");
    assert_eq!(strings(&ev["rules"]), vec!["dry-run".to_string()]);
    let alerts = events_of(&events, &f.db, "alert");
    assert!(alerts
        .iter()
        .any(|a| a["rule"] == "dry-run" && a["severity"] == "CRITICAL"));
}

#[test]
fn outside_hours_and_classes_together_raise_alerts() {
    let f = fixture("hours", 2);
    // A half hour two hours from now, every day: now is outside it.
    let hour = (time::OffsetDateTime::now_utc().hour() + 2) % 24;
    let policy = format!(
        "{TABLES}rules:\n\
  - {{ name: after-hours, class: CONFIDENTIAL, outside_hours: \"Mon-Sun {hour:02}:00-{hour:02}:30 UTC\", action: alert }}\n\
  - {{ name: in-hours, class: CONFIDENTIAL, outside_hours: \"Mon-Sun 00:00-23:59 UTC\", action: alert }}\n\
  - {{ name: cross-class, classes_together: [RESTRICTED, CONFIDENTIAL], action: alert, severity: HIGH }}\n"
    );
    let (proxy, _dir) = proxy(&policy);
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    let r = query(&mut c, "SELECT email FROM customers");
    assert_eq!(count(&r, b'D'), 2);
    let r = query(&mut c, "SELECT ssn, email FROM customers");
    assert_eq!(count(&r, b'D'), 2);
    drop(c);
    let events = shutdown(proxy);
    let first = statement(&events, &f.db, "SELECT email FROM");
    let rules = strings(&first["rules"]);
    // 23:59 is still "in hours" for one minute a day; the rule under test is after-hours.
    assert!(rules.contains(&"after-hours".to_string()), "{rules:?}");
    assert!(!rules.contains(&"cross-class".to_string()), "{rules:?}");
    let both = statement(&events, &f.db, "SELECT ssn, email");
    assert!(strings(&both["rules"]).contains(&"cross-class".to_string()));
    let alerts = events_of(&events, &f.db, "alert");
    assert!(alerts.iter().any(|a| a["rule"] == "after-hours"));
    assert!(alerts
        .iter()
        .any(|a| a["rule"] == "cross-class" && a["severity"] == "HIGH"));
}

#[test]
fn a_refused_statement_refuses_its_whole_query_and_the_transaction_fails() {
    let f = fixture("multi", 3);
    let (proxy, _dir) = proxy(&roles_policy(&f.alice, &f.bob, ""));
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    let r = query(&mut c, "BEGIN");
    assert_eq!(status(&r), b'T');
    let r = query(
        &mut c,
        "UPDATE customers SET name = 'x' WHERE id = 1; SELECT email FROM customers",
    );
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("42501"));
    assert_eq!(
        status(&r),
        b'E',
        "the transaction is failed like after a server error"
    );
    let r = query(&mut c, "SELECT 1");
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("25P02"));
    query(&mut c, "ROLLBACK");
    let r = query(&mut c, "SELECT 1");
    assert_eq!(count(&r, b'D'), 1);
    drop(c);
    let names = support::cluster()
        .run_sql(&f.db, "SELECT count(*) FROM customers WHERE name = 'x'")
        .unwrap();
    assert_eq!(names.trim(), "0", "nothing of the refused Query ran");
    let events = shutdown(proxy);
    let update = statement(&events, &f.db, "UPDATE customers");
    assert_eq!(update["outcome"], "blocked");
    let select = statement(&events, &f.db, "SELECT email FROM customers");
    assert_eq!(select["outcome"], "blocked");
    assert_eq!(select["decision"], "block");
}

#[test]
fn p02_bind_refused_by_policy_inside_a_pipeline() {
    let f = fixture("p02", 3);
    let (proxy, _dir) = proxy(&roles_policy(&f.alice, &f.bob, ""));
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    c.send(&batch(&[
        p("", "SELECT email FROM customers WHERE id = $1", &[23]),
        b("", "", &[Some("1")]),
        d_p(""),
        e("", 0),
    ]));
    // Nothing may arrive before the client's Sync: not even the ParseComplete is flushed
    // without a Flush or Sync, and never a ReadyForQuery.
    let early = c.read_for(Duration::from_millis(300));
    assert!(early.iter().all(|m| m.tag != b'Z'), "{}", tags(&early));
    c.send(&s());
    let mut r = early;
    r.extend(c.read_until_ready(1));
    assert_eq!(tags(&r), "1 E Z");
    assert_eq!(r[1].sqlstate().as_deref(), Some("42501"));
    // The upstream session is in step: the next batch works.
    c.send(&batch(&[
        p("", "SELECT id FROM customers WHERE id = $1", &[23]),
        b("", "", &[Some("2")]),
        e("", 0),
        s(),
    ]));
    assert_eq!(tags(&c.read_until_ready(1)), "1 2 D C Z");
    drop(c);
    let events = shutdown(proxy);
    let ev = statement(&events, &f.db, "SELECT email FROM customers");
    assert_eq!(ev["outcome"], "blocked");
    assert_eq!(ev["sqlstate"], "42501");
}

#[test]
fn a_name_reused_for_a_forbidden_statement_is_not_run_under_the_old_decision() {
    let f = fixture("reuse", 3);
    let (proxy, _dir) = proxy(&roles_policy(&f.alice, &f.bob, ""));
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    // s1 is a permitted statement; a second Parse of s1 fails on the server (the name is
    // taken) but the proxy cannot know that in advance: it decides on both candidates.
    c.send(&batch(&[p("s1", "SELECT id FROM customers", &[]), s()]));
    assert_eq!(tags(&c.read_until_ready(1)), "1 Z");
    c.send(&batch(&[
        p("s1", "SELECT email FROM customers", &[]),
        s(),
        b("", "s1", &[]),
        e("", 0),
        s(),
    ]));
    let r = c.read_until_ready(2);
    assert_eq!(tags(&r), "E Z E Z");
    assert_eq!(r[0].sqlstate().as_deref(), Some("42P05"));
    assert_eq!(r[2].sqlstate().as_deref(), Some("42501"));
}

#[test]
fn rate_limit_refuses_excess_statements_with_53400() {
    let f = fixture("rate", 1);
    let policy =
        format!("{TABLES}security:\n  rate_limit: {{ per_user: 5/1m, total_alert: 3/1m }}\n");
    let (proxy, _dir) = proxy(&policy);
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    for i in 0..5 {
        let r = query(&mut c, "SELECT 1");
        assert!(error_of(&r).is_none(), "statement {i}: {:?}", error_of(&r));
    }
    let r = query(&mut c, "SELECT 1");
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("53400"));
    assert_eq!(status(&r), b'I');
    // Another user has its own budget.
    let mut other = RawConn::connect(proxy.addr, &f.bob, &f.db);
    let r = query(&mut other, "SELECT 1");
    assert!(error_of(&r).is_none());
    drop((c, other));
    let events = shutdown(proxy);
    assert!(events_of(&events, &f.db, "statement")
        .iter()
        .any(|e| e["sqlstate"] == "53400" && e["outcome"] == "blocked"));
    assert!(events
        .iter()
        .any(|e| e["kind"] == "alert" && e["rule"] == "rate_limit.total_alert"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_lock_the_user_at_the_proxy_with_28000() {
    let db = support::fresh_database("lock");
    let user = support::create_md5_role("lock", "right-password");
    let other = support::create_md5_role("lockother", "pw2");
    let policy = format!(
        "{TABLES}security:\n  failed_logins: {{ warn: 2/5m, lock: 3/5m, lock_for: 10m }}\n"
    );
    let (proxy, _dir) = proxy(&policy);
    for _ in 0..3 {
        let Err(err) = support::connect(&proxy.conn_str(&db, &user, Some("wrong"))).await else {
            panic!("a wrong password must fail");
        };
        assert_eq!(
            err.as_db_error().map(|e| e.code().code()),
            Some("28P01"),
            "{err}"
        );
    }
    let Err(err) = support::connect(&proxy.conn_str(&db, &user, Some("right-password"))).await
    else {
        panic!("locked even with the right password");
    };
    let db_err = err.as_db_error().expect("a server-style error");
    assert_eq!(db_err.code().code(), "28000");
    assert!(db_err.message().contains("locked"), "{}", db_err.message());
    // Another user is not locked.
    let c = support::connect(&proxy.conn_str(&db, &other, Some("pw2")))
        .await
        .expect("another user logs in");
    c.simple_query("SELECT 1").await.unwrap();
    drop(c);
    let events = tokio::task::spawn_blocking(move || shutdown(proxy))
        .await
        .unwrap();
    let mine = |e: &&serde_json::Value| e["user"] == user.as_str();
    assert!(events
        .iter()
        .filter(mine)
        .any(|e| e["kind"] == "auth_failed" && e["sqlstate"] == "28000"));
    assert!(events.iter().filter(mine).any(|e| e["kind"] == "alert"
        && e["rule"] == "failed_logins.warn"
        && e["severity"] == "MEDIUM"));
    let locks = events
        .iter()
        .filter(mine)
        .filter(|e| e["kind"] == "alert" && e["rule"] == "failed_logins.lock")
        .count();
    assert!(locks >= 2, "the lock and the refused login each alert");
    assert!(events.iter().filter(mine).all(|e| e["kind"] != "alert"
        || e["severity"] != "CRITICAL"
        || e["rule"] == "failed_logins.lock"));
}

#[test]
fn s08_slow_neighbour_with_a_dozen_rules() {
    let f = fixture("s08", 10);
    let mut rules = String::from("rules:\n");
    for i in 0..12 {
        rules.push_str(&format!(
            "  - {{ name: r{i}, class: CONFIDENTIAL, rows_per_session: {}, action: alert }}\n",
            1000 + i
        ));
    }
    let (proxy, _dir) = proxy(&format!("{TABLES}{rules}"));
    let mut slow = RawConn::connect(proxy.addr, &f.alice, &f.db);
    slow.send(&q("SELECT pg_sleep(3), count(*) FROM customers"));
    std::thread::sleep(Duration::from_millis(200));
    let mut fast = RawConn::connect(proxy.addr, &f.bob, &f.db);
    let start = Instant::now();
    for _ in 0..100 {
        let r = query(&mut fast, "SELECT name FROM customers WHERE id = 1");
        assert_eq!(count(&r, b'D'), 1);
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "100 statements took {took:?}"
    );
    let r = slow.read_until_ready(1);
    assert_eq!(count(&r, b'D'), 1);
}

/// Review H9 / Q-01: under access control, statements the parser rejects still run when
/// they name their tables plainly or touch none, but a statement that hides its tables
/// (Unicode-escaped identifiers, dynamic SQL in a DO block) is refused with 42501.
#[test]
fn unparsed_statements_that_hide_their_tables_are_refused() {
    let f = fixture("hidden", 3);
    let policy = format!(
        "{TABLES}roles:\n  ALL: [ \"*:*\" ]\nprincipals:\n  {}: [ ALL ]\n",
        f.alice
    );
    let (proxy, _dir) = proxy(&policy);
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    for sql in [
        r#"SELECT ssn FROM U&"\0063ustomers" LIMIT 1"#,
        "DO $$ BEGIN EXECUTE 'SELECT ssn FROM ' || 'customers'; END $$",
    ] {
        let r = query(&mut c, sql);
        assert_eq!(
            error_of(&r).map(|e| e.0).as_deref(),
            Some("42501"),
            "{sql}: {}",
            tags(&r)
        );
    }
    for sql in [
        "DO $$ BEGIN PERFORM count(*) FROM customers; END $$",
        "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE",
        "ROLLBACK",
    ] {
        let r = query(&mut c, sql);
        assert!(error_of(&r).is_none(), "{sql}: {:?}", error_of(&r));
    }
}

/// Review item 12: `BEGIN; <refused>` in one Query leaves the transaction block open and
/// failed on both sides, exactly as a server error in its second statement would.
#[test]
fn a_refused_statement_after_begin_in_one_query_fails_the_open_transaction() {
    let f = fixture("beginref", 3);
    let policy = format!(
        "{TABLES}roles:\n  READER: [ \"internal:*\" ]\nprincipals:\n  {}: [ READER ]\n",
        f.alice
    );
    let (proxy, _dir) = proxy(&policy);
    let mut c = RawConn::connect(proxy.addr, &f.alice, &f.db);
    let r = query(&mut c, "BEGIN; SELECT email FROM customers");
    assert_eq!(tags(&r), "C E Z", "{}", tags(&r));
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("42501"));
    assert_eq!(status(&r), b'E', "the transaction block is open and failed");
    let r = query(&mut c, "SELECT id FROM customers");
    assert_eq!(error_of(&r).map(|e| e.0).as_deref(), Some("25P02"));
    let r = query(&mut c, "ROLLBACK");
    assert!(error_of(&r).is_none());
    assert_eq!(status(&r), b'I');
    let events = proxy.shutdown();
    let begin = events
        .iter()
        .filter(|e| e["kind"] == "statement" && e["statement_kind"] == "transaction")
        .count();
    assert!(begin >= 2, "BEGIN and ROLLBACK audited once each as run");
}
