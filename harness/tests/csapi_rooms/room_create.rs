//! TestRoomCreate (Complement: tests/csapi/apidoc_room_create_test.go), the room creation
//! checks of TestRoomState (apidoc_room_state_test.go) and
//! TestRoomCreationReportsEventsToMyself (rooms_state_test.go).

use glia_harness::Deployment;
use glia_harness::matchers::{json_key_absent, json_key_equal};
use serde_json::{Value, json};

use crate::{
    SYNC_TIMEOUT, create_room, cs, default_room_version, invited_to, joined_to, membership_of,
    must_get_state, must_join, must_put_state, privileged_creators, send_event_synced, sync_events,
    timeline_has,
};

/// POST /createRoom makes a public room / a private room: the visibility picks the preset.
#[tokio::test]
async fn test_room_create_public_and_private() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let public = create_room(&alice, json!({"visibility": "public"})).await;
    let content = must_get_state(&alice, &public, "m.room.join_rules", "").await;
    json_key_equal(&content, "join_rule", "public");
    let private = create_room(&alice, json!({"visibility": "private"})).await;
    let content = must_get_state(&alice, &private, "m.room.join_rules", "").await;
    json_key_equal(&content, "join_rule", "invite");
    assert_ne!(public, private);
    // No body at all is a private room too.
    let r = alice.request("POST", &cs(&["createRoom"]), json!({})).await;
    let room = r.must_status(200)["room_id"].as_str().expect("room_id").to_string();
    let content = must_get_state(&alice, &room, "m.room.join_rules", "").await;
    json_key_equal(&content, "join_rule", "invite");
    d.destroy().await;
}

/// The presets set join rules, history visibility and guest access as the spec's table says;
/// `trusted_private_chat` gives invitees the creator's power.
#[tokio::test]
async fn test_room_create_presets() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;

    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    json_key_equal(
        &must_get_state(&alice, &room, "m.room.join_rules", "").await,
        "join_rule",
        "public",
    );
    let hv = must_get_state(&alice, &room, "m.room.history_visibility", "").await;
    json_key_equal(&hv, "history_visibility", "shared");
    // Guest access is forbidden: either no event (the default) or an explicit one.
    let r = crate::get_state(&alice, &room, "m.room.guest_access", "").await;
    if r.status == 200 {
        json_key_equal(&r.json(), "guest_access", "forbidden");
    } else {
        r.must_error(404, "M_NOT_FOUND");
    }

    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    json_key_equal(
        &must_get_state(&alice, &room, "m.room.join_rules", "").await,
        "join_rule",
        "invite",
    );
    let hv = must_get_state(&alice, &room, "m.room.history_visibility", "").await;
    json_key_equal(&hv, "history_visibility", "shared");
    let ga = must_get_state(&alice, &room, "m.room.guest_access", "").await;
    json_key_equal(&ga, "guest_access", "can_join");

    // Room version 11 has the creator in the power levels' `users`, so the invitee's
    // equal power is visible there.
    let room = create_room(
        &alice,
        json!({"preset": "trusted_private_chat", "invite": [bob.user_id], "room_version": "11"}),
    )
    .await;
    json_key_equal(
        &must_get_state(&alice, &room, "m.room.join_rules", "").await,
        "join_rule",
        "invite",
    );
    let pl = must_get_state(&alice, &room, "m.room.power_levels", "").await;
    assert_eq!(pl["users"][&bob.user_id], pl["users"][&alice.user_id], "{pl}");
    assert_eq!(pl["users"][&alice.user_id], 100, "{pl}");
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "invite");

    // An unknown preset is refused.
    let r = alice.request("POST", &cs(&["createRoom"]), json!({"preset": "party_chat"})).await;
    let body = r.must_client_error();
    assert_eq!(r.status, 400, "{body}");
    d.destroy().await;
}

