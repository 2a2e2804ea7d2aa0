//! TestRegistration (Complement: tests/csapi/apidoc_register_test.go) and guests.

use glia_harness::client::unique_localpart;
use glia_harness::{Deployment, HsConfig};
use serde_json::{Value, json};

const REGISTER: &[&str] = &["_matrix", "client", "v3", "register"];

/// POST {} returns a set of flows, and m.login.dummy completes one of them.
#[tokio::test]
async fn test_registration_flows() {
    let d = Deployment::new(1).await;
    let body = d.client(0).request("POST", REGISTER, json!({})).await.must_status(401);
    let flows = body["flows"].as_array().expect("flows");
    assert!(!flows.is_empty(), "{body}");
    for f in flows {
        assert!(f["stages"].as_array().is_some_and(|s| s.iter().all(Value::is_string)), "{body}");
    }
    assert!(body["session"].is_string() || body["session"].is_null(), "{body}");
    d.destroy().await;
}

#[tokio::test]
async fn test_registration_creates_user_and_logs_in() {
    let d = Deployment::new(1).await;
    let c = d.client(0);
    let name = unique_localpart("reg");
    let body = c.register(&name, "sUp3rs3kr1t").await.must_status(200);
    let user_id = body["user_id"].as_str().expect("user_id");
    assert!(user_id.starts_with(&format!("@{name}:")), "{body}");
    assert!(body["access_token"].is_string() && body["device_id"].is_string(), "{body}");
    let alice = c.logged_in(&body, "sUp3rs3kr1t");
    let me =
        alice.must_do("GET", &["_matrix", "client", "v3", "account", "whoami"], Value::Null).await;
    assert_eq!(me["user_id"], user_id);
    assert_eq!(me["device_id"], body["device_id"]);
    d.destroy().await;
}

/// POST /register downcases capitals in usernames.
#[tokio::test]
async fn test_registration_downcases_capitals() {
    let d = Deployment::new(1).await;
    let name = unique_localpart("Shouty");
    let body = d.client(0).register(&name, "sUp3rs3kr1t").await.must_status(200);
    let user_id = body["user_id"].as_str().expect("user_id");
    assert!(user_id.starts_with(&format!("@{}:", name.to_lowercase())), "{body}");
    d.destroy().await;
}

/// POST /register returns the same device_id as that in the request, and the
/// initial_device_display_name names the device.
#[tokio::test]
async fn test_registration_keeps_device_id() {
    let d = Deployment::new(1).await;
    let body = d
        .client(0)
        .request(
            "POST",
            REGISTER,
            json!({"username": unique_localpart("dev"), "password": "sUp3rs3kr1t",
                   "device_id": "MYDEVICE", "initial_device_display_name": "My phone",
                   "auth": {"type": "m.login.dummy"}}),
        )
        .await
        .must_status(200);
    assert_eq!(body["device_id"], "MYDEVICE");
    let alice = d.client(0).logged_in(&body, "sUp3rs3kr1t");
    let dev = alice
        .must_do("GET", &["_matrix", "client", "v3", "devices", "MYDEVICE"], Value::Null)
        .await;
    assert_eq!(dev["display_name"], "My phone");
    d.destroy().await;
}

/// POST /register rejects registration of usernames with invalid characters.
#[tokio::test]
async fn test_registration_rejects_invalid_usernames() {
    let d = Deployment::new(1).await;
    let c = d.client(0);
    for ch in ['!', '"', ':', '?', '\\', '@', '[', ']', '{', '|', '}', '£', 'é', '\n', '\'', ' ']
    {
        let name = format!("user{ch}name");
        c.register(&name, "sUp3rs3kr1t").await.must_error(400, "M_INVALID_USERNAME");
    }
    d.destroy().await;
}

/// POST /register allows the special characters the spec permits.
#[tokio::test]
async fn test_registration_allows_permitted_symbols() {
    let d = Deployment::new(1).await;
    for ch in ['-', '.', '_', '=', '/'] {
        let name = format!("{}{ch}x", unique_localpart("sym"));
        let body = d.client(0).register(&name, "sUp3rs3kr1t").await.must_status(200);
        assert!(body["user_id"].as_str().is_some_and(|u| u.starts_with(&format!("@{name}:"))));
    }
    d.destroy().await;
}

