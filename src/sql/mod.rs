//! SQL analysis: statement kind, relations and columns, session effects, normalized text and
//! sqlcommenter tags, from one Query or Parse text. Pure: no I/O, no catalog access; schema
//! resolution against search_path and the catalog happens in the session.

use serde::Serialize;

/// Statement kinds of SPEC section 3 (contract: audit `statement_kind` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    CopyTo,
    CopyFrom,
    Ddl,
    Set,
    Transaction,
    Other,
    /// The parser could not handle the text; it is forwarded and audited as such.
    Unparsed,
}

/// A relation name as written, folded like Postgres (unquoted lower-case, quoted exact).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelationName {
    pub schema: Option<String>,
    pub name: String,
}

/// One column the statement reads or writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnUse {
    /// The relation the column belongs to, when the statement makes it certain (qualifier,
    /// alias, or the only relation in scope). `None` when only the catalog can tell.
    pub relation: Option<RelationName>,
    pub column: String,
    pub write: bool,
}

/// Changes a statement makes to session state the proxy tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEffect {
    /// `SET search_path ...`, `set_config('search_path', ...)`; schemas folded, `"$user"` kept.
    SearchPath(Vec<String>),
    /// `RESET search_path` / `SET search_path TO DEFAULT`.
    ResetSearchPath,
    /// `SET pgvigil.actor = '...'` (None for RESET).
    Actor(Option<String>),
    /// `RESET ALL`, `DISCARD ALL`.
    ResetAll,
    /// `CREATE TEMP TABLE name` shadows same-named tables for this session.
    TempTable(String),
}

/// Everything the proxy knows about one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementInfo {
    pub kind: StatementKind,
    pub relations: Vec<RelationName>,
    pub columns: Vec<ColumnUse>,
    pub effects: Vec<SessionEffect>,
    /// Statement text with every literal replaced by a placeholder: never holds a value.
    pub normalized: String,
    /// Stable hex id of `normalized`.
    pub fingerprint: String,
}

/// sqlcommenter tags found in comments (`/* actor='alice',request_id='r-42' */`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    pub actor: Option<String>,
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
}

/// The analysis of one Query or Parse text: one entry per statement, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    pub statements: Vec<StatementInfo>,
    pub tags: Tags,
}

/// Analyse a statement text. Never fails: what cannot be parsed is `Unparsed`.
pub fn analyze(text: &str) -> Analysis {
    // Placeholder until the analyser lands: one unparsed statement.
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed == ";" {
        return Analysis::default();
    }
    Analysis {
        statements: vec![StatementInfo {
            kind: StatementKind::Unparsed,
            relations: Vec::new(),
            columns: Vec::new(),
            effects: Vec::new(),
            normalized: String::new(),
            fingerprint: String::new(),
        }],
        tags: Tags::default(),
    }
}
