//! Complement: TestAddAccountData (tests/csapi/account_data_test.go), plus the spec's
//! error cases for the account data endpoints.

use glia_harness::client::Body;
use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

use crate::{cs, server_name};

fn global<'a>(user_id: &'a str, data_type: &'a str) -> Vec<&'a str> {
    cs(&["user", user_id, "account_data", data_type])
}

fn room<'a>(user_id: &'a str, room_id: &'a str, data_type: &'a str) -> Vec<&'a str> {
    cs(&["user", user_id, "rooms", room_id, "account_data", data_type])
}

/// PUT then GET returns exactly what was stored, and a second PUT replaces it.
async fn put_get_roundtrip(c: &Client, path: &[&str]) {
    for content in [
        json!({"value": "first", "nested": {"list": [1, 2, 3], "flag": true, "none": null}}),
        json!({"value": "second"}),
    ] {
        c.request("PUT", path, content.clone()).await.must_status(200);
        let got = c.get(path).await.must_status(200);
        assert_eq!(got, content, "GET returns the content last PUT");
    }
}

/// Can add global account data; can get account data without syncing.
#[tokio::test]
async fn test_add_account_data_global() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    put_get_roundtrip(&alice, &global(&alice.user_id, "org.example.test.key")).await;
    // A type never set is not found.
    alice
        .get(&global(&alice.user_id, "org.example.never.set"))
        .await
        .must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// Can add room account data; can get room account data without syncing.
#[tokio::test]
async fn test_add_account_data_room() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room_id = format!("!abc:{}", server_name(&alice.user_id));
    let other_room = format!("!def:{}", server_name(&alice.user_id));
    put_get_roundtrip(&alice, &room(&alice.user_id, &room_id, "org.example.test.key")).await;
    // Per-room data belongs to that room only, and is not global data.
    alice
        .get(&room(&alice.user_id, &other_room, "org.example.test.key"))
        .await
        .must_error(404, "M_NOT_FOUND");
    alice.get(&global(&alice.user_id, "org.example.test.key")).await.must_error(404, "M_NOT_FOUND");
    alice
        .get(&room(&alice.user_id, &room_id, "org.example.never.set"))
        .await
        .must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// Another user's account data is off limits; bad room IDs and bodies are refused.
#[tokio::test]
async fn test_add_account_data_errors() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room_id = format!("!abc:{}", server_name(&alice.user_id));

    let bobs_global = global(&bob.user_id, "org.example.test.key");
    let bobs_room = room(&bob.user_id, &room_id, "org.example.test.key");
    bob.request("PUT", &bobs_global, json!({"mine": true})).await.must_status(200);
    bob.request("PUT", &bobs_room, json!({"mine": true})).await.must_status(200);
    for p in [&bobs_global, &bobs_room] {
        alice.request("PUT", p, json!({"mine": false})).await.must_error(403, "M_FORBIDDEN");
        alice.get(p).await.must_error(403, "M_FORBIDDEN");
        assert_eq!(bob.get(p).await.must_status(200), json!({"mine": true}));
    }

    // Without a token: 401.
    alice
        .unauthed()
        .get(&global(&alice.user_id, "org.example.test.key"))
        .await
        .must_error(401, "M_MISSING_TOKEN");

    // A room ID that is not one: 400 M_INVALID_PARAM, for PUT and GET.
    let bad_room = room(&alice.user_id, "not-a-room-id", "org.example.test.key");
    alice.request("PUT", &bad_room, json!({"a": 1})).await.must_error(400, "M_INVALID_PARAM");
    alice.get(&bad_room).await.must_error(400, "M_INVALID_PARAM");

    // The content must be a JSON object.
    let mine = global(&alice.user_id, "org.example.test.key");
    for body in [
        Body::Json(json!(["not", "an", "object"])),
        Body::Raw(b"{not json".to_vec(), "application/json"),
    ] {
        let r = alice.request("PUT", &mine, body).await;
        let err = r.must_client_error();
        assert_eq!(r.status, 400, "{}: {err}", r.what);
        assert!(
            matches!(err["errcode"].as_str(), Some("M_BAD_JSON" | "M_NOT_JSON")),
            "{}: {err}",
            r.what
        );
    }
    alice.get(&mine).await.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// `m.fully_read` and `m.push_rules` are managed by the server: setting them through the
/// account data API is 405 `M_BAD_JSON`, globally and per room (spec v1.10).
#[tokio::test]
async fn test_add_account_data_server_controlled_types() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room_id = format!("!abc:{}", server_name(&alice.user_id));
    let content = json!({"event_id": "$whatever", "global": {}});
    for data_type in ["m.push_rules", "m.fully_read"] {
        for p in [global(&alice.user_id, data_type), room(&alice.user_id, &room_id, data_type)] {
            alice.request("PUT", &p, content.clone()).await.must_error(405, "M_BAD_JSON");
        }
    }
    // The push rules themselves are untouched.
    let rules: Value = alice.get(&cs(&["pushrules", ""])).await.must_status(200);
    assert!(rules["global"]["override"].is_array(), "{rules}");
    d.destroy().await;
}
