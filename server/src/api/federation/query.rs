//! Inbound queries other servers make that involve no room DAG: the public room directory
//! (`/publicRooms`, GET and POST), served from the same code as the client directory when
//! `allow_public_rooms_over_federation` is on (off by default, as in Synapse: 403).

use std::sync::Arc;

use crate::api::client::directory::{Network, post_params, public_rooms};
use crate::app::App;
use crate::error::{Error, Result, invalid_param};
use crate::http::request::Req;
use crate::http::response::Resp;
use crate::http::router::Router;

pub fn routes(r: &mut Router) {
    r.get("/_matrix/federation/v1/publicRooms", public_rooms_get);
    r.post("/_matrix/federation/v1/publicRooms", public_rooms_post);
}

/// Authenticate, then refuse unless the directory is open to other servers.
async fn check_allowed(app: &App, req: &Req) -> Result<()> {
    let origin = app.auth_server(req).await?;
    if !app.config.allow_public_rooms_over_federation {
        return Err(Error::Forbidden(format!("Federation denied with {origin}.")));
    }
    Ok(())
}

async fn public_rooms_get(app: Arc<App>, req: Req) -> Result<Resp> {
    check_allowed(&app, &req).await?;
    let limit = req
        .query("limit")
        .map(|l| l.parse::<u64>())
        .transpose()
        .map_err(|_| invalid_param("limit must be a non-negative integer"))?;
    public_rooms(&app, limit, req.query("since"), None, Network::Main).await
}

async fn public_rooms_post(app: Arc<App>, req: Req) -> Result<Resp> {
    check_allowed(&app, &req).await?;
    let (limit, since, term) = post_params(&req.json_object(true)?)?;
    public_rooms(&app, limit, since.as_deref(), term, Network::Main).await
}
