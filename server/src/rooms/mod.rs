//! Rooms: the one path every local event takes — build, hash and sign, check against the
//! room version's auth rules (ruma's state-res), persist through the writer, notify.
//!
//! Work on one room is serialised by a per-room async lock; the lock guards an in-memory
//! `RoomHandle` (current state, DAG tips, state group), loaded from SQLite on first use,
//! so sending an event reads nothing from disk. Different rooms run in parallel. A plain
//! send releases the lock once its event is queued to the writer and answers after the
//! commit (`pipeline`), so sends to one room share commits.

pub mod acl;
pub mod auth_difference;
pub mod builder;
pub mod conflicted_subgraph;
pub mod create;
pub mod format;
pub mod membership;
pub mod parsed_events;
pub mod pdu;
pub mod pipeline;
pub mod push;
pub mod redaction;
pub mod resolve;
pub mod resolve_v1;
pub mod server_notices;
pub mod shutdown;
pub mod upgrade;
pub mod visibility;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ruma::room_version_rules::RoomVersionRules;
use ruma::{OwnedEventId, RoomVersionId};
use serde_json::Value;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::app::App;
use crate::error::{Error, Result, not_found};
use crate::store::{appservice, events, now_ms, rooms, state};
pub use builder::NewEvent;
pub use pdu::{Pdu, PduRef};

pub type StateMap = HashMap<(String, String), PduRef>;

/// A room's live state, owned by whoever holds its lock.
pub struct RoomHandle {
    pub nid: i64,
    pub room_id: String,
    pub version: RoomVersionId,
    pub rules: RoomVersionRules,
    pub state: StateMap,
    /// The DAG's forward extremities (the next event's prev_events).
    pub tips: Vec<PduRef>,
    /// The state group after the tips (what the next event is authorised against). Behind
    /// while sends are in flight (`pipe`); `Rooms::lock` waits for them and brings it up
    /// to date.
    pub state_group: Option<i64>,
    /// Sends queued to the writer and not yet known to be committed.
    pub pipe: pipeline::Pipeline,
}

impl RoomHandle {
    pub fn get(&self, event_type: &str, state_key: &str) -> Option<&PduRef> {
        self.state.get(&(event_type.to_string(), state_key.to_string()))
    }

    pub fn membership_of(&self, user_id: &str) -> Option<String> {
        self.get("m.room.member", user_id)
            .and_then(|e| e.content_ref()["membership"].as_str().map(str::to_string))
    }
}

#[derive(Default)]
pub struct Rooms {
    handles: Mutex<HashMap<String, Arc<AsyncMutex<Option<RoomHandle>>>>>,
    /// Rooms a remote join of ours is in flight for, with the PDUs other servers sent
    /// meanwhile (they count us in as soon as they accept the join, before we have the
    /// room): processed once the join is stored.
    joining: Mutex<HashMap<String, Joining>>,
}

#[derive(Default)]
struct Joining {
    /// Joins in flight (several local users may join at once).
    count: usize,
    /// The room version, once `make_join` told it.
    version: Option<String>,
    /// (origin, PDU) in arrival order.
    queued: Vec<(String, Value)>,
}

/// Most PDUs kept for one room while a join is in flight; more are dropped (the room's
/// gap filling fetches them later).
const MAX_QUEUED_DURING_JOIN: usize = 1000;

/// A remote join in flight; dropping it (a failed or abandoned join) discards what was
/// queued.
pub struct JoinInFlight<'a> {
    rooms: &'a Rooms,
    room_id: String,
    done: bool,
}

impl JoinInFlight<'_> {
    /// The join is stored: the PDUs queued meanwhile, to process now.
    pub fn finish(mut self) -> Vec<(String, Value)> {
        self.done = true;
        self.rooms.end_join(&self.room_id, true)
    }
}

impl Drop for JoinInFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.rooms.end_join(&self.room_id, false);
        }
    }
}

pub fn rules_for(version: &str) -> Result<(RoomVersionId, RoomVersionRules)> {
    let v = RoomVersionId::try_from(version)
        .map_err(|_| Error::Internal(format!("room version {version}")))?;
    let rules =
        v.rules().ok_or_else(|| Error::Internal(format!("no rules for room version {version}")))?;
    Ok((v, rules))
}

