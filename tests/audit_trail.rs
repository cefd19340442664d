//! End-to-end tests of the audit trail (SPEC section 6) through the proxy against the real
//! PostgreSQL of the test harness: the fields of every event, connection and authentication
//! events, redaction (S-05), sqlcommenter tags and `SET pgvigil.actor` (Q-03),
//! multi-statement Query, `on_audit_failure`, and nothing lost on SIGTERM. Every event
//! produced here is also checked against `schema/audit-event.schema.json`.

mod audit_common;
mod support;

use audit_common::{columns, direct_rows, dump, one, statements, strings, Fixture};
use pgvigil::config::AuditFailureMode;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use support::proxy::ProxyOptions;
use support::wire::*;
use tokio_postgres::SimpleQueryMessage;

/// Rows of the last CommandComplete of a simple query: what the server reported.
async fn simple(client: &tokio_postgres::Client, sql: &str) -> u64 {
    let msgs = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .last()
        .unwrap_or(0)
}

fn is_rfc3339_with_offset(ts: &str) -> bool {
    // The schema checks the shape; here the offset must be explicit (+00:00 or Z).
    ts.len() > 20 && (ts.ends_with('Z') || ts[ts.len() - 6..].starts_with(['+', '-']))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_gets_one_event_with_every_field() {
    let fx = Fixture::new("every_field");
    let conn = support::connect(&format!(
        "{} application_name=audit-e2e",
        fx.proxy.conn_str(&fx.db, "postgres", None)
    ))
    .await
    .expect("connect through the proxy");

    // (statement, kind, tables) — rows are compared with what the server reported.
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "SELECT id, name FROM customers WHERE id < 3",
            "select",
            &["public.customers"],
        ),
        (
            "INSERT INTO customers(id, name) VALUES (10, 'Dee'), (11, 'Eve')",
            "insert",
            &["public.customers"],
        ),
        (
            "UPDATE customers SET name = 'D' WHERE id >= 10",
            "update",
            &["public.customers"],
        ),
        (
            "DELETE FROM customers WHERE id = 11",
            "delete",
            &["public.customers"],
        ),
        ("CREATE TABLE notes(id int)", "ddl", &["public.notes"]),
        ("SET statement_timeout = '5s'", "set", &[]),
        ("BEGIN", "transaction", &[]),
        ("COMMIT", "transaction", &[]),
        ("LISTEN pgvigil_chan", "other", &[]),
        ("SELECT U&'d!0061t' UESCAPE '!'", "unparsed", &[]),
    ];
    let mut reported = HashMap::new();
    for (sql, _, _) in cases {
        reported.insert(*sql, simple(&conn, sql).await);
    }
    let direct_select = direct_rows(&fx.db, cases[0].0).await;
    assert_eq!(reported[cases[0].0], direct_select);

    // An error: the server's SQLSTATE.
    let err = conn
        .simple_query("SELECT * FROM missing_table")
        .await
        .unwrap_err();
    assert_eq!(
        err.code().map(|c| c.code()),
        Some("42P01"),
        "client sees the server's error: {err}"
    );

    // COPY both ways over the raw wire client.
    let mut raw = RawConn::connect(fx.proxy.addr, "postgres", &fx.db);
    raw.send(&q("COPY customers(id, name) TO STDOUT"));
    let out = raw.read_until_ready(1);
    assert_eq!(tags(&out), "H d d d d c C Z");
    raw.send(&batch(&[
        q("COPY notes(id) FROM STDIN"),
        copy_data(b"1\n2\n3\n"),
        copy_done(),
    ]));
    let copied = raw.read_until_ready(1);
    assert_eq!(tags(&copied), "G C Z");
    raw.send(&x());
    drop(conn);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let events = fx.finish();
    let stmts = statements(&events);
    let session = |ev: &Value| ev["session_id"].as_str().unwrap_or_default().to_owned();
    let main_session = session(one(&events, "SELECT id, name FROM customers WHERE id < $1"));

    for (sql, kind, tables) in cases {
        let analysis = pgvigil::sql::analyze(sql);
        let normalized = &analysis.statements[0].normalized;
        let ev = one(&events, normalized);
        assert_eq!(ev["statement_kind"], *kind, "{sql}: {ev}");
        assert_eq!(strings(&ev["tables"]), *tables, "{sql}: {ev}");
        assert_eq!(
            ev["rows"], reported[sql],
            "{sql}: rows as the server reported"
        );
        assert_eq!(ev["outcome"], "ok", "{sql}: {ev}");
        assert_eq!(ev["decision"], "allow", "{sql}: {ev}");
        assert!(ev.get("sqlstate").is_none(), "{sql}: {ev}");
        assert_eq!(ev["application_name"], "audit-e2e", "{ev}");
        assert_eq!(session(ev), main_session);
    }
    let select = one(&events, "SELECT id, name FROM customers WHERE id < $1");
    assert_eq!(
        columns(select),
        vec![
            (
                "public.customers".into(),
                "id".into(),
                "CONFIDENTIAL".into()
            ),
            (
                "public.customers".into(),
                "name".into(),
                "CONFIDENTIAL".into()
            ),
        ]
    );
    assert_eq!(strings(&select["classes"]), vec!["CONFIDENTIAL"]);

    let missing = one(&events, "SELECT * FROM missing_table");
    assert_eq!(missing["outcome"], "error");
    assert_eq!(missing["sqlstate"], "42P01");
    assert_eq!(missing["decision"], "allow");
    assert_eq!(strings(&missing["tables"]), vec!["public.missing_table"]);

    let copy_to = one(&events, "COPY customers(id, name) TO STDOUT");
    assert_eq!(copy_to["statement_kind"], "copy_to");
    assert_eq!(copy_to["rows"], 4);
    assert_eq!(strings(&copy_to["tables"]), vec!["public.customers"]);
    let copy_from = one(&events, "COPY notes(id) FROM STDIN");
    assert_eq!(copy_from["statement_kind"], "copy_from");
    assert_eq!(copy_from["rows"], 3);

    // Exactly the statements we sent, nothing more (cases + error + 2 COPY).
    assert_eq!(stmts.len(), cases.len() + 3, "{}", dump(&events));

    // Common fields.
    for ev in &events {
        let ts = ev["ts"].as_str().unwrap();
        assert!(is_rfc3339_with_offset(ts), "{ts}");
        assert!(uuid::Uuid::parse_str(ev["event_id"].as_str().unwrap()).is_ok());
        assert_eq!(ev["user"], "postgres");
        assert_eq!(ev["database"], fx_db(&events));
        assert_eq!(ev["client_addr"], "127.0.0.1");
        assert!(ev["client_port"].as_u64().unwrap() > 0);
        assert_eq!(ev["tls"], false);
    }
    for ev in &stmts {
        assert_eq!(ev["fingerprint"].as_str().unwrap().len(), 16, "{ev}");
        assert_eq!(ev["query_hmac"].as_str().unwrap().len(), 64, "{ev}");
        assert!(ev["duration_ms"].as_f64().unwrap() >= 0.0);
    }
    // seq increases by one per event within each session, starting at 1.
    let mut by_session: HashMap<String, Vec<u64>> = HashMap::new();
    for ev in &events {
        by_session
            .entry(session(ev))
            .or_default()
            .push(ev["seq"].as_u64().unwrap());
    }
    assert_eq!(by_session.len(), 2, "two sessions: {}", dump(&events));
    for seqs in by_session.values() {
        let want: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(*seqs, want, "{}", dump(&events));
    }
    // Each session: connect, auth_ok, statements..., disconnect.
    for sid in by_session.keys() {
        let kinds: Vec<&str> = events
            .iter()
            .filter(|e| session(e) == *sid)
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(&kinds[..2], ["connect", "auth_ok"], "{kinds:?}");
        assert_eq!(kinds.last(), Some(&"disconnect"), "{kinds:?}");
    }
}

