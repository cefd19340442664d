//! Checks that the test harness works against a real server: the shared cluster starts,
//! fresh databases are distinct, md5 and SCRAM roles authenticate as configured, and the
//! server's client programs (psql, pgbench) run against it.

mod support;

use std::process::Command;

use pgvigil::pgctl::{ClusterOptions, TempCluster};

#[test]
fn shared_cluster_answers_sql() {
    let cluster = support::cluster();
    let out = cluster
        .run_sql("postgres", "SELECT 1 + 1")
        .expect("run SELECT through psql");
    assert_eq!(out, "2");
    let max = cluster
        .run_sql("postgres", "SHOW max_connections")
        .expect("show max_connections");
    assert_eq!(max, "300");
    let fsync = cluster
        .run_sql("postgres", "SHOW fsync")
        .expect("show fsync");
    assert_eq!(fsync, "off");
}

#[test]
fn fresh_databases_are_distinct() {
    let a = support::fresh_database("smoke");
    let b = support::fresh_database("smoke");
    assert_ne!(a, b);
    let cluster = support::cluster();
    cluster
        .run_sql(&a, "CREATE TABLE only_in_a (id int)")
        .expect("create table in a");
    let in_b = cluster
        .run_sql(
            &b,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'",
        )
        .expect("look for the table in b");
    assert_eq!(in_b, "0");
}

#[tokio::test]
async fn md5_role_needs_its_password() {
    let db = support::fresh_database("md5auth");
    let role = support::create_md5_role("smoke", "right-md5");
    let stored = support::cluster()
        .run_sql(
            "postgres",
            &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'"),
        )
        .expect("read stored password");
    assert!(stored.starts_with("md5"), "md5 role stored {stored:?}");

    let client = support::connect_direct(&db, &role, Some("right-md5"))
        .await
        .expect("md5 login with the right password");
    let row = client
        .query_one("SELECT current_user::text", &[])
        .await
        .expect("query as md5 role");
    assert_eq!(row.get::<_, String>(0), role);

    let wrong = support::connect_direct(&db, &role, Some("wrong")).await;
    assert_auth_failed(wrong.err(), "md5 role with a wrong password");
    // Without a password, trust would let us in; the hba line must ask for one.
    let missing = support::connect_direct(&db, &role, None).await;
    assert!(
        missing.is_err(),
        "md5 role logged in without a password: hba line not applied"
    );
}

#[tokio::test]
async fn scram_role_needs_its_password() {
    let db = support::fresh_database("scramauth");
    let role = support::create_scram_role("smoke", "right-scram");
    let stored = support::cluster()
        .run_sql(
            "postgres",
            &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'"),
        )
        .expect("read stored password");
    assert!(
        stored.starts_with("SCRAM-SHA-256$"),
        "scram role stored {stored:?}"
    );

    let client = support::connect_direct(&db, &role, Some("right-scram"))
        .await
        .expect("scram login with the right password");
    let row = client
        .query_one("SELECT current_user::text", &[])
        .await
        .expect("query as scram role");
    assert_eq!(row.get::<_, String>(0), role);

    let wrong = support::connect_direct(&db, &role, Some("wrong")).await;
    assert_auth_failed(wrong.err(), "scram role with a wrong password");
    let missing = support::connect_direct(&db, &role, None).await;
    assert!(
        missing.is_err(),
        "scram role logged in without a password: hba line not applied"
    );
}

#[tokio::test]
async fn superuser_client_round_trips() {
    let db = support::fresh_database("client");
    let client = support::connect_superuser(&db).await;
    let row = client
        .query_one("SELECT $1::int + 1, current_database()::text", &[&41i32])
        .await
        .expect("extended-protocol query");
    assert_eq!(row.get::<_, i32>(0), 42);
    assert_eq!(row.get::<_, String>(1), db);
}

#[test]
fn pgbench_runs_without_failures() {
    let cluster = support::cluster();
    let db = support::fresh_database("pgbench");
    let port = cluster.port().to_string();
    let init = Command::new(cluster.bin("pgbench"))
        .args([
            "-i",
            "-s",
            "1",
            "-q",
            "-h",
            cluster.host(),
            "-p",
            &port,
            "-U",
            "postgres",
            &db,
        ])
        .output()
        .expect("run pgbench -i");
    assert!(
        init.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );

    // A transaction count, not a duration: tests are never timed.
    let run = Command::new(cluster.bin("pgbench"))
        .args(["-n", "-c", "2", "-j", "1", "-t", "50", "-M", "extended"])
        .args(["-h", cluster.host(), "-p", &port, "-U", "postgres", &db])
        .output()
        .expect("run pgbench");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "pgbench failed: {stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("number of transactions actually processed: 100/100"),
        "unexpected pgbench output:\n{stdout}"
    );
    // PostgreSQL 15+ reports failures; older pgbench exits non-zero instead.
    if stdout.contains("number of failed transactions") {
        assert!(
            stdout.contains("number of failed transactions: 0 "),
            "failures:\n{stdout}"
        );
    }
}

#[test]
fn own_cluster_is_removed_on_drop() {
    let options = ClusterOptions {
        max_connections: 20,
        ..ClusterOptions::default()
    };
    let cluster = TempCluster::start(&options).expect("start a private cluster");
    let dir = cluster.dir.clone();
    let pid = cluster.pid().expect("postmaster pid");
    assert_eq!(
        cluster
            .run_sql("postgres", "SHOW max_connections")
            .expect("psql"),
        "20"
    );
    assert_ne!(cluster.port(), support::cluster().port());
    drop(cluster);
    assert!(!dir.exists(), "cluster dir {} left behind", dir.display());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "postmaster {pid} still running after drop"
    );
}

#[test]
fn failed_start_reports_the_server_log() {
    let options = ClusterOptions {
        max_connections: 20,
        extra_settings: vec!["shared_buffers = 'not a size'".to_owned()],
        ..ClusterOptions::default()
    };
    let err = TempCluster::start(&options).expect_err("start with an invalid setting");
    let message = err.to_string();
    assert!(
        message.contains("postgres exited during startup"),
        "{message}"
    );
    assert!(
        message.contains("shared_buffers"),
        "log tail missing from: {message}"
    );
}

fn assert_auth_failed(err: Option<tokio_postgres::Error>, what: &str) {
    let err = err.unwrap_or_else(|| panic!("{what}: login succeeded"));
    let code = err.code().map(|c| c.code().to_owned());
    // 28P01 invalid_password
    assert_eq!(
        code.as_deref(),
        Some("28P01"),
        "{what}: unexpected error {err}"
    );
}
