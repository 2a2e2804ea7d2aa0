//! Inbound `/send` with bad input from a fake server in the room (spec: server-server
//! API, "Checks performed on receipt of a PDU"): forged signatures, wrong origins,
//! content hash mismatches, events failing auth or citing rejected auth events,
//! soft-failed events of a banned user, oversized PDUs and oversized transactions; and
//! the good paths next to them (gap filling with get_missing_events, both ways).

use glia_harness::client::encode_segment;
use glia_harness::federation::FakeServer;
use glia_harness::federation::room::Ev;
use glia_harness::wait_until;
use serde_json::{Value, json};

use crate::fakes::{
    Setup, WAIT, cs, get_event, join_via, joined_room, membership, pdu_result, prev_events_at_fake,
    send_text, start_with, timeline_ids,
};

/// A PDU whose signature is not its sender's server's is refused (200, with a per-PDU
/// error) and never shown; a request whose X-Matrix signature is forged is 401.
#[tokio::test]
async fn test_inbound_federation_rejects_forged_signature() {
    let Some(s) = joined_room(None).await else { return };
    let good = s.fake.build(&s.room, Ev::message(&s.charlie, "genuine"));
    let other = s.fake.build(&s.room, Ev::message(&s.charlie, "another"));
    // The first event carrying the second's signature.
    let mut forged = good.clone();
    forged["signatures"] = other["signatures"].clone();
    let id = s.fake.event_id(&s.room, &forged);
    let answer = s.fake.send_transaction(&s.peer, &[forged], &[]).await.must_status(200);
    assert!(pdu_result(&answer, &id).get("error").is_some(), "forged PDU accepted: {answer}");
    get_event(&s.alice, &s.room, &id).await.must_error(404, "M_NOT_FOUND");

    // The same transaction signed (X-Matrix) by another server's key in our name: 401.
    let impostor = FakeServer::start().await;
    let path = "/_matrix/federation/v1/send/forged1";
    let body =
        json!({"origin": s.fake.server_name, "origin_server_ts": 1, "pdus": [good], "edus": []});
    let header = impostor
        .x_matrix("PUT", path, &s.peer.server_name, Some(&body))
        .replace(&impostor.server_name, &s.fake.server_name);
    s.fake
        .raw_request(&s.peer.base_url, "PUT", path, Some(body), Some(header))
        .await
        .must_error(401, "M_UNAUTHORIZED");
    get_event(&s.alice, &s.room, &id).await.must_error(404, "M_NOT_FOUND");

    // The genuine event, properly sent, is accepted: the refusals above were about the
    // signatures.
    let answer = s.fake.send_transaction(&s.peer, &[good], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &id), &json!({}), "{answer}");
    assert_eq!(
        get_event(&s.alice, &s.room, &id).await.must_status(200)["content"]["body"],
        "genuine"
    );
    s.d.destroy().await;
}

/// Wrong origins: a transaction whose `origin` is not the server that signed the
/// request is 400; a server not in the room relaying a member's event, and a user of a
/// server not in the room sending into it, are refused per PDU.
#[tokio::test]
async fn test_inbound_federation_rejects_wrong_origin() {
    let Some(s) = joined_room(None).await else { return };
    let outsider = FakeServer::start().await;
    let ev = s.fake.build(&s.room, Ev::message(&s.charlie, "relayed"));
    let id = s.fake.event_id(&s.room, &ev);

    // The body claims another origin than the signed request.
    let path = "/_matrix/federation/v1/send/wrong-origin";
    let body =
        json!({"origin": outsider.server_name, "origin_server_ts": 1, "pdus": [ev], "edus": []});
    s.fake
        .request(&s.peer.base_url, &s.peer.server_name, "PUT", path, Some(body))
        .await
        .must_status(400);

    // A server that is not in the room relays Charlie's (validly signed) event.
    let answer = outsider.send_transaction(&s.peer, std::slice::from_ref(&ev), &[]).await;
    let answer = answer.must_status(200);
    assert!(pdu_result(&answer, &id).get("error").is_some(), "relay accepted: {answer}");
    get_event(&s.alice, &s.room, &id).await.must_error(404, "M_NOT_FOUND");

    // A user of a server that is not in the room, signed by their own server.
    let dave = outsider.user_id("dave");
    let mut intruder = s.fake.build(&s.room, Ev::message(&dave, "let me in"));
    intruder["origin"] = json!(outsider.server_name);
    let intruder = outsider.sign(&s.fake.room(&s.room, |r| r.version.clone()), intruder);
    let iid = s.fake.event_id(&s.room, &intruder);
    let answer = outsider.send_transaction(&s.peer, &[intruder], &[]).await.must_status(200);
    // Rejected, which is no error in the answer (Synapse): it is never shown.
    assert_eq!(pdu_result(&answer, &iid), &json!({}), "{answer}");
    get_event(&s.alice, &s.room, &iid).await.must_error(404, "M_NOT_FOUND");

    // From its own server, Charlie's event goes in.
    let answer = s.fake.send_transaction(&s.peer, &[ev], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &id), &json!({}), "{answer}");
    s.d.destroy().await;
}

