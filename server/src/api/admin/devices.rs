//! A user's devices (`/_synapse/admin/v2/users/{userId}/devices`): list, create, read,
//! rename, delete one or many.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};

use super::{existing_user, local_user_id, require_fields};
use crate::app::App;
use crate::error::{Error, Result, bad_json, not_found};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, json as json_resp, ok};
use crate::http::router::Router;
use crate::store::devices::{self, DeviceRow};
use crate::store::now_ms;
use crate::store::users::UserRow;

pub fn routes(r: &mut Router) {
    r.get("/_synapse/admin/v2/users/{}/devices", list);
    r.post("/_synapse/admin/v2/users/{}/devices", create);
    r.post("/_synapse/admin/v2/users/{}/delete_devices", delete_many);
    r.get("/_synapse/admin/v2/users/{}/devices/{}", get);
    r.put("/_synapse/admin/v2/users/{}/devices/{}", rename);
    r.delete("/_synapse/admin/v2/users/{}/devices/{}", delete);
}

/// Synapse's limit on device display names.
const MAX_DEVICE_NAME_LEN: usize = 100;

fn device_json(user_id: &str, d: &DeviceRow) -> Value {
    json!({
        "user_id": user_id,
        "device_id": d.device_id,
        "display_name": d.display_name,
        "last_seen_ip": d.last_seen_ip,
        "last_seen_ts": d.last_seen_ts,
    })
}

/// Admin check, then the path's user, which must be local and exist.
async fn target(app: &App, req: &Req) -> Result<UserRow> {
    app.auth_admin(req).await?;
    let uid = local_user_id(app, req.param(0), "Can only lookup local users")?;
    match existing_user(app, &uid).await {
        Err(Error::NotFound(_)) => Err(not_found("Unknown user")),
        other => other,
    }
}

async fn list(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = target(&app, &req).await?;
    let nid = u.nid;
    let rows = app.db.read(move |c| devices::list(c, nid)).await?;
    let list: Vec<Value> = rows.iter().map(|d| device_json(&u.user_id, d)).collect();
    Ok(ok(&json!({"total": list.len(), "devices": list})))
}

/// A device without an access token (for bots and bridges that log in later).
async fn create(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = target(&app, &req).await?;
    let body = req.json_object(false)?;
    let device_id = match body.get("device_id") {
        None | Some(Value::Null) => return Err(Error::Unknown("Missing device_id".into())),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => s.clone(),
        Some(Value::String(_)) => return Err(Error::Unknown("Invalid device_id".into())),
        Some(_) => return Err(Error::Unknown("device_id must be a string".into())),
    };
    let nid = u.nid;
    app.db
        .write(move |c| {
            if devices::get(c, nid, &device_id)?.is_none() {
                // A new device: `upsert` records the device-list change.
                devices::upsert(c, nid, &device_id, None, None, now_ms())?;
            }
            Ok(())
        })
        .await?;
    app.notifier.notify(); // a device-list change
    Ok(json_resp(StatusCode::CREATED, &json!({})))
}

async fn get(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = target(&app, &req).await?;
    let (nid, id) = (u.nid, req.param(1).to_string());
    let row = app.db.read(move |c| devices::get(c, nid, &id)).await?;
    let row = row.ok_or_else(|| not_found("No device found"))?;
    Ok(ok(&device_json(&u.user_id, &row)))
}

async fn rename(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = target(&app, &req).await?;
    let body = req.json_object(true)?;
    let name = match body.get("display_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= MAX_DEVICE_NAME_LEN => Some(s.clone()),
        Some(Value::String(_)) => {
            return Err(Error::Unknown(format!(
                "Device display name is too long (max {MAX_DEVICE_NAME_LEN})"
            )));
        }
        Some(_) => return Err(bad_json("'display_name' must be a string")),
    };
    let (nid, id) = (u.nid, req.param(1).to_string());
    let found = app
        .db
        .write(move |c| match &name {
            Some(n) => devices::rename(c, nid, &id, n),
            None => Ok(devices::get(c, nid, &id)?.is_some()),
        })
        .await?;
    if !found {
        return Err(not_found("Unknown device"));
    }
    app.notifier.notify(); // the name is in /keys/query
    Ok(empty_object())
}

async fn delete(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = target(&app, &req).await?;
    let (nid, id) = (u.nid, req.param(1).to_string());
    app.db.write(move |c| devices::delete(c, nid, &id)).await?;
    app.notifier.notify(); // a device-list change
    Ok(empty_object())
}

async fn delete_many(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = target(&app, &req).await?;
    let body = req.json_object(false)?;
    require_fields(&body, &["devices"])?;
    let ids: Vec<String> = body["devices"]
        .as_array()
        .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect())
        .ok_or_else(|| bad_json("'devices' must be a list of strings"))?;
    let nid = u.nid;
    app.db.write(move |c| ids.iter().try_for_each(|id| devices::delete(c, nid, id))).await?;
    app.notifier.notify(); // a device-list change
    Ok(empty_object())
}
