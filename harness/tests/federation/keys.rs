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
    assert!(body["old_verify_keys"].is_object(), "{body}");
    d.destroy().await;
}

/// `old_signing_keys` (Synapse's key): rotated keys are listed under `old_verify_keys`
/// with their `expired_ts`, and the response still verifies with the current key.
#[tokio::test]
async fn test_inbound_federation_keys_lists_old_keys() {
    let yaml = "old_signing_keys:\n  \"ed25519:retired\": \
                {key: \"l8Hft5qXKn1vfHrg3p4+W8gELQVo8N13JkluMfmn2sQ\", expired_ts: 1600000000000}\n";
    let cfg = glia_harness::HsConfig { extra_yaml: yaml.into(), ..Default::default() };
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    let body = d.client(0).get(&["_matrix", "key", "v2", "server"]).await.must_status(200);
    assert_eq!(
        body["old_verify_keys"]["ed25519:retired"],
        serde_json::json!({"key": "l8Hft5qXKn1vfHrg3p4+W8gELQVo8N13JkluMfmn2sQ", "expired_ts": 1600000000000i64}),
        "{body}"
    );
    assert!(body["verify_keys"].get("ed25519:retired").is_none(), "{body}");
    verify_self_signed(&body);
    d.destroy().await;
}

/// Check a key response verifies with its own `verify_keys`.
pub fn verify_self_signed(body: &serde_json::Value) {
    let server = body["server_name"].as_str().expect("server_name");
    for (id, k) in body["verify_keys"].as_object().expect("verify_keys") {
        assert_signed_by(body, server, id, k["key"].as_str().expect("key"));
    }
}

/// Check `v` carries a valid signature of `signer` by `key_id` = `key` (others may have
/// signed it too).
pub fn assert_signed_by(v: &serde_json::Value, signer: &str, key_id: &str, key: &str) {
    let mut set = PublicKeySet::new();
    set.insert(key_id.into(), ruma::serde::Base64::parse(key).expect("unpadded base64 key"));
    let mut map = PublicKeyMap::new();
    map.insert(signer.into(), set);
    let mut obj: ruma::canonical_json::CanonicalJsonObject =
        serde_json::from_value(v.clone()).expect("canonical");
    // ruma checks every entity that signed: keep the signer's signatures only, and make
    // sure there are some.
    assert!(v["signatures"][signer].is_object(), "signed by {signer}: {v}");
    if let Some(ruma::canonical_json::CanonicalJsonValue::Object(sigs)) = obj.get_mut("signatures")
    {
        sigs.retain(|name, _| name == signer);
    }
    ruma::signatures::verify_json(&map, &obj)
        .unwrap_or_else(|e| panic!("not signed by {signer}: {e}: {v}"));
}
