//! Login and logout.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;
use crate::store::{devices, users};
use crate::users::{self as accounts};

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/login", flows);
    r.post("/_matrix/client/{v}/login", login);
    r.post("/_matrix/client/{v}/logout", logout);
    r.post("/_matrix/client/{v}/logout/all", logout_all);
}

async fn flows(app: Arc<App>, _req: Req) -> Result<Resp> {
    let mut flows = vec![];
    if app.config.password_login_enabled {
        flows.push(json!({"type": "m.login.password"}));
    }
    flows.push(json!({"type": super::appservice::LOGIN_TYPE}));
    Ok(ok(&json!({"flows": flows})))
}

fn field<'a>(body: &'a serde_json::Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad_json(format!("'{key}' must be a string"))),
    }
}

async fn login(app: Arc<App>, req: Req) -> Result<Resp> {
    let body = req.json_object(false)?;
    let login_type = field(&body, "type")?.ok_or_else(|| bad_json("Missing 'type'"))?;
    let appservice = login_type == super::appservice::LOGIN_TYPE;
    if !appservice && (login_type != "m.login.password" || !app.config.password_login_enabled) {
        return Err(Error::Unknown(format!("Unknown login type {login_type}")));
    }
    // `rc_login.address`: every attempt from one client address.
    let rl = &app.ratelimits;
    rl.check(&rl.login_address, &req.client_ip.to_string(), rl.config.login_address, true)?;
    // The user: `identifier` of type m.id.user, or the deprecated top-level `user`.
    let name = match body.get("identifier") {
        Some(Value::Object(id)) => match id.get("type").and_then(Value::as_str) {
            Some("m.id.user") => field(id, "user")?.ok_or_else(|| bad_json("Missing user"))?,
            Some(other) => {
                return Err(Error::Unknown(format!("Unknown login identifier type {other}")));
            }
            None => return Err(bad_json("identifier needs a 'type'")),
        },
        Some(Value::Null) | None => {
            field(&body, "user")?.ok_or_else(|| bad_json("Missing 'identifier'"))?
        }
        Some(_) => return Err(bad_json("'identifier' must be an object")),
    };
    let device_id = field(&body, "device_id")?.map(str::to_string);
    let display_name = field(&body, "initial_device_display_name")?.map(str::to_string);
    if appservice {
        return super::appservice::login(&app, &req, name, device_id, display_name).await;
    }
    let password = field(&body, "password")?.ok_or_else(|| bad_json("Missing 'password'"))?;

    let invalid = || Error::Forbidden("Invalid username or password".into());
    let user_id = accounts::local_user_id(&app, name).ok_or_else(invalid)?;
    // `rc_login.failed_attempts`: wrong passwords per account; checked first, counted on
    // each failure. `rc_login.account`: successful logins per account.
    let account = user_id.to_lowercase();
    let failed_limit = rl.config.login_failed_attempts;
    rl.check(&rl.login_failed_attempts, &account, failed_limit, false)?;
    let fail = || {
        rl.record(&rl.login_failed_attempts, &account, failed_limit);
        invalid()
    };
    let uid = user_id.clone();
    let user = app.db.read(move |c| users::get(c, &uid)).await?.ok_or_else(fail)?;
    if user.deactivated {
        return Err(Error::UserDeactivated("This account has been deactivated".into()));
    }
    let hash = user.password_hash.ok_or_else(fail)?;
    if !accounts::verify_password(hash, password.to_string()).await {
        return Err(fail());
    }
    rl.check(&rl.login_account, &account, rl.config.login_account, true)?;
    let s =
        accounts::new_session(&app, user.nid, device_id, display_name, req.client_ip.to_string())
            .await?;
    Ok(ok(&json!({
        "user_id": user.user_id,
        "access_token": s.access_token,
        "device_id": s.device_id,
        "home_server": app.config.server_name.as_str(),
    })))
}

/// Invalidates the token and deletes its device, as the spec requires.
async fn logout(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    app.db.write(move |c| devices::delete_by_nid(c, user.device_nid)).await?;
    app.notifier.notify(); // a device-list change
    Ok(empty_object())
}

async fn logout_all(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    app.db.write(move |c| devices::delete_all_except(c, user.user_nid, None)).await?;
    app.notifier.notify(); // a device-list change
    Ok(empty_object())
}
