//! Shared test support: one throwaway PostgreSQL cluster per test binary, unique databases
//! and login roles per test (so tests run in parallel safely), and client helpers.
//!
//! Use it from a test file with `mod support;`.
//!
//! Lifetime of the shared cluster: it lives in a `OnceLock`, and statics are never dropped,
//! so `Drop` does not run at the end of the test binary. Cleanup is instead done by the
//! watchdog that `pgvigil::pgctl` attaches to every cluster: it notices that the test
//! process is gone (within a second, even after `SIGKILL`), shuts the postmaster down and
//! removes the cluster directory. Directories of dead test processes that survive anyway
//! are removed when the next cluster starts.
//!
//! Authentication: `postgres` is trusted. Roles made by [`create_md5_role`] are named
//! `md5_*` and must use md5 on TCP; roles made by [`create_scram_role`] are named
//! `scram_*` and must use SCRAM-SHA-256. PostgreSQL 15 has no regular expressions for
//! users in `pg_hba.conf`, so the lines match on membership in [`MD5_GROUP`] /
//! [`SCRAM_GROUP`] (which the helpers grant); on 16+ the `/^md5_` and `/^scram_` lines
//! also cover roles created by hand with those prefixes.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod proxy;
pub mod wire;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use pgvigil::pgctl::{ClusterOptions, TempCluster};

/// Group role whose members authenticate with md5 over TCP.
pub const MD5_GROUP: &str = "pgvigil_md5_users";
/// Group role whose members authenticate with SCRAM-SHA-256 over TCP.
pub const SCRAM_GROUP: &str = "pgvigil_scram_users";

/// The options of the shared cluster (above 200 connections for the idle-connections test).
pub fn shared_cluster_options() -> ClusterOptions {
    ClusterOptions {
        max_connections: 300,
        hba_lines: vec![
            format!("host all +{MD5_GROUP} 127.0.0.1/32 md5"),
            format!("host all +{SCRAM_GROUP} 127.0.0.1/32 scram-sha-256"),
            "host all /^md5_ 127.0.0.1/32 md5".to_owned(),
            "host all /^scram_ 127.0.0.1/32 scram-sha-256".to_owned(),
        ],
        ..ClusterOptions::default()
    }
}

/// The cluster shared by every test in this binary, started on first use.
pub fn cluster() -> &'static TempCluster {
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let cluster = TempCluster::start(&shared_cluster_options())
            .unwrap_or_else(|e| panic!("starting the shared test cluster: {e}"));
        cluster
            .run_sql(
                "postgres",
                &format!("CREATE ROLE {MD5_GROUP} NOLOGIN; CREATE ROLE {SCRAM_GROUP} NOLOGIN;"),
            )
            .unwrap_or_else(|e| panic!("creating the auth group roles: {e}"));
        cluster
    })
}

/// A name unique within this test process: `<prefix>_<pid>_<n>`, lower case, at most 63
/// bytes (PostgreSQL's identifier limit).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let clean: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!(
        "{clean}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates an empty database with a unique name and returns the name.
pub fn fresh_database(prefix: &str) -> String {
    // CREATE DATABASE copies template1 and fails if something else is using it at that
    // moment; serialising our own creations keeps parallel tests from tripping each other.
    static CREATE_LOCK: Mutex<()> = Mutex::new(());
    let name = unique_name(prefix);
    let _guard = CREATE_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cluster()
        .run_sql(
            "postgres",
            &format!("CREATE DATABASE {}", quote_ident(&name)),
        )
        .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
    name
}

/// How a role's password is stored, which decides the method the server can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordKind {
    Md5,
    Scram,
}

/// Creates a login role `md5_<prefix>_...` with an md5-hashed password; returns its name.
pub fn create_md5_role(prefix: &str, password: &str) -> String {
    let name = unique_name(&format!("md5_{prefix}"));
    create_role(&name, password, PasswordKind::Md5);
    name
}

/// Creates a login role `scram_<prefix>_...` with a SCRAM-SHA-256 password; returns its name.
pub fn create_scram_role(prefix: &str, password: &str) -> String {
    let name = unique_name(&format!("scram_{prefix}"));
    create_role(&name, password, PasswordKind::Scram);
    name
}

/// Creates a login role with the given name and password storage, in the matching group.
pub fn create_role(name: &str, password: &str, kind: PasswordKind) {
    let (encryption, group) = match kind {
        PasswordKind::Md5 => ("md5", MD5_GROUP),
        PasswordKind::Scram => ("scram-sha-256", SCRAM_GROUP),
    };
    // password_encryption applies when the password is set, so set it in the same session.
    let sql = format!(
        "SET password_encryption = '{encryption}';\n\
         CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {group};",
        quote_ident(name),
        quote_literal(password)
    );
    cluster()
        .run_sql("postgres", &sql)
        .unwrap_or_else(|e| panic!("creating role {name}: {e}"));
}

/// Lets `role` create objects in `db`'s public schema (PostgreSQL 15 no longer lets PUBLIC).
pub fn grant_create_on_public(db: &str, role: &str) {
    cluster()
        .run_sql(
            db,
            &format!("GRANT ALL ON SCHEMA public TO {}", quote_ident(role)),
        )
        .unwrap_or_else(|e| panic!("granting on {db}.public to {role}: {e}"));
}

/// A key-value connection string for any host/port (the cluster's or a proxy's).
pub fn connection_string(
    host: &str,
    port: u16,
    db: &str,
    user: &str,
    password: Option<&str>,
) -> String {
    let mut s = format!(
        "host={host} port={port} dbname={} user={} connect_timeout=10",
        quote_conninfo(db),
        quote_conninfo(user)
    );
    if let Some(password) = password {
        s.push_str(&format!(" password={}", quote_conninfo(password)));
    }
    s
}

/// Connects with tokio-postgres (no TLS) and drives the connection on a spawned task.
/// Needs a Tokio runtime (`#[tokio::test]`).
pub async fn connect(conn_str: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conn_str, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        // The error also surfaces on the client's next call, so it is only noted here.
        if let Err(e) = connection.await {
            eprintln!("test connection ended with an error: {e}");
        }
    });
    Ok(client)
}

/// Connects straight to the shared cluster as `user`.
pub async fn connect_direct(
    db: &str,
    user: &str,
    password: Option<&str>,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let cluster = cluster();
    connect(&connection_string(
        cluster.host(),
        cluster.port(),
        db,
        user,
        password,
    ))
    .await
}

/// Connects straight to the shared cluster as superuser `postgres`.
pub async fn connect_superuser(db: &str) -> tokio_postgres::Client {
    connect_direct(db, "postgres", None)
        .await
        .unwrap_or_else(|e| panic!("connecting to {db} as postgres: {e}"))
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled (standard_conforming_strings is on).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn quote_conninfo(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}
