//! Other servers' verify keys: fetched from the server itself (else from the
//! `trusted_key_servers` notaries), checked against the server's own signature (and the
//! notary's), cached in SQLite until `valid_until_ts`. Whole responses are kept too, so
//! that Glia can serve them on as a notary (`/_matrix/key/v2/query`).

use std::time::Duration;

use http::Method;
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::app::App;
use crate::config::TrustedKeyServer;
use crate::error::{Error, Result};
use crate::store::now_ms;

/// How long one key fetch (from the server or one notary) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A verify key of `server` valid at `at_ms` (unpadded base64), fetching if needed: from
/// the server itself, and from the notaries if that fails or the key is not among what it
/// served (a rotated key).
pub async fn verify_key(app: &App, server: &str, key_id: &str, at_ms: i64) -> Result<String> {
    if server == app.config.server_name.as_str()
        && key_id == format!("ed25519:{}", app.signing_key.version)
    {
        return Ok(app.signing_key.public_key_base64());
    }
    if let Some(key) = stored_key(app, server, key_id, at_ms).await? {
        return Ok(key);
    }
    let direct = fetch_direct(app, server).await;
    if let Some(key) = stored_key(app, server, key_id, at_ms).await? {
        return Ok(key);
    }
    if let Err(e) = &direct {
        tracing::info!(%server, error = %e, "cannot get keys from the server; asking notaries");
    }
    for notary in &app.config.trusted_key_servers {
        if notary.server_name == server || notary.server_name == app.config.server_name.as_str() {
            continue;
        }
        match fetch_from_notary(app, notary, server).await {
            Ok(()) => {
                if let Some(key) = stored_key(app, server, key_id, at_ms).await? {
                    return Ok(key);
                }
            }
            Err(e) => {
                tracing::info!(%server, notary = %notary.server_name, error = %e, "notary failed")
            }
        }
    }
    Err(match direct {
        Err(e) => e,
        Ok(()) => Error::Unauthorized(format!("no valid key {key_id} for {server}")),
    })
}

