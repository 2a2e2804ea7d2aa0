//! Backfill: a room's older history from a server in it (`GET /backfill`), for
//! `/messages` paging past the earliest event we hold (a room joined over federation
//! starts at our join). Each event is verified as any PDU (signatures, content hash,
//! auth against its auth events and against the state before it, that state from its
//! prev_events or from the remote's `/state_ids`), then stored as history: before
//! everything on the events stream, changing neither current state nor forward
//! extremities, so `/sync` never shows it as new.

use http::Method;
use ruma::OwnedEventId;
use serde_json::Value;

use crate::app::App;
use crate::error::{Error, Result};
use crate::federation::{encode, inbound, remote_state};
use crate::rooms::resolve::{self, IdState};
use crate::rooms::{Locked, PduRef};
use crate::store::events::{self, Placement};
use crate::store::state;

/// Most backward extremities one request starts from.
const MAX_POINTS: i64 = 20;
/// Most events asked for (and kept) per request.
const MAX_LIMIT: usize = 100;

/// Fetch up to `limit` events older than what we hold of the room from one of the
/// servers in it, and store them. Whether anything new was stored: false when history
/// is complete (we hold the create event's line) or no server could give more.
pub async fn backfill(app: &App, room_id: &str, limit: usize) -> Result<bool> {
    let rid = room_id.to_string();
    let own = app.config.server_name.to_string();
    let found = app
        .db
        .read(move |c| {
            let Some(room) = crate::store::rooms::get(c, &rid)? else { return Ok(None) };
            let points = events::backward_extremities(c, room.nid, MAX_POINTS)?;
            let servers = crate::store::federation::allowed_hosts(c, room.nid, &own)?;
            Ok(Some((points, servers)))
        })
        .await?;
    let Some((points, servers)) = found else { return Ok(false) };
    if points.is_empty() {
        return Ok(false);
    }
    let limit = limit.clamp(10, MAX_LIMIT);
    let mut query = format!("limit={limit}");
    for p in &points {
        query.push_str(&format!("&v={}", encode(p)));
    }
    let path = format!("/_matrix/federation/v1/backfill/{}?{query}", encode(room_id));
    for server in servers {
        let pdus = match app.fed_request(&server, Method::GET, &path, None).await {
            Ok((s, b)) if s.is_success() => b["pdus"].as_array().cloned().unwrap_or_default(),
            Ok((s, _)) => {
                tracing::info!(%server, %room_id, "backfill answered {s}");
                continue;
            }
            Err(e) => {
                tracing::info!(%server, %room_id, "backfill failed: {e}");
                continue;
            }
        };
        let mut room = app.rooms.lock(app, room_id).await?;
        let stored = store(app, &mut room, &server, &pdus[..pdus.len().min(limit)]).await?;
        if stored > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Verify and store backfilled events from `origin`; how many took a place in history.
async fn store(app: &App, room: &mut Locked, origin: &str, raw: &[Value]) -> Result<usize> {
    let mut pdus: Vec<PduRef> = vec![];
    for r in raw {
        match inbound::verify_pdu(app, &room.rules, r).await {
            Ok(p) if p.room_id == room.room_id => {
                if !pdus.iter().any(|q| q.event_id == p.event_id) {
                    pdus.push(p);
                }
            }
            Ok(p) => {
                tracing::info!(event_id = %p.event_id, "backfill: dropping an event of another room")
            }
            Err(e) => {
                tracing::info!(%origin, "backfill: dropping an event that failed verification: {e}")
            }
        }
    }
    // Oldest first, so each event's prev_events (when in the batch) have their state.
    pdus.sort_by_key(|p| p.depth);
    let mut placed: Vec<(i64, &PduRef)> = vec![];
    for p in &pdus {
        if let Some(nid) = store_one(app, room, origin, p).await? {
            placed.push((nid, p));
        }
    }
    let mut nids: Vec<i64> = placed.iter().map(|(n, _)| *n).collect();
    nids.reverse();
    app.db.write(move |c| events::assign_backfill_positions(c, &nids)).await?;
    for (_, p) in &placed {
        crate::rooms::redaction::after_remote(app, room, p).await?;
    }
    Ok(placed.len())
}

/// Check one backfilled event and store it (or give an outlier we held its state).
/// Its nid when it belongs in history; None when known already, or dropped or rejected.
async fn store_one(app: &App, room: &mut Locked, origin: &str, p: &PduRef) -> Result<Option<i64>> {
    let id = p.event_id.to_string();
    let existing = app.db.read(move |c| events::by_id(c, &id)).await?;
    let outlier = match &existing {
        Some(r) if r.stream_pos.is_some() || r.rejected.is_some() || r.soft_failed => {
            return Ok(None);
        }
        Some(r) => Some(r.nid),
        None => None,
    };
    let mut auth = inbound::load(app, room, &p.auth_events).await?;
    if auth.len() < p.auth_events.len() {
        if let Err(e) = inbound::fetch_auth_chain(app, room, origin, p).await {
            tracing::info!(%origin, event_id = %p.event_id, "backfill: no auth chain: {e}");
        }
        auth = inbound::load(app, room, &p.auth_events).await?;
    }
    if auth.len() < p.auth_events.len() {
        tracing::info!(event_id = %p.event_id, "backfill: dropping an event whose auth events are unknown");
        return Ok(None);
    }
    let why = if auth.iter().any(|a| a.rejected) {
        Some("an auth event was rejected".to_string())
    } else {
        inbound::check_auth(room, p, &auth).err()
    };
    let before = match why {
        Some(_) => None,
        None => state_before(app, room, origin, p).await?,
    };
    let why = why.or_else(|| {
        let (_, full) = before.as_ref()?;
        ruma::state_res::check_state_dependent_auth_rules(&room.rules.authorization, p, |t, k| {
            full.get(&(t.to_string(), k.to_string())).cloned()
        })
        .err()
        .map(|e| format!("fails auth against the state before it: {e}"))
    });
    if let Some(why) = why {
        tracing::info!(event_id = %p.event_id, "backfill: rejecting an event: {why}");
        if outlier.is_none() {
            inbound::write_outlier(app, room.nid, p, Some(why)).await?;
        }
        return Ok(None);
    }
    let ids: Option<IdState> = before.map(|(ids, _)| ids);
    let (p, room_nid) = (p.clone(), room.nid);
    let nid = app
        .db
        .write(move |c| {
            let group = match &ids {
                Some(ids) => Some(state::group_for(c, room_nid, None, &resolve::to_nids(c, ids)?)?),
                None => None,
            };
            let t = p.type_str();
            if let Some(nid) = outlier {
                if let Some(g) = group {
                    events::set_historical_state(c, room_nid, nid, g, &t, p.state_key.as_deref())?;
                }
                return Ok(nid);
            }
            let json = serde_json::to_string(&p.json).map_err(Error::internal)?;
            let prev: Vec<String> = p.prev_events.iter().map(|e| e.to_string()).collect();
            let row = inbound::new_row(&p, &t, &json, &prev);
            Ok(events::insert(c, room_nid, group, &row, Placement::OUTLIER)?.nid)
        })
        .await?;
    Ok(Some(nid))
}

/// The state before a backfilled event: none for the create event; else from its
/// prev_events, asking `origin` for those we lack. None when that failed (the event is
/// kept without a state: it passed auth against its own auth events).
async fn state_before(
    app: &App,
    room: &mut Locked,
    origin: &str,
    p: &PduRef,
) -> Result<Option<(IdState, inbound::StateByKey)>> {
    if p.prev_events.is_empty() {
        return Ok(Some((IdState::new(), inbound::StateByKey::new())));
    }
    let prevs: Vec<OwnedEventId> = p.prev_events.to_vec();
    remote_state::state_before(app, room, origin, &prevs).await
}
