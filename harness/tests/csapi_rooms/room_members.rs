//! TestRoomMembers (Complement: tests/csapi/apidoc_room_members_test.go), TestGetRoomMembers
//! and TestGetFilteredRoomMembers (room_members_test.go), and `joined_members` with display
//! names (the joined_members check of TestRoomState).

use glia_harness::{Client, Deployment};
use serde_json::json;

use crate::{
    SYNC_TIMEOUT, create_room, cs, default_room_version, invited_to, joined_to, left_from,
    membership_of, moderate, must_invite, must_join, must_leave, must_put_state,
    privileged_creators, set_displayname, timeline_has,
};

/// `(state_key, membership)` of every event in a /members chunk, sorted; checks that each
/// is a member event of `room_id`.
async fn members(c: &Client, room_id: &str, q: &str) -> Vec<(String, String)> {
    let mut path = cs(&["rooms", room_id, "members"]);
    if !q.is_empty() {
        path.push(q);
    }
    let body = c.get(&path).await.must_status(200);
    let chunk = body["chunk"].as_array().unwrap_or_else(|| panic!("no chunk in {body}"));
    let mut out: Vec<(String, String)> = chunk
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "m.room.member", "{e}");
            assert_eq!(e["room_id"], room_id, "{e}");
            assert!(e["event_id"].is_string() && e["sender"].is_string(), "{e}");
            let k = e["state_key"].as_str().unwrap_or_else(|| panic!("{e}")).to_string();
            let m = e["content"]["membership"].as_str().unwrap_or_else(|| panic!("{e}")).into();
            (k, m)
        })
        .collect();
    out.sort();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> =
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    v.sort();
    v
}

/// POST /rooms/:room_id/join and POST /join/:room_id can join a room; the answer names it.
#[tokio::test]
async fn test_room_members_join() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"visibility": "public", "preset": "public_chat"})).await;
    let body =
        bob.request("POST", &cs(&["rooms", &room, "join"]), json!({})).await.must_status(200);
    assert_eq!(body["room_id"], room.as_str(), "{body}");
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "join");

    let room2 = create_room(&alice, json!({"visibility": "public", "preset": "public_chat"})).await;
    let body = bob.request("POST", &cs(&["join", &room2]), json!({})).await.must_status(200);
    assert_eq!(body["room_id"], room2.as_str(), "{body}");
    assert_eq!(membership_of(&alice, &room2, &bob.user_id).await, "join");
    // Both appear in bob's joined rooms.
    let body = bob.get(&cs(&["joined_rooms"])).await.must_status(200);
    let joined = body["joined_rooms"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert!(joined.contains(&json!(room)) && joined.contains(&json!(room2)), "{body}");
    d.destroy().await;
}

/// The same joins as Complement checks them, through /sync.
#[tokio::test]
async fn test_room_members_join_synced() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"visibility": "public", "preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    bob.sync_until(None, "bob joined", SYNC_TIMEOUT, joined_to(&bob.user_id, &room)).await;
    let bob_id = bob.user_id.clone();
    bob.sync_until(None, "bob's join in the timeline", SYNC_TIMEOUT, {
        timeline_has(&room, move |ev| {
            ev["type"] == "m.room.member"
                && ev["state_key"] == bob_id.as_str()
                && ev["content"]["membership"] == "join"
        })
    })
    .await;
    alice.sync_until(None, "alice sees bob", SYNC_TIMEOUT, joined_to(&bob.user_id, &room)).await;
    d.destroy().await;
}

/// POST /rooms/:room_id/ban can ban a user; /invite can send an invite; /leave can leave.
#[tokio::test]
async fn test_room_members_ban_invite_leave() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;

    let room = create_room(&alice, json!({"visibility": "public", "preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    moderate(&alice, &room, "ban", &bob.user_id).await.must_status(200);
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "ban");

    let room = create_room(&alice, json!({})).await;
    must_invite(&alice, &room, &bob.user_id).await;
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "invite");
    must_join(&bob, &room).await;
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "join");
    must_leave(&bob, &room).await;
    assert_eq!(membership_of(&alice, &room, &bob.user_id).await, "leave");
    d.destroy().await;
}

/// The invite/join/leave flow through /sync: each side sees the other's membership change.
#[tokio::test]
async fn test_room_members_invite_join_leave_synced() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({})).await;
    must_invite(&alice, &room, &bob.user_id).await;
    alice
        .sync_until(
            None,
            "bob invited",
            SYNC_TIMEOUT,
            invited_to(&alice.user_id, &bob.user_id, &room),
        )
        .await;
    bob.sync_until(None, "my invite", SYNC_TIMEOUT, invited_to(&bob.user_id, &bob.user_id, &room))
        .await;
    must_join(&bob, &room).await;
    let since =
        alice.sync_until(None, "bob joined", SYNC_TIMEOUT, joined_to(&bob.user_id, &room)).await;
    let bob_since =
        bob.sync_until(None, "I joined", SYNC_TIMEOUT, joined_to(&bob.user_id, &room)).await;
    must_leave(&bob, &room).await;
    alice
        .sync_until(
            Some(&since),
            "bob left",
            SYNC_TIMEOUT,
            left_from(&alice.user_id, &bob.user_id, &room),
        )
        .await;
    bob.sync_until(
        Some(&bob_since),
        "I left",
        SYNC_TIMEOUT,
        left_from(&bob.user_id, &bob.user_id, &room),
    )
    .await;
    d.destroy().await;
}

