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
    for token in tokens {
        if token.is_trivia() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        match token.kind {
            TokenKind::String(_) | TokenKind::Number => {
                next_placeholder = next_placeholder.saturating_add(1);
                out.push('$');
                out.push_str(&next_placeholder.to_string());
            }
            _ => out.push_str(token.text(source)),
        }
    }
    out
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
    fn fingerprint_is_stable_hex() {
        assert_eq!(fingerprint(""), "cbf29ce484222325");
        assert_eq!(fingerprint("a"), "af63dc4c8601ec8c");
        let f = fingerprint("SELECT $1");
        assert_eq!(f.len(), 16);
        assert!(f.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(f, fingerprint("SELECT $2"));
    }
}
