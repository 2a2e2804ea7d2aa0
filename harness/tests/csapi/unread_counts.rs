//! Unread notification counts from push-rule evaluation (TestPushSync's counts side):
//! messages notify, a mention highlights, a read receipt clears them.

use std::time::Duration;

use glia_harness::Deployment;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn test_unread_notification_counts() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let r = alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "createRoom"],
            json!({"preset": "private_chat", "invite": [bob.user_id]}),
        )
        .await;
    let room = r["room_id"].as_str().expect("room").to_string();
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    let send = |txn: &'static str, body: serde_json::Value| {
        let (alice, room) = (alice.clone(), room.clone());
        async move {
            alice
                .must_do(
                    "PUT",
                    &["_matrix", "client", "v3", "rooms", &room, "send", "m.room.message", txn],
                    body,
                )
                .await["event_id"]
                .as_str()
                .expect("id")
                .to_string()
        }
    };
    send("u1", json!({"msgtype": "m.text", "body": "hello"})).await;
    let last = send("u2", json!({"msgtype": "m.text", "body": "are you there, bob?", "m.mentions": {"user_ids": [bob.user_id]}})).await;
    let counts = |r: &serde_json::Value| r["rooms"]["join"][&room]["unread_notifications"].clone();
    bob.sync_until(None, "two notifications, one highlight", WAIT, |r| {
        let c = counts(r);
        c["notification_count"] == 2 && c["highlight_count"] == 1
    })
    .await;
    bob.must_do(
        "POST",
        &["_matrix", "client", "v3", "rooms", &room, "receipt", "m.read", &last],
        json!({}),
    )
    .await;
    bob.sync_until(None, "counts cleared by the receipt", WAIT, |r| {
        let c = counts(r);
        c["notification_count"] == 0 && c["highlight_count"] == 0
    })
    .await;
    // Alice's own messages never count for her.
    alice
        .sync_until(None, "alice has nothing unread", WAIT, |r| {
            counts(r)["notification_count"] == 0
        })
        .await;
    d.destroy().await;
}
