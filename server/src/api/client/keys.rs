//! End-to-end encryption keys: upload, query, claim, changes, cross-signing.

use std::sync::Arc;

use serde_json::json;

use crate::app::App;
use crate::e2ee::{self, cross_signing};
use crate::error::{Result, missing_param};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;
use crate::sync::{self, SyncToken};

pub fn routes(r: &mut Router) {
    r.post("/_matrix/client/{v}/keys/upload", upload);
    r.post("/_matrix/client/{v}/keys/query", query);
    r.post("/_matrix/client/{v}/keys/claim", claim);
    r.get("/_matrix/client/{v}/keys/changes", changes);
    r.post("/_matrix/client/{v}/keys/device_signing/upload", device_signing_upload);
    r.post("/_matrix/client/{v}/keys/signatures/upload", signatures_upload);
}

async fn upload(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let body = req.json_object(false)?;
    Ok(ok(&e2ee::keys::upload(&app, &user, &body).await?))
}

async fn query(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let body = req.json_object(false)?;
    let list = e2ee::keys::parse_query(&body)?;
    let timeout = e2ee::keys::remote_timeout(&body);
    Ok(ok(&e2ee::keys::query(&app, &user, list, timeout).await?))
}

async fn claim(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth(&req).await?;
    let body = req.json_object(false)?;
    let list = e2ee::keys::parse_claim(&body)?;
    Ok(ok(&e2ee::keys::claim(&app, list, e2ee::keys::remote_timeout(&body)).await?))
}

/// `GET /keys/changes?from=&to=`: `to` defaults to now (Synapse ignores it altogether);
/// a `to` past what the server has handed out is clamped.
async fn changes(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let from = req.query("from").ok_or_else(|| missing_param("Missing 'from'"))?;
    let from = SyncToken::parse(from)?;
    let now = sync::current(&app).await?;
    let to = match req.query("to") {
        None | Some("") => now,
        Some(t) => {
            let t = SyncToken::parse(t)?;
            SyncToken {
                device_lists: t.device_lists.min(now.device_lists),
                events: t.events.min(now.events),
                ..t
            }
        }
    };
    let (changed, left) = e2ee::keys::changes(&app, &user, from, to).await?;
    Ok(ok(&json!({"changed": changed, "left": left})))
}

async fn device_signing_upload(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let body = req.json_object(false)?;
    cross_signing::upload_keys(&app, &user, &body).await?;
    Ok(empty_object())
}

async fn signatures_upload(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let body = req.json_object(false)?;
    Ok(ok(&cross_signing::upload_signatures(&app, &user, &body).await?))
}