/// A locked room. Dereferences to its handle.
pub struct Locked {
    guard: OwnedMutexGuard<Option<RoomHandle>>,
}

impl std::ops::Deref for Locked {
    type Target = RoomHandle;
    fn deref(&self) -> &RoomHandle {
        self.guard.as_ref().expect("a Locked room is always loaded")
    }
}
impl std::ops::DerefMut for Locked {
    fn deref_mut(&mut self) -> &mut RoomHandle {
        self.guard.as_mut().expect("a Locked room is always loaded")
    }
}

impl Rooms {
    fn slot(&self, room_id: &str) -> Arc<AsyncMutex<Option<RoomHandle>>> {
        let mut map = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(room_id.to_string()).or_default().clone()
    }

    /// Lock a room, loading it from storage if needed; 404 if Glia does not know it.
    /// Sends still in flight are waited for first, so the handle matches storage.
    pub async fn lock(&self, app: &App, room_id: &str) -> Result<Locked> {
        self.lock_inner(app, room_id, true).await
    }

    /// Lock a room to queue a send: sends in flight are not waited for (their events are
    /// already in the handle's tips and state).
    async fn lock_for_send(&self, app: &App, room_id: &str) -> Result<Locked> {
        self.lock_inner(app, room_id, false).await
    }

    async fn lock_inner(&self, app: &App, room_id: &str, settle: bool) -> Result<Locked> {
        let mut guard = self.slot(room_id).lock_owned().await;
        if let Some(h) = guard.as_mut()
            && (settle || h.pipe.broken())
        {
            if let Some(group) = h.pipe.settle().await {
                h.state_group = group;
            }
            // A queued write failed: the handle holds events that were never stored.
            if h.pipe.broken() {
                *guard = None;
            }
        }
        if guard.is_none() {
            *guard = Some(load(app, room_id).await?);
        }
        Ok(Locked { guard })
    }

    /// Lock a room that is being created (no state yet).
    pub async fn lock_new(&self, handle: RoomHandle) -> Result<Locked> {
        let mut guard = self.slot(&handle.room_id).lock_owned().await;
        if guard.is_some() {
            return Err(Error::internal("room ID collision"));
        }
        *guard = Some(handle);
        Ok(Locked { guard })
    }

    /// Load a locked room's handle again from storage (after a change made there).
    pub async fn reload(app: &App, locked: &mut Locked) -> Result<()> {
        let room_id = locked.room_id.clone();
        match load(app, &room_id).await {
            Ok(h) => {
                *locked.guard = Some(h);
                Ok(())
            }
            Err(e) => {
                *locked.guard = None;
                Err(e)
            }
        }
    }

    /// Note a remote join to `room_id` in flight, until the returned guard is finished
    /// or dropped.
    pub fn begin_join(&self, room_id: &str) -> JoinInFlight<'_> {
        let mut map = self.joining.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(room_id.to_string()).or_default().count += 1;
        JoinInFlight { rooms: self, room_id: room_id.to_string(), done: false }
    }

    /// The room version of a room a join is in flight for, once known.
    pub fn set_join_version(&self, room_id: &str, version: &str) {
        let mut map = self.joining.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(j) = map.get_mut(room_id) {
            j.version = Some(version.to_string());
        }
    }

    /// Keep a PDU for a room a join is in flight for (whose version is known). Its room
    /// version when kept.
    pub fn queue_if_joining(&self, room_id: &str, origin: &str, pdu: &Value) -> Option<String> {
        let mut map = self.joining.lock().unwrap_or_else(|p| p.into_inner());
        let j = map.get_mut(room_id)?;
        let version = j.version.clone()?;
        if j.queued.len() < MAX_QUEUED_DURING_JOIN {
            j.queued.push((origin.to_string(), pdu.clone()));
        }
        Some(version)
    }

    fn end_join(&self, room_id: &str, take: bool) -> Vec<(String, Value)> {
        let mut map = self.joining.lock().unwrap_or_else(|p| p.into_inner());
        let Some(j) = map.get_mut(room_id) else { return vec![] };
        j.count = j.count.saturating_sub(1);
        let queued = if take { std::mem::take(&mut j.queued) } else { vec![] };
        if j.count == 0 {
            map.remove(room_id);
        }
        queued
    }

    /// Forget the in-memory handle after a failed write, so the next use reloads it.
    pub fn invalidate(locked: &mut Locked) {
        *locked.guard = None;
    }
}

