//! `tables:` entries -> [`TableRule`]s with resolved [`ColumnRule`]s; file merging rules.

use super::compile::Sink;
use super::model::{class_name, ColumnRule, Mask, TableRule};
use super::parse::join_relative;
use super::raw::{Lenient, RawColumn, RawTable};
use super::values::{parse_class, parse_table_key};
use super::{Class, Policy};
use std::collections::BTreeMap;
use std::path::Path;

pub(crate) fn compile_table(
    file: &Path,
    key: &str,
    table: Lenient<RawTable>,
    policy: &mut Policy,
    sink: &mut Sink,
) {
    let path = format!("tables.{key}");
    let raw = match table {
        Lenient::Ok(raw) => raw,
        Lenient::Err(rel, reason) => return sink.error(file, join_relative(&path, &rel), reason),
    };
    let (schema, name) = match parse_table_key(key) {
        Ok(parts) => parts,
        Err(reason) => return sink.error(file, path, reason),
    };
    if let Some(existing) = policy.tables.get(&schema).and_then(|t| t.get(&name)) {
        let place = if existing.source == file {
            format!("earlier in this file as `{}`", existing.key)
        } else {
            format!("in {} as `{}`", existing.source.display(), existing.key)
        };
        return sink.error(
            file,
            path,
            format!("table {schema}.{name} is already defined {place}"),
        );
    }
    let class = match raw.class.as_deref().map(parse_class).transpose() {
        Ok(class) => class.unwrap_or(policy.default_class),
        Err(reason) => {
            sink.error(file, format!("{path}.class"), reason);
            policy.default_class
        }
    };
    let mut columns = BTreeMap::new();
    for (column, raw) in raw.columns.unwrap_or_default() {
        let column_path = format!("{path}.columns.{column}");
        if let Some(rule) = compile_column(file, &column_path, &column, raw, class, sink) {
            columns.insert(column, rule);
        }
    }
    check_blind_indexes(file, &path, &columns, sink);
    let rule = TableRule {
        schema: schema.clone(),
        table: name.clone(),
        class,
        columns,
        source: file.to_path_buf(),
        key: key.to_string(),
    };
    policy.tables.entry(schema).or_default().insert(name, rule);
}

fn compile_column(
    file: &Path,
    path: &str,
    name: &str,
    raw: RawColumn,
    table_class: Class,
    sink: &mut Sink,
) -> Option<ColumnRule> {
    let before = sink.errors.len();
    if name.is_empty() {
        sink.error(file, path, "empty column name");
    }
    let class = match raw.class.as_deref().map(parse_class).transpose() {
        Ok(class) => class.unwrap_or(table_class),
        Err(reason) => {
            sink.error(file, format!("{path}.class"), reason);
            table_class
        }
    };
    let mask = match raw.mask.as_deref() {
        None => Mask::Redact,
        Some(text) => Mask::parse(text).unwrap_or_else(|| {
            sink.error(
                file,
                format!("{path}.mask"),
                format!(
                    "unknown mask {text:?} (expected one of {})",
                    Mask::NAMES.join(", ")
                ),
            );
            Mask::Redact
        }),
    };
    let encrypt = raw.encrypt.unwrap_or(class == Class::Restricted);
    if encrypt && class != Class::Restricted {
        // Field encryption is defined for RESTRICTED data only (SPEC section 4); accepting it
        // elsewhere would leave readers' access rules undefined.
        sink.error(
            file,
            format!("{path}.encrypt"),
            format!(
                "encrypt applies only to RESTRICTED columns (this column is {})",
                class_name(class)
            ),
        );
    }
    if raw.mask.is_some() && class != Class::Restricted {
        sink.warn(
            file,
            format!("{path}.mask"),
            format!(
                "mask has no effect: the column is {}, masks apply to RESTRICTED columns",
                class_name(class)
            ),
        );
    }
    if let Some(index) = &raw.blind_index {
        if index.is_empty() || index == name {
            sink.error(
                file,
                format!("{path}.blind_index"),
                "blind_index must name another column of the table",
            );
        } else if !encrypt {
            sink.warn(
                file,
                format!("{path}.blind_index"),
                "blind_index has no effect: the column is not encrypted",
            );
        }
    }
    (sink.errors.len() == before).then_some(ColumnRule {
        class,
        mask,
        blind_index: raw.blind_index,
        encrypt,
    })
}

/// A blind index column holds HMACs written by the proxy: it must not be shared by two
/// columns, and must not itself be an encrypted column.
fn check_blind_indexes(
    file: &Path,
    path: &str,
    columns: &BTreeMap<String, ColumnRule>,
    sink: &mut Sink,
) {
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for (column, rule) in columns {
        let Some(index) = rule.blind_index.as_deref() else {
            continue;
        };
        let key_path = format!("{path}.columns.{column}.blind_index");
        if let Some(other) = owners.insert(index, column) {
            sink.error(
                file,
                &key_path,
                format!("blind index column {index:?} is also used by column {other:?}"),
            );
        }
        if columns.get(index).is_some_and(|c| c.encrypt) {
            sink.error(
                file,
                &key_path,
                format!("blind index column {index:?} is itself an encrypted column"),
            );
        }
    }
}
