//! Best-effort relation names for statements sqlparser rejects, read from the tokens: the
//! names after FROM/JOIN/INTO/UPDATE/TABLE (and TRUNCATE/LOCK/COPY), also inside
//! dollar-quoted bodies such as `DO $$ ... $$`, so the proxy can still see which tables an
//! unparseable statement names. Over-reporting is the safe direction here.

use super::lexer::{identifier_value, tokenize_with, LexOptions, StringKind, Token, TokenKind};
use super::RelationName;

/// Dollar-quoted bodies nest (a DO block defining a function); bounded so hostile input
/// cannot recurse without limit.
const MAX_BODY_DEPTH: usize = 4;

const INTRODUCERS: &[&str] = &[
    "from", "join", "into", "update", "table", "truncate", "lock", "copy",
];

/// Words that can follow an introducer but are not a table name.
const NOT_A_NAME: &[&str] = &[
    "select",
    "set",
    "where",
    "on",
    "using",
    "values",
    "default",
    "lateral",
    "of",
    "nowait",
    "skip",
    "join",
    "left",
    "right",
    "inner",
    "full",
    "cross",
    "natural",
    "group",
    "order",
    "limit",
    "offset",
    "returning",
    "union",
    "except",
    "intersect",
    "for",
    "with",
    "window",
    "having",
    "stdin",
    "stdout",
    "as",
    "and",
    "or",
    "not",
    "in",
    "is",
    "null",
    "do",
    "nothing",
    "conflict",
    "into",
    "from",
    "table",
    "rows",
    "unnest",
    "current",
    "all",
    "distinct",
    "then",
    "when",
    "end",
    "strict",
    "share",
    "exclusive",
    "access",
    "mode",
    "by",
    "program",
];

/// Relation names the tokens of one statement mention, first-seen order, deduplicated.
/// Dollar-quoted bodies are lexed with the session's `options` too: PL/pgSQL reads the
/// strings inside a DO body with the same standard_conforming_strings.
pub(crate) fn relations_from_tokens(
    source: &str,
    tokens: &[Token],
    options: LexOptions,
) -> Vec<RelationName> {
    let mut out = Vec::new();
    collect(source, tokens, options, 0, &mut out);
    out
}

fn collect(
    source: &str,
    tokens: &[Token],
    options: LexOptions,
    depth: usize,
    out: &mut Vec<RelationName>,
) {
    let toks: Vec<Token> = tokens.iter().copied().filter(|t| !t.is_trivia()).collect();
    for (i, token) in toks.iter().enumerate() {
        match token.kind {
            TokenKind::Word => {
                let word = token.text(source).to_ascii_lowercase();
                if INTRODUCERS.contains(&word.as_str()) {
                    read_name_list(source, &toks, i + 1, &word, out);
                }
            }
            TokenKind::String(StringKind::Dollar(len)) if depth < MAX_BODY_DEPTH => {
                let text = token.text(source);
                if let Some(body) = text.get(len..text.len().saturating_sub(len)) {
                    collect(body, &tokenize_with(body, options), options, depth + 1, out);
                }
            }
            _ => {}
        }
    }
}

/// `name [AS alias] [, name ...]` after an introducer; stops at anything else.
fn read_name_list(
    source: &str,
    toks: &[Token],
    mut i: usize,
    introducer: &str,
    out: &mut Vec<RelationName>,
) {
    loop {
        i = skip_modifiers(source, toks, i);
        let Some((relation, after)) = qualified_name(source, toks, i) else {
            return;
        };
        i = after;
        let is_call = toks.get(i).is_some_and(|t| t.kind == TokenKind::LParen);
        // `FROM f(...)` is a table function; `INTO t (cols)` is a table with a column list.
        let is_table_function = is_call && matches!(introducer, "from" | "join");
        if !is_table_function && !out.contains(&relation) {
            out.push(relation);
        }
        i = skip_alias(source, toks, i);
        let is_comma = toks.get(i).is_some_and(|t| t.text(source) == ",");
        if !is_comma {
            return;
        }
        i += 1;
    }
}