fn fx_db(events: &[Value]) -> String {
    events[0]["database"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_auth_ok_auth_failed_disconnect() {
    let fx = Fixture::new("auth_events");
    let role = support::create_md5_role("audit", "right-pass");
    let bad = support::connect(&fx.proxy.conn_str(&fx.db, &role, Some("wrong-pass"))).await;
    let Err(err) = bad else {
        panic!("wrong password must fail")
    };
    assert_eq!(err.code().map(|c| c.code()), Some("28P01"), "{err}");
    let good = support::connect(&fx.proxy.conn_str(&fx.db, &role, Some("right-pass")))
        .await
        .expect("right password");
    good.simple_query("SELECT 1").await.unwrap();
    drop(good);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = fx.finish();
    let mut sessions: Vec<Vec<&str>> = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    for ev in &events {
        let sid = ev["session_id"].as_str().unwrap();
        let idx = match ids.iter().position(|s| *s == sid) {
            Some(i) => i,
            None => {
                ids.push(sid);
                sessions.push(Vec::new());
                ids.len() - 1
            }
        };
        sessions[idx].push(ev["kind"].as_str().unwrap());
        assert_eq!(ev["user"], role.as_str());
    }
    assert_eq!(
        sessions,
        vec![
            vec!["connect", "auth_failed"],
            vec!["connect", "auth_ok", "statement", "disconnect"],
        ],
        "{}",
        dump(&events)
    );
    let failed = events.iter().find(|e| e["kind"] == "auth_failed").unwrap();
    assert_eq!(failed["sqlstate"], "28P01");
    assert!(!dump(&events).contains("wrong-pass"));
    assert!(!dump(&events).contains("right-pass"));
}

/// S-05: no secret value in the audit file, whatever form it was sent in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s05_secret_values_never_reach_the_audit_file() {
    let fx = Fixture::new("s05");
    let role = support::unique_name("s05_role");
    let conn = fx.connect().await;
    let secrets = [
        "hunter2",
        "123-45-6789",
        "987-65-4321",
        "555-12-3456",
        "dollar-secret-42",
        "escaped-secret-77",
        "bound-secret-99",
        "tagged-secret-13",
    ];
    conn.batch_execute(&format!("CREATE ROLE {role}"))
        .await
        .unwrap();
    for sql in [
        format!("ALTER ROLE {role} PASSWORD 'hunter2'"),
        "SELECT id FROM customers WHERE ssn = '123-45-6789'".into(),
        "INSERT INTO customers(id, ssn) VALUES (20, '987-65-4321')".into(),
        "INSERT INTO customers(id, ssn) VALUES (21, $$555-12-3456$$)".into(),
        "SELECT id FROM customers WHERE name = $tag$dollar-secret-42$tag$".into(),
        r"SELECT id FROM customers WHERE name = E'escaped\-secret-77'".into(),
    ] {
        conn.simple_query(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // A bind parameter (extended protocol).
    conn.execute(
        "UPDATE customers SET ssn = $1 WHERE id = $2",
        &[&"bound-secret-99", &1i32],
    )
    .await
    .unwrap();
    // A server error message that echoes the value: relayed to the client, not audited.
    let err = conn
        .simple_query("SELECT 'tagged-secret-13'::int")
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("22P02"));
    drop(conn);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let db = fx.db.clone();
    let (events, text) = fx.finish_with_text();
    for s in secrets {
        assert!(!text.contains(s), "{s:?} found in the audit file:\n{text}");
    }
    // The statements are all there, normalized.
    let alter = one(&events, &format!("ALTER ROLE {role} PASSWORD $1"));
    assert_eq!(alter["statement_kind"], "ddl");
    let bound = one(&events, "UPDATE customers SET ssn = $1 WHERE id = $2");
    assert_eq!(bound["rows"], 1);
    audit_common::assert_reads_ssn(bound);
    let failed = one(&events, "SELECT $1::int");
    assert_eq!(failed["sqlstate"], "22P02");
    // And the stored values really went through (the statements ran).
    assert_eq!(
        direct_rows(&db, "SELECT 1 FROM customers WHERE ssn = 'bound-secret-99'").await,
        1
    );
}

/// Q-03: sqlcommenter tags and `SET pgvigil.actor` feed the event; the text reaches the
/// server byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q03_sqlcommenter_tags_and_actor() {
    let fx = Fixture::new("q03");
    let conn = fx.connect().await;
    let traceparent = "00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01";
    let tagged = format!(
        "/* actor='alice',request_id='r-42',traceparent='{traceparent}' */ SELECT current_query() -- don't\n"
    );
    let rows = conn.simple_query(&tagged).await.unwrap();
    let seen = rows
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .expect("a row");
    assert_eq!(seen, tagged, "the server must see the text byte for byte");
    // Extended protocol too.
    let ext = "SELECT current_query() /* actor='carol' */";
    let row = conn.query_one(ext, &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), ext);

    conn.batch_execute("SET pgvigil.actor = 'bob'")
        .await
        .unwrap();
    conn.simple_query("SELECT 1 AS as_bob").await.unwrap();
    conn.simple_query("/* actor='dave' */ SELECT 1 AS as_dave")
        .await
        .unwrap();
    conn.batch_execute("RESET pgvigil.actor").await.unwrap();
    conn.simple_query("SELECT 1 AS after_reset").await.unwrap();
    drop(conn);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = fx.finish();

    // Two texts normalize to the same query; pick each by its tags.
    let all: Vec<&Value> = statements(&events)
        .into_iter()
        .filter(|e| {
            e["query"]
                .as_str()
                .is_some_and(|q| q.starts_with("SELECT current_query()"))
        })
        .collect();
    let alice = all.iter().find(|e| e["actor"] == "alice").expect("alice");
    assert_eq!(alice["request_id"], "r-42");
    assert_eq!(alice["traceparent"], traceparent);
    let carol = all.iter().find(|e| e["actor"] == "carol").expect("carol");
    assert!(carol.get("request_id").is_none());

    assert_eq!(one(&events, "SELECT $1 AS as_bob")["actor"], "bob");
    assert_eq!(
        one(&events, "SELECT $1 AS as_dave")["actor"],
        "dave",
        "a tag on the statement wins over SET pgvigil.actor"
    );
    let reset = one(&events, "SELECT $1 AS after_reset");
    assert!(
        reset.get("actor").is_none(),
        "RESET clears the actor: {reset}"
    );
}