/// An event whose content no longer matches its hash (the signature, over the redacted
/// form, still holds) is stored redacted: clients see it without its content.
#[tokio::test]
async fn test_inbound_federation_redacts_content_hash_mismatch() {
    let Some(s) = joined_room(None).await else { return };
    let mut ev = s.fake.build(&s.room, Ev::message(&s.charlie, "original"));
    ev["content"]["body"] = json!("tampered");
    let id = s.fake.event_id(&s.room, &ev);
    let answer = s.fake.send_transaction(&s.peer, &[ev], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &id), &json!({}), "{answer}");
    let got = get_event(&s.alice, &s.room, &id).await.must_status(200);
    assert_eq!(got["type"], "m.room.message", "{got}");
    assert_eq!(got["content"], json!({}), "content kept despite the hash mismatch: {got}");
    s.d.destroy().await;
}

/// Charlie (at power 0) raising himself to `level`: signed, failing auth, not added.
fn self_promotion(s: &Setup, level: i64) -> Value {
    let pl = s.fake.room(&s.room, |r| r.state_event("m.room.power_levels", "").cloned());
    let mut content = pl.expect("power levels")["content"].clone();
    content["users"][&s.charlie] = json!(level);
    s.fake.build(&s.room, Ev::state("m.room.power_levels", "", &s.charlie, content))
}

/// Events failing the auth rules (Charlie, at power 0, raising himself to 100 and
/// renaming the room) are rejected and never reach current state.
#[tokio::test]
async fn test_inbound_federation_rejects_events_failing_auth() {
    let Some(s) = joined_room(None).await else { return };
    s.alice
        .must_do(
            "PUT",
            &cs(&["rooms", &s.room, "state", "m.room.name", ""]),
            json!({"name": "Old"}),
        )
        .await;
    // Build on the DAG with the name in it, so the rename is about that state.
    wait_until("the name event at the fake server", WAIT, || {
        let name = s.fake.room(&s.room, |r| r.state_id("m.room.name", ""));
        async move { name }
    })
    .await;
    let coup = self_promotion(&s, 100);
    let rename = s
        .fake
        .build(&s.room, Ev::state("m.room.name", "", &s.charlie, json!({"name": "Charlie's"})));
    let ids = [s.fake.event_id(&s.room, &coup), s.fake.event_id(&s.room, &rename)];
    let answer = s.fake.send_transaction(&s.peer, &[coup, rename], &[]).await.must_status(200);
    for id in &ids {
        // Rejected, which is no error in the answer (Synapse).
        assert_eq!(pdu_result(&answer, id), &json!({}), "{answer}");
        get_event(&s.alice, &s.room, id).await.must_error(404, "M_NOT_FOUND");
    }
    let pl = s
        .alice
        .get(&cs(&["rooms", &s.room, "state", "m.room.power_levels", ""]))
        .await
        .must_status(200);
    assert!(pl["users"].get(&s.charlie).is_none(), "Charlie gained power: {pl}");
    let name =
        s.alice.get(&cs(&["rooms", &s.room, "state", "m.room.name", ""])).await.must_status(200);
    assert_eq!(name["name"], "Old");
    let next = send_text(&s.alice, &s.room, "next").await;
    let prevs = prev_events_at_fake(&s.fake, &s.room, &next).await;
    assert!(ids.iter().all(|id| !prevs.contains(id)), "Glia built on a rejected event: {prevs:?}");
    s.d.destroy().await;
}

/// TestInboundFederationRejectsEventsWithRejectedAuthEvents: an event citing a rejected
/// event among its auth events is rejected too, though it would pass on its own.
#[tokio::test]
async fn test_inbound_federation_rejects_events_with_rejected_auth_events() {
    let Some(s) = joined_room(None).await else { return };
    let bad_pl = self_promotion(&s, 100);
    let bad_id = s.fake.event_id(&s.room, &bad_pl);
    let answer = s.fake.send_transaction(&s.peer, &[bad_pl], &[]).await.must_status(200);
    // Rejected, which is no error in the answer (Synapse).
    assert_eq!(pdu_result(&answer, &bad_id), &json!({}), "{answer}");
    get_event(&s.alice, &s.room, &bad_id).await.must_error(404, "M_NOT_FOUND");

    // A message citing the rejected power levels (instead of the real ones).
    let (create, member) = s.fake.room(&s.room, |r| {
        (r.state_id("m.room.create", "").expect("create"), r.state_id("m.room.member", &s.charlie))
    });
    let auth = vec![create, bad_id.clone(), member.expect("charlie's join")];
    let msg = s
        .fake
        .build(&s.room, Ev::message(&s.charlie, "on rejected ground").prev(&[bad_id]).auth(&auth));
    let msg_id = s.fake.event_id(&s.room, &msg);
    let answer = s.fake.send_transaction(&s.peer, &[msg], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &msg_id), &json!({}), "{answer}");
    get_event(&s.alice, &s.room, &msg_id).await.must_error(404, "M_NOT_FOUND");

    // Power levels Glia never got, which it fetches (event_auth) for a message citing
    // them: they fail auth, so the message is rejected too.
    let unseen = self_promotion(&s, 99);
    let unseen_id = s.fake.room(&s.room, |r| r.remember(unseen));
    let auth = vec![auth[0].clone(), unseen_id, auth[2].clone()];
    let msg2 = s.fake.build(&s.room, Ev::message(&s.charlie, "on unseen ground").auth(&auth));
    let msg2_id = s.fake.room(&s.room, |r| r.remember(msg2.clone()));
    let answer = s.fake.send_transaction(&s.peer, &[msg2], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &msg2_id), &json!({}), "{answer}");
    assert!(!s.fake.received_on("GET", "/_matrix/federation/v1/event_auth/").is_empty());
    get_event(&s.alice, &s.room, &msg2_id).await.must_error(404, "M_NOT_FOUND");

    // The same message on the real auth events is fine.
    let (ok_id, ok) = s.fake.send_in(&s.room, Ev::message(&s.charlie, "on solid ground"));
    let answer = s.fake.send_transaction(&s.peer, &[ok], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &ok_id), &json!({}), "{answer}");
    get_event(&s.alice, &s.room, &ok_id).await.must_status(200);
    s.d.destroy().await;
}

