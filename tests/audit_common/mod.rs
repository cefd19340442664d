//! Shared fixture of the audit-trail end-to-end tests: a fresh database with the
//! `customers` schema of SPEC section 5, a classification file written into a temp dir, a
//! proxy in front of it, and a shutdown that checks every event against the shipped schema.

#![allow(dead_code)]

pub mod schema;

use crate::support;
use crate::support::proxy::{ProxyOptions, TestProxy};
use serde_json::Value;

/// The customers policy without `roles` (access control off), so these tests see the audit
/// trail, not permission blocks. `encrypt: false` keeps the stored values plain: these tests
/// are about what the trail records, not about encryption.
pub const POLICY: &str = "\
dataset: default
default_class: INTERNAL
tables:
  public.customers:
    class: CONFIDENTIAL
    columns:
      ssn:         { class: RESTRICTED, encrypt: false }
      card_number: { class: RESTRICTED, encrypt: false }
      email:       { class: CONFIDENTIAL }
      created_at:  { class: INTERNAL }
  public.products: { class: PUBLIC }
";

pub const CUSTOMERS_SQL: &str = "\
CREATE TABLE customers(id int PRIMARY KEY, name text, email text, ssn text, \
                       card_number text, created_at timestamptz DEFAULT now());
INSERT INTO customers(id, name, email, ssn, card_number) VALUES
  (1, 'Ann', 'ann@example.com', '111-22-3333', '4111111111111111'),
  (2, 'Bob', 'bob@example.com', '222-33-4444', NULL),
  (3, 'Cy',  'cy@example.com',  '333-44-5555', NULL);
CREATE TABLE products(id int PRIMARY KEY, title text, doc jsonb);
INSERT INTO products VALUES (1, 'pen', '{\"color\": \"blue\", \"tags\": [\"a\", \"b\"], \"dim\": {\"w\": 3}}');
";

/// A database with the customers schema and a proxy classifying it.
pub struct Fixture {
    pub db: String,
    pub proxy: TestProxy,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(prefix: &str) -> Fixture {
        Self::with_options(prefix, ProxyOptions::default())
    }

    pub fn with_options(prefix: &str, mut opts: ProxyOptions) -> Fixture {
        let db = support::fresh_database(prefix);
        support::cluster()
            .run_sql(&db, CUSTOMERS_SQL)
            .unwrap_or_else(|e| panic!("creating the customers schema: {e}"));
        let dir = tempfile::tempdir().expect("temp dir");
        let policy = dir.path().join("classification.yaml");
        std::fs::write(&policy, POLICY).expect("write the policy");
        opts.classification = Some(policy);
        // Our own path, so the file outlives the proxy (whose temp dir goes with it).
        if opts.audit_log.is_none() {
            opts.audit_log = Some(dir.path().join("audit.jsonl"));
        }
        let proxy = TestProxy::start_with(opts);
        Fixture { db, proxy, dir }
    }

    /// Connect through the proxy as the superuser.
    pub async fn connect(&self) -> tokio_postgres::Client {
        self.proxy.connect(&self.db).await
    }

    /// Stop the proxy, check every event against the schema, return this database's events.
    pub fn finish(self) -> Vec<Value> {
        self.finish_with_text().0
    }

    /// Like `finish`, also returning the whole audit file as text (for grepping values).
    pub fn finish_with_text(self) -> (Vec<Value>, String) {
        let path = self.proxy.audit_path.clone();
        let events = self.proxy.shutdown();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        schema::assert_valid(&events);
        let events = events
            .into_iter()
            .filter(|e| e["database"] == self.db.as_str())
            .collect();
        (events, text)
    }
}

/// Statement events only.
pub fn statements(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["kind"] == "statement").collect()
}

/// The one statement event whose normalized query is `query`; panics on none or several.
pub fn one<'a>(events: &'a [Value], query: &str) -> &'a Value {
    let hits: Vec<&Value> = statements(events)
        .into_iter()
        .filter(|e| e["query"] == query)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected exactly one statement event for {query:?}, got {}:\n{}",
        hits.len(),
        dump(events)
    );
    hits[0]
}

/// `{table, column, class}` triples of an event, as tuples.
pub fn columns(ev: &Value) -> Vec<(String, String, String)> {
    ev["columns"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["table"].as_str().unwrap_or_default().to_owned(),
                        c["column"].as_str().unwrap_or_default().to_owned(),
                        c["class"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
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

/// Assert the event attributes the RESTRICTED column public.customers.ssn.
pub fn assert_reads_ssn(ev: &Value) {
    let cols = columns(ev);
    assert!(
        cols.contains(&("public.customers".into(), "ssn".into(), "RESTRICTED".into())),
        "ssn not attributed as RESTRICTED in {ev}"
    );
    assert!(
        strings(&ev["tables"]).contains(&"public.customers".to_owned()),
        "public.customers missing from tables in {ev}"
    );
    assert!(
        strings(&ev["classes"]).contains(&"RESTRICTED".to_owned()),
        "RESTRICTED missing from classes in {ev}"
    );
}

pub fn dump(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Row count of a query run directly against the cluster (not through the proxy).
pub async fn direct_rows(db: &str, sql: &str) -> u64 {
    let c = support::connect_superuser(db).await;
    let mut n = 0;
    for m in c.simple_query(sql).await.expect("direct query") {
        if let tokio_postgres::SimpleQueryMessage::CommandComplete(rows) = m {
            n = rows;
        }
    }
    n
}
