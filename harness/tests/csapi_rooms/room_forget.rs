//! TestRoomForget (Complement: tests/csapi/apidoc_room_forget_test.go).

use glia_harness::{Client, Deployment};
use serde_json::json;

use crate::{
    create_room, cs, join, membership_of, messages, moderate, must_invite, must_join, must_leave,
    must_messages, must_put_state, send_text,
};

async fn forget(c: &Client, room_id: &str) -> glia_harness::Response {
    c.request("POST", &cs(&["rooms", room_id, "forget"]), json!({})).await
}

/// Can't forget room you're still in: 400 M_UNKNOWN.
#[tokio::test]
async fn test_room_forget_while_joined() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    forget(&alice, &room).await.must_error(400, "M_UNKNOWN");
    // Still joined and usable.
    send_text(&alice, &room, "still here").await;
    d.destroy().await;
}

/// Forget after leave works; forgotten room messages cannot be paginated.
#[tokio::test]
async fn test_room_forget_after_leave() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    send_text(&alice, &room, "Hello world!").await;
    must_leave(&alice, &room).await;
    forget(&alice, &room).await.must_status(200);
    messages(&alice, &room, &[("dir", "b")]).await.must_error(403, "M_FORBIDDEN");
    // The room goes on without her.
    assert_eq!(membership_of(&bob, &room, &alice.user_id).await, "leave");
    send_text(&bob, &room, "alone now").await;
    d.destroy().await;
}

/// A forgotten room is not in the user's /sync (join, invite or leave sections).
#[tokio::test]
async fn test_room_forget_not_in_sync() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    crate::send_event_synced(
        &alice,
        &room,
        "m.room.message",
        json!({"msgtype": "m.text", "body": "Hello world!"}),
    )
    .await;
    must_leave(&alice, &room).await;
    forget(&alice, &room).await.must_status(200);
    let resp = crate::sync_room(&alice, &room).await;
    for section in ["join", "invite", "leave"] {
        assert!(resp["rooms"][section].get(&room).is_none(), "{section}: {resp}");
    }
    // Even asking for left rooms explicitly.
    let filter = json!({"room": {"include_leave": true}}).to_string();
    let resp = alice.sync(None, 0, Some(&filter)).await;
    assert!(resp["rooms"]["leave"].get(&room).is_none(), "{resp}");
    d.destroy().await;
}

/// Can forget room you've been kicked from.
#[tokio::test]
async fn test_room_forget_after_kick() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    send_text(&alice, &room, "Hello world!").await;
    moderate(&alice, &room, "kick", &bob.user_id).await.must_status(200);
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "leave");
    forget(&bob, &room).await.must_status(200);
    d.destroy().await;
}

/// Can re-join room if re-invited: after leaving and forgetting an invite-only room, a
/// join is refused until a new invite; then the old messages are visible again and new
/// ones can be sent.
#[tokio::test]
async fn test_room_forget_can_rejoin_if_reinvited() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    must_invite(&alice, &room, &bob.user_id).await;
    must_put_state(&alice, &room, "m.room.join_rules", "", json!({"join_rule": "invite"})).await;
    must_join(&bob, &room).await;
    let before = send_text(&bob, &room, "Before leave").await;
    must_leave(&bob, &room).await;
    forget(&bob, &room).await.must_status(200);
    join(&bob, &room).await.must_error(403, "M_FORBIDDEN");
    must_invite(&alice, &room, &bob.user_id).await;
    must_join(&bob, &room).await;
    let page = must_messages(&bob, &room, &[("dir", "b"), ("limit", "100")]).await;
    let ids = crate::event_ids(&page["chunk"]);
    assert!(ids.contains(&before), "the message before leaving: {page}");
    let after = send_text(&bob, &room, "After rejoin").await;
    let page = must_messages(&bob, &room, &[("dir", "b"), ("limit", "1")]).await;
    assert_eq!(crate::event_ids(&page["chunk"]), vec![after], "{page}");
    d.destroy().await;
}

/// Can forget room we weren't an actual member of (a rejected invite); the inviter, after
/// leaving, can forget it too.
#[tokio::test]
async fn test_room_forget_rejected_invite() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    must_invite(&alice, &room, &bob.user_id).await;
    must_leave(&bob, &room).await;
    forget(&bob, &room).await.must_status(200);
    must_leave(&alice, &room).await;
    forget(&alice, &room).await.must_status(200);
    d.destroy().await;
}
