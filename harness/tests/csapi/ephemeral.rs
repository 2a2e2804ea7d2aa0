//! TestTyping, TestLeakyTyping, TestRoomReceipts, TestRoomReadMarkers and TestPresence.

use std::time::Duration;

use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn shared_room(d: &Deployment) -> (Client, Client, String) {
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let r = alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "createRoom"],
            json!({"preset": "public_chat"}),
        )
        .await;
    let room = r["room_id"].as_str().expect("room_id").to_string();
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    (alice, bob, room)
}

fn ephemeral_of<'a>(resp: &'a Value, room: &str, kind: &str) -> Option<&'a Value> {
    resp["rooms"]["join"][room]["ephemeral"]["events"]
        .as_array()?
        .iter()
        .find(|e| e["type"] == kind)
}

fn typing_users(resp: &Value, room: &str) -> Option<Vec<String>> {
    ephemeral_of(resp, room, "m.typing").map(|e| {
        e["content"]["user_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().map(str::to_string))
            .collect()
    })
}

/// TestTyping: bob sees alice start and stop typing.
#[tokio::test]
async fn test_typing() {
    let d = Deployment::new(1).await;
    let (alice, bob, room) = shared_room(&d).await;
    let since = bob.sync_until(None, "room", WAIT, |r| r["rooms"]["join"][&room].is_object()).await;
    let path = ["_matrix", "client", "v3", "rooms", &room, "typing", &alice.user_id];
    alice.must_do("PUT", &path, json!({"typing": true, "timeout": 30000})).await;
    let since = bob
        .sync_until(Some(&since), "alice typing", WAIT, |r| {
            typing_users(r, &room).is_some_and(|u| u.contains(&alice.user_id))
        })
        .await;
    alice.must_do("PUT", &path, json!({"typing": false})).await;
    bob.sync_until(Some(&since), "alice stopped", WAIT, |r| {
        typing_users(r, &room).is_some_and(|u| u.is_empty())
    })
    .await;
    // Typing for someone else is refused.
    let other = ["_matrix", "client", "v3", "rooms", &room, "typing", &bob.user_id];
    // Refused as M_FORBIDDEN (Synapse uses status 400 for it, Glia 403).
    let r = alice.request("PUT", &other, json!({"typing": true})).await;
    assert_eq!(r.must_client_error()["errcode"], "M_FORBIDDEN");
    d.destroy().await;
}

/// TestLeakyTyping: a user in no shared room never sees typing from the room.
#[tokio::test]
async fn test_leaky_typing() {
    let d = Deployment::new(1).await;
    let (alice, bob, room) = shared_room(&d).await;
    let eve = d.register_user(0, "eve").await;
    let eve_since = eve.sync(None, 0, None).await["next_batch"].as_str().expect("t").to_string();
    let since = bob.sync_until(None, "room", WAIT, |r| r["rooms"]["join"][&room].is_object()).await;
    let path = ["_matrix", "client", "v3", "rooms", &room, "typing", &alice.user_id];
    alice.must_do("PUT", &path, json!({"typing": true, "timeout": 30000})).await;
    bob.sync_until(Some(&since), "alice typing", WAIT, |r| typing_users(r, &room).is_some()).await;
    let resp = eve.sync(Some(&eve_since), 0, None).await;
    assert!(resp["rooms"]["join"].get(&room).is_none(), "eve sees nothing of the room: {resp}");
    d.destroy().await;
}

/// TestRoomReceipts: a read receipt reaches the other member.
#[tokio::test]
async fn test_room_receipts() {
    let d = Deployment::new(1).await;
    let (alice, bob, room) = shared_room(&d).await;
    let sent = alice
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "rooms", &room, "send", "m.room.message", "r1"],
            json!({"msgtype": "m.text", "body": "read me"}),
        )
        .await;
    let event_id = sent["event_id"].as_str().expect("event_id").to_string();
    bob.must_do(
        "POST",
        &["_matrix", "client", "v3", "rooms", &room, "receipt", "m.read", &event_id],
        json!({}),
    )
    .await;
    alice
        .sync_until(None, "bob's receipt", WAIT, |r| {
            ephemeral_of(r, &room, "m.receipt")
                .is_some_and(|e| e["content"][&event_id]["m.read"][&bob.user_id]["ts"].is_number())
        })
        .await;
    // Glia refuses receipts for events it does not have in the room (Synapse accepts them;
    // the spec is silent).
    if !d.is_external() {
        let path = ["_matrix", "client", "v3", "rooms", &room, "receipt", "m.read", "$nonexistent"];
        bob.request("POST", &path, json!({})).await.must_error(404, "M_NOT_FOUND");
    }
    d.destroy().await;
}

/// TestRoomReadMarkers: m.fully_read lands in room account data, m.read in receipts.
#[tokio::test]
async fn test_room_read_markers() {
    let d = Deployment::new(1).await;
    let (alice, bob, room) = shared_room(&d).await;
    let sent = alice
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "rooms", &room, "send", "m.room.message", "rm1"],
            json!({"msgtype": "m.text", "body": "x"}),
        )
        .await;
    let event_id = sent["event_id"].as_str().expect("event_id").to_string();
    bob.must_do(
        "POST",
        &["_matrix", "client", "v3", "rooms", &room, "read_markers"],
        json!({"m.fully_read": event_id, "m.read": event_id}),
    )
    .await;
    bob.sync_until(None, "fully_read marker", WAIT, |r| {
        r["rooms"]["join"][&room]["account_data"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| {
                e["type"] == "m.fully_read" && e["content"]["event_id"] == event_id.as_str()
            })
        })
    })
    .await;
    alice
        .sync_until(None, "bob's m.read", WAIT, |r| {
            ephemeral_of(r, &room, "m.receipt")
                .is_some_and(|e| e["content"][&event_id]["m.read"][&bob.user_id].is_object())
        })
        .await;
    d.destroy().await;
}

/// TestPresence: set and get status; a room-mate sees it in sync.
#[tokio::test]
async fn test_presence() {
    let d = Deployment::new(1).await;
    let (alice, bob, _room) = shared_room(&d).await;
    let path = ["_matrix", "client", "v3", "presence", &alice.user_id, "status"];
    alice.must_do("PUT", &path, json!({"presence": "online", "status_msg": "gardening"})).await;
    let got = bob.must_do("GET", &path, Value::Null).await;
    assert_eq!(got["presence"], "online");
    assert_eq!(got["status_msg"], "gardening");
    bob.sync_until(None, "alice's presence", WAIT, |r| {
        r["presence"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| {
                e["sender"] == alice.user_id.as_str() && e["content"]["presence"] == "online"
            })
        })
    })
    .await;
    let other = ["_matrix", "client", "v3", "presence", &bob.user_id, "status"];
    alice.request("PUT", &other, json!({"presence": "online"})).await.must_client_error();
    d.destroy().await;
}
