//! Reading events: `/event/{eventId}` and `/messages` (pagination in both directions).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, invalid_param, not_found};
use crate::filter::RoomEventFilter;
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::rooms::format::{self, Viewer};
use crate::rooms::visibility;
use crate::store::events;
use crate::sync::SyncToken;

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/rooms/{}/event/{}", get_event);
    r.get("/_matrix/client/{v}/rooms/{}/messages", messages);
    r.get("/_matrix/client/{v}/rooms/{}/context/{}", context);
    r.get("/_matrix/client/v1/rooms/{}/timestamp_to_event", timestamp_to_event);
}

async fn context(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let room = super::room_state::joined_room(&app, &user, req.param(0)).await?;
    let event_id = req.param(1).to_string();
    ruma::EventId::parse(&event_id).map_err(|_| invalid_param("Invalid event ID"))?;
    let limit = match req.query("limit") {
        None => 10,
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| invalid_param("limit must be a number"))?
            .clamp(0, MAX_LIMIT),
    };
    // As in Synapse: half the limit before the event, the rest after.
    let (before_n, after_n) = (limit / 2, limit - limit / 2);
    let (nid, dev, uid) = (user.user_nid, user.device_id.clone(), user.user_id.clone());
    let body = app
        .db
        .read(move |c| {
            let Some(row) = events::by_id(c, &event_id)? else { return Ok(None) };
            let Some(pos) =
                row.stream_pos.filter(|_| row.room_nid == room.nid && row.rejected.is_none())
            else {
                return Ok(None);
            };
            let current: i64 =
                c.query_row("SELECT position FROM streams WHERE name = 'events'", [], |r| {
                    r.get(0)
                })?;
            let before = events::timeline_desc(c, room.nid, i64::MIN, pos - 1, before_n)?;
            let after = events::timeline_asc(c, room.nid, pos + 1, current + 1, after_n)?;
            let v = Viewer { user_nid: nid, user_id: &uid, device_id: &dev };
            let state_nids: Vec<i64> = match row.state_before {
                Some(g) => crate::store::state::state_at(c, g)?.into_values().collect(),
                None => vec![],
            };
            let state = format::client_events(c, &events::by_nids(c, &state_nids)?, None)?;
            let start = before.last().and_then(|r| r.stream_pos).map(|p| p - 1).unwrap_or(pos - 1);
            let end = after.last().and_then(|r| r.stream_pos).unwrap_or(pos);
            Ok(Some(json!({
                "event": format::client_event(c, &row, Some(v))?,
                "events_before": format::client_events(c, &before, Some(v))?,
                "events_after": format::client_events(c, &after, Some(v))?,
                "start": format!("p{start}"),
                "end": format!("p{end}"),
                "state": state,
            })))
        })
        .await?;
    Ok(ok(&body.ok_or_else(|| not_found("Event not found."))?))
}

