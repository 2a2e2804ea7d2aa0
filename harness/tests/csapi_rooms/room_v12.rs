//! Room version 12 (spec: rooms/v12, client-server "Permissions", createRoom and room
//! upgrades, Matrix 1.16): the room ID is the create event's hash with no server part, the
//! create event has no `room_id` of its own but clients see one, and the room's creators
//! (the create event's sender and `additional_creators`) have unlimited power, so they are
//! not listed in `m.room.power_levels` and cannot be listed or demoted there.

use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

use crate::{
    create_room, cs, get_event, must_get_state, must_join, must_messages, must_put_state,
    put_state, send_text,
};

/// A v12 room ID: `!` and the unpadded URL-safe base64 of a SHA-256 hash (43 characters).
fn assert_v12_room_id(room: &str) {
    let hash = room.strip_prefix('!').unwrap_or_else(|| panic!("no sigil: {room}"));
    assert!(!hash.contains(':'), "a v12 room ID has no server part: {room}");
    assert_eq!(hash.len(), 43, "a v12 room ID is a 32-byte hash: {room}");
    assert!(
        hash.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "URL-safe unpadded base64: {room}"
    );
}

/// The room's create event as a client sees it (from `/messages`, oldest first).
async fn create_event(c: &Client, room: &str) -> Value {
    let page = must_messages(c, room, &[("dir", "f"), ("limit", "50")]).await;
    let chunk = page["chunk"].as_array().unwrap_or_else(|| panic!("no chunk in {page}"));
    chunk
        .iter()
        .find(|e| e["type"] == "m.room.create")
        .unwrap_or_else(|| panic!("no create event in {page}"))
        .clone()
}

/// The user IDs listed in the room's power levels.
async fn listed_users(c: &Client, room: &str) -> Value {
    must_get_state(c, room, "m.room.power_levels", "").await["users"].clone()
}

/// A v12 room is named after its create event, whose ID is `$` and the same hash; the
/// create event names no creator field and reaches clients with the room's ID.
#[tokio::test]
async fn test_v12_room_id_is_the_create_event_hash() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"room_version": "12", "preset": "public_chat"})).await;
    assert_v12_room_id(&room);

    let content = must_get_state(&alice, &room, "m.room.create", "").await;
    assert_eq!(content["room_version"], "12", "{content}");
    assert!(content.get("creator").is_none(), "no `creator` since v11: {content}");

    let create = create_event(&alice, &room).await;
    let hash = &room[1..];
    assert_eq!(create["event_id"], format!("${hash}"), "{create}");
    assert_eq!(create["room_id"], room.as_str(), "clients see the room ID: {create}");
    assert_eq!(create["sender"], alice.user_id.as_str(), "{create}");
    let fetched = get_event(&alice, &room, &format!("${hash}")).await.must_status(200);
    assert_eq!(fetched["room_id"], room.as_str(), "{fetched}");

    // Ordinary events carry the room ID too, and a local user joins by it.
    let bob = d.register_user(0, "bob").await;
    must_join(&bob, &room).await;
    let id = send_text(&bob, &room, "hello v12").await;
    let ev = get_event(&alice, &room, &id).await.must_status(200);
    assert_eq!(ev["room_id"], room.as_str(), "{ev}");
    assert_eq!(ev["content"]["body"], "hello v12", "{ev}");
    d.destroy().await;
}

/// The creator is not in `users`, yet can do everything: change power levels, name the
/// room, kick. Listing the creator in power levels is refused.
#[tokio::test]
async fn test_v12_creator_has_power_without_being_listed() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"room_version": "12", "preset": "public_chat"})).await;
    let users = listed_users(&alice, &room).await;
    assert!(users.get(&alice.user_id).is_none(), "the creator is not listed: {users}");
    let pl = must_get_state(&alice, &room, "m.room.power_levels", "").await;
    let tombstone = pl["events"]["m.room.tombstone"].as_i64().unwrap_or(0);
    let state_default = pl["state_default"].as_i64().unwrap_or(50);
    assert!(tombstone > state_default, "upgrading needs more than state_default: {pl}");

    must_join(&bob, &room).await;
    // Alice makes Bob a moderator and raises the level for the room name above anyone's.
    must_put_state(
        &alice,
        &room,
        "m.room.power_levels",
        "",
        json!({"users": {&bob.user_id: 50}, "events": {"m.room.name": 1000}}),
    )
    .await;
    must_put_state(&alice, &room, "m.room.name", "", json!({"name": "Creator's room"})).await;
    put_state(&bob, &room, "m.room.name", "", json!({"name": "Bob's"}))
        .await
        .must_error(403, "M_FORBIDDEN");
    alice
        .request("POST", &cs(&["rooms", &room, "kick"]), json!({"user_id": bob.user_id}))
        .await
        .must_status(200);

    // Power levels may not list the creator, at any level.
    for level in [100, 0] {
        let r = put_state(
            &alice,
            &room,
            "m.room.power_levels",
            "",
            json!({"users": {&alice.user_id: level}}),
        )
        .await;
        r.must_client_error();
    }
    let users = listed_users(&alice, &room).await;
    assert!(users.get(&alice.user_id).is_none(), "still not listed: {users}");
    d.destroy().await;
}

