//! The fake server acting as a homeserver: it creates rooms of its own, builds and signs
//! events in them, sends transactions to the server under test, and joins the server
//! under test's rooms through `make_join` / `send_join`.

use serde_json::{Value, json};

use super::FakeServer;
use super::room::{self, Ev, FakeRoom, StateMap};
use crate::client::{Response, encode_segment};

/// The server under test as the fake server addresses it: where it listens for
/// federation requests, and its server name.
#[derive(Debug, Clone)]
pub struct Peer {
    pub base_url: String,
    pub server_name: String,
}

impl Peer {
    pub fn new(base_url: &str, server_name: &str) -> Peer {
        Peer { base_url: base_url.into(), server_name: server_name.into() }
    }
}

impl FakeServer {
    pub fn user_id(&self, localpart: &str) -> String {
        format!("@{localpart}:{}", self.server_name)
    }

    /// Run `f` on one of the fake server's rooms.
    pub fn room<T>(&self, room_id: &str, f: impl FnOnce(&mut FakeRoom) -> T) -> T {
        let mut rooms = self.rooms.lock().expect("rooms");
        f(rooms.get_mut(room_id).unwrap_or_else(|| panic!("the fake server is not in {room_id}")))
    }

    /// A room of its own: create, the creator's join, power levels (creator at 100),
    /// public join rules and shared history. Returns the room ID.
    pub fn create_room(&self, version: &str, creator: &str) -> String {
        let room_id = format!("!{}:{}", rand::random::<u64>(), self.server_name);
        self.rooms.lock().expect("rooms").insert(room_id.clone(), FakeRoom::new(&room_id, version));
        let mut create = json!({"room_version": version});
        if !matches!(version, "11") {
            create["creator"] = json!(creator);
        }
        let pl = json!({
            "users": {creator: 100}, "users_default": 0, "events_default": 0,
            "state_default": 50, "ban": 50, "kick": 50, "redact": 50, "invite": 0,
        });
        for ev in [
            Ev::state("m.room.create", "", creator, create),
            Ev::member(creator, "join"),
            Ev::state("m.room.power_levels", "", creator, pl),
            Ev::state("m.room.join_rules", "", creator, json!({"join_rule": "public"})),
            Ev::state(
                "m.room.history_visibility",
                "",
                creator,
                json!({"history_visibility": "shared"}),
            ),
        ] {
            self.send_in(&room_id, ev);
        }
        room_id
    }

    /// `ev` built against the room's current state and tips and signed, not yet added.
    pub fn build(&self, room_id: &str, ev: Ev) -> Value {
        let name = self.server_name.clone();
        self.room(room_id, |r| room::sign(&name, &self.key, &r.rules, r.template(&name, &ev)))
    }

    /// Sign an event of a room version again (after a scenario changed it).
    pub fn sign(&self, version: &str, mut ev: Value) -> Value {
        if let Some(o) = ev.as_object_mut() {
            o.remove("signatures");
            o.remove("hashes");
            o.remove("unsigned");
        }
        room::sign(&self.server_name, &self.key, &room::rules_of(version), ev)
    }

    /// Add a signed event to the room's DAG; returns its ID.
    pub fn add(&self, room_id: &str, ev: Value) -> String {
        self.room(room_id, |r| r.add(ev))
    }

    /// Build, sign and add: an event that happened on the fake server.
    pub fn send_in(&self, room_id: &str, ev: Ev) -> (String, Value) {
        let signed = self.build(room_id, ev);
        (self.add(room_id, signed.clone()), signed)
    }

    pub fn event_id(&self, room_id: &str, ev: &Value) -> String {
        self.room(room_id, |r| r.event_id(ev))
    }

    /// `PUT /send/{txnId}` with these PDUs and EDUs.
    pub async fn send_transaction(&self, peer: &Peer, pdus: &[Value], edus: &[Value]) -> Response {
        let txn = format!("t{}", rand::random::<u64>());
        let body = json!({
            "origin": self.server_name,
            "origin_server_ts": super::now_ms(),
            "pdus": pdus,
            "edus": edus,
        });
        let path = format!("/_matrix/federation/v1/send/{txn}");
        self.request(&peer.base_url, &peer.server_name, "PUT", &path, Some(body)).await
    }

