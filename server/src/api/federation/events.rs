//! Reading a room's DAG over federation: `/event`, `/event_auth`, `/state`, `/state_ids`,
//! `/backfill` and `/get_missing_events`, for servers that are in the room.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::rooms::resolve::{self, EventCache};
use crate::store::{events, now_ms, rooms};

pub fn routes(r: &mut Router) {
    r.get("/_matrix/federation/v1/event/{}", event);
    r.get("/_matrix/federation/v1/event_auth/{}/{}", event_auth);
    r.get("/_matrix/federation/v1/state/{}", room_state);
    r.get("/_matrix/federation/v1/state_ids/{}", room_state_ids);
    r.get("/_matrix/federation/v1/backfill/{}", backfill);
    r.post("/_matrix/federation/v1/get_missing_events/{}", get_missing_events);
}

/// The room's row and rules, after checking the requesting server is in it (or the room
/// is world-readable).
async fn room_for(
    app: &App,
    origin: &str,
    room_id: &str,
) -> Result<(i64, ruma::room_version_rules::RoomVersionRules)> {
    let (rid, o) = (room_id.to_string(), origin.to_string());
    let found = app
        .db
        .read(move |c| {
            let Some(r) = rooms::get(c, &rid)? else { return Ok(None) };
            if !crate::rooms::acl::room_allows(c, r.nid, &o)? {
                return Ok(Some((r, false)));
            }
            let member = crate::store::federation::server_in_room(c, r.nid, &o)?;
            let readable =
                crate::store::state::current_lookup(c, r.nid, "m.room.history_visibility", "")?
                    .and_then(|n| events::by_nid(c, n).ok().flatten())
                    .is_some_and(|e| e.json.contains("\"world_readable\""));
            Ok(Some((r, member || readable)))
        })
        .await?;
    let (room, allowed) = found.ok_or_else(|| Error::NotFound("Unknown room".into()))?;
    if !allowed {
        return Err(Error::Forbidden(format!("{origin} is not in room {room_id}")));
    }
    let (_, rules) = crate::rooms::rules_for(&room.room_version)?;
    Ok((room.nid, rules))
}

fn pdu_json(json: &str) -> Value {
    let mut v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    // What we keep in `unsigned` is ours (invite state), not part of the PDU.
    if let Some(o) = v.as_object_mut() {
        o.remove("unsigned");
    }
    v
}

async fn event(app: Arc<App>, req: Req) -> Result<Resp> {
    let origin = app.auth_server(&req).await?;
    let id = req.param(0).to_string();
    let i = id.clone();
    let row = app
        .db
        .read(move |c| events::by_id(c, &i))
        .await?
        .ok_or_else(|| Error::NotFound("Unknown event".into()))?;
    let room_id = app
        .db
        .read(move |c| rooms::get_by_nid(c, row.room_nid))
        .await?
        .map(|r| r.room_id)
        .unwrap_or_default();
    let (_, rules) = room_for(&app, &origin, &room_id).await?;
    // As the requester may see it (redacted when the history is not for it).
    let pdus: Vec<Value> = app
        .db
        .read(move |c| match events::by_id(c, &id)? {
            Some(r) => Ok(vec![for_server(c, &r, &origin, &rules)?]),
            None => Ok(vec![]),
        })
        .await?;
    Ok(ok(&json!({
        "origin": app.config.server_name.as_str(),
        "origin_server_ts": now_ms(),
        "pdus": pdus,
    })))
}

