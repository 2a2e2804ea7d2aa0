//! `GET /sync`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::app::App;
use crate::error::{Error, Result, invalid_param, not_found};
use crate::filter::Filter;
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::store::filters;
use crate::sync::{self, SyncRequest, SyncToken};

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/sync", get_sync);
}

async fn get_sync(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let since = req.query("since").map(SyncToken::parse).transpose()?;
    let timeout = match req.query("timeout") {
        None => 0,
        Some(t) => t.parse::<u64>().map_err(|_| invalid_param("timeout must be milliseconds"))?,
    };
    let full_state = match req.query("full_state") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(invalid_param("full_state must be true or false")),
    };
    let filter = match req.query("filter") {
        None => Filter::default(),
        Some(f) if f.trim_start().starts_with('{') => {
            let v: Value = serde_json::from_str(f)
                .map_err(|e| Error::NotJson(format!("filter is not JSON: {e}")))?;
            Filter::parse(&v)?
        }
        Some(id) => {
            let id: i64 = id.parse().map_err(|_| invalid_param("Invalid filter ID"))?;
            let nid = user.user_nid;
            let text = app.db.read(move |c| filters::get(c, nid, id)).await?;
            let text = text.ok_or_else(|| not_found("No such filter"))?;
            let v: Value = serde_json::from_str(&text).map_err(Error::internal)?;
            Filter::parse(&v)?
        }
    };
    if let Some(state) = req.query("set_presence") {
        if !super::presence::STATES.contains(&state) {
            return Err(invalid_param("set_presence must be online, unavailable or offline"));
        }
        // Only a change is written: every sync would otherwise wake every watcher.
        let uid = user.user_id.clone();
        let cur = app.db.read(move |c| crate::store::presence::get(c, &uid)).await?;
        if cur.as_ref().map(|r| r.state.as_str()) != Some(state) {
            super::presence::set(&app, &user.user_id, state, None).await?;
        }
    }
    let body = sync::sync(
        &app,
        &user,
        SyncRequest { since, timeout: Duration::from_millis(timeout), filter, full_state },
    )
    .await?;
    Ok(ok(&body))
}
