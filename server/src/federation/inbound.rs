//! Events from other servers, checked in the spec's order: format, signatures and content
//! hash (a mismatch stores the event redacted), auth against its auth_events (fetched
//! from the origin when unknown), auth against the state before it (from its
//! prev_events, missing ones fetched with `get_missing_events`), then against the room's
//! current state, where failing only soft-fails it. Accepted events become forward
//! extremities and current state is re-resolved across the extremities.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use http::Method;
use ruma::canonical_json::CanonicalJsonObject;
use ruma::room_version_rules::{EventIdFormatVersion, RoomVersionRules};
use ruma::{EventId, OwnedEventId};
use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json};
use crate::federation::key_store;
use crate::rooms::resolve::{self, EventCache, IdState};
use crate::rooms::{Locked, Pdu, PduRef, Rooms};
use crate::store::events::{self, NewEventRow, Placement};
use crate::store::{now_ms, state};

/// The event ID a PDU has in its room version (carried in v1/v2, a hash after).
pub fn event_id_of(obj: &CanonicalJsonObject, rules: &RoomVersionRules) -> Result<OwnedEventId> {
    let id = match rules.event_id_format {
        EventIdFormatVersion::V1 => obj
            .get("event_id")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| bad_json("event has no event_id"))?,
        _ => format!(
            "${}",
            ruma::signatures::reference_hash(obj, rules)
                .map_err(|e| bad_json(format!("cannot hash event: {e}")))?
        ),
    };
    OwnedEventId::try_from(id).map_err(|_| bad_json("invalid event_id"))
}

fn server_of(id: &str) -> Option<&str> {
    id.split_once(':').map(|(_, s)| s)
}

/// Check a PDU's format, signatures and content hash. A hash mismatch yields the event
/// redacted, as the spec says; a bad or missing signature is an error.
pub async fn verify_pdu(app: &App, rules: &RoomVersionRules, raw: &Value) -> Result<PduRef> {
    let obj: CanonicalJsonObject = serde_json::from_value(raw.clone())
        .map_err(|e| bad_json(format!("event is not canonical JSON: {e}")))?;
    check_format(&obj, rules)?;
    let event_id = event_id_of(&obj, rules)?;
    let sender = obj.get("sender").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let mut servers: Vec<String> = vec![];
    if let Some(s) = server_of(&sender) {
        servers.push(s.to_string());
    }
    if matches!(rules.event_id_format, EventIdFormatVersion::V1)
        && let Some(s) = server_of(event_id.as_str())
        && !servers.iter().any(|x| x == s)
    {
        servers.push(s.to_string());
    }
    let sigs = raw.get("signatures").cloned().unwrap_or(Value::Null);
    let mut keys: ruma::signatures::PublicKeyMap = BTreeMap::new();
    for server in &servers {
        let mut set = BTreeMap::new();
        for key_id in sigs[server]
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if let Ok(k) = key_store::verify_key(app, server, &key_id, now_ms()).await
                && let Ok(b) = ruma::serde::Base64::parse(&k)
            {
                set.insert(key_id, b);
            }
        }
        keys.insert(server.clone(), set);
    }
    let verified = ruma::signatures::verify_event(&keys, &obj, rules)
        .map_err(|e| Error::Forbidden(format!("signature check failed for {event_id}: {e}")))?;
    let obj = match verified {
        ruma::signatures::Verified::All => obj,
        ruma::signatures::Verified::Signatures => {
            tracing::info!(%event_id, "content hash mismatch: storing the event redacted");
            ruma::canonical_json::redact(obj, &rules.redaction, None)
                .map_err(|e| bad_json(e.to_string()))?
        }
    };
    Ok(Arc::new(Pdu::from_object(event_id, obj, rules)?))
}

