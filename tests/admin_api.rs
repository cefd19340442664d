//! The admin API through a running proxy: bearer-token auth, approvals (grant, refusals,
//! list, revoke, audit, persistence across a restart), locks, and policy reloads over
//! HTTP and on file change.

mod support;

use pgvigil::admin::client::call;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::proxy::{ProxyOptions, TestProxy};

const TOKEN: &str = "test-admin-token-0123456789";

const POLICY: &str = "\
default_class: INTERNAL
roles:
  SEC_ADMIN: [ \"approval:grant\", \"public:*\", \"internal:*\" ]
  SUPPORT:   [ \"public:read\", \"internal:read\" ]
principals:
  alice: [ SEC_ADMIN ]
  bob:   [ SUPPORT ]
";

async fn admin(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    admin_with(addr, method, path, Some(TOKEN), body).await
}

async fn admin_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let body = body.map(|b| b.to_string());
    let resp = call(
        &addr.to_string(),
        method,
        path,
        &headers,
        body.as_deref().map(str::as_bytes),
        Duration::from_secs(10),
    )
    .await
    .expect("admin call");
    let json = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    (resp.status, json)
}

fn grant(approver: &str, user: &str) -> Value {
    json!({"approver": approver, "user": user, "class": "RESTRICTED", "for": "2h", "reason": "TICKET-7"})
}

fn start(policy_path: &Path, approvals: &Path) -> TestProxy {
    TestProxy::start_with(ProxyOptions {
        classification: Some(policy_path.to_path_buf()),
        admin_token: Some(TOKEN.into()),
        approvals_file: Some(approvals.to_path_buf()),
        policy_poll: Some(Duration::from_millis(200)),
        ..ProxyOptions::default()
    })
}

fn approval_events(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "approval")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_requires_the_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let proxy = start(&policy, &dir.path().join("approvals.json"));
    let addr = proxy.admin_addr.expect("admin endpoint");
    let (status, body) = admin_with(addr, "GET", "/health", None, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].as_str().unwrap().contains("bearer"), "{body}");
    let (status, _) =
        admin_with(addr, "GET", "/health", Some("wrong-token-0123456789"), None).await;
    assert_eq!(status, 401);
    let (status, _) = admin_with(
        addr,
        "POST",
        "/approvals",
        Some("x"),
        Some(grant("alice", "bob")),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(admin(addr, "GET", "/health", None).await.0, 200);
    assert_eq!(
        admin(addr, "GET", "/ready", None).await,
        (200, json!({"ready": true}))
    );
    assert_eq!(admin(addr, "GET", "/nope", None).await.0, 404);
    assert_eq!(admin(addr, "PUT", "/approvals", None).await.0, 405);
    // Bad input is a 4xx with a JSON error, never a dropped connection.
    let resp = call(
        &addr.to_string(),
        "POST",
        "/approvals",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        Some(b"{not json"),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 400);
    // The unauthenticated requests granted nothing.
    assert_eq!(
        admin(addr, "GET", "/approvals", None).await.1,
        json!({"approvals": []})
    );
    proxy.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_are_granted_refused_listed_revoked_audited_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let approvals = dir.path().join("approvals.json");
    let proxy = start(&policy, &approvals);
    let addr = proxy.admin_addr.unwrap();

    let (status, granted) = admin(addr, "POST", "/approvals", Some(grant("alice", "bob"))).await;
    assert_eq!(status, 201, "{granted}");
    let id = granted["id"].as_str().unwrap().to_owned();
    assert!(
        id.len() >= 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(granted["user"], "bob");
    assert_eq!(granted["class"], "RESTRICTED");
    assert!(granted["expires_at"].as_str().unwrap().ends_with("+00:00"));

    let (status, body) = admin(addr, "POST", "/approvals", Some(grant("alice", "alice"))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("own"), "{body}");
    let (status, body) = admin(addr, "POST", "/approvals", Some(grant("bob", "alice"))).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("approval:grant"),
        "{body}"
    );
    let mut long = grant("alice", "bob");
    long["for"] = "45d".into();
    let (status, body) = admin(addr, "POST", "/approvals", Some(long)).await;
    assert_eq!(status, 422, "{body}");
    let mut table = grant("alice", "bob");
    table.as_object_mut().unwrap().remove("class");
    table["table"] = "public.customers".into();
    let (status, by_table) = admin(addr, "POST", "/approvals", Some(table)).await;
    assert_eq!(status, 201, "{by_table}");
    let table_id = by_table["id"].as_str().unwrap().to_owned();

    let (_, list) = admin(addr, "GET", "/approvals", None).await;
    let ids: Vec<&str> = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(ids.contains(&id.as_str()) && ids.contains(&table_id.as_str()));
    let (status, _) = admin(addr, "DELETE", &format!("/approvals/{table_id}"), None).await;
    assert_eq!(status, 200);
    let events = proxy.shutdown();

    let approvals_events = approval_events(&events);
    let outcomes: Vec<&str> = approvals_events
        .iter()
        .map(|e| e["detail"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["granted", "refused", "refused", "refused", "granted", "revoked"],
        "{approvals_events:#?}"
    );
    let first = &approvals_events[0];
    assert_eq!(first["actor"], "alice");
    assert_eq!(first["user"], "bob");
    assert_eq!(first["outcome"], "ok");
    assert_eq!(first["detail"]["id"], id.as_str());
    assert_eq!(first["detail"]["reason"], "TICKET-7");
    assert_eq!(first["roles"], json!(["SEC_ADMIN"]));
    assert_eq!(approvals_events[1]["outcome"], "blocked");
    assert_eq!(approvals_events[1]["sqlstate"], "42501");

    // A restart with the same approvals file keeps the approval in force.
    let proxy = start(&policy, &approvals);
    let addr = proxy.admin_addr.unwrap();
    let (_, list) = admin(addr, "GET", "/approvals", None).await;
    let list = list["approvals"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["approver"], "alice");
    let (status, revoked) = admin(addr, "DELETE", &format!("/approvals/{id}"), None).await;
    assert_eq!((status, revoked["revoked"].clone()), (200, json!(true)));
    assert_eq!(
        admin(addr, "DELETE", &format!("/approvals/{id}"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        admin(addr, "GET", "/approvals", None).await.1,
        json!({"approvals": []})
    );
    proxy.shutdown();
    let text = std::fs::read_to_string(&approvals).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_are_listed_and_cleared_with_an_audit_event() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let proxy = start(&policy, &dir.path().join("approvals.json"));
    let addr = proxy.admin_addr.unwrap();
    assert_eq!(
        admin(addr, "GET", "/locks", None).await,
        (200, json!({"locks": []}))
    );
    let (status, body) = admin(addr, "DELETE", "/locks/some%20user", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"], "some user");
    let events = proxy.shutdown();
    let clear = approval_events(&events);
    assert_eq!(clear.len(), 1);
    assert_eq!(clear[0]["detail"]["action"], "clear_lock");
    assert_eq!(clear[0]["user"], "some user");
}

fn reload_events(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "reload")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_reload_applies_a_valid_policy_and_keeps_the_old_one_when_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    // No file polling here: only POST /reload may change the policy.
    let proxy = TestProxy::start_with(ProxyOptions {
        classification: Some(policy.clone()),
        admin_token: Some(TOKEN.into()),
        policy_poll: Some(Duration::from_secs(3600)),
        ..ProxyOptions::default()
    });
    let addr = proxy.admin_addr.unwrap();
    assert_eq!(
        admin(addr, "POST", "/approvals", Some(grant("carol", "bob")))
            .await
            .0,
        403
    );

    std::fs::write(&policy, format!("{POLICY}  carol: [ SEC_ADMIN ]\n")).unwrap();
    let (status, body) = admin(addr, "POST", "/reload", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "ok");
    assert_eq!(
        admin(addr, "POST", "/approvals", Some(grant("carol", "bob")))
            .await
            .0,
        201
    );

    std::fs::write(&policy, "roles:\n  SEC_ADMIN: [ \"approval:sign\" ]\n").unwrap();
    let (status, body) = admin(addr, "POST", "/reload", None).await;
    assert_eq!(status, 422, "{body}");
    let errors = body["errors"].to_string();
    assert!(
        errors.contains("policy.yaml") && errors.contains("approval:sign"),
        "{body}"
    );
    // The previous policy (carol may grant) is still in force.
    assert_eq!(
        admin(addr, "POST", "/approvals", Some(grant("carol", "bob")))
            .await
            .0,
        201
    );

    let events = proxy.shutdown();
    let reloads = reload_events(&events);
    assert_eq!(reloads.len(), 2, "{reloads:#?}");
    assert_eq!(reloads[0]["outcome"], "ok");
    assert_eq!(reloads[0]["detail"]["trigger"], "admin");
    assert_eq!(reloads[1]["outcome"], "error");
    assert_eq!(reloads[1]["sqlstate"], "F0000");
    assert!(reloads[1]["detail"]["errors"]
        .to_string()
        .contains("approval:sign"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_policy_file_is_reloaded_and_an_invalid_change_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy_dir = dir.path().join("classification");
    std::fs::create_dir(&policy_dir).unwrap();
    let policy = policy_dir.join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let proxy = start(&policy_dir, &dir.path().join("approvals.json"));
    let addr = proxy.admin_addr.unwrap();
    assert_eq!(
        admin(addr, "POST", "/approvals", Some(grant("dave", "bob")))
            .await
            .0,
        403
    );

    std::fs::write(&policy, format!("{POLICY}  dave: [ SEC_ADMIN ]\n")).unwrap();
    let mut status = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        status = admin(addr, "POST", "/approvals", Some(grant("dave", "bob")))
            .await
            .0;
        if status == 201 {
            break;
        }
    }
    assert_eq!(status, 201, "the changed file was not reloaded");

    // A broken edit is refused; dave keeps the right the valid policy gave.
    std::fs::write(policy_dir.join("zz-broken.yaml"), "tables: [unclosed\n").unwrap();
    let mut refused = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if reload_events(&proxy.events_now())
            .iter()
            .any(|e| e["outcome"] == "error")
        {
            refused = true;
            break;
        }
    }
    assert!(refused, "the broken file did not cause a refused reload");
    assert_eq!(
        admin(addr, "POST", "/approvals", Some(grant("dave", "bob")))
            .await
            .0,
        201
    );
    let events = proxy.shutdown();
    let reloads = reload_events(&events);
    assert_eq!(reloads[0]["detail"]["trigger"], "file_change");
    assert_eq!(reloads[0]["outcome"], "ok");
    assert!(reloads
        .iter()
        .any(|e| e["outcome"] == "error"
            && e["detail"]["errors"].to_string().contains("zz-broken.yaml")));
}

/// A lock made by real failed logins through the proxy is listed and, once cleared by an
/// admin, the right password works again before `lock_for` has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_login_lock_is_listed_and_cleared_by_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "default_class: INTERNAL\nsecurity:\n  failed_logins: { lock: 3/5m, lock_for: 1h }\n",
    )
    .unwrap();
    let db = support::fresh_database("lockclear");
    let user = support::create_md5_role("lockclear", "right-password");
    let proxy = start(&policy, &dir.path().join("approvals.json"));
    let addr = proxy.admin_addr.unwrap();
    let connect = |pw: &'static str| {
        let conn = proxy.conn_str(&db, &user, Some(pw));
        async move { support::connect(&conn).await }
    };
    for _ in 0..3 {
        let err = connect("wrong").await.expect_err("wrong password refused");
        assert_eq!(err.code().map(|c| c.code()), Some("28P01"), "{err}");
    }
    let err = connect("right-password")
        .await
        .expect_err("locked at the proxy");
    assert_eq!(err.code().map(|c| c.code()), Some("28000"), "{err}");
    let (status, locks) = admin(addr, "GET", "/locks", None).await;
    assert_eq!(status, 200);
    assert_eq!(locks["locks"][0]["user"], user.as_str(), "{locks}");
    let (status, body) = admin(addr, "DELETE", &format!("/locks/{user}"), None).await;
    assert_eq!(status, 200, "{body}");
    let client = connect("right-password")
        .await
        .expect("login works after the clear");
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    drop(client);
    let events = proxy.shutdown();
    assert!(events
        .iter()
        .any(|e| e["kind"] == "alert" && e["user"] == user.as_str()));
    assert!(approval_events(&events)
        .iter()
        .any(|e| e["detail"]["action"] == "clear_lock"));
}