async fn timestamp_to_event(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let room = super::room_state::joined_room(&app, &user, req.param(0)).await?;
    let ts: i64 = req
        .query("ts")
        .ok_or_else(|| Error::MissingParam("Missing ts".into()))?
        .parse()
        .map_err(|_| invalid_param("ts must be a timestamp"))?;
    let forwards = match req.query("dir") {
        Some("f") => true,
        Some("b") => false,
        _ => return Err(invalid_param("dir must be 'f' or 'b'")),
    };
    let sql = if forwards {
        "SELECT event_id, origin_server_ts FROM events WHERE room_nid = ?1 AND stream_pos IS NOT NULL
         AND rejected IS NULL AND origin_server_ts >= ?2 ORDER BY origin_server_ts ASC, stream_pos ASC LIMIT 1"
    } else {
        "SELECT event_id, origin_server_ts FROM events WHERE room_nid = ?1 AND stream_pos IS NOT NULL
         AND rejected IS NULL AND origin_server_ts <= ?2 ORDER BY origin_server_ts DESC, stream_pos DESC LIMIT 1"
    };
    let found = app
        .db
        .read(move |c| {
            use rusqlite::OptionalExtension;
            Ok(c.prepare_cached(sql)?
                .query_row(rusqlite::params![room.nid, ts], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()?)
        })
        .await?;
    let (event_id, origin_server_ts) = found.ok_or_else(|| not_found("No event found"))?;
    Ok(ok(&json!({"event_id": event_id, "origin_server_ts": origin_server_ts})))
}

/// Largest page `/messages` returns; bigger limits are clamped, as in Synapse.
const MAX_LIMIT: i64 = 1000;

async fn get_event(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    // The spec's 404 covers "not found" and "you may not see it" alike, so an outsider
    // learns nothing about the room's events.
    let room =
        super::room_state::readable_room(&app, &user, req.param(0)).await.map_err(|e| match e {
            Error::Forbidden(_) => not_found("Event not found."),
            other => other,
        })?;
    let event_id = req.param(1).to_string();
    ruma::EventId::parse(&event_id).map_err(|_| invalid_param("Invalid event ID"))?;
    let (nid, dev, uid) = (user.user_nid, user.device_id.clone(), user.user_id.clone());
    let ev = app
        .db
        .read(move |c| {
            let Some(row) = events::by_id(c, &event_id)? else { return Ok(None) };
            if row.room_nid != room.room.nid || row.rejected.is_some() {
                return Ok(None);
            }
            // History visibility: e.g. a user who left sees what was sent while they were in.
            if !visibility::visible(c, &row, &uid, room.left.is_none())? {
                return Ok(None);
            }
            let v = Viewer { user_nid: nid, user_id: &uid, device_id: &dev };
            format::client_event(c, &row, Some(v)).map(Some)
        })
        .await?;
    Ok(ok(&ev.ok_or_else(|| not_found("Event not found."))?))
}

/// A pagination token: a position in the events stream (`p<pos>`), or a sync token.
/// Positions below zero are history backfilled from other servers.
pub fn parse_position(token: &str) -> Result<i64> {
    if let Some(p) = token.strip_prefix('p') {
        return p
            .parse::<i64>()
            .ok()
            .filter(|p| *p > i64::MIN)
            .ok_or_else(|| invalid_param("Invalid pagination token"));
    }
    Ok(SyncToken::parse(token)?.events)
}

/// How many times one `/messages` request asks other servers for older history.
const BACKFILL_ROUNDS: usize = 3;

async fn messages(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let room = super::room_state::readable_room(&app, &user, req.param(0)).await?;
    let backwards = match req.query("dir") {
        Some("b") => true,
        Some("f") => false,
        _ => return Err(invalid_param("dir must be 'b' or 'f'")),
    };
    let limit = match req.query("limit") {
        None => 10,
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| invalid_param("limit must be a number"))?
            .clamp(0, MAX_LIMIT),
    };
    let from = req.query("from").map(parse_position).transpose()?;
    let to = req.query("to").map(parse_position).transpose()?;
    let filter: Option<RoomEventFilter> = match req.query("filter") {
        None => None,
        Some(f) => Some(
            serde_json::from_str(f).map_err(|e| Error::BadJson(format!("Invalid filter: {e}")))?,
        ),
    };
    let lazy_members = filter.as_ref().and_then(|f| f.lazy_load_members).unwrap_or(false);
    let (nid, dev, uid) = (user.user_nid, user.device_id.clone(), user.user_id.clone());
    let room_id = room.room.room_id.clone();
    let page = Arc::new(PageArgs {
        room,
        backwards,
        limit,
        from,
        to,
        filter,
        lazy_members,
        nid,
        dev,
        uid,
    });
    let mut rounds = 0;
    let mut more = true;
    loop {
        let p = page.clone();
        let (body, reached_start) = app.db.read(move |c| read_page(c, &p)).await?;
        // Paging back past the earliest event we hold: older history may be on the
        // other servers in the room. A peer that fails leaves the page as it is.
        if !reached_start || !more || rounds == BACKFILL_ROUNDS {
            return Ok(ok(&body));
        }
        rounds += 1;
        // Read again even when this found nothing new: a concurrent request may just
        // have stored the same history.
        more = crate::federation::backfill::backfill(&app, &room_id, limit as usize)
            .await
            .unwrap_or_else(|e| {
                tracing::info!(%room_id, "backfill failed: {e}");
                false
            });
    }
}

/// What one `/messages` request reads.
struct PageArgs {
    room: super::room_state::Readable,
    backwards: bool,
    limit: i64,
    from: Option<i64>,
    to: Option<i64>,
    filter: Option<RoomEventFilter>,
    lazy_members: bool,
    nid: i64,
    dev: String,
    uid: String,
}

