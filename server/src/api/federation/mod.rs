//! The server-server API and the key API.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::Result;
use crate::federation::keys;
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::store::now_ms;

pub fn routes(r: &mut Router) {
    r.get("/_matrix/federation/v1/version", version);
    r.get("/_matrix/key/v2/server", server_keys);
    r.get("/_matrix/key/v2/server/{}", server_keys);
}

async fn version(_app: Arc<App>, _req: Req) -> Result<Resp> {
    Ok(ok(&json!({"server": {"name": "Glia", "version": env!("CARGO_PKG_VERSION")}})))
}

/// Our own keys, self-signed. (`/server/{keyId}` is deprecated; the whole set is returned.)
async fn server_keys(app: Arc<App>, _req: Req) -> Result<Resp> {
    let obj = keys::server_keys(app.config.server_name.as_str(), &app.signing_key, now_ms())?;
    let v: Value = serde_json::to_value(&obj).map_err(crate::error::Error::internal)?;
    Ok(ok(&v))
}
