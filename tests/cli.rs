//! The command line: exit codes and messages of `check` and `serve` on good and bad input.

use std::process::Command;

fn pgvigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pgvigil"))
}

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn check_accepts_the_shipped_classification() {
    let out = pgvigil()
        .args(["check", "--classification"])
        .arg(repo("classification"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}

#[test]
fn check_names_file_key_path_and_reason_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "default_class: INTERNAL\ntables:\n  public.customers:\n    columns:\n      ssn: { class: SECRET }\n",
    )
    .unwrap();
    let out = pgvigil()
        .args(["check", "--classification"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml"), "{err}");
    assert!(
        err.contains("tables.public.customers.columns.ssn.class"),
        "{err}"
    );
    assert!(err.contains("SECRET"), "{err}");

    std::fs::write(&file, "default_class: INTERNAL\ndefault_class: PUBLIC\n").unwrap();
    let out = pgvigil()
        .args(["check", "--classification"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("default_class"));

    std::fs::write(&file, "tables: [unclosed\n").unwrap();
    let out = pgvigil()
        .args(["check", "--classification"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn serve_refuses_bad_configuration_with_exit_2() {
    let out = pgvigil()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("upstream"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "tables:\n  public.t: { class: PUBLIC, colour: red }\n",
    )
    .unwrap();
    let out = pgvigil()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:1",
            "--classification",
        ])
        .arg(&file)
        .arg("--audit-log")
        .arg(dir.path().join("a.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));

    let config = dir.path().join("pgvigil.yaml");
    std::fs::write(&config, "upstream: 127.0.0.1:5432\nlisten_on: x\n").unwrap();
    let out = pgvigil()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_on"));
}

#[test]
fn serve_reports_an_unwritable_audit_log_as_a_runtime_failure() {
    let out = pgvigil()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:1",
            "--audit-log",
            "/nonexistent/dir/a.jsonl",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir/a.jsonl"));
}