/// The spec's checks of a PDU's format, except that rooms before version 11 limit `type`
/// and `state_key` to 255 codepoints rather than bytes: Synapse does, so such rooms hold
/// events over 255 bytes that the rest of their DAG builds on.
fn check_format(obj: &CanonicalJsonObject, rules: &RoomVersionRules) -> Result<()> {
    use ruma::canonical_json::CanonicalJsonValue;
    let format = |o: &CanonicalJsonObject| {
        ruma::state_res::check_pdu_format(o, &rules.event_format).map_err(bad_json)
    };
    // `use_room_create_sender` came with version 11, as byte limits did.
    if rules.authorization.use_room_create_sender {
        return format(obj);
    }
    let long = |k: &str| match obj.get(k) {
        Some(CanonicalJsonValue::String(v)) => v.len() > 255 && v.chars().count() <= 255,
        _ => false,
    };
    if !long("type") && !long("state_key") {
        return format(obj);
    }
    // Check the rest on a copy whose long fields are short (a long type is no
    // m.room.create, so the stand-in changes nothing else).
    let mut copy = obj.clone();
    for k in ["type", "state_key"] {
        if long(k) {
            copy.insert(k.into(), CanonicalJsonValue::String("x".into()));
        }
    }
    format(&copy)
}

/// A state as events, by (type, state_key).
pub(crate) type StateByKey = HashMap<(String, String), PduRef>;

/// What became of an incoming event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Known,
    /// For a room this server has no user in: dropped unprocessed, as Synapse does.
    Ignored,
    /// For a room a join of ours is in flight for: processed once the join is stored.
    Queued,
    Accepted,
    SoftFailed,
    Rejected(String),
}

/// Handle one PDU of a transaction (or a send_join): verify it, lock its room, process.
pub async fn receive(app: &App, origin: &str, raw: &Value) -> Result<(OwnedEventId, Outcome)> {
    let room_id =
        raw["room_id"].as_str().ok_or_else(|| bad_json("PDU has no room_id"))?.to_string();
    if let Some(queued) = queue_during_join(app, origin, &room_id, raw)? {
        return Ok((queued, Outcome::Queued));
    }
    let rid = room_id.clone();
    let room_row = app
        .db
        .read(move |c| crate::store::rooms::get(c, &rid))
        .await?
        .ok_or_else(|| Error::NotFound(format!("Unknown room {room_id}")))?;
    let (nid, o) = (room_row.nid, origin.to_string());
    if !app.db.read(move |c| crate::rooms::acl::room_allows(c, nid, &o)).await? {
        return Err(Error::Forbidden(format!("Server {origin} is banned from this room")));
    }
    let (_, rules) = crate::rooms::rules_for(&room_row.room_version)?;
    let pdu = verify_pdu(app, &rules, raw).await?;
    let origin_ok = server_of(pdu.sender.as_str()) == Some(origin)
        || app
            .db
            .read({
                let (n, o) = (room_row.nid, origin.to_string());
                move |c| crate::store::federation::server_in_room(c, n, &o)
            })
            .await?;
    if !origin_ok {
        return Err(Error::Forbidden(format!("{origin} is not in room {}", pdu.room_id)));
    }
    let mut room = app.rooms.lock(app, pdu.room_id.as_str()).await?;
    let id = pdu.event_id.clone();
    // A server that comes back thinking we are still in the room: nothing to store, and
    // nothing to fetch for it. Checked under the room's lock, so a join of ours being
    // persisted (remote joins hold it) counts.
    let resident = app
        .db
        .read({
            let (n, own) = (room.nid, app.config.server_name.to_string());
            move |c| crate::store::federation::server_in_room(c, n, &own)
        })
        .await?;
    if !resident {
        tracing::info!(%origin, event_id = %id, "ignoring a PDU for a room we are not in");
        return Ok((id, Outcome::Ignored));
    }
    let outcome = process(app, &mut room, origin, pdu, true).await?;
    Ok((id, outcome))
}

/// Keep a PDU for a room a remote join of ours is in flight for (the room's servers
/// count us in before we have its state): its event ID when kept.
fn queue_during_join(
    app: &App,
    origin: &str,
    room_id: &str,
    raw: &Value,
) -> Result<Option<OwnedEventId>> {
    let Some(version) = app.rooms.queue_if_joining(room_id, origin, raw) else { return Ok(None) };
    let (_, rules) = crate::rooms::rules_for(&version)?;
    let obj: CanonicalJsonObject = serde_json::from_value(raw.clone())
        .map_err(|e| bad_json(format!("event is not canonical JSON: {e}")))?;
    tracing::info!(%origin, %room_id, "queueing a PDU until our join completes");
    event_id_of(&obj, &rules).map(Some)
}

