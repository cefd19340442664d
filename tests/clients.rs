//! End-to-end tests with a real driver (tokio-postgres) through pgvigil: every scenario is
//! run once directly against PostgreSQL and once through the proxy, and the transcripts of
//! what PostgreSQL computed must be equal.

mod support;

use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, SystemTime};
use support::proxy::{statements_in, TestProxy};
use tokio_postgres::{AsyncMessage, Client, NoTls, SimpleQueryMessage};

/// A direct connection and one through the proxy, both as the superuser.
async fn pair(db: &str, proxy: &TestProxy) -> (Client, Client) {
    (
        support::connect_superuser(db).await,
        proxy.connect(db).await,
    )
}

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_owned())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

/// What a simple query produced, as comparable text.
fn simple_transcript(msgs: &[SimpleQueryMessage]) -> Vec<String> {
    msgs.iter()
        .map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                let vals: Vec<Option<&str>> = (0..r.len()).map(|i| r.get(i)).collect();
                format!("row {vals:?}")
            }
            SimpleQueryMessage::CommandComplete(n) => format!("complete {n}"),
            SimpleQueryMessage::RowDescription(cols) => {
                let names: Vec<&str> = cols.iter().map(|c| c.name()).collect();
                format!("columns {names:?}")
            }
            _ => "other".to_owned(),
        })
        .collect()
}

async fn simple(c: &Client, sql: &str) -> Result<Vec<String>, String> {
    c.simple_query(sql)
        .await
        .map(|m| simple_transcript(&m))
        .map_err(|e| sqlstate(&e))
}

#[tokio::test]
async fn simple_query_with_several_statements_matches_direct() {
    let db = support::fresh_database("cl_simple");
    let proxy = TestProxy::start();
    let (direct, via) = pair(&db, &proxy).await;
    let script = "CREATE TEMP TABLE x AS SELECT g FROM generate_series(1, 5) g; \
                  INSERT INTO x VALUES (6), (NULL); \
                  SELECT sum(g), string_agg(g::text, ',' ORDER BY g), count(*) FROM x; \
                  UPDATE x SET g = g * 10 WHERE g > 4; \
                  SELECT g FROM x ORDER BY g NULLS FIRST; \
                  SELECT 'a' || 'b' AS ab, NULL::text AS n, 1.5::numeric * 3 AS num; \
                  DELETE FROM x; DROP TABLE x";
    let d = simple(&direct, script).await.expect("direct");
    let v = simple(&via, script).await.expect("through the proxy");
    assert_eq!(v, d);
    assert!(d.contains(&"row [Some(\"21\"), Some(\"1,2,3,4,5,6\"), Some(\"7\")]".to_owned()));
    // An error in the middle of a multi-statement Query: same SQLSTATE, nothing kept.
    let script = "CREATE TEMP TABLE y(a int); INSERT INTO y VALUES (1); SELECT 1/0; INSERT INTO y VALUES (2)";
    assert_eq!(simple(&via, script).await, simple(&direct, script).await);
    assert_eq!(simple(&via, script).await, Err("22012".to_owned()));
    let check = "SELECT to_regclass('pg_temp.y') IS NULL";
    assert_eq!(simple(&via, check).await, simple(&direct, check).await);
}

