//! Sending and reading messages: TestSendAndFetchMessage, TestSendMessageWithTxn and
//! TestFetchMessagesFromNonExistentRoom (Complement: tests/csapi/room_messages_test.go),
//! TestRoomsMessages (rooms_messages_test.go), and `/messages` pagination in both
//! directions in the spirit of room_messages_pagination_test.go: `from`/`end`/`to`
//! tokens, `limit` (default, small, huge), and event filters.

use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

use crate::{
    SYNC_TIMEOUT, create_room, cs, event_ids, messages, must_join, must_messages, must_put_state,
    must_send_event, send_text, sync_token, timeline_has,
};

/// Paginate from `from` (or the edge `dir` starts at) until the server says there is no
/// more, returning every event. Fails on a duplicate or on a page over `limit`.
pub async fn walk(
    c: &Client,
    room_id: &str,
    dir: &str,
    from: Option<&str>,
    limit: usize,
) -> Vec<Value> {
    let mut all: Vec<Value> = vec![];
    let mut from = from.map(str::to_string);
    let limit_s = limit.to_string();
    for _ in 0..1000 {
        let mut q = vec![("dir", dir), ("limit", limit_s.as_str())];
        if let Some(f) = &from {
            q.push(("from", f.as_str()));
        }
        let page = must_messages(c, room_id, &q).await;
        let chunk = page["chunk"].as_array().expect("chunk").clone();
        assert!(chunk.len() <= limit, "page over the limit {limit}: {page}");
        let empty = chunk.is_empty();
        all.extend(chunk);
        match page["end"].as_str() {
            // An empty page may still have more behind it; only a token that does not move
            // (or none) ends the walk.
            Some(end) if !empty || from.as_deref() != Some(end) => from = Some(end.to_string()),
            _ => {
                let ids = event_ids(&Value::Array(all.clone()));
                let mut dedup = ids.clone();
                dedup.sort();
                dedup.dedup();
                assert_eq!(
                    dedup.len(),
                    ids.len(),
                    "duplicates paginating {dir} by {limit}: {ids:?}"
                );
                return all;
            }
        }
    }
    panic!("pagination {dir} by {limit} did not end after 1000 pages");
}

fn bodies(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn send_n(c: &Client, room_id: &str, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = vec![];
    for i in 0..n {
        ids.push(send_text(c, room_id, &format!("{prefix}{i}")).await);
    }
    ids
}

/// TestSendAndFetchMessage: a message sent after a sync token is what /messages returns
/// going forward from that token.
#[tokio::test]
async fn test_send_and_fetch_message() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    let token = sync_token(&alice).await;
    let msg = "TestSendAndFetchMessage";
    send_text(&alice, &room, msg).await;
    alice
        .sync_until(Some(&token), "the message", SYNC_TIMEOUT, {
            timeline_has(&room, move |e| {
                e["type"] == "m.room.message" && e["content"]["body"] == msg
            })
        })
        .await;
    let page = must_messages(&alice, &room, &[("dir", "f"), ("from", &token)]).await;
    let chunk = page["chunk"].as_array().expect("chunk");
    assert!(!chunk.is_empty(), "{page}");
    for e in chunk {
        assert!(
            e["type"] == "m.room.message" && e["content"]["body"] == msg,
            "only the message: {page}"
        );
    }
    d.destroy().await;
}

/// TestSendMessageWithTxn: the same transaction ID twice is one event.
#[tokio::test]
async fn test_send_message_with_txn() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({})).await;
    let path = cs(&["rooms", &room, "send", "m.room.message", "lorem"]);
    let content = json!({"msgtype": "m.text", "body": "test"});
    let first = alice.request("PUT", &path, content.clone()).await.must_status(200);
    let second = alice.request("PUT", &path, content).await.must_status(200);
    assert!(first["event_id"].is_string(), "{first}");
    assert_eq!(first["event_id"], second["event_id"]);
    let page = must_messages(&alice, &room, &[("dir", "b"), ("limit", "100")]).await;
    assert_eq!(bodies(page["chunk"].as_array().expect("chunk")), vec!["test"], "{page}");
    d.destroy().await;
}

