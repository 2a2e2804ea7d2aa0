//! A user's devices through the admin API: list, create, read, rename, delete.

use glia_harness::Deployment;
use serde_json::{Value, json};

use crate::{PASSWORD, adm, admin, must_be_logged_in, must_be_logged_out};

fn device_ids(body: &Value) -> Vec<String> {
    let mut ids: Vec<String> = body["devices"]
        .as_array()
        .unwrap_or_else(|| panic!("no devices in {body}"))
        .iter()
        .map(|d| d["device_id"].as_str().expect("device_id").to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn test_user_devices() {
    let d = Deployment::new(1).await;
    let Some(admin) = admin(&d).await else { return };
    let user = d.register_user(0, "gadgets").await;
    let extra = json!({"device_id": "PHONE", "initial_device_display_name": "My phone"});
    let body = d.client(0).login(&user.user_id, PASSWORD, extra).await.must_status(200);
    let phone = d.client(0).logged_in(&body, PASSWORD);
    let devices = adm(&["v2", "users", &user.user_id, "devices"]);

    let body = admin.get(&devices).await.must_status(200);
    let mut want = vec![user.device_id.clone(), "PHONE".to_string()];
    want.sort();
    assert_eq!(device_ids(&body), want, "{body}");
    assert_eq!(body["total"], 2, "{body}");

    let one = adm(&["v2", "users", &user.user_id, "devices", "PHONE"]);
    let body = admin.get(&one).await.must_status(200);
    assert_eq!(
        (body["device_id"].clone(), body["display_name"].clone()),
        (json!("PHONE"), json!("My phone"))
    );
    admin.request("PUT", &one, json!({"display_name": "Old phone"})).await.must_status(200);
    assert_eq!(admin.get(&one).await.must_status(200)["display_name"], "Old phone");

    // Deleting a device ends its session only.
    admin.request("DELETE", &one, json!({})).await.must_status(200);
    must_be_logged_out(&phone).await;
    must_be_logged_in(&user).await;
    admin.get(&one).await.must_error(404, "M_NOT_FOUND");

    // A device made by the admin (no session), then removed with delete_devices.
    let created = admin.request("POST", &devices, json!({"device_id": "BRIDGE"})).await;
    created.must_status(201);
    assert!(
        device_ids(&admin.get(&devices).await.must_status(200)).contains(&"BRIDGE".to_string())
    );
    admin
        .request(
            "POST",
            &adm(&["v2", "users", &user.user_id, "delete_devices"]),
            json!({"devices": ["BRIDGE"]}),
        )
        .await
        .must_status(200);
    let body = admin.get(&devices).await.must_status(200);
    assert_eq!(device_ids(&body), vec![user.device_id.clone()], "{body}");
    d.destroy().await;
}