/// /state and /state_ids need an event_id (400 M_MISSING_PARAM, whatever the room) and serve nothing at a
/// rejected event (404 M_NOT_FOUND), as Synapse.
#[tokio::test]
async fn test_inbound_federation_no_state_at_rejected_event() {
    let Some(s) = joined_room(None).await else { return };
    let bad_pl = self_promotion(&s, 100);
    let bad_id = s.fake.event_id(&s.room, &bad_pl);
    let answer = s.fake.send_transaction(&s.peer, &[bad_pl], &[]).await.must_status(200);
    // Rejected, which is no error in the answer (Synapse).
    assert_eq!(pdu_result(&answer, &bad_id), &json!({}), "{answer}");
    get_event(&s.alice, &s.room, &bad_id).await.must_error(404, "M_NOT_FOUND");
    let room = encode_segment(&s.room);
    let ev = encode_segment(&bad_id);
    for endpoint in ["state", "state_ids"] {
        let base = format!("/_matrix/federation/v1/{endpoint}/{room}");
        let r = s.fake.request(&s.peer.base_url, &s.peer.server_name, "GET", &base, None).await;
        r.must_error(400, "M_MISSING_PARAM");
        let elsewhere = format!("/_matrix/federation/v1/{endpoint}/notaroom");
        let r =
            s.fake.request(&s.peer.base_url, &s.peer.server_name, "GET", &elsewhere, None).await;
        r.must_error(400, "M_MISSING_PARAM");
        let at = format!("{base}?event_id={ev}");
        let r = s.fake.request(&s.peer.base_url, &s.peer.server_name, "GET", &at, None).await;
        r.must_error(404, "M_NOT_FOUND");
    }
    s.d.destroy().await;
}

/// A redaction of an event of another room is rejected: never shown, and its target
/// (here in a room of Glia's own) keeps its content.
#[tokio::test]
async fn test_inbound_federation_rejects_redaction_of_another_rooms_event() {
    let Some(s) = joined_room(None).await else { return };
    let other = s.alice.must_create_room(json!({"preset": "private_chat"})).await;
    let target = send_text(&s.alice, &other, "elsewhere").await;
    let mut redaction = Ev::new("m.room.redaction", &s.charlie, json!({"redacts": target}));
    redaction.extra.insert("redacts".into(), json!(target));
    let (rid, pdu) = s.fake.send_in(&s.room, redaction);
    let answer = s.fake.send_transaction(&s.peer, &[pdu], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &rid), &json!({}), "{answer}");
    get_event(&s.alice, &s.room, &rid).await.must_error(404, "M_NOT_FOUND");
    let got = get_event(&s.alice, &other, &target).await.must_status(200);
    assert_eq!(got["content"]["body"], "elsewhere", "{got}");
    s.d.destroy().await;
}

/// A banned user's event built on the DAG from before the ban passes auth against the
/// state before it but not against the current state: it is soft-failed, never shown.
#[tokio::test]
async fn test_inbound_federation_soft_fails_banned_user() {
    let Some(s) = joined_room(None).await else { return };
    // Eve keeps Charlie's server in the room after the ban, so it sees what Glia sends.
    s.fake.join(&s.peer, &s.room, &s.fake.user_id("eve")).await;
    // What Charlie's server knew before the ban.
    let (tips, auth) =
        s.fake.room(&s.room, |r| (r.tips.clone(), r.auth_events_for(&Ev::message(&s.charlie, ""))));
    s.alice.must_do("POST", &cs(&["rooms", &s.room, "ban"]), json!({"user_id": s.charlie})).await;
    let late = s
        .fake
        .build(&s.room, Ev::message(&s.charlie, "sent before I knew").prev(&tips).auth(&auth));
    let late_id = s.fake.event_id(&s.room, &late);
    s.fake.send_transaction(&s.peer, &[late], &[]).await.must_status(200);
    let after = send_text(&s.alice, &s.room, "after the ban").await;
    let ids = timeline_ids(&s.alice, &s.room).await;
    assert!(ids.contains(&after), "alice's message missing: {ids:?}");
    assert!(!ids.contains(&late_id), "soft-failed event in the timeline: {ids:?}");
    let prevs = prev_events_at_fake(&s.fake, &s.room, &after).await;
    assert!(!prevs.contains(&late_id), "Glia built on the soft-failed event: {prevs:?}");
    let resp = s.alice.sync(None, 0, None).await;
    let timeline = resp["rooms"]["join"][&s.room]["timeline"]["events"].to_string();
    assert!(!timeline.contains(&late_id), "soft-failed event in /sync: {timeline}");
    assert_eq!(membership(&s.alice, &s.room, &s.charlie).await, "ban");
    s.d.destroy().await;
}

