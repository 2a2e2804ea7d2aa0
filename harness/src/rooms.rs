//! Room helpers for scenarios that span servers: create, send, join through given servers
//! and wait for memberships and events to show up in `/sync`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::client::Client;

/// How long a scenario waits for something to cross servers.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn cs<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut p = vec!["_matrix", "client", "v3"];
    p.extend_from_slice(rest);
    p
}

pub fn server_of(user_id: &str) -> String {
    user_id.split_once(':').map(|(_, s)| s.to_string()).expect("user ID has a server")
}

pub async fn create_room(c: &Client, body: Value) -> String {
    c.must_create_room(body).await
}

pub async fn send_text(c: &Client, room_id: &str, text: &str) -> String {
    let txn = format!("t{}", rand::random::<u32>());
    let r = c
        .request(
            "PUT",
            &cs(&["rooms", room_id, "send", "m.room.message", &txn]),
            json!({"msgtype": "m.text", "body": text}),
        )
        .await
        .must_status(200);
    r["event_id"].as_str().expect("event_id").to_string()
}

pub fn timeline<'a>(resp: &'a Value, section: &str, room_id: &str) -> Vec<&'a Value> {
    let mut out = vec![];
    for part in ["timeline", "state"] {
        if let Some(a) = resp["rooms"][section][room_id][part]["events"].as_array() {
            out.extend(a.iter());
        }
    }
    out
}

pub fn has_event(room_id: &str, f: impl Fn(&Value) -> bool) -> impl FnMut(&Value) -> bool {
    let room_id = room_id.to_string();
    move |resp: &Value| timeline(resp, "join", &room_id).into_iter().any(&f)
}

pub fn is_membership(e: &Value, user: &str, m: &str) -> bool {
    e["type"] == "m.room.member" && e["state_key"] == user && e["content"]["membership"] == m
}

/// Sync as `c` until `user`'s membership in the room is `m`.
pub async fn wait_membership(c: &Client, room: &str, user: &str, m: &str) {
    let what = format!("{user} {m} in {room}");
    let user = user.to_string();
    let m2 = m.to_string();
    c.sync_until(None, &what, WAIT, has_event(room, move |e| is_membership(e, &user, &m2))).await;
}

/// `POST /join/{roomId}?server_name=...` for each server given.
pub async fn join_through(c: &Client, room_id: &str, servers: &[&str]) -> crate::Response {
    let q: Vec<String> = servers
        .iter()
        .map(|s| format!("server_name={}", crate::client::encode_segment(s)))
        .collect();
    let q = format!("?{}", q.join("&"));
    c.request("POST", &cs(&["join", room_id, &q]), json!({})).await
}

pub async fn join_via(c: &Client, room_id: &str, server: &str) -> Value {
    join_through(c, room_id, &[server]).await.json()
}

/// Sync as `c` until the event is in the room's timeline (or state).
pub async fn wait_event(c: &Client, room: &str, event_id: &str) {
    let what = format!("event {event_id} in {room}");
    let id = event_id.to_string();
    c.sync_until(None, &what, WAIT, has_event(room, move |e| e["event_id"] == id.as_str())).await;
}
