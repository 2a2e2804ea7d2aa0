//! Rate limits (`rc_*`, Synapse's token buckets): a burst is allowed, the next request is
//! refused 429 `M_LIMIT_EXCEEDED` with `retry_after_ms` and a `Retry-After` header, and
//! allowed again once that time has passed. Admins are exempt, an admin's per-user override
//! lifts the limit, and `X-Forwarded-For` from an untrusted peer changes nothing. These
//! need a Glia configuration, so they skip against external servers.
//!
//! The rates are 1 action a second: slow enough that a loaded test machine cannot drain a
//! bucket between two requests by accident, fast enough that the waits stay short.

use std::time::{Duration, Instant};

use glia_harness::deployment::{admin_register, errcode};
use glia_harness::{Client, Deployment, HsConfig, Response, wait_until};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
const LIMITED: &str = "{per_second: 1, burst_count: 3}";

/// A config with every limit generous but those in `set` (top-level `rc_*` key, value).
fn limits(set: &[(&str, &str)]) -> HsConfig {
    const G: &str = "{per_second: 1000, burst_count: 1000}";
    let defaults = [
        ("rc_message", G.to_string()),
        ("rc_registration", G.to_string()),
        ("rc_login", format!("{{address: {G}, account: {G}, failed_attempts: {G}}}")),
        ("rc_joins", format!("{{local: {G}, remote: {G}}}")),
        ("rc_invites", format!("{{per_room: {G}, per_user: {G}, per_issuer: {G}}}")),
        ("rc_room_creation", G.to_string()),
        ("rc_media_create", G.to_string()),
    ];
    let mut yaml = String::from("rc_disabled: false\n");
    for (key, value) in defaults {
        let value =
            set.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string()).unwrap_or(value);
        yaml.push_str(&format!("{key}: {value}\n"));
    }
    HsConfig { extra_yaml: yaml, ..Default::default() }
}

/// Checks a 429 and returns its `retry_after_ms`, which must be positive and at most
/// `max_ms`, with a `Retry-After` header of the same time in whole seconds (rounded up).
#[track_caller]
fn must_be_limited(r: &Response, max_ms: u64) -> u64 {
    let body = r.must_error(429, "M_LIMIT_EXCEEDED");
    let ms = body["retry_after_ms"].as_u64().unwrap_or_else(|| panic!("retry_after_ms: {body}"));
    assert!(ms > 0 && ms <= max_ms, "retry_after_ms {ms} not in 1..={max_ms}");
    assert_eq!(r.header("retry-after"), Some(ms.div_ceil(1000).to_string().as_str()));
    ms
}

/// Polls `attempt` until it gives 200, and checks that did not happen before the
/// `retry_after_ms` the refusal announced (measured from when the refusal arrived).
async fn allowed_after<F, Fut>(what: &str, refused_at: Instant, retry_ms: u64, attempt: F) -> Value
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let body = wait_until(what, Duration::from_secs(10), || async {
        let r = attempt().await;
        match r.status {
            200 => Some(r.json()),
            429 => None,
            other => panic!("{what}: unexpected {other}: {}", r.text()),
        }
    })
    .await;
    let waited = refused_at.elapsed();
    assert!(
        waited + Duration::from_millis(50) >= Duration::from_millis(retry_ms),
        "{what}: allowed after {waited:?}, before the announced {retry_ms} ms"
    );
    body
}

async fn send(c: &Client, room: &str, n: usize) -> Response {
    send_txn(c, room, n, &format!("rl{n}-{}", glia_harness::client::unique_localpart("t"))).await
}

async fn send_txn(c: &Client, room: &str, n: usize, txn: &str) -> Response {
    c.request(
        "PUT",
        &["_matrix", "client", "v3", "rooms", room, "send", "m.room.message", txn],
        json!({"msgtype": "m.text", "body": format!("message {n}")}),
    )
    .await
}

async fn admin(d: &Deployment) -> Client {
    let name = glia_harness::client::unique_localpart("admin");
    let body = admin_register(d.hs(0), &name, PASSWORD, true).await.must_status(200);
    d.client(0).logged_in(&body, PASSWORD)
}

