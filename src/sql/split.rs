//! Splitting a Query text into statements at top-level `;`, the way psql and the server
//! see them: not inside literals, comments, parentheses, or a `BEGIN ATOMIC ... END` body.

use super::lexer::{Token, TokenKind};

/// One statement: its tokens (without the terminating `;`) and its byte span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub first_token: usize,
    pub end_token: usize,
    pub start: usize,
    pub end: usize,
}

impl Segment {
    pub fn tokens<'t>(&self, tokens: &'t [Token]) -> &'t [Token] {
        tokens.get(self.first_token..self.end_token).unwrap_or(&[])
    }
}

/// Split into non-empty statements; a statement of only whitespace and comments is dropped.
pub(crate) fn split(source: &str, tokens: &[Token]) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut state = SplitState::default();
    let mut first = 0;
    for (index, token) in tokens.iter().enumerate() {
        if token.kind == TokenKind::Semicolon && state.at_top_level() {
            push_segment(&mut segments, tokens, first, index);
            first = index + 1;
            state = SplitState::default();
        } else {
            state.observe(source, token);
        }
    }
    push_segment(&mut segments, tokens, first, tokens.len());
    segments
}

fn push_segment(segments: &mut Vec<Segment>, tokens: &[Token], first: usize, end: usize) {
    let Some(slice) = tokens.get(first..end) else {
        return;
    };
    if slice.iter().all(Token::is_trivia) {
        return;
    }
    // The span leaves out surrounding whitespace but keeps comments: they belong to the
    // statement (sqlcommenter tags, hints).
    let is_space = |t: &&Token| t.kind == TokenKind::Whitespace;
    let start = slice.iter().find(|t| !is_space(t)).map_or(0, |t| t.start);
    let stop = slice
        .iter()
        .rev()
        .find(|t| !is_space(t))
        .map_or(start, |t| t.end);
    segments.push(Segment {
        first_token: first,
        end_token: end,
        start,
        end: stop,
    });
}

/// What decides whether a `;` ends the statement.
#[derive(Debug, Default)]
struct SplitState {
    paren_depth: usize,
    /// Leading words seen so far (up to 4), to recognise `CREATE [OR REPLACE] FUNCTION`.
    leading_words: Vec<String>,
    /// Open `BEGIN`/`CASE` blocks inside a SQL-standard function body.
    block_depth: usize,
}

impl SplitState {
    fn at_top_level(&self) -> bool {
        self.paren_depth == 0 && self.block_depth == 0
    }

    fn observe(&mut self, source: &str, token: &Token) {
        match token.kind {
            TokenKind::LParen => self.paren_depth += 1,
            TokenKind::RParen => self.paren_depth = self.paren_depth.saturating_sub(1),
            TokenKind::Word => self.observe_word(token.text(source)),
            _ => {}
        }
    }

    fn observe_word(&mut self, word: &str) {
        let word = word.to_ascii_lowercase();
        if self.leading_words.len() < 4 {
            self.leading_words.push(word.clone());
        }
        if !self.in_routine_definition() {
            return;
        }
        match word.as_str() {
            "begin" | "case" => self.block_depth += 1,
            "end" => self.block_depth = self.block_depth.saturating_sub(1),
            _ => {}
        }
    }

    /// psql only tracks BEGIN/END nesting in CREATE FUNCTION/PROCEDURE; elsewhere `BEGIN`
    /// is a transaction statement and must not swallow the following `;`.
    fn in_routine_definition(&self) -> bool {
        let words: Vec<&str> = self.leading_words.iter().map(String::as_str).collect();
        matches!(
            words.as_slice(),
            ["create", "function" | "procedure", ..]
                | ["create", "or", "replace", "function" | "procedure", ..]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;

    fn parts(s: &str) -> Vec<&str> {
        let tokens = tokenize(s);
        split(s, &tokens)
            .iter()
            .map(|g| &s[g.start..g.end])
            .collect()
    }

    #[test]
    fn splits_at_top_level_semicolons() {
        assert_eq!(parts("SELECT 1; SELECT 2;"), ["SELECT 1", "SELECT 2"]);
    }

    #[test]
    fn empty_statements_are_dropped() {
        assert!(parts("").is_empty());
        assert!(parts(";").is_empty());
        assert!(parts(" ; ;; ").is_empty());
        assert!(parts("-- only a comment").is_empty());
        assert!(parts("/* a; b */ ;").is_empty());
    }

    #[test]
    fn semicolons_inside_literals_and_comments_do_not_split() {
        let s = "SELECT 'a;b', E'c\\';d', $$e;f$$, $t$g;h$t$, \"i;j\" -- k;l\n FROM t /* m; n */";
        assert_eq!(parts(s).len(), 1);
    }

    #[test]
    fn semicolon_in_parentheses_does_not_split() {
        assert_eq!(parts("SELECT (1; 2); SELECT 3").len(), 2);
    }

    #[test]
    fn begin_atomic_body_stays_whole() {
        let s = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; SELECT 3";
        let p = parts(s);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[1], "SELECT 3");
    }

    #[test]
    fn transaction_begin_still_splits() {
        assert_eq!(parts("BEGIN; SELECT 1; END;").len(), 3);
    }

    #[test]
    fn statement_keeps_its_comments() {
        assert_eq!(
            parts("/* a='b' */ SELECT 1 -- don't"),
            ["/* a='b' */ SELECT 1 -- don't"]
        );
    }
}
