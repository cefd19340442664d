//! The walk over one parsed statement: its kind, the relations it references and the
//! columns it reads and writes, with FROM-clause aliases and CTE names resolved per scope.
//!
//! Query structure (WITH, FROM, DML targets) is walked by hand, because that is where names
//! come into scope; expressions are walked with sqlparser's `Visitor`, which reaches every
//! nested expression without matching the whole `Expr` enum. A subquery met inside an
//! expression is handed back to the hand-written walk with the enclosing scopes still on
//! the stack, so correlated references resolve.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Assignment, AssignmentTarget, CommentObject, CopySource, Delete, Expr, FromTable, GrantObjects,
    Ident, Insert, Merge, MergeAction, MergeUpdateKind, ObjectName, ObjectType, OnConflictAction,
    OnInsert, Query, Select, SelectItem, SetExpr, Statement, TableFactor, TableObject,
    TableWithJoins, Update, UpdateTableFromKind, UtilityOption, Visit, Visitor,
};

use super::{ColumnUse, RelationName, StatementKind};

/// What the AST tells about one statement.
#[derive(Debug, Default)]
pub(crate) struct AstFacts {
    pub relations: Vec<RelationName>,
    pub columns: Vec<ColumnUse>,
}

/// Kind, relations and columns of a parsed statement. `first_word` (lower-case) settles the
/// kind of the many DDL variants without listing each.
pub(crate) fn analyze_statement(
    statement: &Statement,
    first_word: &str,
) -> (StatementKind, AstFacts) {
    let mut walker = Walker::default();
    let kind = walker.statement(statement, first_word);
    (kind, walker.facts)
}

/// Names that come into scope in one query level.
#[derive(Debug, Default)]
struct Frame {
    /// CTE names visible from this level down.
    ctes: Vec<String>,
    sources: Vec<Source>,
    /// Names reachable by qualifier only and not counted as "the one relation in scope"
    /// (`excluded` in ON CONFLICT).
    extra_aliases: Vec<(String, RelationName)>,
    /// Output names of the SELECT list, which ORDER BY may refer to.
    output_aliases: Vec<String>,
    /// Table functions in FROM: their names are not relations.
    functions: Vec<ObjectName>,
}

/// One FROM item: the name it is referred by, and the real relation behind it (`None` for
/// derived tables, CTEs and functions, whose columns are not table columns).
#[derive(Debug)]
struct Source {
    alias: Option<String>,
    relation: Option<RelationName>,
}

#[derive(Debug, Default)]
struct Walker {
    facts: AstFacts,
    frames: Vec<Frame>,
    /// Kinds of data-modifying statements met anywhere (CTE bodies included).
    writes: Vec<StatementKind>,
}

pub(crate) fn fold(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .filter_map(|part| part.as_ident())
        .map(fold)
        .collect()
}

/// `[db.]schema.table` -> RelationName; the database part is dropped (Postgres only allows
/// the current database there).
pub(crate) fn relation_name(name: &ObjectName) -> Option<RelationName> {
    let mut parts = name_parts(name);
    let table = parts.pop()?;
    Some(RelationName {
        schema: parts.pop(),
        name: table,
    })
}

impl Walker {
    fn statement(&mut self, statement: &Statement, first_word: &str) -> StatementKind {
        match statement {
            Statement::Query(query) => {
                let before = self.writes.len();
                self.query(query);
                self.writes
                    .get(before)
                    .copied()
                    .unwrap_or(StatementKind::Select)
            }
            Statement::Insert(insert) => self.insert(insert),
            Statement::Update(update) => self.update(update),
            Statement::Delete(delete) => self.delete(delete),
            Statement::Merge(merge) => self.merge(merge),
            Statement::Copy { source, to, .. } => self.copy(source, *to),
            Statement::Explain {
                statement,
                analyze,
                options,
                ..
            } => {
                let analyze = *analyze || options.iter().flatten().any(is_analyze_option);
                self.explain(statement, analyze)
            }
            Statement::Prepare { statement, .. } => self.statement(statement, ""),
            Statement::Declare { .. } | Statement::Fetch { .. } => {
                self.generic(statement, false);
                StatementKind::Select
            }
            _ => self.other_statement(statement, first_word),
        }
    }

