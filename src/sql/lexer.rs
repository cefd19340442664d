//! A small PostgreSQL lexer: just enough token classes to split statements, strip literals
//! and comments, and read names when the full parser gives up. Never fails: anything
//! unterminated runs to the end of the text, so a literal can never leak as a word.

/// Which quoting a string literal uses (decoding rules differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringKind {
    /// `'...'` with `''` escapes (standard_conforming_strings = on).
    Standard,
    /// `'...'` read with standard_conforming_strings = off: backslash escapes as in `E''`.
    Backslash,
    /// `E'...'` with backslash escapes.
    Escape,
    /// `U&'...'` (optionally followed by `UESCAPE '?'`, absorbed into the token).
    Unicode,
    /// `$tag$...$tag$`; the field is the byte length of the `$tag$` delimiter.
    Dollar(usize),
    /// `B'...'`, `X'...'`, `N'...'`.
    Prefixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Whitespace,
    LineComment,
    BlockComment,
    /// Keyword or unquoted identifier (may contain `$` and non-ASCII letters).
    Word,
    /// `"..."` or `U&"..."`.
    QuotedIdent,
    String(StringKind),
    Number,
    /// `$n`; the number saturates instead of overflowing.
    Param(u32),
    Semicolon,
    LParen,
    RParen,
    /// Any other single ASCII character (operators, punctuation).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
}

impl Token {
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        source.get(self.start..self.end).unwrap_or("")
    }

    /// Whitespace and comments: what separates tokens but carries no meaning.
    pub fn is_trivia(&self) -> bool {
        matches!(
            self.kind,
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment
        )
    }

    pub fn is_word(&self, source: &str, word: &str) -> bool {
        self.kind == TokenKind::Word && self.text(source).eq_ignore_ascii_case(word)
    }
}

/// How the server reads the text: the session settings that change lexing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LexOptions {
    /// `standard_conforming_strings`: when off, backslash is an escape inside plain
    /// `'...'` (and `N'...'`) strings, exactly as in `E'...'`, so `'a\' ; b'` is one
    /// literal.
    pub standard_conforming_strings: bool,
}

impl Default for LexOptions {
    fn default() -> Self {
        Self {
            standard_conforming_strings: true,
        }
    }
}

/// Tokenize with the default options (standard_conforming_strings = on).
#[cfg(test)]
pub(crate) fn tokenize(source: &str) -> Vec<Token> {
    tokenize_with(source, LexOptions::default())
}

/// Tokenize the whole text. Token boundaries always fall on ASCII bytes, so every span is a
/// valid `str` slice.
pub(crate) fn tokenize_with(source: &str, options: LexOptions) -> Vec<Token> {
    let bytes = source.as_bytes();
    let backslash = !options.standard_conforming_strings;
    let mut tokens = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let (kind, end) = next_token(bytes, pos, backslash);
        // Every branch consumes at least one byte; the max() is a guard against a bug
        // turning into an endless loop on hostile input.
        let end = end.max(pos + 1).min(bytes.len());
        tokens.push(Token {
            kind,
            start: pos,
            end,
        });
        pos = end;
    }
    tokens
}

/// `backslash`: plain strings honour backslash escapes (standard_conforming_strings off).
fn next_token(b: &[u8], i: usize, backslash: bool) -> (TokenKind, usize) {
    let c = b[i];
    let next = b.get(i + 1).copied();
    match c {
        b' ' | b'\t' | b'\n' | b'\r' | 0x0c => (TokenKind::Whitespace, scan_whitespace(b, i)),
        b'-' if next == Some(b'-') => (TokenKind::LineComment, scan_line_comment(b, i)),
        b'/' if next == Some(b'*') => (TokenKind::BlockComment, scan_block_comment(b, i)),
        b'\'' if backslash => (
            TokenKind::String(StringKind::Backslash),
            scan_quoted(b, i + 1, b'\'', true),
        ),
        b'\'' => (
            TokenKind::String(StringKind::Standard),
            scan_quoted(b, i + 1, b'\'', false),
        ),
        b'"' => (TokenKind::QuotedIdent, scan_quoted(b, i + 1, b'"', false)),
        b'$' => scan_dollar(b, i),
        b'0'..=b'9' => (TokenKind::Number, scan_number(b, i)),
        b'.' if next.is_some_and(|n| n.is_ascii_digit()) => (TokenKind::Number, scan_number(b, i)),
        b';' => (TokenKind::Semicolon, i + 1),
        b'(' => (TokenKind::LParen, i + 1),
        b')' => (TokenKind::RParen, i + 1),
        _ if is_word_start(c) => scan_word_or_prefixed(b, i, backslash),
        _ => (TokenKind::Other, i + 1),
    }
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_word_char(c: u8) -> bool {
    is_word_start(c) || c.is_ascii_digit() || c == b'$'
}

fn scan_whitespace(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0c) {
        i += 1;
    }
    i
}

