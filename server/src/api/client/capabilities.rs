//! `GET /capabilities`.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::app::App;
use crate::error::Result;
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/capabilities", capabilities);
}

/// The room version new rooms get, and every version Glia accepts.
pub const DEFAULT_ROOM_VERSION: &str = "11";
pub const ROOM_VERSIONS: &[&str] = &["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"];

async fn capabilities(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth(&req).await?;
    let available: Map<String, Value> =
        ROOM_VERSIONS.iter().map(|v| (v.to_string(), json!("stable"))).collect();
    Ok(ok(&json!({"capabilities": {
        "m.change_password": {"enabled": app.config.password_login_enabled},
        "m.room_versions": {"default": DEFAULT_ROOM_VERSION, "available": available},
        "m.set_displayname": {"enabled": true},
        "m.set_avatar_url": {"enabled": true},
        "m.3pid_changes": {"enabled": false},
        "m.get_login_token": {"enabled": false},
    }})))
}
