//! Client config: global and per-room account data.

use std::sync::Arc;

use ruma::RoomId;

use crate::app::App;
use crate::error::{Error, Result, invalid_param, not_found};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object};
use crate::http::router::Router;
use crate::store::account_data;

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/user/{}/account_data/{}", get_global);
    r.put("/_matrix/client/{v}/user/{}/account_data/{}", put_global);
    r.get("/_matrix/client/{v}/user/{}/rooms/{}/account_data/{}", get_room);
    r.put("/_matrix/client/{v}/user/{}/rooms/{}/account_data/{}", put_room);
}

/// Types the server manages through other endpoints: 405 for these, "both global and
/// room-specific" (spec: client-server API, "Client Config", server behaviour).
fn check_settable(data_type: &str) -> Result<()> {
    match data_type {
        "m.fully_read" => Err(Error::ServerControlled(
            "Cannot set m.fully_read through this API; use /read_markers".into(),
        )),
        "m.push_rules" => Err(Error::ServerControlled(
            "Cannot set m.push_rules through this API; use /pushrules".into(),
        )),
        "" => Err(invalid_param("Empty account data type")),
        _ => Ok(()),
    }
}

fn room_param(req: &Req) -> Result<String> {
    RoomId::parse(req.param(1))
        .map(|r| r.to_string())
        .map_err(|_| invalid_param(format!("{:?} is not a valid room ID", req.param(1))))
}

async fn put(app: Arc<App>, req: Req, room_id: String, data_type: String) -> Result<Resp> {
    let me = app.auth(&req).await?;
    super::require_self(&me, req.param(0), "add account data")?;
    check_settable(&data_type)?;
    let content = serde_json::to_string(&req.json_object(false)?).map_err(Error::internal)?;
    let nid = me.user_nid;
    app.db.write(move |c| account_data::put(c, nid, &room_id, &data_type, &content)).await?;
    app.notifier.notify();
    Ok(empty_object())
}

async fn get(app: Arc<App>, req: Req, room_id: String, data_type: String) -> Result<Resp> {
    let me = app.auth(&req).await?;
    super::require_self(&me, req.param(0), "get account data")?;
    let nid = me.user_nid;
    let content = app.db.read(move |c| account_data::get(c, nid, &room_id, &data_type)).await?;
    let content = content.ok_or_else(|| not_found("Account data not found"))?;
    let mut r = crate::http::response::empty_object();
    *r.body_mut() = http_body_util::Full::new(bytes::Bytes::from(content));
    Ok(r)
}

async fn get_global(app: Arc<App>, req: Req) -> Result<Resp> {
    let t = req.param(1).to_string();
    get(app, req, String::new(), t).await
}
async fn put_global(app: Arc<App>, req: Req) -> Result<Resp> {
    let t = req.param(1).to_string();
    put(app, req, String::new(), t).await
}
async fn get_room(app: Arc<App>, req: Req) -> Result<Resp> {
    let (room, t) = (room_param(&req)?, req.param(2).to_string());
    get(app, req, room, t).await
}
async fn put_room(app: Arc<App>, req: Req) -> Result<Resp> {
    let (room, t) = (room_param(&req)?, req.param(2).to_string());
    put(app, req, room, t).await
}
