//! Rooms as the fake server keeps them: a DAG of signed PDUs (any room version 1-11),
//! its current state, the state before each event and the forward extremities. The fake
//! server builds and signs events with its own key, and answers the server under test's
//! requests about its rooms (make_join, send_join, make_leave, send_leave, /event, /event_auth, /state,
//! /state_ids, /get_missing_events, /backfill, /send) from here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use ruma::RoomVersionId;
use ruma::canonical_json::CanonicalJsonObject;
use ruma::room_version_rules::{EventIdFormatVersion, RoomVersionRules};
use ruma::signatures::Ed25519KeyPair;
use serde_json::{Map, Value, json};

use super::{Received, now_ms};

/// A state: (type, state_key) -> event ID.
pub type StateMap = BTreeMap<(String, String), String>;

/// An event for the fake server to build. `prev_events`, `auth_events` and `depth` come
/// from the room unless a scenario sets them (to craft gaps, forks or bad auth).
#[derive(Debug, Clone)]
pub struct Ev {
    pub event_type: String,
    pub state_key: Option<String>,
    pub sender: String,
    pub content: Value,
    pub prev_events: Option<Vec<String>>,
    pub auth_events: Option<Vec<String>>,
    pub depth: Option<u64>,
    /// Further top-level fields (`redacts`, padding for oversized events, ...).
    pub extra: Map<String, Value>,
}

impl Ev {
    pub fn new(event_type: &str, sender: &str, content: Value) -> Ev {
        Ev {
            event_type: event_type.into(),
            state_key: None,
            sender: sender.into(),
            content,
            prev_events: None,
            auth_events: None,
            depth: None,
            extra: Map::new(),
        }
    }

    pub fn state(event_type: &str, state_key: &str, sender: &str, content: Value) -> Ev {
        Ev { state_key: Some(state_key.into()), ..Ev::new(event_type, sender, content) }
    }

    pub fn message(sender: &str, body: &str) -> Ev {
        Ev::new("m.room.message", sender, json!({"msgtype": "m.text", "body": body}))
    }

    pub fn member(user_id: &str, membership: &str) -> Ev {
        Ev::state("m.room.member", user_id, user_id, json!({"membership": membership}))
    }

    pub fn prev(mut self, ids: &[String]) -> Ev {
        self.prev_events = Some(ids.to_vec());
        self
    }

    pub fn auth(mut self, ids: &[String]) -> Ev {
        self.auth_events = Some(ids.to_vec());
        self
    }
}

pub fn rules_of(version: &str) -> RoomVersionRules {
    RoomVersionId::try_from(version).ok().and_then(|v| v.rules()).expect("a known room version")
}

