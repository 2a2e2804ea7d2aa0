//! Cross-signing: `POST /keys/device_signing/upload` and `POST /keys/signatures/upload`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Object, decode_base64, failure, object, parse_stored, signed_part, verify_signature};
use crate::app::App;
use crate::error::{Error, Result, forbidden, invalid_param, missing_param, not_found};
use crate::http::auth::User;
use crate::store::{device_lists, e2e_keys};
use crate::users::uia;

/// The request fields and the key types they carry.
const KEY_FIELDS: [(&str, &str); 3] = [
    ("master_key", "master"),
    ("self_signing_key", "self_signing"),
    ("user_signing_key", "user_signing"),
];

/// Check a cross-signing key object for `user_id` and `usage`; return its public key (the
/// unpadded base64 of one ed25519 key, also the name part of its key ID).
fn check_cross_signing_key(key: &Value, user_id: &str, usage: &str) -> Result<String> {
    let invalid = || invalid_param(format!("Invalid {usage} key"));
    let o = key.as_object().ok_or_else(invalid)?;
    if o.get("user_id").and_then(Value::as_str) != Some(user_id) {
        return Err(invalid());
    }
    if !o.get("usage").and_then(Value::as_array).is_some_and(|u| u.iter().any(|x| x == usage)) {
        return Err(invalid());
    }
    let keys = o.get("keys").and_then(Value::as_object).ok_or_else(invalid)?;
    let mut it = keys.iter();
    let (Some((id, value)), None) = (it.next(), it.next()) else { return Err(invalid()) };
    let public = value.as_str().ok_or_else(invalid)?;
    if id.strip_prefix("ed25519:") != Some(public)
        || decode_base64(public).is_none_or(|b| b.len() != 32)
    {
        return Err(invalid());
    }
    if let Some(s) = o.get("signatures") {
        super::check_signatures(s, &format!("{usage} key signatures")).map_err(|_| invalid())?;
    }
    Ok(public.to_string())
}