/// Process a verified event in its locked room.
pub async fn process(
    app: &App,
    room: &mut Locked,
    origin: &str,
    pdu: PduRef,
    fetch: bool,
) -> Result<Outcome> {
    process_inner(app, room, origin, pdu, fetch, false).await
}

/// Process a join or leave sent to us directly, and relay it to the room's other servers.
pub async fn process_relayed(
    app: &App,
    room: &mut Locked,
    origin: &str,
    pdu: PduRef,
) -> Result<Outcome> {
    process_inner(app, room, origin, pdu, true, true).await
}

async fn process_inner(
    app: &App,
    room: &mut Locked,
    origin: &str,
    pdu: PduRef,
    fetch: bool,
    relay: bool,
) -> Result<Outcome> {
    let id = pdu.event_id.to_string();
    if app.db.read(move |c| events::by_id(c, &id)).await?.is_some() {
        return Ok(Outcome::Known);
    }
    // Missing prev_events first: ask the origin for the gap. The events found there are
    // processed as part of the DAG (with their state), so an auth event that is also in
    // the gap (a new member's join before their message) is not left an outlier.
    let mut missing = missing_events(app, &pdu.prev_events).await?;
    if !missing.is_empty() && fetch {
        fill_gap(app, room, origin, &pdu).await?;
        missing = missing_events(app, &pdu.prev_events).await?;
    }
    // Prev events still missing. An event pushed to us could become our only extremity,
    // its state then trusted for the room: like Synapse, refuse it unstored (so it is
    // processed afresh once its prev events arrive). An event pulled to fill a gap gets
    // the state at its missing prev events from the origin instead.
    let fetched_states = if missing.is_empty() {
        vec![]
    } else if fetch {
        return Err(Error::Forbidden(format!(
            "{origin} did not supply the prev events of {}",
            pdu.event_id
        )));
    } else {
        state_at_missing_prevs(app, room, origin, &missing).await?
    };
    // Auth events: known, or fetched from the origin.
    let mut auth = load(app, room, &pdu.auth_events).await?;
    if auth.len() < pdu.auth_events.len() && fetch {
        fetch_auth_chain(app, room, origin, &pdu).await?;
        auth = load(app, room, &pdu.auth_events).await?;
    }
    if auth.len() < pdu.auth_events.len() {
        return reject(app, room, &pdu, "auth events are unknown").await;
    }
    if let Some(bad) = auth.iter().find(|a| a.rejected) {
        let why = format!("auth event {} was rejected", bad.event_id);
        return reject(app, room, &pdu, &why).await;
    }
    // A redaction of a known event of another room is bogus: it is rejected, so it is
    // never shown (Synapse keeps it out of the room too; SyTest checks).
    if let Some(target) = pdu.redacts.as_ref().map(|t| t.to_string()) {
        let elsewhere = app
            .db
            .read(move |c| Ok(events::by_id(c, &target)?.map(|r| r.room_nid)))
            .await?
            .is_some_and(|nid| nid != room.nid);
        if elsewhere {
            return reject(app, room, &pdu, "redacts an event of another room").await;
        }
    }
    with_create(app, room, &pdu, &mut auth).await?;
    if let Err(why) = check_auth(room, &pdu, &auth) {
        return reject(app, room, &pdu, &format!("fails auth against its auth events: {why}"))
            .await;
    }
    // The state before the event, from its prev_events' states.
    let rules = room.rules.clone();
    let prevs: Vec<String> = pdu.prev_events.iter().map(|e| e.to_string()).collect();
    // The common case, an event on our single forward extremity: the state before it is
    // the room's current state, already in memory.
    let on_our_tip = room.tips.len() == 1
        && pdu.prev_events.len() == 1
        && room.tips[0].event_id == pdu.prev_events[0];
    let before: Option<(IdState, StateByKey, Option<i64>)> = if on_our_tip {
        let ids = room.state.iter().map(|(k, e)| (k.clone(), e.event_id.to_string())).collect();
        Some((ids, room.state.clone(), room.state_group))
    } else {
        app.db
            .read(move |c| {
                let mut states = vec![];
                let mut first_group = None;
                for p in &prevs {
                    if let Some(r) = events::by_id(c, p)?
                        && r.rejected.is_none()
                        && let Some(g) = r.state_after
                    {
                        first_group.get_or_insert(g);
                        states.push(resolve::ids_of_group(c, g)?);
                    }
                }
                states.extend(fetched_states);
                if states.is_empty() {
                    return Ok(None);
                }
                let cache = EventCache::new(c, &rules, &[]);
                let resolved = resolve::resolve(&cache, &states)?;
                let mut full = HashMap::new();
                for (k, id) in &resolved {
                    if let Some(e) = cache.get(id) {
                        full.insert(k.clone(), e);
                    }
                }
                Ok(Some((resolved, full, first_group)))
            })
            .await?
    };
    let (before_ids, before_state, base_group) = match before {
        Some(b) => b,
        None => state_across_gap(app, room, origin, &pdu, fetch).await?,
    };
    if let Err(why) = ruma::state_res::check_state_dependent_auth_rules(
        &room.rules.authorization,
        &pdu,
        |t, k| before_state.get(&(t.to_string(), k.to_string())).cloned(),
    ) {
        return reject(app, room, &pdu, &format!("fails auth against the state before it: {why}"))
            .await;
    }
    let soft_failed = ruma::state_res::check_state_dependent_auth_rules(
        &room.rules.authorization,
        &pdu,
        |t, k| room.state.get(&(t.to_string(), k.to_string())).cloned(),
    )
    .is_err();
    let relay = relay.then(|| origin.to_string());
    // An accepted redaction (or an event with redactions waiting for it) is redacted by
    // `persist` in the same write.
    persist(app, room, &pdu, Some((before_ids, base_group)), soft_failed, None, relay).await?;
    Ok(if soft_failed { Outcome::SoftFailed } else { Outcome::Accepted })
}