/// The IDs in an event's `prev_events` or `auth_events` (plain in v3+, `[id, hashes]` pairs
/// in v1 and v2).
pub fn ids_in(ev: &Value, key: &str) -> Vec<String> {
    ev[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().or_else(|| v.get(0).and_then(Value::as_str)))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// An event's ID in its room version: carried in v1 and v2, the reference hash after.
pub fn event_id_of(ev: &Value, rules: &RoomVersionRules) -> String {
    if matches!(rules.event_id_format, EventIdFormatVersion::V1) {
        return ev["event_id"].as_str().unwrap_or_default().to_string();
    }
    let obj: CanonicalJsonObject = serde_json::from_value(ev.clone()).expect("canonical JSON");
    format!("${}", ruma::signatures::reference_hash(&obj, rules).expect("reference hash"))
}

/// Add content hash and signature from `server_name`'s key.
pub fn sign(server_name: &str, key: &Ed25519KeyPair, rules: &RoomVersionRules, ev: Value) -> Value {
    let mut obj: CanonicalJsonObject = serde_json::from_value(ev).expect("canonical JSON");
    ruma::signatures::hash_and_sign_event(server_name, key, &mut obj, &rules.redaction)
        .expect("sign event");
    serde_json::to_value(&obj).expect("json")
}

pub struct FakeRoom {
    pub room_id: String,
    pub version: String,
    pub rules: RoomVersionRules,
    /// Every event the fake server knows in this room, by ID.
    pub events: HashMap<String, Value>,
    /// The DAG's events in the order they were added.
    pub order: Vec<String>,
    pub state: StateMap,
    /// The state before each DAG event (what `/state_ids` answers).
    pub state_before: HashMap<String, StateMap>,
    /// Forward extremities.
    pub tips: Vec<String>,
    pub depth: u64,
}

impl FakeRoom {
    pub fn new(room_id: &str, version: &str) -> FakeRoom {
        FakeRoom {
            room_id: room_id.into(),
            version: version.into(),
            rules: rules_of(version),
            events: HashMap::new(),
            order: vec![],
            state: StateMap::new(),
            state_before: HashMap::new(),
            tips: vec![],
            depth: 0,
        }
    }

    pub fn event_id(&self, ev: &Value) -> String {
        event_id_of(ev, &self.rules)
    }

    pub fn state_id(&self, event_type: &str, state_key: &str) -> Option<String> {
        self.state.get(&(event_type.to_string(), state_key.to_string())).cloned()
    }

    pub fn state_event(&self, event_type: &str, state_key: &str) -> Option<&Value> {
        self.events.get(&self.state_id(event_type, state_key)?)
    }

    /// The auth events the spec selects for `ev` from the current state.
    pub fn auth_events_for(&self, ev: &Ev) -> Vec<String> {
        if ev.event_type == "m.room.create" {
            return vec![];
        }
        let mut keys = vec![
            ("m.room.create", String::new()),
            ("m.room.power_levels", String::new()),
            ("m.room.member", ev.sender.clone()),
        ];
        // From room version 12 the create event is implied by the room ID, never cited.
        if self.rules.authorization.room_create_event_id_as_room_id {
            keys.remove(0);
        }
        if ev.event_type == "m.room.member" {
            let target = ev.state_key.clone().unwrap_or_default();
            keys.push(("m.room.member", target));
            if matches!(ev.content["membership"].as_str(), Some("join" | "invite" | "knock")) {
                keys.push(("m.room.join_rules", String::new()));
            }
        }
        let mut out: Vec<String> = vec![];
        for (t, k) in keys {
            if let Some(id) = self.state_id(t, &k)
                && !out.contains(&id)
            {
                out.push(id);
            }
        }
        out
    }

    /// `prev_events` / `auth_events` as the room version writes them.
    fn refs(&self, ids: &[String]) -> Value {
        if !matches!(self.rules.event_id_format, EventIdFormatVersion::V1) {
            return json!(ids);
        }
        let pairs: Vec<Value> = ids
            .iter()
            .map(|id| {
                let hash = self
                    .events
                    .get(id)
                    .and_then(|e| serde_json::from_value::<CanonicalJsonObject>(e.clone()).ok())
                    .and_then(|o| ruma::signatures::reference_hash(&o, &self.rules).ok())
                    .unwrap_or_else(|| "AAAA".into());
                json!([id, {"sha256": hash}])
            })
            .collect();
        json!(pairs)
    }

    /// The unsigned event `ev` becomes in this room, from `origin`.
    pub fn template(&self, origin: &str, ev: &Ev) -> Value {
        let prev = ev.prev_events.clone().unwrap_or_else(|| self.tips.clone());
        let auth = ev.auth_events.clone().unwrap_or_else(|| self.auth_events_for(ev));
        let depth = ev.depth.unwrap_or_else(|| {
            prev.iter()
                .filter_map(|p| self.events.get(p))
                .filter_map(|e| e["depth"].as_u64())
                .max()
                .map_or(1, |d| d + 1)
        });
        let mut v = json!({
            "type": ev.event_type,
            "sender": ev.sender,
            "room_id": self.room_id,
            "content": ev.content,
            "prev_events": self.refs(&prev),
            "auth_events": self.refs(&auth),
            "depth": depth,
            "origin": origin,
            "origin_server_ts": now_ms(),
        });
        if let Some(k) = &ev.state_key {
            v["state_key"] = json!(k);
        }
        if matches!(self.rules.event_id_format, EventIdFormatVersion::V1) {
            v["event_id"] = json!(format!("${}:{origin}", rand::random::<u64>()));
        }
        for (k, x) in &ev.extra {
            v[k] = x.clone();
        }
        v
    }

    /// Add a (signed) event to the DAG: it becomes a tip and, if a state event, current
    /// state. Returns its ID.
    pub fn add(&mut self, ev: Value) -> String {
        let id = self.event_id(&ev);
        if self.order.contains(&id) {
            return id;
        }
        let prevs = ids_in(&ev, "prev_events");
        self.state_before.insert(id.clone(), self.state.clone());
        if let (Some(t), Some(k)) = (ev["type"].as_str(), ev["state_key"].as_str()) {
            self.state.insert((t.to_string(), k.to_string()), id.clone());
        }
        self.depth = self.depth.max(ev["depth"].as_u64().unwrap_or(0));
        self.tips.retain(|t| !prevs.contains(t));
        self.tips.push(id.clone());
        self.events.insert(id.clone(), ev);
        self.order.push(id.clone());
        id
    }

    /// Keep an event without putting it in the DAG (auth chains from another server).
    pub fn remember(&mut self, ev: Value) -> String {
        let id = self.event_id(&ev);
        self.events.entry(id.clone()).or_insert(ev);
        id
    }

    /// The auth chain of `ids` (not including them), oldest first.
    pub fn auth_chain(&self, ids: &[String]) -> Vec<Value> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut todo: Vec<String> = ids
            .iter()
            .filter_map(|i| self.events.get(i))
            .flat_map(|e| ids_in(e, "auth_events"))
            .collect();
        while let Some(id) = todo.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            if let Some(e) = self.events.get(&id) {
                todo.extend(ids_in(e, "auth_events"));
            }
        }
        let mut out: Vec<Value> = seen.iter().filter_map(|i| self.events.get(i)).cloned().collect();
        out.sort_by_key(|e| e["depth"].as_u64().unwrap_or(0));
        out
    }

    /// Events reached walking back from `from` (included when `include_start`), never
    /// past `stop`, newest first, at most `limit`.
    pub fn walk_back(
        &self,
        from: &[String],
        stop: &HashSet<String>,
        limit: usize,
        include_start: bool,
    ) -> Vec<Value> {
        let mut frontier: Vec<String> = if include_start {
            from.to_vec()
        } else {
            from.iter()
                .filter_map(|i| self.events.get(i))
                .flat_map(|e| ids_in(e, "prev_events"))
                .collect()
        };
        let mut seen = HashSet::new();
        let mut out = vec![];
        while out.len() < limit {
            let depth =
                |i: &String| self.events.get(i).and_then(|e| e["depth"].as_u64()).unwrap_or(0);
            frontier.sort_by_key(depth);
            let Some(id) = frontier.pop() else { break };
            if stop.contains(&id) || !seen.insert(id.clone()) {
                continue;
            }
            let Some(e) = self.events.get(&id) else { continue };
            frontier.extend(ids_in(e, "prev_events"));
            out.push(e.clone());
        }
        out
    }

    /// The `state` and `auth_chain` of a send_join answer for the join `id`.
    fn state_and_chain(&self, id: &str) -> (Vec<Value>, Vec<Value>) {
        let before = self.state_before.get(id).cloned().unwrap_or_default();
        let ids: Vec<String> = before.values().cloned().collect();
        let state = ids.iter().filter_map(|i| self.events.get(i)).cloned().collect();
        let mut with_join = ids.clone();
        with_join.push(id.to_string());
        (state, self.auth_chain(&with_join))
    }
}

