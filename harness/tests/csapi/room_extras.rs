//! /context, /timestamp_to_event, tags (TestRoomTags), the user directory and ignored users.

use std::time::Duration;

use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

async fn room_with_messages(c: &Client, n: usize) -> (String, Vec<String>) {
    let r = c
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "createRoom"],
            json!({"preset": "public_chat"}),
        )
        .await;
    let room = r["room_id"].as_str().expect("room_id").to_string();
    let mut ids = vec![];
    for i in 0..n {
        let txn = format!("ctx{i}");
        let body = json!({"msgtype": "m.text", "body": format!("m{i}")});
        let r = c
            .must_do(
                "PUT",
                &["_matrix", "client", "v3", "rooms", &room, "send", "m.room.message", &txn],
                body,
            )
            .await;
        ids.push(r["event_id"].as_str().expect("event_id").to_string());
    }
    (room, ids)
}

fn ids_of(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event_id"].as_str().map(str::to_string))
        .collect()
}

/// GET /context: the event with neighbours before (newest first) and after, and state.
#[tokio::test]
async fn test_event_context() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let (room, ids) = room_with_messages(&alice, 7).await;
    let ctx = alice
        .must_do(
            "GET",
            &["_matrix", "client", "v3", "rooms", &room, "context", &ids[3], "?limit=4"],
            Value::Null,
        )
        .await;
    assert_eq!(ctx["event"]["event_id"], ids[3].as_str());
    assert_eq!(ids_of(&ctx["events_before"]), vec![ids[2].clone(), ids[1].clone()], "{ctx}");
    assert_eq!(ids_of(&ctx["events_after"]), vec![ids[4].clone(), ids[5].clone()], "{ctx}");
    assert!(
        ctx["state"].as_array().is_some_and(|s| s.iter().any(|e| e["type"] == "m.room.create")),
        "{ctx}"
    );
    assert!(ctx["start"].is_string() && ctx["end"].is_string());
    let missing = alice.get(&["_matrix", "client", "v3", "rooms", &room, "context", "$nope"]).await;
    missing.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// GET /timestamp_to_event finds the closest event in each direction.
#[tokio::test]
async fn test_timestamp_to_event() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let (room, ids) = room_with_messages(&alice, 3).await;
    let ev = alice
        .must_do("GET", &["_matrix", "client", "v3", "rooms", &room, "event", &ids[1]], Value::Null)
        .await;
    let ts = ev["origin_server_ts"].as_i64().expect("ts");
    let path = |dir: &str, ts: i64| format!("?ts={ts}&dir={dir}");
    let f = alice
        .must_do(
            "GET",
            &[
                "_matrix",
                "client",
                "v1",
                "rooms",
                &room,
                "timestamp_to_event",
                &path("b", ts + 10_000_000),
            ],
            Value::Null,
        )
        .await;
    assert_eq!(f["event_id"], ids[2].as_str(), "latest at or before a future time: {f}");
    let r = alice
        .get(&[
            "_matrix",
            "client",
            "v1",
            "rooms",
            &room,
            "timestamp_to_event",
            &path("f", ts + 10_000_000),
        ])
        .await;
    r.must_error(404, "M_NOT_FOUND");
    let r = alice
        .get(&["_matrix", "client", "v1", "rooms", &room, "timestamp_to_event", "?ts=1&dir=x"])
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    d.destroy().await;
}

/// TestRoomTags: add, list, delete; tags also reach sync as m.tag room account data.
#[tokio::test]
async fn test_room_tags() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let (room, _) = room_with_messages(&alice, 0).await;
    let base = ["_matrix", "client", "v3", "user", &alice.user_id, "rooms", &room, "tags"];
    alice
        .must_do(
            "PUT",
            &[base[0], base[1], base[2], base[3], base[4], base[5], base[6], base[7], "u.work"],
            json!({"order": 0.5}),
        )
        .await;
    alice
        .must_do(
            "PUT",
            &[
                base[0],
                base[1],
                base[2],
                base[3],
                base[4],
                base[5],
                base[6],
                base[7],
                "m.favourite",
            ],
            json!({}),
        )
        .await;
    let tags = alice.must_do("GET", &base, Value::Null).await;
    assert_eq!(tags["tags"]["u.work"]["order"], 0.5, "{tags}");
    assert!(tags["tags"]["m.favourite"].is_object(), "{tags}");
    alice
        .sync_until(None, "m.tag in sync", Duration::from_secs(10), |r| {
            r["rooms"]["join"][&room]["account_data"]["events"].as_array().is_some_and(|evs| {
                evs.iter()
                    .any(|e| e["type"] == "m.tag" && e["content"]["tags"]["u.work"].is_object())
            })
        })
        .await;
    alice
        .must_do(
            "DELETE",
            &[base[0], base[1], base[2], base[3], base[4], base[5], base[6], base[7], "u.work"],
            Value::Null,
        )
        .await;
    let tags = alice.must_do("GET", &base, Value::Null).await;
    assert!(tags["tags"].get("u.work").is_none(), "{tags}");
    d.destroy().await;
}

