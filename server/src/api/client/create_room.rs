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
}

async fn create_room(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let body: CreateRoom = req.json_or_empty()?;
    let room_id = create::create(&app, &user.user_id, body).await?;
    Ok(ok(&json!({"room_id": room_id})))
}
