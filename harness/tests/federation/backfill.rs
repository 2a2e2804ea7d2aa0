//! History a server joined late lacks: `/messages` paging back past our join backfills
//! it from a server in the room (verified, in order, never new to `/sync`, current state
//! untouched); forged backfilled events are dropped and a hanging peer costs a timeout,
//! not an error.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use glia_harness::federation::room::{self, Ev};
use glia_harness::federation::{Answer, FakeServer};
use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

use crate::fakes::{cs, get_event, join_via, send_text, server_of, start_with};

/// Glia's client timeout for federation requests in these scenarios.
const FED_TIMEOUT_YAML: &str = "federation:\n  client_timeout: 2s\n";

/// Every event `c` gets paging back from the newest with `/messages` (`limit` a page),
/// newest first, until a page comes without `end`.
async fn page_back_all(c: &Client, room: &str, limit: usize) -> Vec<Value> {
    let mut out = vec![];
    let mut from: Option<String> = None;
    for _ in 0..100 {
        let mut q = format!("?dir=b&limit={limit}");
        if let Some(f) = &from {
            q.push_str(&format!("&from={}", glia_harness::client::encode_segment(f)));
        }
        let page = c.get(&cs(&["rooms", room, "messages", &q])).await.must_status(200);
        out.extend(page["chunk"].as_array().expect("chunk").iter().cloned());
        match page["end"].as_str() {
            Some(end) => from = Some(end.to_string()),
            None => return out,
        }
    }
    panic!("pagination of {room} did not end");
}

fn ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["event_id"].as_str().expect("event_id").to_string()).collect()
}