/// `additional_creators` in `creation_content` are creators too: unlimited power without
/// being listed, and nobody, not even the first creator, can demote them.
#[tokio::test]
async fn test_v12_additional_creators() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let carol = d.register_user(0, "carol").await;
    let room = create_room(
        &alice,
        json!({
            "room_version": "12",
            "preset": "public_chat",
            "creation_content": {"additional_creators": [bob.user_id]},
        }),
    )
    .await;
    assert_v12_room_id(&room);
    let content = must_get_state(&alice, &room, "m.room.create", "").await;
    assert_eq!(content["additional_creators"], json!([bob.user_id]), "{content}");
    let users = listed_users(&alice, &room).await;
    assert!(users.get(&bob.user_id).is_none(), "an additional creator is not listed: {users}");

    must_join(&bob, &room).await;
    must_join(&carol, &room).await;
    // Bob acts with a creator's power: he sets power levels and the room's name.
    must_put_state(&bob, &room, "m.room.power_levels", "", json!({"users": {&carol.user_id: 90}}))
        .await;
    must_put_state(&bob, &room, "m.room.name", "", json!({"name": "Bob's too"})).await;
    // Alice cannot demote Bob by listing him.
    let r =
        put_state(&alice, &room, "m.room.power_levels", "", json!({"users": {&bob.user_id: 0}}))
            .await;
    r.must_client_error();
    // Carol (90) cannot kick a creator.
    carol
        .request("POST", &cs(&["rooms", &room, "kick"]), json!({"user_id": bob.user_id}))
        .await
        .must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}

/// Upgrading a v10 room to v12: the replacement has a v12 ID, the upgrader is its creator
/// (not listed in power levels), other users keep their levels, and the old room points
/// at the new one.
#[tokio::test]
async fn test_upgrade_v10_room_to_v12() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let old = create_room(&alice, json!({"room_version": "10", "preset": "public_chat"})).await;
    assert!(old.contains(':'), "a v10 room ID has a server part: {old}");
    must_join(&bob, &old).await;
    must_put_state(
        &alice,
        &old,
        "m.room.power_levels",
        "",
        json!({"users": {&alice.user_id: 100, &bob.user_id: 50}}),
    )
    .await;
    must_put_state(&alice, &old, "m.room.name", "", json!({"name": "Upgraded"})).await;

    let r = alice
        .request("POST", &cs(&["rooms", &old, "upgrade"]), json!({"new_version": "12"}))
        .await
        .must_status(200);
    let new = r["replacement_room"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    assert_v12_room_id(&new);

    let content = must_get_state(&alice, &new, "m.room.create", "").await;
    assert_eq!(content["room_version"], "12", "{content}");
    assert_eq!(content["predecessor"]["room_id"], old.as_str(), "{content}");
    let create = create_event(&alice, &new).await;
    assert_eq!(create["sender"], alice.user_id.as_str(), "the upgrader creates: {create}");
    let users = listed_users(&alice, &new).await;
    assert!(users.get(&alice.user_id).is_none(), "the creator is not listed: {users}");
    assert_eq!(users[&bob.user_id], 50, "other levels carry over: {users}");
    let name = must_get_state(&alice, &new, "m.room.name", "").await;
    assert_eq!(name["name"], "Upgraded", "{name}");
    let tombstone = must_get_state(&alice, &old, "m.room.tombstone", "").await;
    assert_eq!(tombstone["replacement_room"], new.as_str(), "{tombstone}");

    // The new room works: Bob joins and talks.
    must_join(&bob, &new).await;
    send_text(&bob, &new, "moved in").await;
    d.destroy().await;
}

/// `trusted_private_chat` makes the invitees creators of a v12 room (spec, createRoom:
/// they join `additional_creators`) instead of listing them at the creator's level.
#[tokio::test]
async fn test_v12_trusted_private_chat_invitees_are_creators() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(
        &alice,
        json!({"room_version": "12", "preset": "trusted_private_chat", "invite": [bob.user_id]}),
    )
    .await;
    let content = must_get_state(&alice, &room, "m.room.create", "").await;
    assert_eq!(content["additional_creators"], json!([bob.user_id]), "{content}");
    let users = listed_users(&alice, &room).await;
    assert!(users.get(&bob.user_id).is_none(), "{users}");
    assert!(users.get(&alice.user_id).is_none(), "{users}");
    must_join(&bob, &room).await;
    must_put_state(&bob, &room, "m.room.topic", "", json!({"topic": "a creator's topic"})).await;
    d.destroy().await;
}

/// Upgrading to v12 with `additional_creators` (Matrix 1.16): they are creators of the
/// new room, left out of its power levels even where the old room listed them.
#[tokio::test]
async fn test_upgrade_to_v12_with_additional_creators() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let old = create_room(&alice, json!({"room_version": "11", "preset": "public_chat"})).await;
    must_join(&bob, &old).await;
    must_put_state(
        &alice,
        &old,
        "m.room.power_levels",
        "",
        json!({"users": {&alice.user_id: 100, &bob.user_id: 100}}),
    )
    .await;
    let body = json!({"new_version": "12", "additional_creators": [bob.user_id]});
    let r = alice.request("POST", &cs(&["rooms", &old, "upgrade"]), body).await.must_status(200);
    let new = r["replacement_room"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    assert_v12_room_id(&new);
    let content = must_get_state(&alice, &new, "m.room.create", "").await;
    assert_eq!(content["additional_creators"], json!([bob.user_id]), "{content}");
    let users = listed_users(&alice, &new).await;
    assert!(users.get(&bob.user_id).is_none(), "{users}");
    assert!(users.get(&alice.user_id).is_none(), "{users}");
    d.destroy().await;
}
