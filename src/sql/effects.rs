//! Session effects (search_path, pgvigil.actor, RESET/DISCARD ALL, temp tables) read from
//! the tokens rather than the AST, so they are seen even when sqlparser rejects the
//! statement and regardless of how its AST spells `SET` variants.

use super::lexer::{identifier_value, string_value, Token, TokenKind};
use super::SessionEffect;

const SEARCH_PATH: &str = "search_path";
const ACTOR_SETTING: &str = "pgvigil.actor";
const STANDARD_CONFORMING_STRINGS: &str = "standard_conforming_strings";

/// Effects of one statement. `SET LOCAL` is reported like `SET`: the transaction scope is
/// not tracked here (the session decides what to do at COMMIT/ROLLBACK).
pub(crate) fn session_effects(source: &str, tokens: &[Token]) -> Vec<SessionEffect> {
    let toks: Vec<Token> = tokens.iter().copied().filter(|t| !t.is_trivia()).collect();
    let words = Words {
        source,
        toks: &toks,
    };
    let mut effects = Vec::new();
    let statement_effect = match words.lower(0).as_deref() {
        Some("set") => set_effect(&words),
        Some("reset") => reset_effect(&words),
        Some("discard") if words.is(1, "all") => Some(SessionEffect::ResetAll),
        Some("create") => temp_table_effect(&words),
        _ => None,
    };
    effects.extend(statement_effect);
    effects.extend(set_config_effects(&words));
    effects
}

/// `SELECT set_config(...)` with nothing else: a session-setting statement in a SELECT's
/// clothing (drivers send it instead of SET because it takes parameters). Only the single
/// call (optionally aliased) qualifies: any other select item, FROM, WHERE, ... makes it a
/// plain SELECT, whose relations and columns the policy must see. The caller also requires
/// that the parse found no relation (a subquery inside the call's arguments).
pub(crate) fn is_set_config_select(source: &str, tokens: &[Token]) -> bool {
    let toks: Vec<Token> = tokens.iter().copied().filter(|t| !t.is_trivia()).collect();
    let words = Words {
        source,
        toks: &toks,
    };
    let call_at = if words.is(1, "pg_catalog") && words.is_char(2, '.') {
        3
    } else {
        1
    };
    if !(words.is(0, "select") && words.is(call_at, "set_config")) {
        return false;
    }
    let open = call_at + 1;
    if words.get(open).map(|t| t.kind) != Some(TokenKind::LParen) {
        return false;
    }
    let Some(close) = matching_paren(&words, open) else {
        return false;
    };
    let rest = &toks[close + 1..];
    let is_alias = |t: &Token| matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent);
    match rest {
        [] => true,
        [as_kw, alias] => as_kw.is_word(source, "as") && is_alias(alias),
        [alias] => {
            alias.kind == TokenKind::QuotedIdent
                || (alias.kind == TokenKind::Word && !is_clause_keyword(alias.text(source)))
        }
        _ => false,
    }
}

fn matching_paren(words: &Words<'_>, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in words.toks.iter().enumerate().skip(open) {
        match t.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Words that would start a clause after the select list rather than name an alias.
fn is_clause_keyword(word: &str) -> bool {
    [
        "from",
        "where",
        "group",
        "having",
        "window",
        "order",
        "limit",
        "offset",
        "fetch",
        "for",
        "union",
        "intersect",
        "except",
        "into",
    ]
    .iter()
    .any(|k| word.eq_ignore_ascii_case(k))
}

/// Non-trivia tokens of a statement with keyword helpers.
struct Words<'a> {
    source: &'a str,
    toks: &'a [Token],
}

