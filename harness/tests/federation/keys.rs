//! `/_matrix/key/v2/server` (Complement: TestInboundFederationKeys) and `/version`.

use glia_harness::Deployment;
use ruma::signatures::{PublicKeyMap, PublicKeySet};

/// The key response names the server, is valid for a while, and verifies with its own key.
#[tokio::test]
async fn test_inbound_federation_keys() {
    let d = Deployment::new(1).await;
    let body = d.client(0).get(&["_matrix", "key", "v2", "server"]).await.must_status(200);
    let server = body["server_name"].as_str().expect("server_name").to_string();
    assert!(body["valid_until_ts"].as_i64().is_some_and(|t| t > 0), "{body}");
    let keys = body["verify_keys"].as_object().expect("verify_keys");
    assert!(!keys.is_empty(), "{body}");
    let mut set = PublicKeySet::new();
    for (id, k) in keys {
        assert!(id.starts_with("ed25519:"), "{id}");
        let b64 = k["key"].as_str().expect("key");
        set.insert(id.clone(), ruma::serde::Base64::parse(b64).expect("unpadded base64 key"));
    }
    let mut map = PublicKeyMap::new();
    map.insert(server.clone(), set);
    let obj: ruma::canonical_json::CanonicalJsonObject =
        serde_json::from_value(body.clone()).expect("canonical");
    ruma::signatures::verify_json(&map, &obj).expect("the response is signed by its own key");
    assert!(body["signatures"][&server].is_object(), "{body}");
    d.destroy().await;
}

#[tokio::test]
async fn test_federation_version() {
    let d = Deployment::new(1).await;
    let body = d.client(0).get(&["_matrix", "federation", "v1", "version"]).await.must_status(200);
    assert!(body["server"]["name"].is_string() && body["server"]["version"].is_string(), "{body}");
    d.destroy().await;
}
