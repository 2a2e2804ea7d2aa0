//! Device identity keys, one-time keys and fallback keys: `/keys/upload`, `/keys/query`,
//! `/keys/claim` and `/keys/changes`.

use std::collections::BTreeMap;
use std::time::Duration;

use ruma::UserId;
use serde_json::{Value, json};

use super::{Object, check_key_object, check_signatures, object, parse_stored, split_key_id};
use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param};
use crate::federation::queries;
use crate::http::auth::User;
use crate::store::{device_lists, e2e_keys, now_ms};
use crate::sync::SyncToken;

/// The most one-time keys of one algorithm a device may hold, as in Synapse: a client that
/// keeps uploading regardless of the count is told, instead of filling the database.
pub const MAX_ONE_TIME_KEYS: i64 = 500;

/// Check the `device_keys` of an upload: the spec's DeviceKeys shape, for the caller's own
/// user and device (400 `M_BAD_JSON` otherwise, as Synapse answers).
fn check_device_keys(v: &Value, user: &User) -> Result<()> {
    let o = object(v, "device_keys")?;
    let string = |k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| bad_json(format!("device_keys.{k} must be a string")))
    };
    if string("user_id")? != user.user_id {
        return Err(bad_json(
            "Provided `user_id` in `device_keys` does not match that of the authenticated user",
        ));
    }
    if string("device_id")? != user.device_id {
        return Err(bad_json(
            "Provided `device_id` in `device_keys` does not match that of the authenticated \
             user device",
        ));
    }
    if !o
        .get("algorithms")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().all(Value::is_string))
    {
        return Err(bad_json("device_keys.algorithms must be a list of strings"));
    }
    if !o.get("keys").and_then(Value::as_object).is_some_and(|k| k.values().all(Value::is_string)) {
        return Err(bad_json("device_keys.keys must map key IDs to keys"));
    }
    check_signatures(
        o.get("signatures").ok_or_else(|| bad_json("device_keys.signatures is required"))?,
        "device_keys.signatures",
    )
}

/// (algorithm, key ID, value) for each entry of a `one_time_keys` / `fallback_keys` map.
fn key_list(body: &Object, field: &str) -> Result<Vec<(String, String, Value)>> {
    let Some(v) = body.get(field) else { return Ok(vec![]) };
    let mut out = vec![];
    for (id, key) in object(v, field)? {
        let (alg, key_id) = split_key_id(id)?;
        check_key_object(key, &format!("{field}.{id}"))?;
        out.push((alg.to_string(), key_id.to_string(), key.clone()));
    }
    Ok(out)
}

/// Whether a stored one-time key and a re-uploaded one are the same key: a retried upload
/// may carry different signatures (as Synapse allows).
fn same_one_time_key(stored: &Value, new: &Value) -> bool {
    match (stored, new) {
        (Value::Object(a), Value::Object(b)) => {
            let (mut a, mut b) = (a.clone(), b.clone());
            a.remove("signatures");
            b.remove("signatures");
            a == b
        }
        (a, b) => a == b,
    }
}

/// `POST /keys/upload`: returns the response body (`one_time_key_counts`).
pub async fn upload(app: &App, user: &User, body: &Object) -> Result<Value> {
    let device_json = match body.get("device_keys") {
        None => None,
        Some(v) => {
            check_device_keys(v, user)?;
            Some(serde_json::to_string(v).map_err(Error::internal)?)
        }
    };
    let one_time = key_list(body, "one_time_keys")?;
    let mut fallback = key_list(body, "fallback_keys")?;
    // One fallback key per algorithm: of several, the last (in key-ID order) is kept.
    fallback.reverse();
    let mut seen = std::collections::BTreeSet::new();
    fallback.retain(|(alg, _, _)| seen.insert(alg.clone()));

    user.require_device()?;
    let (user_nid, device_nid, device_id) =
        (user.user_nid, user.device_nid, user.device_id.clone());
    let (counts, changed) = app
        .db
        .write(move |c| {
            let mut changed = false;
            if let Some(json) = &device_json
                && e2e_keys::set_device_keys(c, device_nid, json, now_ms())?
            {
                device_lists::device_changed(c, user_nid, &device_id)?;
                changed = true;
            }
            let mut new = vec![];
            let mut new_per_algorithm: BTreeMap<&str, i64> = BTreeMap::new();
            for (alg, id, key) in &one_time {
                match e2e_keys::one_time_key(c, device_nid, alg, id)? {
                    Some(stored) => {
                        if !same_one_time_key(&parse_stored(&stored)?, key) {
                            return Err(invalid_param(format!(
                                "One time key {alg}:{id} already exists with different content"
                            )));
                        }
                    }
                    None => {
                        *new_per_algorithm.entry(alg).or_default() += 1;
                        new.push((alg, id, key));
                    }
                }
            }
            let held = e2e_keys::one_time_key_counts(c, device_nid)?;
            for (alg, n) in &new_per_algorithm {
                let total = held.get(*alg).copied().unwrap_or(0) + n;
                if total > MAX_ONE_TIME_KEYS {
                    return Err(Error::TooLarge(format!(
                        "Uploading {n} more {alg} one-time keys would leave the device holding \
                         {total}, over the limit of {MAX_ONE_TIME_KEYS}"
                    )));
                }
            }
            for (alg, id, key) in new {
                let json = serde_json::to_string(key).map_err(Error::internal)?;
                e2e_keys::add_one_time_key(c, device_nid, alg, id, &json)?;
            }
            for (alg, id, key) in &fallback {
                let json = serde_json::to_string(key).map_err(Error::internal)?;
                e2e_keys::set_fallback_key(c, device_nid, alg, id, &json)?;
            }
            Ok((e2e_keys::one_time_key_counts(c, device_nid)?, changed))
        })
        .await?;
    if changed {
        app.notifier.notify();
    }
    Ok(json!({"one_time_key_counts": counts}))
}

