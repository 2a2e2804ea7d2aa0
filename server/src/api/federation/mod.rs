//! The server-server API and the key API.

use std::sync::Arc;

use serde_json::{Value, json};

mod events;
mod key_query;
mod media;
pub mod membership;
mod query;
mod transactions;
mod user_keys;

use crate::app::App;
use crate::error::{Error, Result};
use crate::federation::keys;
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::store::now_ms;

pub fn routes(r: &mut Router) {
    membership::routes(r);
    events::routes(r);
    transactions::routes(r);
    query::routes(r);
    user_keys::routes(r);
    key_query::routes(r);
    media::routes(r);
    r.get("/_matrix/federation/v1/version", version);
    r.get("/_matrix/key/v2/server", server_keys);
    r.get("/_matrix/key/v2/server/{}", server_keys);
    r.get("/_matrix/federation/v1/query/profile", query_profile);
    r.get("/_matrix/federation/v1/query/directory", query_directory);
}

/// `GET /query/profile`: a local user's profile, or one field of it.
async fn query_profile(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_server(&req).await?;
    let user_id =
        req.query("user_id").ok_or_else(|| Error::MissingParam("Missing user_id".into()))?;
    let id =
        ruma::UserId::parse(user_id).map_err(|_| Error::InvalidParam("Invalid user_id".into()))?;
    if id.server_name() != app.config.server_name {
        return Err(Error::InvalidParam("User is not local to this server".into()));
    }
    let uid = user_id.to_string();
    let user = app.db.read(move |c| crate::store::users::get(c, &uid)).await?;
    let user = user
        .filter(|u| !u.deactivated)
        .ok_or_else(|| Error::NotFound("Profile was not found".into()))?;
    let mut body = serde_json::Map::new();
    let field = req.query("field");
    if field.is_none_or(|f| f == "displayname")
        && let Some(d) = user.displayname
    {
        body.insert("displayname".into(), json!(d));
    }
    if field.is_none_or(|f| f == "avatar_url")
        && let Some(a) = user.avatar_url
    {
        body.insert("avatar_url".into(), json!(a));
    }
    Ok(ok(&body))
}

/// `GET /query/directory`: which room a local alias points at.
async fn query_directory(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_server(&req).await?;
    let alias =
        req.query("room_alias").ok_or_else(|| Error::MissingParam("Missing room_alias".into()))?;
    ruma::RoomAliasId::parse(alias)
        .map_err(|_| Error::InvalidParam("Invalid room_alias".into()))?;
    let a = alias.to_string();
    let found = app.db.read(move |c| crate::store::rooms::get_alias(c, &a)).await?;
    let (room_id, _) = found.ok_or_else(|| Error::NotFound("Room alias not found".into()))?;
    Ok(ok(&json!({"room_id": room_id, "servers": [app.config.server_name.as_str()]})))
}

async fn version(_app: Arc<App>, _req: Req) -> Result<Resp> {
    Ok(ok(&json!({"server": {"name": "Glia", "version": env!("CARGO_PKG_VERSION")}})))
}

/// Our own keys, self-signed. (`/server/{keyId}` is deprecated; the whole set is returned.)
async fn server_keys(app: Arc<App>, _req: Req) -> Result<Resp> {
    let obj = keys::server_keys_with_old(
        app.config.server_name.as_str(),
        &app.signing_key,
        &app.config.old_signing_keys,
        now_ms(),
    )?;
    let v: Value = serde_json::to_value(&obj).map_err(Error::internal)?;
    Ok(ok(&v))
}