#[tokio::test]
async fn test_rc_message_burst_retry_admin_and_override() {
    let Some(d) = Deployment::with_config(1, limits(&[("rc_message", LIMITED)])).await else {
        return;
    };
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let admin = admin(&d).await;
    let room = alice.must_create_room(json!({"preset": "public_chat"})).await;
    for c in [&bob, &admin] {
        c.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    }

    // A burst of three, then 429 until a second has drained one.
    let first = send_txn(&alice, &room, 0, "rl-first").await.must_status(200);
    for n in 1..3 {
        send(&alice, &room, n).await.must_status(200);
    }
    let r = send(&alice, &room, 3).await;
    let refused_at = Instant::now();
    let ms = must_be_limited(&r, 1000);
    // A retransmission is not a new message: it gets its event ID back.
    let again = send_txn(&alice, &room, 0, "rl-first").await.must_status(200);
    assert_eq!(again["event_id"], first["event_id"]);
    // Refused requests are not counted: trying again changes nothing.
    must_be_limited(&send(&alice, &room, 4).await, ms);
    allowed_after("alice may send again", refused_at, ms, || send(&alice, &room, 5)).await;
    // Bob has his own bucket.
    for n in 0..3 {
        send(&bob, &room, n).await.must_status(200);
    }
    must_be_limited(&send(&bob, &room, 3).await, 1000);

    // Server admins are not limited.
    for n in 0..10 {
        send(&admin, &room, n).await.must_status(200);
    }

    // An admin's override of 0 messages a second lifts Bob's limit at once.
    let path = ["_synapse", "admin", "v1", "users", bob.user_id.as_str(), "override_ratelimit"];
    admin.must_do("POST", &path, json!({"messages_per_second": 0, "burst_count": 0})).await;
    for n in 10..20 {
        send(&bob, &room, n).await.must_status(200);
    }
    // Deleting it brings the configured limit back (the bucket is still full).
    admin.must_do("DELETE", &path, Value::Null).await;
    must_be_limited(&send(&bob, &room, 30).await, 1000);
    d.destroy().await;
}

async fn register(c: &Client, name: &str, forwarded_for: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> =
        forwarded_for.map(|f| ("X-Forwarded-For", f)).into_iter().collect();
    c.request_with(
        "POST",
        &["_matrix", "client", "v3", "register"],
        json!({"username": name, "password": PASSWORD, "auth": {"type": "m.login.dummy"}}),
        &headers,
    )
    .await
}

#[tokio::test]
async fn test_rc_registration_per_address() {
    let limit = "{per_second: 1, burst_count: 2}";
    let Some(d) = Deployment::with_config(1, limits(&[("rc_registration", limit)])).await else {
        return;
    };
    let c = d.client(0);
    let name = glia_harness::client::unique_localpart("reg");
    for i in 0..2 {
        register(&c, &format!("{name}{i}"), None).await.must_status(200);
    }
    let r = register(&c, &format!("{name}x"), None).await;
    let refused_at = Instant::now();
    let ms = must_be_limited(&r, 1000);
    // The listener has no `x_forwarded`: a client naming another address is still keyed
    // on the address it connects from.
    must_be_limited(&register(&c, &format!("{name}x"), Some("203.0.113.7")).await, ms);
    // Shared-secret registration by the server's admin is not limited.
    admin_register(d.hs(0), &format!("{name}admin"), PASSWORD, false).await.must_status(200);
    let again = format!("{name}x");
    let body =
        allowed_after("registration allowed again", refused_at, ms, || register(&c, &again, None))
            .await;
    assert!(body["user_id"].as_str().expect("user_id").starts_with(&format!("@{name}x:")));
    d.destroy().await;
}

