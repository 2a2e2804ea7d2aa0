//! Other servers' verify keys: fetched from the server itself, checked against its own
//! signature, cached in SQLite until `valid_until_ts`.

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use crate::app::App;
use crate::error::{Error, Result};
use crate::store::now_ms;

/// A verify key of `server` valid at `at_ms` (unpadded base64), fetching if needed.
pub async fn verify_key(app: &App, server: &str, key_id: &str, at_ms: i64) -> Result<String> {
    if server == app.config.server_name.as_str()
        && key_id == format!("ed25519:{}", app.signing_key.version)
    {
        return Ok(app.signing_key.public_key_base64());
    }
    let (s, k) = (server.to_string(), key_id.to_string());
    let cached: Option<(String, i64)> = app
        .db
        .read(move |c| {
            Ok(c.prepare_cached("SELECT key, valid_until_ts FROM server_keys WHERE server_name = ?1 AND key_id = ?2")?
                .query_row(params![s, k], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })
        .await?;
    if let Some((key, valid)) = &cached
        && *valid >= at_ms
    {
        return Ok(key.clone());
    }
    fetch(app, server).await?;
    let (s, k) = (server.to_string(), key_id.to_string());
    let fresh: Option<(String, i64)> = app
        .db
        .read(move |c| {
            Ok(c.prepare_cached("SELECT key, valid_until_ts FROM server_keys WHERE server_name = ?1 AND key_id = ?2")?
                .query_row(params![s, k], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })
        .await?;
    match fresh {
        Some((key, valid)) if valid >= at_ms => Ok(key),
        _ => Err(Error::Unauthorized(format!("no valid key {key_id} for {server}"))),
    }
}

/// Check a key response is for `server` and signed by one of its own verify keys.
pub fn check_key_response(server: &str, body: &Value) -> Result<Vec<(String, String, i64)>> {
    if body["server_name"] != server {
        return Err(Error::Unauthorized(format!("key response is not for {server}")));
    }
    let valid = body["valid_until_ts"].as_i64().unwrap_or(0);
    let mut set = ruma::signatures::PublicKeySet::new();
    let mut keys = vec![];
    for (id, k) in body["verify_keys"].as_object().into_iter().flatten() {
        let Some(b64) = k["key"].as_str() else { continue };
        let parsed = ruma::serde::Base64::parse(b64.trim_end_matches('='))
            .map_err(|_| Error::Unauthorized(format!("{server} key {id} is not base64")))?;
        set.insert(id.clone(), parsed);
        keys.push((id.clone(), b64.trim_end_matches('=').to_string(), valid));
    }
    for (id, k) in body["old_verify_keys"].as_object().into_iter().flatten() {
        if let Some(b64) = k["key"].as_str() {
            keys.push((
                id.clone(),
                b64.trim_end_matches('=').to_string(),
                k["expired_ts"].as_i64().unwrap_or(0),
            ));
        }
    }
    let mut map = ruma::signatures::PublicKeyMap::new();
    map.insert(server.to_string(), set);
    let obj: ruma::canonical_json::CanonicalJsonObject = serde_json::from_value(body.clone())
        .map_err(|_| Error::Unauthorized("key response is not canonical JSON".into()))?;
    // Only the server's own signature matters here; notaries' are checked elsewhere.
    let mut own = obj.clone();
    if let Some(ruma::canonical_json::CanonicalJsonValue::Object(sigs)) = own.get_mut("signatures")
    {
        sigs.retain(|name, _| name == server);
    }
    ruma::signatures::verify_json(&map, &own).map_err(|e| {
        Error::Unauthorized(format!("{server}'s key response is not self-signed: {e}"))
    })?;
    Ok(keys)
}

async fn fetch(app: &App, server: &str) -> Result<()> {
    let (status, body) = app.federation.get_unsigned(server, "/_matrix/key/v2/server").await?;
    if !status.is_success() {
        return Err(Error::Unauthorized(format!("{server} answered {status} for its keys")));
    }
    let keys = check_key_response(server, &body)?;
    let server = server.to_string();
    app.db
        .write(move |c| {
            let now = now_ms();
            for (id, key, valid) in &keys {
                c.prepare_cached(
                    "INSERT INTO server_keys (server_name, key_id, key, valid_until_ts, fetched_ts)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (server_name, key_id) DO UPDATE SET key = excluded.key,
                       valid_until_ts = MAX(valid_until_ts, excluded.valid_until_ts), fetched_ts = excluded.fetched_ts",
                )?
                .execute(params![server, id, key, valid, now])?;
            }
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_responses_must_be_self_signed_and_named() {
        let key = crate::keys::SigningKey::from_seed("a_x", &[9u8; 32]).expect("key");
        let obj = crate::federation::keys::server_keys("remote.example", &key, 5).expect("resp");
        let body: Value = serde_json::to_value(&obj).expect("json");
        let keys = check_key_response("remote.example", &body).expect("valid");
        assert_eq!(keys[0].0, "ed25519:a_x");
        assert!(check_key_response("other.example", &body).is_err(), "wrong server name");
        let mut forged = body.clone();
        forged["valid_until_ts"] = serde_json::json!(9_999_999_999_999i64);
        assert!(check_key_response("remote.example", &forged).is_err(), "tampered");
    }
}
