//! Complement: TestDeviceManagement (tests/csapi/apidoc_device_management_test.go), plus the
//! spec's device deletion with user-interactive auth.

use glia_harness::Deployment;
use glia_harness::client::{Body, unique_localpart};
use serde_json::json;

use crate::{
    cs, login_device, must_be_logged_in, must_be_logged_out, password_challenge, uia_failed,
};

/// GET /devices and GET /devices/{deviceId}; a 404 for unknown devices.
#[tokio::test]
async fn test_device_management_get_devices() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let login = login_device(&alice, "login_device", "device display").await;

    // Either token lists every device of the user.
    for c in [&alice, &login] {
        let body = c.get(&cs(&["devices"])).await.must_status(200);
        let devices = body["devices"].as_array().expect("devices is an array");
        let ids: Vec<&str> = devices.iter().filter_map(|d| d["device_id"].as_str()).collect();
        assert!(ids.contains(&alice.device_id.as_str()), "registration device listed: {body}");
        assert!(ids.contains(&"login_device"), "login device listed: {body}");
        let dev = devices.iter().find(|d| d["device_id"] == "login_device").expect("login device");
        assert_eq!(dev["display_name"], "device display", "{body}");
    }

    let body = alice.get(&cs(&["devices", "login_device"])).await.must_status(200);
    assert_eq!(body["device_id"], "login_device", "{body}");
    assert_eq!(body["display_name"], "device display", "{body}");

    alice.get(&cs(&["devices", "unknown_device"])).await.must_error(404, "M_NOT_FOUND");
    // Registration names its device the same way.
    let localpart = unique_localpart("carol");
    let password = "correct horse battery staple";
    let body = d
        .client(0)
        .request(
            "POST",
            &cs(&["register"]),
            json!({
                "username": localpart,
                "password": password,
                "auth": {"type": "m.login.dummy"},
                "initial_device_display_name": "carol's phone",
            }),
        )
        .await
        .must_status(200);
    let carol = d.client(0).logged_in(&body, password);
    let body = carol.get(&cs(&["devices", &carol.device_id])).await.must_status(200);
    assert_eq!(body["display_name"], "carol's phone", "{body}");

    // Another user's device is as unknown as one that does not exist.
    let bob = d.register_user(0, "bob").await;
    bob.get(&cs(&["devices", "login_device"])).await.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// PUT /devices/{deviceId} updates device fields, and 404s for unknown devices.
#[tokio::test]
async fn test_device_management_update_device() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    login_device(&alice, "login_device", "device display").await;

    alice
        .request(
            "PUT",
            &cs(&["devices", "login_device"]),
            json!({"display_name": "new device display"}),
        )
        .await
        .must_status(200);
    let body = alice.get(&cs(&["devices", "login_device"])).await.must_status(200);
    assert_eq!(body["device_id"], "login_device", "{body}");
    assert_eq!(body["display_name"], "new device display", "{body}");

    // The listing shows the new name too.
    let body = alice.get(&cs(&["devices"])).await.must_status(200);
    let dev = body["devices"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["device_id"] == "login_device"))
        .expect("login device listed");
    assert_eq!(dev["display_name"], "new device display", "{body}");

    alice
        .request(
            "PUT",
            &cs(&["devices", "unknown_device"]),
            json!({"display_name": "new device display"}),
        )
        .await
        .must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// DELETE /devices/{deviceId}: user-interactive auth with the user's own password.
