//! Profiles: display name and avatar URL.

use std::sync::Arc;

use ruma::UserId;
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param, not_found};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;
use crate::store::users::{self, UserRow};

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/profile/{}", whole);
    r.get("/_matrix/client/{v}/profile/{}/displayname", displayname);
    r.put("/_matrix/client/{v}/profile/{}/displayname", set_displayname);
    r.get("/_matrix/client/{v}/profile/{}/avatar_url", avatar_url);
    r.put("/_matrix/client/{v}/profile/{}/avatar_url", set_avatar_url);
}

/// Longest display name or avatar URL accepted (Synapse's limits).
const MAX_DISPLAYNAME: usize = 256;
const MAX_AVATAR_URL: usize = 1000;

async fn lookup(app: &App, user_id: &str) -> Result<UserRow> {
    let id = UserId::parse(user_id).map_err(|_| invalid_param("Invalid user ID"))?;
    if id.server_name() != app.config.server_name {
        // Remote profiles cannot be set from here.
        return Err(not_found("Profile was not found"));
    }
    crate::appservice::query::ensure_user(app, user_id).await;
    let uid = user_id.to_string();
    let row = app.db.read(move |c| users::get(c, &uid)).await?;
    row.filter(|r| !r.deactivated).ok_or_else(|| not_found("Profile was not found"))
}

/// A remote user's profile (all of it, or one field), asked of their server.
async fn remote(app: &App, user_id: &str, field: Option<&str>) -> Result<Option<Resp>> {
    let id = UserId::parse(user_id).map_err(|_| invalid_param("Invalid user ID"))?;
    if id.server_name() == app.config.server_name {
        return Ok(None);
    }
    Ok(Some(ok(&crate::federation::queries::profile(app, &id, field).await?)))
}

async fn whole(app: Arc<App>, req: Req) -> Result<Resp> {
    if let Some(r) = remote(&app, req.param(0), None).await? {
        return Ok(r);
    }
    let u = lookup(&app, req.param(0)).await?;
    let mut m = Map::new();
    if let Some(d) = u.displayname {
        m.insert("displayname".into(), json!(d));
    }
    if let Some(a) = u.avatar_url {
        m.insert("avatar_url".into(), json!(a));
    }
    Ok(ok(&m))
}

async fn displayname(app: Arc<App>, req: Req) -> Result<Resp> {
    if let Some(r) = remote(&app, req.param(0), Some("displayname")).await? {
        return Ok(r);
    }
    let u = lookup(&app, req.param(0)).await?;
    Ok(ok(&u.displayname.map(|d| json!({"displayname": d})).unwrap_or(json!({}))))
}

async fn avatar_url(app: Arc<App>, req: Req) -> Result<Resp> {
    if let Some(r) = remote(&app, req.param(0), Some("avatar_url")).await? {
        return Ok(r);
    }
    let u = lookup(&app, req.param(0)).await?;
    Ok(ok(&u.avatar_url.map(|d| json!({"avatar_url": d})).unwrap_or(json!({}))))
}

/// The new value of `key`: a string within `max`, or null/"" to clear it.
async fn new_value(app: &App, req: &Req, key: &str, max: usize) -> Result<(i64, Option<String>)> {
    let me = app.auth(req).await?;
    if me.user_id != req.param(0) && !me.is_admin {
        return Err(Error::Forbidden("Cannot set another user's profile".into()));
    }
    let target = lookup(app, req.param(0)).await?;
    let body = req.json_object(false)?;
    let v = match body.get(key) {
        None => return Err(bad_json(format!("Missing '{key}'"))),
        Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() > max => {
            return Err(invalid_param(format!("'{key}' is too long (max {max})")));
        }
        Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
        Some(_) => return Err(invalid_param(format!("'{key}' must be a string"))),
    };
    Ok((target.nid, v))
}

async fn set_displayname(app: Arc<App>, req: Req) -> Result<Resp> {
    let (nid, v) = new_value(&app, &req, "displayname", MAX_DISPLAYNAME).await?;
    app.db.write(move |c| users::set_displayname(c, nid, v.as_deref())).await?;
    Ok(empty_object())
}

async fn set_avatar_url(app: Arc<App>, req: Req) -> Result<Resp> {
    let (nid, v) = new_value(&app, &req, "avatar_url", MAX_AVATAR_URL).await?;
    app.db.write(move |c| users::set_avatar_url(c, nid, v.as_deref())).await?;
    Ok(empty_object())
}
