//! The Synapse-compatible admin API under `/_synapse/admin/`, so existing tools work.

pub mod register;
pub mod users;

use std::sync::Arc;

use serde_json::json;

use crate::app::App;
use crate::error::Result;
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;

pub fn routes(r: &mut Router) {
    r.get("/_synapse/admin/v1/server_version", server_version);
    r.get("/_synapse/admin/v1/register", register::nonce);
    r.post("/_synapse/admin/v1/register", register::register);
    r.get("/_synapse/admin/v2/users/{}", users::query_user);
}

async fn server_version(_app: Arc<App>, _req: Req) -> Result<Resp> {
    Ok(ok(&json!({"server_version": format!("Glia {}", env!("CARGO_PKG_VERSION"))})))
}