/// POST /createRoom makes a room with a topic: the plain text is duplicated into an
/// `m.topic` content block whose mimetype is unset or text/plain.
#[tokio::test]
async fn test_room_create_with_topic() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"topic": "Test Room", "preset": "public_chat"})).await;
    let content = must_get_state(&alice, &room, "m.room.topic", "").await;
    check_topic_block(&content, "Test Room");
    d.destroy().await;
}

fn check_topic_block(content: &Value, topic: &str) {
    json_key_equal(content, "topic", topic);
    let texts = content["m.topic"]["m.text"].as_array().unwrap_or_else(|| panic!("{content}"));
    assert_eq!(texts.len(), 1, "one m.text representation: {content}");
    assert_eq!(texts[0]["body"], topic, "{content}");
    let mime = &texts[0]["mimetype"];
    assert!(mime.is_null() || mime == "text/plain", "mimetype unset or text/plain: {content}");
}

/// POST /createRoom makes a room with a topic via initial_state (taken as given, no
/// `m.topic`), and `topic` overwrites a topic in initial_state.
#[tokio::test]
async fn test_room_create_topic_via_initial_state() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let topic_state =
        json!([{"type": "m.room.topic", "state_key": "", "content": {"topic": "Test Room"}}]);
    let room =
        create_room(&alice, json!({"initial_state": topic_state, "preset": "public_chat"})).await;
    let content = must_get_state(&alice, &room, "m.room.topic", "").await;
    json_key_equal(&content, "topic", "Test Room");
    json_key_absent(&content, "m\\.topic");

    let shenanigans =
        json!([{"type": "m.room.topic", "state_key": "", "content": {"topic": "Shenanigans"}}]);
    let room = create_room(
        &alice,
        json!({"topic": "Test Room", "initial_state": shenanigans, "preset": "public_chat"}),
    )
    .await;
    let content = must_get_state(&alice, &room, "m.room.topic", "").await;
    check_topic_block(&content, "Test Room");
    d.destroy().await;
}

/// POST /createRoom makes a room with a name, and `name` overwrites one in initial_state.
#[tokio::test]
async fn test_room_create_with_name() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"name": "Test Room", "preset": "public_chat"})).await;
    json_key_equal(&must_get_state(&alice, &room, "m.room.name", "").await, "name", "Test Room");
    let initial = json!([{"type": "m.room.name", "state_key": "", "content": {"name": "Initial"}}]);
    let room = create_room(&alice, json!({"name": "Wins", "initial_state": initial})).await;
    json_key_equal(&must_get_state(&alice, &room, "m.room.name", "").await, "name", "Wins");
    d.destroy().await;
}

/// POST /createRoom creates a room with the given version.
#[tokio::test]
async fn test_room_create_with_version() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"room_version": "2", "preset": "public_chat"})).await;
    let content = must_get_state(&alice, &room, "m.room.create", "").await;
    json_key_equal(&content, "room_version", "2");
    // Before room version 11 the create event names its creator.
    json_key_equal(&content, "creator", alice.user_id.as_str());
    // Without one, the room gets the default version the capabilities advertise.
    let room = create_room(&alice, json!({})).await;
    let content = must_get_state(&alice, &room, "m.room.create", "").await;
    json_key_equal(&content, "room_version", default_room_version(&alice).await);
    d.destroy().await;
}

/// POST /createRoom rejects attempts to create rooms with numeric versions (M_BAD_JSON)
/// and with unknown versions (M_UNSUPPORTED_ROOM_VERSION).
#[tokio::test]
async fn test_room_create_rejects_bad_versions() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let r = alice
        .request(
            "POST",
            &cs(&["createRoom"]),
            json!({"visibility": "private", "room_version": 1, "preset": "public_chat"}),
        )
        .await;
    r.must_error(400, "M_BAD_JSON");
    for v in ["ahfgwjyerhgiuveisbruvybseyrugvi", "0", "1.0", ""] {
        let r = alice
            .request(
                "POST",
                &cs(&["createRoom"]),
                json!({"visibility": "private", "room_version": v, "preset": "public_chat"}),
            )
            .await;
        r.must_error(400, "M_UNSUPPORTED_ROOM_VERSION");
    }
    d.destroy().await;
}

