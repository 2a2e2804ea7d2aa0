//! TestRoomState (Complement: tests/csapi/apidoc_room_state_test.go) and the state parts of
//! TestRoomCreationReportsEventsToMyself (rooms_state_test.go): reading and writing state
//! with empty and non-empty state keys, the full state list, unknown state, and writes
//! without the power to make them.

use glia_harness::Deployment;
use glia_harness::matchers::json_key_equal;
use serde_json::{Value, json};

use crate::{
    create_room, cs, get_state, must_get_state, must_join, must_put_state, put_state, send_text,
};

/// The current state as a list of events.
async fn all_state(c: &glia_harness::Client, room_id: &str) -> Vec<Value> {
    let body = c.get(&cs(&["rooms", room_id, "state"])).await.must_status(200);
    body.as_array().unwrap_or_else(|| panic!("GET /state is not a list: {body}")).clone()
}

fn find<'a>(state: &'a [Value], event_type: &str, state_key: &str) -> Option<&'a Value> {
    state.iter().find(|e| e["type"] == event_type && e["state_key"] == state_key)
}

/// GET /rooms/:room_id/state/m.room.member/:user_id fetches my membership.
#[tokio::test]
async fn test_room_state_fetches_my_membership() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"visibility": "public", "preset": "public_chat"})).await;
    let m = must_get_state(&alice, &room, "m.room.member", &alice.user_id).await;
    json_key_equal(&m, "membership", "join");
    d.destroy().await;
}

/// GET /rooms/:room_id/state/m.room.power_levels fetches powerlevels.
#[tokio::test]
async fn test_room_state_fetches_power_levels() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"visibility": "public", "preset": "public_chat"})).await;
    let pl = must_get_state(&alice, &room, "m.room.power_levels", "").await;
    for k in ["ban", "kick", "redact", "users_default", "state_default", "events_default"] {
        assert!(pl[k].is_number(), "{k} in {pl}");
    }
    assert!(pl["users"].is_object() && pl["events"].is_object(), "{pl}");
    d.destroy().await;
}

/// GET /joined_rooms lists newly-created room.
#[tokio::test]
async fn test_room_state_joined_rooms_lists_new_room() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"visibility": "public", "preset": "public_chat"})).await;
    let body = alice.get(&cs(&["joined_rooms"])).await.must_status(200);
    let rooms = body["joined_rooms"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert!(rooms.iter().any(|r| r == room.as_str()), "{room} not in {body}");
    d.destroy().await;
}

/// GET /rooms/:room_id/state/m.room.name gets name; PUT sets it; the same for the topic.
#[tokio::test]
async fn test_room_state_name_and_topic() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(
        &alice,
        json!({"preset": "public_chat", "name": "room_name_test", "topic": "room_topic_test"}),
    )
    .await;
    json_key_equal(
        &must_get_state(&alice, &room, "m.room.name", "").await,
        "name",
        "room_name_test",
    );
    json_key_equal(
        &must_get_state(&alice, &room, "m.room.topic", "").await,
        "topic",
        "room_topic_test",
    );
    must_put_state(&alice, &room, "m.room.name", "", json!({"name": "room_test_name"})).await;
    must_put_state(&alice, &room, "m.room.topic", "", json!({"topic": "room_test_topic"})).await;
    json_key_equal(
        &must_get_state(&alice, &room, "m.room.name", "").await,
        "name",
        "room_test_name",
    );
    json_key_equal(
        &must_get_state(&alice, &room, "m.room.topic", "").await,
        "topic",
        "room_test_topic",
    );
    d.destroy().await;
}

