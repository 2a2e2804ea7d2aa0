//! `POST /createRoom`.

use std::sync::Arc;

use serde_json::json;

use crate::app::App;
use crate::error::Result;
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::rooms::create::{self, CreateRoom};

pub fn routes(r: &mut Router) {
    r.post("/_matrix/client/{v}/createRoom", create_room);
    r.post("/_matrix/client/{v}/rooms/{}/upgrade", upgrade);
}

async fn upgrade(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let room_id = req.param(0).to_string();
    ruma::RoomId::parse(&room_id).map_err(|_| crate::error::invalid_param("Invalid room ID"))?;
    let body = req.json_object(false)?;
    let version = body
        .get("new_version")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| crate::error::bad_json("'new_version' must be a string"))?;
    if !crate::api::client::capabilities::ROOM_VERSIONS.contains(&version) {
        return Err(crate::error::Error::UnsupportedRoomVersion(format!(
            "Room version {version} is not supported"
        )));
    }
    let additional_creators = match body.get("additional_creators") {
        None => vec![],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|u| {
                u.as_str()
                    .filter(|u| ruma::UserId::parse(u).is_ok())
                    .map(str::to_string)
                    .ok_or_else(|| crate::error::bad_json(format!("Invalid creator {u}")))
            })
            .collect::<Result<Vec<_>>>()?,
        Some(_) => return Err(crate::error::bad_json("'additional_creators' must be an array")),
    };
    let new_room =
        crate::rooms::upgrade::upgrade(&app, &user.user_id, &room_id, version, additional_creators)
            .await
            .map_err(|e| match e {
                crate::error::Error::NotFound(_) => {
                    crate::error::Error::Forbidden("You are not in the room".into())
                }
                other => other,
            })?;
    Ok(ok(&json!({"replacement_room": new_room})))
}

async fn create_room(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let body: CreateRoom = req.json_or_empty()?;
    let rl = &app.ratelimits;
    let limit = rl.config.room_creation;
    app.ratelimit_user(&user, &[(&rl.room_creation, limit, &user.user_id)], false).await?;
    let room_id = create::create(&app, &user.user_id, body).await?;
    Ok(ok(&json!({"room_id": room_id})))
}