/// The user directory finds users sharing a room, by display name or ID.
#[tokio::test]
async fn test_user_directory_shared_room() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let name = glia_harness::client::unique_localpart("Bobbity");
    bob.must_do(
        "PUT",
        &["_matrix", "client", "v3", "profile", &bob.user_id, "displayname"],
        json!({"displayname": name}),
    )
    .await;
    let r = alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "createRoom"],
            json!({"preset": "private_chat", "invite": [bob.user_id]}),
        )
        .await;
    let room = r["room_id"].as_str().expect("room").to_string();
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    glia_harness::wait_until("bob in alice's user directory", Duration::from_secs(10), || {
        let (alice, name, bob_id) = (alice.clone(), name.clone(), bob.user_id.clone());
        async move {
            let res = alice
                .must_do(
                    "POST",
                    &["_matrix", "client", "v3", "user_directory", "search"],
                    json!({"search_term": name}),
                )
                .await;
            res["results"]
                .as_array()
                .is_some_and(|r| r.iter().any(|u| u["user_id"] == bob_id.as_str()))
                .then_some(())
        }
    })
    .await;
    let stranger = d.register_user(0, "stranger").await;
    let res = stranger
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "user_directory", "search"],
            json!({"search_term": name}),
        )
        .await;
    assert!(
        !res["results"]
            .as_array()
            .is_some_and(|r| r.iter().any(|u| u["user_id"] == bob.user_id.as_str())),
        "{res}"
    );
    d.destroy().await;
}

/// Messages from ignored users are not delivered.
#[tokio::test]
async fn test_ignored_user_messages_hidden() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let (room, _) = room_with_messages(&alice, 0).await;
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    alice
        .must_do(
            "PUT",
            &[
                "_matrix",
                "client",
                "v3",
                "user",
                &alice.user_id,
                "account_data",
                "m.ignored_user_list",
            ],
            json!({"ignored_users": {bob.user_id.clone(): {}}}),
        )
        .await;
    let ignored = bob
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "rooms", &room, "send", "m.room.message", "ig1"],
            json!({"msgtype": "m.text", "body": "spam"}),
        )
        .await["event_id"]
        .as_str()
        .expect("id")
        .to_string();
    let marker = alice
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "rooms", &room, "send", "m.room.message", "ig2"],
            json!({"msgtype": "m.text", "body": "after"}),
        )
        .await["event_id"]
        .as_str()
        .expect("id")
        .to_string();
    let mut seen_ignored = false;
    alice
        .sync_until(None, "alice's own message", Duration::from_secs(10), |r| {
            let evs = ids_of(&r["rooms"]["join"][&room]["timeline"]["events"]);
            seen_ignored |= evs.contains(&ignored);
            evs.contains(&marker)
        })
        .await;
    assert!(!seen_ignored, "the ignored user's message reached the client");
    let page = alice
        .must_do(
            "GET",
            &["_matrix", "client", "v3", "rooms", &room, "messages", "?dir=b&limit=50"],
            Value::Null,
        )
        .await;
    assert!(!ids_of(&page["chunk"]).contains(&ignored), "{page}");
    d.destroy().await;
}

/// TestRoomMessagesLazyLoading: /messages with lazy_load_members returns the senders'
/// membership events in `state`.
#[tokio::test]
async fn test_room_messages_lazy_loading() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let carol = d.register_user(0, "carol").await;
    let (room, _) = room_with_messages(&alice, 0).await;
    for (c, txn) in [(&bob, "ll1"), (&carol, "ll2")] {
        c.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
        c.must_do(
            "PUT",
            &["_matrix", "client", "v3", "rooms", &room, "send", "m.room.message", txn],
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await;
    }
    let filter = json!({"lazy_load_members": true}).to_string();
    let q = format!("?dir=b&limit=1&filter={}", glia_harness::client::encode_segment(&filter));
    let page = alice
        .must_do("GET", &["_matrix", "client", "v3", "rooms", &room, "messages", &q], Value::Null)
        .await;
    let chunk = page["chunk"].as_array().expect("chunk");
    assert_eq!(chunk.len(), 1);
    assert_eq!(chunk[0]["sender"], carol.user_id.as_str());
    let state = page["state"].as_array().expect("state with lazy-loaded members");
    assert!(
        state
            .iter()
            .any(|e| e["type"] == "m.room.member" && e["state_key"] == carol.user_id.as_str()),
        "carol's membership is included: {page}"
    );
    d.destroy().await;
}

/// GET /members?at=: the member list as it was at a pagination token.
#[tokio::test]
async fn test_room_members_at_token() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let (room, _) = room_with_messages(&alice, 1).await;
    let before = alice
        .sync_until(None, "the room", Duration::from_secs(10), |r| {
            r["rooms"]["join"][&room].is_object()
        })
        .await;
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    let members_at = |token: String| {
        let (alice, room) = (alice.clone(), room.clone());
        async move {
            let q = format!("?at={}", glia_harness::client::encode_segment(&token));
            let r = alice
                .must_do(
                    "GET",
                    &["_matrix", "client", "v3", "rooms", &room, "members", &q],
                    Value::Null,
                )
                .await;
            r["chunk"]
                .as_array()
                .expect("chunk")
                .iter()
                .filter_map(|e| e["state_key"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        }
    };
    let then = members_at(before).await;
    assert!(!then.contains(&bob.user_id), "bob had not joined at the token: {then:?}");
    let now = alice
        .must_do("GET", &["_matrix", "client", "v3", "rooms", &room, "members"], Value::Null)
        .await;
    assert!(
        now["chunk"]
            .as_array()
            .expect("chunk")
            .iter()
            .any(|e| e["state_key"] == bob.user_id.as_str())
    );
    d.destroy().await;
}
