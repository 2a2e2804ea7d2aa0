//! Rooms across two Glias: joining through a server name, messages both ways, invites
//! (accepted and rejected), typing, receipts and to-device messages over federation,
//! after Complement's TestJoinViaRoomIDAndServerName, TestMessagesOverFederation,
//! TestFederationRoomsInvite, TestFederationRejectInvite, TestRemoteTyping and
//! TestToDeviceMessagesOverFederation.

use glia_harness::{Client, Deployment};
use serde_json::json;

use glia_harness::rooms::*;

/// Alice (hs1) creates a private room and invites Bob (hs2), who sees the invite.
async fn invited(dep: &Deployment, name: &str) -> (Client, Client, String) {
    let alice = dep.register_user(0, "alice").await;
    let bob = dep.register_user(1, "bob").await;
    let room = create_room(&alice, json!({"preset": "private_chat", "name": name})).await;
    alice
        .request("POST", &cs(&["rooms", &room, "invite"]), json!({"user_id": bob.user_id}))
        .await
        .must_status(200);
    let (room2, name) = (room.clone(), name.to_string());
    // The invite carries the room's stripped state.
    bob.sync_until(None, "the invite on hs2", WAIT, move |r| {
        r["rooms"]["invite"][&room2]["invite_state"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == name.as_str())
        })
    })
    .await;
    (alice, bob, room)
}

#[tokio::test]
async fn test_join_via_room_id_and_server_name_then_talk() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let alice = dep.register_user(0, "alice").await;
    let bob = dep.register_user(1, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat", "name": "Federated"})).await;

    let joined = join_via(&bob, &room, &server_of(&alice.user_id)).await;
    assert_eq!(joined["room_id"], room.as_str(), "join answered {joined}");

    // Bob's server has the room's state; Alice sees Bob's join.
    wait_membership(&alice, &room, &bob.user_id, "join").await;
    let name = bob.get(&cs(&["rooms", &room, "state", "m.room.name", ""])).await.must_status(200);
    assert_eq!(name["name"], "Federated");

    // Messages both ways (TestMessagesOverFederation).
    let from_bob = send_text(&bob, &room, "hello from hs2").await;
    wait_event(&alice, &room, &from_bob).await;
    let from_alice = send_text(&alice, &room, "hello from hs1").await;
    wait_event(&bob, &room, &from_alice).await;

    // Both servers list both members as joined.
    for c in [&alice, &bob] {
        let m = c.get(&cs(&["rooms", &room, "joined_members"])).await.must_status(200);
        let joined = m["joined"].as_object().expect("joined");
        assert!(joined.contains_key(&alice.user_id) && joined.contains_key(&bob.user_id), "{m}");
    }
    dep.destroy().await;
}

#[tokio::test]
async fn test_federation_rooms_invite_accept_and_leave() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let (alice, bob, room) = invited(&dep, "Invite only").await;
    // Accepting goes through the inviting server.
    bob.request("POST", &cs(&["rooms", &room, "join"]), json!({})).await.must_status(200);
    wait_membership(&alice, &room, &bob.user_id, "join").await;
    // Leaving a room both servers are in is an ordinary event sent to the other server.
    bob.request("POST", &cs(&["rooms", &room, "leave"]), json!({})).await.must_status(200);
    wait_membership(&alice, &room, &bob.user_id, "leave").await;
    dep.destroy().await;
}

#[tokio::test]
async fn test_federation_reject_invite() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let (alice, bob, room) = invited(&dep, "To reject").await;
    bob.request("POST", &cs(&["rooms", &room, "leave"]), json!({})).await.must_status(200);
    // The rejection reaches the inviting server, and the invite is gone on Bob's side.
    wait_membership(&alice, &room, &bob.user_id, "leave").await;
    let rooms = bob.sync(None, 0, None).await;
    assert!(rooms["rooms"]["invite"].get(&room).is_none(), "invite still listed: {rooms}");
    dep.destroy().await;
}

#[tokio::test]
async fn test_join_federated_room_fails_over_to_next_server() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let alice = dep.register_user(0, "alice").await;
    let bob = dep.register_user(1, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    // The first candidate does not answer (nothing listens there); the second is the room's server.
    let dead = format!("localhost:{}", glia_harness::deployment::free_port());
    let r = join_through(&bob, &room, &[&dead, &server_of(&alice.user_id)]).await;
    assert_eq!(r.status, 200, "join failed: {}", r.text());
    dep.destroy().await;
}

