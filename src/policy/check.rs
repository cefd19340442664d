//! `pgvigil check` warnings: a policy that loads but probably does not say what was meant.
//! Pure: looks only at the compiled policy (live-schema and keyring checks live elsewhere).

use super::model::{class_name, Action, NamePattern, Permission, Resource, RuleAction, RuleMode};
use super::{Class, Policy};
use std::fmt;
use std::path::PathBuf;

/// One warning; printed by the CLI as `warning: <file>: <key path>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: PathBuf,
    pub key_path: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.file.display(),
            self.key_path,
            self.message
        )
    }
}

/// Every warning for `policy`, in a stable order (load-time warnings first).
pub fn check(policy: &Policy) -> Vec<Warning> {
    let mut warnings = policy.load_warnings.clone();
    check_columns(policy, &mut warnings);
    check_roles(policy, &mut warnings);
    check_rules(policy, &mut warnings);
    check_security(policy, &mut warnings);
    warnings
}

fn check_columns(policy: &Policy, out: &mut Vec<Warning>) {
    for table in policy.tables() {
        let path = format!("tables.{}", table.key);
        let warn = |out: &mut Vec<Warning>, key_path: String, message: String| {
            out.push(Warning {
                file: table.source.clone(),
                key_path,
                message,
            })
        };
        // System catalogs are classified to control who reads them (pg_stats holds column
        // values); they are never encrypted, so an empty column list is expected there.
        let catalog = table.schema == "pg_catalog" || table.schema == "information_schema";
        if table.class == Class::Restricted && table.columns.is_empty() && !catalog {
            let message = "table is RESTRICTED but lists no columns: nothing in it is encrypted; \
                           list the columns to encrypt them";
            warn(out, path.clone(), message.into());
        }
        for (column, rule) in &table.columns {
            if rule.class == Class::Restricted && !rule.encrypt {
                let message =
                    "RESTRICTED column with `encrypt: false`: its values are stored in plaintext";
                warn(
                    out,
                    format!("{path}.columns.{column}.encrypt"),
                    message.into(),
                );
            }
        }
        if !policy.access_control_enabled() && table.columns.values().any(|c| c.encrypt) {
            let message = "encrypted columns but no `roles`: access control is off, so every user reads plaintext";
            warn(out, path, message.into());
        }
    }
}

fn check_roles(policy: &Policy, out: &mut Vec<Warning>) {
    if let (Some(file), false) = (&policy.sources.principals, policy.access_control_enabled()) {
        out.push(Warning {
            file: file.clone(),
            key_path: "principals".into(),
            message: "principals have no effect without `roles`: access control is off".into(),
        });
    }
    let Some(file) = &policy.sources.roles else {
        return;
    };
    let restricted_read = Permission {
        resource: Resource::Class(Class::Restricted),
        action: Action::Read,
    };
    for role in policy.roles() {
        let explicit = role
            .permissions
            .iter()
            .any(|p| p.resource == restricted_read.resource && p.covers(&restricted_read));
        let wildcard = role
            .permissions
            .iter()
            .find(|p| p.resource == Resource::Any && p.covers(&restricted_read));
        if let (false, Some(p)) = (explicit, wildcard) {
            out.push(Warning {
                file: file.clone(),
                key_path: format!("roles.{}", role.name),
                message: format!("gets restricted:read only through the wildcard {p}: RESTRICTED plaintext; write restricted:read if intended"),
            });
        }
        for p in &role.permissions {
            if let Some(table) = wildcard_table_reaching_restricted(policy, p) {
                out.push(Warning {
                    file: file.clone(),
                    key_path: format!("roles.{}", role.name),
                    message: format!("{p} reads RESTRICTED columns of {table} through a wildcard"),
                });
            }
        }
    }
}

/// A `table:` permission with a `*` that reads a table holding RESTRICTED columns: table
/// permissions suffice on their own, so this grants plaintext without saying so.
fn wildcard_table_reaching_restricted(policy: &Policy, p: &Permission) -> Option<String> {
    let Resource::Table { schema, table } = &p.resource else {
        return None;
    };
    if !matches!(p.action, Action::Read | Action::Any) {
        return None;
    }
    if !matches!(schema, NamePattern::Any) && !matches!(table, NamePattern::Any) {
        return None;
    }
    policy
        .tables()
        .filter(|t| schema.matches(&t.schema) && table.matches(&t.table))
        .find(|t| {
            t.class == Class::Restricted || t.columns.values().any(|c| c.class == Class::Restricted)
        })
        .map(|t| format!("{}.{}", t.schema, t.table))
}

fn check_rules(policy: &Policy, out: &mut Vec<Warning>) {
    let Some(file) = &policy.sources.rules else {
        return;
    };
    for rule in policy.rules() {
        let path = format!("rules[{}]", rule.index);
        let mut warn = |message: String| {
            out.push(Warning {
                file: file.clone(),
                key_path: path.clone(),
                message,
            })
        };
        let name = &rule.name;
        if rule.roles.as_ref().is_some_and(|r| r.is_empty()) {
            warn(format!("rule {name:?} can never match: `roles` is empty"));
        }
        if let Some(roles) = &rule.roles {
            if !roles.is_empty() && roles.iter().all(|r| rule.except_roles.contains(r)) {
                warn(format!(
                    "rule {name:?} can never match: every role in `roles` is in `except_roles`"
                ));
            }
        }
        if !rule.classes.is_empty() && rule.classes.iter().all(|c| !class_reachable(policy, *c)) {
            let names: Vec<_> = rule.classes.iter().map(|c| class_name(*c)).collect();
            warn(format!(
                "rule {name:?} can never match: no table or column is classified {}",
                names.join(" or ")
            ));
        }
        for class in &rule.classes_together {
            if !class_reachable(policy, *class) {
                warn(format!(
                    "rule {name:?} can never match: classes_together names {} but nothing is classified so",
                    class_name(*class)
                ));
            }
        }
        if rule.mode == RuleMode::Monitor && rule.action != RuleAction::Block {
            warn(format!(
                "rule {name:?}: `mode: monitor` only changes block rules"
            ));
        }
    }
}

/// Whether any relation can have `class`: a listed table or column, the default class for
/// unlisted tables, or PUBLIC for the catalogs.
fn class_reachable(policy: &Policy, class: Class) -> bool {
    class == policy.default_class()
        || class == Class::Public
        || policy
            .tables()
            .any(|t| t.class == class || t.columns.values().any(|c| c.class == class))
}

fn check_security(policy: &Policy, out: &mut Vec<Warning>) {
    let Some(file) = &policy.sources.security else {
        return;
    };
    let logins = &policy.security().failed_logins;
    if let (Some(warn), Some(lock)) = (logins.warn, logins.lock) {
        if warn.window == lock.window && warn.count >= lock.count {
            out.push(Warning {
                file: file.clone(),
                key_path: "security.failed_logins.warn".into(),
                message: format!(
                    "warn ({}) is not below lock ({}): the account locks before any warning",
                    warn.count, lock.count
                ),
            });
        }
    }
}
