//! Glia as a notary (`/_matrix/key/v2/query`, GET and POST) and as a client of notaries
//! (`trusted_key_servers`), against fake servers.

use glia_harness::federation::FakeServer;
use serde_json::{Value, json};

use crate::keys::{assert_signed_by, verify_self_signed};
use crate::support::{one_trusting, server_of, unreachable_server};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn key_requests(fake: &FakeServer) -> usize {
    let got = fake.received.lock().expect("received");
    got.iter().filter(|r| r.uri.starts_with("/_matrix/key/v2/server")).count()
}

/// Glia answers for its own keys, by GET and POST, without authentication.
#[tokio::test]
async fn test_notary_serves_own_keys() {
    let Some(d) = one_trusting("").await else { return };
    let c = d.client(0);
    let own = c.get(&["_matrix", "key", "v2", "server"]).await.must_status(200);
    let name = own["server_name"].as_str().expect("name").to_string();
    let r = c.get(&["_matrix", "key", "v2", "query", &name]).await.must_status(200);
    let keys = r["server_keys"].as_array().expect("server_keys");
    assert_eq!(keys.len(), 1, "{r}");
    assert_eq!(keys[0]["verify_keys"], own["verify_keys"]);
    verify_self_signed(&keys[0]);
    let body = json!({"server_keys": {&name: {}}});
    let r = c.request("POST", &["_matrix", "key", "v2", "query"], body).await.must_status(200);
    assert_eq!(r["server_keys"][0]["server_name"], name.as_str(), "{r}");
    d.destroy().await;
}