/// A transaction of 51 PDUs or 101 EDUs is refused whole with 400; 50 and 100 are fine.
#[tokio::test]
async fn test_inbound_federation_rejects_oversized_transactions() {
    let Some(s) = joined_room(None).await else { return };
    let mut pdus = vec![];
    for i in 0..51 {
        pdus.push(s.fake.send_in(&s.room, Ev::message(&s.charlie, &format!("m{i}"))).1);
    }
    let first = s.fake.event_id(&s.room, &pdus[0]);
    s.fake.send_transaction(&s.peer, &pdus, &[]).await.must_status(400);
    get_event(&s.alice, &s.room, &first).await.must_error(404, "M_NOT_FOUND");
    let answer = s.fake.send_transaction(&s.peer, &pdus[..50], &[]).await.must_status(200);
    assert_eq!(answer["pdus"].as_object().map(|o| o.len()), Some(50), "{answer}");
    get_event(&s.alice, &s.room, &first).await.must_status(200);

    let typing = |on: bool| json!({"edu_type": "m.typing", "content": {"room_id": s.room, "user_id": s.charlie, "typing": on}});
    let edus: Vec<Value> = (0..101).map(|_| typing(true)).collect();
    s.fake.send_transaction(&s.peer, &[], &edus).await.must_status(400);
    s.fake.send_transaction(&s.peer, &[], &edus[..100]).await.must_status(200);
    s.d.destroy().await;
}

/// A PDU over 65536 bytes is refused and not stored; the transaction still answers 200.
#[tokio::test]
async fn test_inbound_federation_rejects_oversized_pdu() {
    let Some(s) = joined_room(None).await else { return };
    // Signing refuses oversized events, so grow one after signing: were the size not
    // checked, the content hash mismatch would store it redacted, and visible.
    let mut huge = s.fake.build(&s.room, Ev::message(&s.charlie, "huge"));
    huge["content"]["body"] = json!("x".repeat(70_000));
    let id = s.fake.event_id(&s.room, &huge);
    let answer = s.fake.send_transaction(&s.peer, &[huge], &[]).await.must_status(200);
    assert!(pdu_result(&answer, &id).get("error").is_some(), "oversized PDU accepted: {answer}");
    get_event(&s.alice, &s.room, &id).await.must_error(404, "M_NOT_FOUND");
    s.d.destroy().await;
}

/// TestGetMissingEventsGapFilling: an event whose prev_events Glia lacks makes it ask the
/// origin's get_missing_events for the gap, and the events found there are shown too.
#[tokio::test]
async fn test_get_missing_events_gap_filling() {
    for version in [None, Some("1")] {
        gap_filling(version).await;
    }
}

async fn gap_filling(version: Option<&str>) {
    let Some(s) = joined_room(version).await else { return };
    let (a, _) = s.fake.send_in(&s.room, Ev::message(&s.charlie, "gap 1"));
    let (b, _) = s.fake.send_in(&s.room, Ev::message(&s.charlie, "gap 2"));
    let (c, last) = s.fake.send_in(&s.room, Ev::message(&s.charlie, "after the gap"));
    let answer = s.fake.send_transaction(&s.peer, &[last], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &c), &json!({}), "{answer}");
    assert!(
        !s.fake.received_on("POST", "/_matrix/federation/v1/get_missing_events/").is_empty(),
        "Glia did not ask for the missing events"
    );
    let ids = timeline_ids(&s.alice, &s.room).await;
    let pos = |id: &String| ids.iter().position(|x| x == id);
    assert!(
        pos(&a).is_some() && pos(&a) < pos(&b) && pos(&b) < pos(&c),
        "gap not filled in order: {ids:?} (want {a}, {b}, {c})"
    );
    s.d.destroy().await;
}

/// A get_missing_events answer that includes the event being filled in for (SyTest's
/// fake server does) is fine: that event is stored once, after the gap.
#[tokio::test]
async fn test_get_missing_events_answer_including_the_latest_event() {
    let Some(s) = joined_room(None).await else { return };
    let (a, gap) = s.fake.send_in(&s.room, Ev::message(&s.charlie, "gap"));
    let (c, last) = s.fake.send_in(&s.room, Ev::message(&s.charlie, "after the gap"));
    let events = json!({"events": [gap, last.clone()]});
    s.fake.on("POST", "/_matrix/federation/v1/get_missing_events/", move |_| (200, events.clone()));
    let answer = s.fake.send_transaction(&s.peer, &[last], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &c), &json!({}), "{answer}");
    let ids = timeline_ids(&s.alice, &s.room).await;
    let pos = |id: &String| ids.iter().position(|x| x == id);
    assert!(pos(&a).is_some() && pos(&a) < pos(&c), "gap not filled: {ids:?}");
    s.d.destroy().await;
}