/// TestFetchMessagesFromNonExistentRoom: 403, as for a room one is not in.
#[tokio::test]
async fn test_fetch_messages_from_non_existent_room() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let server = alice.user_id.split_once(':').map(|(_, s)| s).expect("server name");
    let room = format!("!does-not-exist:{server}");
    messages(&alice, &room, &[("dir", "b")]).await.must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}

/// Local room members can get room messages: both the sender and another member read the
/// same newest event, with its room ID.
#[tokio::test]
async fn test_rooms_messages_local_members_can_get_room_messages() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"invite": [bob.user_id]})).await;
    must_join(&bob, &room).await;
    let id = send_text(&alice, &room, "Test message 0").await;
    for user in [&alice, &bob] {
        let page = must_messages(user, &room, &[("dir", "b"), ("limit", "1")]).await;
        let chunk = page["chunk"].as_array().expect("chunk");
        assert_eq!(chunk.len(), 1, "{page}");
        let e = &chunk[0];
        assert_eq!(e["event_id"], id.as_str(), "{page}");
        assert_eq!(e["type"], "m.room.message", "{page}");
        assert_eq!(e["content"]["body"], "Test message 0", "{page}");
        assert_eq!(e["room_id"], room.as_str(), "{page}");
        assert_eq!(e["sender"], alice.user_id.as_str(), "{page}");
        assert!(page["end"].is_string(), "more history before it: {page}");
    }
    d.destroy().await;
}

/// Message history can be paginated: newest first with `dir=b`, then on from `end`.
#[tokio::test]
async fn test_rooms_messages_history_can_be_paginated() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({})).await;
    send_n(&alice, &room, "Test message ", 20).await;
    let page = must_messages(&alice, &room, &[("dir", "b"), ("limit", "5")]).await;
    let want: Vec<String> = (15..20).rev().map(|i| format!("Test message {i}")).collect();
    assert_eq!(bodies(page["chunk"].as_array().expect("chunk")), want, "{page}");
    let end = page["end"].as_str().unwrap_or_else(|| panic!("no end in {page}"));
    let page = must_messages(&alice, &room, &[("dir", "b"), ("limit", "5"), ("from", end)]).await;
    let want: Vec<String> = (10..15).rev().map(|i| format!("Test message {i}")).collect();
    assert_eq!(bodies(page["chunk"].as_array().expect("chunk")), want, "{page}");
    d.destroy().await;
}

