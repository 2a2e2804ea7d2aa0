//! Shared-secret registration (`/_synapse/admin/v1/register`), what
//! `register_new_matrix_user` and `glia register-user` use: TestCanRegisterAdmin and the
//! bad-HMAC and nonce-reuse cases.

use glia_harness::Deployment;
use glia_harness::client::unique_localpart;
use glia_harness::deployment::admin_register;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};

const ENDPOINT: &[&str] = &["_synapse", "admin", "v1", "register"];

fn needs_secret(d: &Deployment) -> bool {
    if d.hs(0).shared_secret.is_none() {
        eprintln!("SKIP: GLIA_HARNESS_SHARED_SECRET is not set for the external server");
        return false;
    }
    true
}

/// Complement: TestCanRegisterAdmin; the new user is an admin per the admin API.
#[tokio::test]
async fn test_can_register_admin() {
    let d = Deployment::new(1).await;
    if !needs_secret(&d) {
        return;
    }
    let name = unique_localpart("admin");
    let body = admin_register(d.hs(0), &name, "adm1n-pass", true).await.must_status(200);
    let admin = d.client(0).logged_in(&body, "adm1n-pass");
    let me = admin
        .must_do("GET", &["_synapse", "admin", "v2", "users", &admin.user_id], Value::Null)
        .await;
    assert_eq!(me["admin"], true, "{me}");
    // A normal user is not an admin and may not use the admin API.
    let bob = d.register_user(0, "bob").await;
    let r = bob.get(&["_synapse", "admin", "v2", "users", &admin.user_id]).await;
    r.must_error(403, "M_FORBIDDEN");
    let plain = admin_register(d.hs(0), &unique_localpart("plain"), "pl41n-pass", false)
        .await
        .must_status(200);
    let view = admin
        .must_do(
            "GET",
            &["_synapse", "admin", "v2", "users", plain["user_id"].as_str().expect("id")],
            Value::Null,
        )
        .await;
    assert_eq!(view["admin"], false, "{view}");
    // The admin can log in with the password like anyone.
    d.client(0).must_login(&name, "adm1n-pass").await;
    d.destroy().await;
}

async fn nonce(d: &Deployment) -> String {
    let body = d.client(0).get(ENDPOINT).await.must_status(200);
    body["nonce"].as_str().expect("nonce").to_string()
}

fn mac(secret: &str, nonce: &str, user: &str, password: &str) -> String {
    let mut m = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("key");
    m.update(format!("{nonce}\0{user}\0{password}\0notadmin").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// A wrong HMAC is 403; a nonce cannot be used twice; invalid usernames are refused.
#[tokio::test]
async fn test_shared_secret_rejections() {
    let d = Deployment::new(1).await;
    if !needs_secret(&d) {
        return;
    }
    let c = d.client(0);
    let secret = d.hs(0).shared_secret.clone().expect("secret");
    let name = unique_localpart("hmac");

    let n = nonce(&d).await;
    let bad = mac("not-the-secret", &n, &name, "pw123456");
    let r = c
        .request("POST", ENDPOINT, json!({"nonce": n, "username": name, "password": "pw123456", "admin": false, "mac": bad}))
        .await;
    // 403 everywhere; Synapse's errcode is M_UNKNOWN, Glia's M_FORBIDDEN (this is not a
    // spec endpoint, so only the status is common ground).
    r.must_client_error();
    assert_eq!(r.status, 403, "{}", r.text());

    let n = nonce(&d).await;
    let good = mac(&secret, &n, &name, "pw123456");
    let req =
        json!({"nonce": n, "username": name, "password": "pw123456", "admin": false, "mac": good});
    c.request("POST", ENDPOINT, req.clone()).await.must_status(200);
    let r = c.request("POST", ENDPOINT, req).await;
    assert_eq!(r.status, 400, "a reused nonce is refused: {}", r.text());

    let r = c
        .request("POST", ENDPOINT, json!({"nonce": "never-issued", "username": "x", "password": "y", "admin": false, "mac": "00"}))
        .await;
    assert_eq!(r.status, 400, "an unknown nonce is refused: {}", r.text());

    let n = nonce(&d).await;
    let bad_name = "has space";
    let r = c
        .request(
            "POST",
            ENDPOINT,
            json!({"nonce": n, "username": bad_name, "password": "pw123456", "admin": false,
                   "mac": mac(&secret, &n, bad_name, "pw123456")}),
        )
        .await;
    r.must_error(400, "M_INVALID_USERNAME");
    d.destroy().await;
}

/// `/_synapse/admin/v1/server_version` answers without authentication.
#[tokio::test]
async fn test_server_version() {
    let d = Deployment::new(1).await;
    let body =
        d.client(0).get(&["_synapse", "admin", "v1", "server_version"]).await.must_status(200);
    assert!(body["server_version"].as_str().is_some_and(|v| !v.is_empty()), "{body}");
    d.destroy().await;
}
