//! SQL analysis: statement kind, relations and columns, session effects, normalized text and
//! sqlcommenter tags, from one Query or Parse text. Pure: no I/O, no catalog access; schema
//! resolution against search_path and the catalog happens in the session.

use serde::Serialize;

mod comments;
mod effects;
mod fallback;
mod lexer;
mod normalize;
mod split;
#[cfg(test)]
mod tests;
mod visit;

/// How a session's texts are lexed.
///
/// Why the analysis follows the server's standard_conforming_strings exactly rather than
/// picking one "safe" reading: neither reading is safe for a text meant for the other.
/// Read as `on`, an `off` text like `SELECT 'a\' ; SELECT 1 --', count(*) FROM customers`
/// splits into `SELECT $1` plus a comment (the table hidden) and `'pa\'ss hunter3b'`
/// leaks `ss hunter3b`. Read as `off`, an `on` text like
/// `SELECT 'a\', ssn FROM customers WHERE name = 'x'` becomes one long literal (the table
/// hidden) followed by a bare `x` (leaked). Backslash mode is therefore not a fail-closed
/// default; the session tracks the server's value instead: the startup ParameterStatus,
/// every later one (the setting is GUC_REPORT, so changes, SET LOCAL ending and rollbacks
/// are all reported), and, ahead of the report, the session's own
/// `SET standard_conforming_strings` / `set_config` as it is sent
/// ([`SessionEffect::StandardConformingStrings`]); a Query the proxy refuses, and a
/// Parse (which runs nothing), do not move the mode. Known residual windows: a forwarded
/// SET that the server then rejects (the proxy lexes as the SET asked until the server's
/// next report, which may not come until the setting next changes), a RESET to a
/// non-built-in default (the proxy assumes on until the report arrives), an extended-
/// protocol SET pipelined with the next text (lexed in the old mode until the report),
/// and two opposite SETs pipelined back to back (the first one's late report can
/// overwrite the second one's optimistic value until the second report arrives). When the parser's reading could still differ from the server's
/// (a backslash in `N'...'` with the setting off), the statement is left to the token
/// fallback, which reads tables from the correctly lexed tokens.
pub use lexer::LexOptions;

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
    /// `SET standard_conforming_strings ...` / `set_config('standard_conforming_strings',
    /// ...)`: how the server lexes the session's next texts. RESET and DEFAULT report `true`
    /// (the built-in default); the server's ParameterStatus corrects any guess.
    StandardConformingStrings(bool),
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
    /// How many literals `normalized` replaced: texts without any repeat verbatim (Parse
    /// with `$n` parameters) and are worth caching by their exact text.
    pub literals: usize,
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
    analyze_inner(text, LexOptions::default(), None)
}

/// Like [`analyze`], lexing the way a session with these settings does (see
/// [`LexOptions`]): the same text can hold different statements, literals and tables
/// depending on standard_conforming_strings.
pub fn analyze_with(text: &str, options: LexOptions) -> Analysis {
    analyze_inner(text, options, None)
}

/// Like [`analyze`], reusing the parse of any statement whose normalized text was seen
/// before. Statements that differ only in literals (`... WHERE aid = 42` vs `= 43`, the
/// common shape of simple-protocol traffic) then cost a lex, not a parse.
pub fn analyze_cached(text: &str, cache: &StructureCache) -> Analysis {
    analyze_inner(text, LexOptions::default(), Some(cache))
}

/// [`analyze_cached`] under the given lexing options; the cache key includes them.
pub fn analyze_cached_with(text: &str, options: LexOptions, cache: &StructureCache) -> Analysis {
    analyze_inner(text, options, Some(cache))
}

fn analyze_inner(text: &str, options: LexOptions, cache: Option<&StructureCache>) -> Analysis {
    let tokens = lexer::tokenize_with(text, options);
    let tags = comments::extract_tags(text, &tokens);
    let statements = split::split(text, &tokens)
        .iter()
        .map(|segment| analyze_segment(text, &tokens, segment, options, cache))
        .collect();
    Analysis { statements, tags }
}

