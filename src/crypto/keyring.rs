//! The keyring file (JSON) and its pure operations: generate, rotate, list, unlock, and the
//! rotation-age check. Reading and writing the file is in [`super::store`].
//!
//! ```json
//! {
//!   "version": 1,
//!   "active": "k2-9f3a",
//!   "keys": [
//!     { "id": "k1-04c1", "created_at": "2025-01-01T00:00:00Z", "wrapped": "<base64>" },
//!     { "id": "k2-9f3a", "created_at": "2025-04-01T00:00:00Z", "wrapped": "<base64>" }
//!   ]
//! }
//! ```
//!
//! `wrapped` is standard base64 of what the [`KeyProvider`] returned (for the master key:
//! AES-256-GCM with associated data `pgvigil-keyring:<id>`). Keys are listed oldest first and
//! never removed, so old ciphertexts keep decrypting; ids are `k<n>-<4 hex>` when generated
//! and `[A-Za-z0-9_-]{1,64}` when read. Unknown fields are refused.

use super::envelope::valid_key_id;
use super::keys::{random_bytes, DataKey, Keyring};
use super::provider::{KeyProvider, ProviderError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

/// The only keyring file version this build reads and writes.
pub const KEYRING_VERSION: u32 = 1;
/// `check --keyring` warns when the active key is older than this.
pub const DEFAULT_ROTATION_PERIOD: Duration = Duration::days(90);

/// The keyring file as stored. Holds wrapped keys only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyringFile {
    pub version: u32,
    /// Id of the key new values are encrypted with.
    pub active: String,
    /// Oldest first.
    pub keys: Vec<KeyEntry>,
}

/// One wrapped data key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub id: String,
    /// RFC 3339, UTC, whole seconds.
    pub created_at: String,
    /// Standard base64 of the provider's wrapped form.
    pub wrapped: String,
}

/// What `keys list` shows: never key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub created_at: OffsetDateTime,
    pub active: bool,
}

/// A keyring file that cannot be read, validated or unlocked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("not a keyring file: {0}")]
    Json(String),
    #[error(
        "keyring version {found} is not supported (this build reads version {KEYRING_VERSION})"
    )]
    Version { found: u32 },
    #[error("keyring has no keys")]
    NoKeys,
    #[error("keys[{index}].id {id:?} is not a valid key id ([A-Za-z0-9_-], 1 to 64 characters)")]
    BadId { index: usize, id: String },
    #[error("key id {id} appears more than once")]
    DuplicateId { id: String },
    #[error("active key {id:?} is not in the keyring")]
    NoActive { id: String },
    #[error("key {id}: created_at is not an RFC 3339 date-time")]
    CreatedAt { id: String },
    #[error("key {id}: wrapped is not base64")]
    WrappedBase64 { id: String },
    #[error("{0}")]
    Provider(#[from] ProviderError),
}

impl KeyringFile {
    /// Parse and validate.
    pub fn from_json(text: &str) -> Result<Self, KeyringError> {
        let file: KeyringFile =
            serde_json::from_str(text).map_err(|e| KeyringError::Json(e.to_string()))?;
        file.validate()?;
        Ok(file)
    }

