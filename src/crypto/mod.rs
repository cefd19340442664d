//! Field encryption primitives: stored form, keyring, AES-256-GCM with column-bound
//! associated data, blind index and masks (SPEC section 4).
//!
//! How the pieces fit:
//!
//! - [`KeyringFile`] (JSON, see [`keyring`]) holds data keys *wrapped* by a [`KeyProvider`];
//!   [`EnvMasterKey`] reads the master key from `PGVIGIL_MASTER_KEY` (base64 of 32 bytes).
//!   [`KeyringFile::unlock`] unwraps every key into a [`Keyring`] held in memory.
//! - From each data key HKDF-SHA256 derives separate sub-keys (see [`keys`]): the value
//!   key, one blind-index key per column, the hash-mask key.
//! - [`encrypt`] / [`decrypt`] seal one cell under the active key with a random 96-bit
//!   nonce; the associated data is the [`ColumnPath`] `dataset.schema.table.column`, so a
//!   value copied to another column or dataset does not decrypt (S-07). The result is the
//!   text form `pgv1:<key id>:<base64url(nonce || ciphertext || tag)>` (see [`envelope`]).
//!   Old keys stay in the keyring after [`KeyringFile::rotate`], so old values decrypt.
//! - [`BlindIndexKey::index`]: keyed HMAC for equality search; [`mask::apply`]: what callers
//!   without plaintext access see.
//!
//! Rules kept here: no I/O except [`store`] (the keyring file) and
//! [`EnvMasterKey::from_env`]; time comes in as a parameter; key material sits in
//! `Zeroizing` buffers or AES key schedules that wipe on drop; every type holding a key
//! has a hand-written `Debug` that prints no key bytes; errors carry key ids, never
//! plaintext or stored values; nothing here panics on input.
//!
//! Uses `policy::Mask` (a plain enum) as the one edge towards `policy`.

pub mod blind_index;
pub mod cipher;
pub mod column;
pub mod commands;
pub mod envelope;
pub mod keyring;
pub mod keys;
pub mod mask;
pub mod provider;
pub mod store;

#[cfg(test)]
mod tests;

pub use blind_index::BlindIndexKey;
pub use cipher::{decrypt, encrypt, key_id_of, CipherError};
pub use column::{ColumnPath, ColumnPathError};
pub use envelope::looks_encrypted;
pub use keyring::{KeyInfo, KeyringError, KeyringFile, DEFAULT_ROTATION_PERIOD};
pub use keys::{DataKey, Keyring};
pub use mask::HashMaskKey;
pub use provider::{EnvMasterKey, KeyProvider, MasterKeyError, ProviderError, MASTER_KEY_ENV};
pub use store::StoreError;
