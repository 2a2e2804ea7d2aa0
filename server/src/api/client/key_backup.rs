//! Server-side key backups: `/room_keys/version` and `/room_keys/keys`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::e2ee::backup;
use crate::error::{Result, missing_param};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;

pub fn routes(r: &mut Router) {
    r.post("/_matrix/client/{v}/room_keys/version", create_version);
    r.get("/_matrix/client/{v}/room_keys/version", current_version);
    r.get("/_matrix/client/{v}/room_keys/version/{}", get_version);
    r.put("/_matrix/client/{v}/room_keys/version/{}", update_version);
    r.delete("/_matrix/client/{v}/room_keys/version/{}", delete_version);
    r.put("/_matrix/client/{v}/room_keys/keys", put_keys);
    r.put("/_matrix/client/{v}/room_keys/keys/{}", put_keys);
    r.put("/_matrix/client/{v}/room_keys/keys/{}/{}", put_keys);
    r.get("/_matrix/client/{v}/room_keys/keys", get_keys);
    r.get("/_matrix/client/{v}/room_keys/keys/{}", get_keys);
    r.get("/_matrix/client/{v}/room_keys/keys/{}/{}", get_keys);
    r.delete("/_matrix/client/{v}/room_keys/keys", delete_keys);
    r.delete("/_matrix/client/{v}/room_keys/keys/{}", delete_keys);
    r.delete("/_matrix/client/{v}/room_keys/keys/{}/{}", delete_keys);
}

async fn create_version(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let body = req.json_object(false)?;
    let version = backup::create_version(&app, &user, &body).await?;
    Ok(ok(&json!({"version": version})))
}

async fn current_version(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    Ok(ok(&backup::get_version(&app, &user, None).await?))
}

async fn get_version(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    Ok(ok(&backup::get_version(&app, &user, Some(req.param(0))).await?))
}

async fn update_version(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let body = req.json_object(false)?;
    backup::update_version(&app, &user, req.param(0), &body).await?;
    Ok(empty_object())
}

async fn delete_version(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    backup::delete_version(&app, &user, req.param(0)).await?;
    Ok(empty_object())
}

/// The `version` query parameter and the optional room and session path segments.
fn target(req: &Req) -> Result<(String, Option<String>, Option<String>)> {
    let version = req.query("version").ok_or_else(|| missing_param("Missing 'version'"))?;
    Ok((version.to_string(), req.params.first().cloned(), req.params.get(1).cloned()))
}

async fn put_keys(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let (version, room, session) = target(&req)?;
    let body = Value::Object(req.json_object(false)?);
    let keys = backup::keys_from_body(&body, room.as_deref(), session.as_deref())?;
    Ok(ok(&backup::put_keys(&app, &user, &version, keys).await?))
}

async fn get_keys(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let (version, room, session) = target(&req)?;
    Ok(ok(&backup::get_keys(&app, &user, &version, room, session).await?))
}

async fn delete_keys(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let (version, room, session) = target(&req)?;
    Ok(ok(&backup::delete_keys(&app, &user, &version, room, session).await?))
}
