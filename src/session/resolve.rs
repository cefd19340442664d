//! Turning an analysed statement into a [`PlannedStatement`]: relation names resolved the
//! way Postgres resolves them (search_path, implicit pg_catalog, temp tables, `$user`) and
//! every column given its class from the policy.

use super::catalog::CatalogView;
use crate::audit::ColumnAccess;
use crate::policy::engine::Access;
use crate::policy::{Class, Policy};
use crate::sql::{RelationName, SessionEffect, StatementInfo, StatementKind, Tags};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What a statement touches, resolved: depends only on its normalized text, the session's
/// name-resolution state and the catalog, so one shape serves every execution of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementShape {
    pub kind: StatementKind,
    /// `schema.table`, resolved.
    pub tables: Vec<(String, String)>,
    pub columns: Vec<ColumnAccess>,
    pub table_classes: Vec<Class>,
    pub normalized: String,
    pub fingerprint: String,
    /// What the policy engine is asked about, built once per shape: the engine then costs
    /// no per-statement allocation for names.
    pub access: Access,
    /// The SQL cursor this statement declares or reads from, if any: FETCH names only the
    /// cursor, so its data and row counts come from the DECLARE (case S-02).
    pub cursor: Option<CursorUse>,
}

/// How a statement relates to a SQL cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorUse {
    Declare(String),
    /// FETCH or MOVE.
    Fetch(String),
}

/// A statement ready to audit: its shared shape plus what varies per execution.
#[derive(Debug, Clone)]
pub struct PlannedStatement {
    pub shape: Arc<StatementShape>,
    pub actor: Option<String>,
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
    /// The whole message text, for the audit HMAC only.
    pub text: Arc<str>,
}

/// Session state that decides what an unqualified name means.
#[derive(Debug, Clone)]
pub struct NameContext {
    user: String,
    client_addr: String,
    default_path: Vec<String>,
    search_path: Vec<String>,
    temp_tables: HashSet<String>,
    /// `SET pgvigil.actor`; sqlcommenter tags on a statement take precedence.
    pub actor: Option<String>,
    /// Shapes planned under the current search_path, temp tables and catalog generation.
    shapes: HashMap<String, Arc<StatementShape>>,
    shapes_generation: u64,
    /// standard_conforming_strings as the next text will be lexed by the server: written
    /// by the backend half from ParameterStatus, and here, ahead of it, by the session's
    /// own `SET standard_conforming_strings` (see [`NameContext::apply`]).
    standard_conforming_strings: Arc<std::sync::atomic::AtomicBool>,
}

impl std::ops::Deref for PlannedStatement {
    type Target = StatementShape;

    fn deref(&self) -> &StatementShape {
        &self.shape
    }
}

/// Bound on cached shapes per session; cleared when full (workloads reuse few shapes).
const MAX_SHAPES: usize = 1024;

