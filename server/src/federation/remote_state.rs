//! The state before an event whose prev_events we lack, asked of a server in the room
//! (spec: server-server API, "Checks performed on receipt of a PDU": when the gap cannot
//! be filled, "the state at the event" comes from `/state_ids` at its prev_events).
//! Each prev_event we hold with a state contributes that state; for the others the
//! remote's `/state_ids` at it (state events we lack fetched with `/event`) plus the
//! prev_event itself when it is a state event. The states are resolved together.

use http::Method;
use ruma::OwnedEventId;
use serde_json::Value;

use crate::app::App;
use crate::error::Result;
use crate::federation::{encode, inbound};
use crate::rooms::Locked;
use crate::rooms::resolve::{self, EventCache, IdState};
use crate::store::events;

/// The state before an event with these prev_events, as IDs and as events. None when
/// `origin` could not tell us (unreachable, refused, or too much to fetch).
pub async fn state_before(
    app: &App,
    room: &mut Locked,
    origin: &str,
    prevs: &[OwnedEventId],
) -> Result<Option<(IdState, inbound::StateByKey)>> {
    let mut states: Vec<IdState> = vec![];
    for prev in prevs {
        let p = prev.to_string();
        let local = app
            .db
            .read(move |c| match events::by_id(c, &p)? {
                Some(r) if r.rejected.is_none() => match r.state_after {
                    Some(g) => resolve::ids_of_group(c, g).map(Some),
                    None => Ok(None),
                },
                _ => Ok(None),
            })
            .await?;
        let state = match local {
            Some(s) => s,
            None => match remote_state_after(app, room, origin, prev).await? {
                Some(s) => s,
                None => return Ok(None),
            },
        };
        states.push(state);
    }
    let rules = room.rules.clone();
    let resolved = app
        .db
        .read(move |c| {
            let cache = EventCache::new(c, &rules, &[]);
            let ids = resolve::resolve(&cache, &states)?;
            let mut full = inbound::StateByKey::new();
            for (k, id) in &ids {
                if let Some(e) = cache.get(id) {
                    full.insert(k.clone(), e);
                }
            }
            Ok((ids, full))
        })
        .await?;
    Ok(Some(resolved))
}

/// The state after `prev` as `origin` has it: `/state_ids` (the state before it) plus
/// `prev` itself when it is a state event. What we lacked is fetched (one `/event` each,
/// or one `/state` when many are unknown) and stored as outliers; events that fail their
/// checks are kept rejected and left out, as are events of another room. None when
/// `origin` could not tell us or could not give us `prev`.
pub(crate) async fn remote_state_after(
    app: &App,
    room: &mut Locked,
    origin: &str,
    prev: &OwnedEventId,
) -> Result<Option<IdState>> {
    let path = format!(
        "/_matrix/federation/v1/state_ids/{}?event_id={}",
        encode(room.room_id.as_str()),
        encode(prev.as_str())
    );
    let Some(body) = ask(app, origin, &path).await else {
        return Ok(None);
    };
    let ids_in = |k: &str| -> Vec<String> {
        body[k]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let state_ids = ids_in("pdu_ids");
    let mut wanted = ids_in("auth_chain_ids");
    wanted.extend(state_ids.iter().cloned());
    wanted.push(prev.to_string());
    let missing = app
        .db
        .read(move |c| {
            let mut out = vec![];
            for id in wanted {
                if events::by_id(c, &id)?.is_none() && !out.contains(&id) {
                    out.push(id);
                }
            }
            Ok(out)
        })
        .await?;
    let fetched = if missing.len() > FETCH_ONE_BY_ONE {
        // Many unknown: the whole state and auth chain in one request instead.
        let path = format!(
            "/_matrix/federation/v1/state/{}?event_id={}",
            encode(room.room_id.as_str()),
            encode(prev.as_str())
        );
        let Some(body) = ask(app, origin, &path).await else {
            return Ok(None);
        };
        let mut raw = vec![];
        for k in ["pdus", "auth_chain"] {
            raw.extend(body[k].as_array().cloned().unwrap_or_default());
        }
        raw.extend(fetch_event(app, origin, prev.as_str()).await);
        raw
    } else {
        let mut raw = vec![];
        for id in &missing {
            raw.extend(fetch_event(app, origin, id).await);
        }
        raw
    };
    // Verified and checked against their own auth events; the failures are kept
    // rejected, and so left out below.
    inbound::store_outliers(app, room, &fetched).await?;
    let (rules, room_id, p) = (room.rules.clone(), room.room_id.clone(), prev.to_string());
    app.db
        .read(move |c| {
            let cache = EventCache::new(c, &rules, &[]);
            if cache.get(&p).is_none() {
                return Ok(None);
            }
            let mut state = IdState::new();
            for id in state_ids.iter().chain(std::iter::once(&p)) {
                if let Some(e) = cache.get(id)
                    && !e.rejected
                    && e.room_id == room_id
                    && let Some(k) = &e.state_key
                {
                    state.insert((e.type_str(), k.clone()), id.clone());
                }
            }
            Ok(Some(state))
        })
        .await
}

/// Up to how many unknown events of a state `/event` fetches, one request each.
const FETCH_ONE_BY_ONE: usize = 50;

/// A successful answer's body from `origin`, None (logged) otherwise.
async fn ask(app: &App, origin: &str, path: &str) -> Option<Value> {
    match app.fed_request(origin, Method::GET, path, None).await {
        Ok((s, b)) if s.is_success() => Some(b),
        Ok((s, _)) => {
            tracing::info!(%origin, path, "answered {s}");
            None
        }
        Err(e) => {
            tracing::info!(%origin, path, "failed: {e}");
            None
        }
    }
}

/// One event from `origin` with `/event`, unverified (the caller verifies).
pub async fn fetch_event(app: &App, origin: &str, id: &str) -> Option<Value> {
    let path = format!("/_matrix/federation/v1/event/{}", encode(id));
    ask(app, origin, &path).await?["pdus"].as_array().and_then(|a| a.first()).cloned()
}
