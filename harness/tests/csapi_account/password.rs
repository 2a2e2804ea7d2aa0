//! Complement: TestChangePassword (tests/csapi/password_test.go and sytest's
//! 12login/02password.pl): POST /account/password behind user-interactive auth.

use glia_harness::{Deployment, HsConfig};
use serde_json::json;

use crate::{
    cs, login_device, must_be_logged_in, must_be_logged_out, password_challenge, uia_failed,
};

const NEW_PASSWORD: &str = "a whole new password, quite long";

/// The new password replaces the old one and, by default, logs out every other device.
#[tokio::test]
async fn test_change_password() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let other = login_device(&alice, "other_device", "other").await;
    let path = cs(&["account", "password"]);

    let session = password_challenge(
        &alice.request("POST", &path, json!({"new_password": NEW_PASSWORD})).await,
    );

    // The wrong current password fails the stage and changes nothing.
    let mut auth = alice.password_auth(Some(&session));
    auth["password"] = json!("not the password");
    uia_failed(
        &alice.request("POST", &path, json!({"new_password": NEW_PASSWORD, "auth": auth})).await,
    );

    let auth = alice.password_auth(Some(&session));
    alice
        .request("POST", &path, json!({"new_password": NEW_PASSWORD, "auth": auth}))
        .await
        .must_status(200);

    // The old password is refused, the new one accepted.
    let unauthed = alice.unauthed();
    unauthed.login(&alice.user_id, &alice.password, json!({})).await.must_error(403, "M_FORBIDDEN");
    let fresh = unauthed.must_login(&alice.user_id, NEW_PASSWORD).await;
    must_be_logged_in(&fresh).await;

    // Other sessions were logged out (and their devices removed); this one was kept.
    must_be_logged_out(&other).await;
    must_be_logged_in(&alice).await;
    alice.get(&cs(&["devices", "other_device"])).await.must_error(404, "M_NOT_FOUND");
    alice.get(&cs(&["devices", &alice.device_id])).await.must_status(200);
    d.destroy().await;
}

/// With `"logout_devices": false` the other sessions survive the change.
#[tokio::test]
async fn test_change_password_without_logout_devices() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let other = login_device(&alice, "other_device", "other").await;
    let path = cs(&["account", "password"]);
    let body = json!({"new_password": NEW_PASSWORD, "logout_devices": false});

    let session = password_challenge(&alice.request("POST", &path, body.clone()).await);
    let mut with_auth = body.clone();
    with_auth["auth"] = alice.password_auth(Some(&session));
    alice.request("POST", &path, with_auth).await.must_status(200);

    must_be_logged_in(&other).await;
    must_be_logged_in(&alice).await;
    alice.get(&cs(&["devices", "other_device"])).await.must_status(200);
    let unauthed = alice.unauthed();
    unauthed.login(&alice.user_id, &alice.password, json!({})).await.must_error(403, "M_FORBIDDEN");
    unauthed.must_login(&alice.user_id, NEW_PASSWORD).await;
    d.destroy().await;
}

/// A password the server's policy refuses is refused with Synapse's errcode for the rule
/// (`M_PASSWORD_TOO_SHORT` for `minimum_length`), and the old one stays.
#[tokio::test]
async fn test_change_password_weak_password() {
    let cfg = HsConfig { password_minimum_length: Some(10), ..Default::default() };
    let Some(d) = Deployment::with_config(1, cfg).await else {
        return;
    };
    let alice = d.register_user(0, "alice").await;
    let path = cs(&["account", "password"]);
    let auth = alice.password_auth(None);
    alice
        .request("POST", &path, json!({"new_password": "short", "auth": auth}))
        .await
        .must_error(400, "M_PASSWORD_TOO_SHORT");
    must_be_logged_in(&alice).await;
    alice.unauthed().must_login(&alice.user_id, &alice.password).await;
    d.destroy().await;
}
