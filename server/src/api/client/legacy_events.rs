//! The legacy event stream, `GET /events?from=&timeout=` (deprecated in the spec, still
//! served by Synapse and used by SyTest and old clients): the events of the caller's
//! joined rooms (or of one, `room_id`) and its own membership changes after `from`,
//! long-polling up to `timeout` ms. Tokens are `e<stream position>`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::app::App;
use crate::error::{Error, Result, invalid_param};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::rooms::format;
use crate::store::events;

/// Longest wait a client may ask for, and most events per answer.
const MAX_TIMEOUT_MS: u64 = 60_000;
const LIMIT: i64 = 100;

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/events", stream);
}

async fn stream(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    // `room_id` narrows the stream to a room the caller is joined to (peeking is not
    // supported); guests may only use it that way, as in Synapse.
    let only_room = match req.query("room_id") {
        Some(r) => Some(super::room_state::joined_room(&app, &user, r).await?.nid),
        None if user.is_guest => {
            // As Synapse answers: 400 M_UNKNOWN.
            return Err(Error::Unknown("Guest users must specify room_id param".into()));
        }
        None => None,
    };
    let timeout = match req.query("timeout") {
        None => 0,
        Some(t) => t.parse::<u64>().map_err(|_| invalid_param("timeout must be milliseconds"))?,
    };
    let limit = match req.query("limit") {
        None => LIMIT,
        Some(l) => l
            .parse::<u64>()
            .map_err(|_| invalid_param("limit must be a non-negative number"))?
            .min(LIMIT as u64) as _,
    };
    let from = match req.query("from") {
        Some(t) => t
            .strip_prefix('e')
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or_else(|| invalid_param("Invalid from token"))?,
        None => app.db.read(events::stream_head).await?,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout.min(MAX_TIMEOUT_MS));
    loop {
        // Subscribe before looking, so nothing committed in between is missed.
        let mut wake = app.notifier.subscribe();
        let uid = user.user_id.clone();
        let chunk = app
            .db
            .read(move |c| {
                let rows = events::stream_for_user(c, &uid, only_room, from, limit)?;
                let end = rows.iter().filter_map(|r| r.stream_pos).max().unwrap_or(from);
                Ok((format::client_events(c, &rows, None)?, end))
            })
            .await?;
        let (evs, end) = chunk;
        if !evs.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(ok(&json!({
                "chunk": evs,
                "start": format!("e{from}"),
                "end": format!("e{end}"),
            })));
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            // Answer at once when the server stops, as /sync does.
            _ = app.shutting_down() => {
                let tok = format!("e{from}");
                return Ok(ok(&json!({"chunk": [], "start": tok, "end": tok})));
            }
        }
    }
}
