//! Analysis is paid once per distinct statement text, shared by all sessions.

use crate::sql::{analyze_cached, Analysis, StructureCache};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A bounded map from statement text to its analysis. When full it is cleared rather than
/// tracking recency: workloads reuse a small set of texts, and a clear costs one re-analysis
/// per text, while per-hit bookkeeping would cost every statement.
pub struct AnalysisCache {
    map: RwLock<HashMap<Arc<str>, Arc<Analysis>>>,
    structures: StructureCache,
    capacity: usize,
}

impl AnalysisCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            structures: StructureCache::new(capacity),
            capacity,
        }
    }

    pub fn get(&self, text: &Arc<str>) -> Arc<Analysis> {
        if let Some(hit) = self.map.read().ok().and_then(|m| m.get(text).cloned()) {
            return hit;
        }
        let analysis = Arc::new(analyze_cached(text, &self.structures));
        // A text with literals (simple-protocol traffic) rarely repeats verbatim; its parse
        // is already shared through the structure cache, so keep it out of this map.
        if analysis.statements.iter().any(|s| s.literals > 0) {
            return analysis;
        }
        if let Ok(mut m) = self.map.write() {
            if m.len() >= self.capacity {
                m.clear();
            }
            m.insert(Arc::clone(text), Arc::clone(&analysis));
        }
        analysis
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_and_stays_bounded() {
        let cache = AnalysisCache::new(2);
        let a: Arc<str> = "SELECT a FROM t WHERE b = $1".into();
        let first = cache.get(&a);
        assert!(Arc::ptr_eq(&first, &cache.get(&a)));
        for t in ["SELECT b FROM t", "SELECT c FROM t", "SELECT d FROM t"] {
            cache.get(&t.into());
        }
        assert!(cache.map.read().unwrap().len() <= 2);
    }

    #[test]
    fn texts_with_literals_share_a_parse_but_are_not_kept_verbatim() {
        let cache = AnalysisCache::new(10);
        let a = cache.get(&"SELECT x FROM t WHERE id = 1".into());
        let b = cache.get(&"SELECT x FROM t WHERE id = 2".into());
        assert_eq!(a.statements[0].normalized, b.statements[0].normalized);
        assert_eq!(a.statements[0].relations, b.statements[0].relations);
        assert!(cache.map.read().unwrap().is_empty());
    }

    #[test]
    fn do_blocks_are_analysed_each_on_its_own() {
        let cache = AnalysisCache::new(10);
        let a = cache.get(&"DO $$ BEGIN PERFORM 1 FROM orders; END $$".into());
        let b = cache.get(&"DO $$ BEGIN PERFORM ssn FROM customers; END $$".into());
        assert_eq!(a.statements[0].relations[0].name, "orders");
        assert_eq!(b.statements[0].relations[0].name, "customers");
    }
}
