//! Repairing the DAG (after Complement's scenarios of the same names): events whose prev
//! events Glia lacks and cannot get, a gap whose events carry a broken auth chain, bad
//! JSON among the missing events, forks arriving late, and the auth chains Glia serves.

use std::collections::BTreeSet;

use base64::Engine;
use glia_harness::client::encode_segment;
use glia_harness::federation::FakeServer;
use glia_harness::federation::room::{self, Ev, ids_in};
use glia_harness::rooms::has_event;
use glia_harness::wait_until;
use serde_json::{Value, json};
use sha2::Digest;

use crate::fakes::{
    WAIT, cs, get_event, join_via, joined_room, pdu_result, prev_events_at_fake, send_text,
    start_with, timeline_ids,
};

const GME: &str = "/_matrix/federation/v1/get_missing_events/";

/// TestUnrejectRejectedEvents: B, whose prev event A the fake server withholds, is
/// refused without being stored; once A arrived, B sent again is accepted and reaches
/// clients after A.
#[tokio::test]
async fn test_unreject_rejected_events() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    join_via(&alice, &room, &fake.server_name).await.must_status(200);
    fake.on("POST", GME, |_| (404, json!({"errcode": "M_NOT_FOUND", "error": "withheld"})));
    let (a_id, a) = fake.send_in(&room, Ev::new("m.event.a", &bob, json!({"event": "A"})));
    let ev_b = Ev::new("m.event.b", &bob, json!({"event": "B"})).prev(std::slice::from_ref(&a_id));
    let (b_id, b) = fake.send_in(&room, ev_b);

    let answer = fake.send_transaction(&peer, std::slice::from_ref(&b), &[]).await;
    let answer = answer.must_status(200);
    assert!(pdu_result(&answer, &b_id).get("error").is_some(), "B taken without A: {answer}");
    assert!(!fake.received_on("POST", GME).is_empty(), "Glia did not ask for A");
    get_event(&alice, &room, &b_id).await.must_error(404, "M_NOT_FOUND");

    let answer = fake.send_transaction(&peer, &[a], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &a_id), &json!({}), "{answer}");
    let id = a_id.clone();
    let since =
        alice.sync_until(None, "A", WAIT, has_event(&room, move |e| e["event_id"] == *id)).await;

    // B again: processed afresh (not remembered as rejected), after A.
    let answer = fake.send_transaction(&peer, &[b], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &b_id), &json!({}), "{answer}");
    let id = b_id.clone();
    alice
        .sync_until(
            Some(&since),
            "B after A",
            WAIT,
            has_event(&room, move |e| e["event_id"] == *id),
        )
        .await;
    let ids = timeline_ids(&alice, &room).await;
    let pos = |id: &String| ids.iter().position(|x| x == id);
    assert!(pos(&a_id).is_some() && pos(&a_id) < pos(&b_id), "{ids:?} (want {a_id}, {b_id})");
    d.destroy().await;
}

/// A message of `sender` in `room` at the fake server, validly hashed and signed, with a
/// float in its content (which canonical JSON, and so room version 6, forbids). Ruma
/// cannot serialise floats, so the content hash is computed here and the signature,
/// over the redacted event (without content), is made by ruma. Returns its ID and it.
fn message_with_float(fake: &FakeServer, room: &str, sender: &str, body: &str) -> (String, Value) {
    let mut ev = fake.build(room, Ev::message(sender, body));
    let obj = ev.as_object_mut().expect("an object");
    for k in ["signatures", "hashes", "unsigned"] {
        obj.remove(k);
    }
    ev["content"]["bad_val"] = json!(1.1);
    // Canonical JSON: serde_json sorts object keys (no preserve_order) and writes compactly.
    let hash = sha2::Sha256::digest(ev.to_string().as_bytes());
    ev["hashes"] = json!({"sha256": base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)});
    let mut without_float = ev.clone();
    without_float["content"] = json!({});
    let version = fake.room(room, |r| r.version.clone());
    let rules = glia_harness::federation::room::rules_of(&version);
    let obj: ruma::canonical_json::CanonicalJsonObject =
        serde_json::from_value(without_float.clone()).expect("canonical");
    let redacted = ruma::canonical_json::redact(obj, &rules.redaction, None).expect("redact");
    let signed = fake.sign_json(&serde_json::to_value(&redacted).expect("json"));
    ev["signatures"] = signed["signatures"].clone();
    without_float["signatures"] = signed["signatures"].clone();
    // The ID is the hash of the redacted event, the same with or without the float.
    (fake.event_id(room, &without_float), ev)
}