/// `POST /keys/device_signing/upload`, as Synapse does it: keys identical to the stored
/// ones are a no-op; the first upload needs no user-interactive auth (spec v1.11, MSC3967);
/// replacing keys that exist needs the account password.
pub async fn upload_keys(app: &App, user: &User, body: &Object) -> Result<()> {
    let mut given: Vec<(&'static str, Value)> = vec![];
    for (field, key_type) in KEY_FIELDS {
        if let Some(v) = body.get(field) {
            object(v, field)?;
            given.push((key_type, v.clone()));
        }
    }
    let nid = user.user_nid;
    let stored: BTreeMap<&'static str, e2e_keys::CrossSigningKey> = app
        .db
        .read(move |c| {
            let mut m = BTreeMap::new();
            for (_, t) in KEY_FIELDS {
                if let Some(k) = e2e_keys::cross_signing_key(c, nid, t)? {
                    m.insert(t, k);
                }
            }
            Ok(m)
        })
        .await?;
    let mut different = false;
    for (t, v) in &given {
        match stored.get(t) {
            Some(k) if parse_stored(&k.key_json)? == *v => {}
            _ => different = true,
        }
    }
    if !different {
        // Nothing new (a retry whose response was lost): succeed without a UIA prompt.
        return Ok(());
    }
    if stored.contains_key("master") {
        app.uia
            .check(
                app,
                body.get("auth"),
                &[&[uia::PASSWORD]],
                Some(user),
                "POST /keys/device_signing/upload",
            )
            .await?;
    }

    let key = |t: &str| given.iter().find(|(k, _)| *k == t).map(|(_, v)| v);
    let master_public = match key("master") {
        Some(m) => check_cross_signing_key(m, &user.user_id, "master")?,
        None => match stored.get("master") {
            Some(k) => k.public_key.clone(),
            None => return Err(missing_param("No master key available")),
        },
    };
    let mut to_store = vec![];
    for (t, v) in &given {
        let public = check_cross_signing_key(v, &user.user_id, t)?;
        if *t != "master" {
            verify_signature(v, &user.user_id, &format!("ed25519:{master_public}"), &master_public)
                .map_err(|e| {
                    Error::InvalidSignature(format!("Invalid signature on {t} key: {e}"))
                })?;
        }
        to_store.push((*t, public, serde_json::to_string(v).map_err(Error::internal)?));
    }
    let user_id = user.user_id.clone();
    app.db
        .write(move |c| {
            let mut public_change = false;
            for (t, public, json) in &to_store {
                if e2e_keys::is_device_id(c, nid, public)? {
                    return Err(forbidden("Key ID in use"));
                }
                e2e_keys::set_cross_signing_key(c, nid, t, public, json)?;
                public_change |= *t != "user_signing";
            }
            if public_change {
                device_lists::changed(c, nid)?;
            } else {
                // Only the user-signing key: only its owner needs to know.
                device_lists::changed_for(c, &user_id, std::slice::from_ref(&user_id))?;
            }
            Ok(())
        })
        .await?;
    app.notifier.notify();
    Ok(())
}

/// A signature to store once verified.
enum NewSignature {
    /// Of one of the uploader's devices, by their self-signing key.
    Device { device_nid: i64, key_id: String, signature: String },
    /// Of a cross-signing key (`target_key`, a public key) of `target_nid`.
    Key { target_nid: i64, target_key: String, key_id: String, signature: String },
}

/// What the uploader's own keys look like on the server.
struct OwnKeys {
    self_signing: Option<e2e_keys::CrossSigningKey>,
    master: Option<e2e_keys::CrossSigningKey>,
    user_signing: Option<e2e_keys::CrossSigningKey>,
    /// device ID -> (nid, stored keys, existing self-signing signatures' key IDs)
    devices: BTreeMap<String, (i64, Value, Vec<String>)>,
}

/// `POST /keys/signatures/upload`: verify each signature and store the good ones; the
/// others are reported per user and key ID in `failures`, as Synapse does.
pub async fn upload_signatures(app: &App, user: &User, body: &Object) -> Result<Value> {
    for per_user in body.values() {
        let per_user = per_user
            .as_object()
            .ok_or_else(|| invalid_param("Each user must map key IDs to signed objects"))?;
        if !per_user.values().all(Value::is_object) {
            return Err(invalid_param("Each signed key must be an object"));
        }
    }
    let me = user.user_id.clone();
    let nid = user.user_nid;
    let targets: Vec<String> = body.keys().filter(|u| **u != me).cloned().collect();
    let (own, others) = app
        .db
        .read(move |c| {
            let mut devices = BTreeMap::new();
            for d in e2e_keys::devices_with_keys(c, nid, None)? {
                let sigs = e2e_keys::device_signatures(c, d.device_nid)?;
                let v = parse_stored(&d.key_json)?;
                devices.insert(
                    d.device_id,
                    (d.device_nid, v, sigs.into_iter().map(|(k, _)| k).collect()),
                );
            }
            let own = OwnKeys {
                self_signing: e2e_keys::cross_signing_key(c, nid, "self_signing")?,
                master: e2e_keys::cross_signing_key(c, nid, "master")?,
                user_signing: e2e_keys::cross_signing_key(c, nid, "user_signing")?,
                devices,
            };
            // Other users' master keys, with the signatures `me` already made of them.
            let mut others = BTreeMap::new();
            for t in targets {
                let Some(tnid) = e2e_keys::user_nid(c, &t)? else { continue };
                let Some(k) = e2e_keys::cross_signing_key(c, tnid, "master")? else { continue };
                let mine = e2e_keys::key_signatures(c, tnid, &k.public_key, &me)?;
                others.insert(t, (tnid, k, mine.into_iter().map(|(k, _)| k).collect::<Vec<_>>()));
            }
            Ok((own, others))
        })
        .await?;

    let mut failures = serde_json::Map::new();
    let mut fail = |user_id: &str, key_id: &str, e: Error| {
        let entry = failures.entry(user_id.to_string()).or_insert_with(|| json!({}));
        if let Some(m) = entry.as_object_mut() {
            m.insert(key_id.to_string(), failure(&e));
        }
    };
    let mut new = vec![];
    let mut own_changed = false;
    let mut signed_others = vec![];
    for (target, keys) in body {
        let keys = keys.as_object().map(|k| k.iter().collect::<Vec<_>>()).unwrap_or_default();
        if *target == user.user_id {
            for (key_id, signed) in keys {
                match own_signature(user, &own, key_id, signed) {
                    Ok(sigs) => {
                        own_changed |= !sigs.is_empty();
                        new.extend(sigs);
                    }
                    Err(e) => fail(target, key_id, e),
                }
            }
            continue;
        }
        let Some(usk) = &own.user_signing else {
            for (key_id, _) in keys {
                fail(target, key_id, not_found("No user_signing key found"));
            }
            continue;
        };
        let Some((tnid, master, existing)) = others.get(target) else {
            for (key_id, _) in keys {
                fail(target, key_id, not_found(format!("No master key found for {target}")));
            }
            continue;
        };
        for (key_id, signed) in keys {
            if *key_id != master.public_key {
                fail(target, key_id, not_found("Unknown device"));
                continue;
            }
            let usk_id = format!("ed25519:{}", usk.public_key);
            if existing.contains(&usk_id) {
                continue;
            }
            let checked = check_signed_copy(
                signed,
                &parse_stored(&master.key_json)?,
                &user.user_id,
                &usk_id,
                &usk.public_key,
            );
            match checked {
                Ok(signature) => {
                    new.push(NewSignature::Key {
                        target_nid: *tnid,
                        target_key: master.public_key.clone(),
                        key_id: usk_id,
                        signature,
                    });
                    signed_others.push(target.clone());
                }
                Err(e) => fail(target, key_id, e),
            }
        }
    }

    if !new.is_empty() {
        let me = user.user_id.clone();
        app.db
            .write(move |c| {
                for s in &new {
                    match s {
                        NewSignature::Device { device_nid, key_id, signature } => {
                            e2e_keys::add_device_signature(c, *device_nid, key_id, signature)?
                        }
                        NewSignature::Key { target_nid, target_key, key_id, signature } => {
                            e2e_keys::add_key_signature(
                                c,
                                *target_nid,
                                target_key,
                                &me,
                                key_id,
                                signature,
                            )?
                        }
                    }
                }
                if own_changed {
                    device_lists::changed(c, nid)?;
                }
                if !signed_others.is_empty() {
                    device_lists::changed_for(c, &me, &signed_others)?;
                }
                Ok(())
            })
            .await?;
        app.notifier.notify();
    }
    Ok(json!({"failures": failures}))
}

/// The uploaded copy must be the stored object (apart from signatures) and carry a valid
/// signature by `key_id`; returns that signature.
fn check_signed_copy(
    signed: &Value,
    stored: &Value,
    signer: &str,
    key_id: &str,
    public_key: &str,
) -> Result<String> {
    if signed_part(signed) != signed_part(stored) {
        return Err(Error::InvalidParam("Key does not match".into()));
    }
    verify_signature(signed, signer, key_id, public_key).map_err(Error::InvalidSignature)?;
    signed
        .get("signatures")
        .and_then(|s| s.get(signer))
        .and_then(|s| s.get(key_id))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::InvalidSignature("Invalid signature".into()))
}