/// GET /rooms/:room_id/state fetches entire room state: every event with its type, state
/// key, sender, content and ID.
#[tokio::test]
async fn test_room_state_fetches_entire_room_state() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(
        &alice,
        json!({"visibility": "public", "preset": "public_chat", "name": "room_test", "topic": "room_topic_test"}),
    )
    .await;
    let state = all_state(&alice, &room).await;
    for t in
        ["m.room.create", "m.room.join_rules", "m.room.name", "m.room.power_levels", "m.room.topic"]
    {
        assert!(find(&state, t, "").is_some(), "{t} missing from {state:?}");
    }
    assert!(find(&state, "m.room.member", &alice.user_id).is_some(), "{state:?}");
    for e in &state {
        assert!(e["event_id"].is_string() && e["sender"].is_string(), "{e}");
        assert!(e["content"].is_object() && e["state_key"].is_string(), "{e}");
        assert!(e["origin_server_ts"].is_number(), "{e}");
    }
    // One event per (type, state_key).
    let mut keys: Vec<(String, String)> = state
        .iter()
        .map(|e| {
            (e["type"].as_str().unwrap_or("").into(), e["state_key"].as_str().unwrap_or("").into())
        })
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "duplicate state entries in {state:?}");
    // Messages are not state.
    send_text(&alice, &room, "not state").await;
    let after = all_state(&alice, &room).await;
    assert_eq!(after.len(), state.len(), "{after:?}");
    d.destroy().await;
}

/// State keys: the empty key addressed with and without a trailing slash, non-empty keys
/// (with characters that need encoding), all listed by GET /state, and each readable and
/// replaceable on its own.
#[tokio::test]
async fn test_room_state_empty_and_non_empty_state_keys() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    let t = "org.example.state";

    // Empty state key, written as `/state/{type}` (no trailing slash).
    let path = cs(&["rooms", &room, "state", t]);
    let body = alice.request("PUT", &path, json!({"k": "empty"})).await.must_status(200);
    assert!(body["event_id"].is_string(), "{body}");
    json_key_equal(&alice.get(&path).await.must_status(200), "k", "empty");
    // ... and read back with the trailing slash (an explicit empty key).
    let slash = format!(
        "/_matrix/client/v3/rooms/{}/state/{t}/",
        glia_harness::client::encode_segment(&room)
    );
    json_key_equal(&alice.get(&[slash.as_str()]).await.must_status(200), "k", "empty");
    json_key_equal(&must_get_state(&alice, &room, t, "").await, "k", "empty");

    let keys = ["foo", "with space", "ünïcödé", "a.b:c"];
    for k in keys {
        must_put_state(&alice, &room, t, k, json!({"k": k})).await;
    }
    for k in keys {
        json_key_equal(&must_get_state(&alice, &room, t, k).await, "k", k);
    }
    // The empty key was not overwritten by the keyed ones.
    json_key_equal(&must_get_state(&alice, &room, t, "").await, "k", "empty");

    let state = all_state(&alice, &room).await;
    for k in std::iter::once("").chain(keys) {
        let e = find(&state, t, k).unwrap_or_else(|| panic!("{t}/{k} missing from {state:?}"));
        assert_eq!(e["content"]["k"], if k.is_empty() { "empty" } else { k }, "{e}");
    }

    // Replacing one key changes only that key.
    must_put_state(&alice, &room, t, "foo", json!({"k": "foo2"})).await;
    json_key_equal(&must_get_state(&alice, &room, t, "foo").await, "k", "foo2");
    json_key_equal(&must_get_state(&alice, &room, t, "with space").await, "k", "with space");

    // A state key that looks like another user's ID is reserved for that user.
    let r = put_state(&alice, &room, t, "@notauser:example.com", json!({"k": "forged"})).await;
    r.must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}

/// Unknown state is 404 M_NOT_FOUND: a type never set, and a set type with another key.
#[tokio::test]
async fn test_room_state_unknown_state_is_not_found() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    get_state(&alice, &room, "m.room.name", "").await.must_error(404, "M_NOT_FOUND");
    get_state(&alice, &room, "org.example.never", "").await.must_error(404, "M_NOT_FOUND");
    get_state(&alice, &room, "m.room.create", "not-empty").await.must_error(404, "M_NOT_FOUND");
    get_state(&alice, &room, "m.room.member", "@nobody:example.com")
        .await
        .must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// Setting state without the power to do so is 403, and the state does not change.