#[tokio::test]
async fn test_rc_login_failed_attempts() {
    let limit = "{failed_attempts: {per_second: 1, burst_count: 2}, address: {per_second: 1000, burst_count: 1000}, account: {per_second: 1000, burst_count: 1000}}";
    let Some(d) = Deployment::with_config(1, limits(&[("rc_login", limit)])).await else {
        return;
    };
    let alice = d.register_user(0, "alice").await;
    let c = d.client(0);
    for _ in 0..2 {
        let r = c.login(&alice.user_id, "wrong password", json!({})).await;
        assert_eq!(errcode(&r.must_status(403)), "M_FORBIDDEN");
    }
    // Even the right password is refused now, until a failure has drained.
    let r = c.login(&alice.user_id, PASSWORD, json!({})).await;
    let refused_at = Instant::now();
    let ms = must_be_limited(&r, 1000);
    // Another account is not affected.
    let bob = d.register_user(0, "bob").await;
    c.login(&bob.user_id, PASSWORD, json!({})).await.must_status(200);
    let body = allowed_after("login allowed again", refused_at, ms, || {
        c.login(&alice.user_id, PASSWORD, json!({}))
    })
    .await;
    assert_eq!(body["user_id"], alice.user_id);
    d.destroy().await;
}

#[tokio::test]
async fn test_rc_login_address_ignores_untrusted_forwarded_for() {
    let limit = "{address: {per_second: 1, burst_count: 2}, account: {per_second: 1000, burst_count: 1000}, failed_attempts: {per_second: 1000, burst_count: 1000}}";
    let Some(d) = Deployment::with_config(1, limits(&[("rc_login", limit)])).await else {
        return;
    };
    let alice = d.register_user(0, "alice").await;
    let c = d.client(0);
    for _ in 0..2 {
        c.login(&alice.user_id, PASSWORD, json!({})).await.must_status(200);
    }
    let body = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": alice.user_id},
        "password": PASSWORD,
    });
    let path = ["_matrix", "client", "v3", "login"];
    for spoofed in ["203.0.113.9", "198.51.100.1, 127.0.0.1"] {
        let r = c.request_with("POST", &path, body.clone(), &[("X-Forwarded-For", spoofed)]).await;
        must_be_limited(&r, 1000);
    }
    d.destroy().await;
}

#[tokio::test]
async fn test_rc_room_creation_joins_invites_media_create() {
    let two = "{per_second: 1, burst_count: 2}";
    let generous = "{per_second: 1000, burst_count: 1000}";
    let joins = format!("{{local: {two}, remote: {generous}}}");
    let invites = format!("{{per_room: {generous}, per_user: {generous}, per_issuer: {two}}}");
    let cfg = limits(&[
        ("rc_room_creation", two),
        ("rc_media_create", two),
        ("rc_joins", &joins),
        ("rc_invites", &invites),
    ]);
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let admin = admin(&d).await;
    let create = ["_matrix", "client", "v3", "createRoom"];
    let public = json!({"preset": "public_chat"});

    // rc_room_creation: two rooms, then 429; the admin is not limited.
    let mut rooms = vec![];
    for _ in 0..2 {
        let r = alice.must_do("POST", &create, public.clone()).await;
        rooms.push(r["room_id"].as_str().expect("room_id").to_string());
    }
    must_be_limited(&alice.request("POST", &create, public.clone()).await, 1000);
    let mut admin_rooms = vec![];
    for _ in 0..4 {
        let r = admin.must_do("POST", &create, public.clone()).await;
        admin_rooms.push(r["room_id"].as_str().expect("room_id").to_string());
    }

    // rc_joins.local: Bob joins two rooms, the third waits.
    for room in &admin_rooms[..2] {
        bob.must_do("POST", &["_matrix", "client", "v3", "join", room], json!({})).await;
    }
    let join = ["_matrix", "client", "v3", "join", admin_rooms[2].as_str()];
    must_be_limited(&bob.request("POST", &join, json!({})).await, 1000);

    // rc_invites.per_issuer: Alice invites two users, the third waits.
    let mut invitees = vec![];
    for _ in 0..3 {
        invitees.push(d.register_user(0, "invitee").await.user_id);
    }
    let invite = ["_matrix", "client", "v3", "rooms", rooms[0].as_str(), "invite"];
    for user in &invitees[..2] {
        alice.must_do("POST", &invite, json!({"user_id": user})).await;
    }
    must_be_limited(&alice.request("POST", &invite, json!({"user_id": invitees[2]})).await, 1000);

    // rc_media_create: two pending media IDs, then 429.
    let media = ["_matrix", "media", "v1", "create"];
    for _ in 0..2 {
        alice.must_do("POST", &media, Value::Null).await;
    }
    must_be_limited(&alice.request("POST", &media, Value::Null).await, 1000);
    d.destroy().await;
}
