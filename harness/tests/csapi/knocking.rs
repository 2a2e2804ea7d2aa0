//! Knocking (rooms v7+ with join rule `knock`): the knock reaches the room, the knocker sees
//! it in `rooms.knock`, and an invite lets them in.

use std::time::Duration;

use glia_harness::Deployment;
use serde_json::{Value, json};

#[tokio::test]
async fn test_knocking() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let r = alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "createRoom"],
            json!({"room_version": "10", "initial_state": [
                {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}
            ]}),
        )
        .await;
    let room = r["room_id"].as_str().expect("room").to_string();
    // Joining directly is refused; knocking is allowed.
    let r = bob.request("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let k = bob
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "knock", &room],
            json!({"reason": "let me in"}),
        )
        .await;
    assert_eq!(k["room_id"], room.as_str());
    bob.sync_until(None, "the knock in rooms.knock", Duration::from_secs(10), |resp| {
        resp["rooms"]["knock"][&room]["knock_state"]["events"].as_array().is_some_and(|evs| {
            evs.iter()
                .any(|e| e["type"] == "m.room.member" && e["content"]["membership"] == "knock")
        })
    })
    .await;
    let member = alice
        .must_do(
            "GET",
            &["_matrix", "client", "v3", "rooms", &room, "state", "m.room.member", &bob.user_id],
            Value::Null,
        )
        .await;
    assert_eq!(member["membership"], "knock");
    assert_eq!(member["reason"], "let me in");
    alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "rooms", &room, "invite"],
            json!({"user_id": bob.user_id}),
        )
        .await;
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    d.destroy().await;
}
