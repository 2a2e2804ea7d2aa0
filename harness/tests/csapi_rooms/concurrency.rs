//! Concurrency: TestEventsInCorrectRoom (Complement: tests/csapi/apidoc_room_event_test.go)
//! and many clients writing to one room at once. The DAG is not visible to clients (no
//! client API shows prev_events), so a fork or a lost event shows as an error response, an
//! event missing from /messages, a duplicate, an order that differs between directions,
//! a sender's own messages out of order, or current state that is not the last write.

use std::collections::{HashMap, HashSet};

use glia_harness::Deployment;
use serde_json::{Value, json};

use crate::messages::walk;
use crate::{
    SYNC_TIMEOUT, create_room, event_ids, must_get_state, must_join, must_put_state, send_text,
    sync_events, sync_token,
};

/// TestEventsInCorrectRoom: rooms created and written to concurrently; each room's
/// timeline gets exactly its own message.
#[tokio::test]
async fn test_events_in_correct_room() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let mut tasks = vec![];
    for _ in 0..10 {
        let alice = alice.clone();
        tasks.push(tokio::spawn(async move {
            create_room(&alice, json!({"preset": "public_chat"})).await
        }));
    }
    let mut rooms = vec![];
    for t in tasks {
        rooms.push(t.await.expect("create task"));
    }
    let since = sync_token(&alice).await;
    let mut tasks = vec![];
    for room in &rooms {
        let (alice, room) = (alice.clone(), room.clone());
        tasks.push(tokio::spawn(async move { send_text(&alice, &room, &room).await }));
    }
    for t in tasks {
        t.await.expect("send task");
    }
    let wanted: HashSet<String> = rooms.iter().cloned().collect();
    let mut ok: HashSet<String> = HashSet::new();
    alice
        .sync_until(Some(&since), "one message in each room", SYNC_TIMEOUT, |resp: &Value| {
            let Some(join) = resp["rooms"]["join"].as_object() else { return false };
            for (room_id, _) in join {
                assert!(wanted.contains(room_id), "sync for an unrelated room {room_id}: {resp}");
                let events = sync_events(resp, "join", room_id, "timeline");
                assert!(events.len() <= 1, "0 or 1 events per room: {resp}");
                if let Some(e) = events.first() {
                    assert!(ok.insert(room_id.clone()), "a second event for {room_id}: {resp}");
                    assert_eq!(e["type"], "m.room.message", "{e}");
                    assert_eq!(e["content"], json!({"msgtype": "m.text", "body": room_id}), "{e}");
                }
            }
            ok.len() == wanted.len()
        })
        .await;
    d.destroy().await;
}

/// Eight users join one room at once, then each sends messages and updates its own state
/// concurrently with the others. Every request succeeds; afterwards the room's history has
/// every event exactly once, the same in both directions, each sender's messages in the
/// order that sender sent them, and the current state holds each user's last write.
#[tokio::test]
async fn test_concurrent_senders_one_room() {
    const USERS: usize = 8;
    const MESSAGES: usize = 15;
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(
        &alice,
        json!({"preset": "public_chat", "power_level_content_override": {"state_default": 0}}),
    )
    .await;
    let mut users = vec![];
    for i in 0..USERS {
        users.push(d.register_user(0, &format!("user{i}")).await);
    }
    let mut joins = vec![];
    for u in &users {
        let (u, room) = (u.clone(), room.clone());
        joins.push(tokio::spawn(async move { must_join(&u, &room).await }));
    }
    for j in joins {
        j.await.expect("join task");
    }
    let mut tasks = vec![];
    for (i, u) in users.iter().enumerate() {
        let (u, room) = (u.clone(), room.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = vec![];
            for n in 0..MESSAGES {
                ids.push(send_text(&u, &room, &format!("u{i} m{n}")).await);
                if n % 5 == 4 {
                    // State under one's own user ID as the state key.
                    let uid = u.user_id.clone();
                    must_put_state(&u, &room, "org.example.progress", &uid, json!({"n": n})).await;
                }
            }
            ids
        }));
    }
    let mut sent: HashMap<usize, Vec<String>> = HashMap::new();
    for (i, t) in tasks.into_iter().enumerate() {
        sent.insert(i, t.await.expect("send task"));
    }

    let back = walk(&alice, &room, "b", None, 25).await;
    let fwd = walk(&alice, &room, "f", None, 25).await;
    let mut back_ids = event_ids(&Value::Array(back));
    back_ids.reverse();
    let fwd_ids = event_ids(&Value::Array(fwd.clone()));
    assert_eq!(fwd_ids, back_ids, "/messages order differs between directions");
    let position: HashMap<&String, usize> =
        fwd_ids.iter().enumerate().map(|(i, id)| (id, i)).collect();
    for (i, ids) in &sent {
        let mut last = None;
        for id in ids {
            let p = *position.get(id).unwrap_or_else(|| panic!("user {i}'s {id} missing"));
            assert!(last.is_none_or(|l| l < p), "user {i}'s messages out of order");
            last = Some(p);
        }
    }
    let messages = fwd.iter().filter(|e| e["type"] == "m.room.message").count();
    assert_eq!(messages, USERS * MESSAGES);
    let joins = fwd
        .iter()
        .filter(|e| e["type"] == "m.room.member" && e["content"]["membership"] == "join")
        .count();
    assert_eq!(joins, USERS + 1, "every join once");

    for u in &users {
        let s = must_get_state(&alice, &room, "org.example.progress", &u.user_id).await;
        assert_eq!(s["n"], MESSAGES - 1, "{}'s last state write: {s}", u.user_id);
    }
    let body = alice.get(&crate::cs(&["rooms", &room, "joined_members"])).await.must_status(200);
    assert_eq!(body["joined"].as_object().map(|m| m.len()), Some(USERS + 1), "{body}");
    // The room still takes writes.
    send_text(&alice, &room, "after the storm").await;
    d.destroy().await;
}
