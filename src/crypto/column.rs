//! `ColumnPath`: the `dataset.schema.table.column` name that binds a value to its column
//! (AES-GCM associated data, blind-index key derivation).

use std::fmt;

/// Why a column path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColumnPathError {
    #[error("column path part `{part}` is empty")]
    Empty { part: &'static str },
    /// A `.` inside one part would make `a.b` + `c` and `a` + `b.c` the same associated data,
    /// so values could move between those columns undetected. Refused (fail closed).
    #[error("column path part `{part}` contains '.', which would make the binding ambiguous")]
    Dot { part: &'static str },
}

/// `dataset.schema.table.column`, each part non-empty and free of `.`.
///
/// Parts are taken byte-exact: the caller passes the names as the catalog spells them
/// (unquoted identifiers folded to lower case), so the same column always yields the same
/// path. `dataset` is the policy's logical name (default `default`), not the database name,
/// so a restore under another database name still decrypts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnPath {
    joined: String,
}

impl ColumnPath {
    pub fn new(
        dataset: &str,
        schema: &str,
        table: &str,
        column: &str,
    ) -> Result<Self, ColumnPathError> {
        let parts = [
            ("dataset", dataset),
            ("schema", schema),
            ("table", table),
            ("column", column),
        ];
        for (part, value) in parts {
            if value.is_empty() {
                return Err(ColumnPathError::Empty { part });
            }
            if value.contains('.') {
                return Err(ColumnPathError::Dot { part });
            }
        }
        Ok(ColumnPath {
            joined: format!("{dataset}.{schema}.{table}.{column}"),
        })
    }

    /// The exact associated data: `dataset.schema.table.column`.
    pub fn as_str(&self) -> &str {
        &self.joined
    }
}

impl fmt::Display for ColumnPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.joined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_with_dots() {
        let p = ColumnPath::new("default", "public", "customers", "ssn").unwrap();
        assert_eq!(p.as_str(), "default.public.customers.ssn");
        assert_eq!(p.to_string(), "default.public.customers.ssn");
    }

    #[test]
    fn refuses_empty_and_dotted_parts() {
        assert_eq!(
            ColumnPath::new("", "public", "t", "c"),
            Err(ColumnPathError::Empty { part: "dataset" })
        );
        assert_eq!(
            ColumnPath::new("default", "pub.lic", "t", "c"),
            Err(ColumnPathError::Dot { part: "schema" })
        );
        assert!(ColumnPath::new("default", "public", "t", "").is_err());
    }
}
