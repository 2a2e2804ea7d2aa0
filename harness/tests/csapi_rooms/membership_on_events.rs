//! TestMembershipOnEvents (Complement: tests/csapi/membership_on_events_test.go; spec v1.11
//! `unsigned.membership`, MSC4115): events served to a client carry the client's own
//! membership at the event — "leave" before they joined, "join" after — in /sync,
//! /messages, /context and /event.

use glia_harness::Deployment;
use serde_json::{Value, json};

use crate::{create_room, cs, get_event, must_join, must_messages, send_text, sync_room};

fn membership_of_event(events: &[Value], event_id: &str) -> Value {
    let ev = events
        .iter()
        .find(|e| e["event_id"] == event_id)
        .unwrap_or_else(|| panic!("{event_id} not among {events:?}"));
    ev["unsigned"]["membership"].clone()
}

#[tokio::test]
async fn test_membership_on_events() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    let pre = send_text(&alice, &room, "prejoin").await;
    must_join(&bob, &room).await;
    let post = send_text(&alice, &room, "postjoin").await;

    let sync = sync_room(&bob, &room).await;
    let timeline =
        sync["rooms"]["join"][&room]["timeline"]["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(membership_of_event(&timeline, &pre), "leave", "{sync}");
    assert_eq!(membership_of_event(&timeline, &post), "join", "{sync}");

    let msgs = must_messages(&bob, &room, &[("dir", "b"), ("limit", "50")]).await;
    let chunk = msgs["chunk"].as_array().cloned().unwrap_or_default();
    assert_eq!(membership_of_event(&chunk, &pre), "leave", "{msgs}");
    assert_eq!(membership_of_event(&chunk, &post), "join", "{msgs}");

    let ev = get_event(&bob, &room, &pre).await.must_status(200);
    assert_eq!(ev["unsigned"]["membership"], "leave", "{ev}");
    let ev = get_event(&bob, &room, &post).await.must_status(200);
    assert_eq!(ev["unsigned"]["membership"], "join", "{ev}");
    // Alice, in the room throughout, sees "join" on both.
    let ev = get_event(&alice, &room, &pre).await.must_status(200);
    assert_eq!(ev["unsigned"]["membership"], "join", "{ev}");

    let ctx = bob.get(&cs(&["rooms", &room, "context", &post])).await.must_status(200);
    assert_eq!(ctx["event"]["unsigned"]["membership"], "join", "{ctx}");
    let before = ctx["events_before"].as_array().cloned().unwrap_or_default();
    assert_eq!(membership_of_event(&before, &pre), "leave", "{ctx}");
    d.destroy().await;
}
