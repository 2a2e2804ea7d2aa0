//! Complement: TestDeactivateAccount (tests/csapi/account_deactivate_test.go).

use glia_harness::Deployment;
use serde_json::json;

use crate::{
    cs, localpart, login_device, must_be_logged_in, must_be_logged_out, password_challenge,
    uia_failed,
};

#[tokio::test]
async fn test_deactivate_account() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let other = login_device(&alice, "other_device", "other").await;
    let path = cs(&["account", "deactivate"]);

    // Without auth: the flows to follow.
    let session = password_challenge(&alice.request("POST", &path, json!({})).await);

    // Can't deactivate account with wrong password.
    let mut auth = alice.password_auth(Some(&session));
    auth["password"] = json!("wrong_password");
    uia_failed(&alice.request("POST", &path, json!({"auth": auth})).await);
    must_be_logged_in(&alice).await;

    // Can deactivate account.
    let auth = alice.password_auth(Some(&session));
    let body = alice.request("POST", &path, json!({"auth": auth})).await.must_status(200);
    let unbind = body["id_server_unbind_result"].as_str();
    assert!(matches!(unbind, Some("success" | "no-support")), "id_server_unbind_result: {body}");

    // Every session of the account is gone.
    must_be_logged_out(&alice).await;
    must_be_logged_out(&other).await;

    // After deactivating account, can't log in with password (Synapse clears the password,
    // so either code is fine).
    let r = alice.unauthed().login(&alice.user_id, &alice.password, json!({})).await;
    let body = r.must_status(403);
    let code = body["errcode"].as_str().unwrap_or_default();
    assert!(
        matches!(code, "M_USER_DEACTIVATED" | "M_FORBIDDEN"),
        "login after deactivation: {body}"
    );

    // The user ID is never handed out again.
    let name = localpart(&alice.user_id);
    d.client(0).register(name, "another password entirely").await.must_error(400, "M_USER_IN_USE");
    d.client(0)
        .get(&cs(&["register", "available", &format!("?username={name}")]))
        .await
        .must_error(400, "M_USER_IN_USE");
    d.destroy().await;
}
