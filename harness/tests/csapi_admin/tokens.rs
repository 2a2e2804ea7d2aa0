//! Registration tokens: create (given or generated), read, list (all, valid, invalid),
//! update, delete, and Synapse's validation.

use std::time::{SystemTime, UNIX_EPOCH};

use glia_harness::Deployment;
use glia_harness::client::unique_localpart;
use serde_json::{Value, json};

use crate::{adm, admin, query};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64
}

fn listed(body: &Value, token: &str) -> bool {
    body["registration_tokens"]
        .as_array()
        .unwrap_or_else(|| panic!("no registration_tokens in {body}"))
        .iter()
        .any(|t| t["token"] == token)
}

#[tokio::test]
async fn test_registration_tokens() {
    let d = Deployment::new(1).await;
    let Some(admin) = admin(&d).await else { return };
    let new = adm(&["v1", "registration_tokens", "new"]);
    let token = unique_localpart("tok");

    let body = admin
        .request("POST", &new, json!({"token": token, "uses_allowed": 3}))
        .await
        .must_status(200);
    assert_eq!(
        body,
        json!({
            "token": token,
            "uses_allowed": 3,
            "pending": 0,
            "completed": 0,
            "expiry_time": null,
        })
    );
    let one = adm(&["v1", "registration_tokens", &token]);
    assert_eq!(admin.get(&one).await.must_status(200), body);

    // Generated: the default length is 16, or as asked, from [A-Za-z0-9._~-].
    for (req, len) in [(json!({}), 16), (json!({"length": 10}), 10)] {
        let body = admin.request("POST", &new, req).await.must_status(200);
        let t = body["token"].as_str().unwrap_or_else(|| panic!("{body}"));
        assert_eq!(t.len(), len, "{body}");
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b)), "{t}");
    }

    // Update: unlimited uses, an expiry in the future; then used up (0 uses) is invalid.
    let later = now_ms() + 3_600_000;
    let body = admin
        .request("PUT", &one, json!({"uses_allowed": null, "expiry_time": later}))
        .await
        .must_status(200);
    assert_eq!(
        (body["uses_allowed"].clone(), body["expiry_time"].clone()),
        (Value::Null, json!(later))
    );
    let list = |valid: Option<&'static str>| {
        let admin = admin.clone();
        async move {
            let q = valid.map(|v| query(&[("valid", v)])).unwrap_or_default();
            let mut p = adm(&["v1", "registration_tokens"]);
            if !q.is_empty() {
                p.push(&q);
            }
            admin.get(&p).await.must_status(200)
        }
    };
    assert!(listed(&list(None).await, &token));
    assert!(listed(&list(Some("true")).await, &token));
    assert!(!listed(&list(Some("false")).await, &token));
    admin.request("PUT", &one, json!({"uses_allowed": 0})).await.must_status(200);
    assert!(listed(&list(Some("false")).await, &token));
    assert!(!listed(&list(Some("true")).await, &token));
    // An empty update changes nothing.
    assert_eq!(admin.request("PUT", &one, json!({})).await.must_status(200)["uses_allowed"], 0);

    // Refusals, all 400 M_INVALID_PARAM.
    for bad in [
        json!({"token": token}),
        json!({"token": "has space"}),
        json!({"token": ""}),
        json!({"token": "a".repeat(65)}),
        json!({"token": 5}),
        json!({"length": 0}),
        json!({"length": 65}),
        json!({"length": "8"}),
        json!({"uses_allowed": -1}),
        json!({"uses_allowed": 1.5}),
        json!({"expiry_time": 1000}),
        json!({"expiry_time": "tomorrow"}),
    ] {
        admin.request("POST", &new, bad).await.must_error(400, "M_INVALID_PARAM");
    }
    admin
        .request("PUT", &one, json!({"expiry_time": 1000}))
        .await
        .must_error(400, "M_INVALID_PARAM");
    admin
        .get(&adm(&["v1", "registration_tokens", &query(&[("valid", "maybe")])]))
        .await
        .must_error(400, "M_INVALID_PARAM");

    assert_eq!(admin.request("DELETE", &one, json!({})).await.must_status(200), json!({}));
    admin.get(&one).await.must_error(404, "M_NOT_FOUND");
    admin.request("DELETE", &one, json!({})).await.must_error(404, "M_NOT_FOUND");
    admin.request("PUT", &one, json!({"uses_allowed": 1})).await.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}