/// POST /createRoom makes a private room with invites; `is_direct` marks the invites.
#[tokio::test]
async fn test_room_create_private_with_invites() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let carol = d.register_user(0, "carol").await;
    let room = create_room(
        &alice,
        json!({"visibility": "private", "invite": [bob.user_id, carol.user_id]}),
    )
    .await;
    for u in [&bob, &carol] {
        let m = must_get_state(&alice, &room, "m.room.member", &u.user_id).await;
        json_key_equal(&m, "membership", "invite");
        assert!(m.get("is_direct").is_none_or(|v| v == false), "not direct: {m}");
    }
    // The invitee can join.
    must_join(&bob, &room).await;
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "join");

    let dm = create_room(
        &alice,
        json!({"preset": "trusted_private_chat", "invite": [bob.user_id], "is_direct": true}),
    )
    .await;
    let m = must_get_state(&alice, &dm, "m.room.member", &bob.user_id).await;
    json_key_equal(&m, "membership", "invite");
    json_key_equal(&m, "is_direct", true);

    // An invalid user ID in `invite` is refused.
    let r = alice.request("POST", &cs(&["createRoom"]), json!({"invite": ["not-a-user-id"]})).await;
    let body = r.must_client_error();
    assert_eq!(r.status, 400, "{body}");
    d.destroy().await;
}

/// Rooms can be created with an initial invite list (SYN-205): the invitee sees the
/// invite in /sync.
#[tokio::test]
async fn test_room_create_with_initial_invite_list_synced() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"invite": [bob.user_id]})).await;
    bob.sync_until(
        None,
        "the invite in bob's sync",
        SYNC_TIMEOUT,
        invited_to(&bob.user_id, &bob.user_id, &room),
    )
    .await;
    d.destroy().await;
}

/// Can /sync newly created room.
#[tokio::test]
async fn test_room_create_can_sync_newly_created_room() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({})).await;
    send_event_synced(&alice, &room, "m.room.test", json!({})).await;
    d.destroy().await;
}

/// POST /createRoom ignores attempts to set the room version via creation_content, and
/// keeps the other keys (POST /createRoom with creation content).
#[tokio::test]
async fn test_room_create_creation_content() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(
        &alice,
        json!({"creation_content": {"test": "azerty", "room_version": "test", "m.federate": false}}),
    )
    .await;
    let content = must_get_state(&alice, &room, "m.room.create", "").await;
    json_key_equal(&content, "test", "azerty");
    json_key_equal(&content, "m\\.federate", false);
    json_key_equal(&content, "room_version", default_room_version(&alice).await);
    d.destroy().await;
}

/// The same, seen the way Complement checks it: the first event of the room's timeline in
/// a full sync is the create event, with the real room version. (Room version 11: Synapse
/// 1.163 leaves a version 12 room's create event out of the sync timeline.)
#[tokio::test]
async fn test_room_create_creation_content_synced() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(
        &alice,
        json!({"room_version": "11", "creation_content": {"test": "azerty", "room_version": "test"}}),
    )
    .await;
    alice.sync_until(None, "alice joined", SYNC_TIMEOUT, joined_to(&alice.user_id, &room)).await;
    let resp = crate::sync_room(&alice, &room).await;
    let timeline = sync_events(&resp, "join", &room, "timeline");
    let first = timeline.first().unwrap_or_else(|| panic!("no timeline for {room}: {resp}"));
    json_key_equal(first, "type", "m.room.create");
    assert!(first["content"]["room_version"].is_string(), "{first}");
    assert_ne!(first["content"]["room_version"], "test", "{first}");
    json_key_equal(first, "content.test", "azerty");
    d.destroy().await;
}

