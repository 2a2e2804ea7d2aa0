//! Client-server API scenarios for the end-to-end encryption plumbing: device keys,
//! one-time and fallback keys, key changes and device lists in `/sync`, cross-signing,
//! send-to-device messages and server-side key backups. Named after the Complement tests
//! they mirror; run against in-process Glia by default, `GLIA_HARNESS_URL=...` runs them
//! against another server (Synapse is the reference).
//!
//! Keys are real ed25519 keys and the JSON is really signed (ruma), so servers that verify
//! signatures (cross-signing) accept what these scenarios upload.

mod bad_input;
mod cross_signing;
mod device_lists;
mod key_backup;
mod key_changes;
mod to_device;
mod upload_keys;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use glia_harness::Client;
use ruma::signatures::Ed25519KeyPair;
use serde_json::{Value, json};

/// How long a scenario waits for something to show up in `/sync`.
pub const WAIT: Duration = Duration::from_secs(20);

/// `/_matrix/client/v3/<rest...>` as path segments for [`Client::request`].
pub fn cs<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut p = vec!["_matrix", "client", "v3"];
    p.extend_from_slice(rest);
    p
}

/// An ed25519 signing key: a device's (key ID `ed25519:<device ID>`) or a cross-signing
/// key (key ID `ed25519:<public key>`).
pub struct SigningKey {
    pub pair: Ed25519KeyPair,
    /// Unpadded base64 public key.
    pub public: String,
}

impl SigningKey {
    /// A device key named after `device_id`.
    pub fn device(device_id: &str) -> SigningKey {
        let doc = Ed25519KeyPair::generate();
        let pair = Ed25519KeyPair::from_der(&doc, device_id.to_string()).expect("key pair");
        let public = STANDARD_NO_PAD.encode(pair.public_key());
        SigningKey { pair, public }
    }

    /// A cross-signing key, named after its own public key.
    pub fn cross_signing() -> SigningKey {
        let doc = Ed25519KeyPair::generate();
        let probe = Ed25519KeyPair::from_der(&doc, "probe".into()).expect("key pair");
        let public = STANDARD_NO_PAD.encode(probe.public_key());
        let pair = Ed25519KeyPair::from_der(&doc, public.clone()).expect("key pair");
        SigningKey { pair, public }
    }

    pub fn key_id(&self) -> String {
        format!("ed25519:{}", self.pair.version())
    }

    /// Sign `v` (an object) as `user_id`, adding to its `signatures`.
    pub fn sign(&self, user_id: &str, v: &mut Value) {
        let map = v.as_object().cloned().expect("signed JSON is an object");
        let mut obj = ruma::canonical_json::try_from_json_map(map).expect("canonical JSON");
        ruma::signatures::sign_json(user_id, &self.pair, &mut obj).expect("sign");
        *v = serde_json::to_value(&obj).expect("JSON");
    }

    /// A cross-signing key object for `user_id` with `usage`, unsigned.
    pub fn cross_signing_object(&self, user_id: &str, usage: &str) -> Value {
        json!({
            "user_id": user_id,
            "usage": [usage],
            "keys": {self.key_id(): self.public},
        })
    }
}

/// Random bytes as unpadded base64, for curve25519 keys the server never checks.
pub fn random_key() -> String {
    let bytes: [u8; 32] = rand::random();
    STANDARD_NO_PAD.encode(bytes)
}

/// A device's identity keys, signed by its ed25519 key.
pub fn device_keys(c: &Client) -> (SigningKey, Value) {
    let key = SigningKey::device(&c.device_id);
    let mut dk = json!({
        "user_id": c.user_id,
        "device_id": c.device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {
            format!("ed25519:{}", c.device_id): key.public,
            format!("curve25519:{}", c.device_id): random_key(),
        },
    });
    key.sign(&c.user_id, &mut dk);
    (key, dk)
}