/// A query with parameters of many types, binary results; rendered as text for comparison.
async fn typed_round_trip(c: &Client) -> Vec<String> {
    let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
    let bytes: Vec<u8> = (0..=255u8).collect();
    let sql = "SELECT $1::int4, $2::text, $3::bytea, $4::timestamptz, \
               ($5::text::numeric * 3)::text, $6::int8, $7::text, $8::float8, $9::bool, \
               $10::int2, ARRAY[$1::int4, $1::int4 + 1], length($3::bytea), \
               extract(epoch FROM $4::timestamptz)::text";
    let mut out = Vec::new();
    for (n, name) in [
        (42i32, "héllo wörld"),
        (-7, ""),
        (2_000_000_000, "tab\there\nnewline"),
    ] {
        let row = c
            .query_one(
                sql,
                &[
                    &n,
                    &name,
                    &bytes,
                    &at,
                    &"12345.678900",
                    &None::<i64>,
                    &None::<String>,
                    &1.25f64,
                    &true,
                    &7i16,
                ],
            )
            .await
            .expect("typed query");
        let got = (
            row.get::<_, i32>(0),
            row.get::<_, String>(1),
            row.get::<_, Vec<u8>>(2),
            row.get::<_, SystemTime>(3),
            row.get::<_, String>(4),
            row.get::<_, Option<i64>>(5),
            row.get::<_, Option<String>>(6),
            row.get::<_, f64>(7),
            row.get::<_, bool>(8),
            (
                row.get::<_, i16>(9),
                row.get::<_, Vec<i32>>(10),
                row.get::<_, i32>(11),
                row.get::<_, String>(12),
            ),
        );
        assert_eq!(got.0, n);
        assert_eq!(got.1, name);
        assert_eq!(got.2, bytes);
        assert_eq!(got.3, at);
        out.push(format!("{got:?}"));
    }
    out
}

#[tokio::test]
async fn extended_query_parameters_and_binary_results_match_direct() {
    let db = support::fresh_database("cl_typed");
    let proxy = TestProxy::start();
    let (direct, via) = pair(&db, &proxy).await;
    let d = typed_round_trip(&direct).await;
    let v = typed_round_trip(&via).await;
    assert_eq!(v, d);

    // Written through the proxy, read back directly: Postgres stored exactly what was sent.
    support::cluster()
        .run_sql(
            &db,
            "CREATE TABLE t(id int PRIMARY KEY, name text, data bytea, at timestamptz, amount numeric)",
        )
        .unwrap();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let data = vec![0u8, 1, 2, 254, 255];
    via.execute(
        "INSERT INTO t VALUES ($1, $2, $3, $4, $5::text::numeric), ($6, NULL, NULL, NULL, NULL)",
        &[&1i32, &"x'y", &data, &at, &"-0.000100", &2i32],
    )
    .await
    .unwrap();
    let read = "SELECT id, name, encode(data, 'hex'), extract(epoch FROM at)::int8, amount::text \
                FROM t ORDER BY id";
    let d = simple(&direct, read).await.unwrap();
    assert_eq!(simple(&via, read).await.unwrap(), d);
    assert!(d.contains(
        &"row [Some(\"1\"), Some(\"x'y\"), Some(\"000102feff\"), Some(\"1600000000\"), Some(\"-0.000100\")]"
            .to_owned()
    ));
    assert!(d.contains(&"row [Some(\"2\"), None, None, None, None]".to_owned()));
}

#[tokio::test]
async fn prepared_statements_are_reused_through_the_proxy() {
    let db = support::fresh_database("cl_prepared");
    let proxy = TestProxy::start();
    let (direct, via) = pair(&db, &proxy).await;
    async fn run(c: &Client) -> Vec<String> {
        let st = c
            .prepare("SELECT $1::int4 * 2, md5($2::text), $1::int4 % 7 = 0")
            .await
            .unwrap();
        let other = c
            .prepare("SELECT count(*) FROM generate_series(1, $1::int4)")
            .await
            .unwrap();
        let mut out = Vec::new();
        for i in 0..60i32 {
            let r = c.query_one(&st, &[&i, &format!("v{i}")]).await.unwrap();
            out.push(format!(
                "{:?}",
                (
                    r.get::<_, i32>(0),
                    r.get::<_, String>(1),
                    r.get::<_, bool>(2)
                )
            ));
            let r = c.query_one(&other, &[&i]).await.unwrap();
            out.push(format!("{}", r.get::<_, i64>(0)));
        }
        // Dropping a statement closes it on the server; a new one reuses nothing stale.
        drop(st);
        let st = c.prepare("SELECT $1::text || '!'").await.unwrap();
        let r = c.query_one(&st, &[&"done"]).await.unwrap();
        out.push(r.get::<_, String>(0));
        out
    }
    let d = run(&direct).await;
    assert_eq!(run(&via).await, d);
    assert_eq!(d.last().map(String::as_str), Some("done!"));
}

