//! What the scenarios against a fake federation server share: a federating Glia with
//! Alice's public room that the fake server's Charlie joined, and client-side checks.

use glia_harness::federation::FakeServer;
use glia_harness::federation::actions::Peer;
use glia_harness::{Client, Deployment, HsConfig};
use serde_json::{Value, json};

pub use glia_harness::rooms::{WAIT, cs, send_text, server_of};

pub struct Setup {
    pub d: Deployment,
    pub fake: FakeServer,
    /// Glia, as the fake server reaches it.
    pub peer: Peer,
    pub alice: Client,
    pub room: String,
    /// The fake server's user, joined to `room`.
    pub charlie: String,
}

/// One federating Glia (with `extra_yaml` in its config) and a fake server, nothing
/// shared yet.
pub async fn start_with(extra_yaml: String) -> Option<(Deployment, FakeServer, Client, Peer)> {
    let d = Deployment::federated_with(1, HsConfig { extra_yaml, ..Default::default() }).await?;
    let fake = FakeServer::start().await;
    let alice = d.register_user(0, "alice").await;
    let peer = Peer::new(&d.hs(0).base_url, &server_of(&alice.user_id));
    Some((d, fake, alice, peer))
}

/// Alice's public room (room version `version`, Glia's default when None), joined by
/// the fake server's Charlie.
pub async fn joined_room(version: Option<&str>) -> Option<Setup> {
    joined_room_with(version, String::new()).await
}

pub async fn joined_room_with(version: Option<&str>, extra_yaml: String) -> Option<Setup> {
    let (d, fake, alice, peer) = start_with(extra_yaml).await?;
    let mut body = json!({"preset": "public_chat"});
    if let Some(v) = version {
        body["room_version"] = json!(v);
    }
    let room = alice.must_do("POST", &cs(&["createRoom"]), body).await["room_id"]
        .as_str()
        .expect("room_id")
        .to_string();
    let charlie = fake.user_id("charlie");
    fake.join(&peer, &room, &charlie).await;
    Some(Setup { d, fake, peer, alice, room, charlie })
}

/// `POST /join/{room}?server_name={server}`.
pub async fn join_via(c: &Client, room: &str, server: &str) -> glia_harness::Response {
    glia_harness::rooms::join_through(c, room, &[server]).await
}

/// What `c` gets for `GET /rooms/{room}/event/{id}`.
pub async fn get_event(c: &Client, room: &str, id: &str) -> glia_harness::Response {
    c.get(&cs(&["rooms", room, "event", id])).await
}

/// The event IDs of the room's timeline as `c` pages it, oldest first.
pub async fn timeline_ids(c: &Client, room: &str) -> Vec<String> {
    let r = c.get(&cs(&["rooms", room, "messages", "?dir=b&limit=100"])).await.must_status(200);
    let mut ids: Vec<String> = r["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter_map(|e| e["event_id"].as_str().map(str::to_string))
        .collect();
    ids.reverse();
    ids
}

/// `user`'s membership in the room's current state, as `c` reads it.
pub async fn membership(c: &Client, room: &str, user: &str) -> String {
    let m = c.get(&cs(&["rooms", room, "state", "m.room.member", user])).await.must_status(200);
    m["membership"].as_str().unwrap_or_default().to_string()
}

/// The prev_events of Glia's event `id`, once the fake server (in the room) received it.
pub async fn prev_events_at_fake(fake: &FakeServer, room: &str, id: &str) -> Vec<String> {
    glia_harness::wait_until("the event at the fake server", WAIT, || {
        let ev = fake.room(room, |r| r.events.get(id).cloned());
        async move { ev }
    })
    .await;
    fake.room(room, |r| glia_harness::federation::room::ids_in(&r.events[id], "prev_events"))
}

/// The per-PDU result a transaction answer gives for `id`.
pub fn pdu_result<'a>(answer: &'a Value, id: &str) -> &'a Value {
    &answer["pdus"][id]
}

/// Check `pdu` carries a valid signature of `server` with the key it serves.
pub async fn assert_signed_by(base_url: &str, server: &str, version: &str, pdu: &Value) {
    let keys = Client::new(base_url).get(&["_matrix", "key", "v2", "server"]).await;
    let keys = keys.must_status(200);
    let mut set = std::collections::BTreeMap::new();
    for (id, k) in keys["verify_keys"].as_object().expect("verify_keys") {
        let b = ruma::serde::Base64::parse(k["key"].as_str().expect("key")).expect("base64");
        set.insert(id.clone(), b);
    }
    let map = std::collections::BTreeMap::from([(server.to_string(), set)]);
    let obj: ruma::canonical_json::CanonicalJsonObject =
        serde_json::from_value(pdu.clone()).expect("canonical");
    let verified = ruma::signatures::verify_event(
        &map,
        &obj,
        &glia_harness::federation::room::rules_of(version),
    )
    .unwrap_or_else(|e| panic!("PDU not signed by {server}: {e}: {pdu}"));
    assert!(matches!(verified, ruma::signatures::Verified::All), "content hash wrong: {pdu}");
}
