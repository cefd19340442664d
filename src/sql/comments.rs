//! sqlcommenter tags (<https://google.github.io/sqlcommenter/spec/>) read from block
//! comments: `/* actor='alice',request_id='r-42' */`. Anything malformed is ignored.

use super::lexer::{Token, TokenKind};
use super::Tags;

/// Collect tags from every block comment of the text; the first value seen for a key wins.
pub(crate) fn extract_tags(source: &str, tokens: &[Token]) -> Tags {
    let mut tags = Tags::default();
    let mut user_id = None;
    for token in tokens.iter().filter(|t| t.kind == TokenKind::BlockComment) {
        let Some(body) = token
            .text(source)
            .strip_prefix("/*")
            .and_then(|b| b.strip_suffix("*/"))
        else {
            continue;
        };
        let Some(pairs) = parse_pairs(body) else {
            continue;
        };
        for (key, value) in pairs {
            let slot = match key.as_str() {
                "actor" => &mut tags.actor,
                "user_id" => &mut user_id,
                "request_id" => &mut tags.request_id,
                "traceparent" => &mut tags.traceparent,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
    }
    if tags.actor.is_none() {
        tags.actor = user_id;
    }
    tags
}

/// `key='value',key2='value2'`; `None` if the comment is not entirely in that form, so
/// free-text comments that merely contain `=` are not mistaken for tags.
fn parse_pairs(body: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut rest = body.trim();
    if rest.is_empty() {
        return None;
    }
    loop {
        let eq = rest.find('=')?;
        let key = url_decode(rest.get(..eq)?.trim())?;
        let after = rest.get(eq + 1..)?.trim_start().strip_prefix('\'')?;
        let (raw_value, remainder) = split_quoted(after)?;
        let value = url_decode(&raw_value)?;
        if key.is_empty() || key.contains(char::is_whitespace) {
            return None;
        }
        pairs.push((key, value));
        rest = remainder.trim_start();
        if rest.is_empty() {
            return Some(pairs);
        }
        rest = rest.strip_prefix(',')?.trim_start();
    }
}

/// Value up to the closing quote (a backslash escapes a quote, per the spec's
/// meta-character escaping), and the text after it.
fn split_quoted(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            '\'' => return Some((value, s.get(i + 1..)?)),
            other => value.push(other),
        }
    }
    None
}

/// Percent-decoding; `None` on a broken escape or bytes that are not UTF-8.
fn url_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;

    fn tags(s: &str) -> Tags {
        extract_tags(s, &tokenize(s))
    }

    #[test]
    fn reads_actor_and_request_id() {
        let t = tags("/* actor='alice',request_id='r-42' */ SELECT 1");
        assert_eq!(t.actor.as_deref(), Some("alice"));
        assert_eq!(t.request_id.as_deref(), Some("r-42"));
        assert_eq!(t.traceparent, None);
    }

    #[test]
    fn trailing_comment_and_url_decoding() {
        let t = tags(
            "SELECT * FROM t /*traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01',user_id='bob%40corp'*/",
        );
        assert_eq!(
            t.traceparent.as_deref(),
            Some("00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01")
        );
        assert_eq!(t.actor.as_deref(), Some("bob@corp"));
    }

    #[test]
    fn actor_wins_over_user_id() {
        let t = tags("/*user_id='u1'*/ SELECT 1 /*actor='a1'*/");
        assert_eq!(t.actor.as_deref(), Some("a1"));
    }

    #[test]
    fn malformed_comments_are_ignored() {
        for s in [
            "/* just a note: x=1 */ SELECT 1",
            "/* actor='unterminated */ SELECT 1",
            "/* actor='a%zz' */ SELECT 1",
            "/* actor='a' junk */ SELECT 1",
            "/**/ SELECT 1",
            "/* actor='a' SELECT 1",
            "SELECT 1 -- actor='alice'",
        ] {
            assert_eq!(tags(s), Tags::default(), "{s}");
        }
    }

    #[test]
    fn escaped_quote_in_value() {
        let t = tags(r"/* actor='o\'brien' */ SELECT 1");
        assert_eq!(t.actor.as_deref(), Some("o'brien"));
    }

    #[test]
    fn tags_inside_strings_are_not_comments() {
        assert_eq!(tags("SELECT '/* actor=''x'' */'"), Tags::default());
    }
}