/// The state before `pdu` when its prev_events (or their states) could not be had
/// locally: what `origin` says it is (`/state_ids` at them), else the room's current
/// state, which is what a client of ours sees.
async fn state_across_gap(
    app: &App,
    room: &mut Locked,
    origin: &str,
    pdu: &Pdu,
    fetch: bool,
) -> Result<(IdState, StateByKey, Option<i64>)> {
    if fetch
        && let Some((ids, full)) =
            crate::federation::remote_state::state_before(app, room, origin, &pdu.prev_events)
                .await?
    {
        return Ok((ids, full, None));
    }
    let ids = room.state.iter().map(|(k, e)| (k.clone(), e.event_id.to_string())).collect();
    Ok((ids, room.state.clone(), room.state_group))
}

pub(crate) fn check_auth(room: &Locked, pdu: &PduRef, auth: &[PduRef]) -> Result<(), String> {
    let by_id: HashMap<&EventId, &PduRef> = auth.iter().map(|e| (&*e.event_id, e)).collect();
    ruma::state_res::check_state_independent_auth_rules(
        &room.rules.authorization,
        pdu,
        |id: &EventId| by_id.get(id).map(|e| (*e).clone()),
    )?;
    let by_key: HashMap<(String, String), PduRef> = auth
        .iter()
        .filter_map(|e| Some(((e.type_str(), e.state_key.clone()?), e.clone())))
        .collect();
    ruma::state_res::check_state_dependent_auth_rules(&room.rules.authorization, pdu, |t, k| {
        by_key.get(&(t.to_string(), k.to_string())).cloned()
    })
}

pub(crate) async fn load(app: &App, room: &Locked, ids: &[OwnedEventId]) -> Result<Vec<PduRef>> {
    let ids: Vec<String> = ids.iter().map(|e| e.to_string()).collect();
    let rules = room.rules.clone();
    app.db
        .read(move |c| {
            let cache = EventCache::new(c, &rules, &[]);
            Ok(ids.iter().filter_map(|id| cache.get(id)).collect())
        })
        .await
}