fn scan_line_comment(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n' || c == b'\r')
        .map_or(b.len(), |p| i + p)
}

/// Postgres block comments nest; an unterminated one swallows the rest of the text.
fn scan_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// Scan past the closing `quote` starting inside the literal at `i`; a doubled quote is an
/// escaped quote, and with `backslash` a backslash escapes the next byte.
fn scan_quoted(b: &[u8], mut i: usize, quote: u8, backslash: bool) -> usize {
    while i < b.len() {
        let c = b[i];
        if backslash && c == b'\\' {
            i += 2;
        } else if c == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

fn scan_dollar(b: &[u8], i: usize) -> (TokenKind, usize) {
    let mut j = i + 1;
    if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
        let mut n: u32 = 0;
        while j < b.len() && b[j].is_ascii_digit() {
            n = n.saturating_mul(10).saturating_add(u32::from(b[j] - b'0'));
            j += 1;
        }
        return (TokenKind::Param(n), j);
    }
    // A dollar-quote tag follows identifier rules minus `$` and cannot start with a digit.
    while j < b.len() && (is_word_start(b[j]) || (j > i + 1 && b[j].is_ascii_digit())) {
        j += 1;
    }
    if b.get(j) != Some(&b'$') {
        return (TokenKind::Other, i + 1);
    }
    let delimiter = &b[i..=j];
    let body = j + 1;
    let end = find(b, body, delimiter).map_or(b.len(), |p| p + delimiter.len());
    (TokenKind::String(StringKind::Dollar(delimiter.len())), end)
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// Digits, decimal point, exponent, and PG16 forms (`0x1F`, `1_000`) in one token; a
/// trailing identifier glued to a number is absorbed too, which only errs on the side of
/// hiding more.
fn scan_number(b: &[u8], i: usize) -> usize {
    let mut j = i;
    let mut seen_dot = false;
    while j < b.len() {
        let c = b[j];
        let prev = if j > i { b[j - 1] } else { 0 };
        if c.is_ascii_alphanumeric() || c == b'_' {
            j += 1;
        } else if c == b'.' && !seen_dot && b.get(j + 1) != Some(&b'.') {
            seen_dot = true;
            j += 1;
        } else if (c == b'+' || c == b'-')
            && (prev == b'e' || prev == b'E')
            && b.get(j + 1).is_some_and(|n| n.is_ascii_digit())
        {
            j += 1;
        } else {
            break;
        }
    }
    j
}

fn scan_word_or_prefixed(b: &[u8], i: usize, backslash: bool) -> (TokenKind, usize) {
    let c = b[i].to_ascii_lowercase();
    let next = b.get(i + 1).copied();
    let after = b.get(i + 2).copied();
    match (c, next, after) {
        (b'e', Some(b'\''), _) => (
            TokenKind::String(StringKind::Escape),
            scan_quoted(b, i + 2, b'\'', true),
        ),
        // `N'...'` is a plain string to the server's scanner (it only adds NCHAR), so it
        // follows standard_conforming_strings; bit strings never take backslash escapes.
        (b'n', Some(b'\''), _) => (
            TokenKind::String(StringKind::Prefixed),
            scan_quoted(b, i + 2, b'\'', backslash),
        ),
        (b'b' | b'x', Some(b'\''), _) => (
            TokenKind::String(StringKind::Prefixed),
            scan_quoted(b, i + 2, b'\'', false),
        ),
        (b'u', Some(b'&'), Some(b'\'')) => {
            let end = scan_quoted(b, i + 3, b'\'', false);
            (
                TokenKind::String(StringKind::Unicode),
                absorb_uescape(b, end),
            )
        }
        (b'u', Some(b'&'), Some(b'"')) => {
            (TokenKind::QuotedIdent, scan_quoted(b, i + 3, b'"', false))
        }
        _ => {
            let mut j = i + 1;
            while j < b.len() && is_word_char(b[j]) {
                j += 1;
            }
            (TokenKind::Word, j)
        }
    }
}

/// `U&'...' UESCAPE '!'`: the escape character is part of the literal, so it is hidden
/// together with it.
fn absorb_uescape(b: &[u8], end: usize) -> usize {
    let j = scan_whitespace(b, end);
    let keyword = b"uescape";
    let Some(word) = b.get(j..j + keyword.len()) else {
        return end;
    };
    if !word.eq_ignore_ascii_case(keyword)
        || b.get(j + keyword.len()).is_some_and(|&c| is_word_char(c))
    {
        return end;
    }
    let k = scan_whitespace(b, j + keyword.len());
    if b.get(k) == Some(&b'\'') {
        scan_quoted(b, k + 1, b'\'', false)
    } else {
        end
    }
}

/// Decoded value of a string literal, for the few literals the analysis reads (SET values,
/// set_config arguments). `None` for forms it does not decode or unterminated literals.
pub(crate) fn string_value(source: &str, token: &Token) -> Option<String> {
    let text = token.text(source);
    match token.kind {
        TokenKind::String(StringKind::Standard) => {
            let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
            Some(inner.replace("''", "'"))
        }
        TokenKind::String(StringKind::Escape) => {
            let inner = text.get(1..)?.strip_prefix('\'')?.strip_suffix('\'')?;
            Some(unescape_backslashes(inner))
        }
        TokenKind::String(StringKind::Backslash) => {
            let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
            Some(unescape_backslashes(inner))
        }
        TokenKind::String(StringKind::Dollar(len)) => {
            let inner = text.get(len..text.len().checked_sub(len)?)?;
            (text.len() >= 2 * len).then(|| inner.to_string())
        }
        _ => None,
    }
}

fn unescape_backslashes(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => {}
            },
            '\'' => {
                // `''` inside E'' is one quote; the second half is skipped.
                out.push('\'');
                let _ = chars.next();
            }
            other => out.push(other),
        }
    }
    out
}