/// Signed curve25519 one-time keys with the given key IDs.
pub fn one_time_keys(c: &Client, key: &SigningKey, ids: &[&str]) -> Value {
    let mut otks = serde_json::Map::new();
    for id in ids {
        let mut k = json!({"key": random_key()});
        key.sign(&c.user_id, &mut k);
        otks.insert(format!("signed_curve25519:{id}"), k);
    }
    Value::Object(otks)
}

/// A signed fallback key (`fallback: true`).
pub fn fallback_key(c: &Client, key: &SigningKey, id: &str) -> Value {
    let mut k = json!({"key": random_key(), "fallback": true});
    key.sign(&c.user_id, &mut k);
    json!({format!("signed_curve25519:{id}"): k})
}

/// `POST /keys/upload`, requiring a 200; returns the body.
pub async fn must_upload(c: &Client, body: Value) -> Value {
    c.request("POST", &cs(&["keys", "upload"]), body).await.must_status(200)
}

/// Upload fresh device keys for `c` (a device-list change); returns what was uploaded.
pub async fn upload_new_device_keys(c: &Client) -> (SigningKey, Value) {
    let (key, dk) = device_keys(c);
    must_upload(c, json!({"device_keys": dk})).await;
    (key, dk)
}

/// `POST /keys/query` for all devices of `user_id`.
pub async fn query_keys(c: &Client, user_id: &str) -> Value {
    c.request("POST", &cs(&["keys", "query"]), json!({"device_keys": {user_id: []}}))
        .await
        .must_status(200)
}

/// `POST /keys/claim` of one `signed_curve25519` key of a device.
pub async fn claim(c: &Client, user_id: &str, device_id: &str) -> Value {
    let body = json!({"one_time_keys": {user_id: {device_id: "signed_curve25519"}}});
    c.request("POST", &cs(&["keys", "claim"]), body).await.must_status(200)
}

/// A public room created by `c`.
pub async fn create_room(c: &Client) -> String {
    let r = c.must_do("POST", &cs(&["createRoom"]), json!({"preset": "public_chat"})).await;
    r["room_id"].as_str().expect("room_id").to_string()
}

pub async fn join_room(c: &Client, room: &str) {
    c.must_do("POST", &cs(&["join", room]), json!({})).await;
}

pub async fn leave_room(c: &Client, room: &str) {
    c.must_do("POST", &cs(&["rooms", room, "leave"]), json!({})).await;
}

/// Whether `resp` (a `/sync` body) lists `user_id` in `device_lists.<section>`.
pub fn device_lists_has(resp: &Value, section: &str, user_id: &str) -> bool {
    resp["device_lists"][section].as_array().is_some_and(|a| a.iter().any(|u| u == user_id))
}

/// Whether `resp` shows `user_id` joined to `room` (in the room's state or timeline).
pub fn joined_to(resp: &Value, room: &str, user_id: &str) -> bool {
    let r = &resp["rooms"]["join"][room];
    ["state", "timeline"].iter().any(|s| {
        r[s]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| {
                e["type"] == "m.room.member"
                    && e["state_key"] == user_id
                    && e["content"]["membership"] == "join"
            })
        })
    })
}

/// Sync from `since` until `check` passes; the `next_batch` of that response.
pub async fn sync_until(
    c: &Client,
    since: Option<&str>,
    what: &str,
    check: impl FnMut(&Value) -> bool,
) -> String {
    c.sync_until(since, what, WAIT, check).await
}

/// One `/sync` that is not answered from a cache: Synapse keeps identical sync responses
/// for two minutes (`sync_response_cache_duration`), so each call gets its own (harmless)
/// inline filter.
pub async fn fresh_sync(c: &Client, since: Option<&str>) -> Value {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let filter = json!({"room": {"timeline": {"limit": 10 + n}}}).to_string();
    c.sync(since, 0, Some(&filter)).await
}

/// A `next_batch` to sync from.
pub async fn next_batch(c: &Client) -> String {
    fresh_sync(c, None).await["next_batch"].as_str().expect("next_batch").to_string()
}
