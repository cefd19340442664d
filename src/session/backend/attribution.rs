//! Attribution of a finished statement: the tables, columns and classes its text names
//! and its result columns come from, cached per statement shape and result layout.

use super::*;

impl BackendSession {
    /// The attribution of a finished statement, computed once per statement shape and
    /// result-column layout (per catalog generation) and shared by every later execution.
    pub(super) fn attribution(&mut self, run: &Run, catalog: &dyn CatalogView) -> Attribution {
        let generation = catalog.generation();
        if generation != self.attributions_generation || self.attributions.len() >= MAX_ATTRIBUTIONS
        {
            self.attributions.clear();
            self.attributions_generation = generation;
        }
        let key = AttributionKey {
            shape: run.plan.as_ref().map(|p| Arc::clone(&p.shape)),
            result: run.result.clone(),
        };
        if let Some(hit) = self.attributions.get(&key) {
            return hit.clone();
        }
        let (tables, columns, classes) = attribute(
            run.plan.as_deref(),
            run.result.as_deref(),
            catalog,
            &self.policy,
        );
        let made = Attribution {
            tables: tables.into(),
            columns: columns.into(),
            classes: classes.into(),
        };
        // Only cache what the catalog could fully resolve, so a lookup that was missing
        // (catalog unreachable for a moment) is retried next time.
        let complete = run
            .result
            .as_deref()
            .unwrap_or_default()
            .iter()
            .all(|o| o.table_oid == 0 || catalog.relation(o.table_oid).is_some());
        if complete {
            self.attributions.insert(key, made.clone());
        }
        made
    }
}

/// Bound on cached attributions per session; cleared when full.
pub(super) const MAX_ATTRIBUTIONS: usize = 1024;

#[derive(Debug, Clone)]
pub(super) struct Attribution {
    pub(super) tables: Arc<[String]>,
    pub(super) columns: Arc<[ColumnAccess]>,
    pub(super) classes: Arc<[Class]>,
}

/// A statement shape (by identity: the key holds it, so its address cannot be reused)
/// and a result layout (by value).
#[derive(Debug, Clone)]
pub(super) struct AttributionKey {
    shape: Option<Arc<StatementShape>>,
    result: Option<Arc<[ColumnOrigin]>>,
}

impl PartialEq for AttributionKey {
    fn eq(&self, other: &Self) -> bool {
        let same_shape = match (&self.shape, &other.shape) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same_shape && self.result == other.result
    }
}

impl Eq for AttributionKey {}

impl std::hash::Hash for AttributionKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.shape
            .as_ref()
            .map(|s| Arc::as_ptr(s) as usize)
            .hash(state);
        self.result.hash(state);
    }
}

/// Tables, columns and classes of a statement: what its text names, plus what the server
/// says its result columns come from.
fn attribute(
    plan: Option<&PlannedStatement>,
    result: Option<&[ColumnOrigin]>,
    catalog: &dyn CatalogView,
    policy: &Policy,
) -> (Vec<String>, Vec<ColumnAccess>, Vec<Class>) {
    let mut tables: Vec<String> = Vec::new();
    let mut columns: Vec<ColumnAccess> = Vec::new();
    for origin in result.unwrap_or_default() {
        if origin.table_oid == 0 {
            continue;
        }
        let Some(rel) = catalog.relation(origin.table_oid) else {
            continue;
        };
        let Some(column) = rel.columns.get(&origin.attnum) else {
            continue;
        };
        let class = policy.column_class(&rel.schema, &rel.name, column);
        let table = format!("{}.{}", rel.schema, rel.name);
        columns.push(ColumnAccess {
            table,
            column: column.clone(),
            class,
        });
    }
    // What the server reports is certain; the text-derived entry for the same column may
    // carry a stricter class chosen while the table behind the name was uncertain (the
    // decision needed that), so the server's wins in the record of what was read.
    // A table the server named is no longer uncertain: its predicate-only columns take
    // their own class too.
    let seen: Vec<String> = columns.iter().map(|c| c.table.clone()).collect();
    let text_columns = plan.map(|p| p.columns.as_slice()).unwrap_or_default();
    for c in text_columns {
        if columns
            .iter()
            .any(|r| r.table == c.table && r.column == c.column)
        {
            continue;
        }
        let mut c = c.clone();
        if seen.contains(&c.table) {
            if let Some((schema, table)) = c.table.split_once('.') {
                c.class = policy.column_class(schema, table, &c.column);
            }
        }
        columns.push(c);
    }
    columns.sort();
    columns.dedup();
    let mut classes: Vec<Class> = columns.iter().map(|c| c.class).collect();
    if let Some(plan) = plan {
        for ((schema, table), class) in plan.tables.iter().zip(&plan.table_classes) {
            let name = format!("{schema}.{table}");
            if !columns.iter().any(|c| c.table == name) {
                classes.push(*class);
            }
            tables.push(name);
        }
    }
    for c in &columns {
        if !tables.contains(&c.table) {
            tables.push(c.table.clone());
        }
    }
    classes.sort();
    classes.dedup();
    (tables, columns, classes)
}
