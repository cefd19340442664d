//! End-to-end tests of `analyze`: kinds, relations, columns, effects and the never-panic
//! property, on realistic statements from drivers, tools and the cases file.

use super::*;

fn one(text: &str) -> StatementInfo {
    let analysis = analyze(text);
    assert_eq!(analysis.statements.len(), 1, "{text}: {analysis:?}");
    analysis
        .statements
        .into_iter()
        .next()
        .unwrap_or_else(|| unreachable!())
}

#[test]
fn empty_texts_have_no_statements() {
    for text in ["", ";", "  ;; ", "-- only a comment", "/* c */"] {
        assert!(analyze(text).statements.is_empty(), "{text:?}");
    }
}

#[test]
fn pgbench_select_smoke() {
    let info = one("SELECT abalance FROM pgbench_accounts WHERE aid = $1");
    assert_eq!(info.kind, StatementKind::Select);
}
