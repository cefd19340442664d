//! Analysis is paid once per distinct statement text, shared by all sessions.

use crate::sql::{analyze_cached_with, Analysis, LexOptions, StructureCache};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A statement text and how it is lexed.
type Key = (LexOptions, Arc<str>);

/// A bounded map from statement text to its analysis. When full it is cleared rather than
/// tracking recency: workloads reuse a small set of texts, and a clear costs one re-analysis
/// per text, while per-hit bookkeeping would cost every statement.
pub struct AnalysisCache {
    /// Keyed by the lexing options too: under standard_conforming_strings = off the same
    /// text can hold other statements, literals and tables.
    map: RwLock<HashMap<Key, Arc<Analysis>>>,
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

    /// The analysis of `text` lexed with the default options (standard_conforming_strings
    /// on).
    pub fn get(&self, text: &Arc<str>) -> Arc<Analysis> {
        self.get_with(text, LexOptions::default())
    }

    /// The analysis of `text` lexed the way the session's server will (see [`LexOptions`]).
    pub fn get_with(&self, text: &Arc<str>, options: LexOptions) -> Arc<Analysis> {
        let key = (options, Arc::clone(text));
        if let Some(hit) = self.map.read().ok().and_then(|m| m.get(&key).cloned()) {
            return hit;
        }
        let analysis = Arc::new(analyze_cached_with(text, options, &self.structures));
        // A text with literals (simple-protocol traffic) rarely repeats verbatim; its parse
        // is already shared through the structure cache, so keep it out of this map.
        if analysis.statements.iter().any(|s| s.literals > 0) {
            return analysis;
        }
        if let Ok(mut m) = self.map.write() {
            if m.len() >= self.capacity {
                m.clear();
            }
            m.insert(key, Arc::clone(&analysis));
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

    #[test]
    fn the_lexing_mode_is_part_of_the_key() {
        let cache = AnalysisCache::new(10);
        let text: Arc<str> = r"SELECT 'a\' ; SELECT 1 --', count(*) FROM customers".into();
        let off = LexOptions {
            standard_conforming_strings: false,
        };
        assert_eq!(cache.get(&text).statements.len(), 2);
        let read_off = cache.get_with(&text, off);
        assert_eq!(read_off.statements.len(), 1);
        assert_eq!(read_off.statements[0].relations[0].name, "customers");
        assert_eq!(cache.get(&text).statements.len(), 2);
    }
}