impl NameContext {
    /// From the startup parameters (`search_path`, or `-c search_path=` in `options`).
    pub fn from_startup(user: &str, params: &[(String, String)]) -> Self {
        let mut path = None;
        for (k, v) in params {
            match k.as_str() {
                "search_path" => path = Some(split_path(v)),
                "options" => {
                    if let Some(p) = option_value(v, "search_path") {
                        path = Some(split_path(&p));
                    }
                }
                _ => {}
            }
        }
        let default_path = path.unwrap_or_else(|| vec!["$user".into(), "public".into()]);
        Self {
            user: user.to_owned(),
            client_addr: String::new(),
            search_path: default_path.clone(),
            default_path,
            temp_tables: HashSet::new(),
            shapes: HashMap::new(),
            shapes_generation: 0,
            actor: None,
            standard_conforming_strings: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// Share the session's standard_conforming_strings flag with the backend half, which
    /// records the server's ParameterStatus reports into it.
    pub fn with_standard_conforming_strings(
        mut self,
        flag: Arc<std::sync::atomic::AtomicBool>,
    ) -> Self {
        self.standard_conforming_strings = flag;
        self
    }

    /// How the server will lex this session's next text.
    pub fn lex_options(&self) -> crate::sql::LexOptions {
        crate::sql::LexOptions {
            standard_conforming_strings: self
                .standard_conforming_strings
                .load(std::sync::atomic::Ordering::Acquire),
        }
    }

    /// The client's address, carried into every [`Access`].
    pub fn with_client_addr(mut self, addr: impl Into<String>) -> Self {
        self.client_addr = addr.into();
        self
    }

    /// Forget planned shapes (their classes came from a policy that was replaced).
    pub fn forget_shapes(&mut self) {
        self.shapes.clear();
    }

    pub fn apply(&mut self, effect: &SessionEffect) {
        if !matches!(
            effect,
            SessionEffect::Actor(_) | SessionEffect::StandardConformingStrings(_)
        ) {
            self.shapes.clear();
        }
        match effect {
            SessionEffect::SearchPath(p) => self.search_path = p.clone(),
            SessionEffect::ResetSearchPath => self.search_path = self.default_path.clone(),
            SessionEffect::Actor(a) => self.actor = a.clone(),
            SessionEffect::ResetAll => {
                self.search_path = self.default_path.clone();
                self.actor = None;
                self.temp_tables.clear();
                self.set_standard_conforming_strings(true);
            }
            // Applied as the statement is sent, before the server's ParameterStatus can
            // arrive: a client pipelining `SET standard_conforming_strings = off` and then
            // a text relying on it must have that text lexed the new way. If the SET then
            // fails (or is rolled back with its transaction), the server's report, or its
            // absence, is authoritative from the next ParameterStatus on; until then the
            // proxy lexes as the statement asked.
            SessionEffect::StandardConformingStrings(on) => {
                self.set_standard_conforming_strings(*on);
            }
            SessionEffect::TempTable(t) => {
                self.temp_tables.insert(t.clone());
            }
        }
    }

    /// Restore a lexing mode read earlier with [`NameContext::lex_options`].
    pub fn set_lex_options(&self, options: crate::sql::LexOptions) {
        self.set_standard_conforming_strings(options.standard_conforming_strings);
    }

    fn set_standard_conforming_strings(&self, on: bool) {
        self.standard_conforming_strings
            .store(on, std::sync::atomic::Ordering::Release);
    }

    /// Resolve like Postgres: explicit schema; else the session's temp table; else the first
    /// schema on the effective path (pg_catalog first unless listed) that has the relation.
    pub fn resolve(&self, name: &RelationName, catalog: &dyn CatalogView) -> (String, String) {
        if let Some(schema) = &name.schema {
            return (schema.clone(), name.name.clone());
        }
        if self.temp_tables.contains(&name.name) {
            return ("pg_temp".into(), name.name.clone());
        }
        let path = self.effective_path();
        let found = catalog.schemas_with(&name.name).and_then(|schemas| {
            path.iter()
                .find(|s| schemas.iter().any(|h| h == *s))
                .map(|s| s.to_string())
        });
        // Not found: Postgres creates (or fails to find) it in the first schema of the path
        // that exists, which is usually not `$user`: a session user without a same-named
        // schema lands in `public`, not in a schema that does not exist.
        let schemas = catalog.schemas();
        let exists = |s: &str| {
            schemas
                .as_ref()
                .is_none_or(|all| all.iter().any(|h| h == s))
        };
        let schema = found.unwrap_or_else(|| {
            path.iter()
                .find(|s| **s != "pg_catalog" && exists(s))
                .map(|s| s.to_string())
                .unwrap_or_else(|| "public".into())
        });
        (schema, name.name.clone())
    }

    /// Other relations an unqualified name could mean when the proxy cannot be sure which
    /// one Postgres will pick: the session's temp table may have been dropped, discarded or
    /// never created (its CREATE refused or rolled back), and without catalog knowledge any
    /// schema on the path may hold the name. Classification takes the strictest of them, so
    /// uncertainty fails closed instead of reading a classified table as unclassified.
    fn alternatives(
        &self,
        name: &RelationName,
        catalog: &dyn CatalogView,
    ) -> Vec<(String, String)> {
        if name.schema.is_some() {
            return Vec::new();
        }
        if self.temp_tables.contains(&name.name) {
            return vec![self.clone_without_temp(&name.name).resolve(name, catalog)];
        }
        if catalog.schemas_with(&name.name).is_some() {
            return Vec::new();
        }
        self.effective_path()
            .into_iter()
            .filter(|s| *s != "pg_catalog")
            .map(|s| (s.to_owned(), name.name.clone()))
            .collect()
    }

    fn clone_without_temp(&self, table: &str) -> NameContext {
        let mut ctx = NameContext {
            user: self.user.clone(),
            default_path: self.default_path.clone(),
            search_path: self.search_path.clone(),
            temp_tables: self.temp_tables.clone(),
            actor: None,
            shapes: HashMap::new(),
            shapes_generation: 0,
            client_addr: self.client_addr.clone(),
            standard_conforming_strings: Arc::clone(&self.standard_conforming_strings),
        };
        ctx.temp_tables.remove(table);
        ctx
    }

    fn effective_path(&self) -> Vec<&str> {
        let mut path: Vec<&str> = Vec::with_capacity(self.search_path.len() + 1);
        if !self.search_path.iter().any(|s| s == "pg_catalog") {
            path.push("pg_catalog");
        }
        for s in &self.search_path {
            path.push(if s == "$user" {
                self.user.as_str()
            } else {
                s.as_str()
            });
        }
        path
    }

    /// Plan one analysed statement under the current state.
    pub fn plan(
        &mut self,
        info: &StatementInfo,
        tags: &Tags,
        text: &Arc<str>,
        catalog: &dyn CatalogView,
        policy: &Policy,
    ) -> PlannedStatement {
        let generation = catalog.generation();
        if generation != self.shapes_generation || self.shapes.len() >= MAX_SHAPES {
            self.shapes.clear();
            self.shapes_generation = generation;
        }
        let shape = match self.shapes.get(&info.normalized) {
            Some(shape) => Arc::clone(shape),
            None => {
                let shape = Arc::new(self.shape(info, catalog, policy));
                self.shapes
                    .insert(info.normalized.clone(), Arc::clone(&shape));
                shape
            }
        };
        PlannedStatement {
            shape,
            actor: tags.actor.clone().or_else(|| self.actor.clone()),
            request_id: tags.request_id.clone(),
            traceparent: tags.traceparent.clone(),
            text: Arc::clone(text),
        }
    }

    fn shape(
        &self,
        info: &StatementInfo,
        catalog: &dyn CatalogView,
        policy: &Policy,
    ) -> StatementShape {
        let alternatives: Vec<Vec<(String, String)>> = info
            .relations
            .iter()
            .map(|r| self.alternatives(r, catalog))
            .collect();
        // Without catalog knowledge, report the candidate the policy cares most about (the
        // strictest), not a guess such as the user's own schema.
        let tables: Vec<(String, String)> = info
            .relations
            .iter()
            .zip(&alternatives)
            .map(|(r, alts)| {
                let resolved = self.resolve(r, catalog);
                if self.temp_tables.contains(&r.name) {
                    return resolved;
                }
                alts.iter()
                    .filter(|(s, t)| {
                        policy.table_class(s, t) > policy.table_class(&resolved.0, &resolved.1)
                    })
                    .max_by_key(|(s, t)| policy.table_class(s, t))
                    .cloned()
                    .unwrap_or(resolved)
            })
            .collect();
        let table_classes: Vec<Class> = tables
            .iter()
            .zip(&alternatives)
            .map(|((s, t), alts)| {
                alts.iter()
                    .map(|(s, t)| policy.table_class(s, t))
                    .fold(policy.table_class(s, t), Class::max)
            })
            .collect();
        let mut columns = Vec::with_capacity(info.columns.len());
        let mut access = Access::new(info.kind, self.user.clone(), self.client_addr.clone());
        // The first relation of a write is its target (the analyzer records it first).
        let writes = matches!(
            info.kind,
            StatementKind::Insert
                | StatementKind::Update
                | StatementKind::Delete
                | StatementKind::Merge
                | StatementKind::CopyFrom
        );
        for (i, ((schema, table), class)) in tables.iter().zip(&table_classes).enumerate() {
            access = access.table(schema, table, *class, writes && i == 0);
        }
        for c in &info.columns {
            let (schema, table, alts) = match &c.relation {
                Some(r) => {
                    let (s, t) = self.resolve(r, catalog);
                    (s, t, self.alternatives(r, catalog))
                }
                None if tables.len() == 1 => (
                    tables[0].0.clone(),
                    tables[0].1.clone(),
                    alternatives[0].clone(),
                ),
                None => continue,
            };
            let class = alts
                .iter()
                .map(|(s, t)| policy.column_class(s, t, &c.column))
                .fold(policy.column_class(&schema, &table, &c.column), Class::max);
            access = access.column(&schema, &table, &c.column, class, c.write);
            columns.push(ColumnAccess {
                table: format!("{schema}.{table}"),
                column: c.column.clone(),
                class,
            });
        }
        // Whole-row reads (`*`, `t.*`, a table alias used as a value such as
        // `row_to_json(c)`, or an alias column list renaming every column) return columns
        // the text never names; the decision must see every classified column of those
        // tables, or a RESTRICTED column would pass as its table's class. Over-matching
        // (a `*` that is a multiplication) only makes the check stricter.
        if matches!(info.kind, StatementKind::Select | StatementKind::CopyTo)
            && reads_whole_rows(&info.normalized, info, &tables)
        {
            for (schema, table) in &tables {
                let Some(rule) = policy.table(schema, table) else {
                    continue;
                };
                for (column, col) in &rule.columns {
                    access = access.column(schema, table, column, col.class, false);
                }
            }
        }
        StatementShape {
            kind: info.kind,
            tables,
            columns,
            table_classes,
            normalized: info.normalized.clone(),
            fingerprint: info.fingerprint.clone(),
            access,
            cursor: cursor_use(&info.normalized),
        }
    }
}

/// Whether a read may return whole rows of its tables without naming their columns.
fn reads_whole_rows(normalized: &str, info: &StatementInfo, tables: &[(String, String)]) -> bool {
    let lower = normalized.to_ascii_lowercase();
    let star = lower.replace("(*)", "()").contains('*');
    // An alias column list (`customers AS c(i, n, e, x)`) renames every column.
    let renamed = tables.iter().any(|(_, t)| {
        lower.split(t.as_str()).skip(1).any(|after| {
            let after = after.trim_start();
            let after = after.strip_prefix("as ").unwrap_or(after).trim_start();
            let ident_end = after
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            ident_end > 0 && after[ident_end..].trim_start().starts_with('(')
        })
    });
    // A "column" that is really a table or its alias is a whole-row value.
    let whole_row_value = info.columns.iter().any(|c| {
        tables.iter().any(|(_, t)| {
            c.column == *t
                || lower.contains(&format!("{t} {}", c.column))
                || lower.contains(&format!("{t} as {}", c.column))
        })
    });
    star || renamed || whole_row_value
}

/// The cursor a DECLARE, FETCH or MOVE names (from the normalized text: identifiers are
/// kept there, only literals are replaced). Quoted names are kept exact (they may hold
/// spaces), others folded: a name that is not recognised would leave a FETCH without the
/// data of its DECLARE, so the quoting rules matter.
fn cursor_use(normalized: &str) -> Option<CursorUse> {
    let text = normalized.trim().trim_end_matches(';').trim_end();
    let (first, rest) = text.split_once(char::is_whitespace)?;
    match first.to_ascii_lowercase().as_str() {
        "declare" => leading_ident(rest.trim_start()).map(CursorUse::Declare),
        "fetch" | "move" => trailing_ident(rest).map(CursorUse::Fetch),
        _ => None,
    }
}

fn leading_ident(text: &str) -> Option<String> {
    match text.strip_prefix('"') {
        Some(quoted) => {
            let mut name = String::new();
            let mut chars = quoted.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                    } else {
                        return Some(name);
                    }
                }
                name.push(c);
            }
            None
        }
        None => text.split_whitespace().next().map(str::to_lowercase),
    }
}