#[tokio::test]
async fn test_room_state_set_without_power_is_forbidden() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat", "name": "original"})).await;
    must_join(&bob, &room).await;
    // state_default is 50 and bob has 0.
    put_state(&bob, &room, "m.room.name", "", json!({"name": "hijacked"}))
        .await
        .must_error(403, "M_FORBIDDEN");
    put_state(&bob, &room, "org.example.custom", "", json!({"a": 1}))
        .await
        .must_error(403, "M_FORBIDDEN");
    put_state(&bob, &room, "m.room.join_rules", "", json!({"join_rule": "invite"}))
        .await
        .must_error(403, "M_FORBIDDEN");
    json_key_equal(&must_get_state(&alice, &room, "m.room.name", "").await, "name", "original");
    json_key_equal(
        &must_get_state(&bob, &room, "m.room.join_rules", "").await,
        "join_rule",
        "public",
    );
    get_state(&bob, &room, "org.example.custom", "").await.must_error(404, "M_NOT_FOUND");
    // A user may set state under their own user ID as state key only if the power levels
    // allow the type at all.
    put_state(&bob, &room, "org.example.custom", &bob.user_id, json!({"a": 1}))
        .await
        .must_error(403, "M_FORBIDDEN");
    // Messages need only events_default (0).
    send_text(&bob, &room, "but I can talk").await;
    d.destroy().await;
}

/// Users who are not in the room can neither read nor write its state.
#[tokio::test]
async fn test_room_state_non_member() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let eve = d.register_user(0, "eve").await;
    let room = create_room(&alice, json!({"preset": "private_chat", "name": "secret"})).await;
    get_state(&eve, &room, "m.room.name", "").await.must_error(403, "M_FORBIDDEN");
    eve.get(&cs(&["rooms", &room, "state"])).await.must_error(403, "M_FORBIDDEN");
    put_state(&eve, &room, "m.room.name", "", json!({"name": "mine"}))
        .await
        .must_error(403, "M_FORBIDDEN");
    json_key_equal(&must_get_state(&alice, &room, "m.room.name", "").await, "name", "secret");
    d.destroy().await;
}

/// Setting state twice is idempotent: the same content by the same sender is the same event.
#[tokio::test]
async fn test_setting_state_twice_is_idempotent() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({})).await;
    let content = json!({"a_key": "a_value"});
    let first = must_put_state(&alice, &room, "a.test.state.type", "", content.clone()).await;
    let second = must_put_state(&alice, &room, "a.test.state.type", "", content).await;
    assert_eq!(first, second);
    let third = must_put_state(&alice, &room, "a.test.state.type", "", json!({"a_key": "b"})).await;
    assert_ne!(first, third, "different content is a new event");
    d.destroy().await;
}

/// Joining room twice is idempotent: the second join leaves the membership event as is.
#[tokio::test]
async fn test_joining_room_twice_is_idempotent() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&bob, json!({"visibility": "public", "preset": "public_chat"})).await;
    must_join(&alice, &room).await;
    let id_of_join = |state: &[Value]| {
        find(state, "m.room.member", &alice.user_id).map(|e| e["event_id"].clone())
    };
    let first = id_of_join(&all_state(&alice, &room).await).expect("alice's member event");
    must_join(&alice, &room).await;
    let second = id_of_join(&all_state(&alice, &room).await).expect("alice's member event");
    assert_eq!(first, second);
    d.destroy().await;
}