/// Commit, rollback, and an error inside BEGIN: 25P02 until ROLLBACK.
async fn transactions(c: &mut Client, table: &str) -> Vec<String> {
    let mut out = Vec::new();
    c.batch_execute(&format!("CREATE TABLE {table}(id int PRIMARY KEY)"))
        .await
        .unwrap();
    let tx = c.transaction().await.unwrap();
    tx.execute(&format!("INSERT INTO {table} VALUES ($1)"), &[&1i32])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let tx = c.transaction().await.unwrap();
    tx.execute(&format!("INSERT INTO {table} VALUES ($1)"), &[&2i32])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    c.batch_execute("BEGIN").await.unwrap();
    c.execute(&format!("INSERT INTO {table} VALUES (3)"), &[])
        .await
        .unwrap();
    out.push(format!(
        "{:?}",
        c.query("SELECT 1/0", &[]).await.map_err(|e| sqlstate(&e))
    ));
    out.push(format!(
        "{:?}",
        c.query("SELECT 1", &[]).await.map_err(|e| sqlstate(&e))
    ));
    out.push(format!("{:?}", simple(c, "SELECT 2").await));
    out.push(format!(
        "{:?}",
        c.execute(&format!("INSERT INTO {table} VALUES ($1)"), &[&4i32])
            .await
            .map_err(|e| sqlstate(&e))
    ));
    out.push(format!("{:?}", simple(c, "ROLLBACK").await));
    let ids = c
        .query(&format!("SELECT id FROM {table} ORDER BY id"), &[])
        .await
        .unwrap();
    out.push(format!(
        "{:?}",
        ids.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>()
    ));
    // An error inside a transaction block opened by the driver, then rollback.
    let tx = c.transaction().await.unwrap();
    out.push(format!(
        "{:?}",
        tx.execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
            .await
            .map_err(|e| sqlstate(&e))
    ));
    out.push(format!(
        "{:?}",
        tx.query_one("SELECT 1", &[])
            .await
            .map_err(|e| sqlstate(&e))
            .map(|_| ())
    ));
    tx.rollback().await.unwrap();
    out.push(format!("{:?}", simple(c, "SELECT 3").await));
    out
}

#[tokio::test]
async fn transactions_commit_rollback_and_aborted_state_match_direct() {
    let db = support::fresh_database("cl_tx");
    let proxy = TestProxy::start();
    let (mut direct, mut via) = pair(&db, &proxy).await;
    let d = transactions(&mut direct, "t_direct").await;
    let v = transactions(&mut via, "t_via").await;
    assert_eq!(v, d);
    assert_eq!(d[0], "Err(\"22012\")");
    assert_eq!(d[1], "Err(\"25P02\")");
    assert_eq!(d[2], "Err(\"25P02\")");
    assert_eq!(d[5], "[1]", "only the committed row is kept");
    assert_eq!(d[6], "Err(\"23505\")");
}

#[tokio::test]
async fn server_errors_keep_the_connection_usable() {
    let db = support::fresh_database("cl_errors");
    let proxy = TestProxy::start();
    let (direct, via) = pair(&db, &proxy).await;
    async fn run(c: &Client) -> Vec<String> {
        let mut out = Vec::new();
        out.push(format!(
            "{:?}",
            c.query("SELECT * FROM nope", &[])
                .await
                .map_err(|e| sqlstate(&e))
                .map(|_| ())
        ));
        out.push(format!(
            "{:?}",
            c.prepare("SELEC 1")
                .await
                .map_err(|e| sqlstate(&e))
                .map(|_| ())
        ));
        // An error after some rows were already sent.
        out.push(format!(
            "{:?}",
            c.query("SELECT 10 / (g - 3) FROM generate_series(1, 5) g", &[])
                .await
                .map_err(|e| sqlstate(&e))
                .map(|_| ())
        ));
        out.push(format!(
            "{:?}",
            simple(c, "SELECT 1; SELECT * FROM nope; SELECT 2").await
        ));
        out.push(format!(
            "{:?}",
            c.execute("SET statement_timeout = 'bogus'", &[])
                .await
                .map_err(|e| sqlstate(&e))
        ));
        let r = c.query_one("SELECT $1::int4 + 1", &[&41i32]).await.unwrap();
        out.push(format!("{}", r.get::<_, i32>(0)));
        out.push(format!("{:?}", simple(c, "SELECT 'still here'").await));
        out
    }
    let d = run(&direct).await;
    assert_eq!(run(&via).await, d);
    assert_eq!(d[5], "42");
}

