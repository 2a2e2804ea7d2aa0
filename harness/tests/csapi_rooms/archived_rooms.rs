//! TestArchivedRoomsHistory (Complement: tests/csapi/sync_archive_test.go; SyTest "Archived
//! rooms only contain history from before the user left"): a left room in `/sync` with
//! `include_leave` shows history and state up to the leave only, through the filter; and
//! `/messages` for the left user stops at the leave.

use glia_harness::Deployment;
use serde_json::{Value, json};

use crate::{
    SYNC_TIMEOUT, create_room, left_from, must_join, must_leave, must_messages, must_put_state,
    send_text, sync_token,
};

const MADE_UP: &str = "a.madeup.test.state";

fn left_room<'a>(resp: &'a Value, room: &str) -> &'a Value {
    &resp["rooms"]["leave"][room]
}

fn events(v: &Value) -> Vec<Value> {
    v["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn test_archived_rooms_history() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let filter = json!({"room": {
        "timeline": {"types": ["m.room.message", MADE_UP]},
        "state": {"types": [MADE_UP]},
        "include_leave": true,
    }})
    .to_string();
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    let since = sync_token(&bob).await;

    send_text(&alice, &room, "before").await;
    must_put_state(&alice, &room, MADE_UP, "", json!({"my_key": "before"})).await;
    must_leave(&bob, &room).await;
    alice
        .sync_until(
            None,
            "bob's leave",
            SYNC_TIMEOUT,
            left_from(&alice.user_id, &bob.user_id, &room),
        )
        .await;
    send_text(&alice, &room, "after").await;
    must_put_state(&alice, &room, MADE_UP, "", json!({"my_key": "after"})).await;

    let check = |resp: &Value, what: &str| {
        let left = left_room(resp, &room);
        assert!(events(&left["state"]).is_empty(), "{what}: no state expected: {left}");
        let timeline = events(&left["timeline"]);
        assert_eq!(timeline.len(), 2, "{what}: two timeline events expected: {left}");
        assert_eq!(timeline[0]["content"]["body"], "before", "{what}: {left}");
        assert_eq!(timeline[1]["content"]["my_key"], "before", "{what}: {left}");
    };
    check(&bob.sync(None, 1, Some(&filter)).await, "initial sync");
    check(&bob.sync(Some(&since), 0, Some(&filter)).await, "incremental sync");

    // An empty timeline: the state section holds the leave and the state from before it.
    let empty = json!({"room": {"timeline": {"limit": 0}, "include_leave": true}}).to_string();
    let resp = bob.sync(None, 2, Some(&empty)).await;
    let left = left_room(&resp, &room);
    assert!(events(&left["timeline"]).is_empty(), "{left}");
    let state = events(&left["state"]);
    let mine = state.iter().find(|e| e["type"] == "m.room.member" && e["state_key"] == bob.user_id);
    assert_eq!(mine.map(|e| &e["content"]["membership"]), Some(&json!("leave")), "{left}");
    let made_up = state.iter().find(|e| e["type"] == MADE_UP);
    assert_eq!(made_up.map(|e| &e["content"]["my_key"]), Some(&json!("before")), "{left}");

    // /messages, backwards from the end, starts at the leave.
    let msgs = must_messages(&bob, &room, &[("dir", "b"), ("limit", "50")]).await;
    let bodies: Vec<&Value> = msgs["chunk"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|e| e["type"] == "m.room.message")
                .map(|e| &e["content"]["body"])
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(bodies, [&json!("before")], "{msgs}");
    d.destroy().await;
}