/// TestInboundCanReturnMissingEvents: Glia answers get_missing_events with the events
/// between what the asker has and what it names, oldest first; for each history
/// visibility, the message sent before the asker's server joined comes redacted (there
/// and from /event) when the room's history is only for those invited or joined.
#[tokio::test]
async fn test_inbound_can_return_missing_events() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let charlie = fake.user_id("charlie");
    let mut last_room = None;
    for visibility in ["world_readable", "shared", "invited", "joined"] {
        let room = alice
            .must_do("POST", &cs(&["createRoom"]), json!({"preset": "public_chat"}))
            .await["room_id"]
            .as_str()
            .expect("room_id")
            .to_string();
        let hv = json!({"history_visibility": visibility});
        alice
            .must_do("PUT", &cs(&["rooms", &room, "state", "m.room.history_visibility", ""]), hv)
            .await;
        let msg = send_text(&alice, &room, "1").await;
        let join = fake.join(&peer, &room, &charlie).await;
        let create = fake.room(&room, |r| r.state_id("m.room.create", "")).expect("create");
        let body = json!({
            "earliest_events": [create],
            "latest_events": [join],
            "limit": 10,
            "min_depth": 1,
        });
        let path = format!(
            "/_matrix/federation/v1/get_missing_events/{}",
            glia_harness::client::encode_segment(&room)
        );
        let r = fake
            .request(&peer.base_url, &peer.server_name, "POST", &path, Some(body))
            .await
            .must_status(200);
        let events = r["events"].as_array().expect("events");
        let ids: Vec<String> = events.iter().map(|e| fake.event_id(&room, e)).collect();
        assert!(
            events.first().is_some_and(
                |e| e["type"] == "m.room.member" && e["state_key"] == alice.user_id.as_str()
            ),
            "{visibility}: first is not the creator's join: {r}"
        );
        assert_eq!(ids.last(), Some(&msg), "{visibility}: the message is not last: {r}");
        let depths: Vec<u64> = events.iter().filter_map(|e| e["depth"].as_u64()).collect();
        assert!(depths.windows(2).all(|w| w[0] <= w[1]), "{visibility}: not oldest first: {r}");
        // The same through /event.
        let path = format!("/_matrix/federation/v1/event/{}", encode_segment(&msg));
        let one = fake.request(&peer.base_url, &peer.server_name, "GET", &path, None).await;
        let one = one.must_status(200);
        for content in [&events[events.len() - 1]["content"], &one["pdus"][0]["content"]] {
            if matches!(visibility, "invited" | "joined") {
                assert_eq!(content, &json!({}), "{visibility}: history leaked: {r} {one}");
            } else {
                assert_eq!(content["body"], "1", "{visibility}: {r} {one}");
            }
        }
        last_room = Some(room);
    }

    // A server that is not in the (last, not world-readable) room gets nothing.
    let outsider = FakeServer::start().await;
    let room = last_room.expect("a room");
    let path = format!(
        "/_matrix/federation/v1/get_missing_events/{}",
        glia_harness::client::encode_segment(&room)
    );
    let body = json!({"earliest_events": [], "latest_events": [], "limit": 10});
    outsider
        .request(&peer.base_url, &peer.server_name, "POST", &path, Some(body))
        .await
        .must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}

/// An event whose prev events Glia has never seen, one of them also an auth event (a new
/// user's join, then their message; only the message is sent): Glia fills the gap
/// first, so the join is part of the room (in its state and timeline), not a mere
/// outlier the message then fails against.
#[tokio::test]
async fn test_inbound_federation_fetches_unknown_auth_and_prev_events() {
    let Some(s) = joined_room(None).await else { return };
    let dan = s.fake.user_id("dan");
    let (join, _) = s.fake.send_in(&s.room, Ev::member(&dan, "join"));
    let (msg, pdu) = s.fake.send_in(&s.room, Ev::message(&dan, "first words"));
    let auth = s.fake.room(&s.room, |r| r.events[&msg]["auth_events"].clone());
    assert!(auth.to_string().contains(&join), "the message cites the join: {auth}");
    let answer = s.fake.send_transaction(&s.peer, &[pdu], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &msg), &json!({}), "{answer}");
    assert_eq!(membership(&s.alice, &s.room, &dan).await, "join");
    let ids = timeline_ids(&s.alice, &s.room).await;
    let pos = |id: &String| ids.iter().position(|x| x == id);
    assert!(pos(&join).is_some() && pos(&join) < pos(&msg), "{ids:?} (want {join}, {msg})");
    s.d.destroy().await;
}

/// An event citing an auth event Glia has never seen and that is not among its
/// prev_events (power levels changed on a fork): Glia fetches it with event_auth from
/// the origin and accepts the event.
#[tokio::test]
async fn test_inbound_federation_fetches_unknown_auth_events() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    join_via(&alice, &room, &fake.server_name).await.must_status(200);
    let (tips, mut pl) = fake.room(&room, |r| {
        let pl = r.state_event("m.room.power_levels", "").cloned();
        (r.tips.clone(), pl.expect("power levels")["content"].clone())
    });
    pl["events_default"] = json!(10);
    let (new_pl, _) = fake.send_in(&room, Ev::state("m.room.power_levels", "", &bob, pl));
    let auth = fake.room(&room, |r| {
        let ids = ["m.room.create", "m.room.power_levels"].map(|t| r.state_id(t, ""));
        let member = r.state_id("m.room.member", &bob);
        [ids[0].clone(), ids[1].clone(), member].map(|i| i.expect("auth event")).to_vec()
    });
    assert!(auth.contains(&new_pl));
    let (msg, pdu) = fake.send_in(&room, Ev::message(&bob, "on a fork").prev(&tips).auth(&auth));
    let answer = fake.send_transaction(&peer, &[pdu], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &msg), &json!({}), "{answer}");
    assert!(
        !fake.received_on("GET", "/_matrix/federation/v1/event_auth/").is_empty(),
        "Glia did not fetch the auth chain"
    );
    assert_eq!(
        get_event(&alice, &room, &msg).await.must_status(200)["content"]["body"],
        "on a fork"
    );
    d.destroy().await;
}

