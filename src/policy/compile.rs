//! Raw files -> one validated `Policy`: merges files, checks every value, collects all errors.

use super::check::Warning;
use super::model::Role;
use super::parse::join_relative;
use super::raw::{Lenient, RawFile};
use super::rules::compile_rules;
use super::security::compile_security;
use super::tables::compile_table;
use super::values::{parse_class, parse_permission};
use super::{Policy, PolicyError, Sources};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Error and warning sink for one compile; every error names its file and key path.
#[derive(Default)]
pub(crate) struct Sink {
    pub errors: Vec<PolicyError>,
    pub warnings: Vec<Warning>,
}

impl Sink {
    pub fn error(&mut self, file: &Path, key_path: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(PolicyError {
            file: file.to_path_buf(),
            key_path: key_path.into(),
            reason: reason.into(),
        });
    }
    pub fn warn(&mut self, file: &Path, key_path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning {
            file: file.to_path_buf(),
            key_path: key_path.into(),
            message: message.into(),
        });
    }
}

/// Compile parsed files (in load order) into one policy.
pub(crate) fn compile(files: Vec<(PathBuf, RawFile)>) -> Result<Policy, Vec<PolicyError>> {
    let mut sink = Sink::default();
    let mut policy = Policy::unclassified();
    let mut sources = Sources::default();
    let singles = single_sections(&files, &mut sink);
    let mut files = files;

    // Order matters: tables need default_class; principals and rules need roles.
    if let Some(i) = singles.dataset {
        let (file, raw) = &mut files[i];
        if let Some(name) = raw.dataset.take() {
            match check_dataset(&name) {
                Ok(()) => policy.dataset = name,
                Err(reason) => sink.error(file, "dataset", reason),
            }
        }
    }
    if let Some(i) = singles.default_class {
        let (file, raw) = &mut files[i];
        if let Some(text) = raw.default_class.take() {
            match parse_class(&text) {
                Ok(class) => policy.default_class = class,
                Err(reason) => sink.error(file, "default_class", reason),
            }
        }
    }
    if let Some(i) = singles.roles {
        let (file, raw) = &mut files[i];
        sources.roles = Some(file.clone());
        policy.roles = raw
            .roles
            .take()
            .map(|roles| compile_roles(file, roles, &mut sink));
    }
    let role_names: BTreeSet<String> = policy
        .roles
        .iter()
        .flat_map(|r| r.keys().cloned())
        .collect();
    if let Some(i) = singles.principals {
        let (file, raw) = &mut files[i];
        sources.principals = Some(file.clone());
        for (user, roles) in raw.principals.take().unwrap_or_default() {
            let path = format!("principals.{user}");
            check_role_refs(file, &path, &roles, &role_names, &mut sink);
            policy.principals.insert(user, roles);
        }
    }
    if let Some(i) = singles.default_roles {
        let (file, raw) = &mut files[i];
        let roles = raw.default_roles.take().unwrap_or_default();
        check_role_refs(file, "default_roles", &roles, &role_names, &mut sink);
        policy.default_roles = roles;
    }
    for (file, raw) in &mut files {
        for (key, table) in raw.tables.take().unwrap_or_default() {
            compile_table(file, &key, table, &mut policy, &mut sink);
        }
    }
    if let Some(i) = singles.rules {
        let (file, raw) = &mut files[i];
        sources.rules = Some(file.clone());
        policy.rules = compile_rules(
            file,
            raw.rules.take().unwrap_or_default(),
            &role_names,
            &mut sink,
        );
    }
    if let Some(i) = singles.security {
        let (file, raw) = &mut files[i];
        sources.security = Some(file.clone());
        match raw.security.take() {
            Some(Lenient::Ok(raw)) => policy.security = compile_security(file, raw, &mut sink),
            Some(Lenient::Err(rel, reason)) => {
                sink.error(file, join_relative("security", &rel), reason)
            }
            None => {}
        }
    }
    if !sink.errors.is_empty() {
        return Err(sink.errors);
    }
    policy.sources = sources;
    policy.load_warnings = sink.warnings;
    Ok(policy)
}

/// Which file holds each section that may appear in only one file.
#[derive(Default)]
struct SingleSections {
    dataset: Option<usize>,
    default_class: Option<usize>,
    roles: Option<usize>,
    principals: Option<usize>,
    default_roles: Option<usize>,
    rules: Option<usize>,
    security: Option<usize>,
}

fn single_sections(files: &[(PathBuf, RawFile)], sink: &mut Sink) -> SingleSections {
    let mut found = SingleSections::default();
    for (i, (file, raw)) in files.iter().enumerate() {
        let present = [
            ("dataset", raw.dataset.is_some(), &mut found.dataset),
            (
                "default_class",
                raw.default_class.is_some(),
                &mut found.default_class,
            ),
            ("roles", raw.roles.is_some(), &mut found.roles),
            (
                "principals",
                raw.principals.is_some(),
                &mut found.principals,
            ),
            (
                "default_roles",
                raw.default_roles.is_some(),
                &mut found.default_roles,
            ),
            ("rules", raw.rules.is_some(), &mut found.rules),
            ("security", raw.security.is_some(), &mut found.security),
        ];
        for (key, is_present, slot) in present {
            if !is_present {
                continue;
            }
            match *slot {
                Some(first) => sink.error(
                    file,
                    key,
                    format!(
                        "already given in {} (only one file may set `{key}`)",
                        files[first].0.display()
                    ),
                ),
                None => *slot = Some(i),
            }
        }
    }
    found
}

/// The dataset is bound into ciphertext associated data as `dataset.schema.table.column`;
/// a dot or odd character in it would make that binding ambiguous.
fn check_dataset(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(format!(
            "invalid dataset {name:?} (letters, digits, `_` and `-` only, not empty)"
        ))
    }
}

fn compile_roles(
    file: &Path,
    raw: BTreeMap<String, Vec<String>>,
    sink: &mut Sink,
) -> BTreeMap<String, Role> {
    let mut roles = BTreeMap::new();
    for (name, permissions) in raw {
        let mut compiled = Vec::new();
        for (i, text) in permissions.iter().enumerate() {
            match parse_permission(text) {
                Ok(p) => compiled.push(p),
                Err(reason) => sink.error(file, format!("roles.{name}[{i}]"), reason),
            }
        }
        roles.insert(
            name.clone(),
            Role {
                name,
                permissions: compiled,
            },
        );
    }
    roles
}

pub(crate) fn check_role_refs(
    file: &Path,
    path: &str,
    roles: &[String],
    known: &BTreeSet<String>,
    sink: &mut Sink,
) {
    for (i, role) in roles.iter().enumerate() {
        if !known.contains(role) {
            let known_list = if known.is_empty() {
                "no roles are defined".to_string()
            } else {
                format!(
                    "defined roles: {}",
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            sink.error(
                file,
                format!("{path}[{i}]"),
                format!("unknown role {role:?} ({known_list})"),
            );
        }
    }
}
