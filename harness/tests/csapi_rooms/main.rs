//! Client-server API scenarios about rooms: creation, state, membership, messages,
//! transaction IDs, power levels, redactions, forgetting, fetching events, bad input and
//! concurrent senders. Named after the Complement tests they mirror; run against in-process
//! Glia by default, `GLIA_HARNESS_URL=...` runs them against another server (Synapse is the
//! reference; its default room version is 12, so scenarios that depend on how the creator's
//! power is represented ask for the server's default version first).
//!
//! Scenarios that wait with `sync_until` need `/sync` to carry rooms (`rooms.join`,
//! `rooms.invite`, `rooms.leave`); everything else checks the REST endpoints directly.

mod archived_rooms;
mod bad_input;
mod concurrency;
mod fetch_event;
mod membership;
mod membership_on_events;
mod messages;
mod power_levels;
mod redact;
mod room_create;
mod room_forget;
mod room_members;
mod room_state;
mod room_v12;
mod room_versions;
mod rooms_invite;
mod txnid;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use glia_harness::client::encode_segment;
use glia_harness::{Client, Response};
use serde_json::{Value, json};

/// How long a `sync_until` may wait for something that should arrive at once.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(20);

/// `/_matrix/client/v3/<rest...>` as path segments for [`Client::request`].
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