    /// Validated, pretty JSON with a final newline: an invalid keyring is never produced.
    pub fn to_json(&self) -> Result<String, KeyringError> {
        self.validate()?;
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| KeyringError::Json(e.to_string()))?;
        text.push('\n');
        Ok(text)
    }

    /// Everything checkable without the master key.
    pub fn validate(&self) -> Result<(), KeyringError> {
        if self.version != KEYRING_VERSION {
            return Err(KeyringError::Version {
                found: self.version,
            });
        }
        if self.keys.is_empty() {
            return Err(KeyringError::NoKeys);
        }
        let mut seen = std::collections::HashSet::new();
        for (index, key) in self.keys.iter().enumerate() {
            if !valid_key_id(&key.id) {
                return Err(KeyringError::BadId {
                    index,
                    id: key.id.clone(),
                });
            }
            if !seen.insert(key.id.as_str()) {
                return Err(KeyringError::DuplicateId { id: key.id.clone() });
            }
            key.created()?;
            key.wrapped_bytes()?;
        }
        if !seen.contains(self.active.as_str()) {
            return Err(KeyringError::NoActive {
                id: self.active.clone(),
            });
        }
        Ok(())
    }

    /// A new keyring holding one fresh, active key.
    pub fn generate(provider: &dyn KeyProvider, now: OffsetDateTime) -> Result<Self, KeyringError> {
        let mut file = KeyringFile {
            version: KEYRING_VERSION,
            active: String::new(),
            keys: Vec::new(),
        };
        file.add_active_key(provider, now)?;
        Ok(file)
    }

    /// Add a fresh key and make it active; old keys stay for decryption. Every existing key
    /// is unwrapped first, so a wrong master key never produces a keyring wrapped by two.
    pub fn rotate(
        &mut self,
        provider: &dyn KeyProvider,
        now: OffsetDateTime,
    ) -> Result<String, KeyringError> {
        self.unlock(provider)?;
        self.add_active_key(provider, now)
    }

    fn add_active_key(
        &mut self,
        provider: &dyn KeyProvider,
        now: OffsetDateTime,
    ) -> Result<String, KeyringError> {
        let id = self.fresh_id()?;
        let key = DataKey::generate().map_err(|_| ProviderError::Rng)?;
        let wrapped = provider.wrap_key(&id, key.material())?;
        self.keys.push(KeyEntry {
            id: id.clone(),
            created_at: format_time(now),
            wrapped: STANDARD.encode(wrapped),
        });
        self.active = id.clone();
        Ok(id)
    }

    /// `k<n>-<4 hex>`, n one past the number of keys, unique in this keyring.
    fn fresh_id(&self) -> Result<String, KeyringError> {
        let mut n = self.keys.len() + 1;
        loop {
            let mut suffix = [0u8; 2];
            random_bytes(&mut suffix).map_err(|_| ProviderError::Rng)?;
            let id = format!("k{n}-{:02x}{:02x}", suffix[0], suffix[1]);
            if self.keys.iter().all(|k| k.id != id) {
                return Ok(id);
            }
            n += 1;
        }
    }

    /// Ids, creation dates and the active marker, oldest first.
    pub fn list(&self) -> Result<Vec<KeyInfo>, KeyringError> {
        self.keys
            .iter()
            .map(|k| {
                Ok(KeyInfo {
                    id: k.id.clone(),
                    created_at: k.created()?,
                    active: k.id == self.active,
                })
            })
            .collect()
    }

    /// Unwrap every key with `provider`.
    pub fn unlock(&self, provider: &dyn KeyProvider) -> Result<Keyring, KeyringError> {
        self.validate()?;
        let mut keys = Vec::with_capacity(self.keys.len());
        let mut active = 0;
        for (index, entry) in self.keys.iter().enumerate() {
            let material = provider.unwrap_key(&entry.id, &entry.wrapped_bytes()?)?;
            keys.push((
                entry.id.clone(),
                entry.created()?,
                DataKey::from_material(material),
            ));
            if entry.id == self.active {
                active = index;
            }
        }
        Keyring::new(keys, active).ok_or(KeyringError::NoKeys)
    }

    /// Warnings for `check --keyring`: the active key is older than `period`, or dated in
    /// the future.
    pub fn rotation_warnings(&self, now: OffsetDateTime, period: Duration) -> Vec<String> {
        let Some(active) = self.keys.iter().find(|k| k.id == self.active) else {
            return vec![format!(
                "active key {:?} is not in the keyring",
                self.active
            )];
        };
        let Ok(created) = active.created() else {
            return vec![format!(
                "active key {}: created_at is not RFC 3339",
                active.id
            )];
        };
        let age = now - created;
        if age > period {
            vec![format!(
                "active key {} was created {} days ago ({}), past the {}-day rotation period: run `pgvigil keys rotate`",
                active.id,
                age.whole_days(),
                active.created_at,
                period.whole_days()
            )]
        } else if age < -Duration::minutes(5) {
            vec![format!(
                "active key {} is dated in the future ({}): check the clock",
                active.id, active.created_at
            )]
        } else {
            Vec::new()
        }
    }
}

impl KeyEntry {
    fn created(&self) -> Result<OffsetDateTime, KeyringError> {
        OffsetDateTime::parse(&self.created_at, &Rfc3339).map_err(|_| KeyringError::CreatedAt {
            id: self.id.clone(),
        })
    }

    fn wrapped_bytes(&self) -> Result<Vec<u8>, KeyringError> {
        STANDARD
            .decode(&self.wrapped)
            .map_err(|_| KeyringError::WrappedBase64 {
                id: self.id.clone(),
            })
    }
}

/// RFC 3339 in UTC, whole seconds.
fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}