/// POST /register rejects if user already exists (M_USER_IN_USE), and /register/available
/// says the same before registering.
#[tokio::test]
async fn test_registration_user_in_use_and_available() {
    let d = Deployment::new(1).await;
    let c = d.client(0);
    let name = unique_localpart("taken");
    let r = c
        .get(&["_matrix", "client", "v3", "register", "available", &format!("?username={name}")])
        .await;
    assert_eq!(r.must_status(200)["available"], true);
    c.register(&name, "sUp3rs3kr1t").await.must_status(200);
    c.register(&name, "another-password").await.must_error(400, "M_USER_IN_USE");
    let r = c
        .get(&["_matrix", "client", "v3", "register", "available", &format!("?username={name}")])
        .await;
    r.must_error(400, "M_USER_IN_USE");
    let r =
        c.get(&["_matrix", "client", "v3", "register", "available", "?username=not%21valid"]).await;
    r.must_error(400, "M_INVALID_USERNAME");
    d.destroy().await;
}

/// inhibit_login: the account is created but no session is returned.
#[tokio::test]
async fn test_registration_inhibit_login() {
    let d = Deployment::new(1).await;
    let c = d.client(0);
    let name = unique_localpart("inhibit");
    let body = c
        .request(
            "POST",
            REGISTER,
            json!({"username": name, "password": "sUp3rs3kr1t", "inhibit_login": true,
                   "auth": {"type": "m.login.dummy"}}),
        )
        .await
        .must_status(200);
    assert!(body["user_id"].is_string(), "{body}");
    assert!(body.get("access_token").is_none_or(Value::is_null), "{body}");
    assert!(body.get("device_id").is_none_or(Value::is_null), "{body}");
    c.must_login(&name, "sUp3rs3kr1t").await;
    d.destroy().await;
}

/// Non-ASCII passwords register and log in (SyTest: "registration accepts non-ascii passwords").
#[tokio::test]
async fn test_registration_non_ascii_password() {
    let d = Deployment::new(1).await;
    let name = unique_localpart("unicode");
    d.client(0).register(&name, "übers3kr1t — パスワード").await.must_status(200);
    d.client(0).must_login(&name, "übers3kr1t — パスワード").await;
    d.destroy().await;
}

/// kind=guest registers a guest when guests are allowed; guests cannot change passwords.
#[tokio::test]
async fn test_registration_guest() {
    let d = Deployment::new(1).await;
    let c = d.client(0);
    let body = c
        .request("POST", &["_matrix", "client", "v3", "register", "?kind=guest"], json!({}))
        .await
        .must_status(200);
    let guest = c.logged_in(&body, "");
    let me =
        guest.must_do("GET", &["_matrix", "client", "v3", "account", "whoami"], Value::Null).await;
    assert_eq!(me["user_id"], body["user_id"]);
    assert_eq!(me["is_guest"], true, "{me}");
    let r = guest
        .request(
            "POST",
            &["_matrix", "client", "v3", "account", "password"],
            json!({"new_password": "x"}),
        )
        .await;
    r.must_error(403, "M_GUEST_ACCESS_FORBIDDEN");
    d.destroy().await;
}

/// With registration and guests switched off (the seed's hardening), both are refused.
#[tokio::test]
async fn test_registration_disabled() {
    let cfg =
        HsConfig { enable_registration: false, allow_guest_access: false, ..Default::default() };
    let Some(d) = Deployment::with_config(1, cfg).await else {
        return;
    };
    let c = d.client(0);
    c.register("someone", "sUp3rs3kr1t").await.must_error(403, "M_FORBIDDEN");
    c.request("POST", REGISTER, json!({})).await.must_error(403, "M_FORBIDDEN");
    c.request("POST", &["_matrix", "client", "v3", "register", "?kind=guest"], json!({}))
        .await
        .must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}