/// v12+: the create event is not among an event's auth events (the room ID names it),
/// but the auth rules read it: add it, when stored.
async fn with_create(app: &App, room: &Locked, pdu: &Pdu, auth: &mut Vec<PduRef>) -> Result<()> {
    if !room.rules.authorization.room_create_event_id_as_room_id
        || pdu.type_str() == "m.room.create"
    {
        return Ok(());
    }
    let Ok(create_id) = crate::rooms::pdu::create_id_of_room(&pdu.room_id) else {
        return Ok(());
    };
    if auth.iter().any(|a| a.event_id == create_id) {
        return Ok(());
    }
    auth.extend(load(app, room, &[create_id]).await?);
    Ok(())
}

async fn missing_events(app: &App, ids: &[OwnedEventId]) -> Result<Vec<OwnedEventId>> {
    let ids = ids.to_vec();
    app.db
        .read(move |c| {
            let mut out = vec![];
            for id in ids {
                if events::by_id(c, id.as_str())?.is_none() {
                    out.push(id);
                }
            }
            Ok(out)
        })
        .await
}

/// Fetch an event's auth chain from `origin` and store what we lacked as outliers.
pub(crate) async fn fetch_auth_chain(
    app: &App,
    room: &mut Locked,
    origin: &str,
    pdu: &Pdu,
) -> Result<()> {
    let path = format!(
        "/_matrix/federation/v1/event_auth/{}/{}",
        crate::federation::encode(pdu.room_id.as_str()),
        crate::federation::encode(pdu.event_id.as_str())
    );
    let (status, body) = app.fed_request(origin, Method::GET, &path, None).await?;
    if !status.is_success() {
        return Err(Error::Unknown(format!("{origin} refused event_auth: {status}")));
    }
    let chain = body["auth_chain"].as_array().cloned().unwrap_or_default();
    store_outliers(app, room, &chain).await
}

/// Verify events and store the ones we lack as outliers, oldest first, each checked
/// against its own auth events (rejected when it fails).
pub async fn store_outliers(app: &App, room: &mut Locked, raw: &[Value]) -> Result<()> {
    let mut pdus = vec![];
    for r in raw {
        match verify_pdu(app, &room.rules, r).await {
            Ok(p) if p.room_id == room.room_id => pdus.push(p),
            Ok(_) => {}
            Err(e) => tracing::info!("dropping an event that failed verification: {e}"),
        }
    }
    pdus.sort_by_key(|p| p.depth);
    for p in pdus {
        let id = p.event_id.to_string();
        if app.db.read(move |c| events::by_id(c, &id)).await?.is_some() {
            continue;
        }
        let mut auth = load(app, room, &p.auth_events).await?;
        if auth.len() < p.auth_events.len() {
            // Not stored at all (as Synapse does), so it neither enters a state nor stays
            // rejected should its auth events turn up later.
            tracing::info!(event_id = %p.event_id, "dropping an event whose auth events are unknown");
            continue;
        }
        with_create(app, room, &p, &mut auth).await?;
        let why = if auth.iter().any(|a| a.rejected) {
            Some("an auth event was rejected".to_string())
        } else {
            check_auth(room, &p, &auth).err()
        };
        write_outlier(app, room.nid, &p, why).await?;
    }
    Ok(())
}

pub(crate) async fn write_outlier(
    app: &App,
    room_nid: i64,
    p: &PduRef,
    rejected: Option<String>,
) -> Result<()> {
    let p = p.clone();
    app.db
        .write(move |c| {
            let json = serde_json::to_string(&p.json).map_err(Error::internal)?;
            let prev: Vec<String> = p.prev_events.iter().map(|e| e.to_string()).collect();
            let t = p.type_str();
            let row = new_row(&p, &t, &json, &prev);
            let place = Placement { rejected: rejected.as_deref(), ..Placement::OUTLIER };
            events::insert(c, room_nid, None, &row, place)?;
            Ok(())
        })
        .await
}