    fn other_statement(&mut self, statement: &Statement, first_word: &str) -> StatementKind {
        match statement {
            Statement::Set(_) | Statement::Reset(_) => return StatementKind::Set,
            Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. } => return StatementKind::Transaction,
            _ => {}
        }
        self.unannotated_relations(statement);
        self.generic(statement, false);
        if first_word.starts_with("show") {
            return StatementKind::Select;
        }
        match first_word {
            "create" | "alter" | "drop" | "truncate" | "grant" | "revoke" | "comment" => {
                StatementKind::Ddl
            }
            _ => StatementKind::Other,
        }
    }

    /// EXPLAIN runs its statement only with ANALYZE; a plain EXPLAIN of a write reads
    /// nothing, so it is `Other` (its relations are still reported).
    fn explain(&mut self, inner: &Statement, analyze: bool) -> StatementKind {
        match self.statement(inner, "") {
            StatementKind::Select => StatementKind::Select,
            kind if analyze => kind,
            _ => StatementKind::Other,
        }
    }

    /// Relation names the AST does not mark as relations for the visitor.
    fn unannotated_relations(&mut self, statement: &Statement) {
        match statement {
            Statement::Drop {
                object_type: ObjectType::Table | ObjectType::View | ObjectType::MaterializedView,
                names,
                ..
            } => names.iter().for_each(|n| self.record_relation_name(n)),
            Statement::Comment {
                object_type,
                object_name,
                ..
            } => self.comment_target(object_type, object_name),
            Statement::Grant(grant) => self.grant_objects(grant.objects.as_ref()),
            Statement::Revoke(revoke) => self.grant_objects(revoke.objects.as_ref()),
            _ => {}
        }
    }

    fn comment_target(&mut self, object_type: &CommentObject, name: &ObjectName) {
        match object_type {
            CommentObject::Table | CommentObject::View | CommentObject::MaterializedView => {
                self.record_relation_name(name)
            }
            CommentObject::Column => {
                let mut parts = name_parts(name);
                let column = parts.pop();
                let table = parts.pop();
                if let (Some(_), Some(table)) = (column, table) {
                    self.record_relation(RelationName {
                        schema: parts.pop(),
                        name: table,
                    });
                }
            }
            _ => {}
        }
    }

    fn grant_objects(&mut self, objects: Option<&GrantObjects>) {
        if let Some(GrantObjects::Tables(names)) = objects {
            names.iter().for_each(|n| self.record_relation_name(n));
        }
    }

    fn copy(&mut self, source: &CopySource, to: bool) -> StatementKind {
        match source {
            CopySource::Table {
                table_name,
                columns,
            } => {
                let relation = relation_name(table_name);
                if let Some(r) = &relation {
                    self.record_relation(r.clone());
                }
                for column in columns {
                    self.record_column(relation.clone(), fold(column), !to);
                }
            }
            CopySource::Query(query) => self.query(query),
        }
        if to {
            StatementKind::CopyTo
        } else {
            StatementKind::CopyFrom
        }
    }

    /// Walk a statement with the visitor only: relations via the visitor's relation hook,
    /// nested queries via the hand-written walk; columns only when `columns` is set.
    fn generic<V: Visit>(&mut self, node: &V, columns: bool) {
        self.frames.push(Frame::default());
        self.visit_exprs(node, columns, false);
        self.frames.pop();
    }

    fn visit_exprs<V: Visit>(&mut self, node: &V, columns: bool, order_by: bool) {
        let mut visitor = ExprVisitor {
            walker: self,
            depth: 0,
            columns,
            order_by,
        };
        let _ = node.visit(&mut visitor);
    }

    fn query(&mut self, query: &Query) {
        self.frames.push(Frame::default());
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                let name = fold(&cte.alias.name);
                if with.recursive {
                    self.push_cte(name.clone());
                }
                self.query(&cte.query);
                if !with.recursive {
                    self.push_cte(name);
                }
            }
        }
        let body_frame = self.set_expr(&query.body);
        if let Some(order_by) = &query.order_by {
            self.visit_exprs(order_by, true, true);
        }
        if let Some(limit) = &query.limit_clause {
            self.visit_exprs(limit, true, false);
        }
        if let Some(fetch) = &query.fetch {
            self.visit_exprs(fetch, true, false);
        }
        if body_frame {
            self.frames.pop();
        }
        self.frames.pop();
    }

    fn push_cte(&mut self, name: String) {
        if let Some(frame) = self.frames.last_mut() {
            frame.ctes.push(name);
        }
    }

    /// Returns whether a frame was left on the stack for the caller's ORDER BY to see.
    fn set_expr(&mut self, body: &SetExpr) -> bool {
        match body {
            SetExpr::Select(select) => {
                self.select(select);
                true
            }
            SetExpr::Query(query) => {
                self.query(query);
                false
            }
            SetExpr::SetOperation { left, right, .. } => {
                for side in [left, right] {
                    if self.set_expr(side) {
                        self.frames.pop();
                    }
                }
                false
            }
            SetExpr::Values(values) => {
                self.frames.push(Frame::default());
                self.visit_exprs(values, true, false);
                true
            }
            SetExpr::Insert(statement)
            | SetExpr::Update(statement)
            | SetExpr::Delete(statement)
            | SetExpr::Merge(statement) => {
                self.statement(statement, "");
                false
            }
            SetExpr::Table(table) => {
                if let Some(name) = &table.table_name {
                    self.record_relation(RelationName {
                        schema: table.schema_name.as_ref().map(fold),
                        name: fold(name),
                    });
                }
                false
            }
        }
    }

    fn select(&mut self, select: &Select) {
        let output_aliases = select
            .projection
            .iter()
            .filter_map(|item| match item {
                SelectItem::ExprWithAlias { alias, .. } => Some(fold(alias)),
                _ => None,
            })
            .collect();
        self.frames.push(Frame {
            output_aliases,
            ..Frame::default()
        });
        for table in &select.from {
            self.register_table_with_joins(table);
        }
        self.visit_exprs(select, true, false);
    }

    fn register_table_with_joins(&mut self, table: &TableWithJoins) {
        self.register_factor(&table.relation);
        for join in &table.joins {
            self.register_factor(&join.relation);
        }
    }

    fn register_factor(&mut self, factor: &TableFactor) {
        match factor {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                let alias = alias.as_ref().map(|a| fold(&a.name));
                if args.is_some() {
                    self.add_function(name, alias);
                } else {
                    self.register_named(name, alias);
                }
            }
            TableFactor::Function { name, alias, .. } => {
                self.add_function(name, alias.as_ref().map(|a| fold(&a.name)))
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.register_table_with_joins(table_with_joins),
            TableFactor::Pivot { table, .. }
            | TableFactor::Unpivot { table, .. }
            | TableFactor::MatchRecognize { table, .. } => self.register_factor(table),
            TableFactor::Derived { alias, .. }
            | TableFactor::TableFunction { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::JsonTable { alias, .. }
            | TableFactor::OpenJsonTable { alias, .. } => self.add_source(Source {
                alias: alias.as_ref().map(|a| fold(&a.name)),
                relation: None,
            }),
            _ => {}
        }
    }

    /// A plain name in FROM: a CTE if one of that name is in scope, else a relation.
    fn register_named(&mut self, name: &ObjectName, alias: Option<String>) -> Option<RelationName> {
        let relation = relation_name(name)?;
        if relation.schema.is_none() && self.cte_in_scope(&relation.name) {
            let alias = alias.or(Some(relation.name));
            self.add_source(Source {
                alias,
                relation: None,
            });
            return None;
        }
        self.record_relation(relation.clone());
        self.add_source(Source {
            alias,
            relation: Some(relation.clone()),
        });
        Some(relation)
    }

    fn add_function(&mut self, name: &ObjectName, alias: Option<String>) {
        let alias = alias.or_else(|| name_parts(name).pop());
        if let Some(frame) = self.frames.last_mut() {
            frame.functions.push(name.clone());
        }
        self.add_source(Source {
            alias,
            relation: None,
        });
    }

    fn add_source(&mut self, source: Source) {
        if let Some(frame) = self.frames.last_mut() {
            frame.sources.push(source);
        }
    }

    fn cte_in_scope(&self, name: &str) -> bool {
        self.frames.iter().any(|f| f.ctes.iter().any(|c| c == name))
    }

    fn insert(&mut self, insert: &Insert) -> StatementKind {
        self.writes.push(StatementKind::Insert);
        self.frames.push(Frame::default());
        let target = match &insert.table {
            TableObject::TableName(name) => {
                let alias = insert.table_alias.as_ref().map(|a| fold(&a.alias));
                self.register_named(name, alias)
            }
            _ => None,
        };
        if let (Some(frame), Some(target)) = (self.frames.last_mut(), &target) {
            frame
                .extra_aliases
                .push(("excluded".into(), target.clone()));
        }
        for column in &insert.columns {
            if let Some(column) = name_parts(column).pop() {
                self.record_column(target.clone(), column, true);
            }
        }
        if let Some(OnInsert::OnConflict(conflict)) = &insert.on {
            if let OnConflictAction::DoUpdate(update) = &conflict.action {
                self.assignment_targets(&update.assignments, &target);
            }
        }
        self.visit_exprs(insert, true, false);
        self.frames.pop();
        StatementKind::Insert
    }

    fn assignment_targets(&mut self, assignments: &[Assignment], target: &Option<RelationName>) {
        for assignment in assignments {
            let names = match &assignment.target {
                AssignmentTarget::ColumnName(name) => std::slice::from_ref(name),
                AssignmentTarget::Tuple(names) => names.as_slice(),
            };
            for name in names {
                // `SET col` or `SET col.field` / `SET col[1]`: the column is the first part.
                if let Some(column) = name_parts(name).into_iter().next() {
                    self.record_column(target.clone(), column, true);
                }
            }
        }
    }

    fn update(&mut self, update: &Update) -> StatementKind {
        self.writes.push(StatementKind::Update);
        self.frames.push(Frame::default());
        self.register_table_with_joins(&update.table);
        let target = self.first_source_relation();
        if let Some(from) = &update.from {
            let (UpdateTableFromKind::BeforeSet(tables) | UpdateTableFromKind::AfterSet(tables)) =
                from;
            tables
                .iter()
                .for_each(|t| self.register_table_with_joins(t));
        }
        self.assignment_targets(&update.assignments, &target);
        self.visit_exprs(update, true, false);
        self.frames.pop();
        StatementKind::Update
    }

    fn first_source_relation(&self) -> Option<RelationName> {
        self.frames
            .last()
            .and_then(|f| f.sources.first())
            .and_then(|s| s.relation.clone())
    }

    fn delete(&mut self, delete: &Delete) -> StatementKind {
        self.writes.push(StatementKind::Delete);
        self.frames.push(Frame::default());
        let (FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables)) = &delete.from;
        tables
            .iter()
            .for_each(|t| self.register_table_with_joins(t));
        for table in delete.using.iter().flatten() {
            self.register_table_with_joins(table);
        }
        self.visit_exprs(delete, true, false);
        self.frames.pop();
        StatementKind::Delete
    }

    fn merge(&mut self, merge: &Merge) -> StatementKind {
        self.writes.push(StatementKind::Merge);
        self.frames.push(Frame::default());
        self.register_factor(&merge.table);
        let target = self.first_source_relation();
        self.register_factor(&merge.source);
        for clause in &merge.clauses {
            match &clause.action {
                MergeAction::Insert(insert) => {
                    for column in &insert.columns {
                        if let Some(column) = name_parts(column).pop() {
                            self.record_column(target.clone(), column, true);
                        }
                    }
                }
                MergeAction::Update(update) => {
                    if let MergeUpdateKind::Set(assignments) = &update.kind {
                        self.assignment_targets(assignments, &target);
                    }
                }
                _ => {}
            }
        }
        self.visit_exprs(merge, true, false);
        self.frames.pop();
        StatementKind::Merge
    }

    fn record_relation_name(&mut self, name: &ObjectName) {
        if let Some(relation) = relation_name(name) {
            self.record_relation(relation);
        }
    }

    fn record_relation(&mut self, relation: RelationName) {
        if !self.facts.relations.contains(&relation) {
            self.facts.relations.push(relation);
        }
    }

    fn record_column(&mut self, relation: Option<RelationName>, column: String, write: bool) {
        let usage = ColumnUse {
            relation,
            column,
            write,
        };
        if !self.facts.columns.contains(&usage) {
            self.facts.columns.push(usage);
        }
    }

    /// A relation the visitor met that the structural walk did not register (a safety net
    /// for AST positions this walk does not know): recorded unless it is a CTE or function.
    fn relation_seen(&mut self, name: &ObjectName) {
        let Some(relation) = relation_name(name) else {
            return;
        };
        let is_function = self
            .frames
            .last()
            .is_some_and(|f| f.functions.iter().any(|n| n == name));
        let is_cte = relation.schema.is_none() && self.cte_in_scope(&relation.name);
        if !is_function && !is_cte {
            self.record_relation(relation);
        }
    }

    fn column_reference(&mut self, parts: &[Ident], order_by: bool) {
        let Some((column, qualifier)) = parts.split_last() else {
            return;
        };
        let column_name = fold(column);
        if qualifier.is_empty() {
            if column.quote_style.is_none() && is_value_keyword(&column_name) {
                return;
            }
            let is_output_alias = self
                .frames
                .last()
                .is_some_and(|f| f.output_aliases.contains(&column_name));
            if order_by && is_output_alias {
                return;
            }
        }
        let qualifier: Vec<String> = qualifier.iter().map(fold).collect();
        let relation = self.resolve(&qualifier);
        self.record_column(relation, column_name, false);
    }

    /// The relation a column qualifier designates; `None` when only the catalog can tell.
    fn resolve(&self, qualifier: &[String]) -> Option<RelationName> {
        match qualifier {
            [] => {
                let frame = self.frames.last()?;
                match frame.sources.as_slice() {
                    [only] => only.relation.clone(),
                    _ => None,
                }
            }
            [table] => self.resolve_alias(table),
            [.., schema, table] => self.resolve_qualified(schema, table),
        }
    }

    fn resolve_qualified(&self, schema: &str, table: &str) -> Option<RelationName> {
        let matches = |source: &&Source| {
            source.alias.is_none()
                && source
                    .relation
                    .as_ref()
                    .is_some_and(|r| r.name == table && r.schema.as_deref() == Some(schema))
        };
        self.frames
            .iter()
            .rev()
            .find_map(|f| f.sources.iter().find(matches))
            .and_then(|s| s.relation.clone())
    }

    fn resolve_alias(&self, table: &str) -> Option<RelationName> {
        for frame in self.frames.iter().rev() {
            for source in &frame.sources {
                let referred_as = match (&source.alias, &source.relation) {
                    (Some(alias), _) => Some(alias.as_str()),
                    (None, Some(relation)) => Some(relation.name.as_str()),
                    (None, None) => None,
                };
                if referred_as == Some(table) {
                    return source.relation.clone();
                }
            }
            if let Some((_, relation)) = frame.extra_aliases.iter().find(|(a, _)| a == table) {
                return Some(relation.clone());
            }
        }
        None
    }
}

