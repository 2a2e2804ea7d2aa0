//! Send-to-device messaging.

use std::sync::Arc;

use serde_json::Value;

use crate::app::App;
use crate::e2ee;
use crate::error::{Result, bad_json, missing_param};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object};
use crate::http::router::Router;

pub fn routes(r: &mut Router) {
    r.put("/_matrix/client/{v}/sendToDevice/{}/{}", send);
}

async fn send(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let body = req.json_object(false)?;
    let messages = match body.get("messages") {
        Some(Value::Object(m)) => m,
        None => return Err(missing_param("Missing 'messages'")),
        Some(_) => return Err(bad_json("'messages' must map user IDs to device IDs to contents")),
    };
    let (event_type, txn_id) = (req.param(0).to_string(), req.param(1).to_string());
    e2ee::to_device::send(&app, &user, event_type, txn_id, messages).await?;
    Ok(empty_object())
}