/// One page of `/messages`, and whether it is a backward page that ran out of events at
/// the start of what we hold (not at `to`) before it was full.
fn read_page(c: &rusqlite::Connection, a: &PageArgs) -> Result<(Value, bool)> {
    let PageArgs { room, backwards, limit, from, to, filter, lazy_members, nid, dev, uid } = a;
    let (backwards, limit, from, to, lazy_members, nid) =
        (*backwards, *limit, *from, *to, *lazy_members, *nid);
    // A token at position p sits between events <= p and events > p.
    let current: i64 =
        c.query_row("SELECT position FROM streams WHERE name = 'events'", [], |r| r.get(0))?;
    let start = from.unwrap_or(if backwards { current } else { i64::MIN + 1 });
    let ignored = crate::sync::rooms::ignored_users(c, nid)?;
    let joined = room.left.is_none();
    let shown = |r: &events::EventRow| -> Result<bool> {
        Ok(filter.as_ref().is_none_or(|f| wanted(f, r))
            && (r.state_key.is_some() || !ignored.contains(&r.sender))
            && visibility::visible(c, r, uid, joined)?)
    };
    // `limit` counts the events returned, after the filter and ignored users: read
    // in batches until the page is full or the timeline (or `to`) is exhausted.
    let batch = if filter.is_none() && ignored.is_empty() {
        limit
    } else {
        (limit * 2).clamp(50, MAX_LIMIT)
    };
    let (lower, upper) =
        if backwards { (to.unwrap_or(i64::MIN), start) } else { (start, to.unwrap_or(current)) };
    // A user who left sees nothing after their leave: stop reading there.
    let upper = room.left.map_or(upper, |(left_at, _)| upper.min(left_at));
    let mut rows: Vec<events::EventRow> = vec![];
    // The position the next batch continues from (inclusive bound).
    let mut cursor = if backwards { upper } else { lower + 1 };
    let mut last_seen = None;
    while (rows.len() as i64) < limit {
        let got = if backwards {
            events::timeline_desc(c, room.room.nid, lower, cursor, batch)?
        } else {
            events::timeline_asc(c, room.room.nid, cursor, upper + 1, batch)?
        };
        let exhausted = (got.len() as i64) < batch;
        for r in got {
            let pos = r.stream_pos.unwrap_or_default();
            last_seen = Some(pos);
            cursor = if backwards { pos - 1 } else { pos + 1 };
            if shown(&r)? {
                rows.push(r);
                if rows.len() as i64 == limit {
                    break;
                }
            }
        }
        if exhausted {
            break;
        }
    }
    let v = Viewer { user_nid: nid, user_id: uid, device_id: dev };
    let chunk = format::client_events(c, &rows, Some(v))?;
    let mut body = json!({"chunk": chunk, "start": format!("p{start}")});
    let full = rows.len() as i64 >= limit && limit > 0;
    let reached_start = backwards && !full && limit > 0 && to.is_none();
    if let Some(last) = last_seen
        && full
    {
        body["end"] = json!(format!("p{}", if backwards { last - 1 } else { last }));
    }
    if lazy_members {
        // The senders' membership events, so clients can render the chunk without
        // having loaded the full member list.
        let senders: std::collections::BTreeSet<&str> =
            rows.iter().map(|r| r.sender.as_str()).collect();
        let mut members = vec![];
        for s in senders {
            if let Some(nid) = room.lookup(c, "m.room.member", s)?
                && let Some(row) = events::by_nid(c, nid)?
            {
                members.push(format::client_event(c, &row, None)?);
            }
        }
        body["state"] = json!(members);
    }
    Ok((body, reached_start))
}

fn wanted(f: &RoomEventFilter, r: &events::EventRow) -> bool {
    let ty = |pats: &Vec<String>| {
        pats.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => r.event_type.starts_with(prefix),
            None => *p == r.event_type,
        })
    };
    if f.base.not_types.as_ref().is_some_and(ty) || f.base.types.as_ref().is_some_and(|t| !ty(t)) {
        return false;
    }
    if f.base.not_senders.as_ref().is_some_and(|s| s.contains(&r.sender)) {
        return false;
    }
    // `contains_url`: whether the content has a `url` string (files, images; the media
    // tab of a client). The JSON is parsed only when the filter asks.
    if let Some(want) = f.contains_url {
        let has =
            serde_json::from_str::<Value>(&r.json).is_ok_and(|v| v["content"]["url"].is_string());
        if has != want {
            return false;
        }
    }
    f.base.senders.as_ref().is_none_or(|s| s.contains(&r.sender))
}
