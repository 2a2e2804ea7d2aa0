//! Registration and access controls with Synapse's keys: token-authenticated registration
//! (`registration_requires_token`, spec "Token-authenticated registration"), the captcha
//! stage checked with a fake verifier on loopback, `password_config.policy`, guests off.
//! Each needs a configuration, so they skip against external servers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use glia_harness::client::unique_localpart;
use glia_harness::deployment::{admin_register, errcode};
use glia_harness::{Client, Deployment, HsConfig, wait_until};
use serde_json::{Value, json};

const REGISTER: &[&str] = &["_matrix", "client", "v3", "register"];
const PASSWORD: &str = "correct horse battery staple";

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64
}

fn stages(body: &Value) -> Vec<Vec<String>> {
    body["flows"]
        .as_array()
        .unwrap_or_else(|| panic!("no flows in {body}"))
        .iter()
        .map(|f| {
            f["stages"]
                .as_array()
                .expect("stages")
                .iter()
                .map(|s| s.as_str().expect("stage").to_string())
                .collect()
        })
        .collect()
}

/// Start a registration: the 401 challenge's session.
async fn start(c: &Client, username: &str) -> (String, Value) {
    let body = c
        .request("POST", REGISTER, json!({"username": username, "password": PASSWORD}))
        .await
        .must_status(401);
    (body["session"].as_str().expect("session").to_string(), body)
}

/// One UIA step of a registration.
async fn step(c: &Client, username: &str, auth: Value) -> glia_harness::Response {
    c.request("POST", REGISTER, json!({"username": username, "password": PASSWORD, "auth": auth}))
        .await
}

async fn admin(d: &Deployment) -> Client {
    let name = unique_localpart("admin");
    let body = admin_register(d.hs(0), &name, PASSWORD, true).await.must_status(200);
    d.client(0).logged_in(&body, PASSWORD)
}

async fn new_token(admin: &Client, body: Value) -> String {
    let r = admin
        .request("POST", &["_synapse", "admin", "v1", "registration_tokens", "new"], body)
        .await
        .must_status(200);
    r["token"].as_str().expect("token").to_string()
}

async fn validity(c: &Client, token: &str) -> glia_harness::Response {
    c.request(
        "GET",
        &[
            "_matrix",
            "client",
            "v1",
            "register",
            "m.login.registration_token",
            "validity",
            &format!("?token={token}"),
        ],
        Value::Null,
    )
    .await
}

async fn is_valid(c: &Client, token: &str) -> bool {
    validity(c, token).await.must_status(200)["valid"].as_bool().expect("valid is a boolean")
}

/// Register `username` with `token` then the dummy stage; the final response.
async fn register_with_token(c: &Client, username: &str, token: &str) -> glia_harness::Response {
    let (session, _) = start(c, username).await;
    let r = step(
        c,
        username,
        json!({"type": "m.login.registration_token", "token": token, "session": session}),
    )
    .await;
    if r.status != 401 || !r.json()["errcode"].is_null() {
        return r;
    }
    step(c, username, json!({"type": "m.login.dummy", "session": session})).await
}

