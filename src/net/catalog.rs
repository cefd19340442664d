//! A cache of the upstream catalog per database: which schemas hold a relation name, and
//! each relation's schema, name and columns by OID. Filled on demand over one shared
//! tokio-postgres connection per database; cleared when any session runs DDL.

use crate::config::CatalogConfig;
use crate::session::catalog::{CatalogView, RelationInfo};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long to wait before retrying a catalog connection that failed.
const RETRY_AFTER: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Maps {
    by_name: HashMap<String, Arc<[String]>>,
    by_oid: HashMap<u32, Arc<RelationInfo>>,
    /// Every schema name (`None` until fetched).
    schemas: Option<Arc<[String]>>,
    /// When the oldest fact here was fetched: see `MAX_AGE`.
    since: Option<Instant>,
}

/// DDL sent through the proxy invalidates at once; DDL made around it (a migration run
/// directly, a rename) is picked up within this age, after which facts are fetched again.
const MAX_AGE: Duration = Duration::from_secs(10);

/// The catalog of one upstream database.
pub struct Catalog {
    upstream: String,
    database: String,
    config: CatalogConfig,
    maps: RwLock<Maps>,
    client: Mutex<ClientSlot>,
    generation: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct ClientSlot {
    client: Option<tokio_postgres::Client>,
    /// When a connection attempt as each login user last failed. Kept per user: without a
    /// configured `catalog_user` the login is the session's user, and one user the proxy
    /// cannot log in as (md5/SCRAM, no password) must not switch attribution off for every
    /// other user of the database for `RETRY_AFTER`.
    failed_at: HashMap<String, Instant>,
}

impl Catalog {
    pub fn new(upstream: String, database: String, config: CatalogConfig) -> Self {
        Self {
            upstream,
            database,
            config,
            maps: RwLock::default(),
            client: Mutex::default(),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Forget everything: called after DDL, which may rename, create or drop relations.
    pub fn invalidate(&self) {
        if let Ok(mut m) = self.maps.write() {
            *m = Maps::default();
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Make sure these relation names are known, fetching the missing ones.
    /// Drop facts older than `MAX_AGE` (cheap when fresh: one read lock and a compare).
    fn expire(&self) {
        let stale = self
            .maps
            .read()
            .is_ok_and(|m| m.since.is_some_and(|t| t.elapsed() >= MAX_AGE));
        if stale {
            self.invalidate();
        }
    }

    fn mark_filled(m: &mut Maps) {
        if m.since.is_none() {
            m.since = Some(Instant::now());
        }
    }

    pub async fn ensure_names(&self, names: &[&str], session_user: &str) {
        self.expire();
        let missing: Vec<String> = match self.maps.read() {
            Ok(m) => names
                .iter()
                .filter(|n| !m.by_name.contains_key(**n))
                .map(|n| n.to_string())
                .collect(),
            Err(_) => return,
        };
        let need_schemas = self.maps.read().is_ok_and(|m| m.schemas.is_none());
        if need_schemas {
            self.fetch_schemas(session_user).await;
        }
        if missing.is_empty() {
            return;
        }
        let sql = "SELECT c.relname, n.nspname FROM pg_catalog.pg_class c \
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                   WHERE c.relname = ANY($1) AND c.relkind IN ('r','v','m','p','f') \
                   AND n.nspname NOT LIKE 'pg\\_temp\\_%'";
        let Some(rows) = self.query(sql, &[&missing], session_user).await else {
            return;
        };
        let mut found: HashMap<String, Vec<String>> =
            missing.into_iter().map(|n| (n, Vec::new())).collect();
        for row in rows {
            let (name, schema): (String, String) = (row.get(0), row.get(1));
            found.entry(name).or_default().push(schema);
        }
        if let Ok(mut m) = self.maps.write() {
            Self::mark_filled(&mut m);
            for (name, schemas) in found {
                m.by_name.insert(name, schemas.into());
            }
        }
    }

    /// Fetch the schema names, which decide where a name that matches no relation goes.
    async fn fetch_schemas(&self, session_user: &str) {
        let sql = "SELECT nspname FROM pg_catalog.pg_namespace";
        let Some(rows) = self.query(sql, &[], session_user).await else {
            return;
        };
        let schemas: Arc<[String]> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        if let Ok(mut m) = self.maps.write() {
            Self::mark_filled(&mut m);
            m.schemas = Some(schemas);
        }
    }

    /// Make sure these relation OIDs are known, fetching the missing ones.
    pub async fn ensure_oids(&self, oids: &[u32], session_user: &str) {
        self.expire();
        let missing: Vec<u32> = match self.maps.read() {
            Ok(m) => oids
                .iter()
                .filter(|o| **o != 0 && !m.by_oid.contains_key(o))
                .copied()
                .collect(),
            Err(_) => return,
        };
        if missing.is_empty() {
            return;
        }
        let sql = "SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname \
                   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                   LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 \
                   AND NOT a.attisdropped WHERE c.oid = ANY($1)";
        let Some(rows) = self.query(sql, &[&missing], session_user).await else {
            return;
        };
        let mut rels: HashMap<u32, RelationInfo> = HashMap::new();
        for row in rows {
            let oid: u32 = row.get(0);
            let rel = rels.entry(oid).or_insert_with(|| RelationInfo {
                schema: temp_schema_alias(row.get(1)),
                name: row.get(2),
                columns: HashMap::new(),
            });
            if let (Some(num), Some(name)) = (
                row.get::<_, Option<i16>>(3),
                row.get::<_, Option<String>>(4),
            ) {
                rel.columns.insert(num, name);
            }
        }
        if let Ok(mut m) = self.maps.write() {
            Self::mark_filled(&mut m);
            for (oid, rel) in rels {
                m.by_oid.insert(oid, Arc::new(rel));
            }
        }
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        session_user: &str,
    ) -> Option<Vec<tokio_postgres::Row>> {
        let mut slot = self.client.lock().await;
        if slot.client.as_ref().is_none_or(|c| c.is_closed()) {
            slot.client = None;
            let login = self.config.user.as_deref().unwrap_or(session_user);
            if slot
                .failed_at
                .get(login)
                .is_some_and(|t| t.elapsed() < RETRY_AFTER)
            {
                return None;
            }
            match self.connect(session_user).await {
                Ok(c) => {
                    slot.client = Some(c);
                    slot.failed_at.clear();
                }
                Err(e) => {
                    tracing::warn!(database = %self.database, user = %login, error = %e,
                        "catalog lookups unavailable; result columns are attributed from the statement text only");
                    slot.failed_at.insert(login.to_owned(), Instant::now());
                    return None;
                }
            }
        }
        let client = slot.client.as_ref()?;
        match client.query(sql, params).await {
            Ok(rows) => Some(rows),
            Err(e) => {
                tracing::warn!(database = %self.database, error = %e, "catalog query failed");
                None
            }
        }
    }

    async fn connect(
        &self,
        session_user: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (host, port) = self
            .upstream
            .rsplit_once(':')
            .unwrap_or((self.upstream.as_str(), "5432"));
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(host.trim_start_matches('[').trim_end_matches(']'))
            .port(port.parse().unwrap_or(5432))
            .user(self.config.user.as_deref().unwrap_or(session_user))
            .dbname(&self.database)
            .application_name("pgvigil-catalog")
            .connect_timeout(Duration::from_secs(5));
        if let Some(pw) = &self.config.password {
            cfg.password(pw);
        }
        let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "catalog connection ended");
            }
        });
        Ok(client)
    }
}

impl CatalogView for Catalog {
    fn schemas_with(&self, relname: &str) -> Option<Arc<[String]>> {
        self.maps.read().ok()?.by_name.get(relname).cloned()
    }

