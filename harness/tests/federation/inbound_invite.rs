//! Invites from a fake server's room (spec: server-server API, "Inviting to a room"):
//! Glia countersigns them, its user sees, accepts or rejects them through the inviting
//! server; crafted invites are refused.

use glia_harness::federation::FakeServer;
use glia_harness::federation::room::Ev;
use serde_json::json;

use crate::fakes::{WAIT, cs, start_with};

/// TestFederationRoomsInvite with the fake server inviting: Alice sees the invite (with
/// the room's stripped state), accepts one and rejects another; the fake server gets her
/// join and her leave.
#[tokio::test]
async fn test_inbound_federation_invite_accept_and_reject() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    let mut rooms = vec![];
    for name in ["To accept", "To reject"] {
        let room = fake.create_room("10", &bob);
        fake.send_in(&room, Ev::state("m.room.name", "", &bob, json!({"name": name})));
        let r = fake.invite(&peer, &room, &bob, &alice.user_id).await;
        let signed = r.must_status(200);
        let sigs = &signed["event"]["signatures"];
        assert!(sigs.get(&peer.server_name).is_some(), "not countersigned: {signed}");
        assert!(sigs.get(&fake.server_name).is_some(), "inviter's signature dropped: {signed}");
        let (room2, name) = (room.clone(), name.to_string());
        alice
            .sync_until(None, "the invite", WAIT, move |r| {
                r["rooms"]["invite"][&room2]["invite_state"]["events"].as_array().is_some_and(
                    |evs| {
                        evs.iter().any(|e| {
                            e["type"] == "m.room.name" && e["content"]["name"] == name.as_str()
                        })
                    },
                )
            })
            .await;
        rooms.push(room);
    }
    alice.must_do("POST", &cs(&["rooms", &rooms[0], "join"]), json!({})).await;
    alice.must_do("POST", &cs(&["rooms", &rooms[1], "leave"]), json!({})).await;
    for (room, want) in [(&rooms[0], "join"), (&rooms[1], "leave")] {
        let m = fake.room(room, |r| r.state_event("m.room.member", &alice.user_id).cloned());
        assert_eq!(m.expect("alice's membership")["content"]["membership"], want);
    }
    let resp = alice.sync(None, 0, None).await;
    assert!(resp["rooms"]["invite"].get(&rooms[1]).is_none(), "rejected invite listed: {resp}");
    assert!(resp["rooms"]["join"].get(&rooms[0]).is_some(), "joined room missing: {resp}");
    d.destroy().await;
}

/// Crafted invites are refused: for a user of another server (400), from a server that
/// is not the inviter's (403), with a forged signature (403), under another event ID
/// (400), in an unknown room version (400 M_INCOMPATIBLE_ROOM_VERSION), and a membership
/// other than invite (400). Alice is invited to nothing.
#[tokio::test]
async fn test_inbound_federation_refuses_crafted_invites() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let outsider = FakeServer::start().await;
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    let invite_of = |target: &str, membership: &str| {
        let ev = Ev::state("m.room.member", target, &bob, json!({"membership": membership}));
        fake.build(&room, ev)
    };
    let body = |ev: &serde_json::Value, version: &str| json!({"event": ev, "room_version": version, "invite_room_state": []});
    let good = invite_of(&alice.user_id, "invite");
    let id = fake.event_id(&room, &good);
    let cases: Vec<(&str, &FakeServer, String, serde_json::Value, u16)> = vec![
        (
            "another server's user",
            &fake,
            String::new(),
            invite_of(&fake.user_id("x"), "invite"),
            400,
        ),
        ("relayed by another server", &outsider, id.clone(), good.clone(), 403),
        (
            "forged signature",
            &fake,
            String::new(),
            {
                let mut ev = good.clone();
                ev["signatures"] = invite_of(&alice.user_id, "join")["signatures"].clone();
                ev
            },
            403,
        ),
        ("not an invite", &fake, String::new(), invite_of(&alice.user_id, "join"), 400),
    ];
    for (what, server, path_id, ev, status) in cases {
        let path_id = if path_id.is_empty() { fake.event_id(&room, &ev) } else { path_id };
        let r = server.send_invite(&peer, &room, &path_id, body(&ev, "10")).await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
    }
    let r = fake.send_invite(&peer, &room, "$another", body(&good, "10")).await;
    assert_eq!(r.status, 400, "mismatched event ID: {}", r.text());
    fake.send_invite(&peer, &room, &id, body(&good, "99"))
        .await
        .must_error(400, "M_INCOMPATIBLE_ROOM_VERSION");
    let resp = alice.sync(None, 0, None).await;
    assert!(resp["rooms"]["invite"].get(&room).is_none(), "a refused invite is listed: {resp}");
    // The genuine invite is accepted.
    fake.send_invite(&peer, &room, &id, body(&good, "10")).await.must_status(200);
    d.destroy().await;
}

