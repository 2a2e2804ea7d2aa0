//! Leaving, kicking, banning and unbanning: TestNotPresentUserCannotBanOthers
//! (Complement: tests/csapi/room_ban_test.go), TestCannotKickNonPresentUser and
//! TestCannotKickLeftUser (room_kick_test.go), and the ban/unban/rejoin rules.

use glia_harness::Deployment;
use serde_json::json;

use crate::{
    SYNC_TIMEOUT, create_room, cs, default_room_version, invite, join, leave, left_from,
    membership_of, moderate, must_get_state, must_join, must_leave, must_put_state,
    privileged_creators, send_event, send_text,
};

/// TestNotPresentUserCannotBanOthers: power in the levels is not enough without being in
/// the room.
#[tokio::test]
async fn test_not_present_user_cannot_ban_others() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let charlie = d.register_user(0, "charlie").await;
    let version = default_room_version(&alice).await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    let mut users = json!({charlie.user_id.clone(): 100});
    if !privileged_creators(&version) {
        users[&alice.user_id] = json!(100);
    }
    must_put_state(&alice, &room, "m.room.power_levels", "", json!({"users": users})).await;
    moderate(&charlie, &room, "ban", &bob.user_id).await.must_error(403, "M_FORBIDDEN");
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "join");
    d.destroy().await;
}

/// TestCannotKickNonPresentUser: kicking someone who was never in the room is refused.
#[tokio::test]
async fn test_cannot_kick_non_present_user() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    moderate(&alice, &room, "kick", &bob.user_id).await.must_error(403, "M_FORBIDDEN");
    let r = crate::get_state(&alice, &room, "m.room.member", &bob.user_id).await;
    r.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// TestCannotKickLeftUser: kicking someone who already left is refused.
#[tokio::test]
async fn test_cannot_kick_left_user() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    must_leave(&bob, &room).await;
    moderate(&alice, &room, "kick", &bob.user_id).await.must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}

/// A kick makes the membership `leave` with the reason; a kicked user may rejoin a public
/// room. Kicking needs the kick level and more power than the target.
#[tokio::test]
async fn test_kick() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let carol = d.register_user(0, "carol").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    must_join(&carol, &room).await;
    // Bob (0) cannot kick carol (0) nor alice.
    moderate(&bob, &room, "kick", &carol.user_id).await.must_error(403, "M_FORBIDDEN");
    moderate(&bob, &room, "kick", &alice.user_id).await.must_error(403, "M_FORBIDDEN");
    moderate(&alice, &room, "kick", &bob.user_id).await.must_status(200);
    let m = must_get_state(&alice, &room, "m.room.member", &bob.user_id).await;
    assert_eq!(m["membership"], "leave", "{m}");
    assert_eq!(m["reason"], "testing", "{m}");
    // A kicked user is out: cannot send.
    let r = send_event(&bob, &room, "m.room.message", json!({"msgtype": "m.text", "body": "hey"}));
    r.await.must_error(403, "M_FORBIDDEN");
    // But may come back to a public room.
    must_join(&bob, &room).await;
    send_text(&bob, &room, "I'm back").await;
    d.destroy().await;
}

/// A banned user cannot rejoin (by either join endpoint) or be invited; after an unban
/// the membership is `leave` and they may rejoin the public room.
#[tokio::test]
async fn test_ban_unban_rejoin() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    moderate(&alice, &room, "ban", &bob.user_id).await.must_status(200);
    let m = must_get_state(&alice, &room, "m.room.member", &bob.user_id).await;
    assert_eq!(m["membership"], "ban", "{m}");
    assert_eq!(m["reason"], "testing", "{m}");

    // 403 (Synapse's errcode is M_BAD_STATE).
    let r = join(&bob, &room).await;
    assert_eq!(r.status, 403, "{}", r.text());
    r.must_client_error();
    let r = bob.request("POST", &cs(&["rooms", &room, "join"]), json!({})).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = invite(&alice, &room, &bob.user_id).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = send_event(&bob, &room, "m.room.message", json!({"msgtype": "m.text", "body": "hey"}));
    r.await.must_error(403, "M_FORBIDDEN");
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "ban");

    moderate(&alice, &room, "unban", &bob.user_id).await.must_status(200);
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "leave");
    must_join(&bob, &room).await;
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "join");
    send_text(&bob, &room, "thanks").await;
    d.destroy().await;
}

/// Banning someone who never joined works and keeps them out; unbanning needs a ban to
/// lift and the ban level; banning needs the ban level.
#[tokio::test]
async fn test_ban_rules() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let eve = d.register_user(0, "eve").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;

    moderate(&alice, &room, "ban", &eve.user_id).await.must_status(200);
    assert_eq!(join(&eve, &room).await.status, 403);

    // Bob (0) can neither ban nor unban.
    moderate(&bob, &room, "unban", &eve.user_id).await.must_error(403, "M_FORBIDDEN");
    moderate(&bob, &room, "ban", &alice.user_id).await.must_error(403, "M_FORBIDDEN");
    assert_eq!(membership_of(&alice, &room, &eve.user_id).await, "ban");

    // Unbanning someone not banned is refused (403; Synapse's errcode is M_BAD_STATE).
    let r = moderate(&alice, &room, "unban", &bob.user_id).await;
    assert_eq!(r.status, 403, "{}", r.text());
    r.must_client_error();
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "join");
    // A missing user_id is a 400.
    let r = alice.request("POST", &cs(&["rooms", &room, "ban"]), json!({"reason": "x"})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    r.must_client_error();
    d.destroy().await;
}

/// Leaving: the membership becomes `leave`, the user can no longer send or read, and the
/// leave reaches the user's own /sync as a left room.
#[tokio::test]
async fn test_leave() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let eve = d.register_user(0, "eve").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    let since = crate::sync_token(&bob).await;
    must_leave(&bob, &room).await;
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "leave");
    let r = send_event(&bob, &room, "m.room.message", json!({"msgtype": "m.text", "body": "hey"}));
    r.await.must_error(403, "M_FORBIDDEN");
    let body = bob.get(&cs(&["joined_rooms"])).await.must_status(200);
    assert!(!body["joined_rooms"].as_array().expect("list").contains(&json!(room)), "{body}");
    // Leaving a room one was never in is refused.
    leave(&eve, &room).await.must_error(403, "M_FORBIDDEN");
    bob.sync_until(Some(&since), "bob's room in rooms.leave", SYNC_TIMEOUT, {
        left_from(&bob.user_id, &bob.user_id, &room)
    })
    .await;
    d.destroy().await;
}