/// TestOutboundFederationIgnoresMissingEventWithBadJSONForRoomVersion6: the only missing
/// event get_missing_events offers carries a float; it is dropped, so the message built
/// on it is not taken either (a 200 answer naming it), and a later message on that one
/// makes Glia ask for the gap again, from the same extremity.
#[tokio::test]
async fn test_outbound_federation_ignores_missing_event_with_bad_json_for_room_version_6() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let charlie = fake.user_id("charlie");
    let room = fake.create_room("6", &charlie);
    join_via(&alice, &room, &fake.server_name).await.must_status(200);
    let latest = fake.room(&room, |r| r.tips.clone());
    let (bad_id, bad) = message_with_float(&fake, &room, &charlie, "Message 1");
    // The fake's DAG holds it without the float (the harness cannot hash floats); Glia
    // only ever gets the float version.
    let mut clean = bad.clone();
    if let Some(c) = clean["content"].as_object_mut() {
        c.remove("bad_val");
    }
    assert_eq!(fake.add(&room, clean), bad_id);
    let (m2_id, m2) = fake.send_in(&room, Ev::message(&charlie, "Message 2"));
    fake.on("POST", GME, move |_| (200, json!({"events": [bad]})));
    let answer = fake.send_transaction(&peer, &[m2], &[]).await.must_status(200);
    assert!(answer["pdus"].get(&m2_id).is_some(), "no result for message 2: {answer}");
    let asked = fake.received_on("POST", GME);
    assert_eq!(asked.len(), 1, "get_missing_events requests: {asked:?}");
    assert_eq!(asked[0].body["earliest_events"], json!(latest), "{:?}", asked[0].body);
    assert_eq!(asked[0].body["latest_events"], json!([m2_id]), "{:?}", asked[0].body);
    get_event(&alice, &room, &bad_id).await.must_error(404, "M_NOT_FOUND");
    get_event(&alice, &room, &m2_id).await.must_error(404, "M_NOT_FOUND");

    // Message 2 was not taken: one on it sends Glia to get_missing_events again.
    fake.on("POST", GME, |_| (200, json!({})));
    let (m3_id, m3) = fake.send_in(&room, Ev::message(&charlie, "Message 3"));
    let answer = fake.send_transaction(&peer, &[m3], &[]).await.must_status(200);
    assert!(answer["pdus"].get(&m3_id).is_some(), "no result for message 3: {answer}");
    let asked = fake.received_on("POST", GME);
    assert_eq!(asked.len(), 2, "message 2 was taken: {asked:?}");
    assert_eq!(asked[1].body["earliest_events"], json!(latest), "{:?}", asked[1].body);
    assert_eq!(asked[1].body["latest_events"], json!([m3_id]), "{:?}", asked[1].body);

    // The room still takes events on what Glia has.
    let (ok_id, ok) = fake.send_in(&room, Ev::message(&charlie, "on the join").prev(&latest));
    let answer = fake.send_transaction(&peer, &[ok], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &ok_id), &json!({}), "{answer}");
    d.destroy().await;
}