/// Pagination both ways, with page sizes that put boundaries everywhere: walking back
/// from the newest event and walking forward from the room's start both see every event
/// once, in opposite orders; `end` tokens work in the other direction too; `to` stops a
/// walk at a token.
#[tokio::test]
async fn test_messages_pagination_both_directions() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat", "name": "paginated"})).await;
    let mut sent = send_n(&alice, &room, "a", 8).await;
    must_put_state(&alice, &room, "m.room.topic", "", json!({"topic": "middle"})).await;
    must_join(&bob, &room).await;
    sent.extend(send_n(&bob, &room, "b", 8).await);
    must_send_event(&alice, &room, "org.example.custom", json!({"n": 1})).await;
    sent.extend(send_n(&alice, &room, "c", 9).await);
    let want_bodies: Vec<String> = (0..8)
        .map(|i| format!("a{i}"))
        .chain((0..8).map(|i| format!("b{i}")))
        .chain((0..9).map(|i| format!("c{i}")))
        .collect();

    let mut reference: Option<Vec<String>> = None;
    for limit in [1, 3, 7, 50] {
        let back = walk(&alice, &room, "b", None, limit).await;
        let mut fwd_bodies = bodies(&back);
        fwd_bodies.reverse();
        assert_eq!(fwd_bodies, want_bodies, "backwards by {limit}");
        assert_eq!(back.last().map(|e| &e["type"]), Some(&json!("m.room.create")), "by {limit}");
        let mut back_ids = event_ids(&Value::Array(back));
        back_ids.reverse();
        // Every message we sent, and the same whole timeline at every page size.
        for id in &sent {
            assert!(back_ids.contains(id), "{id} missing paginating back by {limit}");
        }
        match &reference {
            None => reference = Some(back_ids.clone()),
            Some(r) => assert_eq!(&back_ids, r, "backwards by {limit} differs"),
        }

        // Forward from the start: the same events, oldest first.
        let fwd = walk(&alice, &room, "f", None, limit).await;
        assert_eq!(event_ids(&Value::Array(fwd.clone())), back_ids, "forwards by {limit}");
        assert_eq!(fwd[0]["type"], "m.room.create", "the room starts with its create event");
    }

    // The `end` of a backwards page, paginated forwards, gives that page back in order.
    let page = must_messages(&alice, &room, &[("dir", "b"), ("limit", "5")]).await;
    let end = page["end"].as_str().unwrap_or_else(|| panic!("no end in {page}")).to_string();
    let mut ids = event_ids(&page["chunk"]);
    ids.reverse();
    let again = must_messages(&alice, &room, &[("dir", "f"), ("limit", "5"), ("from", &end)]).await;
    assert_eq!(event_ids(&again["chunk"]), ids, "{again}");

    // The `end` of a forwards page from the start, paginated backwards, gives that page back.
    let page = must_messages(&alice, &room, &[("dir", "f"), ("limit", "4")]).await;
    let end = page["end"].as_str().unwrap_or_else(|| panic!("no end in {page}")).to_string();
    let mut ids = event_ids(&page["chunk"]);
    ids.reverse();
    let again = must_messages(&alice, &room, &[("dir", "b"), ("limit", "4"), ("from", &end)]).await;
    assert_eq!(event_ids(&again["chunk"]), ids, "{again}");

    // `to`: walking back from the newest event stops at the token of the first page's end.
    let first = must_messages(&alice, &room, &[("dir", "b"), ("limit", "6")]).await;
    let end = first["end"].as_str().expect("end").to_string();
    let bounded =
        must_messages(&alice, &room, &[("dir", "b"), ("limit", "100"), ("to", &end)]).await;
    assert_eq!(event_ids(&bounded["chunk"]), event_ids(&first["chunk"]), "{bounded}");
    d.destroy().await;
}

/// `limit`: absent means 10, 1 means one, and a huge one is clamped by the server, not an
/// error.
#[tokio::test]
async fn test_messages_limit() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({})).await;
    send_n(&alice, &room, "m", 30).await;
    let page = must_messages(&alice, &room, &[("dir", "b")]).await;
    assert_eq!(page["chunk"].as_array().expect("chunk").len(), 10, "default limit 10: {page}");
    let page = must_messages(&alice, &room, &[("dir", "b"), ("limit", "1")]).await;
    assert_eq!(bodies(page["chunk"].as_array().expect("chunk")), vec!["m29"], "{page}");
    for huge in ["1000000", "2147483647", "9007199254740991"] {
        let page = must_messages(&alice, &room, &[("dir", "b"), ("limit", huge)]).await;
        let chunk = page["chunk"].as_array().expect("chunk");
        assert!(chunk.len() > 30, "limit {huge} returns the whole (short) room: {page}");
        assert_eq!(chunk.last().map(|e| &e["type"]), Some(&json!("m.room.create")));
        let page = must_messages(&alice, &room, &[("dir", "f"), ("limit", huge)]).await;
        let chunk = page["chunk"].as_array().expect("chunk");
        assert_eq!(chunk.first().map(|e| &e["type"]), Some(&json!("m.room.create")), "{page}");
        assert_eq!(bodies(chunk).len(), 30, "{page}");
    }
    d.destroy().await;
}

