//! GET /rooms/{roomId}/event/{eventId} (SyTest "GET /rooms/:room_id/event/:event_id";
//! Complement's TestFetchEvent family): the full client event for members; 404 M_NOT_FOUND
//! for unknown events, events of another room, and — as the spec says ("The event was not
//! found or you do not have permission to read this event") — events the user may not see.

use glia_harness::Deployment;
use serde_json::json;

use crate::{create_room, get_event, must_join, must_leave, must_send_event, send_text};

#[tokio::test]
async fn test_fetch_event() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    let content = json!({"msgtype": "m.text", "body": "fetch me", "extra": {"nested": [1, 2]}});
    let id = must_send_event(&alice, &room, "m.room.message", content.clone()).await;
    for viewer in [&alice, &bob] {
        let ev = get_event(viewer, &room, &id).await.must_status(200);
        assert_eq!(ev["event_id"], id.as_str(), "{ev}");
        assert_eq!(ev["room_id"], room.as_str(), "{ev}");
        assert_eq!(ev["sender"], alice.user_id.as_str(), "{ev}");
        assert_eq!(ev["type"], "m.room.message", "{ev}");
        assert_eq!(ev["content"], content, "{ev}");
        assert!(ev["origin_server_ts"].is_u64(), "{ev}");
        assert!(ev.get("state_key").is_none(), "a message has no state key: {ev}");
        // Federation-only fields are not part of a client event.
        for k in ["auth_events", "prev_events", "hashes", "signatures", "depth"] {
            assert!(ev.get(k).is_none(), "{k} in {ev}");
        }
    }
    // State events carry their state key.
    let state = alice.get(&crate::cs(&["rooms", &room, "state"])).await.must_status(200);
    let create = state.as_array().expect("state").iter().find(|e| e["type"] == "m.room.create");
    let create_id = create.and_then(|e| e["event_id"].as_str()).expect("create event");
    let ev = get_event(&bob, &room, create_id).await.must_status(200);
    assert_eq!(ev["state_key"], "", "{ev}");
    assert_eq!(ev["type"], "m.room.create", "{ev}");
    d.destroy().await;
}

/// Unknown events are 404 M_NOT_FOUND, and so is a real event asked for under another
/// room's ID.
#[tokio::test]
async fn test_fetch_event_unknown() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({})).await;
    let other = create_room(&alice, json!({})).await;
    let id = send_text(&alice, &other, "elsewhere").await;
    get_event(&alice, &room, "$doesnotexist").await.must_error(404, "M_NOT_FOUND");
    get_event(&alice, &room, &id).await.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// Someone who was never in the room cannot read its events: the spec's answer is 404
/// M_NOT_FOUND (Synapse gives it too), not a 403 that would confirm the event exists.
#[tokio::test]
async fn test_fetch_event_not_a_member() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let eve = d.register_user(0, "eve").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    let id = send_text(&alice, &room, "secret").await;
    let r = get_event(&eve, &room, &id).await;
    r.must_error(404, "M_NOT_FOUND");
    assert!(!r.text().contains("secret"), "{}", r.text());
    d.destroy().await;
}

/// A user who left can still read what was sent while they were in the room (history
/// visibility "shared"), but not what came after.
#[tokio::test]
async fn test_fetch_event_after_leaving() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    let before = send_text(&alice, &room, "while bob was here").await;
    must_leave(&bob, &room).await;
    let after = send_text(&alice, &room, "after bob left").await;
    let ev = get_event(&bob, &room, &before).await.must_status(200);
    assert_eq!(ev["content"]["body"], "while bob was here", "{ev}");
    get_event(&bob, &room, &after).await.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}
