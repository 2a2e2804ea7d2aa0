//! Every inbound query endpoint refuses forged, misdirected and unsigned requests with 401
//! before doing any work; every outbound query respects `federation_domain_whitelist`.

use glia_harness::federation::FakeServer;
use serde_json::{Value, json};

use crate::support::{one_trusting, server_of};

/// Forged (another server's key), misdirected (wrong destination) and unsigned requests
/// to the user-key, public-room and media endpoints: all 401 M_UNAUTHORIZED.
#[tokio::test]
async fn test_inbound_queries_refuse_bad_signatures() {
    let Some(d) = one_trusting("allow_public_rooms_over_federation: true\n").await else {
        return;
    };
    let alice = d.register_user(0, "alice").await;
    let dest = server_of(&alice.user_id);
    let base = d.hs(0).base_url.clone();
    let (fake, other) = (FakeServer::start().await, FakeServer::start().await);
    let devices = format!(
        "/_matrix/federation/v1/user/devices/{}",
        glia_harness::client::encode_segment(&alice.user_id)
    );
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", devices, None),
        (
            "POST",
            "/_matrix/federation/v1/user/keys/query".into(),
            Some(json!({"device_keys": {&alice.user_id: []}})),
        ),
        (
            "POST",
            "/_matrix/federation/v1/user/keys/claim".into(),
            Some(json!({"one_time_keys": {&alice.user_id: {"D": "signed_curve25519"}}})),
        ),
        ("GET", "/_matrix/federation/v1/publicRooms".into(), None),
        ("POST", "/_matrix/federation/v1/publicRooms".into(), Some(json!({}))),
        ("GET", "/_matrix/federation/v1/media/download/abc".into(), None),
        ("GET", "/_matrix/federation/v1/media/thumbnail/abc?width=1&height=1".into(), None),
    ];
    for (method, path, body) in cases {
        let forged = other
            .x_matrix(method, &path, &dest, body.as_ref())
            .replace(&other.server_name, &fake.server_name);
        let misdirected = fake.x_matrix(method, &path, "elsewhere.example", body.as_ref());
        let other_body = fake.x_matrix(method, &path, &dest, Some(&json!({"changed": true})));
        for auth in [Some(forged), Some(misdirected), Some(other_body), None] {
            let r = fake.raw_request(&base, method, &path, body.clone(), auth).await;
            r.must_error(401, "M_UNAUTHORIZED");
        }
        // The same request, signed properly, gets past authentication.
        let r = fake.request(&base, &dest, method, &path, body.clone()).await;
        assert_ne!(r.status, 401, "{}: {}", r.what, r.text());
    }
    d.destroy().await;
}

/// With `federation_domain_whitelist` naming no one, aliases, room lists, keys and notary
/// lookups of other servers are refused without contacting them.
#[tokio::test]
async fn test_outbound_queries_respect_whitelist() {
    let fake = FakeServer::start().await;
    fake.on("GET", "/", |_| (200, json!({"room_id": "!a:b", "chunk": []})));
    fake.on("POST", "/", |_| (200, json!({})));
    let Some(d) = one_trusting("federation_domain_whitelist: []\n").await else { return };
    let bob = d.register_user(0, "bob").await;
    let remote = &fake.server_name;
    let alias = format!("#room:{remote}");
    bob.get(&["_matrix", "client", "v3", "directory", "room", &alias])
        .await
        .must_error(403, "M_FORBIDDEN");
    let q = format!("?server={}", glia_harness::client::encode_segment(remote));
    bob.get(&["_matrix", "client", "v3", "publicRooms", &q]).await.must_error(403, "M_FORBIDDEN");
    let eve = format!("@eve:{remote}");
    let r = bob
        .request(
            "POST",
            &["_matrix", "client", "v3", "keys", "query"],
            json!({"device_keys": {&eve: []}}),
        )
        .await
        .must_status(200);
    assert_eq!(r["failures"][remote]["status"], 403, "{r}");
    let r = bob
        .request(
            "POST",
            &["_matrix", "client", "v3", "keys", "claim"],
            json!({"one_time_keys": {&eve: {"D": "signed_curve25519"}}}),
        )
        .await
        .must_status(200);
    assert_eq!(r["failures"][remote]["status"], 403, "{r}");
    let r = d.client(0).get(&["_matrix", "key", "v2", "query", remote]).await.must_status(200);
    assert_eq!(r["server_keys"], json!([]), "{r}");
    assert!(fake.received.lock().expect("received").is_empty(), "nothing reached {remote}");
    d.destroy().await;
}
