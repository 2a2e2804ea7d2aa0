//! Glia and Synapse in one room: a Glia user and a Synapse user create, join, talk,
//! invite, leave, and exchange typing, receipts and to-device messages in both directions.
//!
//! Needs a running Synapse that federates over TLS with certificates from the test CA:
//! `ci/synapse-federation` starts one and sets `GLIA_FED_PEER_URL` (its client API) and
//! `GLIA_FED_PEER_NAME` (its server name); without them every scenario here is skipped.

use glia_harness::rooms::*;
use glia_harness::{Client, Deployment};
use serde_json::json;

struct Peer {
    url: String,
    name: String,
}

fn peer() -> Option<Peer> {
    match (std::env::var("GLIA_FED_PEER_URL"), std::env::var("GLIA_FED_PEER_NAME")) {
        (Ok(url), Ok(name)) if !url.is_empty() && !name.is_empty() => Some(Peer { url, name }),
        _ => {
            eprintln!(
                "SKIP: GLIA_FED_PEER_URL / GLIA_FED_PEER_NAME not set (ci/synapse-federation sets them)"
            );
            None
        }
    }
}

/// Rooms the Synapse side creates in the older scenarios use version 11 (rooms whose IDs
/// name Synapse); `v12_rooms_both_ways` covers version 12, Synapse's default.
const PEER_ROOM_VERSION: &str = "11";

/// A Glia that federates, a user on it, and a user on the peer.
async fn setup() -> Option<(Deployment, Client, Client, Peer)> {
    let peer = peer()?;
    let dep = Deployment::federated(1).await?;
    let glia = dep.register_user(0, "gl").await;
    let localpart = glia_harness::client::unique_localpart("sy");
    let syn =
        Client::new(&peer.url).must_register(&localpart, "correct horse battery staple").await;
    Some((dep, glia, syn, peer))
}

async fn talk(a: &Client, b: &Client, room: &str) {
    let from_a = send_text(a, room, "from one side").await;
    wait_event(b, room, &from_a).await;
    let from_b = send_text(b, room, "and back").await;
    wait_event(a, room, &from_b).await;
}

#[tokio::test]
async fn synapse_user_joins_glia_room_and_they_talk() {
    let Some((dep, glia, syn, _)) = setup().await else { return };
    let room = create_room(&glia, json!({"preset": "public_chat", "name": "On Glia"})).await;
    let r = join_through(&syn, &room, &[&server_of(&glia.user_id)]).await;
    assert_eq!(r.status, 200, "Synapse's join failed: {}", r.text());
    wait_membership(&glia, &room, &syn.user_id, "join").await;
    let name = syn.get(&cs(&["rooms", &room, "state", "m.room.name", ""])).await.must_status(200);
    assert_eq!(name["name"], "On Glia");
    talk(&glia, &syn, &room).await;

    // Typing and a read receipt from Synapse reach Glia.
    syn.request(
        "PUT",
        &cs(&["rooms", &room, "typing", &syn.user_id]),
        json!({"typing": true, "timeout": 20000}),
    )
    .await
    .must_status(200);
    let (room2, sid) = (room.clone(), syn.user_id.clone());
    glia.sync_until(None, "Synapse user typing", WAIT, move |r| {
        r["rooms"]["join"][&room2]["ephemeral"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| {
                e["type"] == "m.typing"
                    && e["content"]["user_ids"].as_array().is_some_and(|u| u.contains(&json!(sid)))
            })
        })
    })
    .await;
    let ev = send_text(&glia, &room, "read this").await;
    wait_event(&syn, &room, &ev).await;
    syn.request("POST", &cs(&["rooms", &room, "receipt", "m.read", &ev]), json!({}))
        .await
        .must_status(200);
    let (room2, sid, ev2) = (room.clone(), syn.user_id.clone(), ev.clone());
    glia.sync_until(None, "Synapse user's receipt", WAIT, move |r| {
        r["rooms"]["join"][&room2]["ephemeral"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| {
                e["type"] == "m.receipt" && e["content"][&ev2]["m.read"].get(&sid).is_some()
            })
        })
    })
    .await;

    // And Synapse's user leaves.
    syn.request("POST", &cs(&["rooms", &room, "leave"]), json!({})).await.must_status(200);
    wait_membership(&glia, &room, &syn.user_id, "leave").await;
    dep.destroy().await;
}