/// With `registration_requires_token`, the flow is token then dummy; a valid token
/// registers, and its use is counted; unknown tokens are refused with 401 M_UNAUTHORIZED
/// in the UIA body.
#[tokio::test]
async fn test_token_gated_registration() {
    let cfg =
        HsConfig { extra_yaml: "registration_requires_token: true\n".into(), ..Default::default() };
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    let admin = admin(&d).await;
    let c = d.client(0);
    let name = unique_localpart("tok");
    let (_, body) = start(&c, &name).await;
    assert_eq!(stages(&body), vec![vec!["m.login.registration_token", "m.login.dummy"]], "{body}");

    // The dummy stage alone does not complete the flow.
    let r = c.register(&name, PASSWORD).await;
    let b = r.must_status(401);
    assert_eq!(b["completed"], json!(["m.login.dummy"]), "{b}");

    // Unknown token: 401 with M_UNAUTHORIZED, and the flow goes on.
    let (session, _) = start(&c, &name).await;
    let r = step(
        &c,
        &name,
        json!({"type": "m.login.registration_token", "token": "nope", "session": session}),
    )
    .await;
    let b = r.must_status(401);
    assert_eq!(errcode(&b), "M_UNAUTHORIZED", "{b}");
    assert_eq!(b["session"], session.as_str(), "{b}");
    assert!(b["flows"].is_array(), "the UIA state comes with the error: {b}");

    // A token with two uses: good for two registrations.
    let token = new_token(&admin, json!({"uses_allowed": 2})).await;
    assert!(is_valid(&c, &token).await);
    let r = register_with_token(&c, &name, &token).await;
    let b = r.must_status(200);
    assert!(b["user_id"].as_str().expect("user_id").starts_with(&format!("@{name}:")), "{b}");
    assert!(b["access_token"].is_string(), "{b}");
    let t = admin
        .get(&["_synapse", "admin", "v1", "registration_tokens", &token])
        .await
        .must_status(200);
    assert_eq!((t["pending"].clone(), t["completed"].clone()), (json!(0), json!(1)), "{t}");
    assert!(is_valid(&c, &token).await, "one use left");
    register_with_token(&c, &unique_localpart("tok"), &token).await.must_status(200);
    d.destroy().await;
}

/// A used-up token is refused and reported invalid; a token with one use left is held
/// (pending) by the registration that reserved it, so a second one cannot take it.
#[tokio::test]
async fn test_used_up_and_pending_tokens() {
    let cfg =
        HsConfig { extra_yaml: "registration_requires_token: true\n".into(), ..Default::default() };
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    let admin = admin(&d).await;
    let c = d.client(0);
    let token = new_token(&admin, json!({"uses_allowed": 1})).await;

    // Registration A reserves the only use...
    let a = unique_localpart("a");
    let (session_a, _) = start(&c, &a).await;
    let b = step(
        &c,
        &a,
        json!({"type": "m.login.registration_token", "token": token, "session": session_a}),
    )
    .await
    .must_status(401);
    assert_eq!(b["completed"], json!(["m.login.registration_token"]), "{b}");
    assert!(!is_valid(&c, &token).await, "the only use is pending");
    // ...so registration B is refused.
    let r = register_with_token(&c, &unique_localpart("b"), &token).await;
    assert_eq!(errcode(&r.must_status(401)), "M_UNAUTHORIZED");
    // A finishes.
    step(&c, &a, json!({"type": "m.login.dummy", "session": session_a})).await.must_status(200);
    let t = admin
        .get(&["_synapse", "admin", "v1", "registration_tokens", &token])
        .await
        .must_status(200);
    assert_eq!((t["pending"].clone(), t["completed"].clone()), (json!(0), json!(1)), "{t}");
    // Used up: refused, and invalid.
    assert!(!is_valid(&c, &token).await);
    let r = register_with_token(&c, &unique_localpart("c"), &token).await;
    assert_eq!(errcode(&r.must_status(401)), "M_UNAUTHORIZED");
    d.destroy().await;
}

/// An expired token is refused and reported invalid; the validity endpoint needs `token`.
#[tokio::test]
async fn test_expired_token_and_validity_endpoint() {
    let cfg =
        HsConfig { extra_yaml: "registration_requires_token: true\n".into(), ..Default::default() };
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    let admin = admin(&d).await;
    let c = d.client(0);
    let token = new_token(&admin, json!({"expiry_time": now_ms() + 300})).await;
    wait_until("the token to expire", Duration::from_secs(10), || async {
        (!is_valid(&c, &token).await).then_some(())
    })
    .await;
    let r = register_with_token(&c, &unique_localpart("late"), &token).await;
    assert_eq!(errcode(&r.must_status(401)), "M_UNAUTHORIZED");
    assert!(!is_valid(&c, "no-such-token").await);
    c.request(
        "GET",
        &["_matrix", "client", "v1", "register", "m.login.registration_token", "validity"],
        Value::Null,
    )
    .await
    .must_error(400, "M_MISSING_PARAM");
    d.destroy().await;
}