async fn load(app: &App, room_id: &str) -> Result<RoomHandle> {
    let rid = room_id.to_string();
    let (room, state_rows, tip_rows) = app
        .db
        .read(move |c| {
            let room = rooms::get(c, &rid)?.ok_or_else(|| not_found("Unknown room"))?;
            let nids: Vec<i64> =
                state::current(c, room.nid)?.into_iter().map(|(_, _, n)| n).collect();
            let state_rows = events::by_nids(c, &nids)?;
            let tips = events::by_nids(c, &events::extremities(c, room.nid)?)?;
            Ok((room, state_rows, tips))
        })
        .await?;
    let (version, rules) = rules_for(&room.room_version)?;
    let mut state = StateMap::new();
    for r in &state_rows {
        let pdu = Pdu::from_stored(&r.event_id, &r.json, &rules)?;
        if let Some(k) = &pdu.state_key {
            state.insert((pdu.type_str(), k.clone()), Arc::new(pdu));
        }
    }
    // With several tips, current state is their resolution, which no tip's group holds:
    // the next local event builds a group for it from current state (see `persist`).
    // Building on the newest tip's group instead stored that fork's state as the state
    // around our next event, which other servers then resolved differently.
    let state_group = match tip_rows.as_slice() {
        [only] => only.state_after,
        _ => None,
    };
    let tips = tip_rows
        .iter()
        .map(|r| Pdu::from_stored(&r.event_id, &r.json, &rules).map(Arc::new))
        .collect::<Result<_>>()?;
    Ok(RoomHandle {
        nid: room.nid,
        room_id: room.room_id,
        version,
        rules,
        state,
        tips,
        state_group,
        pipe: Default::default(),
    })
}

/// Who sends a local event, for transaction IDs.
#[derive(Clone)]
pub struct Txn {
    pub user_nid: i64,
    pub device_id: String,
    /// The endpoint the ID was used on (room and `send` / `redact`): IDs are per endpoint.
    pub scope: String,
    pub txn_id: String,
}

/// Build, authorise and persist one local event in a locked room. Returns its ID.
pub async fn send_locked(
    app: &App,
    room: &mut Locked,
    sender: &str,
    new: NewEvent,
    txn: Option<Txn>,
) -> Result<OwnedEventId> {
    let pdu = builder::build(app, room, sender, new, now_ms())?;
    builder::authorise(room, &pdu)
        .map_err(|reason| Error::Forbidden(format!("Event not allowed: {reason}")))?;
    persist(app, room, vec![(pdu.clone(), txn)]).await?;
    Ok(pdu.event_id.clone())
}

/// Send one local event: lock the room, then build, authorise and queue it. The room is
/// unlocked while the event commits, so concurrent sends to it share commits; the caller
/// is answered only once it is stored. Idempotent per transaction.
pub async fn send(
    app: &App,
    room_id: &str,
    sender: &str,
    new: NewEvent,
    txn: Option<Txn>,
) -> Result<OwnedEventId> {
    if let Some(t) = &txn
        && let Some(id) = txn_prior(app, t).await?
    {
        return Ok(id);
    }
    let mut room = app.rooms.lock_for_send(app, room_id).await?;
    // Check again under the lock: two requests with one txn ID may race, and the first
    // may still be on its way to storage.
    if let Some(t) = &txn {
        if let Some((_, seq)) = room.pipe.pending_txn(&txn_key(t)) {
            let finished = room.pipe.finished(seq);
            drop(room);
            finished.await;
            return txn_prior(app, t).await?.ok_or_else(|| {
                Error::internal("an earlier attempt of this transaction was not stored")
            });
        }
        if let Some(id) = txn_prior(app, t).await? {
            return Ok(id);
        }
    }
    let pdu = builder::build(app, &room, sender, new, now_ms())?;
    builder::authorise(&room, &pdu)
        .map_err(|reason| Error::Forbidden(format!("Event not allowed: {reason}")))?;
    if pdu.type_str() == "m.room.redaction" {
        // It may redact a state event, and then the handle is reloaded under the lock.
        persist(app, &mut room, vec![(pdu.clone(), txn)]).await?;
        return Ok(pdu.event_id.clone());
    }
    let queued = persist_queued(app, &mut room, vec![(pdu.clone(), txn.clone())]).await?;
    if let Some(t) = &txn {
        let seq = room.pipe.last();
        room.pipe.add_txn(txn_key(t), pdu.event_id.clone(), seq);
    }
    // Later sends to the room queue behind this one while it commits.
    drop(room);
    queued.committed(app).await?;
    Ok(pdu.event_id.clone())
}

