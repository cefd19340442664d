//! Blind index: HMAC-SHA256 of a value's exact bytes under a per-column key, in hex, so
//! `col = value` can be answered by `col_bidx = hmac(value)` without decrypting.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// A per-column, per-data-key HMAC key; see [`super::Keyring::blind_index_key`].
pub struct BlindIndexKey {
    key: Zeroizing<[u8; 32]>,
}

impl BlindIndexKey {
    pub(crate) fn new(key: Zeroizing<[u8; 32]>) -> Self {
        BlindIndexKey { key }
    }

    /// Lower-case hex of HMAC-SHA256(key, value), 64 characters. The input is taken
    /// byte-exact: no trimming, case folding or Unicode normalization, so the caller must
    /// feed writes and searches the same text form of the value.
    pub fn index(&self, value: &[u8]) -> String {
        hmac_hex(&self.key, value)
    }
}

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexKey(<redacted>)")
    }
}

/// Lower-case hex HMAC-SHA256; shared with the `hash` mask.
pub(crate) fn hmac_hex(key: &[u8; 32], value: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(value);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_hex_matches_rfc_4231_case_2_shape() {
        // RFC 4231 test case 2 uses a 4-byte key; here only the format is checked with a
        // 32-byte key: 64 lower-case hex characters, deterministic.
        let key = [0x0bu8; 32];
        let a = hmac_hex(&key, b"Hi There");
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(a, hmac_hex(&key, b"Hi There"));
        assert_ne!(a, hmac_hex(&key, b"Hi there"));
    }

    #[test]
    fn debug_is_redacted() {
        let key = BlindIndexKey::new(Zeroizing::new([0xabu8; 32]));
        let text = format!("{key:?}");
        assert!(
            !text.contains("171") && !text.to_lowercase().contains("ab"),
            "{text}"
        );
    }
}
