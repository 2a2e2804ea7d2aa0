//! Complement: TestToDeviceMessages (tests/csapi/to_device_test.go) and TestSendToDevice
//! (tests/csapi/apidoc_sendtodevice_test.go): sending, receiving through `/sync`, deletion
//! once acknowledged, ordering, the `*` wildcard and transaction-ID idempotency.

use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

use crate::{cs, fresh_sync, next_batch, sync_until};

/// The to-device events in a `/sync` response (none if the section is absent).
fn to_device_events(resp: &Value) -> Vec<Value> {
    resp["to_device"]["events"].as_array().cloned().unwrap_or_default()
}

async fn send(c: &Client, event_type: &str, txn: &str, messages: Value) {
    c.must_do("PUT", &cs(&["sendToDevice", event_type, txn]), json!({"messages": messages})).await;
}

/// Send and receive: each recipient's device gets the event with sender, type and content.
#[tokio::test]
async fn test_to_device_messages() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let charlie = d.register_user(0, "charlie").await;
    let bob_since = next_batch(&bob).await;
    let charlie_since = next_batch(&charlie).await;
    let content = json!({"my_key": "my_value"});
    send(
        &alice,
        "my.test.type",
        "txn1",
        json!({&bob.user_id: {&bob.device_id: content}, &charlie.user_id: {&charlie.device_id: content}}),
    )
    .await;
    for (c, since) in [(&bob, &bob_since), (&charlie, &charlie_since)] {
        sync_until(c, Some(since), "the to-device message", |r| {
            to_device_events(r).iter().any(|e| {
                e["type"] == "my.test.type"
                    && e["sender"] == alice.user_id.as_str()
                    && e["content"] == content
            })
        })
        .await;
    }
    d.destroy().await;
}

fn key_request(requesting_device: &str, id: i64) -> Value {
    json!({"action": "request", "requesting_device_id": requesting_device, "request_id": id})
}

/// Sync from `since` (always the same token, so nothing is acknowledged on the way) until
/// the request IDs `ids` have arrived: in order, each once, nothing else. Returns that
/// response's `next_batch`.
async fn must_receive(c: &Client, since: Option<&str>, ids: &[i64]) -> String {
    let ids_of = |resp: &Value| -> Vec<i64> {
        to_device_events(resp).iter().filter_map(|e| e["content"]["request_id"].as_i64()).collect()
    };
    let resp = glia_harness::wait_until("the to-device messages", crate::WAIT, || async {
        let resp = fresh_sync(c, since).await;
        (ids_of(&resp).len() >= ids.len()).then_some(resp)
    })
    .await;
    assert_eq!(ids_of(&resp), ids, "messages in order, each once: {resp}");
    resp["next_batch"].as_str().expect("next_batch").to_string()
}

/// Messages stay until the client syncs with a token past them; then they are gone.
#[tokio::test]
async fn test_send_to_device_not_sent_multiple_times() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let to_bob = |id| json!({&bob.user_id: {&bob.device_id: key_request(&alice.device_id, id)}});
    send(&alice, "m.room_key_request", "t1", to_bob(1)).await;

    // An initial sync gets it, and so does the next initial sync: nothing was acknowledged.
    must_receive(&bob, None, &[1]).await;
    let next = must_receive(&bob, None, &[1]).await;
    // Syncing from that token acknowledges it: it is not delivered again.
    let resp = fresh_sync(&bob, Some(&next)).await;
    assert!(to_device_events(&resp).is_empty(), "acknowledged messages are gone: {resp}");
    let next = resp["next_batch"].as_str().expect("next_batch").to_string();

    send(&alice, "m.room_key_request", "t2", to_bob(2)).await;
    let prev = next.clone();
    must_receive(&bob, Some(&next), &[2]).await;
    // The client never got that response (or lost it): syncing from the previous token
    // again delivers the message again.
    let next = must_receive(&bob, Some(&prev), &[2]).await;
    let resp = fresh_sync(&bob, Some(&next)).await;
    assert!(to_device_events(&resp).is_empty(), "{resp}");
    d.destroy().await;
}

/// Ten messages arrive in the order they were sent.
#[tokio::test]
async fn test_send_to_device_ordered_by_arrival() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    for id in 1..=10 {
        let m = json!({&bob.user_id: {&bob.device_id: key_request(&alice.device_id, id)}});
        send(&alice, "m.room_key_request", &format!("order{id}"), m).await;
    }
    must_receive(&bob, None, &(1..=10).collect::<Vec<_>>()).await;
    d.destroy().await;
}

/// `*` reaches every device of the user, including devices other than the first.
#[tokio::test]
async fn test_send_to_device_wildcard() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let charlie = d.register_user(0, "charlie").await;
    let charlie2 = charlie.unauthed().must_login(&charlie.user_id, &charlie.password).await;
    send(
        &alice,
        "m.room_key_request",
        "w1",
        json!({&charlie.user_id: {"*": key_request(&alice.device_id, 7)}}),
    )
    .await;
    must_receive(&charlie, None, &[7]).await;
    must_receive(&charlie2, None, &[7]).await;
    d.destroy().await;
}

/// A retried request (same transaction ID, same device) is delivered once; another event
/// type or another device with the same ID is a new request.
#[tokio::test]
async fn test_send_to_device_txn_idempotency() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let m = |id| json!({&bob.user_id: {&bob.device_id: key_request(&alice.device_id, id)}});
    send(&alice, "m.room_key_request", "same", m(1)).await;
    send(&alice, "m.room_key_request", "same", m(1)).await;
    let since = must_receive(&bob, None, &[1]).await;
    let alice2 = alice.unauthed().must_login(&alice.user_id, &alice.password).await;
    send(&alice2, "m.room_key_request", "same", m(2)).await;
    send(&alice, "org.example.other", "same", m(3)).await;
    let mut got = vec![];
    sync_until(&bob, Some(&since), "two new messages", |r| {
        got.extend(to_device_events(r).iter().filter_map(|e| e["content"]["request_id"].as_i64()));
        got.len() >= 2
    })
    .await;
    got.sort();
    assert_eq!(got, vec![2, 3], "{got:?}");
    d.destroy().await;
}

/// Messages to unknown devices and users are dropped without an error.
#[tokio::test]
async fn test_send_to_device_unknown_recipients() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let server = alice.user_id.split_once(':').map(|(_, s)| s).expect("server name").to_string();
    let nobody = format!("@nobody-{}:{server}", rand::random::<u32>());
    send(
        &alice,
        "m.room_key_request",
        "u1",
        json!({&bob.user_id: {"NOSUCHDEVICE": {"a": 1}}, nobody: {"*": {"a": 2}}}),
    )
    .await;
    let resp = fresh_sync(&bob, None).await;
    assert!(to_device_events(&resp).is_empty(), "{resp}");
    d.destroy().await;
}