/// Several statements in one Query: one event each, with its own rows; after an error the
/// rest of the Query did not run and is not claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_statement_query() {
    let fx = Fixture::new("multi");
    let conn = fx.connect().await;
    let err = conn
        .simple_query(
            "INSERT INTO customers(id, name) VALUES (30, 'a'); SELECT 1/0; \
             INSERT INTO customers(id, name) VALUES (31, 'b')",
        )
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("22012"));
    let msgs = conn
        .simple_query("SELECT id FROM customers WHERE id <= 2; SELECT name FROM customers")
        .await
        .unwrap();
    let counts: Vec<u64> = msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(counts, vec![2, 3]);
    drop(conn);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let db = fx.db.clone();
    let events = fx.finish();
    let stmts = statements(&events);
    let queries: Vec<&str> = stmts.iter().map(|e| e["query"].as_str().unwrap()).collect();
    assert_eq!(
        queries,
        vec![
            "INSERT INTO customers(id, name) VALUES ($1, $2)",
            "SELECT $1/$2",
            "SELECT id FROM customers WHERE id <= $1",
            "SELECT name FROM customers",
        ],
        "{}",
        dump(&events)
    );
    // The INSERT ran but its implicit transaction was rolled back by the error: the
    // server reported INSERT 0 1, and the event says so; the row is gone.
    assert_eq!(stmts[0]["outcome"], "ok");
    assert_eq!(stmts[0]["rows"], 1);
    assert_eq!(stmts[1]["outcome"], "error");
    assert_eq!(stmts[1]["sqlstate"], "22012");
    assert_eq!(stmts[2]["rows"], 2);
    assert_eq!(stmts[3]["rows"], 3);
    assert_eq!(
        direct_rows(&db, "SELECT 1 FROM customers WHERE id IN (30, 31)").await,
        0
    );
}

