//! `pgvigil keys generate|rotate|list` and `check --keyring` through the binary: exit codes,
//! messages, and that no key material is ever printed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::path::Path;
use std::process::{Command, Output};

const MASTER: [u8; 32] = [0x11; 32];
const OTHER: [u8; 32] = [0x22; 32];

fn pgvigil(master: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgvigil"));
    cmd.env_remove("PGVIGIL_MASTER_KEY");
    if let Some(m) = master {
        cmd.env("PGVIGIL_MASTER_KEY", m);
    }
    cmd
}

fn b64(key: &[u8; 32]) -> String {
    STANDARD.encode(key)
}

fn keys(master: Option<&str>, action: &str, keyring: &Path) -> Output {
    pgvigil(master)
        .args(["keys", action, "--keyring"])
        .arg(keyring)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Output must not contain the master key in any usual encoding.
fn assert_no_key_material(out: &Output) {
    let all = text(out);
    for key in [MASTER, OTHER] {
        assert!(!all.contains(&b64(&key)), "{all}");
        assert!(!all.contains(&b64(&key)[..12]), "{all}");
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!all.contains(&hex[..16]), "{all}");
    }
}

#[test]
fn generate_rotate_list() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("keyring.json");
    let master = b64(&MASTER);

    let out = keys(Some(&master), "generate", &ring);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("created with active key k1-"),
        "{}",
        text(&out)
    );
    assert_no_key_material(&out);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ring).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "keyring is readable by others: {mode:o}");
    }

    // Generating again never overwrites.
    let before = std::fs::read_to_string(&ring).unwrap();
    let out = keys(Some(&master), "generate", &ring);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&ring).unwrap(), before);

    let out = keys(Some(&master), "rotate", &ring);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("new active key k2-"), "{}", text(&out));
    assert_no_key_material(&out);

    // list needs no master key.
    let out = keys(None, "list", &ring);
    assert!(out.status.success(), "{}", text(&out));
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 2, "{listing}");
    assert!(
        lines[0].starts_with("k1-") && !lines[0].contains("active"),
        "{listing}"
    );
    assert!(
        lines[1].starts_with("k2-") && lines[1].ends_with("active"),
        "{listing}"
    );
    assert!(!listing.contains("wrapped"), "{listing}");
    assert_no_key_material(&out);

    // The file itself holds wrapped keys only.
    let file = std::fs::read_to_string(&ring).unwrap();
    assert!(!file.contains(&b64(&MASTER)));
    let json: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["keys"].as_array().unwrap().len(), 2);
    assert_eq!(json["active"], json["keys"][1]["id"]);

    // check --keyring: ok with the right key, fresh key so no rotation warning.
    let out = pgvigil(Some(&master))
        .args(["check", "--classification"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("classification"))
        .arg("--keyring")
        .arg(&ring)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("rotation period"), "{}", text(&out));
    assert_no_key_material(&out);
}

#[test]
fn wrong_master_key_is_a_clear_error_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("keyring.json");
    assert!(keys(Some(&b64(&MASTER)), "generate", &ring)
        .status
        .success());
    let before = std::fs::read_to_string(&ring).unwrap();

    let out = keys(Some(&b64(&OTHER)), "rotate", &ring);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong master key?"), "{err}");
    assert!(err.contains("keyring.json"), "{err}");
    assert_no_key_material(&out);
    assert_eq!(std::fs::read_to_string(&ring).unwrap(), before);

    let out = pgvigil(Some(&b64(&OTHER)))
        .args(["check", "--classification"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("classification"))
        .arg("--keyring")
        .arg(&ring)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("wrong master key?"), "{}", text(&out));
}

#[test]
fn missing_or_malformed_master_key_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("keyring.json");
    let cases: [(Option<&str>, &str); 4] = [
        (None, "PGVIGIL_MASTER_KEY is not set"),
        (Some(""), "PGVIGIL_MASTER_KEY is not set"),
        (Some("not base64!"), "not valid base64"),
        (Some("AAAA"), "must be exactly 32"),
    ];
    for (master, message) in cases {
        for action in ["generate", "rotate"] {
            let out = keys(master, action, &ring);
            assert_eq!(out.status.code(), Some(2), "{action}: {}", text(&out));
            assert!(text(&out).contains(message), "{action}: {}", text(&out));
        }
    }
    assert!(!ring.exists());
}

#[test]
fn missing_or_invalid_keyring_file() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("absent.json");
    let master = b64(&MASTER);
    // A file that cannot be read is an I/O failure: exit 1.
    for action in ["rotate", "list"] {
        let out = keys(Some(&master), action, &ring);
        assert_eq!(out.status.code(), Some(1), "{action}: {}", text(&out));
        assert!(text(&out).contains("absent.json"), "{}", text(&out));
    }
    // Invalid content is bad input: exit 2, naming the file.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"version\": 7, \"active\": \"k1\", \"keys\": []}").unwrap();
    let out = keys(Some(&master), "list", &bad);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("bad.json") && text(&out).contains("version 7"));
    // Bad usage: no --keyring.
    let out = pgvigil(Some(&master))
        .args(["keys", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_warns_about_an_old_active_key_and_a_missing_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("keyring.json");
    assert!(keys(Some(&b64(&MASTER)), "generate", &ring)
        .status
        .success());
    // Backdate the key (created_at is not authenticated; only the age check reads it).
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ring).unwrap()).unwrap();
    json["keys"][0]["created_at"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(&ring, json.to_string()).unwrap();

    let out = pgvigil(None)
        .args(["check", "--classification"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("classification"))
        .arg("--keyring")
        .arg(&ring)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rotation period"), "{stdout}");
    assert!(stdout.contains("keys rotate"), "{stdout}");
    assert!(stdout.contains("PGVIGIL_MASTER_KEY is not set"), "{stdout}");
}