/// TestCorruptedAuthChain: Bob changes his displayname five times (A to E, each citing
/// the previous); B is never served. A message whose gap reaches back past E makes
/// Glia ask /state_ids for the state there, which names E and (in its auth chain) A to
/// D; fetching them, B is missing, so C, D and E have no checked auth chain and must
/// not become state. Bob's membership stays his plain join.
#[tokio::test]
async fn test_corrupted_auth_chain() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let room = alice.must_create_room(json!({"preset": "public_chat", "room_version": "10"})).await;
    let bob = fake.user_id("bob");
    let bob_join = fake.join(&peer, &room, &bob).await;
    let [create, pl, jr] = ["m.room.create", "m.room.power_levels", "m.room.join_rules"]
        .map(|t| fake.room(&room, |r| r.state_id(t, "")).expect("state"));
    let rename = |name: &str| {
        Ev::state("m.room.member", &bob, &bob, json!({"membership": "join", "displayname": name}))
    };
    // A to D are known to the fake server but not in its DAG; E is.
    let first = fake.build(&room, rename("A"));
    let mut last = fake.room(&room, |r| r.remember(first));
    let mut chain = vec![last.clone()];
    for name in ["B", "C", "D", "E"] {
        let prev = std::slice::from_ref(&last);
        let ev =
            rename(name).prev(prev).auth(&[create.clone(), pl.clone(), jr.clone(), last.clone()]);
        let signed = fake.build(&room, ev);
        last = if name == "E" {
            fake.add(&room, signed)
        } else {
            fake.room(&room, |r| r.remember(signed))
        };
        chain.push(last.clone());
    }
    let (b, e) = (chain[1].clone(), chain[4].clone());
    let msg = |body: &str, prev: &str| Ev::message(&bob, body).prev(&[prev.to_string()]);
    let (state_ids_ev, _) = fake.send_in(&room, msg("for /state_ids", &e));
    let (gme_ev, gme_pdu) = fake.send_in(&room, msg("for /get_missing_events", &state_ids_ev));
    let (send_ev, send_pdu) = fake.send_in(&room, msg("for /send", &gme_ev));
    fake.room(&room, |r| r.events.remove(&b));

    // The state at the /state_ids event has E for Bob; its auth chain names A to D.
    let (pdu_ids, mut chain_ids) = fake.room(&room, |r| {
        let ids: Vec<String> = r.state_before[&state_ids_ev].values().cloned().collect();
        let chain: Vec<String> = r.auth_chain(&ids).iter().map(|ev| r.event_id(ev)).collect();
        (ids, chain)
    });
    assert!(pdu_ids.contains(&e));
    for id in &chain[..4] {
        if !chain_ids.contains(id) {
            chain_ids.push(id.clone());
        }
    }
    fake.on("POST", GME, move |_| (200, json!({"events": [gme_pdu]})));
    let state_answer = json!({"pdu_ids": pdu_ids, "auth_chain_ids": chain_ids});
    fake.on("GET", "/_matrix/federation/v1/state_ids/", move |_| (200, state_answer.clone()));

    let answer = fake.send_transaction(&peer, &[send_pdu], &[]).await.must_status(200);
    assert!(answer["pdus"].get(&send_ev).is_some(), "{answer}");
    let asked = fake.received_on("GET", "/_matrix/federation/v1/state_ids/");
    let wanted = format!("event_id={state_ids_ev}");
    let asked_at = |r: &glia_harness::federation::Received| room::decode(&r.uri).ends_with(&wanted);
    assert!(asked.iter().any(asked_at), "no /state_ids request: {asked:?}");
    let fetched = fake.received_on("GET", "/_matrix/federation/v1/event/");
    let asked_b = |r: &glia_harness::federation::Received| room::decode(&r.uri).ends_with(&b);
    assert!(fetched.iter().any(asked_b), "B was not asked for: {fetched:?}");

    // A message on Bob's first join goes in; Bob is still as he joined.
    let sentinel = Ev::message(&bob, "finished").prev(std::slice::from_ref(&bob_join)).auth(&[
        create.clone(),
        pl.clone(),
        bob_join.clone(),
    ]);
    let (sentinel_id, sentinel) = fake.send_in(&room, sentinel);
    let answer = fake.send_transaction(&peer, &[sentinel], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &sentinel_id), &json!({}), "{answer}");
    let id = sentinel_id.clone();
    alice
        .sync_until(None, "the sentinel", WAIT, has_event(&room, move |e| e["event_id"] == *id))
        .await;
    let member =
        alice.get(&cs(&["rooms", &room, "state", "m.room.member", &bob])).await.must_status(200);
    assert_eq!(member["membership"], "join", "{member}");
    assert!(member.get("displayname").is_none(), "C, D or E became state: {member}");
    for id in [&e, &send_ev] {
        let ids = timeline_ids(&alice, &room).await;
        assert!(!ids.contains(id), "{id} is in the timeline: {ids:?}");
    }
    d.destroy().await;
}

