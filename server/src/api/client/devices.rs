//! Device management.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Result, bad_json, not_found};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;
use crate::store::devices::{self, DeviceRow};
use crate::users::uia;

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/devices", list);
    r.get("/_matrix/client/{v}/devices/{}", get);
    r.put("/_matrix/client/{v}/devices/{}", rename);
    r.delete("/_matrix/client/{v}/devices/{}", delete);
    r.post("/_matrix/client/{v}/delete_devices", delete_many);
}

fn device_json(user_id: &str, d: &DeviceRow) -> Value {
    json!({
        "user_id": user_id,
        "device_id": d.device_id,
        "display_name": d.display_name,
        "last_seen_ip": d.last_seen_ip,
        "last_seen_ts": d.last_seen_ts,
    })
}

async fn list(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    let nid = u.user_nid;
    let rows = app.db.read(move |c| devices::list(c, nid)).await?;
    let list: Vec<Value> = rows.iter().map(|d| device_json(&u.user_id, d)).collect();
    Ok(ok(&json!({"devices": list})))
}

async fn get(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    let (nid, id) = (u.user_nid, req.param(0).to_string());
    let row = app.db.read(move |c| devices::get(c, nid, &id)).await?;
    let row = row.ok_or_else(|| not_found("Device not found"))?;
    Ok(ok(&device_json(&u.user_id, &row)))
}

async fn rename(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    let body = req.json_object(true)?;
    let name = match body.get("display_name") {
        None | Some(Value::Null) => return Ok(empty_object()),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad_json("'display_name' must be a string")),
    };
    let (nid, id) = (u.user_nid, req.param(0).to_string());
    if !app.db.write(move |c| devices::rename(c, nid, &id, &name)).await? {
        return Err(not_found("Device not found"));
    }
    app.notifier.notify(); // a device-list change
    Ok(empty_object())
}

async fn delete(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    // Clients send DELETE without a body to discover the auth flows.
    let body = req.json_object(true)?;
    app.uia.check(&app, body.get("auth"), &[&[uia::PASSWORD]], Some(&u), &req.operation()).await?;
    let (nid, id) = (u.user_nid, req.param(0).to_string());
    app.db.write(move |c| devices::delete(c, nid, &id)).await?;
    app.notifier.notify(); // a device-list change
    Ok(empty_object())
}

async fn delete_many(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    let body = req.json_object(false)?;
    let ids: Vec<String> = match body.get("devices") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| bad_json("'devices' must be a list of strings"))?,
        _ => return Err(bad_json("'devices' must be a list of strings")),
    };
    app.uia.check(&app, body.get("auth"), &[&[uia::PASSWORD]], Some(&u), &req.operation()).await?;
    let nid = u.user_nid;
    app.db.write(move |c| ids.iter().try_for_each(|id| devices::delete(c, nid, id))).await?;
    app.notifier.notify(); // a device-list change
    Ok(empty_object())
}