#[tokio::test]
async fn glia_user_joins_synapse_room_and_they_talk() {
    let Some((dep, glia, syn, peer)) = setup().await else { return };
    let room = create_room(
        &syn,
        json!({"preset": "public_chat", "name": "On Synapse", "room_version": PEER_ROOM_VERSION}),
    )
    .await;
    let r = join_through(&glia, &room, &[&peer.name]).await;
    assert_eq!(r.status, 200, "Glia's join failed: {}", r.text());
    wait_membership(&syn, &room, &glia.user_id, "join").await;
    let name = glia.get(&cs(&["rooms", &room, "state", "m.room.name", ""])).await.must_status(200);
    assert_eq!(name["name"], "On Synapse");
    talk(&syn, &glia, &room).await;

    // Typing and a receipt from Glia reach Synapse.
    glia.request(
        "PUT",
        &cs(&["rooms", &room, "typing", &glia.user_id]),
        json!({"typing": true, "timeout": 20000}),
    )
    .await
    .must_status(200);
    let (room2, gid) = (room.clone(), glia.user_id.clone());
    syn.sync_until(None, "Glia user typing", WAIT, move |r| {
        r["rooms"]["join"][&room2]["ephemeral"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| {
                e["type"] == "m.typing"
                    && e["content"]["user_ids"].as_array().is_some_and(|u| u.contains(&json!(gid)))
            })
        })
    })
    .await;
    glia.request("POST", &cs(&["rooms", &room, "leave"]), json!({})).await.must_status(200);
    wait_membership(&syn, &room, &glia.user_id, "leave").await;
    dep.destroy().await;
}

#[tokio::test]
async fn invites_both_ways() {
    let Some((dep, glia, syn, _)) = setup().await else { return };
    // Glia invites the Synapse user, who accepts.
    let room = create_room(&glia, json!({"preset": "private_chat", "name": "Glia invites"})).await;
    glia.request("POST", &cs(&["rooms", &room, "invite"]), json!({"user_id": syn.user_id}))
        .await
        .must_status(200);
    let room2 = room.clone();
    syn.sync_until(None, "Glia's invite on Synapse", WAIT, move |r| {
        r["rooms"]["invite"].get(&room2).is_some()
    })
    .await;
    syn.request("POST", &cs(&["rooms", &room, "join"]), json!({})).await.must_status(200);
    wait_membership(&glia, &room, &syn.user_id, "join").await;

    // Synapse invites the Glia user, who sees the room's name, accepts, then a second
    // invite is rejected.
    let room =
        create_room(&syn, json!({"preset": "private_chat", "name": "Synapse invites", "room_version": PEER_ROOM_VERSION})).await;
    syn.request("POST", &cs(&["rooms", &room, "invite"]), json!({"user_id": glia.user_id}))
        .await
        .must_status(200);
    let room2 = room.clone();
    glia.sync_until(None, "Synapse's invite on Glia", WAIT, move |r| {
        r["rooms"]["invite"][&room2]["invite_state"]["events"].as_array().is_some_and(|evs| {
            evs.iter()
                .any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Synapse invites")
        })
    })
    .await;
    glia.request("POST", &cs(&["rooms", &room, "join"]), json!({})).await.must_status(200);
    wait_membership(&syn, &room, &glia.user_id, "join").await;

    let other =
        create_room(&syn, json!({"preset": "private_chat", "room_version": PEER_ROOM_VERSION}))
            .await;
    syn.request("POST", &cs(&["rooms", &other, "invite"]), json!({"user_id": glia.user_id}))
        .await
        .must_status(200);
    let other2 = other.clone();
    glia.sync_until(None, "the second invite", WAIT, move |r| {
        r["rooms"]["invite"].get(&other2).is_some()
    })
    .await;
    glia.request("POST", &cs(&["rooms", &other, "leave"]), json!({})).await.must_status(200);
    wait_membership(&syn, &other, &glia.user_id, "leave").await;
    dep.destroy().await;
}

