//! TestPowerLevels and TestDemotingUsersViaUsersDefault (Complement:
//! tests/csapi/power_levels_test.go), TestRoomLevels (apidoc_room_levels_test.go), and
//! attempts to escalate power that the auth rules refuse.
//!
//! Rooms get the server's default version; from version 12 the creator has infinite power
//! and may not appear in `users`, so contents are built per version as Complement does.

use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

use crate::{
    create_room, default_room_version, get_event, must_get_state, must_join, must_put_state,
    privileged_creators, put_state, send_text,
};

/// A `users` map with `others`, plus the creator at 100 where the version lists creators.
fn users(version: &str, creator: &Client, others: &[(&str, i64)]) -> Value {
    let mut m = json!({});
    if !privileged_creators(version) {
        m[&creator.user_id] = json!(100);
    }
    for (u, l) in others {
        m[*u] = json!(l);
    }
    m
}

/// GET /rooms/:room_id/state/m.room.power_levels can fetch levels: numbers everywhere, and
/// the creator above the default (or, from v12, not listed at all).
#[tokio::test]
async fn test_power_levels_can_fetch_levels() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let version = default_room_version(&alice).await;
    let room = create_room(&alice, json!({})).await;
    let pl = must_get_state(&alice, &room, "m.room.power_levels", "").await;
    for k in ["ban", "kick", "redact", "state_default", "events_default", "users_default"] {
        assert!(pl[k].is_number(), "{k} in {pl}");
    }
    for (k, v) in pl["events"].as_object().unwrap_or_else(|| panic!("{pl}")) {
        assert!(v.is_number(), "events.{k} in {pl}");
    }
    for (k, v) in pl["users"].as_object().unwrap_or_else(|| panic!("{pl}")) {
        assert!(v.is_number(), "users.{k} in {pl}");
    }
    if privileged_creators(&version) {
        assert!(pl["users"].get(&alice.user_id).is_none(), "{pl}");
    } else {
        let mine = pl["users"][&alice.user_id].as_i64().unwrap_or_else(|| panic!("{pl}"));
        assert!(mine > pl["users_default"].as_i64().unwrap_or(0), "{pl}");
    }
    d.destroy().await;
}

/// PUT /rooms/:room_id/state/m.room.power_levels can set levels; the event has exactly the
/// content sent, and the new levels are the room's.
#[tokio::test]
async fn test_power_levels_can_set_levels() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let version = default_room_version(&alice).await;
    let room = create_room(&alice, json!({})).await;
    let content = json!({
        "invite": 100,
        "users": users(&version, &alice, &[("@random-other-user:their.home", 20)]),
    });
    let id = must_put_state(&alice, &room, "m.room.power_levels", "", content.clone()).await;
    let ev = get_event(&alice, &room, &id).await.must_status(200);
    assert_eq!(ev["content"], content, "{ev}");
    let pl = must_get_state(&alice, &room, "m.room.power_levels", "").await;
    assert_eq!(pl, content);
    assert_eq!(pl["users"]["@random-other-user:their.home"], 20);
    d.destroy().await;
}

/// PUT power_levels should not explode if the old power levels were empty: levels without
/// `events`, then without `users` (the creator loses its listed power), then an attempt
/// that must fail (403 before v12; a creator in `users` is a 400 from v12) — never a 500 —
/// and the state stays as it was.
#[tokio::test]
async fn test_power_levels_old_levels_empty() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let version = default_room_version(&alice).await;
    let room = create_room(&alice, json!({})).await;
    must_put_state(
        &alice,
        &room,
        "m.room.power_levels",
        "",
        json!({"users": users(&version, &alice, &[])}),
    )
    .await;
    must_put_state(&alice, &room, "m.room.power_levels", "", json!({})).await;
    if privileged_creators(&version) {
        let r = put_state(
            &alice,
            &room,
            "m.room.power_levels",
            "",
            json!({"users": {alice.user_id.clone(): 100}}),
        )
        .await;
        r.must_status(400);
    } else {
        let r = put_state(&alice, &room, "m.room.power_levels", "", json!({"users": {}})).await;
        r.must_error(403, "M_FORBIDDEN");
    }
    let pl = must_get_state(&alice, &room, "m.room.power_levels", "").await;
    assert!(pl.get("users").is_none(), "{pl}");
    d.destroy().await;
}

/// TestDemotingUsersViaUsersDefault: a user at 100 may lower `users_default` from 100 even
/// though it equals their own level.
#[tokio::test]
async fn test_demoting_users_via_users_default() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let version = default_room_version(&alice).await;
    let u = users(&version, &alice, &[(&bob.user_id, 100)]);
    let room = create_room(
        &alice,
        json!({
            "preset": "public_chat",
            "power_level_content_override": {"users_default": 100, "users": u, "events": {}, "notifications": {}},
        }),
    )
    .await;
    must_join(&bob, &room).await;
    must_put_state(
        &bob,
        &room,
        "m.room.power_levels",
        "",
        json!({"users_default": 40, "users": u, "events": {}, "notifications": {}}),
    )
    .await;
    let pl = must_get_state(&alice, &room, "m.room.power_levels", "").await;
    assert_eq!(pl["users_default"], 40, "{pl}");
    d.destroy().await;
}

