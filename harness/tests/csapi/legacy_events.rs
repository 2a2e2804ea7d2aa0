//! Deprecated endpoints that SyTest and old clients still use, as Synapse serves them:
//! the `GET /events` stream and `POST /rooms/{roomId}/send/{eventType}` without a
//! transaction ID.

use std::time::Duration;

use glia_harness::{Deployment, wait_until};
use serde_json::{Value, json};

fn events_path(q: &str) -> Vec<&str> {
    vec!["_matrix", "client", "r0", "events", q]
}

/// `GET /events?timeout=0` gives a token; after a message, `from` that token returns it.
#[tokio::test]
async fn event_stream_returns_new_events_of_joined_rooms() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "stream").await;
    let room_id = alice.must_create_room(json!({})).await;
    let first = alice.get(&events_path("?timeout=0")).await.must_status(200);
    assert!(first["chunk"].is_array(), "{first}");
    let token = first["end"].as_str().expect("end token").to_string();
    let path = ["_matrix", "client", "v3", "rooms", &room_id, "send", "m.room.message", "s1"];
    alice.must_do("PUT", &path, json!({"msgtype": "m.text", "body": "streamed"})).await;
    let q = format!("?from={}&timeout=1000", glia_harness::client::encode_segment(&token));
    let found = wait_until("the message on /events", Duration::from_secs(20), || {
        let (alice, q) = (alice.clone(), q.clone());
        async move {
            let body = alice.get(&events_path(&q)).await.must_status(200);
            let chunk = body["chunk"].as_array().cloned().unwrap_or_default();
            chunk.into_iter().find(|e: &Value| e["content"]["body"] == "streamed")
        }
    })
    .await;
    assert_eq!(found["room_id"], room_id.as_str());
    assert_eq!(found["sender"], alice.user_id.as_str());
    assert!(found["event_id"].is_string());
    alice.get(&events_path("?timeout=soon")).await.must_client_error();
    d.destroy().await;
}

/// `room_id` narrows the stream to a joined room; for a room the caller is not in, Glia
/// answers 403 (other servers may answer an empty chunk, which SyTest also accepts);
/// guests cannot read the global stream.
#[tokio::test]
async fn event_stream_is_limited_to_joined_rooms() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "owner").await;
    let bob = d.register_user(0, "outsider").await;
    let room_id = alice.must_create_room(json!({"preset": "public_chat"})).await;
    let before = bob.get(&events_path("?timeout=0")).await.must_status(200);
    let token = before["end"].as_str().expect("end").to_string();
    let path = ["_matrix", "client", "v3", "rooms", &room_id, "send", "m.room.message", "x1"];
    alice.must_do("PUT", &path, json!({"msgtype": "m.text", "body": "private"})).await;
    let q = format!(
        "?room_id={}&from={}&timeout=0",
        glia_harness::client::encode_segment(&room_id),
        glia_harness::client::encode_segment(&token)
    );
    let mine = alice.get(&events_path(&q)).await.must_status(200);
    assert!(mine["chunk"].as_array().is_some_and(|c| !c.is_empty()), "{mine}");
    let theirs = bob.get(&events_path(&q)).await;
    expect_refused(&d, theirs, "M_FORBIDDEN");
    let guest = d
        .client(0)
        .request("POST", &["_matrix", "client", "v3", "register", "?kind=guest"], json!({}))
        .await;
    if guest.status == 200 {
        let mut g = d.client(0);
        g.access_token = guest.json()["access_token"].as_str().map(str::to_string);
        // A guest must name a room (400 M_UNKNOWN, as Synapse answers).
        g.get(&events_path("?timeout=0")).await.must_error(400, "M_UNKNOWN");
    }
    d.destroy().await;
}

/// Glia refuses with `errcode`; another server may answer an empty chunk instead.
fn expect_refused(d: &Deployment, r: glia_harness::Response, errcode: &str) {
    if d.is_external() && r.status == 200 {
        assert_eq!(r.json()["chunk"], json!([]), "nothing leaks");
    } else {
        r.must_error(403, errcode);
    }
}

/// `POST /send/{eventType}` sends a new event each time (no transaction ID to repeat).
#[tokio::test]
async fn post_send_without_transaction_id() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "poster").await;
    let room_id = alice.must_create_room(json!({})).await;
    let path = ["_matrix", "client", "v3", "rooms", &room_id, "send", "m.room.message"];
    let body = json!({"msgtype": "m.text", "body": "again"});
    let a = alice.must_do("POST", &path, body.clone()).await;
    let b = alice.must_do("POST", &path, body).await;
    assert!(a["event_id"].is_string(), "{a}");
    assert_ne!(a["event_id"], b["event_id"], "two POSTs are two events");
    d.destroy().await;
}

/// A `limit` or `timeout` that is not a non-negative number is a 400, as from Synapse.
#[tokio::test]
async fn event_stream_refuses_bad_limit_and_timeout() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "badparams").await;
    for q in ["?limit=hello&timeout=0", "?limit=-2&timeout=0", "?timeout=hello"] {
        let r = alice.get(&events_path(q)).await;
        assert_eq!(r.status, 400, "{q}: {}", r.text());
    }
    let ok = alice.get(&events_path("?limit=1&timeout=0")).await.must_status(200);
    assert!(ok["chunk"].is_array(), "{ok}");
    d.destroy().await;
}