/// Without `registration_requires_token` the validity endpoint is 403 M_FORBIDDEN (as
/// Synapse) and the flow is dummy alone.
#[tokio::test]
async fn test_validity_endpoint_forbidden_without_tokens() {
    let Some(d) = Deployment::with_config(1, HsConfig::default()).await else { return };
    let c = d.client(0);
    validity(&c, "abc").await.must_error(403, "M_FORBIDDEN");
    let (_, body) = start(&c, &unique_localpart("open")).await;
    assert_eq!(stages(&body), vec![vec!["m.login.dummy"]], "{body}");
    d.destroy().await;
}

/// A fake `recaptcha_siteverify_api` on loopback (plain HTTP): success for the response
/// "good-captcha", failure otherwise. It records the form bodies it received.
struct FakeVerifier {
    url: String,
    received: Arc<Mutex<Vec<String>>>,
}

async fn fake_verifier() -> FakeVerifier {
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let rec = received.clone();
    let addr = glia_harness::stub_http::serve(move |req| {
        let ok = req.method == "POST"
            && req.path == "/siteverify"
            && req.content_type.as_deref() == Some("application/x-www-form-urlencoded");
        let form = String::from_utf8_lossy(&req.body).to_string();
        let success = ok
            && form.split('&').any(|p| p == "response=good%2Dcaptcha")
            && form.split('&').any(|p| p == "secret=the%2Dsecret");
        rec.lock().expect("received").push(form);
        let answer = if success {
            json!({"success": true, "hostname": "localhost"})
        } else {
            json!({"success": false, "error-codes": ["invalid-input-response"]})
        };
        (200, answer)
    })
    .await;
    FakeVerifier { url: format!("http://{addr}/siteverify"), received }
}

fn captcha_yaml(v: &FakeVerifier, with_tokens: bool) -> String {
    format!(
        "enable_registration_captcha: true\nrecaptcha_public_key: the-public-key\n\
         recaptcha_private_key: the-secret\nrecaptcha_siteverify_api: \"{}\"\n\
         registration_requires_token: {with_tokens}\n",
        v.url
    )
}

/// With `enable_registration_captcha` the flow is recaptcha then dummy, the public key is
/// in the params, and the response is checked server-side: the verifier's failure is 401
/// M_UNAUTHORIZED, a missing response M_CAPTCHA_NEEDED, its success completes the stage.
#[tokio::test]
async fn test_captcha_registration() {
    let v = fake_verifier().await;
    let cfg = HsConfig { extra_yaml: captcha_yaml(&v, false), ..Default::default() };
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    let c = d.client(0);
    let name = unique_localpart("cap");
    let (session, body) = start(&c, &name).await;
    assert_eq!(stages(&body), vec![vec!["m.login.recaptcha", "m.login.dummy"]], "{body}");
    assert_eq!(body["params"]["m.login.recaptcha"]["public_key"], "the-public-key", "{body}");

    let b = step(&c, &name, json!({"type": "m.login.recaptcha", "session": session}))
        .await
        .must_status(401);
    assert_eq!(errcode(&b), "M_CAPTCHA_NEEDED", "{b}");
    let b = step(
        &c,
        &name,
        json!({"type": "m.login.recaptcha", "response": "bad-captcha", "session": session}),
    )
    .await
    .must_status(401);
    assert_eq!(errcode(&b), "M_UNAUTHORIZED", "{b}");
    assert_eq!(b["completed"], json!([]), "{b}");
    // The dummy stage alone does not get past the captcha.
    let b = step(&c, &name, json!({"type": "m.login.dummy", "session": session}))
        .await
        .must_status(401);
    assert_eq!(b["completed"], json!(["m.login.dummy"]), "{b}");
    let b = step(
        &c,
        &name,
        json!({"type": "m.login.recaptcha", "response": "good-captcha", "session": session}),
    )
    .await
    .must_status(200);
    assert!(b["user_id"].as_str().expect("user_id").starts_with(&format!("@{name}:")), "{b}");

    let forms = v.received.lock().expect("received").clone();
    assert_eq!(forms.len(), 2, "one verification per response given: {forms:?}");
    for f in &forms {
        assert!(f.split('&').any(|p| p == "secret=the%2Dsecret"), "{f}");
        assert!(f.split('&').any(|p| p.starts_with("remoteip=127%2E0%2E0%2E1")), "{f}");
    }
    d.destroy().await;
}