/// Escalation attempts by a moderator (level 50, allowed to send power levels) are refused:
/// raising themselves, raising others above themselves, changing a user or level above
/// them, raising a level above themselves. What stays within their own level is allowed.
#[tokio::test]
async fn test_power_levels_escalation_rejected() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let carol = d.register_user(0, "carol").await;
    let version = default_room_version(&alice).await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    must_join(&carol, &room).await;
    let base = json!({
        "users": users(&version, &alice, &[(&bob.user_id, 50)]),
        "users_default": 0,
        "events": {"m.room.power_levels": 50, "m.room.name": 50},
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
    });
    must_put_state(&alice, &room, "m.room.power_levels", "", base.clone()).await;

    let attempt = |edit: &dyn Fn(&mut Value)| {
        let mut c = base.clone();
        edit(&mut c);
        c
    };
    let bob_id = bob.user_id.clone();
    let carol_id = carol.user_id.clone();
    let alice_id = alice.user_id.clone();
    let refused = [
        ("bob raises himself to 100", attempt(&|c| c["users"][&bob_id] = json!(100))),
        ("bob raises himself to 51", attempt(&|c| c["users"][&bob_id] = json!(51))),
        ("bob raises carol above himself", attempt(&|c| c["users"][&carol_id] = json!(75))),
        ("bob raises the ban level above himself", attempt(&|c| c["ban"] = json!(75))),
        (
            "bob raises the users_default above himself",
            attempt(&|c| c["users_default"] = json!(60)),
        ),
        (
            "bob makes power levels need more than he has",
            attempt(&|c| c["events"]["m.room.power_levels"] = json!(100)),
        ),
    ];
    for (what, content) in refused {
        let r = put_state(&bob, &room, "m.room.power_levels", "", content).await;
        assert_eq!(r.status, 403, "{what}: {}", r.text());
        r.must_error(403, "M_FORBIDDEN");
    }
    if !privileged_creators(&version) {
        // Lowering someone above him, or removing them.
        let demote = attempt(&|c| c["users"][&alice_id] = json!(0));
        put_state(&bob, &room, "m.room.power_levels", "", demote)
            .await
            .must_error(403, "M_FORBIDDEN");
        let remove = attempt(&|c| {
            c["users"].as_object_mut().expect("users").remove(&alice_id);
        });
        put_state(&bob, &room, "m.room.power_levels", "", remove)
            .await
            .must_error(403, "M_FORBIDDEN");
    }
    // Nothing changed.
    assert_eq!(must_get_state(&carol, &room, "m.room.power_levels", "").await, base);

    // Within his own level: carol up to 50, kick down to 25.
    let ok = attempt(&|c| {
        c["users"][&carol_id] = json!(50);
        c["kick"] = json!(25);
    });
    must_put_state(&bob, &room, "m.room.power_levels", "", ok.clone()).await;
    assert_eq!(must_get_state(&alice, &room, "m.room.power_levels", "").await, ok);
    // But not lowering carol now that she equals him.
    let lower = attempt(&|c| {
        c["users"][&carol_id] = json!(10);
        c["kick"] = json!(25);
    });
    put_state(&bob, &room, "m.room.power_levels", "", lower).await.must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}

/// Users below the power levels' event level cannot change them at all; non-members even
/// less; and the levels gate other events (a message type raised above a user's level).
#[tokio::test]
async fn test_power_levels_gate_events() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let eve = d.register_user(0, "eve").await;
    let version = default_room_version(&alice).await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    let pl = must_get_state(&alice, &room, "m.room.power_levels", "").await;
    let mut raised = pl.clone();
    raised["users"][&bob.user_id] = json!(100);
    put_state(&bob, &room, "m.room.power_levels", "", raised.clone())
        .await
        .must_error(403, "M_FORBIDDEN");
    put_state(&eve, &room, "m.room.power_levels", "", raised).await.must_error(403, "M_FORBIDDEN");

    // Messages now need 10; bob has 0, alice has 100 (or is a creator).
    let mut gated = pl.clone();
    gated["users"] = users(&version, &alice, &[]);
    gated["events"]["m.room.message"] = json!(10);
    must_put_state(&alice, &room, "m.room.power_levels", "", gated).await;
    let r = crate::send_event(
        &bob,
        &room,
        "m.room.message",
        json!({"msgtype": "m.text", "body": "hi"}),
    )
    .await;
    r.must_error(403, "M_FORBIDDEN");
    // Other message types still use events_default.
    crate::must_send_event(&bob, &room, "org.example.chat", json!({"body": "hi"})).await;
    send_text(&alice, &room, "I can").await;
    d.destroy().await;
}