#[tokio::test]
async fn test_banned_user_cannot_join_over_federation() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let alice = dep.register_user(0, "alice").await;
    let bob = dep.register_user(1, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    alice
        .request("POST", &cs(&["rooms", &room, "ban"]), json!({"user_id": bob.user_id}))
        .await
        .must_status(200);
    let r = join_through(&bob, &room, &[&server_of(&alice.user_id)]).await;
    assert_eq!(r.status, 403, "a banned user joined: {}", r.text());
    dep.destroy().await;
}

/// Two federated servers with Alice (hs1) and Bob (hs2) joined to Alice's public room.
pub(crate) async fn shared_room(dep: &Deployment) -> (Client, Client, String) {
    let alice = dep.register_user(0, "alice").await;
    let bob = dep.register_user(1, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    let joined = join_via(&bob, &room, &server_of(&alice.user_id)).await;
    assert_eq!(joined["room_id"], room.as_str(), "join answered {joined}");
    wait_membership(&alice, &room, &bob.user_id, "join").await;
    (alice, bob, room)
}

#[tokio::test]
async fn test_remote_typing_and_receipts() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let (alice, bob, room) = shared_room(&dep).await;
    alice
        .request(
            "PUT",
            &cs(&["rooms", &room, "typing", &alice.user_id]),
            json!({"typing": true, "timeout": 10000}),
        )
        .await
        .must_status(200);
    let (room2, alice_id) = (room.clone(), alice.user_id.clone());
    bob.sync_until(None, "alice typing on hs2", WAIT, move |r| {
        r["rooms"]["join"][&room2]["ephemeral"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| {
                e["type"] == "m.typing"
                    && e["content"]["user_ids"]
                        .as_array()
                        .is_some_and(|u| u.contains(&json!(alice_id)))
            })
        })
    })
    .await;
    let ev = send_text(&bob, &room, "read me").await;
    wait_event(&alice, &room, &ev).await;
    alice
        .request("POST", &cs(&["rooms", &room, "receipt", "m.read", &ev]), json!({}))
        .await
        .must_status(200);
    let (room2, alice_id, ev2) = (room.clone(), alice.user_id.clone(), ev.clone());
    bob.sync_until(None, "alice's receipt on hs2", WAIT, move |r| {
        r["rooms"]["join"][&room2]["ephemeral"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| {
                e["type"] == "m.receipt" && e["content"][&ev2]["m.read"].get(&alice_id).is_some()
            })
        })
    })
    .await;
    dep.destroy().await;
}

#[tokio::test]
async fn test_to_device_messages_over_federation() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let alice = dep.register_user(0, "alice").await;
    let bob = dep.register_user(1, "bob").await;
    // Bob's first sync, so the message arrives in a later one.
    let since =
        bob.sync(None, 0, None).await["next_batch"].as_str().expect("next_batch").to_string();
    let body = json!({"messages": {bob.user_id.clone(): {bob.device_id.clone(): {"hello": "over federation"}}}});
    alice
        .request("PUT", &cs(&["sendToDevice", "m.test", "txn1"]), body.clone())
        .await
        .must_status(200);
    let alice_id = alice.user_id.clone();
    bob.sync_until(Some(&since), "alice's to-device message on hs2", WAIT, move |r| {
        r["to_device"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| {
                e["sender"] == alice_id.as_str()
                    && e["type"] == "m.test"
                    && e["content"]["hello"] == "over federation"
            })
        })
    })
    .await;
    dep.destroy().await;
}

#[tokio::test]
async fn test_remote_presence() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let (alice, bob, _room) = shared_room(&dep).await;
    alice
        .request(
            "PUT",
            &cs(&["presence", &alice.user_id, "status"]),
            json!({"presence": "unavailable", "status_msg": "at lunch"}),
        )
        .await
        .must_status(200);
    let alice_id = alice.user_id.clone();
    bob.sync_until(None, "alice's presence on hs2", WAIT, move |r| {
        r["presence"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| {
                e["sender"] == alice_id.as_str()
                    && e["content"]["presence"] == "unavailable"
                    && e["content"]["status_msg"] == "at lunch"
            })
        })
    })
    .await;
    dep.destroy().await;
}