/// Captcha and tokens together: one flow, token then recaptcha then dummy.
#[tokio::test]
async fn test_captcha_and_token_flow() {
    let v = fake_verifier().await;
    let cfg = HsConfig { extra_yaml: captcha_yaml(&v, true), ..Default::default() };
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    let admin = admin(&d).await;
    let c = d.client(0);
    let name = unique_localpart("both");
    let (session, body) = start(&c, &name).await;
    assert_eq!(
        stages(&body),
        vec![vec!["m.login.registration_token", "m.login.recaptcha", "m.login.dummy"]],
        "{body}"
    );
    let token = new_token(&admin, json!({"uses_allowed": 1})).await;
    for auth in [
        json!({"type": "m.login.registration_token", "token": token}),
        json!({"type": "m.login.recaptcha", "response": "good-captcha"}),
    ] {
        let mut auth = auth;
        auth["session"] = json!(session);
        step(&c, &name, auth).await.must_status(401);
    }
    step(&c, &name, json!({"type": "m.login.dummy", "session": session})).await.must_status(200);
    assert!(!is_valid(&c, &token).await, "the token's one use is spent");
    d.destroy().await;
}

/// `password_config.policy`: each rule refuses with Synapse's errcode, on registration and
/// on password change; a password meeting them all is accepted.
#[tokio::test]
async fn test_password_policy_errcodes() {
    let yaml = "password_config:\n  policy:\n    enabled: true\n    minimum_length: 8\n\
                \x20   require_digit: true\n    require_symbol: true\n\
                \x20   require_lowercase: true\n    require_uppercase: true\n";
    let cfg = HsConfig { extra_yaml: yaml.into(), ..Default::default() };
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    let c = d.client(0);
    let cases = [
        ("Ab1!", "M_PASSWORD_TOO_SHORT"),
        ("Abcdefg!", "M_PASSWORD_NO_DIGIT"),
        ("Abcdefg1", "M_PASSWORD_NO_SYMBOL"),
        ("abcdefg1!", "M_PASSWORD_NO_UPPERCASE"),
        ("ABCDEFG1!", "M_PASSWORD_NO_LOWERCASE"),
    ];
    for (pw, code) in cases {
        c.register(&unique_localpart("pw"), pw).await.must_error(400, code);
    }
    let good = "Abcdef1!";
    let body = c.register(&unique_localpart("pw"), good).await.must_status(200);
    let alice = c.logged_in(&body, good);
    for (pw, code) in cases {
        alice
            .request(
                "POST",
                &["_matrix", "client", "v3", "account", "password"],
                json!({"new_password": pw, "auth": alice.password_auth(None)}),
            )
            .await
            .must_error(400, code);
    }
    alice.must_login(&alice.user_id, good).await;
    d.destroy().await;
}

/// `allow_guest_access: false`: guest registration is 403 M_FORBIDDEN (as Synapse).
#[tokio::test]
async fn test_guests_off() {
    let cfg = HsConfig { allow_guest_access: false, ..Default::default() };
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    d.client(0)
        .request("POST", &["_matrix", "client", "v3", "register", "?kind=guest"], json!({}))
        .await
        .must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}

/// With captcha keys configured but no captcha in the flow, a captcha can still be solved
/// (it shows as completed) and the flow still needs its own stage (SyTest "Register with
/// a recaptcha", as Synapse allows).
#[tokio::test]
async fn test_captcha_outside_the_flow() {
    let v = fake_verifier().await;
    let yaml = captcha_yaml(&v, false).replace("enable_registration_captcha: true", "");
    let cfg = HsConfig { extra_yaml: yaml, ..Default::default() };
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    let c = d.client(0);
    let body = c
        .request(
            "POST",
            REGISTER,
            json!({"username": unique_localpart("capout"), "password": PASSWORD,
                   "auth": {"type": "m.login.recaptcha", "response": "good-captcha"}}),
        )
        .await
        .must_status(401);
    assert_eq!(body["completed"], json!(["m.login.recaptcha"]), "{body}");
    assert_eq!(stages(&body), vec![vec!["m.login.dummy"]], "{body}");
    assert_eq!(v.received.lock().expect("received").len(), 1, "the verifier was asked");
    d.destroy().await;
}
