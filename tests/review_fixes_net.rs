//! Regression tests for the network/session review findings: FunctionCall audit and
//! refusal, the startup deadline, Parse/Bind failures audited, a client leaving during
//! COPY FROM STDIN, an unreachable upstream, and an audit file removed under the writer.

mod policy_common;
mod support;

use policy_common::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use support::proxy::{ProxyOptions, TestProxy};
use support::wire::*;

/// query_to_xml(text, bool, bool, text): the function the reviewer used.
const QUERY_TO_XML: u32 = 2924;

/// A FunctionCall ('F') message: function OID, text arguments, text result.
fn function_call(oid: u32, args: &[&str]) -> Vec<u8> {
    let mut body = oid.to_be_bytes().to_vec();
    body.extend_from_slice(&0u16.to_be_bytes());
    body.extend_from_slice(&(args.len() as u16).to_be_bytes());
    for a in args {
        body.extend_from_slice(&(a.len() as u32).to_be_bytes());
        body.extend_from_slice(a.as_bytes());
    }
    body.extend_from_slice(&0u16.to_be_bytes());
    let mut msg = vec![b'F'];
    msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    msg.extend_from_slice(&body);
    msg
}

fn query_to_xml(sql: &str) -> Vec<u8> {
    function_call(QUERY_TO_XML, &[sql, "true", "false", ""])
}

fn roles_policy(reader: &str) -> String {
    format!(
        "{TABLES}\
roles:
  ANALYST:  [ \"internal:read\", \"confidential:read\", \"restricted:read\" ]
principals:
  {reader}: [ ANALYST ]
"
    )
}

#[test]
fn function_call_is_refused_under_access_control_and_audited() {
    let f = fixture("fc_acl", 3);
    let (proxy, _dir) = proxy(&roles_policy(&f.alice));
    let mut alice = RawConn::connect(proxy.addr, &f.alice, &f.db);
    alice.send(&query_to_xml("SELECT ssn FROM customers"));
    let r = alice.read_until_ready(1);
    assert_eq!(tags(&r), "E Z", "{r:?}");
    let (state, message) = error_of(&r).unwrap();
    assert_eq!(state, "42501");
    assert!(message.contains("fast-path function call"), "{message}");
    assert_eq!(status(&r), b'I');
    // Inside a transaction block the refusal fails the transaction, as a server error would.
    query(&mut alice, "BEGIN");
    alice.send(&query_to_xml("SELECT ssn FROM customers"));
    let r = alice.read_until_ready(1);
    assert_eq!(error_of(&r).unwrap().0, "42501");
    assert_eq!(status(&r), b'E');
    query(&mut alice, "ROLLBACK");
    // The session stays in step.
    let r = query(&mut alice, "SELECT id FROM customers WHERE id = 1");
    assert_eq!(count(&r, b'D'), 1, "{}", tags(&r));
    drop(alice);

    let events = shutdown(proxy);
    let calls: Vec<&Value> = events_of(&events, &f.db, "statement")
        .into_iter()
        .filter(|e| e["query"] == "function call (oid 2924)")
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    for ev in calls {
        assert_eq!(ev["statement_kind"], "other");
        assert_eq!(ev["outcome"], "blocked");
        assert_eq!(ev["decision"], "block");
        assert_eq!(ev["sqlstate"], "42501");
        assert_eq!(ev["rows"], 0);
        assert!(!ev.to_string().contains("ssn"), "{ev}");
    }
}

#[test]
fn function_call_without_access_control_is_forwarded_and_audited() {
    let f = fixture("fc_open", 3);
    let (proxy, _dir) = proxy(TABLES);
    let mut conn = RawConn::connect(proxy.addr, &f.alice, &f.db);
    conn.send(&query_to_xml("SELECT ssn FROM customers"));
    let r = conn.read_until_ready(1);
    assert_eq!(tags(&r), "V Z", "{r:?}");
    // A failing call is audited with the server's SQLSTATE.
    conn.send(&function_call(
        QUERY_TO_XML,
        &["SELECT * FROM nope", "t", "f", ""],
    ));
    let r = conn.read_until_ready(1);
    assert_eq!(tags(&r), "E Z");
    assert_eq!(error_of(&r).unwrap().0, "42P01");
    drop(conn);

    let events = shutdown(proxy);
    let calls: Vec<&Value> = events_of(&events, &f.db, "statement")
        .into_iter()
        .filter(|e| e["query"] == "function call (oid 2924)")
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0]["statement_kind"], "other");
    assert_eq!(calls[0]["outcome"], "ok");
    assert_eq!(calls[0]["rows"], 1);
    assert_eq!(calls[1]["outcome"], "error");
    assert_eq!(calls[1]["sqlstate"], "42P01");
    for ev in calls {
        let text = ev.to_string();
        assert!(!text.contains("ssn") && !text.contains("nope"), "{ev}");
    }
}