#[tokio::test]
async fn authentication_methods_and_wrong_passwords_match_direct() {
    let db = support::fresh_database("cl_auth");
    let proxy = TestProxy::start();
    let md5 = support::create_md5_role("cl", "md5 secret");
    let scram = support::create_scram_role("cl", "sc'ram secret");
    let c = proxy.connect(&db).await;
    let who = c.query_one("SELECT current_user::text", &[]).await.unwrap();
    assert_eq!(who.get::<_, String>(0), "postgres");
    let cluster = support::cluster();
    for (role, password) in [(&md5, "md5 secret"), (&scram, "sc'ram secret")] {
        let c = support::connect(&proxy.conn_str(&db, role, Some(password)))
            .await
            .unwrap_or_else(|e| panic!("{role} through the proxy: {e}"));
        let row = c
            .query_one("SELECT current_user::text, $1::int4", &[&5i32])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), *role);
        let login_error = |res: Result<Client, tokio_postgres::Error>, how: &str| match res {
            Ok(_) => panic!("a wrong password was accepted {how}"),
            Err(e) => e,
        };
        let direct_err = login_error(
            support::connect(&support::connection_string(
                cluster.host(),
                cluster.port(),
                &db,
                role,
                Some("wrong"),
            ))
            .await,
            "directly",
        );
        let via_err = login_error(
            support::connect(&proxy.conn_str(&db, role, Some("wrong"))).await,
            "through the proxy",
        );
        assert_eq!(sqlstate(&via_err), sqlstate(&direct_err));
        assert_eq!(sqlstate(&via_err), "28P01");
    }
    // The proxy keeps serving after failed logins.
    let c = support::connect(&proxy.conn_str(&db, &scram, Some("sc'ram secret")))
        .await
        .unwrap();
    c.simple_query("SELECT 1").await.unwrap();
}

async fn copy_in_rows(c: &Client, table: &str, rows: usize) -> u64 {
    let sink = c
        .copy_in::<_, bytes::Bytes>(&format!("COPY {table} FROM STDIN"))
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    for chunk in 0..rows / 100 {
        let mut buf = String::new();
        for i in chunk * 100..(chunk + 1) * 100 {
            buf.push_str(&format!(
                "{i}\tname {i}\\twith tab\t{}\n",
                if i % 3 == 0 { "\\N" } else { "x" }
            ));
        }
        sink.send(bytes::Bytes::from(buf)).await.unwrap();
    }
    sink.as_mut().finish().await.unwrap()
}