/// A transaction ID unique within this test process.
pub fn txn_id() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("txn-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// `POST /createRoom`, requiring a 200; returns the room ID.
pub async fn create_room(c: &Client, body: Value) -> String {
    let r = c.request("POST", &cs(&["createRoom"]), body).await;
    let body = r.must_status(200);
    let id = body["room_id"].as_str().unwrap_or_else(|| panic!("no room_id in {body}"));
    assert!(id.starts_with('!'), "room IDs start with '!': {body}");
    id.to_string()
}

/// `PUT /rooms/{roomId}/send/{type}/{txnId}` with a fresh transaction ID.
pub async fn send_event(c: &Client, room_id: &str, event_type: &str, content: Value) -> Response {
    let txn = txn_id();
    c.request("PUT", &cs(&["rooms", room_id, "send", event_type, &txn]), content).await
}

/// Send an event, requiring a 200; returns its event ID.
pub async fn must_send_event(
    c: &Client,
    room_id: &str,
    event_type: &str,
    content: Value,
) -> String {
    let body = send_event(c, room_id, event_type, content).await.must_status(200);
    body["event_id"].as_str().unwrap_or_else(|| panic!("no event_id in {body}")).to_string()
}

/// Send an `m.room.message` of type `m.text`; returns its event ID.
pub async fn send_text(c: &Client, room_id: &str, text: &str) -> String {
    must_send_event(c, room_id, "m.room.message", json!({"msgtype": "m.text", "body": text})).await
}

/// `PUT /rooms/{roomId}/state/{type}/{stateKey}`.
pub async fn put_state(
    c: &Client,
    room_id: &str,
    event_type: &str,
    state_key: &str,
    content: Value,
) -> Response {
    c.request("PUT", &cs(&["rooms", room_id, "state", event_type, state_key]), content).await
}

/// Set state, requiring a 200; returns the event ID.
pub async fn must_put_state(
    c: &Client,
    room_id: &str,
    event_type: &str,
    state_key: &str,
    content: Value,
) -> String {
    let body = put_state(c, room_id, event_type, state_key, content).await.must_status(200);
    body["event_id"].as_str().unwrap_or_else(|| panic!("no event_id in {body}")).to_string()
}

/// `GET /rooms/{roomId}/state/{type}/{stateKey}`.
pub async fn get_state(c: &Client, room_id: &str, event_type: &str, state_key: &str) -> Response {
    c.get(&cs(&["rooms", room_id, "state", event_type, state_key])).await
}

/// The content of a state event, requiring a 200.
pub async fn must_get_state(c: &Client, room_id: &str, event_type: &str, state_key: &str) -> Value {
    get_state(c, room_id, event_type, state_key).await.must_status(200)
}

/// The membership `user_id` has in the room's current state, as `viewer` sees it.
pub async fn membership_of(viewer: &Client, room_id: &str, user_id: &str) -> String {
    let content = must_get_state(viewer, room_id, "m.room.member", user_id).await;
    content["membership"].as_str().unwrap_or_else(|| panic!("no membership in {content}")).into()
}

/// `POST /join/{roomIdOrAlias}` (what Complement's JoinRoom calls).
pub async fn join(c: &Client, room_id: &str) -> Response {
    c.request("POST", &cs(&["join", room_id]), json!({})).await
}

pub async fn must_join(c: &Client, room_id: &str) {
    let body = join(c, room_id).await.must_status(200);
    assert_eq!(body["room_id"], room_id, "{body}");
}

pub async fn invite(c: &Client, room_id: &str, user_id: &str) -> Response {
    c.request("POST", &cs(&["rooms", room_id, "invite"]), json!({"user_id": user_id})).await
}

pub async fn must_invite(c: &Client, room_id: &str, user_id: &str) {
    invite(c, room_id, user_id).await.must_status(200);
}

pub async fn leave(c: &Client, room_id: &str) -> Response {
    c.request("POST", &cs(&["rooms", room_id, "leave"]), json!({})).await
}

pub async fn must_leave(c: &Client, room_id: &str) {
    leave(c, room_id).await.must_status(200);
}

/// `kick`, `ban` or `unban` of `user_id` by `c`.
pub async fn moderate(c: &Client, room_id: &str, action: &str, user_id: &str) -> Response {
    let body = json!({"user_id": user_id, "reason": "testing"});
    c.request("POST", &cs(&["rooms", room_id, action]), body).await
}

/// `GET /rooms/{roomId}/messages` with the given query parameters.
pub async fn messages(c: &Client, room_id: &str, params: &[(&str, &str)]) -> Response {
    let q = query(params);
    c.get(&cs(&["rooms", room_id, "messages", &q])).await
}

pub async fn must_messages(c: &Client, room_id: &str, params: &[(&str, &str)]) -> Value {
    let body = messages(c, room_id, params).await.must_status(200);
    assert!(body["chunk"].is_array(), "no chunk in {body}");
    assert!(body["start"].is_string(), "no start token in {body}");
    body
}

/// `GET /rooms/{roomId}/event/{eventId}`.
pub async fn get_event(c: &Client, room_id: &str, event_id: &str) -> Response {
    c.get(&cs(&["rooms", room_id, "event", event_id])).await
}

/// The event IDs of an array of events.
pub fn event_ids(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {events}"))
        .iter()
        .map(|e| e["event_id"].as_str().unwrap_or_else(|| panic!("no event_id in {e}")).into())
        .collect()
}

/// The server's default room version (`m.room_versions` capability).
pub async fn default_room_version(c: &Client) -> String {
    let caps = c.get(&cs(&["capabilities"])).await.must_status(200);
    caps["capabilities"]["m.room_versions"]["default"]
        .as_str()
        .unwrap_or_else(|| panic!("no default room version in {caps}"))
        .to_string()
}

/// Room versions 12 and later give creators infinite power: they are not listed in
/// `m.room.power_levels` `users` (and may not be).
pub fn privileged_creators(version: &str) -> bool {
    version.parse::<u32>().is_ok_and(|v| v >= 12)
}

/// Set a user's display name (their profile), requiring a 200.
pub async fn set_displayname(c: &Client, name: &str) {
    let path = cs(&["profile", &c.user_id, "displayname"]);
    c.request("PUT", &path, json!({"displayname": name})).await.must_status(200);
}

// --- /sync checks, after Complement's client/sync.go ---------------------------------

/// The events at `rooms.<section>.<roomId>.<part>.events` of a sync response.
pub fn sync_events<'a>(resp: &'a Value, section: &str, room_id: &str, part: &str) -> &'a [Value] {
    resp["rooms"][section][room_id][part]["events"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn is_member_event(ev: &Value, user_id: &str, membership: &str) -> bool {
    ev["type"] == "m.room.member"
        && ev["state_key"] == user_id
        && ev["content"]["membership"] == membership
}

/// SyncTimelineHas: the room's joined timeline has an event for which `f` holds.
pub fn timeline_has(room_id: &str, f: impl Fn(&Value) -> bool) -> impl FnMut(&Value) -> bool {
    let room_id = room_id.to_string();
    move |resp: &Value| sync_events(resp, "join", &room_id, "timeline").iter().any(&f)
}

/// SyncTimelineHasEventID.
pub fn timeline_has_event(room_id: &str, event_id: &str) -> impl FnMut(&Value) -> bool {
    let event_id = event_id.to_string();
    timeline_has(room_id, move |e| e["event_id"] == event_id.as_str())
}

/// SyncJoinedTo: `user_id`'s join is in the room's timeline or state (initial syncs may
/// carry it in either).
pub fn joined_to(user_id: &str, room_id: &str) -> impl FnMut(&Value) -> bool {
    let (user_id, room_id) = (user_id.to_string(), room_id.to_string());
    move |resp: &Value| {
        ["timeline", "state"].iter().any(|part| {
            sync_events(resp, "join", &room_id, part)
                .iter()
                .any(|e| is_member_event(e, &user_id, "join"))
        })
    }
}

/// SyncInvitedTo as seen by `me`: my own invite is in `rooms.invite`; someone else's is
/// in the timeline of a room I am in.
pub fn invited_to(me: &str, user_id: &str, room_id: &str) -> impl FnMut(&Value) -> bool {
    let (me, user_id, room_id) = (me.to_string(), user_id.to_string(), room_id.to_string());
    move |resp: &Value| {
        if me == user_id {
            sync_events(resp, "invite", &room_id, "invite_state")
                .iter()
                .any(|e| is_member_event(e, &user_id, "invite"))
        } else {
            sync_events(resp, "join", &room_id, "timeline")
                .iter()
                .any(|e| is_member_event(e, &user_id, "invite"))
        }
    }
}

/// SyncLeftFrom as seen by `me`: the room is in my `rooms.leave` if I left; someone else's
/// leave is in the timeline of a room I am in.
pub fn left_from(me: &str, user_id: &str, room_id: &str) -> impl FnMut(&Value) -> bool {
    let (me, user_id, room_id) = (me.to_string(), user_id.to_string(), room_id.to_string());
    move |resp: &Value| {
        if me == user_id {
            resp["rooms"]["leave"].get(&room_id).is_some()
        } else {
            sync_events(resp, "join", &room_id, "timeline")
                .iter()
                .any(|e| is_member_event(e, &user_id, "leave"))
        }
    }
}

/// A `next_batch` token from a sync that returns at once.
///
/// Synapse answers a repeated identical /sync request from a cache for two minutes (its
/// `sync_response_cache_duration`), which would hand back an old token; an initial sync
/// returns at once whatever its timeout, so each call uses a different one.
pub async fn sync_token(c: &Client) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let timeout = 1 + u64::from(N.fetch_add(1, Ordering::Relaxed));
    let resp = c.sync(None, timeout, None).await;
    resp["next_batch"].as_str().unwrap_or_else(|| panic!("no next_batch in {resp}")).into()
}

/// An initial sync limited to one room (which also keeps Synapse from answering it out of
/// its cache of identical recent requests).
pub async fn sync_room(c: &Client, room_id: &str) -> Value {
    let filter = json!({"room": {"rooms": [room_id]}}).to_string();
    c.sync(None, 0, Some(&filter)).await
}

/// Complement's SendEventSynced: send, then sync until the event is in the timeline.
pub async fn send_event_synced(
    c: &Client,
    room_id: &str,
    event_type: &str,
    content: Value,
) -> String {
    let id = must_send_event(c, room_id, event_type, content).await;
    c.sync_until(None, &format!("{id} in the timeline of {room_id}"), SYNC_TIMEOUT, {
        timeline_has_event(room_id, &id)
    })
    .await;
    id
}