#[test]
fn statements_failing_at_parse_or_bind_are_audited_once() {
    let f = fixture("pb_fail", 3);
    let policy = format!(
        "{TABLES}\
roles:
  SUPPORT:  [ \"internal:read\", \"public:read\" ]
principals:
  {}: [ SUPPORT ]
",
        f.alice
    );
    let (proxy, _dir) = proxy(&policy);
    let mut conn = RawConn::connect(proxy.addr, &f.alice, &f.db);
    // Fails at Parse: the table does not exist.
    conn.send(&batch(&[
        p("", "SELECT * FROM nope", &[]),
        b("", "", &[]),
        e("", 0),
        s(),
    ]));
    let r = conn.read_until_ready(1);
    assert_eq!(error_of(&r).unwrap().0, "42P01");
    // Fails at Bind: a parameter that is not an integer.
    conn.send(&batch(&[
        p("byid", "SELECT id FROM customers WHERE id = $1", &[23]),
        b("", "byid", &[Some("x")]),
        e("", 0),
        s(),
    ]));
    let r = conn.read_until_ready(1);
    assert_eq!(error_of(&r).unwrap().0, "22P02");
    // Refused at Bind by the policy: still exactly one (blocked) event.
    conn.send(&batch(&[
        p("", "SELECT email FROM customers", &[]),
        b("", "", &[]),
        e("", 0),
        s(),
    ]));
    let r = conn.read_until_ready(1);
    assert_eq!(error_of(&r).unwrap().0, "42501");
    // Bind of a statement that was never prepared.
    conn.send(&batch(&[b("", "never", &[]), e("", 0), s()]));
    let r = conn.read_until_ready(1);
    assert_eq!(error_of(&r).unwrap().0, "26000");
    drop(conn);

    let events = shutdown(proxy);
    let statements = events_of(&events, &f.db, "statement");
    assert_eq!(statements.len(), 4, "{statements:?}");
    let parse = statement(&events, &f.db, "FROM nope");
    assert_eq!(parse["statement_kind"], "select");
    assert_eq!(parse["outcome"], "error");
    assert_eq!(parse["sqlstate"], "42P01");
    let bind = statement(&events, &f.db, "WHERE id = $1");
    assert_eq!(bind["outcome"], "error");
    assert_eq!(bind["sqlstate"], "22P02");
    assert_eq!(
        strings(&bind["tables"]),
        vec!["public.customers".to_string()]
    );
    let refused = statement(&events, &f.db, "SELECT email FROM customers");
    assert_eq!(refused["outcome"], "blocked");
    assert_eq!(refused["sqlstate"], "42501");
    let unknown = statements[3];
    assert_eq!(unknown["statement_kind"], "unparsed");
    assert_eq!(unknown["outcome"], "error");
    assert_eq!(unknown["sqlstate"], "26000");
}

fn proxy_with_startup_timeout(timeout: Duration) -> TestProxy {
    TestProxy::start_with(ProxyOptions {
        startup_timeout: Some(timeout),
        ..ProxyOptions::default()
    })
}

#[test]
fn startup_and_authentication_have_a_deadline() {
    let db = support::fresh_database("st_timeout");
    let user = support::create_md5_role("st_timeout", "secret");
    let proxy = proxy_with_startup_timeout(Duration::from_millis(200));

    // Nothing sent at all: closed silently once the deadline passes.
    let started = Instant::now();
    let mut idle = RawConn::open(proxy.addr);
    assert!(idle.read_raw(Duration::from_secs(10)).is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Half a startup packet: closed silently too.
    let started = Instant::now();
    let mut half = RawConn::open(proxy.addr);
    let packet = startup(&[("user", &user), ("database", &db)]);
    half.send(&packet[..packet.len() / 2]);
    assert!(half.read_raw(Duration::from_secs(10)).is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));

    // A complete startup, but the password request is never answered: FATAL 08P01.
    let started = Instant::now();
    let mut mute = RawConn::open(proxy.addr);
    mute.send(&packet);
    let auth = mute.read_msg().expect("the password request");
    assert_eq!(auth.tag, b'R');
    let fatal = mute.read_msg().expect("the timeout error");
    assert_eq!(fatal.tag, b'E');
    assert_eq!(fatal.sqlstate().as_deref(), Some("08P01"));
    assert!(
        fatal.message().unwrap().contains("timeout during startup"),
        "{fatal:?}"
    );
    assert!(mute.read_msg().is_none(), "the connection is closed");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Sessions that do authenticate in time are unaffected.
    let mut ok = RawConn::connect(proxy.addr, "postgres", &db);
    let r = query(&mut ok, "SELECT 1");
    assert_eq!(count(&r, b'D'), 1);
    drop(ok);

    let events = shutdown(proxy);
    let disconnect = events_of(&events, &db, "disconnect")
        .into_iter()
        .find(|e| e["user"] == user.as_str())
        .expect("a disconnect event for the timed-out login");
    assert_eq!(disconnect["outcome"], "error");
    assert_eq!(disconnect["sqlstate"], "08P01");
}

#[test]
fn an_unreachable_upstream_closes_the_connect_event() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = TestProxy::start_with(ProxyOptions {
        upstream: Some(format!("127.0.0.1:{port}")),
        ..ProxyOptions::default()
    });
    let mut conn = RawConn::open(proxy.addr);
    conn.send(&startup(&[
        ("user", "postgres"),
        ("database", "nowhere_db"),
    ]));
    let fatal = conn.read_msg().expect("an error");
    assert_eq!(fatal.tag, b'E');
    assert_eq!(fatal.sqlstate().as_deref(), Some("08006"));
    assert!(conn.read_msg().is_none());
    drop(conn);

    let events = shutdown(proxy);
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e["database"] == "nowhere_db")
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["connect", "disconnect"]);
    let disconnect = events_of(&events, "nowhere_db", "disconnect")[0];
    assert_eq!(disconnect["outcome"], "error");
    assert_eq!(disconnect["sqlstate"], "08006");
}

