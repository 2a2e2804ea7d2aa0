//! The admin API (`/_synapse/admin/...`, Synapse's shapes) and operations: users (list,
//! query, create/modify, deactivate, reset password, whois, admin flag, joined rooms,
//! rate-limit overrides), devices, rooms (list, details, members, state, block, delete
//! with purge), registration tokens, local media, server notices, non-admins refused
//! everywhere, unknown users and rooms, `/health`, and `glia backup` of a running server.
//!
//! Run against in-process Glia by default; `ci/synapse --test csapi_admin` runs them
//! against Synapse, the reference (it configures `server_notices`, which Glia always has).
//! Admins are made with shared-secret registration, so an external target needs
//! `GLIA_HARNESS_SHARED_SECRET`; without it the scenarios report SKIP. Synapse updates its
//! room statistics and parts deactivated users from rooms in the background, so the
//! scenarios wait for those instead of expecting them at once.
//!
//! The backup scenario runs `target/debug/glia` (or `$GLIA_BINARY`): build it first with
//! `cargo build -p glia` (`cargo test --workspace` does).

mod access;
mod devices;
mod media;
mod notices;
mod ops;
mod rooms;
mod tokens;
mod users;

use std::time::Duration;

use glia_harness::client::{encode_segment, unique_localpart};
use glia_harness::deployment::admin_register;
use glia_harness::{Client, Deployment, Response, wait_until};
use serde_json::{Value, json};

/// How long to wait for something a server does in the background.
pub const BACKGROUND: Duration = Duration::from_secs(30);

pub const PASSWORD: &str = "correct horse battery staple";

/// `/_synapse/admin/<rest...>` as path segments.
pub fn adm<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut p = vec!["_synapse", "admin"];
    p.extend_from_slice(rest);
    p
}

/// `/_matrix/client/v3/<rest...>` as path segments.
pub fn cs<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut p = vec!["_matrix", "client", "v3"];
    p.extend_from_slice(rest);
    p
}

/// A query string segment (`?k=v&...`) with every value percent-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{k}={}", encode_segment(v))).collect();
    format!("?{}", parts.join("&"))
}

/// The server name part of a user ID.
pub fn server_name(user_id: &str) -> &str {
    user_id.split_once(':').map(|(_, s)| s).expect("user ID has a server name")
}

/// A fresh server admin, or `None` (the scenario then skips) when the target's shared
/// secret is unknown.
pub async fn admin(d: &Deployment) -> Option<Client> {
    if d.hs(0).shared_secret.is_none() {
        eprintln!("SKIP: GLIA_HARNESS_SHARED_SECRET is not set for the external server");
        return None;
    }
    let name = unique_localpart("admin");
    let body = admin_register(d.hs(0), &name, PASSWORD, true).await.must_status(200);
    Some(d.client(0).logged_in(&body, PASSWORD))
}

/// Register a user whose localpart is exactly `localpart`.
pub async fn register_as(d: &Deployment, localpart: &str) -> Client {
    d.client(0).must_register(localpart, PASSWORD).await
}

/// `POST /createRoom`, requiring a 200; returns the room ID.
pub async fn create_room(c: &Client, body: Value) -> String {
    let body = c.request("POST", &cs(&["createRoom"]), body).await.must_status(200);
    body["room_id"].as_str().unwrap_or_else(|| panic!("no room_id in {body}")).to_string()
}

pub async fn must_join(c: &Client, room_id: &str) {
    c.request("POST", &cs(&["join", room_id]), json!({})).await.must_status(200);
}

/// Send a text message, requiring a 200; returns the event ID.
pub async fn send_text(c: &Client, room_id: &str, text: &str) -> String {
    let txn = unique_localpart("txn");
    let body = c
        .request(
            "PUT",
            &cs(&["rooms", room_id, "send", "m.room.message", &txn]),
            json!({"msgtype": "m.text", "body": text}),
        )
        .await
        .must_status(200);
    body["event_id"].as_str().expect("event_id").to_string()
}

/// The bodies of the latest text messages in a room, newest first.
pub async fn message_bodies(c: &Client, room_id: &str) -> Vec<String> {
    let q = query(&[("dir", "b"), ("limit", "50")]);
    let body = c.get(&cs(&["rooms", room_id, "messages", &q])).await.must_status(200);
    body["chunk"]
        .as_array()
        .expect("chunk")
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_string))
        .collect()
}

/// The rooms `c` is joined to.
pub async fn joined_rooms(c: &Client) -> Vec<String> {
    let body = c.get(&cs(&["joined_rooms"])).await.must_status(200);
    serde_json::from_value(body["joined_rooms"].clone()).expect("joined_rooms")
}

/// `whoami` with `c`'s token must be refused as an unknown token.
pub async fn must_be_logged_out(c: &Client) {
    c.get(&cs(&["account", "whoami"])).await.must_error(401, "M_UNKNOWN_TOKEN");
}

pub async fn must_be_logged_in(c: &Client) {
    c.get(&cs(&["account", "whoami"])).await.must_status(200);
}

/// Poll an admin GET until `f` accepts its (200) body; returns that body.
pub async fn poll(c: &Client, path: &[&str], what: &str, f: impl Fn(&Value) -> bool) -> Value {
    wait_until(what, BACKGROUND, || {
        let c = c.clone();
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        let f = &f;
        async move {
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            let body = c.get(&p).await.must_status(200);
            f(&body).then_some(body)
        }
    })
    .await
}

/// The strings in a JSON array, for order-sensitive comparisons.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("not a string: {s}")).to_string())
        .collect()
}

/// Assert a 4xx Matrix error with the given status, whatever its errcode (where Synapse
/// and Glia word a non-spec error differently).
#[track_caller]
pub fn must_fail(r: &Response, status: u16) -> Value {
    let body = r.must_client_error();
    assert_eq!(r.status, status, "{}: {}", r.what, r.text());
    body
}
