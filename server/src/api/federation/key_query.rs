//! The notary half of the key API (`/_matrix/key/v2/query`, GET and POST): other servers'
//! key responses as Glia fetched them, countersigned by Glia; Glia's own keys as they are.

use std::sync::Arc;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param};
use crate::federation::{key_store, keys};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::store::now_ms;

/// Servers one POST may ask about (each may mean a fetch).
const MAX_SERVERS: usize = 100;

pub fn routes(r: &mut Router) {
    r.get("/_matrix/key/v2/query/{}", query_get);
    r.get("/_matrix/key/v2/query/{}/{}", query_get);
    r.post("/_matrix/key/v2/query", query_post);
}

/// `GET /query/{serverName}[/{keyId}]?minimum_valid_until_ts=`: the default minimum is now.
async fn query_get(app: Arc<App>, req: Req) -> Result<Resp> {
    let server = req.param(0).to_string();
    let min = match req.query("minimum_valid_until_ts") {
        None => now_ms(),
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| invalid_param("minimum_valid_until_ts must be an integer"))?,
    };
    let key_ids: Vec<String> = req.params.get(1).into_iter().cloned().collect();
    let found = lookup(&app, server, key_ids, min).await?;
    Ok(ok(&json!({"server_keys": found.into_iter().collect::<Vec<_>>()})))
}

/// `POST /query`: `{"server_keys": {serverName: {keyId: {"minimum_valid_until_ts": n}}}}`.
async fn query_post(app: Arc<App>, req: Req) -> Result<Resp> {
    let body = req.json_object(false)?;
    let bad = || bad_json("'server_keys' must map server names to key IDs to criteria");
    let wanted = body.get("server_keys").and_then(Value::as_object).ok_or_else(bad)?;
    if wanted.len() > MAX_SERVERS {
        return Err(invalid_param(format!("At most {MAX_SERVERS} servers per query")));
    }
    let mut lookups = vec![];
    for (server, keys) in wanted {
        let keys = keys.as_object().ok_or_else(bad)?;
        let mut min = 0;
        for criteria in keys.values() {
            match criteria.get("minimum_valid_until_ts") {
                None | Some(Value::Null) => {}
                Some(v) => min = min.max(v.as_i64().ok_or_else(bad)?),
            }
        }
        // No criteria: anything valid now will do.
        let min = if min == 0 { now_ms() } else { min };
        lookups.push(lookup(&app, server.clone(), keys.keys().cloned().collect(), min));
    }
    let mut out = vec![];
    for found in join_all(lookups).await {
        out.extend(found?);
    }
    Ok(ok(&json!({"server_keys": out})))
}

/// The key response for `server`, signed by us too; `None` if we have none and cannot
/// get one. Invalid server names have none.
async fn lookup(
    app: &App,
    server: String,
    key_ids: Vec<String>,
    min_valid: i64,
) -> Result<Option<Value>> {
    let name = app.config.server_name.as_str();
    if server == name {
        let ours = keys::server_keys_with_old(
            name,
            &app.signing_key,
            &app.config.old_signing_keys,
            now_ms(),
        )?;
        return Ok(Some(serde_json::to_value(&ours).map_err(Error::internal)?));
    }
    if !crate::media::valid_server_name(&server) || !app.config.federation_allowed(&server) {
        return Ok(None);
    }
    let Some(response) = key_store::response_for(app, &server, &key_ids, min_valid).await? else {
        return Ok(None);
    };
    let mut obj: ruma::canonical_json::CanonicalJsonObject =
        serde_json::from_value(response).map_err(Error::internal)?;
    ruma::signatures::sign_json(name, &app.signing_key.pair, &mut obj).map_err(Error::internal)?;
    Ok(Some(serde_json::to_value(&obj).map_err(Error::internal)?))
}
