//! The stored text form of an encrypted value, and its strict, panic-free parser.
//!
//! ```text
//! pgv1:<key id>:<payload>
//! ```
//!
//! - `pgv1` names the format version (AES-256-GCM, 96-bit nonce, 128-bit tag, AAD =
//!   `dataset.schema.table.column`). A future format gets a new prefix.
//! - `<key id>`: 1 to [`MAX_KEY_ID_LEN`] bytes of `[A-Za-z0-9_-]` naming the data key in the
//!   keyring (never `:`).
//! - `<payload>`: unpadded base64url (RFC 4648 section 5, canonical: no padding, no
//!   whitespace, zero trailing bits) of `nonce (12 bytes) || ciphertext || tag (16 bytes)`;
//!   so at least 28 bytes decoded (an empty plaintext), 38 characters.
//!
//! Nothing else is accepted: other prefixes, extra colons, whitespace, padding or a short
//! payload are [`EnvelopeError`]s. The parser never echoes its input in an error, because a
//! malformed "envelope" may be a plaintext value that was never encrypted.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The version prefix, colon included.
pub const PREFIX: &str = "pgv1:";
/// AES-GCM nonce length in bytes (96 bits).
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length in bytes (128 bits).
pub const TAG_LEN: usize = 16;
/// Longest key id accepted.
pub const MAX_KEY_ID_LEN: usize = 64;

/// Why a stored value is not a well-formed envelope. Carries no part of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not an encrypted value (missing the pgv1: prefix)")]
    Prefix,
    #[error("encrypted value has a missing or invalid key id")]
    KeyId,
    #[error("encrypted value payload is not canonical unpadded base64url")]
    Base64,
    #[error("encrypted value payload is shorter than nonce and tag")]
    Short,
}

/// A parsed envelope: the key id borrowed from the input, the payload decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub key_id: &'a str,
    /// `nonce || ciphertext || tag`, at least `NONCE_LEN + TAG_LEN` bytes.
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for Envelope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("key_id", &self.key_id)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<'a> Envelope<'a> {
    /// Strict parse of a stored value; never panics.
    pub fn parse(text: &'a str) -> Result<Self, EnvelopeError> {
        let rest = text.strip_prefix(PREFIX).ok_or(EnvelopeError::Prefix)?;
        let (key_id, encoded) = rest.split_once(':').ok_or(EnvelopeError::KeyId)?;
        if !valid_key_id(key_id) {
            return Err(EnvelopeError::KeyId);
        }
        // The URL-safe alphabet has no ':', so a second colon fails here as Base64.
        let payload = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| EnvelopeError::Base64)?;
        if payload.len() < NONCE_LEN + TAG_LEN {
            return Err(EnvelopeError::Short);
        }
        Ok(Envelope { key_id, payload })
    }

    /// The 12-byte nonce.
    pub fn nonce(&self) -> &[u8] {
        &self.payload[..NONCE_LEN]
    }

    /// Ciphertext followed by the tag, as AES-GCM's `decrypt` takes it.
    pub fn sealed(&self) -> &[u8] {
        &self.payload[NONCE_LEN..]
    }
}

/// Format `pgv1:<key_id>:<base64url(nonce || sealed)>`; `sealed` is ciphertext || tag.
/// The caller guarantees a valid key id (ids are validated when a keyring is loaded).
pub fn format(key_id: &str, nonce: &[u8], sealed: &[u8]) -> String {
    let mut payload = Vec::with_capacity(nonce.len() + sealed.len());
    payload.extend_from_slice(nonce);
    payload.extend_from_slice(sealed);
    let mut out =
        String::with_capacity(PREFIX.len() + key_id.len() + 1 + payload.len() * 4 / 3 + 4);
    out.push_str(PREFIX);
    out.push_str(key_id);
    out.push(':');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
    out
}

/// Cheap check: does the value carry the envelope prefix and a key id separator? It does not
/// validate the payload; use [`Envelope::parse`] for that.
pub fn looks_encrypted(text: &str) -> bool {
    text.strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(id, _)| valid_key_id(id))
}

