//! Glia talking to a fake server's rooms and to peers that misbehave: joining a room
//! whose send_join answer carries unverifiable events, sending into it, catching up a
//! destination that refused transactions, and peers that hang or answer garbage.
//! After Complement's TestOutboundFederationSend and
//! TestJoinFederatedRoomWithUnverifiableEvents.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use glia_harness::federation::room::{self, Ev};
use glia_harness::federation::{Answer, Received};
use glia_harness::wait_until;
use serde_json::json;

use crate::fakes::{
    WAIT, assert_signed_by, cs, get_event, join_via, joined_room_with, send_text, start_with,
};

/// Glia's client timeout for federation requests in these scenarios.
const FED_TIMEOUT_YAML: &str = "federation:\n  client_timeout: 2s\n";

/// TestOutboundFederationSend: Alice joins the fake server's room through it and sends a
/// message; the fake server receives it in a transaction, signed by Glia. In room
/// versions with event IDs of each format (carried, v3 hashes, v4+ URL-safe hashes) and
/// both redaction algorithms the hashes depend on.
#[tokio::test]
async fn test_outbound_federation_send() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    for version in ["1", "3", "10", "11"] {
        let room = fake.create_room(version, &bob);
        let r = join_via(&alice, &room, &fake.server_name).await;
        assert_eq!(r.status, 200, "join v{version}: {}", r.text());
        let joined = fake.room(&room, |r| r.state_id("m.room.member", &alice.user_id));
        assert!(joined.is_some(), "v{version}: the fake server did not get Alice's join");

        let id = send_text(&alice, &room, "hello fake").await;
        let rules = room::rules_of(version);
        let pdu = wait_until("the message at the fake server", WAIT, || {
            let found =
                fake.received_on("PUT", "/_matrix/federation/v1/send/").into_iter().find_map(|r| {
                    r.body["pdus"]
                        .as_array()?
                        .iter()
                        .find(|p| room::event_id_of(p, &rules) == id)
                        .cloned()
                });
            async move { found }
        })
        .await;
        assert_eq!(pdu["content"]["body"], "hello fake");
        assert_eq!(pdu["sender"], alice.user_id.as_str());
        assert_signed_by(&peer.base_url, &peer.server_name, version, &pdu).await;
    }
    d.destroy().await;
}

