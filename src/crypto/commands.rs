//! What `pgvigil keys generate|rotate|list` and `check --keyring` do, minus argument parsing
//! and printing of errors: main.rs only wires these in.

use super::keyring::{KeyInfo, KeyringFile};
use super::provider::KeyProvider;
use super::store::StoreError;
use std::fmt::Write;
use std::path::Path;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// Create a keyring with one active key at `path`; refuses an existing file. Returns the id.
pub fn generate(
    path: &Path,
    provider: &dyn KeyProvider,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    if path.exists() {
        return Err(StoreError::Exists {
            path: path.to_owned(),
        });
    }
    let file = KeyringFile::generate(provider, now).map_err(|source| StoreError::Invalid {
        path: path.to_owned(),
        source,
    })?;
    file.save_new(path)?;
    Ok(file.active)
}

/// Add a new active key (after checking every key unwraps) and replace the file atomically.
pub fn rotate(
    path: &Path,
    provider: &dyn KeyProvider,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    let mut file = KeyringFile::load(path)?;
    let id = file
        .rotate(provider, now)
        .map_err(|source| StoreError::Invalid {
            path: path.to_owned(),
            source,
        })?;
    file.save_replace(path)?;
    Ok(id)
}

/// Ids, creation dates, active marker (no master key needed: nothing is unwrapped).
pub fn list(path: &Path) -> Result<Vec<KeyInfo>, StoreError> {
    let file = KeyringFile::load(path)?;
    file.list().map_err(|source| StoreError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// One line per key: `<id>  <created_at>  <age>d[  active]`.
pub fn format_list(keys: &[KeyInfo], now: OffsetDateTime) -> String {
    let width = keys.iter().map(|k| k.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for key in keys {
        let created = key.created_at.format(&Rfc3339).unwrap_or_default();
        let age = (now - key.created_at).whole_days();
        let active = if key.active { "  active" } else { "" };
        let _ = writeln!(out, "{:width$}  {created}  {age}d{active}", key.id);
    }
    out
}

/// `check --keyring`: validate the file; unwrap every key when a provider is given; return
/// warnings (active key older than `period`, no provider to test the keys with).
pub fn check(
    path: &Path,
    provider: Option<&dyn KeyProvider>,
    now: OffsetDateTime,
    period: Duration,
) -> Result<Vec<String>, StoreError> {
    let file = KeyringFile::load(path)?;
    let mut warnings = Vec::new();
    match provider {
        Some(provider) => {
            file.unlock(provider)
                .map_err(|source| StoreError::Invalid {
                    path: path.to_owned(),
                    source,
                })?;
        }
        None => warnings.push(format!(
            "{}: {} is not set, so the keys were not unwrapped",
            path.display(),
            super::MASTER_KEY_ENV
        )),
    }
    warnings.extend(
        file.rotation_warnings(now, period)
            .into_iter()
            .map(|w| format!("{}: {w}", path.display())),
    );
    Ok(warnings)
}