/// What a statement's parse tells: a function of its normalized text alone, because
/// normalization keeps every keyword and identifier and replaces only literals.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Structure {
    kind: StatementKind,
    relations: Vec<RelationName>,
    columns: Vec<ColumnUse>,
}

/// Parses keyed by normalized statement text; bounded, cleared when full (see
/// `AnalysisCache` in the session for why clearing beats recency tracking here). Only
/// parsed structures that depend on the normalized text alone are shared: never an
/// `Unparsed` one, never an `EXPLAIN` or `DO` (see `shares_structure`).
pub struct StructureCache {
    /// Keyed by the lexing options too: the parse of a text depends on how its strings
    /// end, and normalization alone does not show it.
    map: std::sync::RwLock<
        std::collections::HashMap<(LexOptions, String), std::sync::Arc<Structure>>,
    >,
    capacity: usize,
}

impl StructureCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: std::sync::RwLock::default(),
            capacity,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.read().map_or(0, |m| m.len())
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached structure for `key`, or `make()`'s. An `Unparsed` result is returned but
    /// never stored: its relations come from the fallback lexer, which also looks inside
    /// literals (`DO $$ ... $$` bodies), so it is a function of the literal contents, not of
    /// the normalized text (two DO blocks both normalize to `DO $1`).
    fn get_or_insert(
        &self,
        options: LexOptions,
        normalized: &str,
        make: impl FnOnce() -> Structure,
    ) -> std::sync::Arc<Structure> {
        let key = (options, normalized.to_owned());
        if let Some(hit) = self.map.read().ok().and_then(|m| m.get(&key).cloned()) {
            return hit;
        }
        let made = std::sync::Arc::new(make());
        if made.kind == StatementKind::Unparsed {
            return made;
        }
        if let Ok(mut m) = self.map.write() {
            if m.len() >= self.capacity {
                m.clear();
            }
            m.insert(key, std::sync::Arc::clone(&made));
        }
        made
    }
}

fn analyze_segment(
    text: &str,
    tokens: &[lexer::Token],
    segment: &split::Segment,
    options: LexOptions,
    cache: Option<&StructureCache>,
) -> StatementInfo {
    let statement_tokens = segment.tokens(tokens);
    let normalized = normalize::normalize(text, statement_tokens);
    let fingerprint = normalize::fingerprint(&normalized);
    let literals = statement_tokens
        .iter()
        .filter(|t| {
            matches!(
                t.kind,
                lexer::TokenKind::String(_) | lexer::TokenKind::Number
            )
        })
        .count();
    let effects = effects::session_effects(text, statement_tokens);
    let structure = || parse_structure(text, statement_tokens, segment, options);
    let Structure {
        kind,
        relations,
        columns,
    } = match cache {
        Some(cache) if shares_structure(text, statement_tokens) => {
            (*cache.get_or_insert(options, &normalized, structure)).clone()
        }
        _ => structure(),
    };
    StatementInfo {
        kind,
        relations,
        columns,
        effects,
        normalized,
        fingerprint,
        literals,
    }
}

/// Whether a statement's structure is a function of its normalized text alone, so that
/// statements differing only in literals may share one parse.
///
/// Audit of what reads literal contents: the AST walk (`visit`) never looks at a literal
/// except for `EXPLAIN (ANALYZE <value>)`, where `ANALYZE 0` and `ANALYZE 1` both normalize
/// to `ANALYZE $n` yet decide whether the inner statement runs (its kind). The fallback
/// lexer reads dollar-quoted bodies (`DO $$ ... $$`), so a `DO` (rejected by sqlparser
/// today, but a parser upgrade must not make it shareable) is kept out too. Everything
/// else the walk reports (kind, relations, columns) comes from keywords and identifiers,
/// which normalization keeps verbatim. `Unparsed` results are never stored either (see
/// [`StructureCache`]), whatever the first word.
fn shares_structure(text: &str, statement_tokens: &[lexer::Token]) -> bool {
    let first = statement_tokens.iter().find(|t| !t.is_trivia());
    !first.is_some_and(|t| t.is_word(text, "explain") || t.is_word(text, "do"))
}