/// Add `signatures[signer][key_id] = signature` entries to a key object.
pub(crate) fn add_signatures(key: &mut Value, signer: &str, sigs: Vec<(String, String)>) {
    if sigs.is_empty() {
        return;
    }
    let Some(o) = key.as_object_mut() else { return };
    let all = o.entry("signatures").or_insert_with(|| json!({}));
    if !all.is_object() {
        *all = json!({});
    }
    if let Some(all) = all.as_object_mut() {
        let mine = all.entry(signer).or_insert_with(|| json!({}));
        if !mine.is_object() {
            *mine = json!({});
        }
        if let Some(mine) = mine.as_object_mut() {
            for (k, s) in sigs {
                mine.insert(k, Value::String(s));
            }
        }
    }
}

/// A stored cross-signing key as `requester` sees it: with the signatures they made of it.
fn cross_signing_key_for(
    c: &rusqlite::Connection,
    user_nid: i64,
    key_type: &str,
    requester: &str,
) -> Result<Option<Value>> {
    let Some(k) = e2e_keys::cross_signing_key(c, user_nid, key_type)? else { return Ok(None) };
    let mut v = parse_stored(&k.key_json)?;
    add_signatures(
        &mut v,
        requester,
        e2e_keys::key_signatures(c, user_nid, &k.public_key, requester)?,
    );
    Ok(Some(v))
}

/// How long `/keys/query` and `/keys/claim` wait for other servers unless the client says
/// (`timeout`, as Synapse: 10 s).
pub const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(10);

/// Remote servers' answers come back within a client's `timeout`, capped at a minute.
pub fn remote_timeout(body: &Object) -> Duration {
    body.get("timeout")
        .and_then(Value::as_u64)
        .map(|ms| Duration::from_millis(ms.min(60_000)))
        .unwrap_or(DEFAULT_REMOTE_TIMEOUT)
}