/// Signatures of the uploader's own keys: a device signed by the self-signing key, or the
/// master key signed by one of their devices.
fn own_signature(
    user: &User,
    own: &OwnKeys,
    key_id: &str,
    signed: &Value,
) -> Result<Vec<NewSignature>> {
    let me = user.user_id.as_str();
    let (Some(ssk), Some(master)) = (&own.self_signing, &own.master) else {
        return Err(not_found("No self_signing key found"));
    };
    let Some(my_sigs) = signed.get("signatures").and_then(|s| s.get(me)).and_then(Value::as_object)
    else {
        return Err(Error::InvalidSignature("Invalid signature".into()));
    };
    if key_id == master.public_key {
        // The master key, signed by devices. Signatures already in the stored key are not
        // new; every other ed25519 one must come from a device of the user.
        let stored = parse_stored(&master.key_json)?;
        let mut out = vec![];
        for (signing_key_id, sig) in my_sigs {
            if stored.get("signatures").and_then(|s| s.get(me)).and_then(|s| s.get(signing_key_id))
                == Some(sig)
            {
                continue;
            }
            let Some(device_id) = signing_key_id.strip_prefix("ed25519:") else { continue };
            let Some(pubkey) = own
                .devices
                .get(device_id)
                .and_then(|(_, keys, _)| keys.get("keys")?.get(signing_key_id)?.as_str())
            else {
                return Err(Error::InvalidSignature("Invalid signature".into()));
            };
            let signature = check_signed_copy(signed, &stored, me, signing_key_id, pubkey)?;
            out.push(NewSignature::Key {
                target_nid: user.user_nid,
                target_key: master.public_key.clone(),
                key_id: signing_key_id.clone(),
                signature,
            });
        }
        return Ok(out);
    }
    // A device, by the self-signing key.
    let ssk_id = format!("ed25519:{}", ssk.public_key);
    if !my_sigs.contains_key(&ssk_id) {
        return Err(Error::InvalidSignature("Invalid signature".into()));
    }
    let Some((device_nid, stored, existing)) = own.devices.get(key_id) else {
        return Err(not_found("Unknown device"));
    };
    if existing.contains(&ssk_id) {
        return Ok(vec![]);
    }
    let signature = check_signed_copy(signed, stored, me, &ssk_id, &ssk.public_key)?;
    Ok(vec![NewSignature::Device { device_nid: *device_nid, key_id: ssk_id, signature }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_signing_key_shape() {
        let public = "A".repeat(43); // 32 bytes of zeros, unpadded base64
        let good = json!({"user_id": "@a:b", "usage": ["master"], "keys": {format!("ed25519:{public}"): public}});
        assert_eq!(check_cross_signing_key(&good, "@a:b", "master").ok(), Some(public.clone()));
        let mut wrong_user = good.clone();
        wrong_user["user_id"] = json!("@c:d");
        let mut wrong_usage = good.clone();
        wrong_usage["usage"] = json!(["self_signing"]);
        let mut two_keys = good.clone();
        two_keys["keys"]["ed25519:other"] = json!("other");
        let mut mismatched = good.clone();
        mismatched["keys"] = json!({"ed25519:other": public});
        let mut short = good.clone();
        short["keys"] = json!({"ed25519:AAAA": "AAAA"});
        let mut curve = good.clone();
        curve["keys"] = json!({format!("curve25519:{public}"): public});
        for bad in [wrong_user, wrong_usage, two_keys, mismatched, short, curve, json!("x")] {
            let e = check_cross_signing_key(&bad, "@a:b", "master").expect_err("invalid");
            assert_eq!(e.errcode(), "M_INVALID_PARAM", "{bad}");
        }
    }

    #[test]
    fn a_signed_copy_must_match_the_stored_object() {
        let stored = json!({"user_id": "@a:b", "keys": {"ed25519:D": "k"}, "signatures": {"@a:b": {"ed25519:D": "x"}}});
        let changed = json!({"user_id": "@a:b", "keys": {"ed25519:D": "other"}, "signatures": {}});
        let e =
            check_signed_copy(&changed, &stored, "@a:b", "ed25519:S", "AAAA").expect_err("differs");
        assert_eq!(e.errcode(), "M_INVALID_PARAM");
        let unsigned = json!({"user_id": "@a:b", "keys": {"ed25519:D": "k"}, "unsigned": {"x": 1}});
        let e =
            check_signed_copy(&unsigned, &stored, "@a:b", "ed25519:S", "AAAA").expect_err("no sig");
        assert_eq!(e.errcode(), "M_INVALID_SIGNATURE");
    }
}