/// `EXPLAIN (ANALYZE [true|on|1])`: the option form of ANALYZE; `ANALYZE false` or `off`
/// turns it off, anything else unreadable counts as on (the safer reading: it executes).
fn is_analyze_option(option: &UtilityOption) -> bool {
    if !option.name.value.eq_ignore_ascii_case("analyze") {
        return false;
    }
    let setting = option
        .arg
        .as_ref()
        .map(|arg| arg.to_string().trim_matches('\'').to_ascii_lowercase());
    !matches!(setting.as_deref(), Some("false" | "off" | "0"))
}

/// Unquoted words Postgres parses as value functions, not column references.
fn is_value_keyword(word: &str) -> bool {
    matches!(
        word,
        "default"
            | "current_user"
            | "session_user"
            | "current_role"
            | "current_catalog"
            | "current_schema"
            | "user"
            | "current_date"
            | "current_time"
            | "current_timestamp"
            | "localtime"
            | "localtimestamp"
    )
}

/// Expression walk for one query level; nested queries go back to the structural walk.
struct ExprVisitor<'w> {
    walker: &'w mut Walker,
    /// How many queries deep the visitor is below the node it started from; only depth 0
    /// belongs to the current level (deeper ones were handled by `Walker::query`).
    depth: usize,
    columns: bool,
    order_by: bool,
}

impl Visitor for ExprVisitor<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if self.depth == 0 {
            self.walker.query(query);
        }
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        if self.depth == 0 {
            self.walker.relation_seen(relation);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if self.depth > 0 || !self.columns {
            return ControlFlow::Continue(());
        }
        match expr {
            Expr::Identifier(ident) => self
                .walker
                .column_reference(std::slice::from_ref(ident), self.order_by),
            Expr::CompoundIdentifier(parts) => self.walker.column_reference(parts, self.order_by),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
