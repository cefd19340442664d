//! PostgreSQL's own client programs through pgvigil: psql (meta-commands, `\copy`, several
//! statements in `-c`, password logins) and pgbench (initialisation and every query mode).
//! psql output through the proxy must be byte-for-byte what it prints when connected
//! directly.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use support::proxy::{statements_in, TestProxy};

/// Where a client program connects.
#[derive(Clone, Copy)]
enum To<'a> {
    Direct,
    Proxy(&'a TestProxy),
}

impl To<'_> {
    fn host_port(&self) -> (String, u16) {
        match self {
            To::Direct => (
                support::cluster().host().to_owned(),
                support::cluster().port(),
            ),
            To::Proxy(p) => (p.host(), p.port()),
        }
    }
}

fn client_command(program: &Path, to: To, user: &str, password: Option<&str>) -> Command {
    let (host, port) = to.host_port();
    let mut cmd = Command::new(program);
    cmd.args(["-h", &host, "-p", &port.to_string(), "-U", user])
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGSSLMODE", "disable")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS");
    match password {
        Some(pw) => cmd.env("PGPASSWORD", pw),
        None => cmd.env_remove("PGPASSWORD"),
    };
    cmd
}

fn psql_as(to: To, db: &str, user: &str, password: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = client_command(&support::cluster().psql_path(), to, user, password);
    cmd.args(["-X", "-d", db]).args(args);
    cmd.output().expect("running psql")
}