/// `on_audit_failure: block` with an audit log that fails every write (`/dev/full`):
/// statements are refused with 58030 in protocol order and do not run.
#[test]
fn audit_failure_blocks_statements() {
    let fx = Fixture::with_options(
        "audit_block",
        ProxyOptions {
            on_audit_failure: Some(AuditFailureMode::Block),
            audit_log: Some("/dev/full".into()),
            ..ProxyOptions::default()
        },
    );
    let mut conn = RawConn::connect(fx.proxy.addr, "postgres", &fx.db);
    // The connect event's write fails on the writer thread; give it a moment to notice.
    std::thread::sleep(Duration::from_millis(300));
    conn.send(&q("INSERT INTO customers(id, name) VALUES (40, 'blocked')"));
    let simple_reply = conn.read_until_ready(1);
    assert_eq!(tags(&simple_reply), "E Z");
    assert_eq!(simple_reply[0].sqlstate().as_deref(), Some("58030"));
    let message = simple_reply[0].message().unwrap_or_default();
    assert_eq!(
        message,
        pgvigil::error::ClientError::audit_unavailable().message
    );
    assert_eq!(simple_reply[1].body, b"I");

    // Extended protocol: the error, then nothing for the rest of the batch until Sync.
    conn.send(&batch(&[
        p(
            "",
            "INSERT INTO customers(id, name) VALUES ($1, 'blocked')",
            &[],
        ),
        b("", "", &[Some("41")]),
        d_p(""),
        e("", 0),
        h(),
    ]));
    let before_sync = conn.read_for(Duration::from_millis(500));
    assert_eq!(tags(&before_sync), "1 E", "ParseComplete, then the refusal");
    assert_eq!(before_sync[1].sqlstate().as_deref(), Some("58030"));
    conn.send(&batch(&[b("", "", &[Some("42")]), e("", 0), s()]));
    let after = conn.read_until_ready(1);
    assert_eq!(tags(&after), "Z", "skip until Sync: {after:?}");

    // Inside an explicit transaction the refusal fails the transaction, as a server error.
    conn.send(&q("BEGIN"));
    let begin = conn.read_until_ready(1);
    assert_eq!(tags(&begin), "E Z", "BEGIN is refused too");
    let count = support::cluster()
        .run_sql(&fx.db, "SELECT count(*) FROM customers WHERE id >= 40")
        .unwrap();
    assert_eq!(count.trim(), "0", "no refused statement ran");
    conn.send(&x());
    // The writer never succeeds on /dev/full: shutdown must still end (after its bounded
    // retry) instead of hanging.
    // (Dropped, not `shutdown()`: reading /dev/full back would never end.)
    let started = std::time::Instant::now();
    drop(fx);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn audit_failure_continue_runs_statements() {
    let fx = Fixture::with_options(
        "audit_continue",
        ProxyOptions {
            on_audit_failure: Some(AuditFailureMode::Continue),
            audit_log: Some("/dev/full".into()),
            ..ProxyOptions::default()
        },
    );
    let mut conn = RawConn::connect(fx.proxy.addr, "postgres", &fx.db);
    std::thread::sleep(Duration::from_millis(300));
    conn.send(&q("INSERT INTO customers(id, name) VALUES (50, 'runs')"));
    assert_eq!(tags(&conn.read_until_ready(1)), "C Z");
    let count = support::cluster()
        .run_sql(&fx.db, "SELECT count(*) FROM customers WHERE id = 50")
        .unwrap();
    assert_eq!(count.trim(), "1");
    conn.send(&x());
    drop(fx);
}

/// The real binary: N statements, SIGTERM, exit 0, N statement events, a complete last line.
#[test]
fn nothing_lost_on_sigterm() {
    const N: usize = 500;
    let db = support::fresh_database("sigterm");
    support::cluster()
        .run_sql(&db, audit_common::CUSTOMERS_SQL)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pgvigil"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--upstream",
            &support::cluster().addr().to_string(),
            "--audit-log",
            audit.to_str().unwrap(),
        ])
        // Debug level: the proxy's own logs must not carry values at any level.
        .env("RUST_LOG", "debug")
        // A file, not a pipe: a pipe nobody reads until exit could fill and stall the proxy.
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .expect("spawn pgvigil serve");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(std::time::Instant::now() < deadline, "proxy did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut conn = RawConn::connect(addr, "postgres", &db);
    for i in 0..N {
        // One statement carries a value that must reach neither the trail nor the logs.
        let sql = if i == 0 {
            "SELECT 'log-secret-31337' AS n".to_owned()
        } else {
            format!("SELECT {i} AS n")
        };
        conn.send(&q(&sql));
        let reply = conn.read_until_ready(1);
        assert_eq!(tags(&reply), "T D C Z");
    }
    // SIGTERM while the session is still open: it is closed and everything is flushed.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    assert_eq!(code.code(), Some(0), "exit status; stderr:\n{stderr}");
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(text.ends_with('\n'), "the file ends with a complete line");
    assert!(
        !text.contains("log-secret-31337"),
        "value in the audit file"
    );
    assert!(
        !stderr.contains("log-secret-31337"),
        "value in the logs:\n{stderr}"
    );
    let events = support::proxy::read_events(&audit);
    audit_common::schema::assert_valid(&events);
    let stmts = statements(&events);
    assert_eq!(stmts.len(), N);
    assert!(events.iter().any(|e| e["kind"] == "disconnect"));
}

