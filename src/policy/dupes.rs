//! YAML text -> `serde_yaml::Value`, rejecting duplicate mapping keys with their key path.
//!
//! Why not `serde_yaml::from_str::<Value>`: serde_yaml 0.9 is inconsistent about duplicates.
//! Into a `Value` it fails with "duplicate entry" but no key path; into a derived struct it
//! reports "duplicate field"; into a `BTreeMap` (our `tables`, `roles`, `columns`) it silently
//! keeps the last entry, so a second `ssn:` could quietly drop a RESTRICTED classification.
//! So the text is read once through this walker, which builds the `Value` itself and records
//! every repeated key with its path; the typed structs are then deserialized from the Value.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_yaml::{Mapping, Value};
use std::fmt;

/// A repeated key: the path of the key (`tables.public.customers.columns.ssn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DuplicateKey {
    pub key_path: String,
}

/// Parse `text` into a Value, collecting duplicate keys instead of failing on the first.
pub(crate) fn parse_value(text: &str) -> Result<(Value, Vec<DuplicateKey>), serde_yaml::Error> {
    let mut duplicates = Vec::new();
    let deserializer = serde_yaml::Deserializer::from_str(text);
    let value = Walker {
        path: String::new(),
        duplicates: &mut duplicates,
    }
    .deserialize(deserializer)?;
    Ok((value, duplicates))
}

/// How a key is shown in a key path: strings as written, other scalars in YAML form.
pub(crate) fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // A list or map used as a key: nothing in the format allows it; show a placeholder.
        _ => "<complex key>".into(),
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

struct Walker<'a> {
    path: String,
    duplicates: &'a mut Vec<DuplicateKey>,
}

impl<'de> DeserializeSeed<'de> for Walker<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walker<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let child = Walker {
                path: format!("{}[{}]", self.path, items.len()),
                duplicates: &mut *self.duplicates,
            };
            match seq.next_element_seed(child)? {
                Some(v) => items.push(v),
                None => break,
            }
        }
        Ok(Value::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut mapping = Mapping::new();
        // Keys are scalars in this format; walk them without a path of their own.
        while let Some(key) = map.next_key_seed(Walker {
            path: self.path.clone(),
            duplicates: &mut *self.duplicates,
        })? {
            let key_path = join(&self.path, &key_text(&key));
            let value = map.next_value_seed(Walker {
                path: key_path.clone(),
                duplicates: &mut *self.duplicates,
            })?;
            if mapping.contains_key(&key) {
                self.duplicates.push(DuplicateKey { key_path });
            } else {
                mapping.insert(key, value);
            }
        }
        Ok(Value::Mapping(mapping))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<Value, A::Error> {
        // serde_yaml hands `!tag value` to visit_enum. Nothing in the format uses tags, and
        // accepting them would let `!!binary` or custom tags change a value's meaning.
        Err(de::Error::custom(
            "YAML tags (`!...`) are not supported in classification files",
        ))
    }
}