/// Percent-decode one path segment or query value (or a whole request URI).
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query string's decoded (name, value) pairs.
type Query = Vec<(String, String)>;

/// The decoded path segments after `prefix`, and the query pairs.
fn parse(uri: &str, prefix: &str) -> Option<(Vec<String>, Query)> {
    let rest = uri.strip_prefix(prefix)?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let segs = path.split('/').filter(|s| !s.is_empty()).map(decode).collect();
    let q = query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect();
    Some((segs, q))
}

fn not_found(what: &str) -> (u16, Value) {
    (404, json!({"errcode": "M_NOT_FOUND", "error": format!("fake server: {what}")}))
}

/// Answer a request about the fake server's rooms, or None when it is about something else.
pub fn answer(
    rooms: &Mutex<HashMap<String, FakeRoom>>,
    name: &str,
    r: &Received,
) -> Option<(u16, Value)> {
    const F: &str = "/_matrix/federation";
    let mut rooms = rooms.lock().expect("rooms");
    let m = r.method.as_str();
    if m == "PUT" && r.uri.starts_with(&format!("{F}/v1/send/")) {
        // Keep the DAG of rooms we have up to date with what the server under test sends.
        let mut results = Map::new();
        for pdu in r.body["pdus"].as_array().cloned().unwrap_or_default() {
            if let Some(room) = pdu["room_id"].as_str().and_then(|id| rooms.get_mut(id)) {
                let id = room.add(pdu);
                results.insert(id, json!({}));
            }
        }
        return Some((200, json!({"pdus": results})));
    }
    for kind in ["join", "leave"] {
        if m == "GET"
            && let Some((segs, q)) = parse(&r.uri, &format!("{F}/v1/make_{kind}/"))
        {
            let [room_id, user_id] = &segs[..] else { return Some(not_found("path")) };
            let Some(room) = rooms.get(room_id) else { return Some(not_found("unknown room")) };
            let vers: Vec<&str> =
                q.iter().filter(|(k, _)| k == "ver").map(|(_, v)| v.as_str()).collect();
            if kind == "join" && !vers.contains(&room.version.as_str()) {
                return Some((
                    400,
                    json!({"errcode": "M_INCOMPATIBLE_ROOM_VERSION", "room_version": room.version}),
                ));
            }
            let mut t = room.template(name, &Ev::member(user_id, kind));
            if let Some(o) = t.as_object_mut() {
                o.remove("event_id");
            }
            return Some((200, json!({"event": t, "room_version": room.version})));
        }
        if m == "PUT"
            && let Some((segs, _)) = parse(&r.uri, &format!("{F}/v2/send_{kind}/"))
        {
            let Some(room) = segs.first().and_then(|id| rooms.get_mut(id)) else {
                return Some(not_found("unknown room"));
            };
            let id = room.add(r.body.clone());
            if kind == "leave" {
                return Some((200, json!({})));
            }
            let (state, auth_chain) = room.state_and_chain(&id);
            return Some((
                200,
                json!({"origin": name, "state": state, "auth_chain": auth_chain, "members_omitted": false, "servers_in_room": [name]}),
            ));
        }
    }
    if m == "GET"
        && let Some((segs, _)) = parse(&r.uri, &format!("{F}/v1/event/"))
    {
        let id = segs.first()?;
        let ev = rooms.values().find_map(|room| room.events.get(id))?;
        return Some((200, json!({"origin": name, "origin_server_ts": now_ms(), "pdus": [ev]})));
    }
    if m == "GET"
        && let Some((segs, _)) = parse(&r.uri, &format!("{F}/v1/event_auth/"))
    {
        let [room_id, id] = &segs[..] else { return Some(not_found("path")) };
        let room = rooms.get(room_id)?;
        return Some((200, json!({"auth_chain": room.auth_chain(std::slice::from_ref(id))})));
    }
    for (kind, ids_only) in [("state_ids", true), ("state", false)] {
        if m == "GET"
            && let Some((segs, q)) = parse(&r.uri, &format!("{F}/v1/{kind}/"))
        {
            let room = rooms.get(segs.first()?)?;
            let at = q.iter().find(|(k, _)| k == "event_id").map(|(_, v)| v.clone())?;
            let Some(before) = room.state_before.get(&at) else {
                return Some(not_found("unknown event"));
            };
            let ids: Vec<String> = before.values().cloned().collect();
            let chain = room.auth_chain(&ids);
            let chain_ids: Vec<String> = chain.iter().map(|e| room.event_id(e)).collect();
            return Some((
                200,
                if ids_only {
                    json!({"pdu_ids": ids, "auth_chain_ids": chain_ids})
                } else {
                    let pdus: Vec<&Value> = ids.iter().filter_map(|i| room.events.get(i)).collect();
                    json!({"pdus": pdus, "auth_chain": chain})
                },
            ));
        }
    }
    if m == "POST"
        && let Some((segs, _)) = parse(&r.uri, &format!("{F}/v1/get_missing_events/"))
    {
        let room = rooms.get(segs.first()?)?;
        let list = |k: &str| -> Vec<String> {
            r.body[k]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let stop: HashSet<String> = list("earliest_events").into_iter().collect();
        let limit = r.body["limit"].as_u64().unwrap_or(10) as usize;
        let mut events = room.walk_back(&list("latest_events"), &stop, limit, false);
        events.reverse();
        return Some((200, json!({"events": events})));
    }
    if m == "GET"
        && let Some((segs, q)) = parse(&r.uri, &format!("{F}/v1/backfill/"))
    {
        let room = rooms.get(segs.first()?)?;
        let from: Vec<String> =
            q.iter().filter(|(k, _)| k == "v").map(|(_, v)| v.clone()).collect();
        let limit =
            q.iter().find(|(k, _)| k == "limit").and_then(|(_, v)| v.parse().ok()).unwrap_or(10);
        let pdus = room.walk_back(&from, &HashSet::new(), limit, true);
        return Some((200, json!({"origin": name, "origin_server_ts": now_ms(), "pdus": pdus})));
    }
    None
}
