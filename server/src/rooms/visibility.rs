//! History visibility (spec: client-server API, "Room History Visibility"): whether a user
//! may see an event, from the room's `m.room.history_visibility` and the user's membership
//! at that event.
//!
//! - `world_readable`: anyone.
//! - `shared` (the default): members at the event, and anyone currently joined.
//! - `invited`: from the user's invite onwards.
//! - `joined`: from the user's join onwards.

use std::collections::HashMap;

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
    visible_cached(c, row, user_id, currently_joined, &mut Cache::default())
}

/// What `visible` reads per state group: the history visibility and the user's membership.
/// Consecutive messages share their state group, so a page of them reads it once.
#[derive(Default)]
pub struct Cache<'a> {
    by_group: HashMap<i64, (String, Option<String>)>,
    /// Full states the caller has read already (lookups in them cost no query).
    states: Option<&'a state::Snapshots>,
}

impl<'a> Cache<'a> {
    pub fn with_states(states: &'a state::Snapshots) -> Cache<'a> {
        Cache { by_group: HashMap::new(), states: Some(states) }
    }
}

/// `visible`, reading each state group's facts once per `cache`.
pub fn visible_cached(
    c: &Connection,
    row: &EventRow,
    user_id: &str,
    currently_joined: bool,
    cache: &mut Cache<'_>,
) -> Result<bool> {
    let Some(group) = row.state_before else { return Ok(true) };
    if !cache.by_group.contains_key(&group) {
        let hv = content_field(
            c,
            state::lookup_in(cache.states, c, group, "m.room.history_visibility", "")?,
            "history_visibility",
        )?
        .unwrap_or_else(|| "shared".into());
        let membership = content_field(
            c,
            state::lookup_in(cache.states, c, group, "m.room.member", user_id)?,
            "membership",
        )?;
        cache.by_group.insert(group, (hv, membership));
    }
    let Some((hv, membership)) = cache.by_group.get(&group) else { return Ok(false) };
    Ok(decide(hv, membership.as_deref(), row, user_id, currently_joined))
}

/// The rule itself, given the history visibility and the user's membership at the event.
fn decide(
    hv: &str,
    membership: Option<&str>,
    row: &EventRow,
    user_id: &str,
    currently_joined: bool,
) -> bool {
    if hv == "world_readable" {
        return true;
    }
    // Users always see their own membership events (their join, invite, leave, ban).
    if row.event_type == "m.room.member" && row.state_key.as_deref() == Some(user_id) {
        return true;
    }
    match membership {
        Some("join") => true,
        Some("invite") if hv == "invited" || hv == "shared" && currently_joined => true,
        _ => hv == "shared" && currently_joined,
    }
}

pub fn filter(
    c: &Connection,
    rows: Vec<EventRow>,
    user_id: &str,
    currently_joined: bool,
) -> Result<Vec<EventRow>> {
    let mut out = Vec::with_capacity(rows.len());
    let mut cache = Cache::default();
    for r in rows {
        if visible_cached(c, &r, user_id, currently_joined, &mut cache)? {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(event_type: &str, state_key: Option<&str>) -> EventRow {
        EventRow {
            nid: 1,
            event_id: "$e".into(),
            room_nid: 1,
            event_type: event_type.into(),
            state_key: state_key.map(str::to_string),
            sender: "@s:x".into(),
            stream_pos: Some(1),
            json: "{}".into(),
            state_before: Some(1),
            state_after: Some(1),
            rejected: None,
            soft_failed: false,
            redacted_by: None,
            replaces_nid: None,
            origin_server_ts: 0,
        }
    }

    #[test]
    fn the_rule_by_visibility_and_membership() {
        let msg = row("m.room.message", None);
        let me = "@me:x";
        assert!(decide("world_readable", None, &msg, me, false));
        assert!(decide("joined", Some("join"), &msg, me, false));
        assert!(!decide("joined", Some("invite"), &msg, me, true));
        assert!(decide("invited", Some("invite"), &msg, me, false));
        assert!(decide("shared", Some("invite"), &msg, me, true));
        assert!(decide("shared", None, &msg, me, true));
        assert!(!decide("shared", None, &msg, me, false));
        assert!(!decide("joined", Some("leave"), &msg, me, true));
        let own = row("m.room.member", Some(me));
        assert!(decide("joined", Some("leave"), &own, me, false), "own membership events");
    }
}
