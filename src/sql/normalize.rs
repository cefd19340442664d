//! Normalized statement text (pg_stat_statements style: every literal becomes `$n`, comments
//! dropped, whitespace collapsed) and its stable fingerprint. The normalized text goes into
//! the audit trail, so it must never carry a literal value.

use super::lexer::{Token, TokenKind};

/// Rewrite one statement's tokens. Placeholders continue after the highest `$n` already in
/// the statement so they never collide with real parameters.
pub(crate) fn normalize(source: &str, tokens: &[Token]) -> String {
    let highest_param = tokens
        .iter()
        .filter_map(|t| match t.kind {
            TokenKind::Param(n) => Some(n),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let mut next_placeholder = highest_param;
    let mut out = String::with_capacity(tokens.iter().map(|t| t.end - t.start).sum());
    let mut pending_space = false;
    let values_from = setting_values_start(source, tokens);
    for (index, token) in tokens.iter().enumerate() {
        if token.is_trivia() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        let in_values = values_from.is_some_and(|from| index >= from);
        let hidden = match token.kind {
            TokenKind::String(_) | TokenKind::Number => true,
            TokenKind::Word => in_values && !token.is_word(source, "default"),
            TokenKind::QuotedIdent => in_values,
            _ => false,
        };
        if hidden {
            next_placeholder = next_placeholder.saturating_add(1);
            out.push('$');
            out.push_str(&next_placeholder.to_string());
        } else {
            out.push_str(token.text(source));
        }
    }
    out
}

/// Where the value part of a configuration-setting statement starts (index into `tokens`):
/// everything after `TO`/`=` in `SET [SESSION|LOCAL] name TO|= ...`, and in the same clause
/// of `ALTER SYSTEM`, `ALTER ROLE|USER|DATABASE ...` and `ALTER|CREATE FUNCTION|PROCEDURE
/// ...`. A setting's value can be a secret written as a bare word (`SET my.key TO hunter2`),
/// which literal replacement alone would keep; search_path values are hidden too (their
/// effect is read separately, from the original text). `UPDATE ... SET col = expr` is not a
/// setting and keeps its expression.
fn setting_values_start(source: &str, tokens: &[Token]) -> Option<usize> {
    let words: Vec<(usize, &Token)> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.is_trivia())
        .collect();
    let is = |i: usize, w: &str| words.get(i).is_some_and(|(_, t)| t.is_word(source, w));
    let is_setting_statement = is(0, "set")
        || (is(0, "alter")
            && [
                "system",
                "role",
                "user",
                "database",
                "function",
                "procedure",
                "routine",
            ]
            .iter()
            .any(|w| is(1, w)))
        || (is(0, "create")
            && words
                .iter()
                .take(4)
                .any(|(_, t)| t.is_word(source, "function") || t.is_word(source, "procedure")));
    if !is_setting_statement {
        return None;
    }
    let set_at = if is(0, "set") {
        0
    } else {
        (1..words.len()).find(|&i| is(i, "set"))?
    };
    let mut i = set_at + 1;
    if is(i, "session") || is(i, "local") {
        i += 1;
    }
    // The setting name: a dotted identifier.
    let is_name = |i: usize| {
        words
            .get(i)
            .is_some_and(|(_, t)| matches!(t.kind, TokenKind::Word | TokenKind::QuotedIdent))
    };
    let is_dot = |i: usize| {
        words
            .get(i)
            .is_some_and(|(_, t)| t.kind == TokenKind::Other && t.text(source) == ".")
    };
    if !is_name(i) {
        return None;
    }
    i += 1;
    while is_dot(i) && is_name(i + 1) {
        i += 2;
    }
    let is_assign = is(i, "to")
        || words
            .get(i)
            .is_some_and(|(_, t)| t.kind == TokenKind::Other && t.text(source) == "=");
    if !is_assign {
        return None;
    }
    words.get(i + 1).map(|(index, _)| *index)
}

/// 64-bit FNV-1a as 16 hex digits: fixed constants, so stable across runs and releases
/// (std's hashers are randomly keyed or unspecified).
pub(crate) fn fingerprint(normalized: &str) -> String {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = normalized.bytes().fold(OFFSET_BASIS, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;

    fn norm(s: &str) -> String {
        normalize(s, &tokenize(s))
    }

    #[test]
    fn literals_become_placeholders() {
        assert_eq!(
            norm("SELECT * FROM t WHERE a = 'x' AND b = 42"),
            "SELECT * FROM t WHERE a = $1 AND b = $2"
        );
    }

    #[test]
    fn numbering_continues_after_existing_params() {
        assert_eq!(
            norm("UPDATE t SET a = $2, b = 'v' WHERE id = $1 AND c > 1.5"),
            "UPDATE t SET a = $2, b = $3 WHERE id = $1 AND c > $4"
        );
    }

    #[test]
    fn comments_dropped_and_whitespace_collapsed() {
        assert_eq!(
            norm("  /* actor='alice' */ SELECT\n\t a,/*x*/b -- don't\n FROM   t  "),
            "SELECT a, b FROM t"
        );
        assert_eq!(norm("SELECT/*c*/1"), "SELECT $1");
    }

    #[test]
    fn identifiers_and_operators_are_kept() {
        assert_eq!(
            norm(r#"SELECT "Ssn", t1.c2::text, d->>'k' FROM "T" WHERE j ?| $1"#),
            r#"SELECT "Ssn", t1.c2::text, d->>$2 FROM "T" WHERE j ?| $1"#
        );
    }

    #[test]
    fn no_literal_form_leaks() {
        let cases = [
            "SELECT 'secret'",
            r"SELECT E'sec\'ret'",
            "SELECT $x$secret$x$",
            "SELECT $$secret$$",
            "SELECT U&'d!0061t' UESCAPE '!'",
            "ALTER ROLE app PASSWORD 'hunter2'",
            "SELECT B'1010', X'5ecre7'",
            "SELECT N'secret'",
            "INSERT INTO t VALUES ('sec''ret', 31337)",
            "SET pgvigil.actor = 'secret'",
            "SELECT 'unterminated secret",
            "SELECT $q$ unterminated secret",
            "SELECT 'a' 'secret'",
            "SELECT interval '3 secret'",
        ];
        for case in cases {
            let n = norm(case);
            for needle in [
                "secret", "sec", "hunter2", "31337", "1010", "5ecre7", "!", "d!0061t",
            ] {
                assert!(!n.contains(needle), "{case:?} -> {n:?} leaks {needle:?}");
            }
        }
    }

    #[test]
    fn setting_values_become_placeholders() {
        for (text, want) in [
            ("SET my.secret TO hunter2j", "SET my.secret TO $1"),
            (
                "set session my.secret = hunter2j",
                "set session my.secret = $1",
            ),
            (
                "SET LOCAL my.secret TO \"hunter2j\"",
                "SET LOCAL my.secret TO $1",
            ),
            (
                "SET search_path TO app, public",
                "SET search_path TO $1, $2",
            ),
            (
                "SET search_path = \"$user\", 'x'",
                "SET search_path = $1, $2",
            ),
            ("SET search_path TO DEFAULT", "SET search_path TO DEFAULT"),
            ("SET statement_timeout = 0", "SET statement_timeout = $1"),
            (
                "ALTER SYSTEM SET my.key = hunter2j",
                "ALTER SYSTEM SET my.key = $1",
            ),
            (
                "ALTER ROLE app IN DATABASE db SET my.key TO hunter2j",
                "ALTER ROLE app IN DATABASE db SET my.key TO $1",
            ),
            (
                "ALTER DATABASE db SET my.key = hunter2j",
                "ALTER DATABASE db SET my.key = $1",
            ),
            (
                "ALTER FUNCTION f() SET my.key = hunter2j",
                "ALTER FUNCTION f() SET my.key = $1",
            ),
            ("SET my.secret TO $1", "SET my.secret TO $1"),
        ] {
            assert_eq!(norm(text), want, "{text}");
        }
    }

    #[test]
    fn update_set_and_non_setting_forms_keep_their_words() {
        assert_eq!(
            norm("UPDATE t SET a = b + 1 WHERE c = d"),
            "UPDATE t SET a = b + $1 WHERE c = d"
        );
        assert_eq!(norm("SET ROLE admin"), "SET ROLE admin");
        assert_eq!(
            norm("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"
        );
        assert_eq!(norm("RESET my.secret"), "RESET my.secret");
        assert_eq!(
            norm("INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET a = b"),
            "INSERT INTO t VALUES ($1) ON CONFLICT (a) DO UPDATE SET a = b"
        );
    }

    #[test]
    fn fingerprint_is_stable_hex() {
        assert_eq!(fingerprint(""), "cbf29ce484222325");
        assert_eq!(fingerprint("a"), "af63dc4c8601ec8c");
        let f = fingerprint("SELECT $1");
        assert_eq!(f.len(), 16);
        assert!(f.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(f, fingerprint("SELECT $2"));
    }
}
