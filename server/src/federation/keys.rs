//! `/_matrix/key/v2/server`: the server's verify keys, signed by themselves.

use ruma::canonical_json::CanonicalJsonObject;
use serde_json::json;

use crate::config::OldSigningKey;
use crate::error::{Error, Result};
use crate::keys::SigningKey;

/// How long other servers may cache our key response (Synapse: 1 day by default; the spec
/// asks for at most 7 days).
pub const KEY_VALIDITY_MS: i64 = 24 * 60 * 60 * 1000;

/// The signed key response, valid until `now_ms + KEY_VALIDITY_MS`.
pub fn server_keys(
    server_name: &str,
    key: &SigningKey,
    now_ms: i64,
) -> Result<CanonicalJsonObject> {
    server_keys_with_old(server_name, key, &[], now_ms)
}

/// [`server_keys`] listing `old` (`old_signing_keys`) as `old_verify_keys`.
pub fn server_keys_with_old(
    server_name: &str,
    key: &SigningKey,
    old: &[OldSigningKey],
    now_ms: i64,
) -> Result<CanonicalJsonObject> {
    let old: serde_json::Map<String, serde_json::Value> = old
        .iter()
        .map(|k| (k.key_id.clone(), json!({"key": k.key, "expired_ts": k.expired_ts})))
        .collect();
    let v = json!({
        "server_name": server_name,
        "valid_until_ts": now_ms + KEY_VALIDITY_MS,
        "verify_keys": {format!("ed25519:{}", key.version): {"key": key.public_key_base64()}},
        "old_verify_keys": old,
    });
    let mut obj: CanonicalJsonObject = serde_json::from_value(v).map_err(Error::internal)?;
    ruma::signatures::sign_json(server_name, &key.pair, &mut obj).map_err(Error::internal)?;
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruma::signatures::{PublicKeyMap, PublicKeySet};

    #[test]
    fn key_response_verifies_with_its_own_key() {
        let seed = [7u8; 32];
        let key = SigningKey::from_seed("a_test", &seed).expect("key");
        let obj = server_keys("example.org", &key, 1_000).expect("response");
        let v: serde_json::Value = serde_json::to_value(&obj).expect("json");
        assert_eq!(v["valid_until_ts"], 1_000 + KEY_VALIDITY_MS);
        assert_eq!(v["verify_keys"]["ed25519:a_test"]["key"], key.public_key_base64());
        let mut set = PublicKeySet::new();
        set.insert(
            "ed25519:a_test".into(),
            ruma::serde::Base64::new(key.pair.public_key().to_vec()),
        );
        let mut map = PublicKeyMap::new();
        map.insert("example.org".into(), set);
        ruma::signatures::verify_json(&map, &obj).expect("self-signed");
    }
}
