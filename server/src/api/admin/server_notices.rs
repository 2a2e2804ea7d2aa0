//! `POST /_synapse/admin/v1/send_server_notice` (and `PUT .../{txnId}`, idempotent):
//! a message from the server to one local user. See `rooms::server_notices`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{existing_user, require_fields, string_field};
use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::rooms::{Txn, server_notices};

pub fn routes(r: &mut Router) {
    r.post("/_synapse/admin/v1/send_server_notice", send);
    r.put("/_synapse/admin/v1/send_server_notice/{}", send);
}

async fn send(app: Arc<App>, req: Req) -> Result<Resp> {
    let admin = app.auth_admin(&req).await?;
    let body = req.json_object(false)?;
    require_fields(&body, &["user_id", "content"])?;
    let event_type = string_field(&body, "type")?.unwrap_or_else(|| "m.room.message".into());
    let state_key = string_field(&body, "state_key")?;
    let content = match body.get("content") {
        Some(c @ Value::Object(_)) => c.clone(),
        _ => return Err(bad_json("'content' must be an object")),
    };
    let raw = body["user_id"].as_str().ok_or_else(|| bad_json("'user_id' must be a string"))?;
    let target =
        ruma::UserId::parse(raw).map_err(|_| invalid_param(format!("Invalid user ID: {raw}")))?;
    if target.server_name() != app.config.server_name {
        return Err(Error::Unknown("Server notices can only be sent to local users".into()));
    }
    let user = existing_user(&app, target.as_str()).await?;
    // A PUT with a transaction ID is answered with the first request's event on a retry.
    let txn = (!req.params.is_empty()).then(|| Txn {
        user_nid: admin.user_nid,
        device_id: admin.device_id.clone(),
        scope: "_synapse/admin/send_server_notice".into(),
        txn_id: req.param(0).to_string(),
    });
    let event_id = server_notices::send(
        &app,
        user.nid,
        &user.user_id,
        &event_type,
        state_key.as_deref(),
        content,
        txn,
    )
    .await?;
    Ok(ok(&json!({"event_id": event_id})))
}
