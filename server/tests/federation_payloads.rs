//! The exact payloads Glia sends to other servers, pinned with insta snapshots: a signed
//! PDU, the key response, a make_join template, a send_join response, a transaction and
//! an invite. A fixed key (`fixtures/federation/signing.key`) and fixed timestamps make
//! them deterministic; a change to any byte of them shows up as a snapshot diff.

use std::collections::HashMap;

use glia::keys::SigningKey;
use glia::rooms::builder::{sign_event, template};
use glia::rooms::{NewEvent, PduRef, RoomHandle, rules_for};
use serde_json::{Value, json};

const SERVER: &str = "glia.example";
const ALICE: &str = "@alice:glia.example";
const BOB: &str = "@bob:remote.example";
const TS: i64 = 1_700_000_000_000;

fn key() -> SigningKey {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/federation/signing.key");
    let text = std::fs::read_to_string(path).expect("fixture key");
    SigningKey::parse(&text).expect("key")
}

/// A version-11 room built event by event, as Glia builds local events.
struct Room {
    handle: RoomHandle,
    events: Vec<PduRef>,
    key: SigningKey,
    clock: i64,
}

impl Room {
    fn new() -> Room {
        let (version, rules) = rules_for("11").expect("rules");
        let handle = RoomHandle {
            nid: 1,
            room_id: "!snapshot:glia.example".into(),
            version,
            rules,
            state: HashMap::new(),
            tips: vec![],
            state_group: None,
            pipe: Default::default(),
        };
        let mut room = Room { handle, events: vec![], key: key(), clock: TS };
        room.add(ALICE, NewEvent::state("m.room.create", "", json!({"room_version": "11"})));
        room.add(ALICE, NewEvent::state("m.room.member", ALICE, json!({"membership": "join"})));
        room.add(ALICE, NewEvent::state("m.room.power_levels", "", json!({"users": {ALICE: 100}})));
        room.add(ALICE, NewEvent::state("m.room.join_rules", "", json!({"join_rule": "public"})));
        room.add(ALICE, NewEvent::state("m.room.name", "", json!({"name": "Snapshots"})));
        room
    }

    fn add(&mut self, sender: &str, new: NewEvent) -> PduRef {
        self.clock += 1000;
        let obj = template(&self.handle, sender, &new, self.clock).expect("template");
        let pdu = sign_event(SERVER, &self.key, &self.handle.rules, obj).expect("sign");
        if let Some(k) = &pdu.state_key {
            self.handle.state.insert((pdu.type_str(), k.clone()), pdu.clone());
        }
        self.handle.tips = vec![pdu.clone()];
        self.events.push(pdu.clone());
        pdu
    }
}

fn pdu_json(p: &PduRef) -> Value {
    serde_json::to_value(&p.json).expect("json")
}

#[test]
fn signed_pdu() {
    let mut room = Room::new();
    let msg = room.add(
        ALICE,
        NewEvent::message("m.room.message", json!({"msgtype": "m.text", "body": "hello"})),
    );
    insta::assert_json_snapshot!(
        "signed_pdu",
        json!({"event_id": msg.event_id, "pdu": pdu_json(&msg)})
    );
}

#[test]
fn key_response() {
    let keys = glia::federation::keys::server_keys(SERVER, &key(), TS).expect("keys");
    insta::assert_json_snapshot!("key_response", serde_json::to_value(&keys).expect("json"));
}

#[test]
fn make_join_template() {
    let room = Room::new();
    let new = NewEvent::state("m.room.member", BOB, json!({"membership": "join"}));
    let event = template(&room.handle, BOB, &new, TS + 60_000).expect("template");
    insta::assert_json_snapshot!("make_join", json!({"event": event, "room_version": "11"}));
}

#[test]
fn send_join_response() {
    let mut room = Room::new();
    let state: Vec<PduRef> = room.handle.state.values().cloned().collect();
    let chain = room.events.clone();
    room.add(BOB, NewEvent::state("m.room.member", BOB, json!({"membership": "join"})));
    let body = glia::api::federation::membership::send_join_response(
        SERVER,
        state,
        chain,
        vec!["remote.example".into(), SERVER.into()],
    );
    insta::assert_json_snapshot!("send_join", body);
}

#[test]
fn transaction() {
    let mut room = Room::new();
    let msg = room.add(
        ALICE,
        NewEvent::message(
            "m.room.message",
            json!({"msgtype": "m.text", "body": "in a transaction"}),
        ),
    );
    let typing = json!({"edu_type": "m.typing", "content": {"room_id": room.handle.room_id, "user_id": ALICE, "typing": true, "timeout": 30000}});
    let body = glia::federation::sender::transaction(
        SERVER,
        TS + 5000,
        vec![pdu_json(&msg)],
        vec![typing],
    );
    insta::assert_json_snapshot!("transaction", body);
}

#[test]
fn invite() {
    let mut room = Room::new();
    let invite =
        room.add(ALICE, NewEvent::state("m.room.member", BOB, json!({"membership": "invite"})));
    let body = glia::federation::membership::invite_request(&room.handle, &invite);
    insta::assert_json_snapshot!("invite", body);
}
