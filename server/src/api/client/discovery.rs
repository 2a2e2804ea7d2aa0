//! Server discovery: `/versions` and `.well-known`.

use std::sync::Arc;

use serde_json::json;

use crate::app::App;
use crate::error::{Result, not_found};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/versions", versions);
    r.get("/.well-known/matrix/client", well_known_client);
    r.get("/.well-known/matrix/server", well_known_server);
}

/// Spec versions whose client-server API shapes Glia serves.
pub const SPEC_VERSIONS: &[&str] = &[
    "r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0", "r0.6.1", "v1.1", "v1.2",
    "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11",
];

async fn versions(_app: Arc<App>, _req: Req) -> Result<Resp> {
    Ok(ok(&json!({"versions": SPEC_VERSIONS, "unstable_features": {}})))
}

async fn well_known_client(app: Arc<App>, _req: Req) -> Result<Resp> {
    Ok(ok(&json!({"m.homeserver": {"base_url": app.config.client_base_url()}})))
}

/// Served only with `serve_server_wellknown: true`, as in Synapse: it delegates federation
/// to port 443 of the server name, which is wrong unless a proxy forwards it.
async fn well_known_server(app: Arc<App>, _req: Req) -> Result<Resp> {
    if !app.config.serve_server_wellknown {
        return Err(not_found("No .well-known/matrix/server is configured"));
    }
    let host = app.config.server_name.host();
    let port = app.config.server_name.port().unwrap_or(443);
    Ok(ok(&json!({"m.server": format!("{host}:{port}")})))
}