/// Test that we can be reinvited to a room we created: the creator leaves, the user they
/// made an admin invites them back, and they rejoin.
#[tokio::test]
async fn test_room_members_reinvited_to_room_we_created() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let version = default_room_version(&alice).await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    must_invite(&alice, &room, &bob.user_id).await;
    must_join(&bob, &room).await;
    let mut users = json!({bob.user_id.clone(): 100});
    if !privileged_creators(&version) {
        users[&alice.user_id] = json!(100);
    }
    must_put_state(
        &alice,
        &room,
        "m.room.power_levels",
        "",
        json!({"invite": 100, "users": users}),
    )
    .await;
    must_leave(&alice, &room).await;
    assert_eq!(membership_of(&bob, &room, &alice.user_id).await, "leave");
    must_invite(&bob, &room, &alice.user_id).await;
    must_join(&alice, &room).await;
    assert_eq!(membership_of(&bob, &room, &alice.user_id).await, "join");
    d.destroy().await;
}

/// TestGetRoomMembers: /members lists the member events of everyone in the room.
#[tokio::test]
async fn test_get_room_members() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    let expected = pairs(&[(&alice.user_id, "join"), (&bob.user_id, "join")]);
    assert_eq!(members(&alice, &room, "").await, expected);
    assert_eq!(members(&bob, &room, "").await, expected);
    d.destroy().await;
}

/// TestGetFilteredRoomMembers: `membership` and `not_membership` filter /members.
#[tokio::test]
async fn test_get_filtered_room_members() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let carol = d.register_user(0, "carol").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    must_leave(&bob, &room).await;
    must_invite(&alice, &room, &carol.user_id).await;

    let all =
        pairs(&[(&alice.user_id, "join"), (&bob.user_id, "leave"), (&carol.user_id, "invite")]);
    assert_eq!(members(&alice, &room, "").await, all);
    assert_eq!(
        members(&alice, &room, "?not_membership=leave").await,
        pairs(&[(&alice.user_id, "join"), (&carol.user_id, "invite")])
    );
    assert_eq!(
        members(&alice, &room, "?membership=leave").await,
        pairs(&[(&bob.user_id, "leave")])
    );
    assert_eq!(
        members(&alice, &room, "?membership=join").await,
        pairs(&[(&alice.user_id, "join")])
    );
    assert_eq!(
        members(&alice, &room, "?membership=invite").await,
        pairs(&[(&carol.user_id, "invite")])
    );
    assert_eq!(members(&alice, &room, "?membership=ban").await, vec![]);
    d.destroy().await;
}

/// `joined_members` maps each joined user to the display name (and avatar) of their member
/// event; users who left or are only invited are not listed.
#[tokio::test]
async fn test_joined_members_with_display_names() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let carol = d.register_user(0, "carol").await;
    let dan = d.register_user(0, "dan").await;
    set_displayname(&alice, "Alice Liddell").await;
    set_displayname(&bob, "Bob the Builder").await;
    let avatar = "mxc://example.org/bobface";
    bob.request(
        "PUT",
        &cs(&["profile", &bob.user_id, "avatar_url"]),
        json!({"avatar_url": avatar}),
    )
    .await
    .must_status(200);
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    must_join(&carol, &room).await;
    must_leave(&carol, &room).await;
    must_invite(&alice, &room, &dan.user_id).await;

    for viewer in [&alice, &bob] {
        let body = viewer.get(&cs(&["rooms", &room, "joined_members"])).await.must_status(200);
        let joined = body["joined"].as_object().unwrap_or_else(|| panic!("{body}"));
        let mut ids: Vec<&String> = joined.keys().collect();
        ids.sort();
        let mut want = vec![&alice.user_id, &bob.user_id];
        want.sort();
        assert_eq!(ids, want, "{body}");
        assert_eq!(joined[&alice.user_id]["display_name"], "Alice Liddell", "{body}");
        assert_eq!(joined[&bob.user_id]["display_name"], "Bob the Builder", "{body}");
        assert_eq!(joined[&bob.user_id]["avatar_url"], avatar, "{body}");
        let a = &joined[&alice.user_id]["avatar_url"];
        assert!(a.is_null(), "alice has no avatar: {body}");
    }
    d.destroy().await;
}

/// Members lists are for members: someone never in the room gets 403 from /members and
/// /joined_members.
#[tokio::test]
async fn test_room_members_non_member_forbidden() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let eve = d.register_user(0, "eve").await;
    let room = create_room(&alice, json!({"preset": "private_chat"})).await;
    eve.get(&cs(&["rooms", &room, "members"])).await.must_error(403, "M_FORBIDDEN");
    eve.get(&cs(&["rooms", &room, "joined_members"])).await.must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}
