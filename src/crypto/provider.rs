//! Key providers wrap and unwrap data keys: [`KeyProvider`], and [`EnvMasterKey`], the
//! master key from `PGVIGIL_MASTER_KEY` (a KMS can be another implementation).
//!
//! `EnvMasterKey` wraps with AES-256-GCM under the master key directly: wrapped =
//! `nonce (12) || ciphertext (32) || tag (16)`, associated data `pgvigil-keyring:<key id>`
//! so a wrapped key cannot be relabelled as another id.

use super::keys::{random_bytes, KEY_LEN};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use std::fmt;
use zeroize::Zeroizing;

/// The environment variable holding the master key.
pub const MASTER_KEY_ENV: &str = "PGVIGIL_MASTER_KEY";

const WRAP_NONCE_LEN: usize = 12;
const WRAPPED_LEN: usize = WRAP_NONCE_LEN + KEY_LEN + 16;

/// Why a data key could not be wrapped or unwrapped. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot unwrap key {id}: wrong master key?")]
    WrongKey { id: String },
    #[error("cannot unwrap key {id}: the wrapped key is {len} bytes, expected {expected}")]
    WrappedLength {
        id: String,
        len: usize,
        expected: usize,
    },
    #[error("the operating system's random number generator failed")]
    Rng,
    /// For other providers (KMS): a message without key material.
    #[error("key provider: {0}")]
    Other(String),
}

/// Wraps and unwraps data keys; the keyring file stores only wrapped keys.
pub trait KeyProvider {
    /// Encrypt a data key for storage under `id`.
    fn wrap_key(&self, id: &str, key: &[u8; KEY_LEN]) -> Result<Vec<u8>, ProviderError>;
    /// Recover a data key stored under `id`; a wrong master key is `WrongKey`.
    fn unwrap_key(
        &self,
        id: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, ProviderError>;
}

/// Why the master key could not be read. Never carries the variable's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MasterKeyError {
    #[error("{MASTER_KEY_ENV} is not set: it must hold the base64 of 32 random bytes (e.g. `openssl rand -base64 32`)")]
    Missing,
    #[error("{MASTER_KEY_ENV} is not valid base64 (expected the base64 of 32 random bytes)")]
    NotBase64,
    #[error("{MASTER_KEY_ENV} decodes to {len} bytes; it must be exactly 32")]
    WrongLength { len: usize },
}

/// The master key, from `PGVIGIL_MASTER_KEY` (or given as base64 text).
pub struct EnvMasterKey {
    /// AES-256-GCM under the master key; its key schedule is wiped on drop.
    cipher: Aes256Gcm,
}

impl EnvMasterKey {
    /// Read `PGVIGIL_MASTER_KEY`. Unset or empty is `Missing`.
    pub fn from_env() -> Result<Self, MasterKeyError> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(value) => Self::from_base64(&Zeroizing::new(value)),
            Err(std::env::VarError::NotPresent) => Err(MasterKeyError::Missing),
            Err(std::env::VarError::NotUnicode(_)) => Err(MasterKeyError::NotBase64),
        }
    }

    /// Standard base64 (padding optional), surrounding whitespace ignored, exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(MasterKeyError::Missing);
        }
        let engine = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let bytes = Zeroizing::new(engine.decode(text).map_err(|_| MasterKeyError::NotBase64)?);
        if bytes.len() != KEY_LEN {
            return Err(MasterKeyError::WrongLength { len: bytes.len() });
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes)
            .map_err(|_| MasterKeyError::WrongLength { len: bytes.len() })?;
        Ok(EnvMasterKey { cipher })
    }
}

fn wrap_aad(id: &str) -> Vec<u8> {
    format!("pgvigil-keyring:{id}").into_bytes()
}

impl KeyProvider for EnvMasterKey {
    fn wrap_key(&self, id: &str, key: &[u8; KEY_LEN]) -> Result<Vec<u8>, ProviderError> {
        let mut nonce = [0u8; WRAP_NONCE_LEN];
        random_bytes(&mut nonce).map_err(|_| ProviderError::Rng)?;
        let aad = wrap_aad(id);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: key,
                    aad: &aad,
                },
            )
            .map_err(|_| ProviderError::Other("wrapping failed".to_owned()))?;
        let mut out = Vec::with_capacity(WRAPPED_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap_key(
        &self,
        id: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, ProviderError> {
        if wrapped.len() != WRAPPED_LEN {
            return Err(ProviderError::WrappedLength {
                id: id.to_owned(),
                len: wrapped.len(),
                expected: WRAPPED_LEN,
            });
        }
        let (nonce, sealed) = wrapped.split_at(WRAP_NONCE_LEN);
        let aad = wrap_aad(id);
        let plain = Zeroizing::new(
            self.cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| ProviderError::WrongKey { id: id.to_owned() })?,
        );
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if plain.len() != KEY_LEN {
            return Err(ProviderError::WrongKey { id: id.to_owned() });
        }
        key.copy_from_slice(&plain);
        Ok(key)
    }
}

impl fmt::Debug for EnvMasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvMasterKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn master(byte: u8) -> EnvMasterKey {
        EnvMasterKey::from_base64(&STANDARD.encode([byte; 32])).unwrap()
    }

    #[test]
    fn wrap_unwrap_round_trip() {
        let m = master(1);
        let key = [42u8; 32];
        let wrapped = m.wrap_key("k1", &key).unwrap();
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        assert_eq!(*m.unwrap_key("k1", &wrapped).unwrap(), key);
    }

    #[test]
    fn wrong_master_key_or_relabelled_id_is_detected() {
        let wrapped = master(1).wrap_key("k1", &[42u8; 32]).unwrap();
        let err = master(2).unwrap_key("k1", &wrapped).unwrap_err();
        assert_eq!(err.to_string(), "cannot unwrap key k1: wrong master key?");
        assert!(master(1).unwrap_key("k2", &wrapped).is_err());
        assert!(matches!(
            master(1).unwrap_key("k1", &wrapped[1..]),
            Err(ProviderError::WrappedLength { .. })
        ));
    }

    #[test]
    fn master_key_text_errors_are_clear() {
        assert_eq!(
            EnvMasterKey::from_base64("").unwrap_err(),
            MasterKeyError::Missing
        );
        assert_eq!(
            EnvMasterKey::from_base64("  \n").unwrap_err(),
            MasterKeyError::Missing
        );
        assert_eq!(
            EnvMasterKey::from_base64("not base64!").unwrap_err(),
            MasterKeyError::NotBase64
        );
        assert_eq!(
            EnvMasterKey::from_base64(&STANDARD.encode([1u8; 16])).unwrap_err(),
            MasterKeyError::WrongLength { len: 16 }
        );
        // Trailing newline (as from `$(cat file)` or a secrets mount) and no padding are fine.
        let text = format!("{}\n", STANDARD.encode([1u8; 32]));
        assert!(EnvMasterKey::from_base64(&text).is_ok());
        assert!(EnvMasterKey::from_base64(text.trim().trim_end_matches('=')).is_ok());
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", master(0x41)), "EnvMasterKey(<redacted>)");
    }
}