/// Malformed transactions: a body that is not JSON is 400 M_NOT_JSON, `pdus` that is not a
/// list 400 M_BAD_JSON; PDUs that are not events, or are for rooms Glia does not know,
/// get a per-PDU error in a 200 answer, next to a good PDU that is accepted; a retried
/// transaction ID gets the same answer without processing it again.
#[tokio::test]
async fn test_inbound_federation_malformed_transactions() {
    let Some(s) = joined_room(None).await else { return };
    let path = "/_matrix/federation/v1/send/malformed1";
    let header = s.fake.x_matrix("PUT", path, &s.peer.server_name, None);
    let url = format!("{}{path}", s.peer.base_url);
    let r = glia_harness::client::http_client(None)
        .put(&url)
        .header("authorization", header)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let err: Value = r.json().await.unwrap_or_default();
    assert_eq!((status, &err["errcode"]), (400, &json!("M_NOT_JSON")), "{err}");
    let body = json!({"origin": s.fake.server_name, "origin_server_ts": 1, "pdus": {"a": 1}});
    s.fake
        .request(&s.peer.base_url, &s.peer.server_name, "PUT", path, Some(body))
        .await
        .must_error(400, "M_BAD_JSON");

    let mut unknown_room = s.fake.build(&s.room, Ev::message(&s.charlie, "nowhere"));
    unknown_room["room_id"] = json!(format!("!nowhere:{}", s.fake.server_name));
    let version = s.fake.room(&s.room, |r| r.version.clone());
    let unknown_room = s.fake.sign(&version, unknown_room);
    let (good_id, good) = s.fake.send_in(&s.room, Ev::message(&s.charlie, "good"));
    let pdus =
        vec![json!(42), json!({"type": "m.room.message", "room_id": s.room}), unknown_room, good];
    let answer = s.fake.send_transaction(&s.peer, &pdus, &[json!("not an EDU")]).await;
    let answer = answer.must_status(200);
    let results = answer["pdus"].as_object().expect("pdus");
    assert_eq!(results.get(&good_id), Some(&json!({})), "{answer}");
    // Every other entry is an error (PDUs without an ID Glia can compute share one key).
    let refused = results.iter().filter(|(k, r)| **k != good_id && r.get("error").is_some());
    assert!(refused.count() >= 1, "{answer}");
    assert!(results.iter().all(|(k, r)| *k == good_id || r.get("error").is_some()), "{answer}");
    get_event(&s.alice, &s.room, &good_id).await.must_status(200);

    // A retried transaction is answered the same, and processed once.
    let (again_id, again) = s.fake.send_in(&s.room, Ev::message(&s.charlie, "once"));
    let body = json!({"origin": s.fake.server_name, "origin_server_ts": 1, "pdus": [again]});
    let path = "/_matrix/federation/v1/send/retried1";
    let first = s
        .fake
        .request(&s.peer.base_url, &s.peer.server_name, "PUT", path, Some(body.clone()))
        .await
        .must_status(200);
    let second = s
        .fake
        .request(&s.peer.base_url, &s.peer.server_name, "PUT", path, Some(body))
        .await
        .must_status(200);
    assert_eq!(first, second);
    let ids = timeline_ids(&s.alice, &s.room).await;
    assert_eq!(ids.iter().filter(|i| **i == again_id).count(), 1, "{ids:?}");
    s.d.destroy().await;
}

/// EDUs about users the origin does not own are ignored: typing and receipts for Alice,
/// a to-device message claiming to be from her. Charlie's own typing goes through.
#[tokio::test]
async fn test_inbound_federation_ignores_spoofed_edus() {
    let Some(s) = joined_room(None).await else { return };
    let since =
        s.alice.sync(None, 0, None).await["next_batch"].as_str().expect("batch").to_string();
    let msg = send_text(&s.alice, &s.room, "read me").await;
    let edus = vec![
        json!({"edu_type": "m.typing", "content": {"room_id": s.room, "user_id": s.alice.user_id, "typing": true}}),
        json!({"edu_type": "m.receipt", "content": {&s.room: {"m.read": {&s.alice.user_id: {"event_ids": [msg], "data": {"ts": 1}}}}}}),
        json!({"edu_type": "m.direct_to_device", "content": {
            "sender": s.alice.user_id, "type": "m.spoof", "message_id": "m1",
            "messages": {&s.alice.user_id: {&s.alice.device_id: {"spoofed": true}}},
        }}),
        json!({"edu_type": "m.typing", "content": {"room_id": s.room, "user_id": s.charlie, "typing": true}}),
    ];
    s.fake.send_transaction(&s.peer, &[], &edus).await.must_status(200);
    let (room, charlie) = (s.room.clone(), s.charlie.clone());
    let mut seen = vec![];
    s.alice
        .sync_until(Some(&since), "charlie typing", WAIT, |r| {
            seen.push(r.clone());
            r["rooms"]["join"][&room]["ephemeral"]["events"].as_array().is_some_and(|evs| {
                evs.iter().any(|e| {
                    e["type"] == "m.typing" && e["content"]["user_ids"] == json!([charlie])
                })
            })
        })
        .await;
    let all = json!(seen).to_string();
    assert!(!all.contains("m.spoof"), "spoofed to-device delivered: {all}");
    assert!(!all.contains("m.receipt"), "spoofed receipt applied: {all}");
    s.d.destroy().await;
}