/// `initial_state` events are set after the preset's, so they win over them, and custom
/// state types are accepted.
#[tokio::test]
async fn test_room_create_initial_state() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(
        &alice,
        json!({
            "preset": "public_chat",
            "initial_state": [
                {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}},
                {"type": "org.example.custom", "content": {"answer": 42}},
                {"type": "org.example.custom", "state_key": "keyed", "content": {"answer": 43}},
            ],
        }),
    )
    .await;
    let hv = must_get_state(&alice, &room, "m.room.history_visibility", "").await;
    json_key_equal(&hv, "history_visibility", "joined");
    // `state_key` defaults to the empty string.
    json_key_equal(&must_get_state(&alice, &room, "org.example.custom", "").await, "answer", 42);
    json_key_equal(
        &must_get_state(&alice, &room, "org.example.custom", "keyed").await,
        "answer",
        43,
    );
    d.destroy().await;
}

/// `power_level_content_override` is applied on top of the default power levels.
#[tokio::test]
async fn test_room_create_power_level_content_override() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let version = default_room_version(&alice).await;
    let mut users = json!({bob.user_id.clone(): 50});
    if !privileged_creators(&version) {
        users[&alice.user_id] = json!(100);
    }
    let room = create_room(
        &alice,
        json!({
            "preset": "public_chat",
            "power_level_content_override": {"events_default": 20, "users": users, "kick": 75},
        }),
    )
    .await;
    let pl = must_get_state(&alice, &room, "m.room.power_levels", "").await;
    json_key_equal(&pl, "events_default", 20);
    json_key_equal(&pl, "kick", 75);
    assert_eq!(pl["users"][&bob.user_id], 50, "{pl}");
    // The keys not overridden keep their defaults.
    assert!(pl["ban"].is_number() && pl["state_default"].is_number(), "{pl}");
    // Bob joins with the level the override gave him, enough to send messages
    // (events_default 20 <= 50).
    must_join(&bob, &room).await;
    crate::send_text(&bob, &room, "hello").await;

    // An override that leaves the creator unable to set the rest of the initial state is
    // refused as a whole (room version 11, where the creator's level is the one in `users`).
    let r = alice
        .request(
            "POST",
            &cs(&["createRoom"]),
            json!({
                "room_version": "11",
                "name": "no power",
                "power_level_content_override": {"users": {alice.user_id.clone(): 10}, "state_default": 50},
            }),
        )
        .await;
    let body = r.must_client_error();
    // The spec's example is a 400 M_INVALID_ROOM_STATE; Synapse answers 403 M_FORBIDDEN.
    assert!(r.status == 400 || r.status == 403, "{}: {body}", r.status);
    d.destroy().await;
}

/// Room creation reports m.room.create, m.room.member and later state to myself in /sync.
#[tokio::test]
async fn test_room_creation_reports_events_to_myself() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let version = default_room_version(&alice).await;
    let room = create_room(&alice, json!({})).await;
    let me = alice.user_id.clone();
    alice
        .sync_until(None, "m.room.create", SYNC_TIMEOUT, {
            let me = me.clone();
            let version = version.clone();
            timeline_has(&room, move |ev| {
                if ev["type"] != "m.room.create" {
                    return false;
                }
                assert_eq!(ev["sender"], me.as_str(), "{ev}");
                // The creator field was removed in room version 11.
                if version.parse::<u32>().is_ok_and(|v| v < 11) {
                    assert_eq!(ev["content"]["creator"], me.as_str(), "{ev}");
                }
                true
            })
        })
        .await;
    alice.sync_until(None, "my join", SYNC_TIMEOUT, joined_to(&me, &room)).await;
    must_put_state(&alice, &room, "m.room.topic", "", json!({"topic": "Testing topic"})).await;
    alice
        .sync_until(None, "the topic", SYNC_TIMEOUT, {
            let me = me.clone();
            timeline_has(&room, move |ev| {
                ev["type"] == "m.room.topic"
                    && ev["state_key"] == ""
                    && ev["sender"] == me.as_str()
                    && ev["content"]["topic"] == "Testing topic"
            })
        })
        .await;
    d.destroy().await;
}