fn parse_structure(
    text: &str,
    statement_tokens: &[lexer::Token],
    segment: &split::Segment,
    options: LexOptions,
) -> Structure {
    let parser_source = parser_text(text, statement_tokens, segment, options);
    let first_word = statement_tokens
        .iter()
        .find(|t| !t.is_trivia())
        .filter(|t| t.kind == lexer::TokenKind::Word)
        .map(|t| t.text(text).to_ascii_lowercase())
        .unwrap_or_default();
    let parsed = parser_source
        .as_deref()
        .and_then(|source| parse_and_walk(source, &first_word));
    match parsed {
        Some((kind, facts)) => {
            // `Set` drops the statement's relations from the policy decision, so it is
            // only for a SELECT that is the set_config call and reads nothing.
            let kind = if kind == StatementKind::Select
                && facts.relations.is_empty()
                && effects::is_set_config_select(text, statement_tokens)
            {
                StatementKind::Set
            } else {
                kind
            };
            Structure {
                kind,
                relations: facts.relations,
                columns: facts.columns,
            }
        }
        None => Structure {
            kind: StatementKind::Unparsed,
            relations: fallback::relations_from_tokens(text, statement_tokens, options),
            columns: Vec::new(),
        },
    }
}

/// The statement text as sqlparser must see it to read it the way the server does.
/// sqlparser always lexes `'...'` as standard_conforming_strings = on; with the setting off,
/// a plain string containing a backslash is rewritten to the `E'...'` form, which is what
/// it means to the server. A backslash in an `N'...'` string has no such rewrite: `None`,
/// and the statement is `Unparsed` (the fallback reads the tokens, which are right).
/// Without this, `SELECT 'a\' , ' , ssn FROM customers --'` parses cleanly in on-mode as
/// two strings while the server (off) reads `customers`.
fn parser_text<'t>(
    text: &'t str,
    statement_tokens: &[lexer::Token],
    segment: &split::Segment,
    options: LexOptions,
) -> Option<std::borrow::Cow<'t, str>> {
    let source = text.get(segment.start..segment.end)?;
    let has_backslash = |t: &lexer::Token| t.text(text).contains('\\');
    let mut rewrites = Vec::new();
    for token in statement_tokens {
        match token.kind {
            lexer::TokenKind::String(lexer::StringKind::Backslash) if has_backslash(token) => {
                rewrites.push(token.start)
            }
            lexer::TokenKind::String(lexer::StringKind::Prefixed)
                if !options.standard_conforming_strings
                    && token.text(text).starts_with(['n', 'N'])
                    && has_backslash(token) =>
            {
                return None;
            }
            _ => {}
        }
    }
    if rewrites.is_empty() {
        return Some(std::borrow::Cow::Borrowed(source));
    }
    let mut out = String::with_capacity(source.len() + 2 * rewrites.len());
    let mut copied = segment.start;
    for start in rewrites {
        out.push_str(text.get(copied..start)?);
        out.push_str(" E");
        copied = start;
    }
    out.push_str(text.get(copied..segment.end)?);
    Some(std::borrow::Cow::Owned(out))
}

/// Parse one statement and walk it. sqlparser is third-party code fed hostile input, so a
/// panic inside it (or in the walk over its AST) degrades to `Unparsed` instead of taking
/// the connection down.
fn parse_and_walk(source: &str, first_word: &str) -> Option<(StatementKind, visit::AstFacts)> {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;
    std::panic::catch_unwind(|| {
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, source).ok()?;
        if statements.len() != 1 {
            return None;
        }
        let statement = statements.pop()?;
        Some(visit::analyze_statement(&statement, first_word))
    })
    .ok()
    .flatten()
}
