//! Reading policy files: one file, or every `*.yaml` / `*.yml` of a directory in name order.
//! The only I/O in `policy`.

use super::compile::compile;
use super::parse::{parse_file, ROOT};
use super::{Policy, PolicyError, PolicyErrors};
use std::path::{Path, PathBuf};

pub(crate) fn load(path: &Path) -> Result<Policy, PolicyErrors> {
    let files = if path.is_dir() {
        list_dir(path)?
    } else {
        vec![path.to_path_buf()]
    };
    load_files(&files)
}

/// Parse every file (collecting errors from all of them), then compile if all parsed.
pub(crate) fn load_files(files: &[PathBuf]) -> Result<Policy, PolicyErrors> {
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                errors.push(io_error(file, &e));
                continue;
            }
        };
        match parse_file(file, &text) {
            Ok(raw) => parsed.push((file.clone(), raw)),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(PolicyErrors(errors));
    }
    compile(parsed).map_err(PolicyErrors)
}

/// Directory entries ending in `.yaml` or `.yml`, sorted by file name. Dot files are skipped
/// because editors leave them behind (`.#policy.yaml`, `.policy.yaml.swp`); a half-written
/// backup must not become part of the policy.
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, PolicyErrors> {
    let entries = std::fs::read_dir(dir).map_err(|e| PolicyErrors(vec![io_error(dir, &e)]))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| PolicyErrors(vec![io_error(dir, &e)]))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if is_yaml && !name.starts_with('.') && entry.path().is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(PolicyErrors(vec![PolicyError {
            file: dir.to_path_buf(),
            key_path: ROOT.to_string(),
            reason: "directory holds no *.yaml or *.yml files".to_string(),
        }]));
    }
    Ok(files)
}

fn io_error(file: &Path, e: &std::io::Error) -> PolicyError {
    PolicyError {
        file: file.to_path_buf(),
        key_path: ROOT.to_string(),
        reason: format!("cannot read: {e}"),
    }
}
