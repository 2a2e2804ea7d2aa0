//! TestRoomVersions (Complement: tests/csapi/room_versions_test.go), local users only: rooms
//! of every stable version 1 to 12 can be created, joined, invited to, written to, read
//! and redacted in. Versions differ in event ID format (v1/v2 carry `$id:server`, v3+ are
//! hashes), event reference format, redaction algorithm, where `redacts` lives (v11+:
//! in content) and room ID format (v12: the create event's hash), so each runs the whole
//! pipeline.

use glia_harness::Deployment;
use serde_json::{Value, json};

use crate::{
    SYNC_TIMEOUT, create_room, cs, event_ids, get_event, invited_to, joined_to, membership_of,
    must_get_state, must_invite, must_join, must_messages, send_event_synced, send_text,
    sync_events, sync_token,
};

const VERSIONS: [&str; 12] = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"];

/// Every version 1..12 is advertised as available.
#[tokio::test]
async fn test_room_versions_advertised() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let caps = alice.get(&cs(&["capabilities"])).await.must_status(200);
    let available = &caps["capabilities"]["m.room_versions"]["available"];
    for v in VERSIONS {
        assert_eq!(available[v], "stable", "room version {v} in {caps}");
    }
    d.destroy().await;
}

/// User can create and send/receive messages in a room with version N; local user can
/// join it; user can invite a local user to it; a regular user's redaction works in it.
#[tokio::test]
async fn test_room_versions() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    for v in VERSIONS {
        // Create, and the create event says which version.
        let room = create_room(&alice, json!({"room_version": v, "preset": "public_chat"})).await;
        let create = must_get_state(&alice, &room, "m.room.create", "").await;
        assert_eq!(create["room_version"], v, "v{v}: {create}");
        let first = send_text(&alice, &room, "hello world").await;
        assert!(first.starts_with('$'), "v{v}: {first}");

        // A local user joins by room ID and reads the message.
        must_join(&bob, &room).await;
        let ev = get_event(&bob, &room, &first).await.must_status(200);
        assert_eq!(ev["content"]["body"], "hello world", "v{v}: {ev}");
        assert_eq!(ev["event_id"], first.as_str(), "v{v}: {ev}");

        // Bob sends and redacts his own message; Alice sees the redaction after it.
        let mine = send_text(&bob, &room, "regrettable").await;
        let r = bob
            .request("PUT", &cs(&["rooms", &room, "redact", &mine, &crate::txn_id()]), json!({}))
            .await;
        let redaction = r.must_status(200)["event_id"].as_str().expect("event_id").to_string();
        let page = must_messages(&alice, &room, &[("dir", "b"), ("limit", "2")]).await;
        let chunk = page["chunk"].as_array().expect("chunk");
        assert_eq!(
            event_ids(&page["chunk"]),
            vec![redaction.clone(), mine.clone()],
            "v{v}: {page}"
        );
        assert_eq!(redacts_of(&chunk[0]), Some(mine.as_str()), "v{v}: {page}");
        assert_eq!(chunk[1]["content"], json!({}), "v{v}: {page}");
        assert_eq!(chunk[1]["unsigned"]["redacted_because"]["event_id"], redaction.as_str());

        // An invite-only room of the same version: invite, then join.
        let private =
            create_room(&alice, json!({"room_version": v, "preset": "private_chat"})).await;
        must_invite(&alice, &private, &bob.user_id).await;
        must_join(&bob, &private).await;
        assert_eq!(membership_of(&alice, &private, &bob.user_id).await, "join", "v{v}");
        send_text(&bob, &private, "thanks for the invite").await;
    }
    d.destroy().await;
}

/// Where a redaction names the event it redacts: top-level `redacts` before v11, content
/// from v11 (servers may serve both).
fn redacts_of(ev: &Value) -> Option<&str> {
    ev["redacts"].as_str().or_else(|| ev["content"]["redacts"].as_str())
}

/// The same through /sync, as Complement runs it: the room appears with the create event
/// first in its timeline, and a joined user receives exactly the message sent after its
/// sync token.
#[tokio::test]
async fn test_room_versions_synced() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    for v in VERSIONS {
        let room = create_room(&alice, json!({"room_version": v, "preset": "private_chat"})).await;
        alice
            .sync_until(None, &format!("v{v}: alice joined"), SYNC_TIMEOUT, {
                joined_to(&alice.user_id, &room)
            })
            .await;
        let resp = crate::sync_room(&alice, &room).await;
        let timeline = sync_events(&resp, "join", &room, "timeline");
        if v == "12" {
            // Synapse leaves a v12 create event (which has no room_id of its own) out of a
            // sync filtered by room, so the timeline starts with it or the creator's join.
            let first = timeline.first().unwrap_or_else(|| panic!("v{v}: empty: {resp}"));
            let creator_join = first["type"] == "m.room.member"
                && first["state_key"] == alice.user_id.as_str()
                && first["content"]["membership"] == "join";
            assert!(first["type"] == "m.room.create" || creator_join, "v{v}: {resp}");
        } else {
            let first = timeline.first().map(|e| &e["type"]);
            assert_eq!(first, Some(&json!("m.room.create")), "v{v}");
        }
        send_event_synced(
            &alice,
            &room,
            "m.room.message",
            json!({"msgtype": "m.text", "body": "hello world"}),
        )
        .await;

        must_invite(&alice, &room, &bob.user_id).await;
        bob.sync_until(None, &format!("v{v}: bob invited"), SYNC_TIMEOUT, {
            invited_to(&bob.user_id, &bob.user_id, &room)
        })
        .await;
        must_join(&bob, &room).await;
        bob.sync_until(None, &format!("v{v}: bob joined"), SYNC_TIMEOUT, {
            joined_to(&bob.user_id, &room)
        })
        .await;
        let since = sync_token(&bob).await;
        let id = send_text(&alice, &room, "hello bob").await;
        bob.sync_until(Some(&since), &format!("v{v}: the message"), SYNC_TIMEOUT, {
            let id = id.clone();
            let room = room.clone();
            move |resp: &Value| {
                let tl = sync_events(resp, "join", &room, "timeline");
                if tl.is_empty() {
                    return false;
                }
                assert_eq!(tl.len(), 1, "a single timeline event: {resp}");
                assert_eq!(tl[0]["event_id"], id.as_str(), "{resp}");
                true
            }
        })
        .await;
    }
    d.destroy().await;
}