/// The schema itself rejects what it should: a guard against a schema that accepts anything.
#[test]
fn the_schema_rejects_malformed_events() {
    let good = serde_json::json!({
        "event_id": "0b9e5a8e-4c35-4bd4-9d8a-2b0d1c6b8f11",
        "ts": "2024-05-01T10:00:00.000001+00:00",
        "kind": "connect",
        "session_id": "7d4c1f5e-0d8b-4f7e-9a3c-8b1e2f3a4b5c",
        "seq": 1,
        "user": "u",
        "database": "d",
        "client_addr": "127.0.0.1",
        "client_port": 5000,
        "application_name": "",
        "tls": false,
        "roles": []
    });
    assert_eq!(
        audit_common::schema::violations(&good),
        Vec::<String>::new()
    );
    let mutate = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = good.clone();
        f(v.as_object_mut().unwrap());
        audit_common::schema::violations(&v)
    };
    assert!(!mutate(&|m| {
        m.insert("ts".into(), "2024-05-01T10:00:00".into());
    })
    .is_empty());
    assert!(!mutate(&|m| {
        m.insert("kind".into(), "statement".into());
    })
    .is_empty());
    assert!(!mutate(&|m| {
        m.insert("surprise".into(), 1.into());
    })
    .is_empty());
    assert!(!mutate(&|m| {
        m.insert("outcome".into(), "error".into());
    })
    .is_empty());
    assert!(!mutate(&|m| {
        m.remove("session_id");
    })
    .is_empty());
}