fn trailing_ident(text: &str) -> Option<String> {
    let Some(body) = text.strip_suffix('"') else {
        return text.split_whitespace().last().map(str::to_lowercase);
    };
    // Walk back to the opening quote; `""` inside is an escaped quote.
    let bytes = body.as_bytes();
    let mut i = bytes.len();
    while i > 0 {
        i -= 1;
        if bytes[i] == b'"' {
            if i > 0 && bytes[i - 1] == b'"' {
                i -= 1;
                continue;
            }
            return Some(body[i + 1..].replace("\"\"", "\""));
        }
    }
    None
}

/// Split a search_path value: comma separated, quoted names kept exact, others folded.
pub fn split_path(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(
            |s| match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => s.to_lowercase(),
            },
        )
        .collect()
}

/// Find `name` in a libpq `options` string: `-c name=value`, `-cname=value`, `--name=value`;
/// backslash escapes a space, as in Postgres.
fn option_value(options: &str, name: &str) -> Option<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next()),
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut found = None;
    let mut iter = words.iter();
    while let Some(w) = iter.next() {
        let setting = if w == "-c" {
            iter.next().map(String::as_str)
        } else {
            w.strip_prefix("-c").or_else(|| w.strip_prefix("--"))
        };
        if let Some((k, v)) = setting.and_then(|s| s.split_once('=')) {
            if k.replace('-', "_") == name {
                found = Some(v.to_owned());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::catalog::StaticCatalog;

    fn rel(schema: Option<&str>, name: &str) -> RelationName {
        RelationName {
            schema: schema.map(Into::into),
            name: name.into(),
        }
    }

    fn catalog(entries: &[(&str, &[&str])]) -> StaticCatalog {
        let mut c = StaticCatalog::default();
        for (name, schemas) in entries {
            let v: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
            c.by_name.insert(name.to_string(), v.into());
        }
        c
    }

    #[test]
    fn cursor_names_of_declare_fetch_and_move() {
        let d = |t: &str| cursor_use(t);
        assert_eq!(
            d("DECLARE c CURSOR FOR SELECT ssn FROM customers"),
            Some(CursorUse::Declare("c".into()))
        );
        assert_eq!(d("FETCH $1 FROM C"), Some(CursorUse::Fetch("c".into())));
        assert_eq!(
            d("fetch next in \"My \"\"Cur\";"),
            Some(CursorUse::Fetch("My \"Cur".into()))
        );
        assert_eq!(
            d("DECLARE \"a b\" CURSOR FOR SELECT 1"),
            Some(CursorUse::Declare("a b".into()))
        );
        assert_eq!(d("MOVE 10 IN \"Q\""), Some(CursorUse::Fetch("Q".into())));
        assert_eq!(d("SELECT 1"), None);
    }

    #[test]
    fn standard_conforming_strings_effect_sets_the_shared_flag() {
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let mut ctx = NameContext::from_startup("alice", &[])
            .with_standard_conforming_strings(Arc::clone(&flag));
        assert!(ctx.lex_options().standard_conforming_strings);
        ctx.apply(&SessionEffect::StandardConformingStrings(false));
        assert!(!flag.load(std::sync::atomic::Ordering::Acquire));
        assert!(!ctx.lex_options().standard_conforming_strings);
        // The backend half's report wins from then on.
        flag.store(true, std::sync::atomic::Ordering::Release);
        assert!(ctx.lex_options().standard_conforming_strings);
        ctx.apply(&SessionEffect::StandardConformingStrings(false));
        ctx.apply(&SessionEffect::ResetAll);
        assert!(ctx.lex_options().standard_conforming_strings);
    }

    #[test]
    fn resolves_through_search_path_like_postgres() {
        let cat = catalog(&[
            ("customers", &["public", "app"]),
            ("pg_class", &["pg_catalog"]),
        ]);
        let mut ctx = NameContext::from_startup("alice", &[]);
        assert_eq!(ctx.resolve(&rel(None, "customers"), &cat).0, "public");
        assert_eq!(ctx.resolve(&rel(None, "pg_class"), &cat).0, "pg_catalog");
        ctx.apply(&SessionEffect::SearchPath(vec![
            "app".into(),
            "public".into(),
        ]));
        assert_eq!(ctx.resolve(&rel(None, "customers"), &cat).0, "app");
        assert_eq!(
            ctx.resolve(&rel(Some("public"), "customers"), &cat).0,
            "public"
        );
        ctx.apply(&SessionEffect::TempTable("customers".into()));
        assert_eq!(ctx.resolve(&rel(None, "customers"), &cat).0, "pg_temp");
        ctx.apply(&SessionEffect::ResetAll);
        assert_eq!(ctx.resolve(&rel(None, "customers"), &cat).0, "public");
    }

    #[test]
    fn unknown_names_go_to_the_first_existing_schema() {
        let mut cat = catalog(&[("customers", &["public"])]);
        let ctx = NameContext::from_startup("postgres", &[]);
        // Without schema knowledge the old answer stands.
        assert_eq!(ctx.resolve(&rel(None, "notes"), &cat).0, "postgres");
        cat.schemas = Some(vec!["public".to_string(), "pg_catalog".to_string()].into());
        assert_eq!(ctx.resolve(&rel(None, "notes"), &cat).0, "public");
        cat.schemas = Some(vec!["postgres".to_string(), "public".to_string()].into());
        assert_eq!(ctx.resolve(&rel(None, "notes"), &cat).0, "postgres");
    }

    #[test]
    fn user_schema_and_startup_options() {
        let cat = catalog(&[("t", &["alice", "public"])]);
        let ctx = NameContext::from_startup("alice", &[]);
        assert_eq!(ctx.resolve(&rel(None, "t"), &cat).0, "alice");
        let params = vec![(
            "options".to_string(),
            "-c search_path=App,public".to_string(),
        )];
        let ctx = NameContext::from_startup("alice", &params);
        assert_eq!(
            ctx.search_path,
            vec!["app".to_string(), "public".to_string()]
        );
        let params = vec![("options".to_string(), "--search-path=\"X\"".to_string())];
        assert_eq!(
            NameContext::from_startup("a", &params).search_path,
            vec!["X".to_string()]
        );
    }
}

#[cfg(test)]
mod fail_closed_tests {
    use super::*;
    use crate::session::catalog::StaticCatalog;
    use crate::sql::analyze;

    const POLICY: &str = "default_class: INTERNAL\ntables:\n  public.customers:\n    class: CONFIDENTIAL\n    columns:\n      ssn: { class: RESTRICTED }\n";

    fn policy() -> Policy {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, POLICY).unwrap();
        Policy::load(&path).unwrap()
    }

    fn shape(ctx: &mut NameContext, catalog: &StaticCatalog, sql: &str) -> Arc<StatementShape> {
        let a = analyze(sql);
        let text: Arc<str> = sql.into();
        ctx.plan(&a.statements[0], &a.tags, &text, catalog, &policy())
            .shape
    }

    #[test]
    fn without_catalog_knowledge_the_strictest_candidate_classifies() {
        let mut ctx = NameContext::from_startup("appx", &[]);
        let s = shape(
            &mut ctx,
            &StaticCatalog::default(),
            "SELECT ssn FROM customers",
        );
        assert_eq!(
            s.tables,
            vec![("public".to_string(), "customers".to_string())]
        );
        assert_eq!(s.columns[0].class, Class::Restricted);
    }

    #[test]
    fn whole_row_reads_see_every_classified_column() {
        let mut cat = StaticCatalog::default();
        cat.by_name
            .insert("customers".into(), vec!["public".to_string()].into());
        let p = policy();
        for sql in [
            "SELECT * FROM customers",
            "SELECT c.* FROM customers c",
            "SELECT row_to_json(c) FROM customers c",
            "SELECT x FROM customers AS c(i, n, e, x)",
        ] {
            let mut ctx = NameContext::from_startup("appx", &[]);
            let s = shape(&mut ctx, &cat, sql);
            let v = crate::policy::engine::Engine::new(Arc::new(p.clone()))
                .unwrap()
                .decide_before(
                    &s.access,
                    &Default::default(),
                    &[],
                    time::OffsetDateTime::now_utc(),
                );
            assert!(
                v.classes.contains(Class::Restricted),
                "{sql}: {:?}",
                v.classes
            );
        }
        let mut ctx = NameContext::from_startup("appx", &[]);
        let s = shape(
            &mut ctx,
            &cat,
            "SELECT name, count(*) FROM customers GROUP BY name",
        );
        let v = crate::policy::engine::Engine::new(Arc::new(p))
            .unwrap()
            .decide_before(
                &s.access,
                &Default::default(),
                &[],
                time::OffsetDateTime::now_utc(),
            );
        assert!(
            !v.classes.contains(Class::Restricted),
            "named columns only: {:?}",
            v.classes
        );
    }

    #[test]
    fn a_temp_table_that_may_be_gone_does_not_lower_the_class() {
        let mut ctx = NameContext::from_startup("appx", &[]);
        let mut cat = StaticCatalog::default();
        cat.by_name
            .insert("customers".into(), vec!["public".to_string()].into());
        ctx.apply(&SessionEffect::TempTable("customers".into()));
        let s = shape(&mut ctx, &cat, "SELECT ssn FROM customers");
        assert_eq!(s.tables[0].0, "pg_temp");
        assert_eq!(s.table_classes[0], Class::Confidential);
        assert_eq!(s.columns[0].class, Class::Restricted);
    }
}