/// What Glia's `/event_auth` gives for `id`: the IDs, each once.
async fn event_auth(
    fake: &FakeServer,
    peer: &glia_harness::federation::actions::Peer,
    room: &str,
    id: &str,
) -> BTreeSet<String> {
    let path = format!(
        "/_matrix/federation/v1/event_auth/{}/{}",
        encode_segment(room),
        encode_segment(id)
    );
    let r = fake.request(&peer.base_url, &peer.server_name, "GET", &path, None).await;
    let r = r.must_status(200);
    let chain = r["auth_chain"].as_array().expect("auth_chain");
    let ids: BTreeSet<String> = chain.iter().map(|e| fake.event_id(room, e)).collect();
    assert_eq!(ids.len(), chain.len(), "an event twice: {r}");
    ids
}

/// TestEventAuth: `/event_auth` gives an event's whole auth chain and nothing else: for
/// a join rules change, its auth events; for Charlie's second join, its auth events,
/// his first join and leave, and what they rest on (Alice's join). Nothing for events
/// that are not (accepted) in the room named.
#[tokio::test]
async fn test_event_auth() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let room = alice.must_create_room(json!({"preset": "public_chat"})).await;
    let charlie = fake.user_id("charlie");
    let first_join = fake.join(&peer, &room, &charlie).await;
    let made = fake.make_membership(&peer, "leave", &room, &charlie).await.must_status(200);
    let leave_ev = fake.sign_template(&made);
    let leave = fake.event_id(&room, &leave_ev);
    fake.send_membership(&peer, "leave", &room, &leave, &leave_ev).await.must_status(200);
    let second_join = fake.join(&peer, &room, &charlie).await;
    let jr_content = json!({"join_rule": "invite"});
    let jr = alice
        .must_do("PUT", &cs(&["rooms", &room, "state", "m.room.join_rules", ""]), jr_content)
        .await["event_id"]
        .as_str()
        .expect("event_id")
        .to_string();
    wait_until("the join rules at the fake server", WAIT, || {
        let got = fake.room(&room, |r| r.events.get(&jr).cloned());
        async move { got }
    })
    .await;
    let (jr_auth, join_auth, alice_join) = fake.room(&room, |r| {
        (
            ids_in(&r.events[&jr], "auth_events"),
            ids_in(&r.events[&second_join], "auth_events"),
            r.state_id("m.room.member", &alice.user_id).expect("alice's join"),
        )
    });

    let got = event_auth(&fake, &peer, &room, &jr).await;
    assert_eq!(got, jr_auth.iter().cloned().collect(), "for the join rules");

    let mut want: BTreeSet<String> = join_auth.iter().cloned().collect();
    assert!(want.contains(&leave), "the second join rests on the leave: {want:?}");
    want.extend([first_join, alice_join]);
    let got = event_auth(&fake, &peer, &room, &second_join).await;
    assert_eq!(got, want, "for Charlie's second join");

    // Nothing for an unknown event, one of another room, or one Glia rejected (Charlie,
    // at power 0, raising himself to 100).
    let other_room = alice.must_create_room(json!({"preset": "private_chat"})).await;
    let elsewhere = send_text(&alice, &other_room, "not in this room").await;
    let mut pl = fake.room(&room, |r| r.state_event("m.room.power_levels", "").cloned());
    let mut content = pl.take().expect("power levels")["content"].clone();
    content["users"][&charlie] = json!(100);
    let (coup, coup_pdu) =
        fake.send_in(&room, Ev::state("m.room.power_levels", "", &charlie, content));
    let answer = fake.send_transaction(&peer, &[coup_pdu], &[]).await.must_status(200);
    // Rejected, which is no error in the answer (Synapse).
    assert_eq!(pdu_result(&answer, &coup), &json!({}), "{answer}");
    for id in ["$unknown", &elsewhere, &coup] {
        let path = format!(
            "/_matrix/federation/v1/event_auth/{}/{}",
            encode_segment(&room),
            encode_segment(id)
        );
        let r = fake.request(&peer.base_url, &peer.server_name, "GET", &path, None).await;
        r.must_error(404, "M_NOT_FOUND");
    }
    d.destroy().await;
}