#[tokio::test]
async fn test_device_lists_update_over_federation() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let (alice, bob, _room) = shared_room(&dep).await;
    let since =
        bob.sync(None, 0, None).await["next_batch"].as_str().expect("next_batch").to_string();
    // Alice logs in on a new device: her device list changes.
    dep.client(0).must_login(&alice.user_id, "correct horse battery staple").await;
    let alice_id = alice.user_id.clone();
    bob.sync_until(Some(&since), "alice in device_lists.changed on hs2", WAIT, move |r| {
        r["device_lists"]["changed"]
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u == alice_id.as_str()))
    })
    .await;
    dep.destroy().await;
}

#[tokio::test]
async fn test_redaction_over_federation() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let (alice, bob, room) = shared_room(&dep).await;
    let ev = send_text(&alice, &room, "regrettable").await;
    wait_event(&bob, &room, &ev).await;
    let r = alice
        .request("PUT", &cs(&["rooms", &room, "redact", &ev, "r1"]), json!({"reason": "oops"}))
        .await
        .must_status(200);
    let redaction = r["event_id"].as_str().expect("event_id").to_string();
    wait_event(&bob, &room, &redaction).await;
    // Bob's server applies it (just after storing it): the message's content goes there too.
    let path = cs(&["rooms", &room, "event", &ev]);
    glia_harness::wait_until("the message redacted on hs2", WAIT, || async {
        let seen = bob.get(&path).await.must_status(200);
        (seen["content"] == json!({})).then_some(())
    })
    .await;
    dep.destroy().await;
}

/// Stricter than the above: as soon as Bob's /sync shows the redaction, the message in
/// the same response, and on his server's `/event`, must be redacted (the redaction and
/// its effect are stored in one write). Bob polls from a token before the message
/// without waiting, so each response holds both events; several rounds, so that a
/// redaction applied after it became visible would show.
#[tokio::test]
async fn test_redaction_over_federation_is_never_seen_before_its_effect() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let (alice, bob, room) = shared_room(&dep).await;
    for round in 0..5 {
        let since = bob.sync_until(None, "a sync token", WAIT, |_| true).await;
        let ev = send_text(&alice, &room, &format!("regrettable {round}")).await;
        let txn = format!("strict{round}");
        let r = alice
            .request("PUT", &cs(&["rooms", &room, "redact", &ev, &txn]), json!({}))
            .await
            .must_status(200);
        let redaction = r["event_id"].as_str().expect("event_id").to_string();
        let path = cs(&["rooms", &room, "event", &ev]);
        // Alice's own server answered after storing it: the message is redacted there.
        let seen = alice.get(&path).await.must_status(200);
        assert_eq!(seen["content"], json!({}), "round {round} on hs1: {seen}");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let r = bob.sync(Some(&since), 0, None).await;
            let events = r["rooms"]["join"][&room]["timeline"]["events"].clone();
            let events = events.as_array().cloned().unwrap_or_default();
            if events.iter().any(|e| e["event_id"] == redaction.as_str()) {
                let message = events.iter().find(|e| e["event_id"] == ev.as_str());
                if let Some(m) = message {
                    assert_eq!(m["content"], json!({}), "round {round}: in the same sync: {m}");
                }
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the redaction never reached hs2's /sync"
            );
        }
        let seen = bob.get(&path).await.must_status(200);
        assert_eq!(seen["content"], json!({}), "round {round}: the redaction was visible first");
    }
    dep.destroy().await;
}

#[tokio::test]
async fn test_knocking_over_federation() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let alice = dep.register_user(0, "alice").await;
    let bob = dep.register_user(1, "bob").await;
    let room = create_room(&alice, json!({"preset": "private_chat", "name": "Knock here"})).await;
    alice
        .request(
            "PUT",
            &cs(&["rooms", &room, "state", "m.room.join_rules", ""]),
            json!({"join_rule": "knock"}),
        )
        .await
        .must_status(200);
    let q = format!(
        "?server_name={}",
        glia_harness::client::encode_segment(&server_of(&alice.user_id))
    );
    let r = bob.request("POST", &cs(&["knock", &room, &q]), json!({"reason": "let me in"})).await;
    assert_eq!(r.status, 200, "knock failed: {}", r.text());
    // Bob sees the room among his knocks, with its name; Alice sees the knock.
    let room2 = room.clone();
    bob.sync_until(None, "the knock on hs2", WAIT, move |r| {
        r["rooms"]["knock"][&room2]["knock_state"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Knock here")
        })
    })
    .await;
    wait_membership(&alice, &room, &bob.user_id, "knock").await;
    // Alice lets him in; he joins.
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
