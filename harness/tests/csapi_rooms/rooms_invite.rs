//! TestRoomsInvite (Complement: tests/csapi/rooms_invite_test.go).

use glia_harness::Deployment;
use serde_json::json;

use crate::{
    SYNC_TIMEOUT, create_room, default_room_version, invite, invited_to, join, joined_to,
    left_from, membership_of, must_get_state, must_invite, must_join, must_leave, must_put_state,
    privileged_creators, sync_events,
};

/// Can invite users to invite-only rooms; the invitee joins.
#[tokio::test]
async fn test_rooms_invite_can_invite_users_to_invite_only_rooms() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    must_invite(&alice, &room, &bob.user_id).await;
    let m = must_get_state(&alice, &room, "m.room.member", &bob.user_id).await;
    assert_eq!(m["membership"], "invite", "{m}");
    must_join(&bob, &room).await;
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "join");
    assert_eq!(membership_of(&bob, &room, &bob.user_id).await, "join");
    d.destroy().await;
}

/// The same, waiting for each step in /sync as Complement does.
#[tokio::test]
async fn test_rooms_invite_can_invite_users_to_invite_only_rooms_synced() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    must_invite(&alice, &room, &bob.user_id).await;
    bob.sync_until(
        None,
        "bob invited",
        SYNC_TIMEOUT,
        invited_to(&bob.user_id, &bob.user_id, &room),
    )
    .await;
    must_join(&bob, &room).await;
    bob.sync_until(None, "bob joined", SYNC_TIMEOUT, joined_to(&bob.user_id, &room)).await;
    alice.sync_until(None, "bob joined", SYNC_TIMEOUT, joined_to(&bob.user_id, &room)).await;
    d.destroy().await;
}

/// Uninvited users cannot join the room.
#[tokio::test]
async fn test_rooms_invite_uninvited_users_cannot_join() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    join(&bob, &room).await.must_error(403, "M_FORBIDDEN");
    bob.request("POST", &crate::cs(&["rooms", &room, "join"]), json!({}))
        .await
        .must_error(403, "M_FORBIDDEN");
    let r = crate::get_state(&alice, &room, "m.room.member", &bob.user_id).await;
    r.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// Invited user can reject invite (leave), and can no longer join without a new invite.
#[tokio::test]
async fn test_rooms_invite_invited_user_can_reject_invite() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    must_invite(&alice, &room, &bob.user_id).await;
    must_leave(&bob, &room).await;
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "leave");
    join(&bob, &room).await.must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}

/// Invited user can reject invite for empty room (the inviter left first), and the invite
/// is gone from their sync afterwards.
#[tokio::test]
async fn test_rooms_invite_reject_invite_for_empty_room() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    let alice_since = alice
        .sync_until(None, "alice joined", SYNC_TIMEOUT, joined_to(&alice.user_id, &room))
        .await;
    must_invite(&alice, &room, &bob.user_id).await;
    let bob_since = bob
        .sync_until(
            None,
            "bob invited",
            SYNC_TIMEOUT,
            invited_to(&bob.user_id, &bob.user_id, &room),
        )
        .await;
    must_leave(&alice, &room).await;
    alice
        .sync_until(Some(&alice_since), "alice left", SYNC_TIMEOUT, {
            left_from(&alice.user_id, &alice.user_id, &room)
        })
        .await;
    must_leave(&bob, &room).await;
    let bob_since = bob
        .sync_until(Some(&bob_since), "bob left", SYNC_TIMEOUT, {
            left_from(&bob.user_id, &bob.user_id, &room)
        })
        .await;
    // Invited user can reject local invite after originator leaves: no invite afterwards.
    let resp = bob.sync(Some(&bob_since), 0, None).await;
    assert!(resp["rooms"]["invite"].get(&room).is_none(), "{resp}");
    let resp = crate::sync_room(&bob, &room).await;
    assert!(resp["rooms"]["invite"].get(&room).is_none(), "{resp}");
    d.destroy().await;
}

/// Users cannot invite themselves to a room.
#[tokio::test]
async fn test_rooms_invite_users_cannot_invite_themselves() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    invite(&alice, &room, &alice.user_id).await.must_error(403, "M_FORBIDDEN");
    assert_eq!(membership_of(&alice, &room, &alice.user_id).await, "join");
    d.destroy().await;
}

/// Users cannot invite a user that is already in the room.
#[tokio::test]
async fn test_rooms_invite_users_cannot_invite_joined_user() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    must_invite(&alice, &room, &bob.user_id).await;
    must_join(&bob, &room).await;
    invite(&alice, &room, &bob.user_id).await.must_error(403, "M_FORBIDDEN");
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "join");
    d.destroy().await;
}

/// Only members with the `invite` power level can invite; outsiders cannot invite at all,
/// and a malformed or missing `user_id` is a 400.
#[tokio::test]
async fn test_rooms_invite_needs_membership_and_power() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let carol = d.register_user(0, "carol").await;
    let eve = d.register_user(0, "eve").await;
    let version = default_room_version(&alice).await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    // Eve is not in the room.
    invite(&eve, &room, &carol.user_id).await.must_error(403, "M_FORBIDDEN");
    // Bob is in it, with power 0 < invite 50.
    must_join(&bob, &room).await;
    let mut users = json!({});
    if !privileged_creators(&version) {
        users[&alice.user_id] = json!(100);
    }
    must_put_state(&alice, &room, "m.room.power_levels", "", json!({"invite": 50, "users": users}))
        .await;
    invite(&bob, &room, &carol.user_id).await.must_error(403, "M_FORBIDDEN");
    crate::get_state(&alice, &room, "m.room.member", &carol.user_id)
        .await
        .must_error(404, "M_NOT_FOUND");
    // Bad bodies.
    let path = crate::cs(&["rooms", &room, "invite"]);
    let r = alice.request("POST", &path, json!({})).await;
    let body = r.must_client_error();
    assert_eq!(r.status, 400, "{body}");
    let r = alice.request("POST", &path, json!({"user_id": "not a user"})).await;
    let body = r.must_client_error();
    assert_eq!(r.status, 400, "{body}");
    d.destroy().await;
}

/// Invited user can see room metadata: the invite's stripped state carries the join rules
/// and name, matching the room's state.
#[tokio::test]
async fn test_rooms_invite_invited_user_can_see_room_metadata() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "private_chat", "name": "Invites room"})).await;
    must_invite(&alice, &room, &bob.user_id).await;
    bob.sync_until(
        None,
        "bob invited",
        SYNC_TIMEOUT,
        invited_to(&bob.user_id, &bob.user_id, &room),
    )
    .await;
    let resp = crate::sync_room(&bob, &room).await;
    let stripped = sync_events(&resp, "invite", &room, "invite_state");
    let mut seen = vec![];
    for (t, field) in [("m.room.join_rules", "join_rule"), ("m.room.name", "name")] {
        let Some(ev) = stripped.iter().find(|e| e["type"] == t) else { continue };
        let content =
            must_get_state(&alice, &room, t, ev["state_key"].as_str().unwrap_or("")).await;
        assert_eq!(ev["content"][field], content[field], "{t}: {resp}");
        seen.push(t);
    }
    assert_eq!(seen, ["m.room.join_rules", "m.room.name"], "invite_state: {resp}");
    d.destroy().await;
}