/// TestNetworkPartitionOrdering: 1' forks off before Alice's 1 to 4 and reaches Glia
/// after them; Bob's incremental sync (limit 4) after 5, 6, 7 shows 1', 5, 6, 7 in the
/// order Glia got them, and paginating back from its prev_batch gives 4, 3, 2, 1.
#[tokio::test]
async fn test_network_partition_ordering() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let bob = d.register_user(0, "bob").await;
    let charlie = fake.user_id("charlie");
    let room = fake.create_room("10", &charlie);
    join_via(&alice, &room, &fake.server_name).await.must_status(200);
    join_via(&bob, &room, &fake.server_name).await.must_status(200);
    let filter = r#"{"room":{"timeline":{"limit":4}}}"#;
    let since = bob.sync(None, 0, Some(filter)).await["next_batch"]
        .as_str()
        .expect("next_batch")
        .to_string();
    // 1' on the fake server's side of the partition, not sent yet.
    let (one_prime, one_prime_pdu) = fake.send_in(&room, Ev::message(&charlie, "Event 1'"));
    let mut sent = vec![];
    for i in 1..=4 {
        sent.push(send_text(&alice, &room, &format!("event {i}")).await);
    }
    let answer = fake.send_transaction(&peer, &[one_prime_pdu], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &one_prime), &json!({}), "{answer}");
    let id = one_prime.clone();
    alice.sync_until(None, "1'", WAIT, has_event(&room, move |e| e["event_id"] == *id)).await;
    for i in 5..=7 {
        sent.push(send_text(&alice, &room, &format!("event {i}")).await);
    }

    let r = bob.sync(Some(&since), 0, Some(filter)).await;
    let timeline = &r["rooms"]["join"][&room]["timeline"];
    let ids: Vec<&str> = timeline["events"]
        .as_array()
        .expect("timeline events")
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    let want = [one_prime.as_str(), &sent[4], &sent[5], &sent[6]];
    assert_eq!(ids, want, "Bob's timeline: {timeline}");

    let prev_batch = timeline["prev_batch"].as_str().expect("prev_batch");
    let q = format!("?dir=b&limit=4&from={}", encode_segment(prev_batch));
    let page = alice.get(&cs(&["rooms", &room, "messages", &q])).await.must_status(200);
    let ids: Vec<&str> = page["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    let want = [&sent[3], &sent[2], &sent[1], &sent[0]];
    assert_eq!(ids, want, "paginating back from the gap: {page}");
    d.destroy().await;
}

/// A gap longer than what get_missing_events gives: the earliest event Glia gets still
/// lacks its prev event, so Glia asks /state_ids for the state there, fetches what it
/// lacks of it (with /event, or with /state when that is more than 50 events), and takes
/// both messages with the topic set in the gap in the room's state (the state events
/// themselves stay out of the live timeline, like Synapse's outliers).
#[tokio::test]
async fn test_gap_past_get_missing_events_takes_state_from_state_ids() {
    for fillers in [0, 60] {
        gap_past_get_missing_events(fillers).await;
    }
}

