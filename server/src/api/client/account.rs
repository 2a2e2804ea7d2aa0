//! Account management: whoami, password change, deactivation.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::store::{devices, users};
use crate::users::{self as accounts, uia};

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/account/whoami", whoami);
    r.post("/_matrix/client/{v}/account/password", password);
    r.post("/_matrix/client/{v}/account/deactivate", deactivate);
}

async fn whoami(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    Ok(ok(&json!({"user_id": u.user_id, "device_id": u.device_id, "is_guest": u.is_guest})))
}

async fn password(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let body = req.json_object(false)?;
    let new_password = match body.get("new_password") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= 512 => Some(s.clone()),
        Some(Value::String(_)) => return Err(Error::InvalidParam("Password too long".into())),
        Some(_) => return Err(bad_json("'new_password' must be a string")),
    };
    let logout_devices = match body.get("logout_devices") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad_json("'logout_devices' must be a boolean")),
    };
    if let Some(p) = &new_password {
        super::register::check_password_policy(&app, p)?;
    }
    app.uia
        .check(&app, body.get("auth"), &[&[uia::PASSWORD]], Some(&user), &req.operation())
        .await?;
    let new_password =
        new_password.ok_or_else(|| Error::MissingParam("Missing 'new_password'".into()))?;
    let hash = accounts::hash_password(new_password).await?;
    app.db
        .write(move |c| {
            users::set_password_hash(c, user.user_nid, Some(&hash))?;
            if logout_devices {
                // Their pushers go with them (a trigger; as in Synapse).
                devices::delete_all_except(c, user.user_nid, Some(user.device_nid))?;
            }
            Ok(())
        })
        .await?;
    if logout_devices {
        app.notifier.notify(); // a device-list change
    }
    Ok(ok(&json!({})))
}

async fn deactivate(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let body = req.json_object(true)?;
    // An appservice manages its users without their passwords (as in Synapse).
    if user.appservice.is_none() {
        app.uia
            .check(&app, body.get("auth"), &[&[uia::PASSWORD]], Some(&user), &req.operation())
            .await?;
    }
    let nid = user.user_nid;
    app.db.write(move |c| users::deactivate(c, nid)).await?;
    app.notifier.notify(); // a device-list change
    tracing::info!(user_id = %user.user_id, "deactivated account");
    Ok(ok(&json!({"id_server_unbind_result": "no-support"})))
}