#[tokio::test]
async fn a_removed_or_renamed_audit_file_is_reopened() {
    let db = support::fresh_database("audit_reopen");
    let proxy = TestProxy::start();
    let path = proxy.audit_path.clone();
    let client = proxy.connect(&db).await;
    client
        .simple_query("SELECT 1 AS before_removal")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(path.exists());

    std::fs::remove_file(&path).unwrap();
    // The writer checks the path at most once a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client
        .simple_query("SELECT 2 AS after_removal")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = support::proxy::read_events(&path);
    assert!(
        events.iter().any(|e| e["query"]
            .as_str()
            .is_some_and(|q| q.contains("after_removal"))),
        "{events:?}"
    );

    // Rotation by rename: the old name keeps what was written before, the path gets the rest.
    let rotated = path.with_extension("jsonl.1");
    std::fs::rename(&path, &rotated).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client
        .simple_query("SELECT 3 AS after_rename")
        .await
        .unwrap();
    drop(client);
    // Read before shutdown: the rotated file lives in the proxy's temp dir.
    let old = support::proxy::read_events(&rotated);
    let events = proxy.shutdown();
    let has = |events: &[Value], needle: &str| {
        events
            .iter()
            .any(|e| e["query"].as_str().is_some_and(|q| q.contains(needle)))
    };
    assert!(has(&events, "after_rename"), "{events:?}");
    assert!(!has(&events, "after_removal"));
    assert!(events.iter().any(|e| e["kind"] == "disconnect"));
    assert!(has(&old, "after_removal"), "{old:?}");
}

#[test]
fn a_client_leaving_during_copy_from_stdin_leaves_one_complete_event() {
    let db = support::fresh_database("copy_leave");
    support::cluster()
        .run_sql(&db, "CREATE TABLE t(id int)")
        .unwrap();
    let proxy = TestProxy::start();
    // Simple protocol.
    let mut conn = RawConn::connect(proxy.addr, "postgres", &db);
    conn.send(&q("COPY t FROM STDIN"));
    assert_eq!(conn.read_msg().expect("CopyInResponse").tag, b'G');
    conn.send(&copy_data(b"1\n2\n"));
    std::thread::sleep(Duration::from_millis(100));
    drop(conn);
    // Extended protocol (a driver sends Sync right after Execute, before the data).
    let mut conn = RawConn::connect(proxy.addr, "postgres", &db);
    conn.send(&batch(&[
        p("", "COPY t FROM STDIN", &[]),
        b("", "", &[]),
        e("", 0),
        s(),
    ]));
    let mut tags_seen = Vec::new();
    while let Some(m) = conn.read_msg() {
        tags_seen.push(m.tag);
        if m.tag == b'G' {
            break;
        }
    }
    conn.send(&copy_data(b"3\n"));
    std::thread::sleep(Duration::from_millis(100));
    drop(conn);
    std::thread::sleep(Duration::from_millis(500));

    let events = shutdown(proxy);
    let statements = events_of(&events, &db, "statement");
    for ev in &statements {
        assert!(ev["statement_kind"].is_string(), "{ev}");
        assert!(ev["query"].is_string(), "{ev}");
    }
    assert_eq!(statements.len(), 2, "{statements:?}");
    for ev in statements {
        assert_eq!(ev["statement_kind"], "copy_from");
        assert_eq!(ev["outcome"], "error", "{ev}");
    }
}
