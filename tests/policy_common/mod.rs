//! Shared setup for the policy tests: a database with a `customers` table, trusted login
//! roles, a classification file per test, and raw-wire helpers.

#![allow(dead_code)]

#[path = "../audit_common/schema.rs"]
mod schema;

use crate::support;
use crate::support::proxy::{ProxyOptions, TestProxy};
use crate::support::wire::*;
use serde_json::Value;
use std::path::PathBuf;

/// The classified tables every policy test uses (customers: CONFIDENTIAL, ssn RESTRICTED).
pub const TABLES: &str = r#"
dataset: default
default_class: INTERNAL
tables:
  public.customers:
    class: CONFIDENTIAL
    columns:
      ssn:   { class: RESTRICTED, mask: last4 }
      email: { class: CONFIDENTIAL }
      id:    { class: INTERNAL }
"#;

pub struct Fixture {
    pub db: String,
    /// Two trusted login roles that may read every table.
    pub alice: String,
    pub bob: String,
}

/// A database with `customers(id, name, email, ssn)` holding `rows` rows.
pub fn fixture(prefix: &str, rows: u32) -> Fixture {
    let db = support::fresh_database(prefix);
    let alice = support::unique_name("pol_alice");
    let bob = support::unique_name("pol_bob");
    let cluster = support::cluster();
    cluster
        .run_sql(
            "postgres",
            &format!("CREATE ROLE {alice} LOGIN; CREATE ROLE {bob} LOGIN;"),
        )
        .expect("roles");
    cluster
        .run_sql(
            &db,
            &format!(
                "CREATE TABLE customers(id int, name text, email text, ssn text);\n\
                 INSERT INTO customers SELECT g, 'n' || g, 'e' || g || '@x.test', \
                   lpad(g::text, 9, '0') FROM generate_series(1, {rows}) g;\n\
                 GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {alice}, {bob};"
            ),
        )
        .expect("customers");
    Fixture { db, alice, bob }
}

/// A proxy with `policy` (YAML) written to its own file.
pub fn proxy(policy: &str) -> (TestProxy, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join("policy.yaml");
    std::fs::write(&path, policy).expect("write policy");
    let proxy = TestProxy::start_with(ProxyOptions {
        classification: Some(path),
        ..ProxyOptions::default()
    });
    (proxy, dir)
}

/// Stop the proxy and return its events, each checked against the shipped JSON Schema.
pub fn shutdown(proxy: TestProxy) -> Vec<Value> {
    let events = proxy.shutdown();
    schema::assert_valid(&events);
    events
}

/// Send one simple Query and read to its ReadyForQuery.
pub fn query(conn: &mut RawConn, sql: &str) -> Vec<Msg> {
    conn.send(&q(sql));
    conn.read_until_ready(1)
}

pub fn count(msgs: &[Msg], tag: u8) -> usize {
    msgs.iter().filter(|m| m.tag == tag).count()
}

pub fn error_of(msgs: &[Msg]) -> Option<(String, String)> {
    msgs.iter().find(|m| m.tag == b'E').map(|m| {
        (
            m.sqlstate().unwrap_or_default(),
            m.message().unwrap_or_default(),
        )
    })
}

/// The transaction status of the last ReadyForQuery.
pub fn status(msgs: &[Msg]) -> u8 {
    msgs.iter()
        .rev()
        .find(|m| m.tag == b'Z')
        .map(|m| m.body[0])
        .expect("a ReadyForQuery")
}

/// Events of `kind` in database `db`.
pub fn events_of<'a>(events: &'a [Value], db: &str, kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind && e["database"] == db)
        .collect()
}

/// The statement event whose normalized query contains `needle`.
pub fn statement<'a>(events: &'a [Value], db: &str, needle: &str) -> &'a Value {
    events_of(events, db, "statement")
        .into_iter()
        .find(|e| e["query"].as_str().is_some_and(|q| q.contains(needle)))
        .unwrap_or_else(|| panic!("no statement event with {needle:?}"))
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
