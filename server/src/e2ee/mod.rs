//! End-to-end encryption plumbing (spec: client-server API, "End-to-End Encryption" and
//! "Send-to-Device messaging"). The server stores and relays what clients upload and never
//! looks inside encrypted payloads; it only checks shapes, owners and, for cross-signing,
//! the ed25519 signatures the spec asks it to verify.
//!
//! - [`keys`] serves `/keys/upload`, `/keys/query`, `/keys/claim`, `/keys/changes`;
//! - [`cross_signing`] serves `/keys/device_signing/upload`, `/keys/signatures/upload`;
//! - [`to_device`] serves `/sendToDevice`;
//! - [`backup`] serves server-side key backups (`/room_keys/...`).
//!
//! Writes that clients learn about through `/sync` advance the `device_lists` or
//! `to_device` stream inside the same writer job, and notify after the commit.

pub mod backup;
pub mod cross_signing;
pub mod keys;
pub mod remote_devices;
pub mod to_device;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ruma::signatures::SigningKeyAlgorithm;
use serde_json::{Map, Value};

use crate::error::{Error, Result, bad_json};

pub type Object = Map<String, Value>;

/// `v` as an object, else 400 `M_BAD_JSON` naming `what`.
pub(crate) fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Object> {
    v.as_object().ok_or_else(|| bad_json(format!("'{what}' must be an object")))
}

/// A `signatures` block: user ID -> key ID -> signature string.
pub(crate) fn check_signatures(v: &Value, what: &str) -> Result<()> {
    let bad = || bad_json(format!("'{what}' must map user IDs to key IDs to signatures"));
    for per_user in v.as_object().ok_or_else(bad)?.values() {
        if !per_user.as_object().ok_or_else(bad)?.values().all(Value::is_string) {
            return Err(bad());
        }
    }
    Ok(())
}

/// `<algorithm>:<key_id>`, with exactly one colon, as Synapse requires of one-time and
/// fallback key IDs.
pub(crate) fn split_key_id(s: &str) -> Result<(&str, &str)> {
    match s.split_once(':') {
        Some((alg, id)) if !alg.is_empty() && !id.is_empty() && !id.contains(':') => Ok((alg, id)),
        _ => Err(bad_json(format!("Invalid key ID {s:?}: expected \"<algorithm>:<key_id>\""))),
    }
}

/// A one-time or fallback key: an unpadded base64 string (unsigned keys), or a key object
/// with a string `key`, `signatures`, and for fallback keys a boolean `fallback`.
pub(crate) fn check_key_object(v: &Value, what: &str) -> Result<()> {
    match v {
        Value::String(_) => Ok(()),
        Value::Object(o) => {
            if !o.get("key").is_some_and(Value::is_string) {
                return Err(bad_json(format!("{what}: 'key' must be a string")));
            }
            check_signatures(
                o.get("signatures")
                    .ok_or_else(|| bad_json(format!("{what}: missing 'signatures'")))?,
                &format!("{what}.signatures"),
            )?;
            match o.get("fallback") {
                None | Some(Value::Bool(_)) => Ok(()),
                Some(_) => Err(bad_json(format!("{what}: 'fallback' must be a boolean"))),
            }
        }
        _ => Err(bad_json(format!("{what} must be a string or a key object"))),
    }
}

/// Decode standard base64, padded or not (clients send unpadded, some libraries pad).
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// The object without `signatures` and `unsigned`: what a signature covers, and what an
/// uploaded signed copy must share with the stored original.
pub(crate) fn signed_part(v: &Value) -> Option<Object> {
    let mut o = v.as_object()?.clone();
    o.remove("signatures");
    o.remove("unsigned");
    Some(o)
}