impl Words<'_> {
    fn get(&self, i: usize) -> Option<&Token> {
        self.toks.get(i)
    }

    fn lower(&self, i: usize) -> Option<String> {
        let t = self.get(i)?;
        (t.kind == TokenKind::Word).then(|| t.text(self.source).to_ascii_lowercase())
    }

    fn is(&self, i: usize, word: &str) -> bool {
        self.get(i).is_some_and(|t| t.is_word(self.source, word))
    }

    fn is_char(&self, i: usize, c: char) -> bool {
        self.get(i)
            .is_some_and(|t| t.kind == TokenKind::Other && t.text(self.source).starts_with(c))
    }

    /// A dotted name starting at `i`, folded; returns the parts and the index after it.
    fn dotted_name(&self, mut i: usize) -> Option<(Vec<String>, usize)> {
        let mut parts = vec![identifier_value(self.source, self.get(i)?)?];
        i += 1;
        while self.is_char(i, '.') {
            parts.push(identifier_value(self.source, self.get(i + 1)?)?);
            i += 2;
        }
        Some((parts, i))
    }
}

fn set_effect(words: &Words<'_>) -> Option<SessionEffect> {
    let mut i = 1;
    if words.is(i, "session") || words.is(i, "local") {
        i += 1;
    }
    let (name, after) = words.dotted_name(i)?;
    let name = name.join(".");
    if !(words.is(after, "to") || words.is_char(after, '=')) {
        return None;
    }
    let values = words.toks.get(after + 1..)?;
    let is_default = values.len() == 1 && values[0].is_word(words.source, "default");
    match name.as_str() {
        SEARCH_PATH if is_default => Some(SessionEffect::ResetSearchPath),
        SEARCH_PATH => set_values(words.source, values).map(SessionEffect::SearchPath),
        STANDARD_CONFORMING_STRINGS if is_default => {
            Some(SessionEffect::StandardConformingStrings(true))
        }
        STANDARD_CONFORMING_STRINGS => match set_values(words.source, values)?.as_slice() {
            [one] => Some(SessionEffect::StandardConformingStrings(
                parse_bool_setting(one),
            )),
            _ => None,
        },
        ACTOR_SETTING if is_default => Some(SessionEffect::Actor(None)),
        ACTOR_SETTING => {
            let value = set_values(words.source, values)?;
            match value.as_slice() {
                [one] => Some(SessionEffect::Actor(Some(one.clone()))),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `a, "B", 'c d'`: words fold, quoted names and strings stay exact (Postgres quotes a
/// string element of a list setting as one name).
fn set_values(source: &str, values: &[Token]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for (position, token) in values.iter().enumerate() {
        if position % 2 == 1 {
            let is_comma = token.kind == TokenKind::Other && token.text(source) == ",";
            if !is_comma {
                return None;
            }
            continue;
        }
        let value = match token.kind {
            TokenKind::String(_) => string_value(source, token)?,
            TokenKind::Number => token.text(source).to_string(),
            _ => identifier_value(source, token)?,
        };
        out.push(value);
    }
    (!out.is_empty()).then_some(out)
}

fn reset_effect(words: &Words<'_>) -> Option<SessionEffect> {
    let (name, after) = words.dotted_name(1)?;
    if after != words.toks.len() {
        return None;
    }
    match name.join(".").as_str() {
        SEARCH_PATH => Some(SessionEffect::ResetSearchPath),
        ACTOR_SETTING => Some(SessionEffect::Actor(None)),
        STANDARD_CONFORMING_STRINGS => Some(SessionEffect::StandardConformingStrings(true)),
        "all" => Some(SessionEffect::ResetAll),
        _ => None,
    }
}

/// `CREATE [GLOBAL|LOCAL] {TEMP|TEMPORARY} [UNLOGGED] TABLE [IF NOT EXISTS] name`.
fn temp_table_effect(words: &Words<'_>) -> Option<SessionEffect> {
    let mut i = 1;
    if words.is(i, "global") || words.is(i, "local") {
        i += 1;
    }
    if !(words.is(i, "temp") || words.is(i, "temporary")) {
        return None;
    }
    i += 1;
    if words.is(i, "unlogged") {
        i += 1;
    }
    if !words.is(i, "table") {
        return None;
    }
    i += 1;
    if words.is(i, "if") && words.is(i + 1, "not") && words.is(i + 2, "exists") {
        i += 3;
    }
    let (parts, _) = words.dotted_name(i)?;
    parts.last().cloned().map(SessionEffect::TempTable)
}

/// `set_config('search_path', 'a, b', false)` anywhere in the statement; only literal
/// arguments can be read (a parameter's value is not known here).
fn set_config_effects(words: &Words<'_>) -> Vec<SessionEffect> {
    let mut effects = Vec::new();
    for i in 0..words.toks.len() {
        if !words.is(i, "set_config") || words.get(i + 1).map(|t| t.kind) != Some(TokenKind::LParen)
        {
            continue;
        }
        let setting = words.get(i + 2).and_then(|t| string_value(words.source, t));
        let value = words.get(i + 4).and_then(|t| string_value(words.source, t));
        let (Some(setting), Some(value)) = (setting, value) else {
            continue;
        };
        if !words.is_char(i + 3, ',') {
            continue;
        }
        match setting.to_ascii_lowercase().as_str() {
            SEARCH_PATH => effects.push(SessionEffect::SearchPath(parse_path_list(&value))),
            ACTOR_SETTING => {
                effects.push(SessionEffect::Actor((!value.is_empty()).then_some(value)))
            }
            STANDARD_CONFORMING_STRINGS => effects.push(SessionEffect::StandardConformingStrings(
                parse_bool_setting(&value),
            )),
            _ => {}
        }
    }
    effects
}

/// A boolean setting's value as Postgres accepts it (`on`, `off`, `true`, `false`, `yes`,
/// `no`, `1`, `0` and unique prefixes). What it cannot read counts as off: the server
/// rejects an invalid value, leaving the setting as it was, and the only cost of
/// assuming backslash escapes for a moment is the one described at the session's use of
/// this effect; its ParameterStatus then corrects the guess.
fn parse_bool_setting(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    let is_prefix_of = |full: &str| !v.is_empty() && full.starts_with(v.as_str());
    v == "on" || v == "1" || is_prefix_of("true") || is_prefix_of("yes")
}

/// A search_path string as Postgres reads it: comma-separated, double-quoted elements
/// exact, others lower-cased.
fn parse_path_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => {
                in_quotes = !in_quotes;
                quoted = true;
            }
            ',' if !in_quotes => {
                push_path_element(&mut out, &current, quoted);
                current.clear();
                quoted = false;
            }
            c if in_quotes => current.push(c),
            c if c.is_whitespace() => {}
            c => current.push(c.to_ascii_lowercase()),
        }
    }
    push_path_element(&mut out, &current, quoted);
    out
}

fn push_path_element(out: &mut Vec<String>, element: &str, quoted: bool) {
    if quoted || !element.is_empty() {
        out.push(element.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;
    use SessionEffect::*;

    fn fx(s: &str) -> Vec<SessionEffect> {
        session_effects(s, &tokenize(s))
    }

    fn path(items: &[&str]) -> SessionEffect {
        SearchPath(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn set_search_path_forms() {
        assert_eq!(
            fx("SET search_path TO app, public"),
            [path(&["app", "public"])]
        );
        assert_eq!(
            fx(r#"SET search_path = "$user", public"#),
            [path(&["$user", "public"])]
        );
        assert_eq!(fx("SET SESSION search_path TO App"), [path(&["app"])]);
        assert_eq!(
            fx(r#"set search_path to "App", 'x y'"#),
            [path(&["App", "x y"])]
        );
    }

    #[test]
    fn set_local_is_reported_without_scope() {
        assert_eq!(fx("SET LOCAL search_path TO app"), [path(&["app"])]);
    }

    #[test]
    fn reset_search_path_forms() {
        assert_eq!(fx("RESET search_path"), [ResetSearchPath]);
        assert_eq!(fx("SET search_path TO DEFAULT"), [ResetSearchPath]);
        assert_eq!(fx("SET search_path = default"), [ResetSearchPath]);
    }

    #[test]
    fn set_config_search_path() {
        assert_eq!(
            fx("SELECT set_config('search_path', 'a, \"B\",  c', false)"),
            [path(&["a", "B", "c"])]
        );
        assert_eq!(
            fx("SELECT pg_catalog.set_config('search_path', '', false)"),
            [SearchPath(vec![])]
        );
        assert!(fx("SELECT set_config('search_path', $1, false)").is_empty());
    }

    #[test]
    fn actor_forms() {
        assert_eq!(
            fx("SET pgvigil.actor = 'alice'"),
            [Actor(Some("alice".into()))]
        );
        assert_eq!(
            fx("SET pgvigil.actor TO 'alice'"),
            [Actor(Some("alice".into()))]
        );
        assert_eq!(fx("RESET pgvigil.actor"), [Actor(None)]);
        assert_eq!(
            fx("SELECT set_config('pgvigil.actor', 'bob', false)"),
            [Actor(Some("bob".into()))]
        );
    }

    #[test]
    fn standard_conforming_strings_forms() {
        let scs = StandardConformingStrings;
        assert_eq!(fx("SET standard_conforming_strings = off"), [scs(false)]);
        assert_eq!(fx("SET standard_conforming_strings TO 'off'"), [scs(false)]);
        assert_eq!(
            fx("set session standard_conforming_strings = 0"),
            [scs(false)]
        );
        assert_eq!(
            fx("SET LOCAL standard_conforming_strings TO false"),
            [scs(false)]
        );
        assert_eq!(fx("SET standard_conforming_strings = on"), [scs(true)]);
        assert_eq!(fx("SET standard_conforming_strings TO 1"), [scs(true)]);
        assert_eq!(fx("SET standard_conforming_strings = 'TRUE'"), [scs(true)]);
        assert_eq!(
            fx("SET standard_conforming_strings TO DEFAULT"),
            [scs(true)]
        );
        assert_eq!(fx("RESET standard_conforming_strings"), [scs(true)]);
        assert_eq!(
            fx("SELECT set_config('standard_conforming_strings', 'off', false)"),
            [scs(false)]
        );
    }

    #[test]
    fn reset_all_forms() {
        assert_eq!(fx("RESET ALL"), [ResetAll]);
        assert_eq!(fx("DISCARD ALL"), [ResetAll]);
        assert!(fx("DISCARD PLANS").is_empty());
    }

    #[test]
    fn temp_tables() {
        assert_eq!(
            fx("CREATE TEMP TABLE Customers (id int)"),
            [TempTable("customers".into())]
        );
        assert_eq!(
            fx("create temporary table if not exists \"X\" as select 1"),
            [TempTable("X".into())]
        );
        assert_eq!(
            fx("CREATE GLOBAL TEMPORARY TABLE t (a int)"),
            [TempTable("t".into())]
        );
        assert!(fx("CREATE TABLE t (a int)").is_empty());
    }

    #[test]
    fn unrelated_settings_have_no_effect() {
        assert!(fx("SET statement_timeout = 0").is_empty());
        assert!(fx("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").is_empty());
        assert!(fx("SET search_path").is_empty());
    }

    #[test]
    fn set_config_select_detection() {
        for yes in [
            "SELECT set_config('search_path', 'a', false)",
            "select pg_catalog.set_config($1, $2, false)",
            "SELECT set_config('a.b', 'c', false) AS x",
            "SELECT set_config('a.b', 'c', false) x",
        ] {
            assert!(is_set_config_select(yes, &tokenize(yes)), "{yes}");
        }
        for no in [
            "SELECT set_config('search_path', name, false) FROM t",
            "SELECT set_config('a.b','c',false), (SELECT string_agg(ssn, ',') FROM customers)",
            "SELECT set_config('a.b','c',false), 1",
            "SELECT set_config('a.b','c',false) WHERE EXISTS (SELECT 1 FROM customers)",
            "SELECT set_config('a.b','c',false) UNION SELECT ssn FROM customers",
            "SELECT set_config('a.b','c',false) || ssn FROM customers",
            "SELECT set_config",
        ] {
            assert!(!is_set_config_select(no, &tokenize(no)), "{no}");
        }
    }
}