/// The event a transaction ID already produced, if it is stored.
async fn txn_prior(app: &App, t: &Txn) -> Result<Option<OwnedEventId>> {
    let prior = app
        .db
        .read_point(|c| events::txn_event(c, t.user_nid, &t.device_id, &t.scope, &t.txn_id))
        .await?;
    prior.map(|id| OwnedEventId::try_from(id).map_err(Error::internal)).transpose()
}

fn txn_key(t: &Txn) -> pipeline::TxnKey {
    (t.user_nid, t.device_id.clone(), t.scope.clone(), t.txn_id.clone())
}

/// Persist accepted events in order in one writer job, then update the handle and notify.
/// Returns once they are stored.
pub async fn persist(
    app: &App,
    room: &mut Locked,
    batch: Vec<(PduRef, Option<Txn>)>,
) -> Result<()> {
    let queued = match persist_queued(app, room, batch).await {
        Ok(q) => q,
        Err(e) => {
            Rooms::invalidate(room);
            return Err(e);
        }
    };
    match queued.committed(app).await {
        Ok(redacted_state) => {
            if let Some(group) = room.pipe.settle().await {
                room.state_group = group;
            }
            if redacted_state {
                // Auth reads state contents: the handle must hold the redacted form.
                Rooms::reload(app, room).await?;
            }
            Ok(())
        }
        Err(e) => {
            Rooms::invalidate(room);
            Err(e)
        }
    }
}

/// A queued write's commit: the servers to wake, and whether a state event was redacted.
type Stored =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(Vec<String>, bool)>> + Send>>;

/// Events queued to the writer; `committed` waits for the commit and then tells sync,
/// federation, push gateways and appservices.
#[must_use]
pub struct Queued {
    /// The servers to wake, and whether a state event was redacted (by a redaction in it).
    stored: Stored,
    pushes: Vec<crate::push::gateway::Job>,
    owed: Vec<String>,
}

impl Queued {
    /// Returns whether a state event was redacted: the handle then holds stale content.
    pub async fn committed(self, app: &App) -> Result<bool> {
        let (woken, redacted_state) = self.stored.await?;
        for d in woken {
            app.fed_sender.wake(&d);
        }
        for job in self.pushes {
            app.pushes.enqueue(job);
        }
        // `/sync` was woken on the writer thread at the commit (see `persist_queued`).
        app.appservices.wake(&self.owed);
        Ok(redacted_state)
    }
}