pub fn new_row<'a>(p: &'a Pdu, t: &'a str, json: &'a str, prev: &'a [String]) -> NewEventRow<'a> {
    NewEventRow {
        event_id: p.event_id.as_str(),
        event_type: t,
        state_key: p.state_key.as_deref(),
        sender: p.sender.as_str(),
        depth: p.depth as i64,
        origin_server_ts: u64::from(p.origin_server_ts.0) as i64,
        json,
        prev_events: prev,
        auth_events: &p.auth_events,
        membership: None,
        txn: None,
    }
}

/// Ask `origin` for the events between our extremities and `pdu`, and process them.
async fn fill_gap(app: &App, room: &mut Locked, origin: &str, pdu: &Pdu) -> Result<()> {
    let earliest: Vec<String> = room.tips.iter().map(|t| t.event_id.to_string()).collect();
    let body = json!({
        "earliest_events": earliest,
        "latest_events": [pdu.event_id.as_str()],
        "limit": 10,
        "min_depth": 0,
    });
    let path = format!(
        "/_matrix/federation/v1/get_missing_events/{}",
        crate::federation::encode(pdu.room_id.as_str())
    );
    let resp = app.fed_request(origin, Method::POST, &path, Some(&body)).await;
    let events = match resp {
        Ok((s, b)) if s.is_success() => b["events"].as_array().cloned().unwrap_or_default(),
        Ok((s, _)) => {
            tracing::info!(%origin, "get_missing_events answered {s}");
            return Ok(());
        }
        Err(e) => {
            tracing::info!(%origin, "get_missing_events failed: {e}");
            return Ok(());
        }
    };
    let mut pdus = vec![];
    for r in &events {
        match verify_pdu(app, &room.rules, r).await {
            // The event being filled in for comes after these and is processed by the
            // caller, though a server may include it (SyTest's does).
            Ok(p) if p.room_id == room.room_id && p.event_id != pdu.event_id => pdus.push(p),
            _ => {}
        }
    }
    pdus.sort_by_key(|p| p.depth);
    for p in pdus {
        // One event the origin cannot back up does not stop the others.
        let id = p.event_id.clone();
        if let Err(e) = Box::pin(process(app, room, origin, p, false)).await {
            tracing::info!(%origin, event_id = %id, "dropping a missing event: {e}");
        }
    }
    Ok(())
}

/// The state after each of `missing` (prev events the origin did not supply), as the
/// origin says (`/state_ids` at each).
async fn state_at_missing_prevs(
    app: &App,
    room: &mut Locked,
    origin: &str,
    missing: &[OwnedEventId],
) -> Result<Vec<IdState>> {
    let mut out = vec![];
    for prev in missing {
        match crate::federation::remote_state::remote_state_after(app, room, origin, prev).await? {
            Some(state) => out.push(state),
            None => {
                return Err(Error::Unknown(format!("{origin} gave no state at {prev}")));
            }
        }
    }
    Ok(out)
}

async fn reject(app: &App, room: &mut Locked, pdu: &PduRef, why: &str) -> Result<Outcome> {
    tracing::info!(event_id = %pdu.event_id, "rejecting event: {why}");
    persist(app, room, pdu, None, false, Some(why.to_string()), None).await?;
    Ok(Outcome::Rejected(why.to_string()))
}

