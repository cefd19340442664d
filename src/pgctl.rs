//! A throwaway PostgreSQL cluster: `initdb` into a temporary directory, `postgres` on a free
//! port, stopped and removed on drop. Used by `pgvigil demo` and by the tests.
//! (Placeholder: the implementation lands with the test harness.)

use std::path::PathBuf;

/// How to set up a throwaway cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub max_connections: u32,
    /// Extra `pg_hba.conf` lines placed before the default `trust` lines.
    pub hba_lines: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            max_connections: 300,
            hba_lines: Vec::new(),
        }
    }
}

/// A running throwaway cluster with superuser `postgres`, listening on 127.0.0.1:`port`.
#[derive(Debug)]
pub struct TempCluster {
    pub port: u16,
    pub dir: PathBuf,
}