#[tokio::test]
async fn to_device_both_ways() {
    let Some((dep, glia, syn, _)) = setup().await else { return };
    for (from, to) in [(&glia, &syn), (&syn, &glia)] {
        let since =
            to.sync(None, 0, None).await["next_batch"].as_str().expect("next_batch").to_string();
        let body = json!({"messages": {to.user_id.clone(): {to.device_id.clone(): {"ping": from.user_id}}}});
        let txn = format!("t{}", rand::random::<u32>());
        from.request("PUT", &cs(&["sendToDevice", "m.test.ping", &txn]), body)
            .await
            .must_status(200);
        let sender = from.user_id.clone();
        to.sync_until(Some(&since), "a to-device message across servers", WAIT, move |r| {
            r["to_device"]["events"].as_array().is_some_and(|evs| {
                evs.iter().any(|e| e["sender"] == sender.as_str() && e["type"] == "m.test.ping")
            })
        })
        .await;
    }
    dep.destroy().await;
}

/// Version 12 rooms (IDs with no server part, creators with unlimited power) both ways:
/// Glia joins a room Synapse created with its default version through Synapse's name and
/// they talk; Synapse's user joins a v12 room on Glia; an invite to a v12 room from
/// Synapse is accepted on Glia with no server name given.
#[tokio::test]
async fn v12_rooms_both_ways() {
    let Some((dep, glia, syn, peer)) = setup().await else { return };
    let no_server = |room: &str| room.starts_with('!') && !room.contains(':');

    let room = create_room(
        &syn,
        json!({"preset": "public_chat", "name": "v12 on Synapse", "room_version": "12"}),
    )
    .await;
    assert!(no_server(&room), "{room}");
    let r = join_through(&glia, &room, &[&peer.name]).await;
    assert_eq!(r.status, 200, "Glia's join failed: {}", r.text());
    wait_membership(&syn, &room, &glia.user_id, "join").await;
    let name = glia.get(&cs(&["rooms", &room, "state", "m.room.name", ""])).await.must_status(200);
    assert_eq!(name["name"], "v12 on Synapse");
    let create = glia.get(&cs(&["rooms", &room, "state", "m.room.create", ""])).await;
    assert_eq!(create.must_status(200)["room_version"], "12");
    talk(&syn, &glia, &room).await;
    // Synapse's user, a creator, renames the room; Glia takes it without a power level.
    let set = syn
        .request("PUT", &cs(&["rooms", &room, "state", "m.room.name", ""]), json!({"name": "b"}))
        .await
        .must_status(200);
    wait_event(&glia, &room, set["event_id"].as_str().expect("event_id")).await;

    let room = create_room(
        &glia,
        json!({"preset": "public_chat", "name": "v12 on Glia", "room_version": "12"}),
    )
    .await;
    assert!(no_server(&room), "{room}");
    let r = join_through(&syn, &room, &[&server_of(&glia.user_id)]).await;
    assert_eq!(r.status, 200, "Synapse's join failed: {}", r.text());
    wait_membership(&glia, &room, &syn.user_id, "join").await;
    talk(&glia, &syn, &room).await;

    let room = create_room(
        &syn,
        json!({"preset": "private_chat", "name": "v12 invite", "room_version": "12"}),
    )
    .await;
    syn.request("POST", &cs(&["rooms", &room, "invite"]), json!({"user_id": glia.user_id}))
        .await
        .must_status(200);
    let room2 = room.clone();
    glia.sync_until(None, "Synapse's v12 invite on Glia", WAIT, move |r| {
        r["rooms"]["invite"][&room2]["invite_state"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "v12 invite")
        })
    })
    .await;
    glia.request("POST", &cs(&["rooms", &room, "join"]), json!({})).await.must_status(200);
    wait_membership(&syn, &room, &glia.user_id, "join").await;
    talk(&glia, &syn, &room).await;

    // And Glia invites Synapse's user to a v12 room on Glia.
    let room = create_room(&glia, json!({"preset": "private_chat", "room_version": "12"})).await;
    glia.request("POST", &cs(&["rooms", &room, "invite"]), json!({"user_id": syn.user_id}))
        .await
        .must_status(200);
    let room2 = room.clone();
    syn.sync_until(None, "Glia's v12 invite on Synapse", WAIT, move |r| {
        r["rooms"]["invite"].get(&room2).is_some()
    })
    .await;
    syn.request("POST", &cs(&["rooms", &room, "join"]), json!({})).await.must_status(200);
    wait_membership(&glia, &room, &syn.user_id, "join").await;
    dep.destroy().await;
}
