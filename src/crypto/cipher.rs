//! Encrypt and decrypt one cell: AES-256-GCM under the keyring's value keys, a fresh 96-bit
//! nonce from the OS generator per value, associated data `dataset.schema.table.column`.

use super::column::ColumnPath;
use super::envelope::{self, Envelope, EnvelopeError, NONCE_LEN};
use super::keys::{random_bytes, Keyring};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::Nonce;
use zeroize::Zeroizing;

/// Why a value could not be encrypted or decrypted. No variant carries plaintext or the
/// stored text (a malformed "ciphertext" may be a plaintext value): only key ids.
/// Decryption failures map to SQLSTATE XX001 in the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("encrypted value names key {id}, which is not in the keyring")]
    UnknownKey { id: String },
    /// Wrong column (associated data), altered bytes, or a keyring whose key has the same
    /// id but different material.
    #[error("encrypted value under key {id} fails authentication (tampered, or moved from another column)")]
    Tampered { id: String },
    #[error("malformed encrypted value: {0}")]
    Malformed(#[from] EnvelopeError),
    #[error("value too large to encrypt")]
    TooLarge,
    #[error("the operating system's random number generator failed")]
    Rng,
}

/// Encrypt `plaintext` for `column` under the active key; returns the stored text form.
pub fn encrypt(
    keyring: &Keyring,
    plaintext: &[u8],
    column: &ColumnPath,
) -> Result<String, CipherError> {
    let key = keyring.active_key();
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce).map_err(|_| CipherError::Rng)?;
    let sealed = key
        .cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: column.as_str().as_bytes(),
            },
        )
        .map_err(|_| CipherError::TooLarge)?;
    Ok(envelope::format(&key.id, &nonce, &sealed))
}

/// Decrypt a stored value of `column`. The plaintext is wiped when dropped.
pub fn decrypt(
    keyring: &Keyring,
    stored: &str,
    column: &ColumnPath,
) -> Result<Zeroizing<Vec<u8>>, CipherError> {
    let envelope = Envelope::parse(stored)?;
    let key = keyring
        .key(envelope.key_id)
        .ok_or_else(|| CipherError::UnknownKey {
            id: envelope.key_id.to_owned(),
        })?;
    key.cipher
        .decrypt(
            Nonce::from_slice(envelope.nonce()),
            Payload {
                msg: envelope.sealed(),
                aad: column.as_str().as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CipherError::Tampered {
            id: envelope.key_id.to_owned(),
        })
}

/// The key id a stored value names, if it parses (e.g. to find values not yet under the
/// active key).
pub fn key_id_of(stored: &str) -> Option<&str> {
    Envelope::parse(stored).ok().map(|e| e.key_id)
}