/// `[A-Za-z0-9_-]{1,64}`.
pub fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        format("k1-abcd", &[7u8; NONCE_LEN], &[9u8; TAG_LEN + 5])
    }

    #[test]
    fn format_then_parse_round_trips() {
        let text = sample();
        assert!(text.starts_with("pgv1:k1-abcd:"));
        let env = Envelope::parse(&text).unwrap();
        assert_eq!(env.key_id, "k1-abcd");
        assert_eq!(env.nonce(), &[7u8; NONCE_LEN]);
        assert_eq!(env.sealed(), &[9u8; TAG_LEN + 5][..]);
        assert!(looks_encrypted(&text));
    }

    #[test]
    fn empty_plaintext_is_the_shortest_valid_payload() {
        let text = format("k", &[0; NONCE_LEN], &[0; TAG_LEN]);
        assert_eq!(text.len(), "pgv1:k:".len() + 38);
        assert!(Envelope::parse(&text).is_ok());
    }

    #[test]
    fn rejects_malformed_inputs() {
        let good = sample();
        let payload = good.rsplit(':').next().unwrap().to_owned();
        let cases = [
            ("", EnvelopeError::Prefix),
            ("123-45-6789", EnvelopeError::Prefix),
            ("PGV1:k1:AAAA", EnvelopeError::Prefix),
            ("pgv2:k1:AAAA", EnvelopeError::Prefix),
            ("pgv1:", EnvelopeError::KeyId),
            ("pgv1:k1", EnvelopeError::KeyId),
            (&format!("pgv1::{payload}"), EnvelopeError::KeyId),
            (&format!("pgv1:k 1:{payload}"), EnvelopeError::KeyId),
            (&format!("pgv1:k.1:{payload}"), EnvelopeError::KeyId),
            (
                &format!("pgv1:{}:{payload}", "k".repeat(65)),
                EnvelopeError::KeyId,
            ),
            (&format!("pgv1:k1:{payload}="), EnvelopeError::Base64),
            (&format!("pgv1:k1:{payload} "), EnvelopeError::Base64),
            (&format!("pgv1:k1:x:{payload}"), EnvelopeError::Base64),
            (
                &format!("pgv1:k1:+{}", &payload[1..]),
                EnvelopeError::Base64,
            ),
            ("pgv1:k1:", EnvelopeError::Short),
            ("pgv1:k1:AAAA", EnvelopeError::Short),
        ];
        for (text, want) in cases {
            assert_eq!(Envelope::parse(text).err(), Some(want), "{text:?}");
        }
    }

    #[test]
    fn every_truncation_and_garbage_is_an_error_not_a_panic() {
        let good = sample();
        // Below nonce + tag every truncation is refused; longer ones may still be valid
        // base64 (authentication, in `cipher`, catches those) but never panic.
        let shortest = "pgv1:k1-abcd:".len() + 38;
        for end in 0..good.len() {
            let parsed = Envelope::parse(&good[..end]);
            if end < shortest {
                assert!(parsed.is_err(), "prefix of {end}");
            }
        }
        // Deterministic pseudo-random garbage, with and without the prefix.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 80) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (state.rotate_left(i as u32 * 7) & 0xff) as u8)
                .collect();
            let garbage = String::from_utf8_lossy(&bytes).into_owned();
            let text = if round % 2 == 0 {
                format!("pgv1:k1:{garbage}")
            } else {
                garbage
            };
            let _ = Envelope::parse(&text);
            let _ = looks_encrypted(&text);
        }
        // Multi-byte characters where ASCII is expected.
        for text in ["pgv1:ké:AAAA", "pgv1:k1:é", "pgv1é", "pgv1:\u{0}:\u{0}"] {
            assert!(Envelope::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn looks_encrypted_is_cheap_and_conservative() {
        assert!(looks_encrypted("pgv1:k1:anything"));
        assert!(!looks_encrypted("pgv1:"));
        assert!(!looks_encrypted("pgv1:k1"));
        assert!(!looks_encrypted("hello"));
        assert!(!looks_encrypted("pgv1::x"));
    }
}
