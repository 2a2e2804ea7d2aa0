//! Loading the state-resolution fixtures of `fixtures/state-res/` (and generating the
//! 10,000-member room) as in-memory PDUs, for `tests/state_res.rs` and
//! `benches/state_res.rs`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use glia::rooms::resolve::IdState;
use glia::rooms::{Pdu, PduRef, rules_for};
use ruma::canonical_json::CanonicalJsonObject;
use ruma::room_version_rules::{EventsReferenceFormatVersion, RoomVersionRules};
use serde_json::{Value, json};

pub struct Fixture {
    pub name: String,
    pub rules: RoomVersionRules,
    pub events: HashMap<String, PduRef>,
    pub base: IdState,
    pub forks: Vec<IdState>,
    /// Resolved values of some keys (`None`: absent); other keys keep the base value.
    pub expected: Vec<((String, String), Option<String>)>,
    /// Each event's place in the order the fixture adds them, every event after its auth
    /// events (as Glia's nids): what lets the resolution take the ordered auth-difference walk.
    pub order: HashMap<String, i64>,
}

impl Fixture {
    pub fn fetch(&self) -> impl Fn(&str) -> Option<PduRef> + '_ {
        |id: &str| self.events.get(id).cloned()
    }

    pub fn order(&self) -> impl Fn(&str) -> Option<i64> + '_ {
        |id: &str| self.order.get(id).copied()
    }

    /// The expected resolved state: the base, with the expected keys applied and the
    /// other keys any fork agrees on.
    pub fn expected_state(&self) -> IdState {
        let mut s = self.base.clone();
        for (k, v) in &self.expected {
            match v {
                Some(id) => s.insert(k.clone(), id.clone()),
                None => s.remove(k),
            };
        }
        s
    }
}

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/state-res")
}

pub fn user(localpart: &str) -> String {
    format!("@{localpart}:example.com")
}

pub fn event_id(id: &str) -> String {
    format!("${id}:example.com")
}

/// One compact fixture event as a PDU of the room.
pub fn pdu(rules: &RoomVersionRules, e: &Value, depth: u64, default_ts: u64) -> PduRef {
    let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
    // v1/v2 rooms reference events as `[id, hashes]` pairs.
    let pairs = matches!(rules.events_reference_format, EventsReferenceFormatVersion::V1);
    let ids = |k: &str| -> Vec<Value> {
        e[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(event_id)
                    .map(|id| if pairs { json!([id, {"sha256": "unused"}]) } else { json!(id) })
                    .collect()
            })
            .unwrap_or_default()
    };
    let event_type = s("type");
    let state_key =
        if event_type == "m.room.member" { user(&s("state_key")) } else { s("state_key") };
    let ts = e["ts"].as_u64().unwrap_or(default_ts);
    let v = json!({
        "auth_events": ids("auth"),
        "prev_events": ids("prev"),
        "content": e["content"],
        "depth": depth,
        "origin_server_ts": ts,
        "room_id": "!room:example.com",
        "sender": user(&s("sender")),
        "state_key": state_key,
        "type": event_type,
        "hashes": {"sha256": "unused"},
        "signatures": {},
    });
    let obj: CanonicalJsonObject = serde_json::from_value(v).expect("canonical JSON");
    let id = ruma::OwnedEventId::try_from(event_id(&s("id"))).expect("event ID");
    Arc::new(Pdu::from_object(id, obj, rules).expect("PDU"))
}

fn key_of(p: &Pdu) -> (String, String) {
    (p.type_str(), p.state_key.clone().unwrap_or_default())
}

/// Every fixture but the base, by file name.
pub fn all() -> Vec<Fixture> {
    let base: Value = read("base.json");
    let (_, rules) =
        rules_for(base["room_version"].as_str().expect("room_version")).expect("rules");
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("fixtures/state-res")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json") && n != "base.json")
        .collect();
    names.sort();
    names.into_iter().map(|n| load(&rules, &base, &n)).collect()
}

fn read(name: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(name)).expect("fixture file");
    serde_json::from_str(&text).expect("fixture JSON")
}

fn load(rules: &RoomVersionRules, base: &Value, name: &str) -> Fixture {
    let f = read(name);
    // A fixture may run the base room under another room version (and so algorithm).
    let rules = &match f["room_version"].as_str() {
        Some(v) => rules_for(v).expect("fixture room_version").1,
        None => rules.clone(),
    };
    let mut events = HashMap::new();
    let mut order = HashMap::new();
    let mut base_state = IdState::new();
    for (i, e) in base["events"].as_array().expect("events").iter().enumerate() {
        let p = pdu(rules, e, i as u64 + 1, i as u64);
        base_state.insert(key_of(&p), p.event_id.to_string());
        order.insert(p.event_id.to_string(), order.len() as i64);
        events.insert(p.event_id.to_string(), p);
    }
    let depth = events.len() as u64 + 1;
    let mut added = HashMap::new();
    for e in f["events"].as_array().expect("events") {
        let p = pdu(rules, e, e["depth"].as_u64().unwrap_or(depth), 0);
        added.insert(e["id"].as_str().unwrap_or_default().to_string(), p.clone());
        order.insert(p.event_id.to_string(), order.len() as i64);
        events.insert(p.event_id.to_string(), p);
    }
    let forks = f["forks"]
        .as_array()
        .expect("forks")
        .iter()
        .map(|fork| {
            let mut s = base_state.clone();
            for id in fork.as_array().expect("fork").iter().filter_map(Value::as_str) {
                let p = &added[id];
                s.insert(key_of(p), p.event_id.to_string());
            }
            s
        })
        .collect();
    let expected = f["expected"]
        .as_object()
        .expect("expected")
        .iter()
        .map(|(k, v)| {
            let (t, sk) = k.split_once('|').expect("type|state_key");
            let sk = if t == "m.room.member" { user(sk) } else { sk.to_string() };
            ((t.to_string(), sk), v.as_str().map(event_id))
        })
        .collect();
    Fixture {
        name: name.into(),
        rules: rules.clone(),
        events,
        base: base_state,
        forks,
        expected,
        order,
    }
}