/// Store an event from another server and bring current state up to date. `before` is
/// the state before it (IDs) and a stored group to build on; `broadcast_except` queues
/// it for the room's other servers (a resident server relays joins and leaves it was
/// sent directly).
pub async fn persist(
    app: &App,
    room: &mut Locked,
    pdu: &PduRef,
    before: Option<(IdState, Option<i64>)>,
    soft_failed: bool,
    rejected: Option<String>,
    broadcast_except: Option<String>,
) -> Result<()> {
    let accepted = rejected.is_none() && !soft_failed;
    let actions =
        if accepted { crate::rooms::push::evaluate(app, room, pdu).await? } else { vec![] };
    // Redactions take effect in the write that stores the event, so that no reader sees
    // a redaction whose target is still served whole.
    let redactions = if accepted {
        crate::rooms::redaction::planned_with(app, room, pdu).await?
    } else {
        vec![]
    };
    // The extremities after this event: it replaces the tips it points at.
    let mut tips: Vec<String> = room
        .tips
        .iter()
        .map(|t| t.event_id.to_string())
        .filter(|t| !pdu.prev_events.iter().any(|p| p.as_str() == t))
        .collect();
    tips.push(pdu.event_id.to_string());
    let (p, rules, room_nid) = (pdu.clone(), room.rules.clone(), room.nid);
    let actions2 = actions.clone();
    let own = app.config.server_name.to_string();
    let outcome = app
        .db
        .write(move |c| {
            let json = serde_json::to_string(&p.json).map_err(Error::internal)?;
            let prev: Vec<String> = p.prev_events.iter().map(|e| e.to_string()).collect();
            let t = p.type_str();
            let row = new_row(&p, &t, &json, &prev);
            let group_before = match &before {
                None => None,
                Some((ids, base)) => {
                    let nids = resolve::to_nids(c, ids)?;
                    Some(state::group_for(c, room_nid, *base, &nids)?)
                }
            };
            let place = Placement {
                timeline: accepted,
                extremity: accepted,
                current: false,
                rejected: rejected.as_deref(),
                soft_failed,
            };
            let done = events::insert(c, room_nid, group_before, &row, place)?;
            let mut woken = vec![];
            let mut tips = tips;
            if accepted {
                for gone in events::behind_soft_failed(c, &prev)? {
                    events::drop_extremity(c, room_nid, &gone)?;
                    tips.retain(|t| *t != gone);
                }
                crate::rooms::push::record(c, room_nid, &p, &actions2, done.stream_pos)?;
                for (target, by) in &redactions {
                    crate::rooms::redaction::redact_in(c, &rules, room_nid, target, by)?;
                }
                let current = if tips.len() == 1 {
                    state::state_at(c, done.state_after)?
                } else {
                    let mut states = vec![];
                    for tip in &tips {
                        if let Some(s) = resolve::state_after(c, tip)? {
                            states.push(s);
                        }
                    }
                    let cache = EventCache::new(c, &rules, &[]);
                    let resolved = resolve::resolve(&cache, &states)?;
                    resolve::to_nids(c, &resolved)?
                };
                state::replace_current(c, room_nid, &current, done.stream_pos)?;
                if let Some(except) = &broadcast_except {
                    let dests: Vec<String> = crate::rooms::destinations(c, room_nid, &own, &p)?
                        .into_iter()
                        .filter(|d| d != except)
                        .collect();
                    crate::store::federation::enqueue(c, &dests, "pdu", &json)?;
                    woken = dests;
                }
            }
            Ok(woken)
        })
        .await;
    // Current state and extremities changed in storage: reload the handle from there.
    let reloaded = Rooms::reload(app, room).await;
    let woken = outcome?;
    reloaded?;
    for d in woken {
        app.fed_sender.wake(&d);
    }
    // Local users' phones hear of events from other servers as of local ones.
    if accepted && !actions.is_empty() {
        app.pushes.enqueue(crate::rooms::push_job(room, pdu, actions));
    }
    app.notifier.notify();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdu(state_key: &str) -> CanonicalJsonObject {
        serde_json::from_value(json!({
            "type": "my.room.breaker",
            "state_key": state_key,
            "sender": "@charlie:example.org",
            "room_id": "!room:example.org",
            "content": {},
            "prev_events": [],
            "auth_events": [],
            "depth": 3,
        }))
        .expect("canonical JSON")
    }

    /// 70 codepoints of 4 bytes pass in version 10 and fail in 11; 300 ASCII bytes fail
    /// in both.
    #[test]
    fn long_state_keys_count_codepoints_before_version_11() {
        let (v10, v11) = (RoomVersionRules::V10, RoomVersionRules::V11);
        let wide = pdu(&"💥".repeat(70));
        assert!(check_format(&wide, &v10).is_ok());
        assert!(check_format(&wide, &v11).is_err());
        let long = pdu(&"x".repeat(300));
        assert!(check_format(&long, &v10).is_err());
        assert!(check_format(&long, &v11).is_err());
        assert!(check_format(&pdu("short"), &v11).is_ok());
    }
}