/// The `device_keys` of a `/keys/query` body (client or federation): user ID -> device IDs
/// (empty or null: every device).
pub fn parse_query(body: &Object) -> Result<Vec<(String, Vec<String>)>> {
    let bad = || bad_json("'device_keys' must map user IDs to lists of device IDs");
    let wanted = body.get("device_keys").and_then(Value::as_object).ok_or_else(bad)?;
    let mut list = vec![];
    for (user_id, devices) in wanted {
        let devices = match devices {
            Value::Null => vec![],
            Value::Array(a) => a
                .iter()
                .map(|d| d.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        list.push((user_id.clone(), devices));
    }
    Ok(list)
}

/// The `one_time_keys` of a `/keys/claim` body: (user ID, device ID, algorithm).
pub fn parse_claim(body: &Object) -> Result<Vec<(String, String, String)>> {
    let bad = || bad_json("'one_time_keys' must map user IDs to device IDs to algorithms");
    let wanted = body.get("one_time_keys").and_then(Value::as_object).ok_or_else(bad)?;
    let mut list = vec![];
    for (user_id, devices) in wanted {
        for (device_id, algorithm) in devices.as_object().ok_or_else(bad)? {
            let algorithm = algorithm.as_str().ok_or_else(bad)?;
            list.push((user_id.clone(), device_id.clone(), algorithm.to_string()));
        }
    }
    Ok(list)
}

/// Whether `user_id` is a valid ID of this server.
fn is_local(app: &App, user_id: &str) -> bool {
    UserId::parse(user_id).is_ok_and(|u| u.server_name() == app.config.server_name)
}

/// `POST /keys/query`. `wanted`: user ID -> device IDs (empty: all devices). Invalid user
/// IDs are skipped (Synapse does the same); remote users are asked of their servers, all
/// at once, within `timeout`; servers that fail are listed in `failures`.
pub async fn query(
    app: &App,
    requester: &User,
    wanted: Vec<(String, Vec<String>)>,
    timeout: Duration,
) -> Result<Value> {
    let mut local = vec![];
    let mut remote_users = vec![];
    for (user_id, devices) in wanted {
        let Ok(parsed) = UserId::parse(&user_id) else { continue };
        if parsed.server_name() == app.config.server_name {
            local.push((user_id, devices));
        } else {
            remote_users.push((user_id, devices));
        }
    }
    let mut body = query_local(app, Some(&requester.user_id), local).await?;
    // Users we share a room with come from the device list cache (fetched into it when
    // missing); only the others are asked with `/user/keys/query`, each time.
    let (uncached, mut failures) =
        super::remote_devices::query(app, &mut body, remote_users, timeout).await?;
    let mut remote: BTreeMap<String, Object> = BTreeMap::new();
    for (user_id, devices) in uncached {
        let server = user_id.split_once(':').map(|(_, s)| s.to_string()).unwrap_or_default();
        remote.entry(server).or_default().insert(user_id, json!(devices));
    }
    let requests =
        remote.into_iter().map(|(server, users)| (server, json!({"device_keys": users}))).collect();
    let answers =
        queries::fan_out(app, "/_matrix/federation/v1/user/keys/query", requests, timeout);
    for (server, answer) in answers.await {
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                failures.insert(server, queries::failure(&e));
                continue;
            }
        };
        // Each section keeps only the answering server's own users.
        for section in ["device_keys", "master_keys", "self_signing_keys"] {
            let Some(Value::Object(users)) = answer.get(section) else { continue };
            for (user_id, v) in users {
                if queries::is_user_of(user_id, &server) && v.is_object() {
                    body[section][user_id] = v.clone();
                }
            }
        }
    }
    body["failures"] = Value::Object(failures);
    Ok(body)
}

/// The keys of local users: `device_keys`, `master_keys`, `self_signing_keys` and, for a
/// local `requester` asking about themselves, `user_signing_keys`. Cross-signing keys
/// carry the requester's own signatures of them. Other servers (`requester: None`) do
/// not learn device display names (Synapse's `allow_device_name_lookup_over_federation`
/// default).
pub async fn query_local(
    app: &App,
    requester: Option<&str>,
    local: Vec<(String, Vec<String>)>,
) -> Result<Value> {
    let me = requester.map(str::to_string);
    let local: Vec<_> = local.into_iter().filter(|(u, _)| is_local(app, u)).collect();
    app.db
        .read(move |c| {
            let (mut device_keys, mut master, mut self_signing, mut user_signing) =
                (Object::new(), Object::new(), Object::new(), Object::new());
            let signer = me.as_deref().unwrap_or("");
            for (user_id, devices) in local {
                let mut per_device = Object::new();
                if let Some(nid) = e2e_keys::user_nid(c, &user_id)? {
                    let only = (!devices.is_empty()).then_some(devices.as_slice());
                    for d in e2e_keys::devices_with_keys(c, nid, only)? {
                        let mut v = parse_stored(&d.key_json)?;
                        add_signatures(
                            &mut v,
                            &user_id,
                            e2e_keys::device_signatures(c, d.device_nid)?,
                        );
                        if let Some(o) = v.as_object_mut() {
                            let mut unsigned = Object::new();
                            if let Some(name) = d.display_name.filter(|_| me.is_some()) {
                                unsigned.insert("device_display_name".into(), Value::String(name));
                            }
                            o.insert("unsigned".into(), Value::Object(unsigned));
                        }
                        per_device.insert(d.device_id, v);
                    }
                    if let Some(k) = cross_signing_key_for(c, nid, "master", signer)? {
                        master.insert(user_id.clone(), k);
                    }
                    if let Some(k) = cross_signing_key_for(c, nid, "self_signing", signer)? {
                        self_signing.insert(user_id.clone(), k);
                    }
                    // Users see only their own user-signing key.
                    if me.as_deref() == Some(user_id.as_str())
                        && let Some(k) = cross_signing_key_for(c, nid, "user_signing", signer)?
                    {
                        user_signing.insert(user_id.clone(), k);
                    }
                }
                device_keys.insert(user_id, Value::Object(per_device));
            }
            let mut body = json!({
                "device_keys": device_keys,
                "master_keys": master,
                "self_signing_keys": self_signing,
            });
            if me.is_some() {
                body["user_signing_keys"] = Value::Object(user_signing);
            }
            Ok(body)
        })
        .await
}

