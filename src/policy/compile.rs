//! Raw files -> one validated `Policy`: merges files, checks every value, collects all errors.

use super::check::Warning;
use super::model::*;
use super::parse::join_relative;
use super::raw::{
    Lenient, RawColumn, RawFailedLogins, RawFile, RawRateLimit, RawRule, RawSecurity, RawTable,
};
use super::values::*;
use super::{Class, Policy, PolicyError, Sources};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Error and warning sink for one compile; every error names its file and key path.
#[derive(Default)]
struct Sink {
    errors: Vec<PolicyError>,
    warnings: Vec<Warning>,
}

impl Sink {
    fn error(&mut self, file: &Path, key_path: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(PolicyError {
            file: file.to_path_buf(),
            key_path: key_path.into(),
            reason: reason.into(),
        });
    }
    fn warn(&mut self, file: &Path, key_path: impl Into<String>, message: impl Into<String>) {
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

fn check_role_refs(
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

fn compile_table(
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

fn compile_rules(
    file: &Path,
    raw: Vec<Lenient<RawRule>>,
    roles: &BTreeSet<String>,
    sink: &mut Sink,
) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (index, rule) in raw.into_iter().enumerate() {
        let path = format!("rules[{index}]");
        let raw = match rule {
            Lenient::Ok(raw) => raw,
            Lenient::Err(rel, reason) => {
                sink.error(file, join_relative(&path, &rel), reason);
                continue;
            }
        };
        if let Some(name) = raw.name.as_deref() {
            if let Some(first) = names.insert(name.to_string(), index) {
                sink.error(
                    file,
                    format!("{path}.name"),
                    format!("duplicate rule name {name:?} (also rules[{first}])"),
                );
            }
        }
        if let Some(rule) = compile_rule(file, &path, index, raw, roles, sink) {
            rules.push(rule);
        }
    }
    rules
}

fn parse_classes(file: &Path, path: &str, texts: &[String], sink: &mut Sink) -> Vec<Class> {
    let mut classes = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        match parse_class(text) {
            Ok(c) if !classes.contains(&c) => classes.push(c),
            Ok(_) => sink.error(
                file,
                format!("{path}[{i}]"),
                format!("class {text} is listed twice"),
            ),
            Err(reason) => sink.error(file, format!("{path}[{i}]"), reason),
        }
    }
    classes
}

fn compile_rule(
    file: &Path,
    path: &str,
    index: usize,
    raw: RawRule,
    roles: &BTreeSet<String>,
    sink: &mut Sink,
) -> Option<Rule> {
    let before = sink.errors.len();
    let name = match raw.name {
        Some(name) if !name.trim().is_empty() => name,
        _ => {
            sink.error(
                file,
                format!("{path}.name"),
                "every rule needs a non-empty name (audit events cite it)",
            );
            String::new()
        }
    };
    let all = [
        Class::Public,
        Class::Internal,
        Class::Confidential,
        Class::Restricted,
    ];
    let class_given = raw.class.is_some();
    let mut classes = match raw.class {
        None => all.to_vec(),
        Some(one_or_many) => {
            let texts = one_or_many.into_vec();
            if texts.is_empty() {
                sink.error(
                    file,
                    format!("{path}.class"),
                    "empty class list (omit `class` to match every class)",
                );
            }
            // A single class keeps the path `class`; list items get `class[i]`.
            if texts.len() == 1 {
                match parse_class(&texts[0]) {
                    Ok(c) => vec![c],
                    Err(reason) => {
                        sink.error(file, format!("{path}.class"), reason);
                        Vec::new()
                    }
                }
            } else {
                parse_classes(file, &format!("{path}.class"), &texts, sink)
            }
        }
    };
    if raw.at_least == Some(true) {
        if !class_given {
            sink.error(file, format!("{path}.at_least"), "at_least needs `class`");
        } else if let Some(&lowest) = classes.iter().min() {
            classes = all.iter().copied().filter(|c| *c >= lowest).collect();
        }
    }
    classes.sort();
    let check_roles = |key: &str, list: &Option<Vec<String>>, sink: &mut Sink| {
        if let Some(list) = list {
            check_role_refs(file, &format!("{path}.{key}"), list, roles, sink);
        }
    };
    check_roles("roles", &raw.roles, sink);
    check_roles("except_roles", &raw.except_roles, sink);
    let positive = |key: &str, value: Option<u64>, sink: &mut Sink| {
        if value == Some(0) {
            sink.error(
                file,
                format!("{path}.{key}"),
                format!("{key} must be at least 1"),
            );
        }
        value
    };
    let rows_per_query = positive("rows_per_query", raw.rows_per_query, sink);
    let rows_per_session = positive("rows_per_session", raw.rows_per_session, sink);
    let outside_hours = raw.outside_hours.as_deref().and_then(|text| {
        parse_business_hours(text)
            .map_err(|reason| sink.error(file, format!("{path}.outside_hours"), reason))
            .ok()
    });
    let statement = raw.statement.as_deref().and_then(|text| {
        let parsed = StatementKindMatch::parse(text);
        if parsed.is_none() {
            let expected = StatementKindMatch::NAMES.join(", ");
            sink.error(
                file,
                format!("{path}.statement"),
                format!("unknown statement kind {text:?} (expected one of {expected})"),
            );
        }
        parsed
    });
    let classes_together = match &raw.classes_together {
        None => Vec::new(),
        Some(texts) => {
            let key = format!("{path}.classes_together");
            let together = parse_classes(file, &key, texts, sink);
            if texts.len() < 2 {
                sink.error(file, key, "classes_together needs at least two classes");
            }
            together
        }
    };
    let action = match raw.action.as_deref() {
        Some("allow") => RuleAction::Allow,
        Some("alert") => RuleAction::Alert,
        Some("block") => RuleAction::Block,
        other => {
            let reason = match other {
                Some(text) => {
                    format!("unknown action {text:?} (expected one of allow, alert, block)")
                }
                None => "missing action (expected one of allow, alert, block)".to_string(),
            };
            sink.error(file, format!("{path}.action"), reason);
            RuleAction::Alert
        }
    };
    let severity = match raw.severity.as_deref() {
        None | Some("MEDIUM") => Severity::Medium,
        Some("LOW") => Severity::Low,
        Some("HIGH") => Severity::High,
        Some("CRITICAL") => Severity::Critical,
        Some(text) => {
            let reason =
                format!("unknown severity {text:?} (expected one of CRITICAL, HIGH, MEDIUM, LOW)");
            sink.error(file, format!("{path}.severity"), reason);
            Severity::Medium
        }
    };
    let mode = match raw.mode.as_deref() {
        None | Some("enforce") => RuleMode::Enforce,
        Some("monitor") => RuleMode::Monitor,
        Some(text) => {
            sink.error(
                file,
                format!("{path}.mode"),
                format!("unknown mode {text:?} (expected monitor or enforce)"),
            );
            RuleMode::Enforce
        }
    };
    (sink.errors.len() == before).then_some(Rule {
        name,
        classes,
        roles: raw.roles,
        except_roles: raw.except_roles.unwrap_or_default(),
        rows_per_query,
        rows_per_session,
        require_approval: raw.require_approval.unwrap_or(false),
        outside_hours,
        statement,
        classes_together,
        action,
        severity,
        mode,
        index,
    })
}

fn compile_security(file: &Path, raw: RawSecurity, sink: &mut Sink) -> SecuritySettings {
    let mut settings = SecuritySettings::default();
    if let Some(raw) = raw.failed_logins {
        settings.failed_logins = compile_failed_logins(file, raw, sink);
    }
    if let Some(RawRateLimit {
        per_user,
        total_alert,
    }) = raw.rate_limit
    {
        let path = "security.rate_limit";
        settings.rate_limit.per_user = rate(file, path, "per_user", per_user, sink);
        settings.rate_limit.total_alert = rate(file, path, "total_alert", total_alert, sink);
    }
    settings
}

fn compile_failed_logins(
    file: &Path,
    raw: RawFailedLogins,
    sink: &mut Sink,
) -> FailedLoginSettings {
    let path = "security.failed_logins";
    let mut settings = FailedLoginSettings {
        warn: rate(file, path, "warn", raw.warn, sink),
        lock: rate(file, path, "lock", raw.lock, sink),
        attack: rate(file, path, "attack", raw.attack, sink),
        ..FailedLoginSettings::default()
    };
    if let Some(text) = raw.lock_for {
        match parse_duration(&text) {
            Ok(d) => settings.lock_for = d,
            Err(reason) => sink.error(file, format!("{path}.lock_for"), reason),
        }
        if settings.lock.is_none() {
            sink.warn(
                file,
                format!("{path}.lock_for"),
                "lock_for has no effect without `lock`",
            );
        }
    }
    match raw.lock_scope.as_deref() {
        None | Some("user_address") => {}
        Some("user") => settings.lock_scope = LockScope::User,
        Some(text) => sink.error(
            file,
            format!("{path}.lock_scope"),
            format!("unknown lock_scope {text:?} (expected user or user_address)"),
        ),
    }
    settings
}

fn rate(file: &Path, path: &str, key: &str, text: Option<String>, sink: &mut Sink) -> Option<Rate> {
    let text = text?;
    parse_rate(&text)
        .map_err(|reason| sink.error(file, format!("{path}.{key}"), reason))
        .ok()
}