/// TestJoinFederatedRoomWithUnverifiableEvents: the send_join answer carries a member
/// event without signatures, one with a bad signature, and a valid one whose auth events
/// include the bad one; the join succeeds, those events are dropped, and the room works.
#[tokio::test]
async fn test_join_federated_room_with_unverifiable_events() {
    let Some((d, fake, alice, _peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    let unsigned = fake.user_id("unsigned");
    let mut ev = fake.build(&room, Ev::member(&unsigned, "join"));
    ev.as_object_mut().expect("event").remove("signatures");
    fake.add(&room, ev);
    let forged = fake.user_id("forged");
    let mut ev = fake.build(&room, Ev::member(&forged, "join"));
    ev["signatures"] = fake.build(&room, Ev::message(&bob, "other"))["signatures"].clone();
    fake.add(&room, ev);
    // A valid event whose auth events include the forged one: it cannot be authorised.
    let profile = json!({"membership": "join", "displayname": "Forged"});
    let (changed, _) = fake.send_in(&room, Ev::state("m.room.member", &forged, &forged, profile));
    let auth = fake.room(&room, |r| r.events[&changed]["auth_events"].to_string());
    let forged_join = fake.room(&room, |r| {
        r.state_before[&changed][&("m.room.member".to_string(), forged.clone())].clone()
    });
    assert!(auth.contains(&forged_join), "the profile change cites the forged join");

    join_via(&alice, &room, &fake.server_name).await.must_status(200);
    for user in [&unsigned, &forged] {
        let r = alice.get(&cs(&["rooms", &room, "state", "m.room.member", user])).await;
        r.must_error(404, "M_NOT_FOUND");
    }
    let members = alice.get(&cs(&["rooms", &room, "joined_members"])).await.must_status(200);
    let joined = members["joined"].as_object().expect("joined");
    assert!(joined.contains_key(&alice.user_id) && joined.contains_key(&bob), "{members}");
    assert_eq!(joined.len(), 2, "{members}");

    // The room works: Bob's next message reaches Alice.
    let (msg, pdu) = fake.send_in(&room, Ev::message(&bob, "welcome"));
    let peer = glia_harness::federation::actions::Peer::new(
        &d.hs(0).base_url,
        &crate::fakes::server_of(&alice.user_id),
    );
    fake.send_transaction(&peer, &[pdu], &[]).await.must_status(200);
    assert_eq!(get_event(&alice, &room, &msg).await.must_status(200)["content"]["body"], "welcome");
    d.destroy().await;
}

/// Accept a transaction, recording its PDUs' IDs in order.
fn accept(version: &str, accepted: &Mutex<Vec<String>>, r: &Received) -> Answer {
    let rules = room::rules_of(version);
    let mut acc = accepted.lock().expect("accepted");
    for p in r.body["pdus"].as_array().into_iter().flatten() {
        acc.push(room::event_id_of(p, &rules));
    }
    Answer::Json(200, json!({"pdus": {}}))
}

/// Wait until every one of `sent` was accepted; the accepted ones of them, in order.
async fn all_accepted(accepted: &Mutex<Vec<String>>, sent: &[String]) -> Vec<String> {
    wait_until("the PDUs accepted by the fake server", WAIT, || {
        let acc = accepted.lock().expect("accepted").clone();
        let ours: Vec<String> = acc.into_iter().filter(|id| sent.contains(id)).collect();
        let done = (ours.len() >= sent.len()).then_some(ours);
        async move { done }
    })
    .await
}

/// A destination that hangs, answers garbage, then refuses transactions is caught up
/// once it accepts: every PDU queued for it arrives, in order.
#[tokio::test]
async fn test_outbound_catch_up_after_refusals() {
    let Some(s) = joined_room_with(None, FED_TIMEOUT_YAML.into()).await else { return };
    let attempts = Arc::new(AtomicUsize::new(0));
    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let (a, acc) = (attempts.clone(), accepted.clone());
    let version = s.fake.room(&s.room, |r| r.version.clone());
    s.fake.on_answer("PUT", "/_matrix/federation/v1/send/", move |r| {
        match a.fetch_add(1, Ordering::SeqCst) {
            0 => Answer::Hang,
            1 => Answer::Raw(502, b"<html>bad gateway".to_vec()),
            2 => Answer::Json(500, json!({"errcode": "M_UNKNOWN", "error": "down"})),
            _ => accept(&version, &acc, r),
        }
    });
    let mut sent = vec![];
    for i in 0..5 {
        sent.push(send_text(&s.alice, &s.room, &format!("queued {i}")).await);
    }
    let got = all_accepted(&accepted, &sent).await;
    assert_eq!(got, sent, "PDUs lost, repeated or out of order");
    assert!(attempts.load(Ordering::SeqCst) >= 4, "the refusals were not retried");
    s.d.destroy().await;
}

/// A peer that never answers, or answers garbage, makes a join through it fail within
/// Glia's federation timeout, with an error, while Glia keeps serving; once the peer
/// behaves the join works.
#[tokio::test]
async fn test_join_through_hanging_or_garbage_peer_fails_cleanly() {
    let Some((d, fake, alice, _peer)) = start_with(FED_TIMEOUT_YAML.into()).await else { return };
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    fake.on_answer("GET", "/_matrix/federation/v1/make_join/", |_| Answer::Hang);

    let started = Instant::now();
    let (a2, room2, name) = (alice.clone(), room.clone(), fake.server_name.clone());
    let join = tokio::spawn(async move { join_via(&a2, &room2, &name).await });
    // Glia serves other requests while the join waits on the peer.
    let other = alice.must_do("POST", &cs(&["createRoom"]), json!({})).await["room_id"]
        .as_str()
        .expect("room_id")
        .to_string();
    send_text(&alice, &other, "still here").await;
    let r = tokio::time::timeout(Duration::from_secs(20), join)
        .await
        .expect("the join returned within 20 s")
        .expect("join task");
    assert!(started.elapsed() >= Duration::from_secs(2), "no wait for the peer at all?");
    assert!(r.status >= 400 && r.json()["errcode"].is_string(), "join: {} {}", r.status, r.text());
    assert_eq!(r.status, 502, "an unreachable peer is a gateway error: {}", r.text());

    fake.on_answer("GET", "/_matrix/federation/v1/make_join/", |_| {
        Answer::Raw(200, b"{\"event\": [garbage".to_vec())
    });
    let r = join_via(&alice, &room, &fake.server_name).await;
    assert!(r.status >= 400 && r.json()["errcode"].is_string(), "join: {} {}", r.status, r.text());
    assert_eq!(r.status, 502, "garbage from a peer is a gateway error: {}", r.text());

    // The peer behaves again (its built-in answer): the join goes through.
    let (rooms, name) = (fake.rooms.clone(), fake.server_name.clone());
    fake.on_answer("GET", "/_matrix/federation/v1/make_join/", move |r| {
        match room::answer(&rooms, &name, r) {
            Some((s, v)) => Answer::Json(s, v),
            None => Answer::Json(404, json!({})),
        }
    });
    join_via(&alice, &room, &fake.server_name).await.must_status(200);
    d.destroy().await;
}

/// A refusal of make_join reaches the client with the peer's status and errcode (and
/// the room version it names, for M_INCOMPATIBLE_ROOM_VERSION), as Synapse; a peer that knows only the v1 send_join (404 M_UNRECOGNIZED for v2) is
/// joined through v1, whose `[200, {...}]` answer Glia unwraps.
#[tokio::test]
async fn test_join_passes_refusals_and_falls_back_to_v1_send_join() {
    let Some((d, fake, alice, _peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    fake.on_answer("GET", "/_matrix/federation/v1/make_join/", |_| {
        Answer::Json(400, json!({"errcode": "M_TEST_ERROR_CODE", "error": "no"}))
    });
    join_via(&alice, &room, &fake.server_name).await.must_error(400, "M_TEST_ERROR_CODE");
    fake.on_answer("GET", "/_matrix/federation/v1/make_join/", |_| {
        Answer::Json(
            400,
            json!({"errcode": "M_INCOMPATIBLE_ROOM_VERSION", "error": "old", "room_version": "x-9"}),
        )
    });
    let r = join_via(&alice, &room, &fake.server_name).await;
    assert_eq!(r.must_error(400, "M_INCOMPATIBLE_ROOM_VERSION")["room_version"], "x-9");

    let (rooms, name) = (fake.rooms.clone(), fake.server_name.clone());
    fake.on_answer("GET", "/_matrix/federation/v1/make_join/", move |r| {
        match room::answer(&rooms, &name, r) {
            Some((s, v)) => Answer::Json(s, v),
            None => Answer::Json(404, json!({})),
        }
    });
    fake.on_answer("PUT", "/_matrix/federation/v2/send_join/", |_| {
        Answer::Json(404, json!({"errcode": "M_UNRECOGNIZED", "error": "unknown"}))
    });
    let (rooms, name) = (fake.rooms.clone(), fake.server_name.clone());
    fake.on_answer("PUT", "/_matrix/federation/v1/send_join/", move |r| {
        let mut v2 = r.clone();
        v2.uri = v2.uri.replacen("/v1/", "/v2/", 1);
        match room::answer(&rooms, &name, &v2) {
            Some((s, v)) => Answer::Json(s, json!([s, v])),
            None => Answer::Json(404, json!({})),
        }
    });
    join_via(&alice, &room, &fake.server_name).await.must_status(200);
    assert!(!fake.received_on("PUT", "/_matrix/federation/v1/send_join/").is_empty());
    let members = alice.get(&cs(&["rooms", &room, "joined_members"])).await.must_status(200);
    assert!(members["joined"].get(&alice.user_id).is_some(), "not joined: {members}");
    d.destroy().await;
}

/// Outbound invites: a peer that knows only the v1 invite (404 M_UNRECOGNIZED for v2)
/// gets it through v1 in a version 1 room, whose `[200, {...}]` answer Glia unwraps; a
/// signed invite coming back as JSON that is not canonical (a float, room version 6) is
/// the peer's bad JSON: 400 M_BAD_JSON to the inviter (Synapse).
#[tokio::test]
async fn test_outbound_invite_v1_fallback_and_bad_json() {
    let Some((d, fake, alice, _peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");

    let old = alice.must_create_room(json!({"room_version": "1"})).await;
    fake.on_answer("PUT", "/_matrix/federation/v2/invite/", |_| {
        Answer::Json(404, json!({"errcode": "M_UNRECOGNIZED", "error": "unknown"}))
    });
    // The event comes back as sent (Glia checks it is the same event).
    fake.on_answer("PUT", "/_matrix/federation/v1/invite/", |r| {
        Answer::Json(200, json!([200, {"event": r.body.clone()}]))
    });
    alice.must_do("POST", &cs(&["rooms", &old, "invite"]), json!({"user_id": bob})).await;
    assert!(!fake.received_on("PUT", "/_matrix/federation/v1/invite/").is_empty());

    let v6 = alice.must_create_room(json!({"room_version": "6"})).await;
    fake.on_answer("PUT", "/_matrix/federation/v2/invite/", |r| {
        let mut ev = r.body["event"].clone();
        ev["bad_val"] = json!(1.1);
        Answer::Json(200, json!({"event": ev}))
    });
    let r = alice.request("POST", &cs(&["rooms", &v6, "invite"]), json!({"user_id": bob})).await;
    r.must_error(400, "M_BAD_JSON");
    d.destroy().await;
}

/// The outbound queue survives a restart: PDUs a refusing destination missed before Glia
/// stopped are sent, in order, once it is back and accepting, and before newer ones.
#[tokio::test]
async fn test_outbound_catch_up_after_restart() {
    let Some(mut s) = joined_room_with(None, FED_TIMEOUT_YAML.into()).await else { return };
    let refusing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let attempts = Arc::new(AtomicUsize::new(0));
    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let (refuse, a, acc) = (refusing.clone(), attempts.clone(), accepted.clone());
    let version = s.fake.room(&s.room, |r| r.version.clone());
    s.fake.on_answer("PUT", "/_matrix/federation/v1/send/", move |r| {
        a.fetch_add(1, Ordering::SeqCst);
        if refuse.load(Ordering::SeqCst) {
            return Answer::Json(500, json!({"errcode": "M_UNKNOWN", "error": "down"}));
        }
        accept(&version, &acc, r)
    });
    let mut sent = vec![];
    for i in 0..3 {
        sent.push(send_text(&s.alice, &s.room, &format!("before restart {i}")).await);
    }
    wait_until("a refused attempt", WAIT, || {
        let n = attempts.load(Ordering::SeqCst);
        async move { (n > 0).then_some(()) }
    })
    .await;
    s.d.restart(0).await;
    let mut alice = s.alice.clone();
    alice.base_url = s.d.hs(0).base_url.clone();
    refusing.store(false, Ordering::SeqCst);
    // The backlog goes out on its own after the restart, with nothing new queued.
    let got = all_accepted(&accepted, &sent).await;
    assert_eq!(got, sent, "PDUs lost, repeated or out of order across the restart");
    sent.push(send_text(&alice, &s.room, "after restart").await);
    let got = all_accepted(&accepted, &sent).await;
    assert_eq!(got, sent, "the new PDU came before the backlog or twice");
    s.d.destroy().await;
}

/// The origin hangs when Glia asks it for a gap (get_missing_events) and for the auth
/// chain: the transaction is still answered once Glia's federation timeout passes, and
/// Glia goes on serving the room.
#[tokio::test]
async fn test_gap_filling_from_hanging_origin_times_out() {
    let Some(s) = joined_room_with(None, FED_TIMEOUT_YAML.into()).await else { return };
    s.fake.on_answer("POST", "/_matrix/federation/v1/get_missing_events/", |_| Answer::Hang);
    s.fake.on_answer("GET", "/_matrix/federation/v1/event_auth/", |_| Answer::Hang);
    s.fake.send_in(&s.room, Ev::message(&s.charlie, "never delivered"));
    let (id, pdu) = s.fake.send_in(&s.room, Ev::message(&s.charlie, "after a gap"));
    let started = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(20),
        s.fake.send_transaction(&s.peer, &[pdu], &[]),
    )
    .await
    .expect("the transaction was answered within 20 s");
    let answer = answer.must_status(200);
    assert!(answer["pdus"].get(&id).is_some(), "{answer}");
    assert!(started.elapsed() >= Duration::from_secs(2), "Glia did not wait for the gap");
    send_text(&s.alice, &s.room, "still serving").await;
    s.d.destroy().await;
}

/// A make_join answer naming no room version means version 1 (spec, `GET /make_join`):
/// Glia builds a v1 join from the template (a bare event ID standing for that event, as
/// Synapse takes it) and sends it; the room's state then shows another version (SyTest:
/// "Outbound federation rejects m.room.create events with an unknown room version"),
/// and the join fails rather than joining a room it misreads.
#[tokio::test]
async fn test_make_join_without_room_version_is_v1_and_a_mismatched_create_fails() {
    let Some((d, fake, alice, _peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    let (rooms, name) = (fake.rooms.clone(), fake.server_name.clone());
    fake.on_answer("GET", "/_matrix/federation/v1/make_join/", move |r| {
        match room::answer(&rooms, &name, r) {
            Some((s, mut v)) => {
                if let Some(o) = v.as_object_mut() {
                    o.remove("room_version");
                }
                Answer::Json(s, v)
            }
            None => Answer::Json(404, json!({})),
        }
    });
    let r = join_via(&alice, &room, &fake.server_name).await;
    assert!(r.status >= 400 && r.json()["errcode"].is_string(), "join: {} {}", r.status, r.text());
    let sent = fake.received_on("PUT", "/_matrix/federation/v2/send_join/");
    assert_eq!(sent.len(), 1, "the v1 join was sent");
    assert!(sent[0].body["prev_events"][0].is_array(), "v1 references: {}", sent[0].body);
    assert!(alice.sync(None, 0, None).await["rooms"]["join"].get(&room).is_none());
    d.destroy().await;
}
