//! Account registration: `POST /register` (user-interactive auth), `/register/available`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::store::users;
use crate::users::{self as accounts, Registration, uia};

pub fn routes(r: &mut Router) {
    r.post("/_matrix/client/{v}/register", register);
    r.get("/_matrix/client/{v}/register/available", available);
}

/// Longest username or password accepted, as in Synapse.
const MAX_FIELD: usize = 512;

fn opt_string(body: &serde_json::Map<String, Value>, key: &str) -> Result<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_FIELD => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(invalid_param(format!("'{key}' is too long"))),
        Some(_) => Err(bad_json(format!("'{key}' must be a string"))),
    }
}

/// Enforce `password_config.policy` (only a minimum length so far).
pub fn check_password_policy(app: &App, password: &str) -> Result<()> {
    if password.chars().count() < app.config.password_minimum_length {
        return Err(Error::WeakPassword(format!(
            "Password too short (minimum {} characters)",
            app.config.password_minimum_length
        )));
    }
    Ok(())
}

async fn register(app: Arc<App>, req: Req) -> Result<Resp> {
    let kind = req.query("kind").unwrap_or("user");
    let body = req.json_object(true)?;
    let device_id = opt_string(&body, "device_id")?;
    let display_name = opt_string(&body, "initial_device_display_name")?;
    let inhibit_login = match body.get("inhibit_login") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad_json("'inhibit_login' must be a boolean")),
    };
    let login = (!inhibit_login).then_some((device_id, display_name));
    match kind {
        "guest" => register_guest(app, req, login).await,
        "user" => register_user(app, req, body, login).await,
        other => Err(invalid_param(format!("Invalid kind: {other}"))),
    }
}

async fn register_guest(
    app: Arc<App>,
    req: Req,
    login: Option<(Option<String>, Option<String>)>,
) -> Result<Resp> {
    if !app.config.allow_guest_access {
        // Synapse answers M_FORBIDDEN here; M_GUEST_ACCESS_FORBIDDEN is for guests' requests.
        return Err(Error::Forbidden("Guest access is disabled".into()));
    }
    // Guests get numeric localparts, which normal registration refuses (as in Synapse).
    let mut attempt = 0;
    let (user_id, session) = loop {
        let n = app.db.read(users::count).await? + 1 + attempt;
        let user_id = format!("@{n}:{}", app.config.server_name);
        let r = Registration {
            user_id: user_id.clone(),
            password: None,
            is_admin: false,
            is_guest: true,
            displayname: None,
        };
        match accounts::register(&app, r, login.clone(), req.client_ip.to_string()).await {
            Ok((_, s)) => break (user_id, s),
            Err(Error::UserInUse(_)) if attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    Ok(ok(&response(&app, &user_id, session)))
}

async fn register_user(
    app: Arc<App>,
    req: Req,
    body: serde_json::Map<String, Value>,
    login: Option<(Option<String>, Option<String>)>,
) -> Result<Resp> {
    if !app.config.enable_registration {
        return Err(Error::Forbidden("Registration has been disabled".into()));
    }
    // Username and password problems are reported before authentication, as Synapse does,
    // so clients learn of a taken name on their first request.
    let username = opt_string(&body, "username")?.map(|u| u.to_lowercase());
    let user_id = match &username {
        Some(u) => {
            let id = accounts::user_id_for_localpart(u, &app.config.server_name)?;
            let check = id.clone();
            if app.db.read(move |c| users::exists(c, &check)).await? {
                return Err(Error::UserInUse("User ID already taken.".into()));
            }
            Some(id)
        }
        None => None,
    };
    let password = opt_string(&body, "password")?;
    if let Some(p) = &password {
        check_password_policy(&app, p)?;
    }
    app.uia.check(&app, body.get("auth"), &[&[uia::DUMMY]], None).await?;
    let password = password.ok_or_else(|| Error::MissingParam("Missing password.".into()))?;
    let user_id = match user_id {
        Some(id) => id,
        None => accounts::user_id_for_localpart(
            &accounts::random_string(12).to_lowercase(),
            &app.config.server_name,
        )?,
    };
    let r = Registration {
        user_id: user_id.clone(),
        password: Some(password),
        is_admin: false,
        is_guest: false,
        displayname: None,
    };
    let (_, session) = accounts::register(&app, r, login, req.client_ip.to_string()).await?;
    Ok(ok(&response(&app, &user_id, session)))
}

fn response(app: &App, user_id: &str, session: Option<accounts::Session>) -> Value {
    let mut body = json!({"user_id": user_id, "home_server": app.config.server_name.as_str()});
    if let Some(s) = session {
        body["access_token"] = json!(s.access_token);
        body["device_id"] = json!(s.device_id);
    }
    body
}

async fn available(app: Arc<App>, req: Req) -> Result<Resp> {
    if !app.config.enable_registration {
        return Err(Error::Forbidden("Registration has been disabled".into()));
    }
    let username = req
        .query("username")
        .ok_or_else(|| Error::MissingParam("Missing username".into()))?
        .to_lowercase();
    let user_id = accounts::user_id_for_localpart(&username, &app.config.server_name)?;
    if app.db.read(move |c| users::exists(c, &user_id)).await? {
        return Err(Error::UserInUse("User ID already taken.".into()));
    }
    Ok(ok(&json!({"available": true})))
}