/// Event filters on /messages: `types` (with a `*` wildcard), `not_types`, `senders` and
/// `not_senders`. The limit counts events that pass the filter, so a filtered walk still
/// finds every matching event.
#[tokio::test]
async fn test_messages_filter() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    for i in 0..6 {
        send_text(&alice, &room, &format!("alice {i}")).await;
        must_send_event(&alice, &room, "org.example.noise", json!({"i": i})).await;
        send_text(&bob, &room, &format!("bob {i}")).await;
        must_send_event(&bob, &room, "org.example.noise", json!({"i": i})).await;
    }
    let get = |filter: Value, limit: &'static str| {
        let alice = alice.clone();
        let room = room.clone();
        async move {
            let f = filter.to_string();
            must_messages(&alice, &room, &[("dir", "b"), ("limit", limit), ("filter", &f)]).await
        }
    };

    // Only messages; a limit of 3 is three messages, not three events of which some match.
    let page = get(json!({"types": ["m.room.message"]}), "3").await;
    let chunk = page["chunk"].as_array().expect("chunk");
    assert_eq!(bodies(chunk), vec!["bob 5", "alice 5", "bob 4"], "{page}");
    assert!(page["end"].is_string(), "more messages remain: {page}");
    // ... and following `end` with the same filter goes on where it stopped.
    let end = page["end"].as_str().expect("end");
    let f = json!({"types": ["m.room.message"]}).to_string();
    let next = must_messages(
        &alice,
        &room,
        &[("dir", "b"), ("limit", "3"), ("from", end), ("filter", &f)],
    )
    .await;
    assert_eq!(
        bodies(next["chunk"].as_array().expect("chunk")),
        vec!["alice 4", "bob 3", "alice 3"]
    );

    let page = get(json!({"types": ["org.example.*"]}), "100").await;
    let chunk = page["chunk"].as_array().expect("chunk");
    assert_eq!(chunk.len(), 12, "{page}");
    assert!(chunk.iter().all(|e| e["type"] == "org.example.noise"), "{page}");

    let page = get(json!({"not_types": ["org.example.noise", "m.room.member", "m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.history_visibility"]}), "100").await;
    let chunk = page["chunk"].as_array().expect("chunk");
    assert!(chunk.iter().all(|e| e["type"] == "m.room.message"), "{page}");
    assert_eq!(chunk.len(), 12, "{page}");

    let page = get(json!({"senders": [bob.user_id], "types": ["m.room.message"]}), "100").await;
    let want: Vec<String> = (0..6).rev().map(|i| format!("bob {i}")).collect();
    assert_eq!(bodies(page["chunk"].as_array().expect("chunk")), want, "{page}");

    let page = get(json!({"not_senders": [bob.user_id], "types": ["m.room.message"]}), "100").await;
    let want: Vec<String> = (0..6).rev().map(|i| format!("alice {i}")).collect();
    assert_eq!(bodies(page["chunk"].as_array().expect("chunk")), want, "{page}");

    // A filter that matches nothing is an empty page, not an error.
    let page = get(json!({"types": ["org.example.never"]}), "5").await;
    assert_eq!(page["chunk"], json!([]), "{page}");
    d.destroy().await;
}

/// Bad /messages parameters are 400s: an unknown direction, a token that is not one, a
/// limit that is not a number, a filter that is not JSON.
#[tokio::test]
async fn test_messages_bad_parameters() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({})).await;
    messages(&alice, &room, &[("dir", "x")]).await.must_error(400, "M_INVALID_PARAM");
    messages(&alice, &room, &[("dir", "b"), ("limit", "abc")])
        .await
        .must_error(400, "M_INVALID_PARAM");
    for (k, v) in [("from", "garbage"), ("filter", "{not json")] {
        let r = messages(&alice, &room, &[("dir", "b"), (k, v)]).await;
        let body = r.must_client_error();
        assert_eq!(r.status, 400, "{k}={v}: {body}");
    }
    d.destroy().await;
}