/// An identifier token folded like Postgres: unquoted ASCII lower-cased, quoted exact.
pub(crate) fn identifier_value(source: &str, token: &Token) -> Option<String> {
    let text = token.text(source);
    match token.kind {
        TokenKind::Word => Some(text.to_ascii_lowercase()),
        TokenKind::QuotedIdent if text.starts_with('"') => {
            let inner = text.strip_prefix('"')?.strip_suffix('"')?;
            Some(inner.replace("\"\"", "\""))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<(TokenKind, &str)> {
        tokenize(s)
            .into_iter()
            .filter(|t| t.kind != TokenKind::Whitespace)
            .map(|t| (t.kind, &s[t.start..t.end]))
            .collect()
    }

    #[test]
    fn standard_string_with_doubled_quote() {
        let t = kinds("SELECT 'it''s'");
        assert_eq!(t[1], (TokenKind::String(StringKind::Standard), "'it''s'"));
    }

    #[test]
    fn escape_string_with_backslash_quote() {
        let t = kinds(r"SELECT E'sec\'ret', 1");
        assert_eq!(
            t[1],
            (TokenKind::String(StringKind::Escape), r"E'sec\'ret'")
        );
        assert_eq!(t[2].1, ",");
    }

    #[test]
    fn dollar_quotes_with_and_without_tag() {
        let t = kinds("SELECT $$a;b$$, $x$ $$ $x$, $1");
        assert_eq!(t[1], (TokenKind::String(StringKind::Dollar(2)), "$$a;b$$"));
        assert_eq!(
            t[3],
            (TokenKind::String(StringKind::Dollar(3)), "$x$ $$ $x$")
        );
        assert_eq!(t[5], (TokenKind::Param(1), "$1"));
    }

    #[test]
    fn dollar_inside_identifier_is_not_a_quote() {
        let t = kinds("SELECT a$b$ FROM t");
        assert_eq!(t[1], (TokenKind::Word, "a$b$"));
    }

    #[test]
    fn unicode_string_absorbs_uescape() {
        let t = kinds("SELECT U&'d!0061t' UESCAPE '!' AS x");
        assert_eq!(
            t[1],
            (
                TokenKind::String(StringKind::Unicode),
                "U&'d!0061t' UESCAPE '!'"
            )
        );
        assert_eq!(t[2].1, "AS");
    }

    #[test]
    fn unicode_identifier_and_prefixed_strings() {
        let t = kinds(r#"SELECT U&"a\0041", B'101', X'1F', N'x'"#);
        assert_eq!(t[1].0, TokenKind::QuotedIdent);
        assert_eq!(t[3].0, TokenKind::String(StringKind::Prefixed));
        assert_eq!(t[5].0, TokenKind::String(StringKind::Prefixed));
        assert_eq!(t[7].0, TokenKind::String(StringKind::Prefixed));
    }

    #[test]
    fn nested_block_comments() {
        let t = kinds("/* a /* b */ c */ SELECT");
        assert_eq!(t[0], (TokenKind::BlockComment, "/* a /* b */ c */"));
        assert_eq!(t[1].1, "SELECT");
    }

    #[test]
    fn numbers_in_many_forms() {
        for n in ["1", "1.5", ".5", "1e10", "1.5E-3", "0x1F", "1_000"] {
            let s = format!("SELECT {n} x");
            let t = kinds(&s);
            assert_eq!(t[1], (TokenKind::Number, n), "{n}");
        }
        let t = kinds("SELECT t1.c2");
        assert_eq!(t[1], (TokenKind::Word, "t1"));
    }

    #[test]
    fn unterminated_forms_run_to_the_end() {
        for s in ["'abc", "E'ab\\'", "$q$abc", "\"abc", "/* x /* y */"] {
            let t = tokenize(s);
            assert_eq!(t.len(), 1, "{s}");
            assert_eq!(t[0].end, s.len());
        }
    }

    #[test]
    fn non_ascii_is_part_of_words() {
        let s = "SELECT café FROM tëst";
        let t = kinds(s);
        assert_eq!(t[1], (TokenKind::Word, "café"));
        assert_eq!(t[3], (TokenKind::Word, "tëst"));
    }

    #[test]
    fn string_values_decode() {
        let s = r"'a''b' E'c\'d' $t$e'f$t$ 'open";
        let toks: Vec<Token> = tokenize(s).into_iter().filter(|t| !t.is_trivia()).collect();
        assert_eq!(string_value(s, &toks[0]).as_deref(), Some("a'b"));
        assert_eq!(string_value(s, &toks[1]).as_deref(), Some("c'd"));
        assert_eq!(string_value(s, &toks[2]).as_deref(), Some("e'f"));
        assert_eq!(string_value(s, &toks[3]), None);
    }

    fn kinds_off(s: &str) -> Vec<(TokenKind, &str)> {
        let options = LexOptions {
            standard_conforming_strings: false,
        };
        tokenize_with(s, options)
            .into_iter()
            .filter(|t| t.kind != TokenKind::Whitespace)
            .map(|t| (t.kind, &s[t.start..t.end]))
            .collect()
    }

    #[test]
    fn plain_strings_take_backslash_escapes_when_not_standard_conforming() {
        let s = r"SELECT 'a\' ; SELECT 1 --', count(*) FROM customers";
        let t = kinds_off(s);
        assert_eq!(
            t[1],
            (
                TokenKind::String(StringKind::Backslash),
                r"'a\' ; SELECT 1 --'"
            )
        );
        assert_eq!(t[2].1, ",");
        // The same text with the setting on: the string ends at the backslash.
        let on = kinds(s);
        assert_eq!(on[1], (TokenKind::String(StringKind::Standard), r"'a\'"));
        assert_eq!(on[2].0, TokenKind::Semicolon);
        // N'' follows the setting; E'' always escapes; B''/X'' never do.
        let t = kinds_off(r"SELECT N'a\'b', E'c\'d', X'1\'");
        assert_eq!(t[1].1, r"N'a\'b'");
        assert_eq!(t[3].1, r"E'c\'d'");
        assert_eq!(t[5].1, r"X'1\'");
        // `\\` is an escaped backslash: the quote after it closes the string.
        let t = kinds_off(r"SELECT 'a\\', 1");
        assert_eq!(t[1].1, r"'a\\'");
        assert_eq!(t[2].1, ",");
    }

    #[test]
    fn backslash_strings_decode() {
        let s = r"'pa\'ss' 'x''y'";
        let options = LexOptions {
            standard_conforming_strings: false,
        };
        let toks: Vec<Token> = tokenize_with(s, options)
            .into_iter()
            .filter(|t| !t.is_trivia())
            .collect();
        assert_eq!(string_value(s, &toks[0]).as_deref(), Some("pa'ss"));
        assert_eq!(string_value(s, &toks[1]).as_deref(), Some("x'y"));
    }

    #[test]
    fn identifiers_fold() {
        let s = r#"CUSTOMERS "Customers" "a""b""#;
        let toks: Vec<Token> = tokenize(s).into_iter().filter(|t| !t.is_trivia()).collect();
        assert_eq!(identifier_value(s, &toks[0]).as_deref(), Some("customers"));
        assert_eq!(identifier_value(s, &toks[1]).as_deref(), Some("Customers"));
        assert_eq!(identifier_value(s, &toks[2]).as_deref(), Some("a\"b"));
    }
}
