//! TestSync family for rooms: joined rooms with state and timeline, incremental delivery,
//! the invite and leave sections, timeline gaps (TestSyncTimelineGap) and bad tokens.

use std::time::Duration;

use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn create_room(c: &Client, body: Value) -> String {
    let r = c.must_do("POST", &["_matrix", "client", "v3", "createRoom"], body).await;
    r["room_id"].as_str().expect("room_id").to_string()
}

async fn send_text(c: &Client, room: &str, body: &str) -> String {
    let txn = glia_harness::client::unique_localpart("txn");
    let r = c
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "rooms", room, "send", "m.room.message", &txn],
            json!({"msgtype": "m.text", "body": body}),
        )
        .await;
    r["event_id"].as_str().expect("event_id").to_string()
}

fn timeline_has(resp: &Value, room: &str, event_id: &str) -> bool {
    resp["rooms"]["join"][room]["timeline"]["events"]
        .as_array()
        .is_some_and(|evs| evs.iter().any(|e| e["event_id"] == event_id))
}

/// Initial sync: the room is in `rooms.join` with its state and the creator's events.
#[tokio::test]
async fn test_sync_initial_joined_room() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"name": "Family", "preset": "private_chat"})).await;
    let ev = send_text(&alice, &room, "hello").await;
    alice.sync_until(None, "message in initial sync", WAIT, |r| timeline_has(r, &room, &ev)).await;
    let resp = alice.sync(None, 0, None).await;
    let joined = &resp["rooms"]["join"][&room];
    let mut all: Vec<&Value> =
        joined["state"]["events"].as_array().expect("state").iter().collect();
    all.extend(joined["timeline"]["events"].as_array().expect("timeline"));
    let has = |t: &str| all.iter().any(|e| e["type"] == t);
    for t in [
        "m.room.create",
        "m.room.member",
        "m.room.power_levels",
        "m.room.join_rules",
        "m.room.name",
    ] {
        assert!(has(t), "{t} missing from state+timeline: {joined}");
    }
    assert!(joined["timeline"]["prev_batch"].is_string(), "{joined}");
    d.destroy().await;
}

/// TestSync: a message from another member arrives in an incremental sync.
#[tokio::test]
async fn test_sync_incremental_message() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    let since = alice
        .sync_until(None, "room in sync", WAIT, |r| r["rooms"]["join"][&room].is_object())
        .await;
    let ev = send_text(&bob, &room, "hi alice").await;
    alice.sync_until(Some(&since), "bob's message", WAIT, |r| timeline_has(r, &room, &ev)).await;
    d.destroy().await;
}

/// Invites appear in `rooms.invite` with stripped state; after joining, in `rooms.join`.
#[tokio::test]
async fn test_sync_invite_then_join() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "private_chat", "name": "Secret"})).await;
    let since = bob.sync(None, 0, None).await["next_batch"].as_str().expect("token").to_string();
    alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "rooms", &room, "invite"],
            json!({"user_id": bob.user_id}),
        )
        .await;
    let since = bob
        .sync_until(Some(&since), "the invite", WAIT, |r| {
            r["rooms"]["invite"][&room]["invite_state"]["events"].as_array().is_some_and(|evs| {
                evs.iter()
                    .any(|e| e["type"] == "m.room.member" && e["content"]["membership"] == "invite")
                    && evs
                        .iter()
                        .any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Secret")
            })
        })
        .await;
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    bob.sync_until(Some(&since), "the joined room", WAIT, |r| {
        r["rooms"]["join"][&room].is_object()
    })
    .await;
    d.destroy().await;
}

/// TestSyncLeaveSection: a room left since the token is in `rooms.leave`, and its timeline
/// ends with the leave.
#[tokio::test]
async fn test_sync_leave_section() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    let since =
        bob.sync_until(None, "joined", WAIT, |r| r["rooms"]["join"][&room].is_object()).await;
    bob.must_do("POST", &["_matrix", "client", "v3", "rooms", &room, "leave"], json!({})).await;
    bob.sync_until(Some(&since), "the leave", WAIT, |r| {
        r["rooms"]["leave"][&room]["timeline"]["events"].as_array().is_some_and(|evs| {
            evs.last().is_some_and(|e| {
                e["type"] == "m.room.member" && e["content"]["membership"] == "leave"
            })
        })
    })
    .await;
    d.destroy().await;
}

/// TestSyncTimelineGap: with more events than the limit the timeline is `limited`, and
/// paginating back from `prev_batch` returns the events left out, newest first.
#[tokio::test]
async fn test_sync_timeline_gap() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    let mut sent = vec![];
    for i in 0..12 {
        sent.push(send_text(&alice, &room, &format!("message {i}")).await);
    }
    let filter = json!({"room": {"timeline": {"limit": 5}}}).to_string();
    let resp = alice.sync(None, 0, Some(&filter)).await;
    let tl = &resp["rooms"]["join"][&room]["timeline"];
    assert_eq!(tl["limited"], true, "{tl}");
    let ids: Vec<&str> = tl["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        sent[7..].iter().map(String::as_str).collect::<Vec<_>>(),
        "the newest five, oldest first"
    );
    let prev = tl["prev_batch"].as_str().expect("prev_batch");
    let page = alice
        .must_do(
            "GET",
            &[
                "_matrix",
                "client",
                "v3",
                "rooms",
                &room,
                "messages",
                &format!("?dir=b&limit=3&from={prev}"),
            ],
            Value::Null,
        )
        .await;
    let back: Vec<&str> = page["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    assert_eq!(back, vec![sent[6].as_str(), sent[5].as_str(), sent[4].as_str()], "{page}");
    d.destroy().await;
}

/// A garbage `since` token is a 400, not a 500.
#[tokio::test]
async fn test_sync_bad_since_token() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let r = alice.get(&["_matrix", "client", "v3", "sync", "?since=not-a-token&timeout=0"]).await;
    assert!((400..500).contains(&r.status), "{}: {}", r.status, r.text());
    d.destroy().await;
}

/// TestSyncFilter: a stored filter (by ID) limits the timeline and the event types.
#[tokio::test]
async fn test_sync_filter() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    send_text(&alice, &room, "zero").await;
    let last = send_text(&alice, &room, "one").await;
    // A state event after the messages: filtered out by `types`, so it does not count
    // against the limit and `limited` is about the messages.
    alice
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "rooms", &room, "state", "m.room.topic", ""],
            json!({"topic": "t"}),
        )
        .await;
    let created = alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "user", &alice.user_id, "filter"],
            json!({"room": {"timeline": {"limit": 1, "types": ["m.room.message"]}}}),
        )
        .await;
    let filter_id = created["filter_id"].as_str().expect("filter_id").to_string();
    let resp = alice.sync(None, 0, Some(&filter_id)).await;
    let tl = &resp["rooms"]["join"][&room]["timeline"];
    let evs = tl["events"].as_array().expect("events");
    assert_eq!(evs.len(), 1, "{tl}");
    assert_eq!(evs[0]["event_id"], last.as_str());
    assert_eq!(tl["limited"], true);
    // An unknown filter ID is refused, not ignored.
    let r = alice.get(&["_matrix", "client", "v3", "sync", "?filter=987654&timeout=0"]).await;
    assert!((400..500).contains(&r.status), "{}", r.text());
    d.destroy().await;
}