/// Check `object.signatures[user_id][key_id]` with the ed25519 public key `public_key`
/// (unpadded base64). The error says what is wrong, for the client.
pub(crate) fn verify_signature(
    object: &Value,
    user_id: &str,
    key_id: &str,
    public_key: &str,
) -> std::result::Result<(), String> {
    let sig = object
        .get("signatures")
        .and_then(|s| s.get(user_id))
        .and_then(|s| s.get(key_id))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("No signature by {key_id} of {user_id}"))?;
    let sig = decode_base64(sig).ok_or("Signature is not base64")?;
    let key = decode_base64(public_key).ok_or("Public key is not base64")?;
    let Value::Object(map) = object else { return Err("Signed JSON must be an object".into()) };
    let canonical = ruma::canonical_json::try_from_json_map(map.clone())
        .map_err(|e| format!("Signed JSON is not canonical JSON: {e}"))?;
    let text = ruma::signatures::to_canonical_json_string_for_signing(&canonical)
        .map_err(|e| format!("Signed JSON is not canonical JSON: {e}"))?;
    ruma::signatures::verify_canonical_json_bytes(
        &SigningKeyAlgorithm::Ed25519,
        &key,
        &sig,
        text.as_bytes(),
    )
    .map_err(|_| "Invalid signature".to_string())
}

/// A failure entry for `failures` maps (spec: an Error object).
pub(crate) fn failure(e: &Error) -> Value {
    serde_json::json!({"errcode": e.errcode(), "error": e.to_string()})
}

/// Parse stored JSON text (written by Glia itself).
pub(crate) fn parse_stored(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::internal(format!("stored key JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruma::signatures::{Ed25519KeyPair, KeyPair};
    use serde_json::json;

    #[test]
    fn key_ids_and_key_objects() {
        assert_eq!(
            split_key_id("signed_curve25519:AAAAHg").ok(),
            Some(("signed_curve25519", "AAAAHg"))
        );
        for bad in ["", "x", ":a", "a:", "a:b:c"] {
            assert!(split_key_id(bad).is_err(), "{bad}");
        }
        assert!(check_key_object(&json!("abc"), "k").is_ok());
        assert!(
            check_key_object(
                &json!({"key": "abc", "signatures": {"@a:b": {"ed25519:D": "s"}}}),
                "k"
            )
            .is_ok()
        );
        assert!(
            check_key_object(&json!({"key": "abc", "signatures": {}, "fallback": true}), "k")
                .is_ok()
        );
        for bad in [
            json!(1),
            json!({"key": 1, "signatures": {}}),
            json!({"key": "abc"}),
            json!({"key": "abc", "signatures": {"@a:b": "s"}}),
            json!({"key": "abc", "signatures": {"@a:b": {"k": 1}}}),
            json!({"key": "abc", "signatures": {}, "fallback": "yes"}),
        ] {
            assert_eq!(
                check_key_object(&bad, "k").map_err(|e| e.errcode()),
                Err("M_BAD_JSON"),
                "{bad}"
            );
        }
    }

    #[test]
    fn signatures_verify_over_canonical_json_without_signatures_and_unsigned() {
        let doc = Ed25519KeyPair::generate();
        let pair = Ed25519KeyPair::from_der(&doc, "DEVICE".into()).expect("key");
        let public = STANDARD_NO_PAD.encode(pair.public_key());
        let mut obj = json!({"user_id": "@a:b", "keys": {"ed25519:DEVICE": public}, "b": [1, "x"]});
        let canonical =
            ruma::canonical_json::try_from_json_map(obj.as_object().cloned().expect("object"))
                .expect("canonical");
        let text =
            ruma::signatures::to_canonical_json_string_for_signing(&canonical).expect("text");
        let sig = pair.sign(text.as_bytes());
        obj["signatures"] = json!({"@a:b": {"ed25519:DEVICE": sig.base64()}});
        obj["unsigned"] = json!({"device_display_name": "not covered"});
        assert_eq!(verify_signature(&obj, "@a:b", "ed25519:DEVICE", &public), Ok(()));
        // Padded base64 is accepted too.
        assert_eq!(verify_signature(&obj, "@a:b", "ed25519:DEVICE", &format!("{public}=")), Ok(()));
        let mut tampered = obj.clone();
        tampered["b"] = json!([2]);
        assert!(verify_signature(&tampered, "@a:b", "ed25519:DEVICE", &public).is_err());
        assert!(verify_signature(&obj, "@a:b", "ed25519:OTHER", &public).is_err());
        assert!(verify_signature(&obj, "@a:b", "ed25519:DEVICE", "not base64!").is_err());
        let mut float = obj.clone();
        float["f"] = json!(0.5);
        assert!(
            verify_signature(&float, "@a:b", "ed25519:DEVICE", &public).is_err(),
            "floats are not canonical"
        );
    }
}