async fn gap_past_get_missing_events(fillers: usize) {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    join_via(&alice, &room, &fake.server_name).await.must_status(200);
    let topic = json!({"topic": "set during the partition"});
    let (topic_id, _) = fake.send_in(&room, Ev::state("m.room.topic", "", &bob, topic));
    // The last state event before the messages: where Glia asks for the state.
    let mut gap_end = topic_id.clone();
    for i in 0..fillers {
        let ev = Ev::state("m.test.filler", &i.to_string(), &bob, json!({}));
        gap_end = fake.send_in(&room, ev).0;
    }
    let (m1, m1_pdu) = fake.send_in(&room, Ev::message(&bob, "first after the topic"));
    let (m2, m2_pdu) = fake.send_in(&room, Ev::message(&bob, "second after the topic"));
    // Only the newest missing event, as a server with a short limit would answer.
    fake.on("POST", GME, move |_| (200, json!({"events": [m1_pdu]})));
    let answer = fake.send_transaction(&peer, &[m2_pdu], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &m2), &json!({}), "{answer}");
    let asked = fake.received_on("GET", "/_matrix/federation/v1/state_ids/");
    let wanted = format!("event_id={gap_end}");
    assert!(asked.iter().any(|r| room::decode(&r.uri).ends_with(&wanted)), "{asked:?}");
    let whole = fake.received_on("GET", "/_matrix/federation/v1/state/");
    assert_eq!(whole.is_empty(), fillers == 0, "{fillers} fillers: /state asked {whole:?}");
    let ids = timeline_ids(&alice, &room).await;
    let pos = |id: &String| ids.iter().position(|x| x == id);
    assert!(pos(&m1).is_some() && pos(&m1) < pos(&m2), "{ids:?} (want {m1}, {m2})");
    // The live timeline (/sync); paging back with /messages may backfill them as history.
    let sync = alice.get(&cs(&["sync"])).await.must_status(200);
    let live: Vec<&str> = sync["rooms"]["join"][&room]["timeline"]["events"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["event_id"].as_str()).collect())
        .unwrap_or_default();
    assert!(live.contains(&m2.as_str()), "{sync}");
    assert!(!live.contains(&topic_id.as_str()), "the fetched topic change is live: {live:?}");
    let got = alice.get(&cs(&["rooms", &room, "state", "m.room.topic", ""])).await;
    assert_eq!(got.must_status(200)["topic"], "set during the partition");
    d.destroy().await;
}

/// `/state_ids` and `/state` answer only about events of the room named: a server in one
/// of Glia's rooms learns nothing of another's state through them.
#[tokio::test]
async fn test_inbound_federation_state_only_of_the_named_room() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let room = alice.must_create_room(json!({"preset": "public_chat"})).await;
    fake.join(&peer, &room, &fake.user_id("charlie")).await;
    let here = send_text(&alice, &room, "here").await;
    let other_room = alice.must_create_room(json!({"preset": "private_chat"})).await;
    let elsewhere = send_text(&alice, &other_room, "elsewhere").await;
    for kind in ["state_ids", "state"] {
        let path = |id: &str| {
            format!(
                "/_matrix/federation/v1/{kind}/{}?event_id={}",
                encode_segment(&room),
                encode_segment(id)
            )
        };
        let (url, name) = (&peer.base_url, &peer.server_name);
        fake.request(url, name, "GET", &path(&here), None).await.must_status(200);
        let r = fake.request(url, name, "GET", &path(&elsewhere), None).await;
        r.must_error(404, "M_NOT_FOUND");
    }
    d.destroy().await;
}

