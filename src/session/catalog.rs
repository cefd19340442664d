//! What the session needs to know about the upstream catalog, as a synchronous view.
//! The network layer fetches what is missing before it calls into the session, so the
//! session stays pure and testable with an in-memory catalog.

use std::collections::HashMap;
use std::sync::Arc;

/// A relation's schema, name and columns by attribute number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationInfo {
    pub schema: String,
    pub name: String,
    pub columns: HashMap<i16, String>,
}

pub trait CatalogView {
    /// Schemas holding a relation of this name, or `None` when not known.
    fn schemas_with(&self, relname: &str) -> Option<Arc<[String]>>;
    /// The relation with this OID, or `None` when not known.
    fn relation(&self, oid: u32) -> Option<Arc<RelationInfo>>;
    /// Every schema of the database, or `None` when not known. A name that resolves to no
    /// relation (a CREATE, or a statement that will fail) is placed by Postgres in the first
    /// search_path schema that exists, so resolution needs to know which ones do.
    fn schemas(&self) -> Option<Arc<[String]>> {
        None
    }
    /// Changes whenever cached catalog facts were dropped (after DDL), so anything derived
    /// from them must be derived again.
    fn generation(&self) -> u64 {
        0
    }
}

/// A fixed catalog, for tests and for when the upstream catalog cannot be read.
#[derive(Debug, Default, Clone)]
pub struct StaticCatalog {
    pub by_name: HashMap<String, Arc<[String]>>,
    pub by_oid: HashMap<u32, Arc<RelationInfo>>,
    pub schemas: Option<Arc<[String]>>,
}

impl CatalogView for StaticCatalog {
    fn schemas_with(&self, relname: &str) -> Option<Arc<[String]>> {
        self.by_name.get(relname).cloned()
    }

    fn relation(&self, oid: u32) -> Option<Arc<RelationInfo>> {
        self.by_oid.get(&oid).cloned()
    }

    fn schemas(&self) -> Option<Arc<[String]>> {
        self.schemas.clone()
    }
}