/// TestLeftRoomFixture (Complement: tests/csapi/room_leave_test.go): a user who left sees
/// the room as it was when they left — its state, its members and its messages up to their
/// leave — and nothing after. The spec: "If the user has left the room then the state is
/// taken from the state of the room when they left."
#[tokio::test]
async fn test_left_room_fixture() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let charlie = d.register_user(0, "charlie").await;
    let room = create_room(
        &alice,
        json!({
            "preset": "public_chat",
            "initial_state": [{"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}}],
        }),
    )
    .await;
    must_join(&bob, &room).await;
    let t = "madeup.test.state";
    must_put_state(&alice, &room, "m.room.name", "", json!({"name": "N1 before"})).await;
    must_put_state(&alice, &room, t, "", json!({"body": "S1 before"})).await;
    send_text(&alice, &room, "M1 before").await;
    send_text(&alice, &room, "M2 before").await;
    crate::must_leave(&bob, &room).await;
    let bob_since = crate::sync_token(&bob).await;
    must_put_state(&alice, &room, "m.room.name", "", json!({"name": "N2 after"})).await;
    must_put_state(&alice, &room, t, "", json!({"body": "S2 after"})).await;
    send_text(&alice, &room, "M3 after").await;
    must_join(&charlie, &room).await;

    // Can get rooms/{roomId}/state for a departed room.
    json_key_equal(&must_get_state(&bob, &room, t, "").await, "body", "S1 before");
    json_key_equal(&must_get_state(&alice, &room, t, "").await, "body", "S2 after");
    // Can get 'm.room.name' state for a departed room.
    json_key_equal(&must_get_state(&bob, &room, "m.room.name", "").await, "name", "N1 before");
    json_key_equal(&must_get_state(&alice, &room, "m.room.name", "").await, "name", "N2 after");
    let state = all_state(&bob, &room).await;
    let name = find(&state, "m.room.name", "").expect("name");
    assert_eq!(name["content"]["name"], "N1 before", "{state:?}");

    // Can get rooms/{roomId}/members for a departed room: charlie joined later.
    let body = bob.get(&cs(&["rooms", &room, "members"])).await.must_status(200);
    let mut got: Vec<(String, String)> = body["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .map(|e| {
            let k = e["state_key"].as_str().unwrap_or_default().to_string();
            (k, e["content"]["membership"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    got.sort();
    let mut want = vec![
        (alice.user_id.clone(), "join".to_string()),
        (bob.user_id.clone(), "leave".to_string()),
    ];
    want.sort();
    assert_eq!(got, want, "{body}");

    // Can get rooms/{roomId}/messages for a departed room: back from after the leave.
    let page = crate::must_messages(
        &bob,
        &room,
        &[("dir", "b"), ("limit", "3"), ("from", bob_since.as_str())],
    )
    .await;
    let mut got: Vec<String> = page["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .map(|e| {
            format!(
                "{}|{}|{}",
                e["type"].as_str().unwrap_or_default(),
                e["content"]["body"].as_str().unwrap_or_default(),
                e["state_key"].as_str().unwrap_or_default()
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        "m.room.message|M1 before|".to_string(),
        "m.room.message|M2 before|".to_string(),
        format!("m.room.member||{}", bob.user_id),
    ];
    want.sort();
    assert_eq!(got, want, "{page}");

    // Getting messages going forward is limited for a departed room.
    let page = crate::must_messages(
        &bob,
        &room,
        &[("dir", "f"), ("limit", "100"), ("from", bob_since.as_str())],
    )
    .await;
    assert_eq!(page["chunk"], json!([]), "{page}");
    d.destroy().await;
}

/// `?format=event` (v1.16, used by mautrix bridges) answers the whole client event;
/// `format=content` the content; another value is 400.
#[tokio::test]
async fn test_room_state_format_event() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"name": "formatted"})).await;
    let name = |q: &'static str| {
        let (alice, room) = (alice.clone(), room.clone());
        async move { alice.get(&cs(&["rooms", &room, "state", "m.room.name", q])).await }
    };
    let ev = name("?format=event").await.must_status(200);
    assert_eq!(ev["type"], "m.room.name");
    assert_eq!(ev["state_key"], "");
    assert_eq!(ev["sender"], alice.user_id.as_str());
    assert_eq!(ev["content"]["name"], "formatted");
    assert!(ev["event_id"].is_string() && ev["origin_server_ts"].is_i64(), "{ev}");
    assert_eq!(name("?format=content").await.must_status(200), json!({"name": "formatted"}));
    name("?format=xml").await.must_client_error();
    d.destroy().await;
}