fn skip_modifiers(source: &str, toks: &[Token], mut i: usize) -> usize {
    const MODIFIERS: &[&str] = &["only", "if", "not", "exists", "table"];
    while toks
        .get(i)
        .is_some_and(|t| MODIFIERS.iter().any(|m| t.is_word(source, m)))
    {
        i += 1;
    }
    i
}

fn qualified_name(source: &str, toks: &[Token], i: usize) -> Option<(RelationName, usize)> {
    let first = toks.get(i)?;
    if first.kind == TokenKind::Word
        && NOT_A_NAME.contains(&first.text(source).to_ascii_lowercase().as_str())
    {
        return None;
    }
    let mut parts = vec![identifier_value(source, first)?];
    let mut j = i + 1;
    while toks.get(j).is_some_and(|t| t.text(source) == ".") {
        let Some(part) = toks.get(j + 1).and_then(|t| identifier_value(source, t)) else {
            break;
        };
        parts.push(part);
        j += 2;
    }
    let name = parts.pop()?;
    Some((
        RelationName {
            schema: parts.pop(),
            name,
        },
        j,
    ))
}

fn skip_alias(source: &str, toks: &[Token], mut i: usize) -> usize {
    if toks.get(i).is_some_and(|t| t.text(source) == "*") {
        i += 1;
    }
    if toks.get(i).is_some_and(|t| t.is_word(source, "as")) {
        i += 1;
    }
    let is_alias = toks.get(i).is_some_and(|t| {
        t.kind == TokenKind::QuotedIdent
            || (t.kind == TokenKind::Word
                && !NOT_A_NAME.contains(&t.text(source).to_ascii_lowercase().as_str()))
    });
    if is_alias {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;

    fn rels(s: &str) -> Vec<String> {
        relations_from_tokens(s, &tokenize(s), LexOptions::default())
            .into_iter()
            .map(|r| match r.schema {
                Some(schema) => format!("{schema}.{}", r.name),
                None => r.name,
            })
            .collect()
    }

    #[test]
    fn insert_select_on_conflict() {
        assert_eq!(
            rels("INSERT INTO customers(id, ssn) SELECT 1, '111-22-3333' ON CONFLICT DO NOTHING"),
            ["customers"]
        );
    }

    #[test]
    fn do_block_body_is_scanned() {
        assert_eq!(
            rels("DO $$ BEGIN INSERT INTO Customers(id, ssn) VALUES (2, '111-22-3333'); END $$"),
            ["customers"]
        );
        assert_eq!(
            rels("DO $b$ BEGIN UPDATE app.\"T\" SET x = 1; END $b$"),
            ["app.T"]
        );
    }

    #[test]
    fn from_lists_joins_and_aliases() {
        assert_eq!(
            rels("SELECT * FROM a x, public.b AS y JOIN c ON true WHERE 1 = 1 FOR UPDATE OF x"),
            ["a", "public.b", "c"]
        );
    }

    #[test]
    fn functions_and_keywords_are_not_tables() {
        assert!(rels("SELECT * FROM generate_series(1, 3)").is_empty());
        assert!(rels("SELECT 1 FOR UPDATE").is_empty());
        assert!(rels("BEGIN ISOLATION LEVEL SERIALIZABLE").is_empty());
        assert!(rels("SELECT extract(year from now())").is_empty());
    }

    #[test]
    fn ddl_and_utility_targets() {
        assert_eq!(rels("TRUNCATE ONLY t1, t2"), ["t1", "t2"]);
        assert_eq!(rels("CREATE TABLE IF NOT EXISTS s.t (a int)"), ["s.t"]);
        assert_eq!(rels("LOCK TABLE t IN ACCESS EXCLUSIVE MODE"), ["t"]);
        assert_eq!(rels("COPY t (a) FROM STDIN"), ["t"]);
    }

    #[test]
    fn three_part_names_drop_the_database() {
        assert_eq!(rels("SELECT * FROM db.s.t"), ["s.t"]);
    }
}
