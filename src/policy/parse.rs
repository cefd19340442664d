//! One file's text -> `RawFile`, or `PolicyError`s with key paths (syntax, duplicates, shape).

use super::dupes;
use super::raw::RawFile;
use super::PolicyError;
use std::path::Path;

/// Key path used for errors about the document as a whole (empty file, not a mapping).
pub(crate) const ROOT: &str = "(document)";

/// Parse one file's text. Errors stop at this stage: a file with a syntax error, duplicate
/// keys or a wrong shape at the top level is not compiled any further.
pub(crate) fn parse_file(file: &Path, text: &str) -> Result<RawFile, Vec<PolicyError>> {
    let error = |key_path: &str, reason: String| PolicyError {
        file: file.to_path_buf(),
        key_path: key_path.to_string(),
        reason,
    };
    let (value, duplicates) = match dupes::parse_value(text) {
        Ok(parsed) => parsed,
        Err(e) => return Err(vec![yaml_syntax_error(file, &e)]),
    };
    if !duplicates.is_empty() {
        return Err(duplicates
            .into_iter()
            .map(|d| {
                error(
                    &d.key_path,
                    "duplicate key (each key may appear only once)".into(),
                )
            })
            .collect());
    }
    match &value {
        serde_yaml::Value::Null => return Err(vec![error(ROOT, "file is empty".into())]),
        serde_yaml::Value::Mapping(_) => {}
        _ => {
            return Err(vec![error(
                ROOT,
                "expected a mapping of policy keys (dataset, tables, roles, ...)".into(),
            )])
        }
    }
    serde_path_to_error::deserialize::<_, RawFile>(value).map_err(|e| {
        let (path, reason) = describe(&e);
        vec![error(if path.is_empty() { ROOT } else { &path }, reason)]
    })
}

/// Syntax errors carry a line and column; they become the key path since there is no key.
fn yaml_syntax_error(file: &Path, e: &serde_yaml::Error) -> PolicyError {
    let key_path = match e.location() {
        Some(loc) => format!("line {} column {}", loc.line(), loc.column()),
        None => ROOT.to_string(),
    };
    // serde_yaml repeats the location at the end of its message; drop it since the key path
    // already says where.
    let message = e.to_string();
    let message = match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    PolicyError {
        file: file.to_path_buf(),
        key_path,
        reason: format!("invalid YAML: {message}"),
    }
}

/// (key path, reason) of a shape error from deserializing a `Value`, in the wording of
/// the rest of the loader: `unknown key "foo" (expected one of a, b)`.
pub(crate) fn describe(e: &serde_path_to_error::Error<serde_yaml::Error>) -> (String, String) {
    let path = if e.path().iter().next().is_none() {
        String::new()
    } else {
        e.path().to_string()
    };
    let message = e.inner().to_string();
    let reason = if let Some(rest) = message.strip_prefix("unknown field ") {
        // "unknown field `foo`, expected one of `a`, `b`" / "..., expected `a`"
        let (name, expected) = rest.split_once(", ").unwrap_or((rest, ""));
        let name = name.trim_matches('`');
        let expected = expected.replace('`', "");
        let expected = expected.strip_prefix("expected ").unwrap_or(&expected);
        if expected.is_empty() || expected.starts_with("there are no") {
            format!("unknown key {name:?}")
        } else {
            format!("unknown key {name:?} (expected {expected})")
        }
    } else if message.contains("untagged enum OneOrMany") {
        "expected a class name or a list of class names".to_string()
    } else {
        user_words(&message)
    };
    (path, reason)
}

/// `prefix` + a relative path from `describe` (`[2].name` or `columns.ssn`).
pub(crate) fn join_relative(prefix: &str, relative: &str) -> String {
    if relative.is_empty() {
        prefix.to_string()
    } else if relative.starts_with('[') {
        format!("{prefix}{relative}")
    } else {
        dupes::join(prefix, relative)
    }
}

/// serde names the Rust target (`struct RawRule`, `a sequence`); say it in YAML terms.
fn user_words(message: &str) -> String {
    let message = match message.find("expected struct Raw") {
        Some(i) => format!("{}expected a mapping", &message[..i]),
        None => message.to_string(),
    };
    message
        .replace("a sequence", "a list")
        .replace("sequence,", "list,")
}
