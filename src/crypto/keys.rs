//! Data keys and the unlocked, in-memory [`Keyring`]; HKDF-SHA256 sub-keys per purpose.
//!
//! A data key is never used directly: HKDF-SHA256 (fixed salt [`HKDF_SALT`]) derives
//!
//! - the AES-256-GCM value key, info `pgvigil/v1/encrypt`;
//! - one blind-index key per column, info `pgvigil/v1/blind-index/<dataset.schema.table.column>`;
//! - the hash-mask key, info `pgvigil/v1/hash-mask`.
//!
//! All material lives in `Zeroizing` buffers (or AES key schedules that wipe on drop), and no
//! type here prints key bytes: `Debug` is written by hand.

use super::blind_index::BlindIndexKey;
use super::column::ColumnPath;
use super::mask::HashMaskKey;
use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use aes_gcm::{Aes256Gcm, KeyInit};
use hkdf::Hkdf;
use sha2::Sha256;
use std::fmt;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// Length of every key in pgvigil (AES-256, HMAC-SHA256 keys).
pub const KEY_LEN: usize = 32;
/// HKDF salt shared by every derivation (domain separation for pgvigil v1).
pub const HKDF_SALT: &[u8] = b"pgvigil-hkdf-v1";

const INFO_ENCRYPT: &[u8] = b"pgvigil/v1/encrypt";
const INFO_BLIND_INDEX: &str = "pgvigil/v1/blind-index/";
const INFO_HASH_MASK: &[u8] = b"pgvigil/v1/hash-mask";

/// The operating system's random generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RngError;

/// Fill `buf` from the OS generator, without panicking when it fails.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<(), RngError> {
    OsRng.try_fill_bytes(buf).map_err(|_| RngError)
}

/// 32 bytes of data key material (unwrapped).
pub struct DataKey {
    material: Zeroizing<[u8; KEY_LEN]>,
}

impl DataKey {
    /// A fresh key from the OS generator.
    pub fn generate() -> Result<Self, RngError> {
        let mut material = Zeroizing::new([0u8; KEY_LEN]);
        random_bytes(material.as_mut())?;
        Ok(DataKey { material })
    }

    pub fn from_material(material: Zeroizing<[u8; KEY_LEN]>) -> Self {
        DataKey { material }
    }

    /// The raw material, for wrapping only.
    pub(crate) fn material(&self) -> &[u8; KEY_LEN] {
        &self.material
    }

    fn derive(&self, info: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
        let mut okm = Zeroizing::new([0u8; KEY_LEN]);
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), self.material.as_ref());
        // 32 bytes is far below HKDF-SHA256's 255 * 32 byte limit, so this cannot fail.
        hk.expand(info, okm.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        okm
    }

    fn value_cipher(&self) -> Aes256Gcm {
        let key = self.derive(INFO_ENCRYPT);
        Aes256Gcm::new(key.as_ref().into())
    }

    /// The blind-index key of one column under this data key.
    pub fn blind_index_key(&self, column: &ColumnPath) -> BlindIndexKey {
        let mut info = Zeroizing::new(Vec::with_capacity(64));
        info.extend_from_slice(INFO_BLIND_INDEX.as_bytes());
        info.extend_from_slice(column.as_str().as_bytes());
        BlindIndexKey::new(self.derive(&info))
    }

    pub fn hash_mask_key(&self) -> HashMaskKey {
        HashMaskKey::new(self.derive(INFO_HASH_MASK))
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// One unlocked key of a [`Keyring`].
pub(crate) struct UnlockedKey {
    pub(crate) id: String,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) data: DataKey,
    /// AES-256-GCM with the derived value key (its key schedule is wiped on drop).
    pub(crate) cipher: Aes256Gcm,
}

/// The unlocked keyring: every data key of the keyring file, one of them active.
/// Built by [`super::KeyringFile::unlock`]; holds no I/O handle.
pub struct Keyring {
    keys: Vec<UnlockedKey>,
    active: usize,
    hash_mask: HashMaskKey,
}

impl Keyring {
    /// `keys` in file (creation) order, `active` an index into it. The hash-mask key comes
    /// from the first (oldest) key so masks stay stable across rotations.
    pub(crate) fn new(keys: Vec<(String, OffsetDateTime, DataKey)>, active: usize) -> Option<Self> {
        if active >= keys.len() {
            return None;
        }
        let hash_mask = keys.first()?.2.hash_mask_key();
        let keys = keys
            .into_iter()
            .map(|(id, created_at, data)| {
                let cipher = data.value_cipher();
                UnlockedKey {
                    id,
                    created_at,
                    data,
                    cipher,
                }
            })
            .collect();
        Some(Keyring {
            keys,
            active,
            hash_mask,
        })
    }

    pub fn active_id(&self) -> &str {
        &self.active_key().id
    }

    pub fn active_created_at(&self) -> OffsetDateTime {
        self.active_key().created_at
    }

    /// Key ids in creation order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    pub(crate) fn active_key(&self) -> &UnlockedKey {
        &self.keys[self.active]
    }

    pub(crate) fn key(&self, id: &str) -> Option<&UnlockedKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The blind-index key writes use for `column`: the active data key's.
    pub fn blind_index_key(&self, column: &ColumnPath) -> BlindIndexKey {
        self.active_key().data.blind_index_key(column)
    }

    /// Every key's blind-index key for `column`, the active one first: a search predicate
    /// matches rows indexed under any key still in the keyring (rows not yet re-encrypted
    /// after a rotation).
    pub fn blind_index_keys(&self, column: &ColumnPath) -> Vec<BlindIndexKey> {
        let active = self.active_key();
        std::iter::once(active)
            .chain(self.keys.iter().filter(|k| k.id != active.id))
            .map(|k| k.data.blind_index_key(column))
            .collect()
    }

    /// The key of the `hash` mask (derived from the keyring's first key, stable across
    /// rotations).
    pub fn hash_mask_key(&self) -> &HashMaskKey {
        &self.hash_mask
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("ids", &self.ids().collect::<Vec<_>>())
            .field("active", &self.active_id())
            .field("material", &"<redacted>")
            .finish()
    }
}