/// A cached key of `server` valid at `at_ms`.
async fn stored_key(app: &App, server: &str, key_id: &str, at_ms: i64) -> Result<Option<String>> {
    let (s, k) = (server.to_string(), key_id.to_string());
    let row: Option<(String, i64)> = app
        .db
        .read(move |c| {
            Ok(c.prepare_cached(
                "SELECT key, valid_until_ts FROM server_keys WHERE server_name = ?1 AND key_id = ?2",
            )?
            .query_row(params![s, k], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
        })
        .await?;
    Ok(row.filter(|(_, valid)| *valid >= at_ms).map(|(key, _)| key))
}

/// Check a key response is for `server` and signed by one of its own verify keys.
pub fn check_key_response(server: &str, body: &Value) -> Result<Vec<(String, String, i64)>> {
    if body["server_name"] != server {
        return Err(Error::Unauthorized(format!("key response is not for {server}")));
    }
    let valid = body["valid_until_ts"].as_i64().unwrap_or(0);
    let mut current = vec![];
    for (id, k) in body["verify_keys"].as_object().into_iter().flatten() {
        let Some(b64) = k["key"].as_str() else { continue };
        ruma::serde::Base64::<ruma::serde::base64::Standard>::parse(b64.trim_end_matches('='))
            .map_err(|_| Error::Unauthorized(format!("{server} key {id} is not base64")))?;
        current.push((id.clone(), b64.trim_end_matches('=').to_string()));
    }
    // Only the server's own signature matters here; notaries' are checked elsewhere.
    check_signed_by(server, &current, body).map_err(|e| {
        Error::Unauthorized(format!("{server}'s key response is not self-signed: {e}"))
    })?;
    let mut keys: Vec<_> = current.into_iter().map(|(id, k)| (id, k, valid)).collect();
    for (id, k) in body["old_verify_keys"].as_object().into_iter().flatten() {
        if let Some(b64) = k["key"].as_str() {
            keys.push((
                id.clone(),
                b64.trim_end_matches('=').to_string(),
                k["expired_ts"].as_i64().unwrap_or(0),
            ));
        }
    }
    Ok(keys)
}

/// Fetch `server`'s keys from `server` itself (what a notary does for others, too).
pub async fn fetch_direct(app: &App, server: &str) -> Result<()> {
    let get = app.federation.get_unsigned(server, "/_matrix/key/v2/server");
    let (status, body) = tokio::time::timeout(FETCH_TIMEOUT, get)
        .await
        .map_err(|_| Error::Unknown(format!("{server} did not answer for its keys in time")))??;
    if !status.is_success() {
        return Err(Error::Unauthorized(format!("{server} answered {status} for its keys")));
    }
    store_response(app, server, &body).await
}

/// Ask one notary for `server`'s keys; keep the answer only if both `server` and the
/// notary signed it.
async fn fetch_from_notary(app: &App, notary: &TrustedKeyServer, server: &str) -> Result<()> {
    let notary_keys = match notary.verify_keys.is_empty() {
        false => notary.verify_keys.clone().into_iter().collect::<Vec<_>>(),
        // No keys configured: the notary's own (Synapse warns about this setup).
        true => {
            fetch_direct(app, &notary.server_name).await?;
            current_keys(app, &notary.server_name).await?
        }
    };
    let body = json!({"server_keys": {server: {}}});
    let ask = crate::federation::queries::ask(
        app,
        &notary.server_name,
        Method::POST,
        "/_matrix/key/v2/query",
        Some(&body),
        FETCH_TIMEOUT,
    );
    let (status, answer) = ask.await?;
    if !status.is_success() {
        return Err(Error::Unknown(format!("{} answered {status}", notary.server_name)));
    }
    let mut stored = false;
    for response in answer["server_keys"].as_array().into_iter().flatten() {
        if response["server_name"] != server {
            continue;
        }
        check_signed_by(&notary.server_name, &notary_keys, response)?;
        store_response(app, server, response).await?;
        stored = true;
    }
    if stored {
        Ok(())
    } else {
        Err(Error::Unknown(format!("{} had no keys for {server}", notary.server_name)))
    }
}

/// Check `body` carries a valid signature of `signer` by one of `keys` (ID, base64).
fn check_signed_by(signer: &str, keys: &[(String, String)], body: &Value) -> Result<()> {
    let mut set = ruma::signatures::PublicKeySet::new();
    for (id, k) in keys {
        if let Ok(b) = ruma::serde::Base64::parse(k.trim_end_matches('=')) {
            set.insert(id.clone(), b);
        }
    }
    let mut obj: ruma::canonical_json::CanonicalJsonObject =
        serde_json::from_value(body.clone())
            .map_err(|_| Error::Unauthorized("key response is not canonical JSON".into()))?;
    // ruma checks the entities that signed, so an object nobody signed would pass: the
    // signer's signatures must be there, and only theirs are checked.
    match obj.get_mut("signatures") {
        Some(ruma::canonical_json::CanonicalJsonValue::Object(sigs))
            if sigs.contains_key(signer) =>
        {
            sigs.retain(|name, _| name == signer)
        }
        _ => return Err(Error::Unauthorized(format!("key response not signed by {signer}"))),
    }
    let mut map = ruma::signatures::PublicKeyMap::new();
    map.insert(signer.to_string(), set);
    ruma::signatures::verify_json(&map, &obj)
        .map_err(|e| Error::Unauthorized(format!("key response not signed by {signer}: {e}")))
}

/// The cached, unexpired verify keys of `server`: (key ID, base64).
async fn current_keys(app: &App, server: &str) -> Result<Vec<(String, String)>> {
    let (s, now) = (server.to_string(), now_ms());
    app.db
        .read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT key_id, key FROM server_keys WHERE server_name = ?1 AND valid_until_ts >= ?2",
            )?;
            let rows = st.query_map(params![s, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
}

/// Check a self-signed key response of `server` and keep its keys and the response.
async fn store_response(app: &App, server: &str, body: &Value) -> Result<()> {
    let keys = check_key_response(server, body)?;
    let json = serde_json::to_string(body).map_err(Error::internal)?;
    let valid_until = body["valid_until_ts"].as_i64().unwrap_or(0);
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
            // The newest response wins; an older one (from a notary's cache) never
            // replaces a fresher one.
            c.prepare_cached(
                "INSERT INTO server_key_responses (server_name, json, valid_until_ts, fetched_ts)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (server_name) DO UPDATE SET json = excluded.json,
                   valid_until_ts = excluded.valid_until_ts, fetched_ts = excluded.fetched_ts
                 WHERE excluded.valid_until_ts >= server_key_responses.valid_until_ts",
            )?
            .execute(params![server, json, valid_until, now])?;
            Ok(())
        })
        .await
}

/// What a notary serves for `server`: its latest key response, refetched from `server`
/// when there is none, when it is valid for less than `minimum_valid_until_ts`, or when
/// it lacks one of `key_ids`. If the refetch fails, whatever is cached is served.
pub async fn response_for(
    app: &App,
    server: &str,
    key_ids: &[String],
    minimum_valid_until_ts: i64,
) -> Result<Option<Value>> {
    let cached = cached_response(app, server).await?;
    let good = cached.as_ref().is_some_and(|(v, valid)| {
        *valid >= minimum_valid_until_ts
            && key_ids
                .iter()
                .all(|k| v["verify_keys"].get(k).is_some() || v["old_verify_keys"].get(k).is_some())
    });
    if good {
        return Ok(cached.map(|(v, _)| v));
    }
    match fetch_direct(app, server).await {
        Ok(()) => Ok(cached_response(app, server).await?.map(|(v, _)| v)),
        Err(e) => {
            tracing::info!(%server, error = %e, "notary: cannot refresh keys");
            Ok(cached.map(|(v, _)| v))
        }
    }
}

async fn cached_response(app: &App, server: &str) -> Result<Option<(Value, i64)>> {
    let s = server.to_string();
    let row: Option<(String, i64)> = app
        .db
        .read(move |c| {
            Ok(c.prepare_cached(
                "SELECT json, valid_until_ts FROM server_key_responses WHERE server_name = ?1",
            )?
            .query_row([s], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
        })
        .await?;
    match row {
        Some((json, valid)) => {
            Ok(Some((serde_json::from_str(&json).map_err(Error::internal)?, valid)))
        }
        None => Ok(None),
    }
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
        let mut unsigned = body.clone();
        unsigned["signatures"] = serde_json::json!({});
        assert!(check_key_response("remote.example", &unsigned).is_err(), "unsigned");
        let mut other = body.clone();
        other["signatures"] =
            serde_json::json!({"notary.example": body["signatures"]["remote.example"]});
        assert!(check_key_response("remote.example", &other).is_err(), "signed by another");
    }
}