async fn event_auth(app: Arc<App>, req: Req) -> Result<Resp> {
    let origin = app.auth_server(&req).await?;
    let (_, rules) = room_for(&app, &origin, req.param(0)).await?;
    let (id, room_id) = (req.param(1).to_string(), req.param(0).to_string());
    let chain = app
        .db
        .read(move |c| {
            let cache = EventCache::new(c, &rules, &[]);
            // Only an accepted event of the room named (the requester is in that one),
            // as Synapse serves no rejected event.
            let ev = cache
                .get(&id)
                .filter(|e| e.room_id.as_str() == room_id && !e.rejected)
                .ok_or_else(|| Error::NotFound("Unknown event".into()))?;
            // Its auth events and theirs, all the way up: the event's own auth events
            // are part of its chain.
            let ids = cache.auth_chain(std::slice::from_ref(&ev.event_id));
            Ok(ids
                .iter()
                .filter_map(|i| cache.get(i.as_str()))
                .map(|p| json!(p.json))
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(ok(&json!({"auth_chain": chain})))
}

/// The state before `event_id` and its auth chain, as events or as IDs.
async fn state_at(
    app: &App,
    req: &Req,
) -> Result<(Vec<Value>, Vec<Value>, Vec<String>, Vec<String>)> {
    let origin = app.auth_server(req).await?;
    // The parameter before the room, as Synapse: a request without it is 400 whatever
    // room it names.
    let id = req
        .query("event_id")
        .ok_or_else(|| Error::MissingParam("Missing event_id".into()))?
        .to_string();
    let (room_nid, rules) = room_for(app, &origin, req.param(0)).await?;
    app.db
        .read(move |c| {
            // Only accepted events of the room named: the requester is in that one, and
            // Synapse has no state to serve at a rejected event.
            let row = events::by_id(c, &id)?
                .filter(|r| r.room_nid == room_nid && r.rejected.is_none())
                .ok_or_else(|| Error::NotFound("Unknown event".into()))?;
            let state = match row.state_before {
                Some(g) => resolve::ids_of_group(c, g)?,
                None => return Err(Error::NotFound("The state at that event is not known".into())),
            };
            let cache = EventCache::new(c, &rules, &[]);
            let ids: Vec<ruma::OwnedEventId> = state
                .values()
                .filter_map(|i| ruma::OwnedEventId::try_from(i.as_str()).ok())
                .collect();
            let chain = cache.auth_chain(&ids);
            let state_ids: Vec<String> = state.values().cloned().collect();
            let chain_ids: Vec<String> = chain.iter().map(|i| i.to_string()).collect();
            let pdus =
                state_ids.iter().filter_map(|i| cache.get(i)).map(|p| json!(p.json)).collect();
            let auth =
                chain_ids.iter().filter_map(|i| cache.get(i)).map(|p| json!(p.json)).collect();
            Ok((pdus, auth, state_ids, chain_ids))
        })
        .await
}

async fn room_state(app: Arc<App>, req: Req) -> Result<Resp> {
    let (pdus, auth_chain, _, _) = state_at(&app, &req).await?;
    Ok(ok(&json!({"pdus": pdus, "auth_chain": auth_chain})))
}

async fn room_state_ids(app: Arc<App>, req: Req) -> Result<Resp> {
    let (_, _, pdu_ids, auth_chain_ids) = state_at(&app, &req).await?;
    Ok(ok(&json!({"pdu_ids": pdu_ids, "auth_chain_ids": auth_chain_ids})))
}

/// What a server gets of an event: the PDU, redacted when the room's history
/// visibility hides it from that server.
fn for_server(
    c: &rusqlite::Connection,
    row: &events::EventRow,
    server: &str,
    rules: &ruma::room_version_rules::RoomVersionRules,
) -> Result<Value> {
    let v = pdu_json(&row.json);
    if crate::rooms::visibility::server_may_see(c, row, server)? {
        return Ok(v);
    }
    let obj: ruma::canonical_json::CanonicalJsonObject =
        serde_json::from_value(v).map_err(Error::internal)?;
    let redacted = ruma::canonical_json::redact(obj, &rules.redaction, None)
        .map_err(|e| Error::internal(format!("redacting: {e}")))?;
    serde_json::to_value(&redacted).map_err(Error::internal)
}

/// The room a walk is in, and the server it is for.
struct Scope<'a> {
    room_nid: i64,
    server: &'a str,
    rules: &'a ruma::room_version_rules::RoomVersionRules,
}

/// Walk back through prev_events from `start`, newest first, skipping `stop`; events are
/// as the scope's server may see them.
fn walk_back(
    c: &rusqlite::Connection,
    scope: &Scope<'_>,
    start: Vec<String>,
    stop: &HashSet<String>,
    limit: usize,
    min_depth: i64,
    include_start: bool,
) -> Result<Vec<Value>> {
    let mut out = vec![];
    let mut seen: HashSet<String> = HashSet::new();
    // Breadth-first by depth: the frontier is ordered newest first.
    let mut frontier: Vec<(i64, String)> = vec![];
    for s in start {
        if let Some(r) = events::by_id(c, &s)?
            && r.room_nid == scope.room_nid
        {
            if include_start {
                frontier.push((depth_of(&r.json), s));
            } else {
                for p in prevs_of(&r.json) {
                    if let Some(pr) = events::by_id(c, &p)? {
                        frontier.push((depth_of(&pr.json), p));
                    }
                }
            }
        }
    }
    while out.len() < limit {
        frontier.sort();
        let Some((depth, id)) = frontier.pop() else { break };
        if !seen.insert(id.clone()) || stop.contains(&id) || depth < min_depth {
            continue;
        }
        let Some(r) = events::by_id(c, &id)? else { continue };
        if r.room_nid != scope.room_nid {
            continue;
        }
        for p in prevs_of(&r.json) {
            if !seen.contains(&p)
                && let Some(pr) = events::by_id(c, &p)?
            {
                frontier.push((depth_of(&pr.json), p));
            }
        }
        out.push(for_server(c, &r, scope.server, scope.rules)?);
    }
    Ok(out)
}

fn depth_of(json: &str) -> i64 {
    serde_json::from_str::<Value>(json).ok().and_then(|v| v["depth"].as_i64()).unwrap_or(0)
}

fn prevs_of(json: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    v["prev_events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    p.as_str().or_else(|| p.get(0).and_then(Value::as_str)).map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn backfill(app: Arc<App>, req: Req) -> Result<Resp> {
    let origin = app.auth_server(&req).await?;
    let (room_nid, rules) = room_for(&app, &origin, req.param(0)).await?;
    let start: Vec<String> =
        req.query.iter().filter(|(k, _)| k == "v").map(|(_, v)| v.clone()).collect();
    if start.is_empty() {
        return Err(Error::MissingParam("Missing v".into()));
    }
    let limit: usize = req
        .query("limit")
        .map(|l| l.parse().map_err(|_| Error::InvalidParam("limit must be a number".into())))
        .transpose()?
        .unwrap_or(10)
        .min(100);
    let pdus = app
        .db
        .read(move |c| {
            let scope = Scope { room_nid, server: &origin, rules: &rules };
            walk_back(c, &scope, start, &HashSet::new(), limit, 0, true)
        })
        .await?;
    Ok(ok(&json!({
        "origin": app.config.server_name.as_str(),
        "origin_server_ts": now_ms(),
        "pdus": pdus,
    })))
}

async fn get_missing_events(app: Arc<App>, req: Req) -> Result<Resp> {
    let origin = app.auth_server(&req).await?;
    let (room_nid, rules) = room_for(&app, &origin, req.param(0)).await?;
    let body = req.json_value()?;
    let list = |k: &str| -> Result<Vec<String>> {
        match &body[k] {
            Value::Null => Ok(vec![]),
            Value::Array(a) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad_json(format!("{k} must list event IDs")))
                })
                .collect(),
            _ => Err(bad_json(format!("{k} must be an array"))),
        }
    };
    let latest = list("latest_events")?;
    let earliest: HashSet<String> = list("earliest_events")?.into_iter().collect();
    let limit = body["limit"].as_u64().unwrap_or(10).min(100) as usize;
    let min_depth = body["min_depth"].as_i64().unwrap_or(0);
    let mut events = app
        .db
        .read(move |c| {
            let scope = Scope { room_nid, server: &origin, rules: &rules };
            walk_back(c, &scope, latest, &earliest, limit, min_depth, false)
        })
        .await?;
    events.reverse();
    Ok(ok(&json!({"events": events})))
}
