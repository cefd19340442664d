//! Raw serde shapes of one classification file (SPEC section 5), before any validation.
//!
//! These structs only fix the *shape* of the file: which keys exist and whether a value is a
//! string, a number, a list or a map. Every value whose meaning needs checking (class names,
//! masks, permissions, rates, durations, hours) stays a `String` here, so that `compile` can
//! report *all* bad values of a file with their key paths instead of stopping at the first
//! one, which is what serde would do.
//!
//! `deny_unknown_fields` everywhere: a misspelled key (`rows_per_sesion`) must be an error,
//! never a silently ignored condition.

use serde::{de::DeserializeOwned, Deserialize, Deserializer};
use std::collections::BTreeMap;

/// One file. Every top-level key is optional; across a directory each of them except
/// `tables` may be given in at most one file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub dataset: Option<String>,
    pub default_class: Option<String>,
    /// Key `schema.table` or bare `table` (schema `public`). A `Lenient` per table so one
    /// malformed table does not hide the errors of the others.
    pub tables: Option<BTreeMap<String, Lenient<RawTable>>>,
    pub roles: Option<BTreeMap<String, Vec<String>>>,
    pub principals: Option<BTreeMap<String, Vec<String>>>,
    pub default_roles: Option<Vec<String>>,
    pub rules: Option<Vec<Lenient<RawRule>>>,
    pub security: Option<Lenient<RawSecurity>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTable {
    pub class: Option<String>,
    pub columns: Option<BTreeMap<String, RawColumn>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawColumn {
    pub class: Option<String>,
    /// `mask: null` is YAML null, not the string "null": `null_is_name` keeps it a name so
    /// it does not silently fall back to the default mask.
    #[serde(default, deserialize_with = "null_is_name")]
    pub mask: Option<String>,
    pub blind_index: Option<String>,
    pub encrypt: Option<bool>,
}

/// `class: X` or `class: [X, Y]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub name: Option<String>,
    pub class: Option<OneOrMany>,
    pub at_least: Option<bool>,
    pub roles: Option<Vec<String>>,
    pub except_roles: Option<Vec<String>>,
    pub rows_per_query: Option<u64>,
    pub rows_per_session: Option<u64>,
    pub require_approval: Option<bool>,
    pub outside_hours: Option<String>,
    pub statement: Option<String>,
    pub classes_together: Option<Vec<String>>,
    pub action: Option<String>,
    pub severity: Option<String>,
    pub mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecurity {
    pub failed_logins: Option<RawFailedLogins>,
    pub rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFailedLogins {
    pub warn: Option<String>,
    pub lock: Option<String>,
    pub lock_for: Option<String>,
    pub lock_scope: Option<String>,
    pub attack: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    pub per_user: Option<String>,
    pub total_alert: Option<String>,
}

/// A value that is deserialized on its own, so that its shape error is recorded (with a key
/// path relative to the value) instead of aborting the whole file.
#[derive(Debug)]
pub(crate) enum Lenient<T> {
    Ok(T),
    /// (key path relative to this value, reason)
    Err(String, String),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Buffer the subtree as a Value, then deserialize it separately: an error inside
        // stays inside this value and the parent keeps going.
        let value = serde_yaml::Value::deserialize(deserializer)?;
        Ok(match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(t) => Lenient::Ok(t),
            Err(e) => {
                let (path, reason) = super::parse::describe(&e);
                Lenient::Err(path, reason)
            }
        })
    }
}

/// A present key whose value is YAML null reads as the name "null" (only used for `mask`).
fn null_is_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Some(
        Option::<String>::deserialize(deserializer)?.unwrap_or_else(|| "null".to_string()),
    ))
}