async fn copy_out(c: &Client, sql: &str) -> Vec<u8> {
    let stream = c.copy_out(sql).await.unwrap();
    futures_util::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

#[tokio::test]
async fn copy_in_and_out_match_direct() {
    let db = support::fresh_database("cl_copy");
    support::cluster()
        .run_sql(
            &db,
            "CREATE TABLE cd(id int PRIMARY KEY, name text, note text); \
             CREATE TABLE cv(id int PRIMARY KEY, name text, note text)",
        )
        .unwrap();
    let proxy = TestProxy::start();
    let (direct, via) = pair(&db, &proxy).await;
    assert_eq!(copy_in_rows(&direct, "cd", 3000).await, 3000);
    assert_eq!(copy_in_rows(&via, "cv", 3000).await, 3000);
    let digest = |t: &str| {
        format!("SELECT count(*), md5(string_agg(id || '|' || name || '|' || coalesce(note, '<null>'), ',' ORDER BY id)) FROM {t}")
    };
    let d = simple(&direct, &digest("cd")).await.unwrap();
    assert_eq!(
        simple(&direct, &digest("cv")).await.unwrap(),
        d,
        "copied through the proxy"
    );

    for sql in [
        "COPY cd TO STDOUT",
        "COPY (SELECT id, name, note FROM cd ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)",
        "COPY cd TO STDOUT WITH (FORMAT binary)",
    ] {
        let d = copy_out(&direct, sql).await;
        let v = copy_out(&via, sql).await;
        assert!(!d.is_empty());
        assert!(
            v == d,
            "{sql}: {} bytes through the proxy, {} direct",
            v.len(),
            d.len()
        );
    }
    // The session is in step afterwards.
    let r = via.query_one("SELECT count(*) FROM cv", &[]).await.unwrap();
    assert_eq!(r.get::<_, i64>(0), 3000);
}

/// COPY FROM with a bad row early, while the client is still streaming: the server errors
/// in copy-in mode and ignores the Sync the driver sent before the data.
async fn copy_bad_data(c: &Client, table: &str) -> Vec<String> {
    let mut out = Vec::new();
    let sink = c
        .copy_in::<_, bytes::Bytes>(&format!("COPY {table} FROM STDIN"))
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    let mut sent = sink
        .send(bytes::Bytes::from_static(
            b"1\tok\t\\N\nnot-a-number\tbad\tx\n",
        ))
        .await;
    let filler = bytes::Bytes::from(format!("{}\n", "9\tfiller\tx").repeat(20_000));
    for _ in 0..40 {
        if sent.is_err() {
            break;
        }
        sent = sink.send(filler.clone()).await;
    }
    let res = match sent {
        Ok(()) => sink.as_mut().finish().await,
        Err(e) => Err(e),
    };
    out.push(format!("{:?}", res.map_err(|e| sqlstate(&e))));
    // CopyFail: dropping the sink without finishing aborts the COPY.
    {
        let sink = c
            .copy_in::<_, bytes::Bytes>(&format!("COPY {table} FROM STDIN"))
            .await
            .unwrap();
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"2\tnever\tx\n"))
            .await
            .unwrap();
    }
    let r = c
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap();
    out.push(format!("{}", r.get::<_, i64>(0)));
    out.push(format!("{:?}", simple(c, "SELECT 'after copy'").await));
    let r = c
        .query_one("SELECT $1::text || ' ok'", &[&"extended"])
        .await
        .unwrap();
    out.push(r.get::<_, String>(0));
    out
}

#[tokio::test]
async fn copy_errors_and_copy_fail_keep_the_session_in_step() {
    let db = support::fresh_database("cl_copyerr");
    support::cluster()
        .run_sql(
            &db,
            "CREATE TABLE ed(id int, name text, note text); CREATE TABLE ev(id int, name text, note text)",
        )
        .unwrap();
    let proxy = TestProxy::start();
    let (direct, via) = pair(&db, &proxy).await;
    let d = copy_bad_data(&direct, "ed").await;
    let v = copy_bad_data(&via, "ev").await;
    assert_eq!(v, d);
    assert_eq!(d[0], "Err(\"22P02\")");
    assert_eq!(d[1], "0");
    drop(via);
    // Every statement after the failed COPYs is audited with its own text: the proxy's
    // expectations stayed matched to the server's answers.
    let events = proxy.shutdown();
    let stmts = statements_in(&events, &db);
    let queries: Vec<String> = stmts
        .iter()
        .map(|e| e["query"].as_str().unwrap_or("<none>").to_owned())
        .collect();
    let outcomes: Vec<(&str, &str)> = stmts
        .iter()
        .map(|e| {
            (
                e["outcome"].as_str().unwrap_or("<none>"),
                e["sqlstate"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        queries,
        [
            "COPY ev FROM STDIN",
            "COPY ev FROM STDIN",
            "SELECT count(*) FROM ev",
            "SELECT $1",
            "SELECT $1::text || $2"
        ],
        "(texts are normalized)"
    );
    assert_eq!(
        outcomes,
        [
            ("error", "22P02"),
            ("error", "57014"),
            ("ok", ""),
            ("ok", ""),
            ("ok", "")
        ]
    );
}

/// A tokio-postgres connection that forwards notifications to a channel.
async fn listener(
    conn_str: &str,
) -> (
    Client,
    tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
) {
    let (client, mut connection) = tokio_postgres::connect(conn_str, NoTls).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(msg)) = stream.next().await {
            if let AsyncMessage::Notification(n) = msg {
                let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
            }
        }
    });
    (client, rx)
}