    /// `GET /make_{kind}` for `user_id`, offering every room version for joins.
    pub async fn make_membership(
        &self,
        peer: &Peer,
        kind: &str,
        room_id: &str,
        user_id: &str,
    ) -> Response {
        let vers = if kind == "join" {
            format!("?{}", (1..=12).map(|v| format!("ver={v}")).collect::<Vec<_>>().join("&"))
        } else {
            String::new()
        };
        let path = format!(
            "/_matrix/federation/v1/make_{kind}/{}/{}{vers}",
            encode_segment(room_id),
            encode_segment(user_id)
        );
        self.request(&peer.base_url, &peer.server_name, "GET", &path, None).await
    }

    /// Fill in and sign a `make_*` answer's template.
    pub fn sign_template(&self, make_answer: &Value) -> Value {
        let version = make_answer["room_version"].as_str().unwrap_or("1");
        let mut ev = make_answer["event"].clone();
        ev["origin"] = json!(self.server_name);
        ev["origin_server_ts"] = json!(super::now_ms());
        if matches!(
            room::rules_of(version).event_id_format,
            ruma::room_version_rules::EventIdFormatVersion::V1
        ) {
            ev["event_id"] = json!(format!("${}:{}", rand::random::<u64>(), self.server_name));
        }
        self.sign(version, ev)
    }

    /// `PUT /v2/send_{kind}` of a signed event; `event_id` names it in the path.
    pub async fn send_membership(
        &self,
        peer: &Peer,
        kind: &str,
        room_id: &str,
        event_id: &str,
        ev: &Value,
    ) -> Response {
        let path = format!(
            "/_matrix/federation/v2/send_{kind}/{}/{}",
            encode_segment(room_id),
            encode_segment(event_id)
        );
        self.request(&peer.base_url, &peer.server_name, "PUT", &path, Some(ev.clone())).await
    }

    /// Join `user_id` to a room of the server under test (make_join, send_join) and keep
    /// the room's state from the answer, so further events can be built in it. Returns
    /// the join's event ID.
    pub async fn join(&self, peer: &Peer, room_id: &str, user_id: &str) -> String {
        let made = self.make_membership(peer, "join", room_id, user_id).await.must_status(200);
        let version = made["room_version"].as_str().unwrap_or("1").to_string();
        let ev = self.sign_template(&made);
        let rules = room::rules_of(&version);
        let id = room::event_id_of(&ev, &rules);
        let resp = self.send_membership(peer, "join", room_id, &id, &ev).await.must_status(200);
        let mut r = FakeRoom::new(room_id, &version);
        for a in resp["auth_chain"].as_array().into_iter().flatten() {
            r.remember(a.clone());
        }
        let mut state = StateMap::new();
        for s in resp["state"].as_array().into_iter().flatten() {
            let sid = r.remember(s.clone());
            if let (Some(t), Some(k)) = (s["type"].as_str(), s["state_key"].as_str()) {
                state.insert((t.to_string(), k.to_string()), sid);
            }
        }
        r.state = state;
        r.add(ev);
        self.rooms.lock().expect("rooms").insert(room_id.to_string(), r);
        id
    }

    /// Invite `target` (a user of the server under test) to one of the fake server's
    /// rooms with `PUT /v2/invite`; once the invitee's server countersigned it, the
    /// invite joins the room's DAG. Returns the answer.
    pub async fn invite(&self, peer: &Peer, room_id: &str, sender: &str, target: &str) -> Response {
        let invite = Ev::state("m.room.member", target, sender, json!({"membership": "invite"}));
        let ev = self.build(room_id, invite);
        let (id, version) = self.room(room_id, |r| (r.event_id(&ev), r.version.clone()));
        let stripped: Vec<Value> = self.room(room_id, |r| {
            ["m.room.create", "m.room.join_rules", "m.room.name"]
                .iter()
                .filter_map(|t| r.state_event(t, ""))
                .map(|e| {
                    json!({"type": e["type"], "state_key": "", "sender": e["sender"], "content": e["content"]})
                })
                .collect()
        });
        let body = json!({"event": ev, "room_version": version, "invite_room_state": stripped});
        let r = self.send_invite(peer, room_id, &id, body).await;
        if r.status == 200 {
            self.add(room_id, r.json()["event"].clone());
        }
        r
    }

    /// `PUT /v2/invite/{roomId}/{eventId}` with any body, for crafted invites.
    pub async fn send_invite(
        &self,
        peer: &Peer,
        room_id: &str,
        event_id: &str,
        body: Value,
    ) -> Response {
        let path = format!(
            "/_matrix/federation/v2/invite/{}/{}",
            encode_segment(room_id),
            encode_segment(event_id)
        );
        self.request(&peer.base_url, &peer.server_name, "PUT", &path, Some(body)).await
    }
}