/// An invite for a user of Glia's who does not exist, or is deactivated, is signed and
/// accepted like any other (Synapse answers 200 too), so the answer does not tell which
/// users exist; nobody sees it.
#[tokio::test]
async fn test_inbound_invite_for_unknown_or_deactivated_user_is_accepted() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    let gone = d.register_user(0, "gone").await;
    let auth = gone.password_auth(None);
    gone.must_do("POST", &cs(&["account", "deactivate"]), json!({"auth": auth})).await;
    for target in [format!("@nobody:{}", peer.server_name), gone.user_id.clone()] {
        let ev = fake.build(
            &room,
            Ev::state("m.room.member", &target, &bob, json!({"membership": "invite"})),
        );
        let id = fake.event_id(&room, &ev);
        let body = json!({"event": ev, "room_version": "10", "invite_room_state": []});
        let r = fake.send_invite(&peer, &room, &id, body).await.must_status(200);
        let sigs = &r["event"]["signatures"][&peer.server_name];
        assert!(sigs.is_object(), "signed by Glia: {r}");
    }
    let resp = alice.sync(None, 0, None).await;
    assert!(resp["rooms"]["invite"].get(&room).is_none(), "{resp}");
    d.destroy().await;
}

/// An invite into a room Glia is already in (Alice joined it) is an event of the room's
/// DAG: Bob sees it, joins without asking the fake server for a template, and the fake
/// server receives his join.
#[tokio::test]
async fn test_inbound_federation_invite_into_room_glia_is_in() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let bob_glia = d.register_user(0, "bob").await;
    let owner = fake.user_id("owner");
    let room = fake.create_room("10", &owner);
    crate::fakes::join_via(&alice, &room, &fake.server_name).await.must_status(200);
    fake.invite(&peer, &room, &owner, &bob_glia.user_id).await.must_status(200);
    let room2 = room.clone();
    bob_glia
        .sync_until(None, "the invite", WAIT, move |r| r["rooms"]["invite"].get(&room2).is_some())
        .await;
    let m = alice.get(&cs(&["rooms", &room, "state", "m.room.member", &bob_glia.user_id])).await;
    assert_eq!(m.must_status(200)["membership"], "invite");
    let make_joins = fake.received_on("GET", "/_matrix/federation/v1/make_join/").len();
    bob_glia.must_do("POST", &cs(&["rooms", &room, "join"]), json!({})).await;
    glia_harness::wait_until("bob's join at the fake server", WAIT, || {
        let m = fake.room(&room, |r| r.state_event("m.room.member", &bob_glia.user_id).cloned());
        let joined = m.filter(|e| e["content"]["membership"] == "join");
        async move { joined }
    })
    .await;
    assert_eq!(
        fake.received_on("GET", "/_matrix/federation/v1/make_join/").len(),
        make_joins,
        "Glia asked for a join template for a room it is in"
    );
    d.destroy().await;
}

/// An invite from a server the room's ACL denies is refused (403) before anything about
/// the invited user is told: no 404 for a user who does not exist (Synapse checks the
/// ACL first).
#[tokio::test]
async fn test_inbound_invite_from_acl_denied_server() {
    let Some(s) = crate::fakes::joined_room(None).await else { return };
    // Fake and Glia are both `localhost` (ports do not count): deny it after the fact
    // through the room's state, as a denied peer sees it.
    let acl = json!({"allow": ["*"], "deny": ["localhost"], "allow_ip_literals": true});
    s.alice.must_do("PUT", &cs(&["rooms", &s.room, "state", "m.room.server_acl", ""]), acl).await;
    let nobody = format!("@nobody:{}", s.peer.server_name);
    let invite = json!({
        "type": "m.room.member", "state_key": nobody, "sender": s.charlie,
        "room_id": s.room, "content": {"membership": "invite"},
        "origin_server_ts": 1, "depth": 5, "prev_events": [], "auth_events": [],
    });
    let path = format!(
        "/_matrix/federation/v2/invite/{}/{}",
        glia_harness::client::encode_segment(&s.room),
        glia_harness::client::encode_segment("$whatever")
    );
    let body = json!({"event": invite, "room_version": "10", "invite_room_state": []});
    let r = s.fake.request(&s.peer.base_url, &s.peer.server_name, "PUT", &path, Some(body)).await;
    r.must_error(403, "M_FORBIDDEN");
    s.d.destroy().await;
}