/// Glia serves its room's DAG to a server in the room (/event, /state_ids, /state,
/// /event_auth, /backfill) and to no one else (403).
#[tokio::test]
async fn test_inbound_federation_serves_room_dag() {
    let Some(s) = joined_room(None).await else { return };
    let msg = send_text(&s.alice, &s.room, "served").await;
    let room = glia_harness::client::encode_segment(&s.room);
    let ev = glia_harness::client::encode_segment(&msg);
    let f = "/_matrix/federation/v1";
    let paths = [
        format!("{f}/event/{ev}"),
        format!("{f}/state_ids/{room}?event_id={ev}"),
        format!("{f}/state/{room}?event_id={ev}"),
        format!("{f}/event_auth/{room}/{ev}"),
        format!("{f}/backfill/{room}?v={ev}&limit=5"),
    ];
    let mut answers = vec![];
    for p in &paths {
        let r = s.fake.request(&s.peer.base_url, &s.peer.server_name, "GET", p, None).await;
        answers.push(r.must_status(200));
    }
    let id_of = |e: &Value| s.fake.event_id(&s.room, e);
    assert_eq!(
        answers[0]["pdus"].as_array().map(|a| a.iter().map(id_of).collect::<Vec<_>>()),
        Some(vec![msg.clone()])
    );
    let (create, alice_join, charlie_join) = s.fake.room(&s.room, |r| {
        (
            r.state_id("m.room.create", "").expect("create"),
            r.state_id("m.room.member", &s.alice.user_id).expect("alice"),
            r.state_id("m.room.member", &s.charlie).expect("charlie"),
        )
    });
    let state_ids: Vec<String> = answers[1]["pdu_ids"]
        .as_array()
        .expect("pdu_ids")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    for want in [&create, &alice_join, &charlie_join] {
        assert!(state_ids.contains(want), "{want} missing from state_ids: {}", answers[1]);
    }
    assert!(!state_ids.contains(&msg), "a message in the state: {}", answers[1]);
    let state: Vec<String> =
        answers[2]["pdus"].as_array().expect("pdus").iter().map(id_of).collect();
    let mut a = state.clone();
    let mut b = state_ids.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "/state and /state_ids disagree");
    let chain: Vec<String> =
        answers[3]["auth_chain"].as_array().expect("auth_chain").iter().map(id_of).collect();
    assert!(chain.contains(&create) && chain.contains(&alice_join), "{}", answers[3]);
    let back: Vec<String> =
        answers[4]["pdus"].as_array().expect("pdus").iter().map(id_of).collect();
    assert_eq!(back.first(), Some(&msg), "{}", answers[4]);
    assert!(back.len() <= 5, "{}", answers[4]);

    let outsider = FakeServer::start().await;
    for p in &paths {
        let r = outsider.request(&s.peer.base_url, &s.peer.server_name, "GET", p, None).await;
        r.must_error(403, "M_FORBIDDEN");
    }
    s.d.destroy().await;
}

/// A redaction from the fake server applies to its target (room versions 10 and 11,
/// which moved `redacts` into the content); one by a user of another server without the
/// power to redact leaves its target intact (the check happens when it would apply).
#[tokio::test]
async fn test_inbound_federation_redaction() {
    for version in ["10", "11"] {
        let Some(s) = joined_room(Some(version)).await else { return };
        let (msg, pdu) = s.fake.send_in(&s.room, Ev::message(&s.charlie, "regrettable"));
        s.fake.send_transaction(&s.peer, &[pdu], &[]).await.must_status(200);
        let mut redaction = Ev::new("m.room.redaction", &s.charlie, json!({"redacts": msg}));
        redaction.extra.insert("redacts".into(), json!(msg));
        let (rid, pdu) = s.fake.send_in(&s.room, redaction);
        let answer = s.fake.send_transaction(&s.peer, &[pdu], &[]).await.must_status(200);
        assert_eq!(pdu_result(&answer, &rid), &json!({}), "v{version}: {answer}");
        let got = get_event(&s.alice, &s.room, &msg).await.must_status(200);
        assert_eq!(got["content"], json!({}), "v{version}: not redacted: {got}");
        // The redaction is named in `unsigned`, as Synapse does.
        assert_eq!(got["unsigned"]["redacted_by"], json!(rid), "v{version}: {got}");

        // Charlie (power 0) cannot redact Alice's message.
        let alices = send_text(&s.alice, &s.room, "mine").await;
        wait_until("alice's message at the fake server", WAIT, || {
            let has = s.fake.room(&s.room, |r| r.events.contains_key(&alices));
            async move { has.then_some(()) }
        })
        .await;
        let mut redaction = Ev::new("m.room.redaction", &s.charlie, json!({"redacts": alices}));
        redaction.extra.insert("redacts".into(), json!(alices));
        let pdu = s.fake.build(&s.room, redaction);
        s.fake.send_transaction(&s.peer, &[pdu], &[]).await.must_status(200);
        let got = get_event(&s.alice, &s.room, &alices).await.must_status(200);
        assert_eq!(got["content"]["body"], "mine", "v{version}: redacted by charlie: {got}");
        s.d.destroy().await;
    }
}

