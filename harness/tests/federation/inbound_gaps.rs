//! Events Glia gets out of their order: PDUs sent while Glia's join is in flight (queued
//! until the join is stored), and redactions before the events they redact, both ways
//! (after Complement's TestFederationRedactSendsWithoutEvent). Gaps in the DAG are in
//! `dag_repair`.

use std::sync::Mutex;
use std::time::Duration;

use glia_harness::federation::room::{self, Ev};
use glia_harness::wait_until;
use serde_json::{Value, json};

use crate::fakes::{WAIT, cs, get_event, join_via, start_with};

/// The fake server holds Glia's send_join answer back and meanwhile sends a message in
/// the room (it counts Alice in already). Glia has no room yet to put it in: it keeps
/// it, and once the join is stored, the message is in the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_pdu_during_join_is_processed_after_it() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = Mutex::new(held);
    let (rooms, name) = (fake.rooms.clone(), fake.server_name.clone());
    fake.on("PUT", "/_matrix/federation/v2/send_join/", move |r| {
        // Blocks this connection's task (not the runtime) until the scenario says so.
        tokio::task::block_in_place(|| {
            let _ = held.lock().expect("held").recv_timeout(Duration::from_secs(60));
        });
        room::answer(&rooms, &name, r).expect("a send_join answer")
    });
    let joining = {
        let (alice, room, server) = (alice.clone(), room.clone(), fake.server_name.clone());
        tokio::spawn(async move { join_via(&alice, &room, &server).await })
    };
    wait_until("Glia's send_join", WAIT, || {
        let sent = !fake.received_on("PUT", "/_matrix/federation/v2/send_join/").is_empty();
        async move { sent.then_some(()) }
    })
    .await;

    let (id, pdu) = fake.send_in(&room, Ev::message(&bob, "while you were joining"));
    let answer = fake.send_transaction(&peer, &[pdu], &[]).await.must_status(200);
    assert_eq!(answer["pdus"][&id], json!({}), "{answer}");
    release.send(()).expect("release send_join");
    joining.await.expect("join task").must_status(200);

    let ev = wait_until("the message queued during the join", WAIT, || {
        let (alice, room, id) = (alice.clone(), room.clone(), id.clone());
        async move {
            let r = get_event(&alice, &room, &id).await;
            (r.status == 200).then(|| r.json())
        }
    })
    .await;
    assert_eq!(ev["content"]["body"], "while you were joining");
    d.destroy().await;
}

/// The content of the event `id` as Alice reads it, once it is there.
async fn event_content(c: &glia_harness::Client, room: &str, id: &str) -> Value {
    get_event(c, room, id).await.must_status(200)["content"].clone()
}

/// TestFederationRedactSendsWithoutEvent: in the fake server's room (anyone may redact),
/// Alice redacts a message Glia never got; Glia accepts it and sends the redaction to
/// the fake server, where it is the room's latest event. When the message arrives
/// later, Glia serves it redacted. The other way round too: the fake server's redaction
/// of a message it has not sent yet is accepted, and the message is redacted on arrival.
#[tokio::test]
async fn test_federation_redact_sends_without_event() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    let pl = fake.room(&room, |r| r.state_event("m.room.power_levels", "").cloned());
    let mut content = pl.expect("power levels")["content"].clone();
    content["redact"] = json!(0);
    fake.send_in(&room, Ev::state("m.room.power_levels", "", &bob, content));
    join_via(&alice, &room, &fake.server_name).await.must_status(200);

    // Ours, of an event we lack.
    let (target, target_pdu) = fake.send_in(&room, Ev::message(&bob, "666"));
    let r = alice
        .request(
            "PUT",
            &cs(&["rooms", &room, "redact", &target, "r1"]),
            json!({"reason": "reasons"}),
        )
        .await;
    let redaction = r.must_status(200)["event_id"].as_str().expect("event_id").to_string();
    let rules = room::rules_of("10");
    let got = wait_until("the redaction at the fake server", WAIT, || {
        let found =
            fake.received_on("PUT", "/_matrix/federation/v1/send/").into_iter().find_map(|r| {
                r.body["pdus"]
                    .as_array()?
                    .iter()
                    .find(|p| room::event_id_of(p, &rules) == redaction)
                    .cloned()
            });
        async move { found }
    })
    .await;
    assert_eq!(got["type"], "m.room.redaction");
    assert_eq!(got["redacts"], target.as_str());
    wait_until("the redaction as the fake room's latest event", WAIT, || {
        let last = fake.room(&room, |r| r.order.last().cloned());
        let want = Some(redaction.clone());
        async move { (last == want).then_some(()) }
    })
    .await;
    fake.send_transaction(&peer, &[target_pdu], &[]).await.must_status(200);
    let content = event_content(&alice, &room, &target).await;
    assert_eq!(content, json!({}), "the message arrived unredacted");

    // Theirs, before the event: the redaction and the message are siblings, so the
    // redaction arrives with nothing missing and its target unknown.
    let tips = fake.room(&room, |r| r.tips.clone());
    let secret = fake.build(&room, Ev::message(&bob, "secret").prev(&tips));
    let secret_id = fake.event_id(&room, &secret);
    let mut redact = Ev::new("m.room.redaction", &bob, json!({})).prev(&tips);
    redact.extra.insert("redacts".into(), json!(secret_id));
    let (redaction, redaction_pdu) = fake.send_in(&room, redact);
    fake.add(&room, secret.clone());
    let answer = fake.send_transaction(&peer, &[redaction_pdu], &[]).await.must_status(200);
    assert_eq!(answer["pdus"][&redaction], json!({}), "{answer}");
    get_event(&alice, &room, &secret_id).await.must_error(404, "M_NOT_FOUND");
    let answer = fake.send_transaction(&peer, &[secret], &[]).await.must_status(200);
    assert_eq!(answer["pdus"][&secret_id], json!({}), "{answer}");
    let content = event_content(&alice, &room, &secret_id).await;
    assert_eq!(content, json!({}), "the message arrived unredacted");
    d.destroy().await;
}