    fn relation(&self, oid: u32) -> Option<Arc<RelationInfo>> {
        self.maps.read().ok()?.by_oid.get(&oid).cloned()
    }

    fn schemas(&self) -> Option<Arc<[String]>> {
        self.maps.read().ok()?.schemas.clone()
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// A session's temp schema is `pg_temp_<n>` in the catalog, where `n` is a backend slot:
/// an implementation detail that differs between sessions and runs. Statements name it
/// `pg_temp` and name resolution reports `pg_temp`, so attribution from RowDescription must
/// say the same, or one temp table shows up under two names in one event.
fn temp_schema_alias(nspname: String) -> String {
    match nspname.strip_prefix("pg_temp_") {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => "pg_temp".into(),
        _ => nspname,
    }
}

/// One [`Catalog`] per upstream database, shared by all sessions.
#[derive(Default)]
pub struct Catalogs {
    upstream: String,
    config: CatalogConfig,
    by_db: std::sync::Mutex<HashMap<String, Arc<Catalog>>>,
}

impl Catalogs {
    pub fn new(upstream: String, config: CatalogConfig) -> Self {
        Self {
            upstream,
            config,
            by_db: std::sync::Mutex::default(),
        }
    }

    pub fn for_database(&self, database: &str) -> Arc<Catalog> {
        let Ok(mut map) = self.by_db.lock() else {
            return Arc::new(Catalog::new(
                self.upstream.clone(),
                database.into(),
                self.config.clone(),
            ));
        };
        Arc::clone(map.entry(database.to_owned()).or_insert_with(|| {
            Arc::new(Catalog::new(
                self.upstream.clone(),
                database.to_owned(),
                self.config.clone(),
            ))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::temp_schema_alias;

    #[test]
    fn temp_schemas_are_reported_as_pg_temp() {
        assert_eq!(temp_schema_alias("pg_temp_3".into()), "pg_temp");
        assert_eq!(temp_schema_alias("pg_temp_12".into()), "pg_temp");
        assert_eq!(temp_schema_alias("pg_temp_x".into()), "pg_temp_x");
        assert_eq!(
            temp_schema_alias("pg_toast_temp_3".into()),
            "pg_toast_temp_3"
        );
        assert_eq!(temp_schema_alias("public".into()), "public");
    }
}