#[tokio::test]
async fn test_device_management_delete_device() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let doomed = login_device(&alice, "doomed_device", "to be deleted").await;
    let path = cs(&["devices", "doomed_device"]);

    // No body at all: the server answers with the flows to follow.
    let session = password_challenge(&alice.request("DELETE", &path, Body::None).await);
    // An empty object is the same question.
    password_challenge(&alice.request("DELETE", &path, json!({})).await);

    // A wrong password fails the stage (401 M_FORBIDDEN) and deletes nothing.
    let mut auth = alice.password_auth(Some(&session));
    auth["password"] = json!("not the password");
    uia_failed(&alice.request("DELETE", &path, json!({"auth": auth})).await);
    alice.get(&path).await.must_status(200);

    // Someone else's valid credentials do not authorise deleting Alice's device.
    let session = password_challenge(&alice.request("DELETE", &path, json!({})).await);
    let r =
        alice.request("DELETE", &path, json!({"auth": bob.password_auth(Some(&session))})).await;
    r.must_error(403, "M_FORBIDDEN");
    alice.get(&path).await.must_status(200);
    must_be_logged_in(&doomed).await;

    // Her own password does.
    let session = password_challenge(&alice.request("DELETE", &path, json!({})).await);
    alice
        .request("DELETE", &path, json!({"auth": alice.password_auth(Some(&session))}))
        .await
        .must_status(200);
    alice.get(&path).await.must_error(404, "M_NOT_FOUND");
    let body = alice.get(&cs(&["devices"])).await.must_status(200);
    assert!(
        !body["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .any(|d| d["device_id"] == "doomed_device"),
        "deleted device still listed: {body}"
    );
    must_be_logged_out(&doomed).await;
    must_be_logged_in(&alice).await;
    must_be_logged_in(&bob).await;
    d.destroy().await;
}

/// POST /delete_devices: several devices at once, behind the same user-interactive auth.
#[tokio::test]
async fn test_device_management_delete_devices() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let one = login_device(&alice, "doomed_one", "first").await;
    let two = login_device(&alice, "doomed_two", "second").await;
    let keep = login_device(&alice, "kept_device", "kept").await;
    let path = cs(&["delete_devices"]);
    let devices = json!(["doomed_one", "doomed_two"]);

    let session =
        password_challenge(&alice.request("POST", &path, json!({"devices": devices})).await);

    let mut auth = alice.password_auth(Some(&session));
    auth["password"] = json!("not the password");
    uia_failed(&alice.request("POST", &path, json!({"devices": devices, "auth": auth})).await);

    let session =
        password_challenge(&alice.request("POST", &path, json!({"devices": devices})).await);
    let auth = bob.password_auth(Some(&session));
    alice
        .request("POST", &path, json!({"devices": devices, "auth": auth}))
        .await
        .must_error(403, "M_FORBIDDEN");
    must_be_logged_in(&one).await;
    must_be_logged_in(&two).await;

    let session =
        password_challenge(&alice.request("POST", &path, json!({"devices": devices})).await);
    let auth = alice.password_auth(Some(&session));
    alice.request("POST", &path, json!({"devices": devices, "auth": auth})).await.must_status(200);

    for id in ["doomed_one", "doomed_two"] {
        alice.get(&cs(&["devices", id])).await.must_error(404, "M_NOT_FOUND");
    }
    alice.get(&cs(&["devices", "kept_device"])).await.must_status(200);
    must_be_logged_out(&one).await;
    must_be_logged_out(&two).await;
    must_be_logged_in(&keep).await;
    must_be_logged_in(&alice).await;
    d.destroy().await;
}

/// SyTest "The operation must be consistent through an interactive authentication
/// session": a session started to delete one device cannot delete another (403).
#[tokio::test]
async fn test_uia_session_bound_to_operation() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let first = crate::login_device(&alice, "FIRSTDEV", "first").await;
    let _second = crate::login_device(&alice, "SECONDDEV", "second").await;
    let r = alice.request("DELETE", &crate::cs(&["devices", "FIRSTDEV"]), json!({})).await;
    let session = crate::password_challenge(&r);
    let r = alice
        .request(
            "DELETE",
            &crate::cs(&["devices", "SECONDDEV"]),
            json!({"auth": alice.password_auth(Some(&session))}),
        )
        .await;
    // 403 (Synapse's errcode is M_UNKNOWN, Glia's M_FORBIDDEN; the spec names none).
    r.must_client_error();
    assert_eq!(r.status, 403, "{}", r.text());
    // Both devices are still there, and the session still works for what it was for.
    crate::must_be_logged_in(&first).await;
    let all = alice.must_do("GET", &crate::cs(&["devices"]), json!(null)).await;
    let ids: Vec<&str> = all["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter_map(|d| d["device_id"].as_str())
        .collect();
    assert!(ids.contains(&"FIRSTDEV") && ids.contains(&"SECONDDEV"), "{all}");
    alice
        .must_do(
            "DELETE",
            &crate::cs(&["devices", "FIRSTDEV"]),
            json!({"auth": alice.password_auth(Some(&session))}),
        )
        .await;
    d.destroy().await;
}