fn bodies(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Alice (hs1) creates a room and sends 30 messages, renaming it halfway; Bob (hs2)
/// joins and pages back to the room's creation: he gets every event hs1 has, in hs1's
/// order, ending at the create event. The backfilled events do not show up in Bob's
/// next `/sync` and leave the room's current state (the new name) as it was.
#[tokio::test]
async fn test_backfill_history_from_other_glia() {
    let Some(dep) = Deployment::federated(2).await else { return };
    let alice = dep.register_user(0, "alice").await;
    let bob = dep.register_user(1, "bob").await;
    let room = alice.must_create_room(json!({"preset": "public_chat", "name": "Old name"})).await;
    for i in 0..30 {
        send_text(&alice, &room, &format!("m{i}")).await;
        if i == 14 {
            alice
                .request(
                    "PUT",
                    &cs(&["rooms", &room, "state", "m.room.name", ""]),
                    json!({"name": "New name"}),
                )
                .await
                .must_status(200);
        }
    }
    let joined = join_via(&bob, &room, &server_of(&alice.user_id)).await;
    joined.must_status(200);
    let since = bob.sync(None, 0, None).await["next_batch"].as_str().expect("next").to_string();

    let theirs = page_back_all(&bob, &room, 10).await;
    let ours = page_back_all(&alice, &room, 100).await;
    assert_eq!(ids(&theirs), ids(&ours), "hs2's history differs from hs1's");
    let mut sent = bodies(&theirs);
    sent.reverse();
    let want: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    assert_eq!(sent, want);
    assert_eq!(theirs.last().expect("events")["type"], "m.room.create");

    // History, not news: nothing backfilled comes down Bob's next sync.
    let backfilled: HashSet<String> = theirs
        .iter()
        .filter(|e| e["state_key"] != bob.user_id.as_str())
        .filter_map(|e| e["event_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(backfilled.len(), theirs.len() - 1);
    let next = bob.sync(Some(&since), 0, None).await;
    for e in glia_harness::rooms::timeline(&next, "join", &room) {
        let id = e["event_id"].as_str().unwrap_or_default();
        assert!(!backfilled.contains(id), "backfilled {id} came down /sync: {e}");
    }
    // The old name event was stored, and current state still has the new one.
    let name = bob.get(&cs(&["rooms", &room, "state", "m.room.name", ""])).await;
    assert_eq!(name.must_status(200)["name"], "New name");
    let old = theirs.iter().find(|e| e["content"]["name"] == "Old name").expect("old name");
    let id = old["event_id"].as_str().expect("id");
    get_event(&bob, &room, id).await.must_status(200);
    // /context reaches into backfilled history too.
    let m5 = theirs.iter().find(|e| e["content"]["body"] == "m5").expect("m5");
    let id = m5["event_id"].as_str().expect("id");
    let ctx = bob.get(&cs(&["rooms", &room, "context", id, "?limit=4"])).await.must_status(200);
    let before = ctx["events_before"].as_array().expect("events_before");
    assert_eq!(bodies(before), ["m4", "m3"], "{ctx}");
    // Bob can still talk in the room.
    let hi = send_text(&bob, &room, "caught up").await;
    glia_harness::rooms::wait_event(&alice, &room, &hi).await;
    dep.destroy().await;
}

/// A room of the fake server with `n` messages from its user Bob, joined by Alice.
async fn fake_room_with_history(fake: &FakeServer, alice: &Client, n: usize) -> (String, String) {
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    for i in 0..n {
        fake.send_in(&room, Ev::message(&bob, &format!("old {i}")));
    }
    join_via(alice, &room, &fake.server_name).await.must_status(200);
    (room, bob)
}

/// The fake server's `/backfill` answers also carry a message with a forged signature:
/// Alice gets the room's real history, in order, and never the forgery.
#[tokio::test]
async fn test_backfill_drops_forged_events() {
    let Some((d, fake, alice, _peer)) = start_with(String::new()).await else { return };
    let (room, bob) = fake_room_with_history(&fake, &alice, 12).await;
    let anchor = fake.room(&room, |r| r.order[6].clone());
    let mut forged = fake.build(&room, Ev::message(&bob, "forged").prev(&[anchor]));
    forged["signatures"] = fake.build(&room, Ev::message(&bob, "other"))["signatures"].clone();
    let forged_id = fake.event_id(&room, &forged);
    let (rooms, name) = (fake.rooms.clone(), fake.server_name.clone());
    fake.on("GET", "/_matrix/federation/v1/backfill/", move |r| {
        let (status, mut v) = room::answer(&rooms, &name, r).expect("a backfill answer");
        if let Some(pdus) = v["pdus"].as_array_mut() {
            pdus.insert(0, forged.clone());
        }
        (status, v)
    });

    let events = page_back_all(&alice, &room, 5).await;
    assert!(!fake.received_on("GET", "/_matrix/federation/v1/backfill/").is_empty());
    assert!(!ids(&events).contains(&forged_id), "the forged event was served");
    let mut sent = bodies(&events);
    sent.reverse();
    let want: Vec<String> = (0..12).map(|i| format!("old {i}")).collect();
    assert_eq!(sent, want);
    assert_eq!(events.last().expect("events")["type"], "m.room.create");
    get_event(&alice, &room, &forged_id).await.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// The fake server never answers `/backfill`: `/messages` still answers, with what
/// Glia has (Alice's join), once its federation timeout passed, and no `end`.
#[tokio::test]
async fn test_backfill_from_hanging_peer_times_out() {
    let Some((d, fake, alice, _peer)) = start_with(FED_TIMEOUT_YAML.into()).await else { return };
    let (room, _bob) = fake_room_with_history(&fake, &alice, 5).await;
    fake.on_answer("GET", "/_matrix/federation/v1/backfill/", |_| Answer::Hang);
    let started = Instant::now();
    let q = "?dir=b&limit=10";
    let page = tokio::time::timeout(
        Duration::from_secs(20),
        alice.get(&cs(&["rooms", &room, "messages", q])),
    )
    .await
    .expect("/messages answered within 20 s")
    .must_status(200);
    assert!(started.elapsed() >= Duration::from_secs(2), "Glia did not ask for history");
    assert!(!fake.received_on("GET", "/_matrix/federation/v1/backfill/").is_empty());
    let chunk = page["chunk"].as_array().expect("chunk");
    assert!(
        chunk
            .iter()
            .any(|e| e["type"] == "m.room.member" && e["state_key"] == alice.user_id.as_str()),
        "{page}"
    );
    assert!(bodies(chunk).is_empty(), "{page}");
    assert!(page.get("end").is_none(), "{page}");
    d.destroy().await;
}