#[tokio::test]
async fn listen_notify_through_the_proxy() {
    let db = support::fresh_database("cl_notify");
    let proxy = TestProxy::start();
    // Listener through the proxy, notifier direct.
    let (via, mut rx) = listener(&proxy.conn_str(&db, "postgres", None)).await;
    via.batch_execute("LISTEN jobs").await.unwrap();
    let direct = support::connect_superuser(&db).await;
    direct
        .batch_execute("NOTIFY jobs, 'from direct'")
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("notification through the proxy")
        .unwrap();
    assert_eq!(got, ("jobs".to_owned(), "from direct".to_owned()));
    // Notifier through the proxy (pg_notify with a bind parameter), listener direct.
    let (direct_listener, mut drx) = listener(&support::cluster().connection_string(&db)).await;
    direct_listener
        .batch_execute("LISTEN events")
        .await
        .unwrap();
    via.execute("SELECT pg_notify('events', $1)", &[&"from proxy"])
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(15), drx.recv())
        .await
        .expect("notification sent through the proxy")
        .unwrap();
    assert_eq!(got, ("events".to_owned(), "from proxy".to_owned()));
    // A notification arriving while the listener is idle, then a normal query.
    direct.batch_execute("NOTIFY jobs, 'second'").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("second notification")
        .unwrap();
    assert_eq!(got.1, "second");
    let r = via.query_one("SELECT 7", &[]).await.unwrap();
    assert_eq!(r.get::<_, i32>(0), 7);
}

#[tokio::test]
async fn large_values_pass_through_intact() {
    let db = support::fresh_database("cl_large");
    support::cluster()
        .run_sql(&db, "CREATE TABLE big(id int, v text)")
        .unwrap();
    let proxy = TestProxy::start();
    let via = proxy.connect(&db).await;
    let value = "abcdefghij".repeat(5_000_000);
    via.execute("INSERT INTO big VALUES (1, $1)", &[&value])
        .await
        .unwrap();
    let direct = support::connect_superuser(&db).await;
    let r = direct
        .query_one(
            "SELECT length(v), md5(v) = md5(repeat('abcdefghij', 5000000)) FROM big WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, i32>(0), 50_000_000);
    assert!(r.get::<_, bool>(1), "the stored value is the one sent");
    let r = via
        .query_one("SELECT v FROM big WHERE id = 1", &[])
        .await
        .unwrap();
    let back: &str = r.get(0);
    assert!(back == value, "value read back through the proxy differs");
    let md5_direct: String = direct
        .query_one("SELECT md5(v) FROM big", &[])
        .await
        .unwrap()
        .get(0);
    let md5_via: String = via
        .query_one("SELECT md5($1::text)", &[&back])
        .await
        .unwrap()
        .get(0);
    assert_eq!(md5_via, md5_direct);
}

#[tokio::test]
async fn many_concurrent_clients() {
    let db = support::fresh_database("cl_many");
    let proxy = TestProxy::start();
    let conn_str = proxy.conn_str(&db, "postgres", None);
    let mut tasks = Vec::new();
    for i in 0..150i32 {
        let conn_str = conn_str.clone();
        tasks.push(tokio::spawn(async move {
            let c = support::connect(&conn_str).await?;
            let r = c
                .query_one("SELECT $1::int4 * 2, pg_backend_pid()", &[&i])
                .await?;
            Ok::<_, tokio_postgres::Error>((r.get::<_, i32>(0), r.get::<_, i32>(1), c))
        }));
    }
    let mut pids = std::collections::HashSet::new();
    let mut clients = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let (doubled, pid, c) = t
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
        assert_eq!(doubled, i as i32 * 2);
        pids.insert(pid);
        clients.push(c);
    }
    assert_eq!(pids.len(), 150, "each client has its own upstream session");
    let direct = support::connect_superuser(&db).await;
    let n: i64 = direct
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND usename = 'postgres'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(n >= 150, "{n} sessions open");
}

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