/// Evaluate push rules for accepted events, queue them to the writer in order (one job)
/// and put them in the handle's tips and state at once, so the next event can build on
/// them before they commit. If the write fails, the room's pipeline breaks and the next
/// `Rooms::lock` reloads the handle from storage.
pub async fn persist_queued(
    app: &App,
    room: &mut Locked,
    batch: Vec<(PduRef, Option<Txn>)>,
) -> Result<Queued> {
    let room_nid = room.nid;
    // A room with tips but no group for its current state (several tips, resolved): the
    // first job stores current state as a group, on the newest tip's group as a delta base.
    let needs_group = room.state_group.is_none() && !room.tips.is_empty();
    let mut jobs: Vec<(PduRef, Option<Txn>, String, Vec<push::PushAction>)> = vec![];
    for (p, t) in batch {
        let json = serde_json::to_string(&p.json).map_err(Error::internal)?;
        // Room creation has no other members to notify.
        let actions = if room.nid == 0 || room.state.is_empty() {
            vec![]
        } else {
            push::evaluate(app, room, &p).await?
        };
        jobs.push((p, t, json, actions));
    }
    // Appservices owed each event: enqueued in the same transaction as the event.
    let pdus: Vec<PduRef> = jobs.iter().map(|j| j.0.clone()).collect();
    let owed = crate::appservice::interest::for_batch(app, room, &pdus).await?;
    let owed2 = owed.clone();
    let own = app.config.server_name.to_string();
    let rules = room.rules.clone();
    let current_group = room.state_group;
    let ticket = room.pipe.ticket(current_group);
    let link = ticket.link();
    let waker = app.notifier.waker();
    let mut rows: Vec<(PduRef, Option<Txn>, String, Vec<push::PushAction>)> = vec![];
    let mut pushes = vec![];
    for (pdu, txn, json, actions) in jobs {
        if let Some(k) = &pdu.state_key {
            room.state.insert((pdu.type_str(), k.clone()), pdu.clone());
        }
        if !actions.is_empty() {
            pushes.push(push_job(room, &pdu, actions.clone()));
        }
        room.tips = vec![pdu.clone()];
        rows.push((pdu, txn, json, actions));
    }
    let stored = app.db.submit(
        move |c| {
            let mut group = link.group()?;
            let mut woken: Vec<String> = vec![];
            let mut redacted_state = false;
            if needs_group && group.is_none() {
                let current: HashMap<(String, String), i64> =
                    state::current(c, room_nid)?.into_iter().map(|(t, k, n)| ((t, k), n)).collect();
                let base = events::extremities(c, room_nid)?
                    .into_iter()
                    .max()
                    .map(|nid| events::by_nid(c, nid))
                    .transpose()?
                    .flatten()
                    .and_then(|r| r.state_after);
                group = Some(state::group_for(c, room_nid, base, &current)?);
            }
            for ((pdu, txn, json, actions), owed) in rows.iter().zip(&owed2) {
                let membership = (pdu.type_str() == "m.room.member")
                    .then(|| pdu.content_ref()["membership"].as_str().map(str::to_string))
                    .flatten();
                let prev: Vec<String> = pdu.prev_events.iter().map(|e| e.to_string()).collect();
                let type_str = pdu.type_str();
                let row = events::NewEventRow {
                    event_id: pdu.event_id.as_str(),
                    event_type: &type_str,
                    state_key: pdu.state_key.as_deref(),
                    sender: pdu.sender.as_str(),
                    depth: pdu.depth as i64,
                    origin_server_ts: u64::from(pdu.origin_server_ts.0) as i64,
                    json,
                    prev_events: &prev,
                    auth_events: &pdu.auth_events,
                    membership: membership.as_deref(),
                    txn: txn.as_ref().map(|t| {
                        (t.user_nid, t.device_id.as_str(), t.scope.as_str(), t.txn_id.as_str())
                    }),
                };
                let done = events::append(c, room_nid, group, &row)?;
                push::record(c, room_nid, pdu, actions, done.stream_pos)?;
                // A local redaction was authorised by its endpoint: its target (when
                // stored) is redacted in this write, so no reader sees one without the other.
                if type_str == "m.room.redaction"
                    && let Some(target) = &pdu.redacts
                {
                    let done = redaction::redact_in(
                        c,
                        &rules,
                        room_nid,
                        target.as_str(),
                        pdu.event_id.as_str(),
                    )?;
                    redacted_state |= done == Some(true);
                }
                for as_id in owed {
                    appservice::enqueue(c, as_id, &appservice::Item::Event(done.nid))?;
                }
                group = Some(done.state_after);
                let dests = destinations(c, room_nid, &own, pdu)?;
                crate::store::federation::enqueue(c, &dests, "pdu", json)?;
                woken.extend(dests);
            }
            // The next job of the room builds on this one, even before the commit.
            link.set_group(group);
            Ok((woken, redacted_state))
        },
        move |outcome| {
            ticket.finish(outcome.is_ok());
            // Waking here, on the writer thread right after the commit, spares a long-poll
            // the wait for the sending task to be scheduled and the send to return.
            if outcome.is_ok() {
                waker.notify();
            }
        },
    )?;
    Ok(Queued { stored: Box::pin(stored), pushes, owed: owed.concat() })
}