/// A room of `members` joined users and two forks: on A, alice gives u1 power 50 and bans
/// u0..u99; on B, u100..u199 leave and n0..n99 join. None of the changes compete for a
/// key across forks except through the fork split itself, so the resolved state is
/// both forks' changes together.
pub fn generated(members: usize) -> Fixture {
    let (_, rules) = rules_for("10").expect("rules");
    let mut events: HashMap<String, PduRef> = HashMap::new();
    let mut state = IdState::new();
    let mut depth = 0u64;
    let mut add = |e: Value, state: &mut IdState, events: &mut HashMap<String, PduRef>| {
        depth += 1;
        let p = pdu(&rules, &e, depth, depth);
        state.insert(key_of(&p), p.event_id.to_string());
        events.insert(p.event_id.to_string(), p.clone());
        p
    };
    let room = [
        json!({"id": "CREATE", "sender": "alice", "type": "m.room.create", "state_key": "", "content": {"creator": user("alice"), "room_version": "10"}, "auth": [], "prev": []}),
        json!({"id": "IMA", "sender": "alice", "type": "m.room.member", "state_key": "alice", "content": {"membership": "join"}, "auth": ["CREATE"], "prev": ["CREATE"]}),
        json!({"id": "IPOWER", "sender": "alice", "type": "m.room.power_levels", "state_key": "", "content": {"users": {user("alice"): 100}}, "auth": ["CREATE", "IMA"], "prev": ["IMA"]}),
        json!({"id": "IJR", "sender": "alice", "type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "public"}, "auth": ["CREATE", "IMA", "IPOWER"], "prev": ["IPOWER"]}),
    ];
    for e in room {
        add(e, &mut state, &mut events);
    }
    let mut prev = "IJR".to_string();
    for i in 0..members {
        let id = format!("J{i}");
        let e = json!({"id": id, "sender": format!("u{i}"), "type": "m.room.member", "state_key": format!("u{i}"), "content": {"membership": "join"}, "auth": ["CREATE", "IJR", "IPOWER"], "prev": [prev]});
        add(e, &mut state, &mut events);
        prev = id;
    }
    let base = state.clone();
    let (mut a, mut b) = (base.clone(), base.clone());
    let mut expected = vec![];
    let pa = json!({"id": "PA", "sender": "alice", "type": "m.room.power_levels", "state_key": "", "content": {"users": {user("alice"): 100, user("u1"): 50}}, "auth": ["CREATE", "IMA", "IPOWER"], "prev": [prev]});
    let p = add(pa, &mut a, &mut events);
    expected.push((key_of(&p), Some(p.event_id.to_string())));
    let mut prev_a = "PA".to_string();
    for i in 0..100.min(members) {
        let id = format!("BAN{i}");
        let e = json!({"id": id, "sender": "alice", "type": "m.room.member", "state_key": format!("u{i}"), "content": {"membership": "ban"}, "auth": ["CREATE", "IMA", "PA", format!("J{i}")], "prev": [prev_a]});
        let p = add(e, &mut a, &mut events);
        expected.push((key_of(&p), Some(p.event_id.to_string())));
        prev_a = id;
    }
    let mut prev_b = prev.clone();
    for i in 100..200.min(members) {
        let id = format!("LEAVE{i}");
        let e = json!({"id": id, "sender": format!("u{i}"), "type": "m.room.member", "state_key": format!("u{i}"), "content": {"membership": "leave"}, "auth": ["CREATE", "IPOWER", format!("J{i}")], "prev": [prev_b]});
        let p = add(e, &mut b, &mut events);
        expected.push((key_of(&p), Some(p.event_id.to_string())));
        prev_b = id;
    }
    for i in 0..100 {
        let id = format!("NEW{i}");
        let e = json!({"id": id, "sender": format!("n{i}"), "type": "m.room.member", "state_key": format!("n{i}"), "content": {"membership": "join"}, "auth": ["CREATE", "IJR", "IPOWER"], "prev": [prev_b]});
        let p = add(e, &mut b, &mut events);
        expected.push((key_of(&p), Some(p.event_id.to_string())));
        prev_b = id;
    }
    // Events are added with strictly growing depths, each after its auth events.
    let order = events.iter().map(|(id, p)| (id.clone(), p.depth as i64)).collect();
    Fixture {
        name: format!("generated room of {members} members"),
        rules: rules.clone(),
        order,
        events,
        base,
        forks: vec![a, b],
        expected,
    }
}
