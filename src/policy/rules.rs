//! `rules:` list -> compiled [`Rule`]s: names, classes, role references, conditions, outcome.

use super::compile::{check_role_refs, Sink};
use super::model::{Rule, RuleAction, RuleMode, Severity, StatementKindMatch};
use super::parse::join_relative;
use super::raw::{Lenient, OneOrMany, RawRule};
use super::values::{parse_business_hours, parse_class};
use super::Class;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ALL_CLASSES: [Class; 4] = [
    Class::Public,
    Class::Internal,
    Class::Confidential,
    Class::Restricted,
];

/// Where a rule's errors go: its file and `rules[i]`.
struct At<'a> {
    file: &'a Path,
    path: String,
}

impl At<'_> {
    fn error(&self, sink: &mut Sink, key: &str, reason: impl Into<String>) {
        sink.error(self.file, format!("{}.{key}", self.path), reason);
    }
}

pub(crate) fn compile_rules(
    file: &Path,
    raw: Vec<Lenient<RawRule>>,
    roles: &BTreeSet<String>,
    sink: &mut Sink,
) -> Vec<Rule> {
    let mut rules = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (index, rule) in raw.into_iter().enumerate() {
        let at = At {
            file,
            path: format!("rules[{index}]"),
        };
        let raw = match rule {
            Lenient::Ok(raw) => raw,
            Lenient::Err(rel, reason) => {
                sink.error(file, join_relative(&at.path, &rel), reason);
                continue;
            }
        };
        // Names must be unique: audit events and alerts cite a rule by name.
        if let Some(name) = raw.name.as_deref() {
            if let Some(first) = names.insert(name.to_string(), index) {
                at.error(
                    sink,
                    "name",
                    format!("duplicate rule name {name:?} (also rules[{first}])"),
                );
            }
        }
        let before = sink.errors.len();
        let rule = compile_rule(&at, index, raw, roles, sink);
        if sink.errors.len() == before {
            rules.push(rule);
        }
    }
    rules
}

/// Compile one rule; errors go to `sink` and the returned value is then discarded.
fn compile_rule(
    at: &At,
    index: usize,
    raw: RawRule,
    roles: &BTreeSet<String>,
    sink: &mut Sink,
) -> Rule {
    let name = match raw.name {
        Some(name) if !name.trim().is_empty() => name,
        _ => {
            at.error(
                sink,
                "name",
                "every rule needs a non-empty name (audit events cite it)",
            );
            String::new()
        }
    };
    let classes = rule_classes(at, raw.class, raw.at_least == Some(true), sink);
    for (key, list) in [("roles", &raw.roles), ("except_roles", &raw.except_roles)] {
        if let Some(list) = list {
            check_role_refs(at.file, &format!("{}.{key}", at.path), list, roles, sink);
        }
    }
    let (action, severity, mode) = outcome(at, [&raw.action, &raw.severity, &raw.mode], sink);
    Rule {
        name,
        classes,
        rows_per_query: at_least_one(at, "rows_per_query", raw.rows_per_query, sink),
        rows_per_session: at_least_one(at, "rows_per_session", raw.rows_per_session, sink),
        require_approval: raw.require_approval.unwrap_or(false),
        outside_hours: raw.outside_hours.as_deref().and_then(|text| {
            parse_business_hours(text)
                .map_err(|reason| at.error(sink, "outside_hours", reason))
                .ok()
        }),
        statement: raw
            .statement
            .as_deref()
            .and_then(|text| statement(at, text, sink)),
        classes_together: classes_together(at, raw.classes_together.as_deref(), sink),
        roles: raw.roles,
        except_roles: raw.except_roles.unwrap_or_default(),
        action,
        severity,
        mode,
        index,
    }
}