/// Legacy r0 paths still work (older clients and bridges call them).
#[tokio::test]
async fn test_registration_r0_alias() {
    let d = Deployment::new(1).await;
    let name = unique_localpart("legacy");
    let r = d
        .client(0)
        .request(
            "POST",
            &["_matrix", "client", "r0", "register"],
            json!({"username": name, "password": "sUp3rs3kr1t", "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    r.must_status(200);
    d.destroy().await;
}

/// Start a registration UIA session with `params` (401), returning its session ID.
async fn start_session(c: &glia_harness::client::Client, params: Value) -> String {
    let body = c.request("POST", REGISTER, params).await.must_status(401);
    body["session"].as_str().expect("session").to_string()
}

fn dummy(session: &str) -> Value {
    json!({"type": "m.login.dummy", "session": session})
}

/// A UIA session remembers the first request's parameters: completing it with only
/// `auth` registers the username with the password, device ID and display name given
/// first (SyTest: "registration remembers parameters", "... accepts non-ascii passwords").
#[tokio::test]
async fn test_registration_remembers_parameters() {
    let d = Deployment::new(1).await;
    let c = d.client(0);
    let name = unique_localpart("remember");
    let password = "übers3kr1t";
    let session = start_session(
        &c,
        json!({"username": name, "password": password, "device_id": "XYZZY",
               "initial_device_display_name": "display_name"}),
    )
    .await;
    let body = c.request("POST", REGISTER, json!({"auth": dummy(&session)})).await.must_status(200);
    assert!(
        body["user_id"].as_str().is_some_and(|u| u.starts_with(&format!("@{name}:"))),
        "{body}"
    );
    assert_eq!(body["device_id"], "XYZZY", "{body}");
    let alice = c.logged_in(&body, password);
    let dev =
        alice.must_do("GET", &["_matrix", "client", "v3", "devices", "XYZZY"], Value::Null).await;
    assert_eq!(dev["display_name"], "display_name");
    c.must_login(&name, password).await;
    d.destroy().await;
}

/// `inhibit_login` given on the request that opened the session holds when the session
/// is completed without it.
#[tokio::test]
async fn test_registration_remembers_inhibit_login() {
    let d = Deployment::new(1).await;
    let c = d.client(0);
    let name = unique_localpart("inhibited");
    let session = start_session(
        &c,
        json!({"username": name, "password": "sUp3rs3kr1t", "inhibit_login": true}),
    )
    .await;
    let body = c.request("POST", REGISTER, json!({"auth": dummy(&session)})).await.must_status(200);
    assert!(
        body["user_id"].as_str().is_some_and(|u| u.starts_with(&format!("@{name}:"))),
        "{body}"
    );
    assert!(body.get("access_token").is_none_or(Value::is_null), "{body}");
    assert!(body.get("device_id").is_none_or(Value::is_null), "{body}");
    d.destroy().await;
}

/// Completing a registration session twice answers with the same account both times,
/// named or not, rather than M_USER_IN_USE (SyTest: "registration is idempotent, ...").
#[tokio::test]
async fn test_registration_idempotent_within_session() {
    let d = Deployment::new(1).await;
    let c = d.client(0);
    for username in [None, Some(unique_localpart("idem"))] {
        let mut req = json!({"password": "sUp3rs3kr1t"});
        if let Some(u) = &username {
            req["username"] = json!(u);
        }
        let session = start_session(&c, req.clone()).await;
        req["auth"] = dummy(&session);
        let first = c.request("POST", REGISTER, req.clone()).await.must_status(200);
        let again = c.request("POST", REGISTER, req.clone()).await.must_status(200);
        assert_eq!(first["user_id"], again["user_id"], "{first} {again}");
        assert!(again["access_token"].is_string(), "{again}");
        let user = c.logged_in(&again, "sUp3rs3kr1t");
        let me = user
            .must_do("GET", &["_matrix", "client", "v3", "account", "whoami"], Value::Null)
            .await;
        assert_eq!(me["user_id"], first["user_id"]);
        // Another session cannot take the name.
        if let Some(u) = &username {
            c.request("POST", REGISTER, json!({"username": u, "password": "x"}))
                .await
                .must_error(400, "M_USER_IN_USE");
        }
    }
    d.destroy().await;
}

/// A session whose requests never carried a password cannot register (400 M_MISSING_PARAM).
#[tokio::test]
async fn test_registration_session_without_password() {
    let d = Deployment::new(1).await;
    let c = d.client(0);
    let session = start_session(&c, json!({"username": unique_localpart("nopw")})).await;
    c.request("POST", REGISTER, json!({"auth": dummy(&session)}))
        .await
        .must_error(400, "M_MISSING_PARAM");
    d.destroy().await;
}