/// The servers a new event goes to: every other server with a member joined, and the
/// server of a remote user whose membership the event changes (an invite is sent by the
/// invite API instead).
pub fn destinations(
    c: &rusqlite::Connection,
    room_nid: i64,
    own: &str,
    pdu: &Pdu,
) -> Result<Vec<String>> {
    let mut dests = crate::store::federation::hosts(c, room_nid, own)?;
    let acl = acl::current(c, room_nid)?;
    dests.retain(|d| acl::allows(acl.as_ref(), d));
    if pdu.type_str() == "m.room.member"
        && let Some(target) = pdu.state_key.as_deref().and_then(|k| ruma::UserId::parse(k).ok())
        && target.server_name() != own
        && pdu.content_ref()["membership"] != "invite"
        && !dests.iter().any(|d| d == target.server_name().as_str())
    {
        dests.push(target.server_name().to_string());
    }
    Ok(dests)
}

/// What push gateways are told about `pdu`, with the room's name, alias and the
/// sender's display name as they stand after it.
pub(crate) fn push_job(
    room: &RoomHandle,
    pdu: &PduRef,
    actions: Vec<push::PushAction>,
) -> crate::push::gateway::Job {
    let text = |v: Option<Value>, key: &str| v.and_then(|c| c[key].as_str().map(str::to_string));
    crate::push::gateway::Job {
        room_nid: room.nid,
        room_id: room.room_id.to_string(),
        event_id: pdu.event_id.to_string(),
        event_type: pdu.type_str(),
        sender: pdu.sender.to_string(),
        content: pdu.content_value(),
        state_key: pdu.state_key.clone(),
        // A room without a name goes by its canonical alias (as Synapse names it).
        room_name: text(state_content(room, "m.room.name", ""), "name")
            .filter(|n| !n.is_empty())
            .or_else(|| text(state_content(room, "m.room.canonical_alias", ""), "alias")),
        room_alias: text(state_content(room, "m.room.canonical_alias", ""), "alias"),
        sender_display_name: text(
            state_content(room, "m.room.member", pdu.sender.as_str()),
            "displayname",
        ),
        targets: actions.into_iter().map(|a| (a.user_id, a.tweaks)).collect(),
    }
}

/// The content of a state event in the room's current state, if any.
pub fn state_content(room: &RoomHandle, event_type: &str, state_key: &str) -> Option<Value> {
    room.get(event_type, state_key).map(|e| e.content_value())
}

/// The room's creators when the room version gives them unlimited power (v12+: the
/// create event's sender and `additional_creators`); empty for earlier versions.
pub fn privileged_creators(room: &RoomHandle) -> Vec<String> {
    if !room.rules.authorization.explicitly_privilege_room_creators {
        return vec![];
    }
    let Some(create) = room.get("m.room.create", "") else { return vec![] };
    let mut out = vec![create.sender.to_string()];
    if room.rules.authorization.additional_room_creators
        && let Some(extra) = create.content_ref()["additional_creators"].as_array()
    {
        out.extend(extra.iter().filter_map(Value::as_str).map(str::to_string));
    }
    out
}

/// A user's power level in the room, from `m.room.power_levels` (or its defaults);
/// `i64::MAX` for a v12+ creator, whose power is unlimited.
pub fn user_level(room: &RoomHandle, user_id: &str) -> i64 {
    if privileged_creators(room).iter().any(|c| c == user_id) {
        return i64::MAX;
    }
    match state_content(room, "m.room.power_levels", "") {
        Some(p) => p["users"][user_id].as_i64().unwrap_or(p["users_default"].as_i64().unwrap_or(0)),
        // No power levels: the creator has 100, everyone else 0 (the auth rules' default).
        None => {
            let creator = room.get("m.room.create", "").map(|c| c.sender.to_string());
            if creator.as_deref() == Some(user_id) { 100 } else { 0 }
        }
    }
}
