//! End-to-end keys for other servers (`/user/devices`, `/user/keys/query`,
//! `/user/keys/claim`), answered for local users with the client API's own functions.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::e2ee::keys::{claim_local, parse_claim, parse_query, query_local};
use crate::error::{Result, invalid_param};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::store::device_lists;

pub fn routes(r: &mut Router) {
    r.get("/_matrix/federation/v1/user/devices/{}", user_devices);
    r.post("/_matrix/federation/v1/user/keys/query", keys_query);
    r.post("/_matrix/federation/v1/user/keys/claim", keys_claim);
}

/// `GET /user/devices/{userId}`: a local user's devices with keys, their cross-signing
/// keys and the device-list stream position. An unknown user has no devices.
async fn user_devices(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_server(&req).await?;
    let user_id = req.param(0).to_string();
    let id = ruma::UserId::parse(&user_id).map_err(|_| invalid_param("Invalid user ID"))?;
    if id.server_name() != app.config.server_name {
        return Err(invalid_param("User is not hosted on this homeserver"));
    }
    let keys = query_local(&app, None, vec![(user_id.clone(), vec![])]).await?;
    let devices: Vec<Value> = keys["device_keys"][&user_id]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(device_id, k)| json!({"device_id": device_id, "keys": k}))
        .collect();
    let uid = user_id.clone();
    let stream_id = app.db.read(move |c| device_lists::latest_for(c, &uid)).await?;
    let mut body = json!({"user_id": user_id, "stream_id": stream_id, "devices": devices});
    for (section, field) in
        [("master_keys", "master_key"), ("self_signing_keys", "self_signing_key")]
    {
        if let Some(k) = keys[section].get(&user_id) {
            body[field] = k.clone();
        }
    }
    Ok(ok(&body))
}

/// `POST /user/keys/query`: `{"device_keys": {userId: [deviceId...]}}` for local users.
async fn keys_query(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_server(&req).await?;
    let list = parse_query(&req.json_object(false)?)?;
    Ok(ok(&query_local(&app, None, list).await?))
}

/// `POST /user/keys/claim`: `{"one_time_keys": {userId: {deviceId: algorithm}}}`.
async fn keys_claim(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_server(&req).await?;
    let list = parse_claim(&req.json_object(false)?)?;
    Ok(ok(&json!({"one_time_keys": claim_local(&app, list).await?})))
}