/// `POST /keys/claim`. `wanted`: (user ID, device ID, algorithm). Local keys are claimed
/// here; remote ones from their servers, all at once, within `timeout`.
pub async fn claim(
    app: &App,
    wanted: Vec<(String, String, String)>,
    timeout: Duration,
) -> Result<Value> {
    let mut local = vec![];
    let mut remote: BTreeMap<String, Object> = BTreeMap::new();
    for (user_id, device_id, algorithm) in wanted {
        let parsed = UserId::parse(&user_id)
            .map_err(|_| invalid_param(format!("{user_id:?} is not a valid user ID")))?;
        if parsed.server_name() == app.config.server_name {
            local.push((user_id, device_id, algorithm));
        } else {
            let users = remote.entry(parsed.server_name().to_string()).or_default();
            let devices = users.entry(user_id).or_insert_with(|| json!({}));
            devices[device_id] = json!(algorithm);
        }
    }
    let mut claimed = claim_local(app, local).await?;
    let requests = remote
        .into_iter()
        .map(|(server, users)| (server, json!({"one_time_keys": users})))
        .collect();
    let mut failures = Object::new();
    let answers =
        queries::fan_out(app, "/_matrix/federation/v1/user/keys/claim", requests, timeout);
    for (server, answer) in answers.await {
        match answer {
            Ok(a) => {
                let Some(Value::Object(users)) = a.get("one_time_keys") else { continue };
                for (user_id, v) in users {
                    if queries::is_user_of(user_id, &server) && v.is_object() {
                        claimed.insert(user_id.clone(), v.clone());
                    }
                }
            }
            Err(e) => {
                failures.insert(server, queries::failure(&e));
            }
        }
    }
    Ok(json!({"one_time_keys": claimed, "failures": failures}))
}

/// Claim local users' keys: one per device and algorithm, the oldest one-time key
/// (deleted), else the fallback key (kept, marked used). Remote users are skipped.
pub async fn claim_local(app: &App, local: Vec<(String, String, String)>) -> Result<Object> {
    let local: Vec<_> = local.into_iter().filter(|(u, _, _)| is_local(app, u)).collect();
    if local.is_empty() {
        return Ok(Object::new());
    }
    app.db
        .write(move |c| {
            let mut out = Object::new();
            for (user_id, device_id, algorithm) in local {
                let Some(unid) = e2e_keys::user_nid(c, &user_id)? else { continue };
                let Some(dnid) = e2e_keys::device_nid(c, unid, &device_id)? else { continue };
                let Some((key_id, json)) = e2e_keys::claim(c, dnid, &algorithm)? else {
                    continue;
                };
                let per_user = out.entry(user_id).or_insert_with(|| json!({}));
                if let Some(per_user) = per_user.as_object_mut() {
                    let per_device = per_user.entry(device_id).or_insert_with(|| json!({}));
                    if let Some(per_device) = per_device.as_object_mut() {
                        per_device.insert(key_id, parse_stored(&json)?);
                    }
                }
            }
            Ok(out)
        })
        .await
}

/// `device_lists.changed` / `.left` for `user` between two sync tokens.
pub async fn changes(
    app: &App,
    user: &User,
    from: SyncToken,
    to: SyncToken,
) -> Result<(Vec<String>, Vec<String>)> {
    let user_id = user.user_id.clone();
    let range = device_lists::Range {
        lists_from: from.device_lists,
        lists_to: to.device_lists,
        events_from: from.events,
        events_to: to.events,
    };
    let (changed, left) = app.db.read(move |c| device_lists::changes(c, &user_id, range)).await?;
    Ok((changed.into_iter().collect(), left.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retried_one_time_keys_may_differ_in_signatures_only() {
        let a = json!({"key": "k1", "signatures": {"@a:b": {"ed25519:D": "s1"}}});
        let b = json!({"key": "k1", "signatures": {"@a:b": {"ed25519:D": "s2"}}});
        let c = json!({"key": "k2", "signatures": {"@a:b": {"ed25519:D": "s1"}}});
        assert!(same_one_time_key(&a, &b));
        assert!(!same_one_time_key(&a, &c));
        assert!(same_one_time_key(&json!("k"), &json!("k")));
        assert!(!same_one_time_key(&json!("k"), &json!({"key": "k", "signatures": {}})));
    }

    #[test]
    fn signatures_are_merged_into_key_objects() {
        let mut k = json!({"keys": {}, "signatures": {"@a:b": {"ed25519:D": "own"}}});
        add_signatures(&mut k, "@a:b", vec![("ed25519:SSK".into(), "cross".into())]);
        add_signatures(&mut k, "@c:d", vec![("ed25519:USK".into(), "other".into())]);
        assert_eq!(
            k["signatures"],
            json!({"@a:b": {"ed25519:D": "own", "ed25519:SSK": "cross"}, "@c:d": {"ed25519:USK": "other"}})
        );
        let mut bare = json!({"keys": {}});
        add_signatures(&mut bare, "@a:b", vec![]);
        assert_eq!(bare, json!({"keys": {}}), "nothing to add leaves the object alone");
    }
}
