//! `PUT /rooms/{roomId}/typing/{userId}`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::app::App;
use crate::error::{Error, Result, bad_json};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object};
use crate::http::router::Router;

pub fn routes(r: &mut Router) {
    r.put("/_matrix/client/{v}/rooms/{}/typing/{}", typing);
}

async fn typing(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    if req.param(1) != user.user_id {
        return Err(Error::Forbidden("Cannot set another user's typing state".into()));
    }
    let room = super::room_state::joined_room(&app, &user, req.param(0)).await?;
    let body = req.json_object(false)?;
    let typing = match body.get("typing") {
        Some(Value::Bool(b)) => *b,
        _ => return Err(bad_json("'typing' must be a boolean")),
    };
    let timeout = match body.get("timeout") {
        None | Some(Value::Null) => Duration::from_secs(30),
        Some(v) => Duration::from_millis(
            v.as_u64().ok_or_else(|| bad_json("'timeout' must be milliseconds"))?,
        ),
    };
    let deadline =
        app.typing.set(&app.notifier, &room.room_id, &user.user_id, typing.then_some(timeout));
    let (nid, own) = (room.nid, app.config.server_name.to_string());
    let hosts = app.db.read(move |c| crate::store::federation::allowed_hosts(c, nid, &own)).await?;
    let edu = serde_json::json!({
        "room_id": room.room_id,
        "user_id": user.user_id,
        "typing": typing,
        "timeout": timeout.as_millis() as u64,
    });
    crate::federation::sender::send_edu(&app, hosts, "m.typing", edu).await?;
    if let Some(deadline) = deadline {
        let (app2, room_id, user_id) = (app.clone(), room.room_id.clone(), user.user_id.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline.into()).await;
            app2.typing.expire(&app2.notifier, &room_id, &user_id, deadline);
        });
    }
    Ok(empty_object())
}
