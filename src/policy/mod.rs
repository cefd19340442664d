//! Classification policy: `classification/*.yaml` -> a compiled, validated [`Policy`].
//!
//! Pipeline: [`load`](Policy::load) reads the files, `dupes` parses each into a YAML value
//! while rejecting duplicate keys, `raw` fixes the shape (unknown keys are errors), `compile`
//! checks every value and merges the files, and [`check()`] lists warnings for `pgvigil
//! check`. Lookups take names exactly as given: the caller folds SQL identifiers the way
//! Postgres does, and YAML keys are the Postgres names as stored (normally lower-case).

mod check;
mod compile;
mod dupes;
mod load;
mod model;
mod parse;
mod raw;
mod rules;
mod security;
mod tables;
mod values;

pub mod engine;

#[cfg(test)]
mod tests;

pub use check::{check, Warning};
pub use model::{
    Action, BusinessHours, ColumnRule, FailedLoginSettings, LockScope, Mask, NamePattern,
    Permission, Rate, RateLimitSettings, Resource, Role, Rule, RuleAction, RuleMode,
    SecuritySettings, Severity, StatementKindMatch, TableRule,
};
/// Value parsers shared with the admin API (approval durations, classes, table names).
pub(crate) use values::{parse_class, parse_duration, parse_table_key};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Data classes, ordered from least to most sensitive (contract: names in YAML and audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Class {
    Public,
    Internal,
    Confidential,
    Restricted,
}

/// One problem in a policy file: which file, where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {key_path}: {reason}", file.display())]
pub struct PolicyError {
    pub file: PathBuf,
    pub key_path: String,
    pub reason: String,
}

/// All problems found while loading a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct PolicyErrors(pub Vec<PolicyError>);

/// Which file gave each single-file section (for warnings that point at it).
#[derive(Debug, Clone, Default)]
pub(crate) struct Sources {
    pub roles: Option<PathBuf>,
    pub principals: Option<PathBuf>,
    pub rules: Option<PathBuf>,
    pub security: Option<PathBuf>,
}

/// A compiled classification policy.
#[derive(Debug, Clone)]
pub struct Policy {
    default_class: Class,
    dataset: String,
    /// schema -> table -> rule; nested so lookups by `&str` need no allocation.
    tables: BTreeMap<String, BTreeMap<String, TableRule>>,
    /// `None` when the file has no `roles` key: access control off.
    roles: Option<BTreeMap<String, Role>>,
    principals: BTreeMap<String, Vec<String>>,
    default_roles: Vec<String>,
    rules: Vec<Rule>,
    security: SecuritySettings,
    sources: Sources,
    /// Warnings found while compiling (e.g. a mask on a non-RESTRICTED column), kept for
    /// `check` because they are about what was written, which the compiled form forgets.
    load_warnings: Vec<Warning>,
}

impl Policy {
    /// The policy used without `--classification`: nothing classified, default INTERNAL.
    pub fn unclassified() -> Self {
        Self {
            default_class: Class::Internal,
            dataset: "default".into(),
            tables: BTreeMap::new(),
            roles: None,
            principals: BTreeMap::new(),
            default_roles: Vec::new(),
            rules: Vec::new(),
            security: SecuritySettings::default(),
            sources: Sources::default(),
            load_warnings: Vec::new(),
        }
    }

    /// Load a file, or every `*.yaml` / `*.yml` in a directory (in name order; dot files
    /// skipped). Later files may add tables; every other top-level key may appear in only
    /// one file. All errors found are returned, each naming file and key path.
    pub fn load(path: &Path) -> Result<Self, PolicyErrors> {
        load::load(path)
    }

    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    pub fn default_class(&self) -> Class {
        self.default_class
    }

    /// Class of a relation: its own `class`, PUBLIC for catalogs, else `default_class`.
    pub fn table_class(&self, schema: &str, table: &str) -> Class {
        if let Some(rule) = self.table(schema, table) {
            return rule.class;
        }
        if schema == "pg_catalog" || schema == "information_schema" {
            return Class::Public;
        }
        self.default_class
    }

    /// Class of a column: its own `class`, else its table's class.
    pub fn column_class(&self, schema: &str, table: &str, column: &str) -> Class {
        match self.column_rule(schema, table, column) {
            Some(rule) => rule.class,
            None => self.table_class(schema, table),
        }
    }

    /// Whether the relation is listed in the policy.
    pub fn is_classified(&self, schema: &str, table: &str) -> bool {
        self.table(schema, table).is_some()
    }

    /// The listed relation, if any.
    pub fn table(&self, schema: &str, table: &str) -> Option<&TableRule> {
        self.tables.get(schema)?.get(table)
    }

    /// Settings of a column listed in the policy (class, mask, blind index, encrypt).
    /// `None` for columns not listed: they take the table's class and are never encrypted.
    pub fn column_rule(&self, schema: &str, table: &str, column: &str) -> Option<&ColumnRule> {
        self.table(schema, table)?.columns.get(column)
    }

    /// Every listed relation, ordered by schema then table.
    pub fn tables(&self) -> impl Iterator<Item = &TableRule> + '_ {
        self.tables.values().flat_map(|t| t.values())
    }

    /// True iff the policy has a `roles` key (even `roles: {}`): then users get only the
    /// permissions of their roles. Without it every user may do everything (still audited).
    pub fn access_control_enabled(&self) -> bool {
        self.roles.is_some()
    }

    /// Every defined role, by name.
    pub fn roles(&self) -> impl Iterator<Item = &Role> + '_ {
        self.roles.iter().flat_map(|r| r.values())
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.as_ref()?.get(name)
    }

    /// Roles of a database user: from `principals`, else `default_roles`. Empty when access
    /// control is off (nothing to check then).
    pub fn roles_of(&self, user: &str) -> Vec<&Role> {
        let names = self.principals.get(user).unwrap_or(&self.default_roles);
        names.iter().filter_map(|name| self.role(name)).collect()
    }

    /// `principals`: database user -> role names.
    pub fn principals(&self) -> &BTreeMap<String, Vec<String>> {
        &self.principals
    }

    pub fn default_roles(&self) -> &[String] {
        &self.default_roles
    }

    /// Rules in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn security(&self) -> &SecuritySettings {
        &self.security
    }
}