/// `class` (one or a list) expanded for `at_least`; no `class` means every class.
fn rule_classes(at: &At, class: Option<OneOrMany>, at_least: bool, sink: &mut Sink) -> Vec<Class> {
    let Some(class) = class else {
        if at_least {
            at.error(sink, "at_least", "at_least needs `class`");
        }
        return ALL_CLASSES.to_vec();
    };
    let mut classes = match class {
        // A single class keeps the key path `class`; list items get `class[i]`.
        OneOrMany::One(text) => match parse_class(&text) {
            Ok(c) => vec![c],
            Err(reason) => {
                at.error(sink, "class", reason);
                Vec::new()
            }
        },
        OneOrMany::Many(texts) => {
            if texts.is_empty() {
                at.error(
                    sink,
                    "class",
                    "empty class list (omit `class` to match every class)",
                );
            }
            parse_classes(at, "class", &texts, sink)
        }
    };
    if let (true, Some(&lowest)) = (at_least, classes.iter().min()) {
        classes = ALL_CLASSES
            .iter()
            .copied()
            .filter(|c| *c >= lowest)
            .collect();
    }
    classes.sort();
    classes
}

fn parse_classes(at: &At, key: &str, texts: &[String], sink: &mut Sink) -> Vec<Class> {
    let mut classes = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let item = format!("{key}[{i}]");
        match parse_class(text) {
            Ok(c) if !classes.contains(&c) => classes.push(c),
            Ok(_) => at.error(sink, &item, format!("class {text} is listed twice")),
            Err(reason) => at.error(sink, &item, reason),
        }
    }
    classes
}

fn classes_together(at: &At, texts: Option<&[String]>, sink: &mut Sink) -> Vec<Class> {
    let Some(texts) = texts else {
        return Vec::new();
    };
    let classes = parse_classes(at, "classes_together", texts, sink);
    if texts.len() < 2 {
        at.error(
            sink,
            "classes_together",
            "classes_together needs at least two classes",
        );
    }
    classes
}

/// Row thresholds start at 1: a threshold of 0 would fire on every statement, which a
/// rule without the condition already says.
fn at_least_one(at: &At, key: &str, value: Option<u64>, sink: &mut Sink) -> Option<u64> {
    if value == Some(0) {
        at.error(sink, key, format!("{key} must be at least 1"));
    }
    value
}

fn statement(at: &At, text: &str, sink: &mut Sink) -> Option<StatementKindMatch> {
    let parsed = StatementKindMatch::parse(text);
    if parsed.is_none() {
        let expected = StatementKindMatch::NAMES.join(", ");
        at.error(
            sink,
            "statement",
            format!("unknown statement kind {text:?} (expected one of {expected})"),
        );
    }
    parsed
}

/// `action` (required), `severity` (MEDIUM unless given), `mode` (enforce unless given).
fn outcome(
    at: &At,
    [action, severity, mode]: [&Option<String>; 3],
    sink: &mut Sink,
) -> (RuleAction, Severity, RuleMode) {
    let action = match action.as_deref() {
        Some("allow") => RuleAction::Allow,
        Some("alert") => RuleAction::Alert,
        Some("block") => RuleAction::Block,
        Some(text) => {
            at.error(
                sink,
                "action",
                format!("unknown action {text:?} (expected one of allow, alert, block)"),
            );
            RuleAction::Alert
        }
        None => {
            at.error(
                sink,
                "action",
                "missing action (expected one of allow, alert, block)",
            );
            RuleAction::Alert
        }
    };
    let severity = match severity.as_deref() {
        None | Some("MEDIUM") => Severity::Medium,
        Some("LOW") => Severity::Low,
        Some("HIGH") => Severity::High,
        Some("CRITICAL") => Severity::Critical,
        Some(text) => {
            let reason =
                format!("unknown severity {text:?} (expected one of CRITICAL, HIGH, MEDIUM, LOW)");
            at.error(sink, "severity", reason);
            Severity::Medium
        }
    };
    let mode = match mode.as_deref() {
        None | Some("enforce") => RuleMode::Enforce,
        Some("monitor") => RuleMode::Monitor,
        Some(text) => {
            at.error(
                sink,
                "mode",
                format!("unknown mode {text:?} (expected monitor or enforce)"),
            );
            RuleMode::Enforce
        }
    };
    (action, severity, mode)
}