/// Signed PDUs that break the format rules (negative depth, too many prev or auth events,
/// an oversized type, a state_key that is not a string, a sender that is not a user ID)
/// each get a per-PDU error in a 200 answer; Glia keeps working.
#[tokio::test]
async fn test_inbound_federation_rejects_malformed_pdus() {
    let Some(s) = joined_room(None).await else { return };
    let many: Vec<String> = (0..21).map(|i| format!("$missing{i}")).collect();
    let msg = |extra: serde_json::Value| {
        let mut ev = Ev::message(&s.charlie, "malformed");
        for (k, v) in extra.as_object().expect("object") {
            ev.extra.insert(k.clone(), v.clone());
        }
        ev
    };
    let cases = [
        ("negative depth", msg(json!({"depth": -1}))),
        ("21 prev_events", msg(json!({})).prev(&many)),
        ("11 auth_events", msg(json!({})).auth(&many[..11])),
        ("type over 255 bytes", msg(json!({"type": "t".repeat(300)}))),
        ("numeric state_key", msg(json!({"state_key": 5}))),
        ("sender not a user ID", msg(json!({"sender": "charlie"}))),
    ];
    for (what, ev) in cases {
        let pdu = s.fake.build(&s.room, ev);
        let answer = s.fake.send_transaction(&s.peer, &[pdu], &[]).await.must_status(200);
        let results = answer["pdus"].as_object().expect("pdus");
        assert!(
            !results.is_empty() && results.values().all(|r| r.get("error").is_some()),
            "{what}: {answer}"
        );
    }
    let ids = timeline_ids(&s.alice, &s.room).await;
    let (ok_id, ok) = s.fake.send_in(&s.room, Ev::message(&s.charlie, "well formed"));
    let answer = s.fake.send_transaction(&s.peer, &[ok], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &ok_id), &json!({}), "{answer}");
    let after = timeline_ids(&s.alice, &s.room).await;
    assert_eq!(after.len(), ids.len() + 1, "only the good event was added: {after:?}");
    s.d.destroy().await;
}

/// Once no user of Glia is in the room, PDUs pushed into it are ignored, as Synapse does:
/// nothing is stored, and nothing is fetched from the origin for them (no
/// get_missing_events for their gap).
#[tokio::test]
async fn test_inbound_federation_ignores_pdus_for_rooms_glia_left() {
    let Some(s) = joined_room(None).await else { return };
    s.alice.must_do("POST", &cs(&["rooms", &s.room, "leave"]), json!({})).await;
    s.fake.send_in(&s.room, Ev::message(&s.charlie, "unseen gap"));
    let (late_id, late) = s.fake.send_in(&s.room, Ev::message(&s.charlie, "after everyone left"));
    let answer = s.fake.send_transaction(&s.peer, &[late], &[]).await.must_status(200);
    assert!(answer["pdus"].get(&late_id).is_some(), "{answer}");
    assert!(
        s.fake.received_on("POST", "/_matrix/federation/v1/get_missing_events/").is_empty(),
        "Glia fetched a gap for a room it is not in"
    );
    // Alice comes back through Charlie's server: the message pushed while nobody was in
    // was not kept (paging back past her join would backfill it, as history).
    let joined = crate::fakes::join_via(&s.alice, &s.room, &s.fake.server_name).await;
    joined.must_status(200);
    let r = crate::fakes::get_event(&s.alice, &s.room, &late_id).await;
    r.must_error(404, "M_NOT_FOUND");
    s.d.destroy().await;
}

/// TestOutboundFederationEventSizeGetMissingEvents: the gap Glia fetches holds a state
/// event whose state_key is 70 codepoints but 280 bytes, which a version 10 room allows
/// (its limits count codepoints); the message sent after it reaches Alice. (From
/// version 11 on the event is invalid, and so the message lacks a prev event.)
#[tokio::test]
async fn test_event_size_get_missing_events() {
    let Some(s) = joined_room(Some("10")).await else { return };
    let key = "💥".repeat(70);
    s.fake.send_in(&s.room, Ev::state("my.room.breaker", &key, &s.charlie, json!({})));
    let (id, pdu) = s.fake.send_in(&s.room, Ev::message(&s.charlie, "Message 2"));
    let answer = s.fake.send_transaction(&s.peer, &[pdu], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &id), &json!({}), "{answer}");
    let ids = timeline_ids(&s.alice, &s.room).await;
    assert!(ids.contains(&id), "the message is missing: {ids:?}");
    s.d.destroy().await;
}

/// An event that redacts itself (possible in room versions 1 and 2, whose event IDs are
/// chosen by the sender) is accepted but changes nothing; Glia keeps serving the room
/// and its syncs (SyTest: "An event which redacts itself should be ignored").
#[tokio::test]
async fn test_inbound_federation_ignores_self_redaction() {
    let Some(s) = joined_room(Some("1")).await else { return };
    let id = format!("$selfredact:{}", s.fake.server_name);
    let mut ev = Ev::new("m.room.redaction", &s.charlie, json!({}));
    ev.extra.insert("event_id".into(), json!(id));
    ev.extra.insert("redacts".into(), json!(id));
    let (rid, pdu) = s.fake.send_in(&s.room, ev);
    assert_eq!(rid, id, "the fake server kept the chosen event ID");
    s.fake.send_transaction(&s.peer, &[pdu], &[]).await.must_status(200);
    let got = get_event(&s.alice, &s.room, &id).await.must_status(200);
    assert!(got["unsigned"].get("redacted_because").is_none(), "redacted itself: {got}");
    s.alice.sync(None, 0, None).await;
    s.d.destroy().await;
}
