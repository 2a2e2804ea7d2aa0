//! Room version 12 across two Glias: a room named by its create event's hash (no server
//! part) is joined over federation through a server name, messages go both ways, power
//! held only as a creator is honoured by the other server, and invites to such a room
//! are accepted and joined through the inviting server.

use glia_harness::{Client, Deployment};
use serde_json::json;

use glia_harness::rooms::*;

fn assert_no_server_part(room: &str) {
    assert!(room.starts_with('!') && !room.contains(':'), "a v12 room ID: {room}");
}

/// Both servers list both users as joined.
async fn both_joined(alice: &Client, bob: &Client, room: &str) {
    for c in [alice, bob] {
        let m = c.get(&cs(&["rooms", room, "joined_members"])).await.must_status(200);
        let joined = m["joined"].as_object().expect("joined");
        assert!(joined.contains_key(&alice.user_id) && joined.contains_key(&bob.user_id), "{m}");
    }
}

#[tokio::test]
async fn test_v12_join_over_federation_then_talk_both_ways() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let alice = dep.register_user(0, "alice").await;
    let bob = dep.register_user(1, "bob").await;
    let room = create_room(
        &alice,
        json!({"room_version": "12", "preset": "public_chat", "name": "Twelve"}),
    )
    .await;
    assert_no_server_part(&room);

    // Without a server to ask, hs2 cannot find a room whose ID names none.
    let r = bob.request("POST", &cs(&["join", &room]), json!({})).await;
    assert_eq!(r.status, 404, "joined without a server to ask: {}", r.text());

    let joined = join_via(&bob, &room, &server_of(&alice.user_id)).await;
    assert_eq!(joined["room_id"], room.as_str(), "join answered {joined}");
    wait_membership(&alice, &room, &bob.user_id, "join").await;

    // hs2 has the room's state, the create event included and named after the room.
    let create = bob.get(&cs(&["rooms", &room, "state", "m.room.create", ""])).await;
    assert_eq!(create.must_status(200)["room_version"], "12");
    let name = bob.get(&cs(&["rooms", &room, "state", "m.room.name", ""])).await.must_status(200);
    assert_eq!(name["name"], "Twelve");
    let create_id = format!("${}", &room[1..]);
    let ev = bob.get(&cs(&["rooms", &room, "event", &create_id])).await.must_status(200);
    assert_eq!(ev["room_id"], room.as_str(), "{ev}");
    assert_eq!(ev["sender"], alice.user_id.as_str(), "{ev}");

    let from_bob = send_text(&bob, &room, "hello from hs2").await;
    wait_event(&alice, &room, &from_bob).await;
    let from_alice = send_text(&alice, &room, "hello from hs1").await;
    wait_event(&bob, &room, &from_alice).await;
    both_joined(&alice, &bob, &room).await;

    // Alice's power comes from being the creator, not from power levels: hs2 accepts the
    // name she sets without her being listed, and refuses Bob's.
    let pl = alice.get(&cs(&["rooms", &room, "state", "m.room.power_levels", ""])).await;
    let pl = pl.must_status(200);
    assert!(pl["users"].get(&alice.user_id).is_none(), "{pl}");
    let set = alice
        .request("PUT", &cs(&["rooms", &room, "state", "m.room.name", ""]), json!({"name": "12b"}))
        .await
        .must_status(200);
    let renamed = set["event_id"].as_str().expect("event_id").to_string();
    wait_event(&bob, &room, &renamed).await;
    let name = bob.get(&cs(&["rooms", &room, "state", "m.room.name", ""])).await.must_status(200);
    assert_eq!(name["name"], "12b");
    bob.request("PUT", &cs(&["rooms", &room, "state", "m.room.name", ""]), json!({"name": "no"}))
        .await
        .must_error(403, "M_FORBIDDEN");
    dep.destroy().await;
}

#[tokio::test]
async fn test_v12_invite_over_federation_then_join() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let alice = dep.register_user(0, "alice").await;
    let bob = dep.register_user(1, "bob").await;
    let room = create_room(
        &alice,
        json!({"room_version": "12", "preset": "private_chat", "name": "Invited to 12"}),
    )
    .await;
    assert_no_server_part(&room);
    alice
        .request("POST", &cs(&["rooms", &room, "invite"]), json!({"user_id": bob.user_id}))
        .await
        .must_status(200);
    let room2 = room.clone();
    bob.sync_until(None, "the v12 invite on hs2", WAIT, move |r| {
        r["rooms"]["invite"][&room2]["invite_state"]["events"].as_array().is_some_and(|evs| {
            evs.iter()
                .any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Invited to 12")
                && evs.iter().any(|e| e["type"] == "m.room.create")
                // Whole PDUs between servers, stripped events for clients.
                && evs.iter().all(|e| e.get("signatures").is_none())
        })
    })
    .await;
    // Accepting needs no server name: the invite says where to go.
    bob.request("POST", &cs(&["rooms", &room, "join"]), json!({})).await.must_status(200);
    wait_membership(&alice, &room, &bob.user_id, "join").await;
    let from_bob = send_text(&bob, &room, "thanks").await;
    wait_event(&alice, &room, &from_bob).await;
    let from_alice = send_text(&alice, &room, "welcome").await;
    wait_event(&bob, &room, &from_alice).await;
    both_joined(&alice, &bob, &room).await;
    dep.destroy().await;
}

/// Knocking on a v12 room over federation: the knocker's server shows the room's state
/// (sent as whole PDUs for v12) as stripped events, and an invite then lets him in.
#[tokio::test]
async fn test_v12_knock_over_federation() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let alice = dep.register_user(0, "alice").await;
    let bob = dep.register_user(1, "bob").await;
    let room = create_room(
        &alice,
        json!({
            "room_version": "12",
            "preset": "private_chat",
            "name": "Knock on 12",
            "initial_state": [{"type": "m.room.join_rules", "content": {"join_rule": "knock"}}],
        }),
    )
    .await;
    let q = format!(
        "?server_name={}",
        glia_harness::client::encode_segment(&server_of(&alice.user_id))
    );
    let r = bob.request("POST", &cs(&["knock", &room, &q]), json!({})).await;
    assert_eq!(r.status, 200, "knock failed: {}", r.text());
    let room2 = room.clone();
    bob.sync_until(None, "the v12 knock on hs2", WAIT, move |r| {
        r["rooms"]["knock"][&room2]["knock_state"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Knock on 12")
                && evs.iter().all(|e| e.get("signatures").is_none() && e.get("hashes").is_none())
        })
    })
    .await;
    wait_membership(&alice, &room, &bob.user_id, "knock").await;
    alice
        .request("POST", &cs(&["rooms", &room, "invite"]), json!({"user_id": bob.user_id}))
        .await
        .must_status(200);
    let room2 = room.clone();
    bob.sync_until(None, "the invite on hs2", WAIT, move |r| {
        r["rooms"]["invite"].get(&room2).is_some()
    })
    .await;
    bob.request("POST", &cs(&["rooms", &room, "join"]), json!({})).await.must_status(200);
    wait_membership(&alice, &room, &bob.user_id, "join").await;
    dep.destroy().await;
}
