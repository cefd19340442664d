//! The real binary: `serve --admin` refuses to start without PGVIGIL_ADMIN_TOKEN,
//! `pgvigil approve` grants, lists and revokes against a running `pgvigil serve` (exit 1
//! on a refusal, 2 on bad usage), and SIGHUP reloads the policy (an invalid one is
//! refused and the old one stays).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "cli-test-token-0123456789abcdef";

const POLICY: &str = "\
roles:
  SEC_ADMIN: [ \"approval:grant\" ]
  SUPPORT:   [ \"public:read\" ]
principals:
  alice: [ SEC_ADMIN ]
  bob:   [ SUPPORT ]
";

fn pgvigil() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgvigil"));
    c.env_remove("PGVIGIL_ADMIN_TOKEN").env("RUST_LOG", "warn");
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    admin: String,
    audit: PathBuf,
}

impl Server {
    fn start(dir: &Path, policy: &Path) -> Server {
        let admin = format!("127.0.0.1:{}", free_port());
        let audit = dir.join("audit.jsonl");
        let child = pgvigil()
            .env("PGVIGIL_ADMIN_TOKEN", TOKEN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "127.0.0.1:1",
            ])
            .arg("--classification")
            .arg(policy)
            .arg("--audit-log")
            .arg(&audit)
            .args(["--admin", &admin])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            admin,
            audit,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&server.admin).is_err() {
            assert!(Instant::now() < deadline, "serve --admin did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn approve(&self, args: &[&str]) -> Output {
        pgvigil()
            .env("PGVIGIL_ADMIN_TOKEN", TOKEN)
            .arg("approve")
            .args(args)
            .args(["--admin", &self.admin])
            .output()
            .unwrap()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn stop(mut self) -> Vec<serde_json::Value> {
        self.signal("TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
        self.events()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn serve_admin_without_a_token_is_refused_with_exit_2() {
    let out = pgvigil()
        .args([
            "serve",
            "--upstream",
            "127.0.0.1:1",
            "--admin",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("PGVIGIL_ADMIN_TOKEN"),
        "{}",
        text(&out.stderr)
    );
    let out = pgvigil()
        .env("PGVIGIL_ADMIN_TOKEN", "short")
        .args([
            "serve",
            "--upstream",
            "127.0.0.1:1",
            "--admin",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("16"), "{}", text(&out.stderr));
}

#[test]
fn approve_grants_lists_and_revokes_through_a_running_serve() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let server = Server::start(dir.path(), &policy);

    let out = server.approve(&[
        "--approver",
        "alice",
        "--user",
        "bob",
        "--class",
        "RESTRICTED",
        "--for",
        "30m",
        "--reason",
        "INC-1234 customer escalation",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    assert!(stdout.starts_with("approval "), "{stdout}");
    let id = stdout.split_whitespace().nth(1).unwrap().to_owned();
    assert!(stdout.contains("until 20"), "{stdout}");

    let out = server.approve(&[
        "--approver",
        "bob",
        "--user",
        "bob",
        "--table",
        "public.customers",
        "--for",
        "1h",
        "--reason",
        "self",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("403"), "{}", text(&out.stderr));

    // Bad usage: both --class and --table, a missing --reason, no token.
    let out = server.approve(&[
        "--approver",
        "alice",
        "--user",
        "bob",
        "--class",
        "PUBLIC",
        "--table",
        "a.b",
        "--for",
        "1h",
        "--reason",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = server.approve(&[
        "--approver",
        "alice",
        "--user",
        "bob",
        "--class",
        "PUBLIC",
        "--for",
        "1h",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = pgvigil()
        .args(["approve", "--list", "--admin", &server.admin])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("PGVIGIL_ADMIN_TOKEN"));
    // A wrong token is a refusal from the server.
    let out = pgvigil()
        .env("PGVIGIL_ADMIN_TOKEN", "wrong-token-0123456789")
        .args(["approve", "--list", "--admin", &server.admin])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));

    let out = server.approve(&["--list"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains(&id), "{}", text(&out.stdout));
    let out = server.approve(&["--revoke", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.approve(&["--revoke", &id]);
    assert_eq!(out.status.code(), Some(1));
    let out = server.approve(&["--list"]);
    assert!(
        text(&out.stdout).contains("no approvals"),
        "{}",
        text(&out.stdout)
    );

    let events = server.stop();
    let outcomes: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "approval")
        .map(|e| e["detail"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["granted", "refused", "revoked"]);
}

#[test]
fn sighup_reloads_the_policy_and_an_invalid_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let server = Server::start(dir.path(), &policy);
    let grant = [
        "--approver",
        "carol",
        "--user",
        "bob",
        "--class",
        "RESTRICTED",
        "--for",
        "1h",
        "--reason",
        "r",
    ];
    assert_eq!(server.approve(&grant).status.code(), Some(1));

    // Write the new policy next to the old one and rename it in place (atomic, like a
    // deployment would), then SIGHUP. The file watcher may see it first; either way one
    // reload applies it.
    let staged = dir.path().join("staged.tmp");
    std::fs::write(&staged, format!("{POLICY}  carol: [ SEC_ADMIN ]\n")).unwrap();
    std::fs::rename(&staged, &policy).unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if server.approve(&grant).status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "the reload did not apply");
        std::thread::sleep(Duration::from_millis(100));
    }
    let reloads = |events: &[serde_json::Value]| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|e| e["kind"] == "reload")
            .cloned()
            .collect()
    };
    // A SIGHUP with an unchanged file reloads it too (trigger sighup).
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !reloads(&server.events())
        .iter()
        .any(|e| e["detail"]["trigger"] == "sighup")
    {
        assert!(Instant::now() < deadline, "no sighup reload event");
        std::thread::sleep(Duration::from_millis(100));
    }

    std::fs::write(&staged, "roles: { SEC_ADMIN: [ \"approval:sign\" ] }\n").unwrap();
    std::fs::rename(&staged, &policy).unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !reloads(&server.events())
        .iter()
        .any(|e| e["outcome"] == "error")
    {
        assert!(Instant::now() < deadline, "no refused reload event");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Still running, still the old policy: carol may grant.
    assert!(server.approve(&grant).status.success());
    let events = server.stop();
    let refused = reloads(&events)
        .into_iter()
        .find(|e| e["outcome"] == "error")
        .unwrap();
    assert!(
        refused["detail"]["errors"]
            .to_string()
            .contains("approval:sign"),
        "{refused}"
    );
}

#[test]
fn a_corrupt_approvals_file_stops_serve_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    // The default approvals file sits next to the audit log.
    std::fs::write(dir.path().join("pgvigil-approvals.json"), "[{broken").unwrap();
    let out = pgvigil()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:1",
        ])
        .arg("--audit-log")
        .arg(&audit)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("pgvigil-approvals.json"),
        "{}",
        text(&out.stderr)
    );
}
