//! The client-server API as application services use it: registering users in their
//! namespace (`m.login.application_service`, no user-interactive auth), logging them in,
//! `POST /_matrix/client/v1/appservice/{appserviceId}/ping`, and the per-network room
//! directory lists (`/directory/list/appservice/{networkId}/{roomId}`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::appservice::AppService;
use crate::error::{Error, Result, bad_json};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;
use crate::store::{appservice as as_store, users};
use crate::users::{self as accounts, Registration};

/// The login and registration type appservices use.
pub const LOGIN_TYPE: &str = "m.login.application_service";
const PING_TIMEOUT: Duration = Duration::from_secs(15);

pub fn routes(r: &mut Router) {
    r.post("/_matrix/client/v1/appservice/{}/ping", ping);
    r.put("/_matrix/client/{v}/directory/list/appservice/{}/{}", list_room);
    r.delete("/_matrix/client/{v}/directory/list/appservice/{}/{}", unlist_room);
}

/// The appservice whose `as_token` the request carries: 401 without one or with another
/// (registration and login by appservices, as in Synapse).
fn caller(app: &App, req: &Req) -> Result<Arc<AppService>> {
    let token =
        req.access_token().ok_or_else(|| Error::MissingToken("Missing access token.".into()))?;
    app.appservices
        .by_token(token)
        .cloned()
        .ok_or_else(|| Error::UnknownToken("Unrecognised access token.".into()))
}

/// The appservice behind an authenticated request: 401 for a missing or unknown token,
/// 403 `M_FORBIDDEN` for a user's token (ping and appservice room lists).
async fn appservice_of(app: &App, req: &Req) -> Result<Arc<AppService>> {
    let user = app.auth(req).await?;
    user.appservice
        .and_then(|id| app.appservices.by_id(&id).cloned())
        .ok_or_else(|| Error::Forbidden("Only application services may do this".into()))
}

/// `POST /register` with `type: m.login.application_service`: a user in the caller's
/// namespace, without a password or user-interactive auth, even with registration closed.
pub async fn register(
    app: &App,
    req: &Req,
    body: &Map<String, Value>,
    login: Option<(Option<String>, Option<String>)>,
) -> Result<Resp> {
    let a = caller(app, req)?;
    let localpart = match body.get("username") {
        Some(Value::String(s)) => s.to_lowercase(),
        None | Some(Value::Null) => return Err(Error::MissingParam("Missing username".into())),
        Some(_) => return Err(bad_json("'username' must be a string")),
    };
    // Appservices may use a leading underscore, which normal users may not (as in Synapse).
    let rest = localpart.strip_prefix('_').filter(|r| !r.is_empty()).unwrap_or(&localpart);
    accounts::user_id_for_localpart(rest, &app.config.server_name)?;
    let user_id = format!("@{localpart}:{}", app.config.server_name);
    if !a.owns_user(&user_id) {
        return Err(Error::Exclusive(
            "Invalid user localpart for this application service.".into(),
        ));
    }
    app.appservices.check_user_not_exclusive(&user_id, Some(&a.reg.id))?;
    let check = user_id.clone();
    if app.db.read(move |c| users::exists(c, &check)).await? {
        return Err(Error::UserInUse("User ID already taken.".into()));
    }
    let r = Registration {
        user_id: user_id.clone(),
        password: None,
        is_admin: false,
        is_guest: false,
        displayname: None,
    };
    let (_, session) = accounts::register(app, r, login, req.client_ip.to_string()).await?;
    let mut out = json!({"user_id": user_id, "home_server": app.config.server_name.as_str()});
    if let Some(s) = session {
        out["access_token"] = json!(s.access_token);
        out["device_id"] = json!(s.device_id);
    }
    Ok(ok(&out))
}

