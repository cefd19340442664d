//! The five masks shown to callers without plaintext access (SPEC section 4), on `char`s.
//!
//! "Letters or digits" are `char::is_alphanumeric` (Unicode); every other character
//! (punctuation, spaces, symbols) is kept in place. A mask must hide something: when a
//! value has no more letters or digits than `last4` / `first6last4` would keep, all of them
//! become `*` rather than showing the whole value.

use super::blind_index::hmac_hex;
use crate::policy::Mask;
use std::fmt;
use zeroize::Zeroizing;

/// What `redact` shows.
pub const REDACTED: &str = "****";

/// The key of the `hash` mask; see [`super::Keyring::hash_mask_key`].
pub struct HashMaskKey {
    key: Zeroizing<[u8; 32]>,
}

impl HashMaskKey {
    pub(crate) fn new(key: Zeroizing<[u8; 32]>) -> Self {
        HashMaskKey { key }
    }
}

impl fmt::Debug for HashMaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashMaskKey(<redacted>)")
    }
}

/// The masked text of `value`, or `None` for SQL NULL (the `null` mask).
pub fn apply(mask: Mask, value: &str, hash_key: &HashMaskKey) -> Option<String> {
    match mask {
        Mask::Last4 => Some(keep_ends(value, 0, 4)),
        Mask::First6Last4 => Some(keep_ends(value, 6, 4)),
        Mask::Redact => Some(REDACTED.to_owned()),
        Mask::Null => None,
        Mask::Hash => Some(hmac_hex(&hash_key.key, value.as_bytes())),
    }
}

/// Keep the first `head` and last `tail` letters or digits, `*` for the others; all
/// other characters kept. If there are no more than `head + tail`, all become `*`.
fn keep_ends(value: &str, head: usize, tail: usize) -> String {
    let total = value.chars().filter(|c| c.is_alphanumeric()).count();
    let keep = |n: usize| total > head + tail && (n < head || n >= total - tail);
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if !c.is_alphanumeric() {
                return c;
            }
            let shown = keep(seen);
            seen += 1;
            if shown {
                c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> HashMaskKey {
        HashMaskKey::new(Zeroizing::new([byte; 32]))
    }

    fn m(mask: Mask, value: &str) -> Option<String> {
        apply(mask, value, &key(1))
    }

    #[test]
    fn spec_examples() {
        assert_eq!(
            m(Mask::Last4, "123-45-6789").as_deref(),
            Some("***-**-6789")
        );
        assert_eq!(
            m(Mask::First6Last4, "4111 1111 1111 1234").as_deref(),
            Some("4111 11** **** 1234")
        );
        assert_eq!(m(Mask::Redact, "anything").as_deref(), Some("****"));
        assert_eq!(m(Mask::Null, "anything"), None);
    }

    #[test]
    fn last4_keeps_punctuation_and_letters_count() {
        assert_eq!(m(Mask::Last4, "AB12-CD34").as_deref(), Some("****-CD34"));
        assert_eq!(
            m(Mask::Last4, "john.doe@example.com").as_deref(),
            Some("****.***@******e.com")
        );
        assert_eq!(m(Mask::Last4, "12345").as_deref(), Some("*2345"));
    }

    #[test]
    fn short_and_empty_values_hide_everything() {
        assert_eq!(m(Mask::Last4, "").as_deref(), Some(""));
        assert_eq!(m(Mask::Last4, "1234").as_deref(), Some("****"));
        assert_eq!(m(Mask::Last4, "1-2").as_deref(), Some("*-*"));
        assert_eq!(m(Mask::Last4, "--").as_deref(), Some("--"));
        assert_eq!(
            m(Mask::First6Last4, "1234567890").as_deref(),
            Some("**********")
        );
        assert_eq!(
            m(Mask::First6Last4, "12345678901").as_deref(),
            Some("123456*8901")
        );
        assert_eq!(m(Mask::Redact, "").as_deref(), Some("****"));
    }

    #[test]
    fn unicode_is_handled_per_char() {
        assert_eq!(m(Mask::Last4, "Zoë-Müller").as_deref(), Some("***-**ller"));
        assert_eq!(
            m(Mask::Last4, "東京都港区六本木").as_deref(),
            Some("****区六本木")
        );
        assert_eq!(m(Mask::Last4, "🙂🙂12345").as_deref(), Some("🙂🙂*2345"));
        assert_eq!(
            m(Mask::First6Last4, "ÅÄÖåäö-123456-xyz").as_deref(),
            Some("ÅÄÖåäö-*****6-xyz")
        );
    }

    #[test]
    fn hash_is_stable_keyed_hex() {
        let a = m(Mask::Hash, "123-45-6789").unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(m(Mask::Hash, "123-45-6789").unwrap(), a);
        assert_ne!(m(Mask::Hash, "123-45-6780").unwrap(), a);
        assert_ne!(apply(Mask::Hash, "123-45-6789", &key(2)).unwrap(), a);
        assert!(!a.contains("6789"));
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", key(7)), "HashMaskKey(<redacted>)");
    }
}