#[tokio::test]
async fn function_calls_match_direct_and_keep_the_session_in_step() {
    use support::wire::*;
    let db = support::fresh_database("cl_fastpath");
    let proxy = TestProxy::start();
    let direct = support::connect_superuser(&db).await;
    let oid = |name: &'static str| {
        let direct = &direct;
        async move {
            let r = direct
                .query_one("SELECT $1::text::regprocedure::oid", &[&name])
                .await
                .unwrap();
            r.get::<_, u32>(0)
        }
    };
    let (plus, div) = (
        oid("int4pl(int4,int4)").await,
        oid("int4div(int4,int4)").await,
    );
    let scripts: Vec<(Vec<u8>, usize)> = vec![
        (function_call(plus, &["40", "2"]), 1),
        (function_call(div, &["1", "0"]), 1),
        // A FunctionCall ends with its own ReadyForQuery, even inside an extended batch.
        (
            batch(&[
                p("", "SELECT 5", &[]),
                b("", "", &[]),
                e("", 0),
                function_call(plus, &["1", "1"]),
                s(),
            ]),
            2,
        ),
        // After an error the server skips it until Sync.
        (
            batch(&[
                p("", "SELEC 5", &[]),
                b("", "", &[]),
                e("", 0),
                function_call(plus, &["1", "1"]),
                s(),
            ]),
            1,
        ),
        (q("BEGIN"), 1),
        (function_call(div, &["1", "0"]), 1),
        (function_call(plus, &["1", "1"]), 1),
        (q("ROLLBACK; SELECT 9"), 1),
    ];
    let (d_addr, v_addr) = (support::cluster().addr(), proxy.addr);
    let dbname = db.clone();
    let (d, v) = tokio::task::spawn_blocking(move || {
        let db = dbname;
        let mut dc = RawConn::connect(d_addr, "postgres", &db);
        let mut vc = RawConn::connect(v_addr, "postgres", &db);
        let (mut d, mut v) = (Vec::new(), Vec::new());
        for (script, readies) in &scripts {
            dc.send(script);
            vc.send(script);
            d.push(dc.read_until_ready(*readies));
            v.push(vc.read_until_ready(*readies));
        }
        (d, v)
    })
    .await
    .unwrap();
    let show = |all: &[Vec<Msg>]| {
        all.iter()
            .map(|m| {
                let codes: Vec<String> = m.iter().filter_map(Msg::sqlstate).collect();
                format!("{} {codes:?}", tags(m))
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(show(&v), show(&d));
    assert_eq!(v[0][0].body, d[0][0].body, "the function result");
    assert_eq!(show(&d)[0], "V Z []");
    assert_eq!(show(&d)[2], "1 2 D C V Z Z []");
    assert_eq!(show(&d)[6], "E Z [\"25P02\"]");
    assert_eq!(tags(&v[7]), "C T D C Z");
    // The proxy's expectations stayed matched: the last statements are audited as such.
    let events = proxy.shutdown();
    let stmts = statements_in(&events, &db);
    let last: Vec<(&str, &str)> = stmts
        .iter()
        .rev()
        .take(2)
        .map(|e| {
            (
                e["query"].as_str().unwrap_or("<none>"),
                e["outcome"].as_str().unwrap_or("<none>"),
            )
        })
        .collect();
    assert_eq!(
        last,
        [("SELECT $1", "ok"), ("ROLLBACK", "ok")],
        "{stmts:#?}"
    );
}
