//! `pgvigil demo`: a throwaway PostgreSQL with the sample schema, pgvigil in front of it with
//! the example classification, and the psql line to connect. Ctrl-C stops everything and
//! removes the cluster.

use crate::config::{Config, Flags};
use crate::net::Proxy;
use crate::pgctl::{ClusterOptions, TempCluster};

const SCHEMA: &str = include_str!("../docker/initdb.d/01-demo-schema.sql");
const EXAMPLE_POLICY: &str = include_str!("../classification/example.yaml");
const DEMO_DB: &str = "demo";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Cluster(#[from] crate::pgctl::PgctlError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Start(#[from] crate::net::listener::StartError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Start the cluster (blocking, about a second), then run the proxy until `stop` resolves.
pub async fn run(stop: impl std::future::Future<Output = ()>) -> Result<(), DemoError> {
    let cluster = tokio::task::spawn_blocking(start_cluster)
        .await
        .map_err(|e| DemoError::Io(std::io::Error::other(e)))??;
    let work = cluster.dir.join("pgvigil");
    std::fs::create_dir_all(&work)?;
    let policy = work.join("example.yaml");
    std::fs::write(&policy, EXAMPLE_POLICY)?;
    let audit = std::env::current_dir()?.join("pgvigil-demo-audit.jsonl");
    let listen = if port_free(6432) {
        "127.0.0.1:6432"
    } else {
        "127.0.0.1:0"
    };
    let config = Config::build(Flags {
        listen: Some(listen.into()),
        upstream: Some(cluster.addr().to_string()),
        classification: Some(policy),
        audit_log: Some(audit.clone()),
        ..Flags::default()
    })?;
    let proxy = Proxy::start(config).await?;
    print_banner(&proxy, &audit);
    stop.await;
    println!("\nstopping: flushing the audit trail and removing the demo cluster");
    proxy.shutdown().await;
    drop(cluster);
    Ok(())
}

fn start_cluster() -> Result<TempCluster, crate::pgctl::PgctlError> {
    let cluster = TempCluster::start(&ClusterOptions {
        max_connections: 100,
        ..ClusterOptions::default()
    })?;
    cluster.run_sql("postgres", &format!("CREATE DATABASE {DEMO_DB}"))?;
    cluster.run_sql(DEMO_DB, SCHEMA)?;
    Ok(cluster)
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn print_banner(proxy: &Proxy, audit: &std::path::Path) {
    let addr = proxy.local_addr();
    println!("pgvigil demo is running.\n");
    println!(
        "  connect:   psql \"host={} port={} user=postgres dbname={DEMO_DB}\"",
        addr.ip(),
        addr.port()
    );
    println!("  try:       SELECT name, email FROM customers;   (postgres is SYSTEM_ADMIN in the example policy)");
    println!("             SELECT ssn FROM customers;           (refused: SYSTEM_ADMIN lacks restricted:read)");
    println!(
        "  as others: psql \"host={} port={} user=app_backend dbname={DEMO_DB}\"   (DATA_PROCESSOR), user=support_bot (CUSTOMER_SUPPORT)",
        addr.ip(),
        addr.port()
    );
    println!("  audit:     tail -f {}", audit.display());
    println!("  policy:    classification/example.yaml (customers.ssn is RESTRICTED, email CONFIDENTIAL)");
    println!("\nPress Ctrl-C to stop.");
}