/// `POST /login` with `type: m.login.application_service`: a device for a user in the
/// caller's namespace.
pub async fn login(
    app: &App,
    req: &Req,
    name: &str,
    device: Option<String>,
    display: Option<String>,
) -> Result<Resp> {
    let a = caller(app, req)?;
    let user_id = accounts::local_user_id(app, name)
        .ok_or_else(|| Error::Forbidden("Invalid user ID".into()))?;
    if !a.owns_user(&user_id) {
        return Err(Error::Forbidden("The application service cannot log in as this user".into()));
    }
    let uid = user_id.clone();
    let user = app
        .db
        .read(move |c| users::get(c, &uid))
        .await?
        .filter(|u| !u.deactivated)
        .ok_or_else(|| Error::Forbidden("Unknown user".into()))?;
    let s =
        accounts::new_session(app, user.nid, device, display, req.client_ip.to_string()).await?;
    Ok(ok(&json!({
        "user_id": user.user_id,
        "access_token": s.access_token,
        "device_id": s.device_id,
        "home_server": app.config.server_name.as_str(),
    })))
}

/// The homeserver pings the appservice (`POST /_matrix/app/v1/ping`) and reports how long
/// it took; failures carry the spec's errcodes (M_URL_NOT_SET, M_BAD_STATUS,
/// M_CONNECTION_FAILED, M_CONNECTION_TIMEOUT).
async fn ping(app: Arc<App>, req: Req) -> Result<Resp> {
    let a = appservice_of(&app, &req).await?;
    if a.reg.id != req.param(0) {
        return Err(Error::Forbidden("The access token does not belong to this appservice".into()));
    }
    let body = req.json_object(true)?;
    let mut out = json!({});
    match body.get("transaction_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) => out["transaction_id"] = json!(t),
        Some(_) => return Err(bad_json("'transaction_id' must be a string")),
    }
    let Some(url) = a.reg.url.as_deref() else {
        return Err(upstream(400, "M_URL_NOT_SET", "The appservice has no URL", json!({})));
    };
    let start = Instant::now();
    let r = app
        .appservices
        .client
        .request(
            Method::POST,
            url,
            "/_matrix/app/v1/ping",
            &a.reg.hs_token,
            Some(&out),
            PING_TIMEOUT,
        )
        .await;
    use crate::appservice::http::Failure;
    match r {
        Ok(_) => Ok(ok(&json!({"duration_ms": start.elapsed().as_millis() as u64}))),
        Err(Failure::Timeout) => Err(upstream(
            504,
            "M_CONNECTION_TIMEOUT",
            "The appservice did not answer in time",
            json!({}),
        )),
        Err(Failure::Connection(e)) => Err(upstream(
            502,
            "M_CONNECTION_FAILED",
            &format!("Cannot reach the appservice: {e}"),
            json!({}),
        )),
        Err(Failure::Status(s, text)) => Err(upstream(
            502,
            "M_BAD_STATUS",
            "The appservice answered with an error",
            json!({"status": s.as_u16(), "body": text}),
        )),
    }
}

fn upstream(status: u16, errcode: &'static str, msg: &str, extra: Value) -> Error {
    Error::Upstream {
        status: http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY),
        errcode,
        msg: msg.into(),
        extra,
    }
}

/// `PUT /directory/list/appservice/{networkId}/{roomId}` `{"visibility": "public"}`.
async fn list_room(app: Arc<App>, req: Req) -> Result<Resp> {
    let a = appservice_of(&app, &req).await?;
    let body = req.json_object(true)?;
    let public = match body.get("visibility") {
        None | Some(Value::Null) => true,
        Some(Value::String(v)) if v == "public" => true,
        Some(Value::String(v)) if v == "private" => false,
        Some(_) => {
            return Err(Error::InvalidParam("'visibility' must be public or private".into()));
        }
    };
    set_listed(&app, &a, &req, public).await
}

async fn unlist_room(app: Arc<App>, req: Req) -> Result<Resp> {
    let a = appservice_of(&app, &req).await?;
    set_listed(&app, &a, &req, false).await
}

async fn set_listed(app: &App, a: &AppService, req: &Req, listed: bool) -> Result<Resp> {
    let (network, room_id) = (req.param(0).to_string(), req.param(1).to_string());
    ruma::RoomId::parse(&room_id).map_err(|_| Error::InvalidParam("Invalid room ID".into()))?;
    let rid = room_id.clone();
    if app.db.read(move |c| crate::store::rooms::get(c, &rid)).await?.is_none() {
        return Err(Error::NotFound("Unknown room".into()));
    }
    let id = a.reg.id.clone();
    app.db.write(move |c| as_store::set_listed(c, &id, &network, &room_id, listed)).await?;
    Ok(empty_object())
}