/// For another server Glia fetches the keys from that server, serves them with both
/// signatures, refetches when asked for a later `minimum_valid_until_ts`, and answers an
/// empty list for servers it cannot reach; bad requests are 400.
#[tokio::test]
async fn test_notary_serves_remote_keys_countersigned() {
    let Some(d) = one_trusting("").await else { return };
    let c = d.client(0);
    let own = c.get(&["_matrix", "key", "v2", "server"]).await.must_status(200);
    let glia = own["server_name"].as_str().expect("name").to_string();
    let (glia_key_id, glia_key) = own["verify_keys"]
        .as_object()
        .and_then(|m| m.iter().next())
        .map(|(id, k)| (id.clone(), k["key"].as_str().expect("key").to_string()))
        .expect("a key");
    let fake = FakeServer::start().await;
    let r = c.get(&["_matrix", "key", "v2", "query", &fake.server_name]).await.must_status(200);
    let resp = &r["server_keys"][0];
    assert_eq!(resp["server_name"], fake.server_name.as_str(), "{r}");
    assert_eq!(resp["verify_keys"][&fake.key_id]["key"], fake.public_key_base64().as_str());
    assert_signed_by(resp, &fake.server_name, &fake.key_id, &fake.public_key_base64());
    assert_signed_by(resp, &glia, &glia_key_id, &glia_key);
    let fetched = key_requests(&fake);
    assert_eq!(fetched, 1, "fetched once");
    // Cached: asking again costs the fake nothing.
    let r = c.get(&["_matrix", "key", "v2", "query", &fake.server_name]).await.must_status(200);
    assert_eq!(r["server_keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(key_requests(&fake), fetched, "served from cache");
    // Wanted valid for longer than the cached response: refetched.
    let later = now_ms() + 2 * 3_600_000;
    let body = json!({"server_keys": {&fake.server_name: {&fake.key_id: {"minimum_valid_until_ts": later}}}});
    let r = c.request("POST", &["_matrix", "key", "v2", "query"], body).await.must_status(200);
    assert_eq!(r["server_keys"][0]["server_name"], fake.server_name.as_str(), "{r}");
    assert_eq!(key_requests(&fake), fetched + 1, "refetched for a later minimum");
    // The deprecated `/query/{serverName}/{keyId}`: a known key from the cache, an
    // unknown one makes Glia ask the server again.
    let r = c.get(&["_matrix", "key", "v2", "query", &fake.server_name, &fake.key_id]).await;
    assert_eq!(r.must_status(200)["server_keys"][0]["server_name"], fake.server_name.as_str());
    assert_eq!(key_requests(&fake), fetched + 1, "served from cache");
    let r = c.get(&["_matrix", "key", "v2", "query", &fake.server_name, "ed25519:nope"]).await;
    assert_eq!(r.must_status(200)["server_keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(key_requests(&fake), fetched + 2, "an unknown key ID is asked for");
    // Servers that cannot be reached, or are no server names at all: nothing.
    let down = unreachable_server();
    let r = c.get(&["_matrix", "key", "v2", "query", &down]).await.must_status(200);
    assert_eq!(r["server_keys"], json!([]), "{r}");
    let r = c.get(&["_matrix", "key", "v2", "query", "bad..name"]).await.must_status(200);
    assert_eq!(r["server_keys"], json!([]), "{r}");
    c.request("POST", &["_matrix", "key", "v2", "query"], json!({"server_keys": [1]}))
        .await
        .must_error(400, "M_BAD_JSON");
    c.request(
        "POST",
        &["_matrix", "key", "v2", "query"],
        json!({"server_keys": {"a": {"k": {"minimum_valid_until_ts": "soon"}}}}),
    )
    .await
    .must_error(400, "M_BAD_JSON");
    c.get(&["_matrix", "key", "v2", "query", &glia, "?minimum_valid_until_ts=x"])
        .await
        .must_error(400, "M_INVALID_PARAM");
    d.destroy().await;
}

/// A fake origin that refuses to serve its own keys.
fn refusing_origin(origin: &FakeServer) {
    origin.on("GET", "/_matrix/key/v2/server", |_| {
        (503, json!({"errcode": "M_UNKNOWN", "error": "keys are on holiday"}))
    });
}

/// A fake notary that answers for `origin` with `response`.
fn notary_answering(notary: &FakeServer, response: Value) {
    notary.on("POST", "/_matrix/key/v2/query", move |_| (200, json!({"server_keys": [response]})));
}

fn trusted(notary: &FakeServer, with_key: bool) -> String {
    let keys = if with_key {
        format!(
            "\n    verify_keys:\n      \"{}\": \"{}\"",
            notary.key_id,
            notary.public_key_base64()
        )
    } else {
        String::new()
    };
    format!("trusted_key_servers:\n  - server_name: \"{}\"{keys}\n", notary.server_name)
}

/// The profile query a fake origin makes to test whether Glia accepted its signature.
async fn origin_asks(d: &glia_harness::Deployment, origin: &FakeServer) -> glia_harness::Response {
    let alice = d.register_user(0, "alice").await;
    let dest = server_of(&alice.user_id);
    let path = format!(
        "/_matrix/federation/v1/query/profile?user_id={}",
        glia_harness::client::encode_segment(&alice.user_id)
    );
    origin.request(&d.hs(0).base_url, &dest, "GET", &path, None).await
}

/// `trusted_key_servers`: when a server does not serve its own keys, Glia asks the
/// notary and accepts an answer signed by both the server and the notary (whose key comes
/// from the config, or from the notary itself when the config names none).
#[tokio::test]
async fn test_key_fetch_falls_back_to_trusted_notary() {
    let origin = FakeServer::start().await;
    refusing_origin(&origin);
    for with_key in [true, false] {
        let notary = FakeServer::start().await;
        notary_answering(&notary, notary.sign_json(&origin.key_response()));
        let Some(d) = one_trusting(&trusted(&notary, with_key)).await else { return };
        origin_asks(&d, &origin).await.must_status(200);
        let asked = notary.received.lock().expect("received").clone();
        let q = asked.iter().find(|r| r.uri == "/_matrix/key/v2/query").expect("notary asked");
        assert!(q.body["server_keys"].get(&origin.server_name).is_some(), "{:?}", q.body);
        d.destroy().await;
    }
}

/// A notary's answer without the notary's signature, or without the origin's, is not
/// believed; with no notaries configured no one is asked. All are 401 for the origin.
#[tokio::test]
async fn test_key_fetch_rejects_unsigned_notary_answers() {
    let origin = FakeServer::start().await;
    refusing_origin(&origin);
    let impostor = FakeServer::start().await;
    let notary = FakeServer::start().await;
    // Signed by the origin only.
    notary_answering(&notary, origin.key_response());
    let Some(d) = one_trusting(&trusted(&notary, true)).await else { return };
    origin_asks(&d, &origin).await.must_error(401, "M_UNAUTHORIZED");
    d.destroy().await;
    // Signed by the notary, but the origin's keys were replaced by someone else's.
    let notary = FakeServer::start().await;
    let mut forged = impostor.key_response();
    forged["server_name"] = json!(origin.server_name);
    notary_answering(&notary, notary.sign_json(&forged));
    let Some(d) = one_trusting(&trusted(&notary, true)).await else { return };
    origin_asks(&d, &origin).await.must_error(401, "M_UNAUTHORIZED");
    d.destroy().await;
    // No notaries.
    let Some(d) = one_trusting("trusted_key_servers: []\n").await else { return };
    origin_asks(&d, &origin).await.must_error(401, "M_UNAUTHORIZED");
    d.destroy().await;
}

/// A key the server rotated to and no longer serves itself (its endpoint shows only the
/// current key): Glia finds it through the notary, signed by the server with that key
/// and countersigned by the notary. Without notaries the request stays 401.
#[tokio::test]
async fn test_rotated_key_found_through_notary() {
    let origin = FakeServer::start().await;
    // The other key pair stands for the origin's other key.
    let other_key = FakeServer::start().await;
    let mut rotated = other_key.key_response();
    rotated["server_name"] = json!(origin.server_name);
    if let Some(o) = rotated.as_object_mut() {
        o.remove("signatures");
    }
    let rotated = other_key.sign_json_as(&origin.server_name, &rotated);
    let notary = FakeServer::start().await;
    notary_answering(&notary, notary.sign_json(&rotated));
    for (notaries, expected) in
        [(trusted(&notary, true), 200), ("trusted_key_servers: []\n".into(), 401)]
    {
        let Some(d) = one_trusting(&notaries).await else { return };
        let alice = d.register_user(0, "alice").await;
        let dest = server_of(&alice.user_id);
        let path = format!(
            "/_matrix/federation/v1/query/profile?user_id={}",
            glia_harness::client::encode_segment(&alice.user_id)
        );
        let auth = other_key.x_matrix_as(&origin.server_name, "GET", &path, &dest, None);
        let r = origin.raw_request(&d.hs(0).base_url, "GET", &path, None, Some(auth)).await;
        assert_eq!(r.status, expected, "{}: {}", r.what, r.text());
        assert!(key_requests(&origin) > 0, "the origin itself was asked first");
        d.destroy().await;
    }
}