/// The corrupted auth chain in a send_join answer: its state carries a room name by Eve,
/// whose join is nowhere in the answer, and a topic by Charlie, whose power does not
/// allow it. Glia joins on the rest of the state and takes neither into it.
#[tokio::test]
async fn test_corrupted_auth_chain_in_send_join() {
    let Some((d, fake, alice, _peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    let (charlie, eve) = (fake.user_id("charlie"), fake.user_id("eve"));
    let room = fake.create_room("10", &bob);
    let (charlie_join, _) = fake.send_in(&room, Ev::member(&charlie, "join"));
    let [create, pl] =
        ["m.room.create", "m.room.power_levels"].map(|t| fake.room(&room, |r| r.state_id(t, "")));
    let [create, pl] = [create.expect("create"), pl.expect("power levels")];
    // Neither goes into the fake server's DAG: they only travel in the answer.
    let eve_join = fake.build(&room, Ev::member(&eve, "join"));
    let eve_join = fake.event_id(&room, &eve_join);
    let name = Ev::state("m.room.name", "", &eve, json!({"name": "Eve's room"})).auth(&[
        create.clone(),
        pl.clone(),
        eve_join,
    ]);
    let name = fake.build(&room, name);
    let topic = Ev::state("m.room.topic", "", &charlie, json!({"topic": "Charlie's topic"}))
        .auth(&[create, pl, charlie_join]);
    let topic = fake.build(&room, topic);

    let rooms = fake.rooms.clone();
    let (room_id, origin) = (room.clone(), fake.server_name.clone());
    fake.on("PUT", "/_matrix/federation/v2/send_join/", move |r| {
        let mut rooms = rooms.lock().expect("rooms");
        let Some(fr) = rooms.get_mut(&room_id) else { return (404, json!({})) };
        let id = fr.add(r.body.clone());
        let mut ids: Vec<String> = fr.state_before[&id].values().cloned().collect();
        let mut state: Vec<Value> = ids.iter().map(|i| fr.events[i].clone()).collect();
        state.extend([name.clone(), topic.clone()]);
        ids.push(id);
        let chain = fr.auth_chain(&ids);
        (200, json!({"origin": origin, "state": state, "auth_chain": chain}))
    });
    join_via(&alice, &room, &fake.server_name).await.must_status(200);
    for t in ["m.room.name", "m.room.topic"] {
        let got = alice.get(&cs(&["rooms", &room, "state", t, ""])).await;
        got.must_error(404, "M_NOT_FOUND");
    }
    let jr = alice.get(&cs(&["rooms", &room, "state", "m.room.join_rules", ""])).await;
    assert_eq!(jr.must_status(200)["join_rule"], "public");
    let member = alice.get(&cs(&["rooms", &room, "state", "m.room.member", &charlie])).await;
    assert_eq!(member.must_status(200)["membership"], "join");
    d.destroy().await;
}

/// State resolution v2.1 (room version 12) takes the conflicted state subgraph into the
/// full conflicted set. Alice sets the topic while, on a fork that starts before it,
/// Charlie (the fake server) changes his display name: Glia resolves the two forks (which
/// failed when it had no subgraph to give ruma), keeps both changes, and Alice's next
/// message merges the forks.
#[tokio::test]
async fn test_v12_forks_resolve_with_the_conflicted_subgraph() {
    let Some(s) = joined_room(Some("12")).await else { return };
    let (fake, alice, room, charlie) = (&s.fake, &s.alice, &s.room, &s.charlie);
    let charlie_join = fake.room(room, |r| r.state_id("m.room.member", charlie)).expect("join");
    let topic = alice
        .must_do("PUT", &cs(&["rooms", room, "state", "m.room.topic", ""]), json!({"topic": "A"}))
        .await["event_id"]
        .as_str()
        .expect("event_id")
        .to_string();
    let renamed = json!({"membership": "join", "displayname": "Charlie on a fork"});
    let (rename, pdu) = fake
        .send_in(room, Ev::state("m.room.member", charlie, charlie, renamed).prev(&[charlie_join]));
    let answer = fake.send_transaction(&s.peer, &[pdu], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &rename), &json!({}), "{answer}");

    let member = cs(&["rooms", room, "state", "m.room.member", charlie]);
    wait_until("Charlie's new name in Glia's state", WAIT, || {
        let got = alice.get(&member);
        async move {
            let r = got.await;
            (r.status == 200 && r.json()["displayname"] == "Charlie on a fork").then_some(())
        }
    })
    .await;
    let got = alice.get(&cs(&["rooms", room, "state", "m.room.topic", ""])).await;
    assert_eq!(got.must_status(200)["topic"], "A");
    let message = send_text(alice, room, "after the fork").await;
    let prevs: BTreeSet<String> =
        prev_events_at_fake(fake, room, &message).await.into_iter().collect();
    assert_eq!(prevs, [topic, rename].into(), "the message's prev_events");
    s.d.destroy().await;
}
