//! History visibility (spec: client-server API, "Room History Visibility"): whether a user
//! may see an event, from the room's `m.room.history_visibility` and the user's membership
//! at that event.
//!
//! - `world_readable`: anyone.
//! - `shared` (the default): members at the event, and anyone currently joined.
//! - `invited`: from the user's invite onwards.
//! - `joined`: from the user's join onwards.

use rusqlite::Connection;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::events::{self, EventRow};
use crate::store::state;

fn content_field(c: &Connection, nid: Option<i64>, field: &str) -> Result<Option<String>> {
    let Some(nid) = nid else { return Ok(None) };
    let Some(row) = events::by_nid(c, nid)? else { return Ok(None) };
    let v: Value = serde_json::from_str(&row.json).map_err(Error::internal)?;
    Ok(v["content"][field].as_str().map(str::to_string))
}

/// May `user_id` see `row`? `currently_joined` is the user's current membership.
pub fn visible(
    c: &Connection,
    row: &EventRow,
    user_id: &str,
    currently_joined: bool,
) -> Result<bool> {
    let Some(group) = row.state_before else { return Ok(true) };
    let hv = content_field(
        c,
        state::lookup(c, group, "m.room.history_visibility", "")?,
        "history_visibility",
    )?
    .unwrap_or_else(|| "shared".into());
    if hv == "world_readable" {
        return Ok(true);
    }
    // Users always see their own membership events (their join, invite, leave, ban).
    if row.event_type == "m.room.member" && row.state_key.as_deref() == Some(user_id) {
        return Ok(true);
    }
    let membership =
        content_field(c, state::lookup(c, group, "m.room.member", user_id)?, "membership")?;
    Ok(match membership.as_deref() {
        Some("join") => true,
        Some("invite") if hv == "invited" || hv == "shared" && currently_joined => true,
        _ => hv == "shared" && currently_joined,
    })
}

/// Keep the events the user may see.
pub fn filter(
    c: &Connection,
    rows: Vec<EventRow>,
    user_id: &str,
    currently_joined: bool,
) -> Result<Vec<EventRow>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if visible(c, &r, user_id, currently_joined)? {
            out.push(r);
        }
    }
    Ok(out)
}

/// May the server `server` see `row` (history visibility on `/event`, `/backfill` and
/// `/get_missing_events`, as Synapse filters them)? World-readable and shared history is
/// for any server in the room; `invited` and `joined` history only for a server that had
/// a user invited (for `invited`) or joined at the event. Others get the event redacted.
pub fn server_may_see(c: &Connection, row: &EventRow, server: &str) -> Result<bool> {
    let Some(group) = row.state_before else { return Ok(true) };
    let hv = content_field(
        c,
        state::lookup(c, group, "m.room.history_visibility", "")?,
        "history_visibility",
    )?
    .unwrap_or_else(|| "shared".into());
    if hv != "invited" && hv != "joined" {
        return Ok(true);
    }
    let suffix = format!(":{server}");
    for ((t, user), nid) in state::state_at(c, group)? {
        if t != "m.room.member" || !user.ends_with(&suffix) {
            continue;
        }
        match content_field(c, Some(nid), "membership")?.as_deref() {
            Some("join") => return Ok(true),
            Some("invite") if hv == "invited" => return Ok(true),
            _ => {}
        }
    }
    Ok(false)
}
