//! The Synapse-compatible admin API under `/_synapse/admin/`, so existing tools (synapse-admin,
//! moderation bots, synadm) work. Request and response shapes follow Synapse's; every
//! endpoint except `server_version` and shared-secret registration checks that the caller
//! is a server admin before it looks at anything else.

pub mod devices;
pub mod media;
pub mod register;
pub mod registration_tokens;
pub mod rooms;
pub mod server_notices;
pub mod users;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::app::App;
use crate::error::{Error, Result, invalid_param, missing_param, not_found};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::store::users::{self as user_store, UserRow};

pub fn routes(r: &mut Router) {
    r.get("/_synapse/admin/v1/server_version", server_version);
    r.get("/_synapse/admin/v1/register", register::nonce);
    r.post("/_synapse/admin/v1/register", register::register);
    users::routes(r);
    devices::routes(r);
    media::routes(r);
    rooms::routes(r);
    registration_tokens::routes(r);
    server_notices::routes(r);
}

async fn server_version(_app: Arc<App>, _req: Req) -> Result<Resp> {
    Ok(ok(&json!({"server_version": format!("Glia {}", env!("CARGO_PKG_VERSION"))})))
}

// --- query parameters, parsed as Synapse parses them ---------------------------------------

/// A non-negative integer query parameter (`from`, `limit`).
pub fn int_param(req: &Req, name: &str, default: i64) -> Result<i64> {
    match req.query(name) {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n),
            Ok(_) => {
                Err(invalid_param(format!("Query parameter {name:?} must be a positive integer.")))
            }
            Err(_) => Err(invalid_param(format!("Query parameter {name:?} must be an integer."))),
        },
    }
}

/// A boolean query parameter: `true` or `false`, nothing else.
pub fn bool_param(req: &Req, name: &str) -> Result<Option<bool>> {
    match req.query(name) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(invalid_param(format!(
            "Boolean query parameter {name:?} must be one of ['true', 'false']"
        ))),
    }
}

/// A query parameter restricted to `allowed` values.
pub fn choice_param<'a>(
    req: &'a Req,
    name: &str,
    default: &'a str,
    allowed: &[&str],
) -> Result<&'a str> {
    let v = req.query(name).unwrap_or(default);
    if allowed.contains(&v) {
        Ok(v)
    } else {
        Err(invalid_param(format!("Query parameter {name:?} must be one of {allowed:?}")))
    }
}

/// `dir=f` (the default) or `dir=b`; true for backwards.
pub fn dir_param(req: &Req) -> Result<bool> {
    Ok(choice_param(req, "dir", "f", &["f", "b"])? == "b")
}

// --- request bodies ----------------------------------------------------------------------

/// An optional boolean field; present but not a boolean is 400 `M_BAD_JSON`.
pub fn bool_field(body: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::BadJson(format!("Param '{key}' must be a boolean, if given"))),
    }
}

/// An optional string field (`null` counts as absent).
pub fn string_field(body: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::BadJson(format!("Param '{key}' must be a string, if given"))),
    }
}

/// Fail with `Missing params: [...]` unless every key is in the body.
pub fn require_fields(body: &Map<String, Value>, keys: &[&str]) -> Result<()> {
    let missing: Vec<&str> = keys.iter().copied().filter(|k| !body.contains_key(*k)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing_param(format!("Missing params: {missing:?}")))
    }
}

// --- users in paths ----------------------------------------------------------------------

/// The user ID in the path, which must be a user of this server; otherwise 400 with
/// `not_local` as the message, as Synapse words it per endpoint.
pub fn local_user_id(app: &App, raw: &str, not_local: &str) -> Result<String> {
    let id =
        ruma::UserId::parse(raw).map_err(|_| invalid_param(format!("Invalid user ID: {raw}")))?;
    if id.server_name() != app.config.server_name {
        return Err(Error::Unknown(not_local.to_string()));
    }
    Ok(id.to_string())
}

/// The account, or 404 `M_NOT_FOUND`.
pub async fn existing_user(app: &App, user_id: &str) -> Result<UserRow> {
    let uid = user_id.to_string();
    app.db.read(move |c| user_store::get(c, &uid)).await?.ok_or_else(|| not_found("User not found"))
}