fn psql(to: To, db: &str, args: &[&str]) -> Output {
    psql_as(to, db, "postgres", None, args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run psql directly and through the proxy; both must succeed with the same stdout.
fn same_psql(db: &str, proxy: &TestProxy, args: &[&str]) -> String {
    let d = psql(To::Direct, db, args);
    let v = psql(To::Proxy(proxy), db, args);
    assert!(
        d.status.success(),
        "direct psql {args:?} failed: {}",
        text(&d.stderr)
    );
    assert!(
        v.status.success(),
        "psql {args:?} through the proxy failed: {}",
        text(&v.stderr)
    );
    assert_eq!(text(&v.stdout), text(&d.stdout), "psql {args:?}");
    assert_eq!(text(&v.stderr), text(&d.stderr), "psql {args:?} stderr");
    text(&d.stdout)
}

fn setup_schema(db: &str) {
    support::cluster()
        .run_sql(
            db,
            "CREATE TABLE t(id int PRIMARY KEY, name text NOT NULL DEFAULT 'x', at timestamptz); \
             CREATE INDEX t_name ON t(name); \
             COMMENT ON TABLE t IS 'test table'; \
             CREATE TABLE other(a int REFERENCES t(id)); \
             CREATE VIEW v AS SELECT id FROM t; \
             CREATE FUNCTION f(i int) RETURNS int LANGUAGE sql AS 'SELECT i + 1'",
        )
        .unwrap();
}

#[test]
fn psql_commands_and_meta_commands_match_direct() {
    let db = support::fresh_database("tl_psql");
    setup_schema(&db);
    let proxy = TestProxy::start();
    let out = same_psql(
        &db,
        &proxy,
        &[
            "-c",
            "SELECT 1 AS a; SELECT 'two' AS b, NULL AS n; CREATE TEMP TABLE z(a int); \
             INSERT INTO z VALUES (1), (2); SELECT sum(a) FROM z; SELECT f(41)",
        ],
    );
    assert!(out.contains("42"), "{out}");
    let out = same_psql(&db, &proxy, &["-c", "\\d t"]);
    assert!(out.contains("t_name"), "{out}");
    let out = same_psql(&db, &proxy, &["-c", "\\dt"]);
    assert!(out.contains("other"), "{out}");
    let out = same_psql(&db, &proxy, &["-c", &format!("\\l {db}")]);
    assert!(out.contains(&db), "{out}");
    same_psql(&db, &proxy, &["-c", "\\d+ v", "-c", "\\df f", "-c", "\\dn"]);
    // Several -c in one session, an error in the middle (no ON_ERROR_STOP), then more.
    let args = [
        "-c",
        "BEGIN",
        "-c",
        "SELECT 1/0",
        "-c",
        "SELECT 1",
        "-c",
        "ROLLBACK",
        "-c",
        "SELECT 'after' AS x",
    ];
    let d = psql(To::Direct, &db, &args);
    let v = psql(To::Proxy(&proxy), &db, &args);
    assert_eq!(text(&v.stdout), text(&d.stdout));
    assert_eq!(text(&v.stderr), text(&d.stderr));
    assert!(text(&d.stderr).contains("current transaction is aborted"));
}

fn write_data(path: &Path, rows: std::ops::Range<usize>, bad_first: bool) {
    let mut s = String::new();
    if bad_first {
        s.push_str("not-a-number\tbad\t\\N\n");
    }
    for i in rows {
        s.push_str(&format!(
            "{i}\tname {i} \\t tab\t2024-01-0{} 12:00:00+00\n",
            i % 9 + 1
        ));
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn psql_copy_from_and_to_files_match_direct() {
    let db = support::fresh_database("tl_copy");
    support::cluster()
        .run_sql(
            &db,
            "CREATE TABLE td(id int PRIMARY KEY, name text, at timestamptz); \
             CREATE TABLE tv(id int PRIMARY KEY, name text, at timestamptz)",
        )
        .unwrap();
    let proxy = TestProxy::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.tsv");
    write_data(&data, 0..5000, false);
    let data = data.display().to_string();
    for (to, table) in [(To::Direct, "td"), (To::Proxy(&proxy), "tv")] {
        let o = psql(
            to,
            &db,
            &[
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &format!("\\copy {table} from '{data}'"),
            ],
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert_eq!(text(&o.stdout), "COPY 5000\n");
    }
    let digest = |t: &str| {
        support::cluster()
            .run_sql(
                &db,
                &format!("SELECT md5(string_agg(id || name || at, ',' ORDER BY id)) FROM {t}"),
            )
            .unwrap()
    };
    assert_eq!(digest("tv"), digest("td"));
    // \copy to a file: same bytes either way.
    let mut outputs = Vec::new();
    for (to, name) in [(To::Direct, "direct"), (To::Proxy(&proxy), "proxy")] {
        let file = dir.path().join(format!("out_{name}.csv"));
        let o = psql(
            to,
            &db,
            &[
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &format!("\\copy td to '{}'", file.display()),
                "-c",
                &format!(
                    "\\copy (SELECT * FROM tv ORDER BY id DESC) to '{}' with (format csv, header)",
                    file.with_extension("2.csv").display()
                ),
            ],
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        outputs.push((
            std::fs::read(&file).unwrap(),
            std::fs::read(file.with_extension("2.csv")).unwrap(),
        ));
    }
    assert!(outputs[0].0.len() > 100_000);
    assert!(
        outputs[1] == outputs[0],
        "\\copy to a file differs through the proxy"
    );
}

#[test]
fn psql_copy_with_bad_data_then_more_statements() {
    let db = support::fresh_database("tl_copybad");
    support::cluster()
        .run_sql(&db, "CREATE TABLE t(id int, name text, at timestamptz)")
        .unwrap();
    let proxy = TestProxy::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.tsv");
    // The bad row comes first and megabytes follow: the server fails while psql streams.
    write_data(&data, 0..100_000, true);
    let args = [
        "-c".to_owned(),
        format!("\\copy t from '{}'", data.display()),
        "-c".to_owned(),
        "SELECT count(*) AS n FROM t".to_owned(),
        "-c".to_owned(),
        "SELECT 'after' AS x".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = psql(To::Direct, &db, &args);
    let v = psql(To::Proxy(&proxy), &db, &args);
    assert_eq!(text(&v.stdout), text(&d.stdout));
    assert_eq!(text(&v.stderr), text(&d.stderr));
    assert!(text(&d.stderr).contains("22P02") || text(&d.stderr).contains("invalid input syntax"));
    assert!(text(&d.stdout).contains("after"));
    // The statements after the failed COPY are audited as themselves.
    let events = proxy.shutdown();
    let stmts = statements_in(&events, &db);
    let summary: Vec<(String, String)> = stmts
        .iter()
        .map(|e| {
            (
                e["query"].as_str().unwrap_or("<none>").to_owned(),
                e["outcome"].as_str().unwrap_or("<none>").to_owned(),
            )
        })
        .collect();
    let tail: Vec<(String, String)> = summary.iter().rev().take(2).rev().cloned().collect();
    assert_eq!(
        tail,
        [
            ("SELECT count(*) AS n FROM t".to_owned(), "ok".to_owned()),
            ("SELECT $1 AS x".to_owned(), "ok".to_owned())
        ],
        "{summary:#?}"
    );
}

#[test]
fn psql_password_logins_through_the_proxy() {
    let db = support::fresh_database("tl_auth");
    let proxy = TestProxy::start();
    let scram = support::create_scram_role("tl", "scram pw");
    let md5 = support::create_md5_role("tl", "md5 pw");
    for (role, pw) in [(&scram, "scram pw"), (&md5, "md5 pw")] {
        let args = ["-At", "-c", "SELECT current_user, 6 * 7"];
        let o = psql_as(To::Proxy(&proxy), &db, role, Some(pw), &args);
        assert!(o.status.success(), "{role}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), format!("{role}|42\n"));
        let d = psql_as(To::Direct, &db, role, Some("wrong"), &args);
        let v = psql_as(To::Proxy(&proxy), &db, role, Some("wrong"), &args);
        assert_eq!(v.status.code(), d.status.code());
        assert_eq!(d.status.code(), Some(2));
        let msg = format!("password authentication failed for user \"{role}\"");
        assert!(text(&d.stderr).contains(&msg), "{}", text(&d.stderr));
        assert!(text(&v.stderr).contains(&msg), "{}", text(&v.stderr));
    }
}

fn pgbench(proxy: &TestProxy, db: &str, args: &[&str]) -> String {
    let mut cmd = client_command(
        &support::cluster().bin("pgbench"),
        To::Proxy(proxy),
        "postgres",
        None,
    );
    let o = cmd.args(args).arg(db).output().expect("running pgbench");
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "pgbench {args:?} failed:\n{all}");
    all
}

/// `processed` and `failed` from pgbench's summary.
fn pgbench_counts(out: &str) -> (String, u64) {
    let find = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}' in:\n{out}"))
            .trim()
            .to_owned()
    };
    let processed = find("number of transactions actually processed:");
    let failed = find("number of failed transactions:");
    let failed = failed
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse failed count: {failed}"));
    (processed, failed)
}

#[test]
fn pgbench_through_the_proxy() {
    let db = support::fresh_database("tl_pgbench");
    let proxy = TestProxy::start();
    pgbench(&proxy, &db, &["-i", "-s", "1", "-q"]);
    let count = support::cluster()
        .run_sql(&db, "SELECT count(*), sum(abalance) FROM pgbench_accounts")
        .unwrap();
    assert_eq!(count.trim(), "100000|0");
    for mode in ["simple", "extended", "prepared"] {
        let out = pgbench(
            &proxy,
            &db,
            &["-n", "-S", "-M", mode, "-c", "4", "-j", "2", "-t", "200"],
        );
        assert_eq!(
            pgbench_counts(&out),
            ("800/800".to_owned(), 0),
            "-M {mode}:\n{out}"
        );
    }
    let out = pgbench(
        &proxy,
        &db,
        &["-n", "-M", "extended", "-c", "4", "-j", "2", "-t", "100"],
    );
    assert_eq!(pgbench_counts(&out), ("400/400".to_owned(), 0), "{out}");
    let history = support::cluster()
        .run_sql(&db, "SELECT count(*) FROM pgbench_history")
        .unwrap();
    assert_eq!(history.trim(), "400");
}
