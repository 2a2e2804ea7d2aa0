//! The `rooms` section: `join` (timeline, state, account data, summary), `invite`
//! (stripped state) and `leave`.
//!
//! Timeline: events in `(since, upto]`, newest `limit` of them; `limited` with a
//! `prev_batch` when older ones were left out. State: for an initial sync, a newly joined
//! room or `full_state`, the whole state at the start of the timeline; otherwise what
//! changed between `since` and the start of the timeline.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;
use serde_json::{Map, Value, json};

use super::account_data::type_wanted;
use super::{Ctx, object};
use crate::error::{Error, Result};
use crate::filter::{RoomEventFilter, RoomFilter};
use crate::rooms::format::{self, Viewer};
use crate::store::events::{self, EventRow, MembershipRow};
use crate::store::state;

/// Synapse's default number of timeline events per room.
const DEFAULT_TIMELINE_LIMIT: u64 = 10;
/// State types shown for invites (the spec's recommended stripped state).
pub const INVITE_STATE: &[&str] = &[
    "m.room.create",
    "m.room.join_rules",
    "m.room.name",
    "m.room.avatar",
    "m.room.canonical_alias",
    "m.room.encryption",
    "m.room.topic",
];

struct Params<'a> {
    user_id: &'a str,
    viewer: Viewer<'a>,
    since: Option<i64>,
    upto: i64,
    full_state: bool,
    room_filter: Option<&'a RoomFilter>,
    timeline_limit: i64,
    account_data_from: i64,
    account_data_to: i64,
    /// Typing state of every room (it lives in memory), and the client's typing position.
    typing: HashMap<String, (Vec<String>, i64)>,
    typing_since: Option<i64>,
    typing_now: i64,
    receipts_from: i64,
    receipts_to: i64,
    /// Senders in the user's `m.ignored_user_list`: their events and invites are hidden.
    ignored: HashSet<String>,
    /// Full states read for this answer: the timeline's visibility checks, memberships and
    /// the state section mostly ask about the same group.
    states: state::Snapshots,
}

/// `typing` is the typing state of every room (it lives in memory).
pub fn section(
    c: &Connection,
    ctx: &Ctx<'_>,
    typing: HashMap<String, (Vec<String>, i64)>,
) -> Result<Value> {
    let room_filter = ctx.filter.room.as_ref();
    let limit = room_filter
        .and_then(|f| f.timeline.as_ref())
        .and_then(|t| t.base.limit)
        .unwrap_or(DEFAULT_TIMELINE_LIMIT)
        .clamp(0, 1000) as i64;
    let u = ctx.user;
    let p = Params {
        user_id: &u.user_id,
        viewer: Viewer { user_nid: u.user_nid, user_id: &u.user_id, device_id: &u.device_id },
        since: ctx.since.map(|s| s.events),
        upto: ctx.upto.events,
        full_state: ctx.full_state,
        room_filter,
        timeline_limit: limit,
        account_data_from: ctx.since.map(|s| s.account_data).unwrap_or(0),
        account_data_to: ctx.upto.account_data,
        typing,
        typing_since: ctx.since.map(|s| s.typing),
        typing_now: ctx.upto.typing,
        receipts_from: ctx.since.map(|s| s.receipts).unwrap_or(0),
        receipts_to: ctx.upto.receipts,
        ignored: ignored_users(c, u.user_nid)?,
        states: state::Snapshots::default(),
    };
    build(c, &p)
}

/// The user IDs in the user's `m.ignored_user_list` account data.
pub fn ignored_users(c: &Connection, user_nid: i64) -> Result<HashSet<String>> {
    let Some(text) = crate::store::account_data::get(c, user_nid, "", "m.ignored_user_list")?
    else {
        return Ok(HashSet::new());
    };
    let v: Value = serde_json::from_str(&text).map_err(Error::internal)?;
    Ok(v["ignored_users"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default())
}

fn room_wanted(f: Option<&RoomFilter>, room_id: &str) -> bool {
    let Some(f) = f else { return true };
    if f.not_rooms.as_ref().is_some_and(|n| n.iter().any(|r| r == room_id)) {
        return false;
    }
    f.rooms.as_ref().is_none_or(|r| r.iter().any(|x| x == room_id))
}

fn build(c: &Connection, p: &Params<'_>) -> Result<Value> {
    let mut join = Map::new();
    let mut invite = Map::new();
    let mut leave = Map::new();
    let mut knock = Map::new();
    let include_leave = p.room_filter.and_then(|f| f.include_leave).unwrap_or(false);
    for m in events::memberships_of(c, p.user_id)? {
        if m.stream_pos > p.upto || !room_wanted(p.room_filter, &m.room_id) {
            continue;
        }
        let changed_since = p.since.is_none_or(|s| m.stream_pos > s);
        match m.membership.as_str() {
            "join" => {
                if let Some(v) = joined_room(c, p, &m)? {
                    join.insert(m.room_id.clone(), v);
                }
            }
            "invite" if changed_since => {
                let inviter = events::by_nid(c, m.event_nid)?.map(|e| e.sender).unwrap_or_default();
                if !p.ignored.contains(&inviter) {
                    invite.insert(m.room_id.clone(), invited_room(c, &m)?);
                }
            }
            "knock" if changed_since => {
                let v = invited_room(c, &m)?;
                knock.insert(m.room_id.clone(), json!({"knock_state": v["invite_state"]}));
            }
            "leave" | "ban"
                if !m.forgotten && (p.since.is_some() && changed_since || include_leave) =>
            {
                if let Some(v) = left_room(c, p, &m)? {
                    leave.insert(m.room_id.clone(), v);
                }
            }
            _ => {}
        }
    }
    Ok(object([
        ("join", Value::Object(join)),
        ("invite", Value::Object(invite)),
        ("leave", Value::Object(leave)),
        ("knock", Value::Object(knock)),
    ]))
}

/// Events of the timeline in `(from, to]`, oldest first, and whether older ones were cut.
/// `full_state`: the caller will read the whole state at the start of the timeline.
fn timeline(
    c: &Connection,
    room_nid: i64,
    from: i64,
    to: i64,
    p: &Params<'_>,
    currently_joined: bool,
    full_state: bool,
) -> Result<(Vec<EventRow>, bool)> {
    let limit = p.timeline_limit;
    let f = p.room_filter.and_then(|f| f.timeline.as_ref());
    let mut seen = crate::rooms::visibility::Cache::with_states(&p.states);
    let mut shown = |r: &EventRow| -> Result<bool> {
        if r.state_key.is_none() && p.ignored.contains(&r.sender) {
            return Ok(false);
        }
        if let Some(f) = f
            && !(type_wanted(Some(&f.base), &r.event_type)
                && f.base.not_senders.as_ref().is_none_or(|n| !n.contains(&r.sender))
                && f.base.senders.as_ref().is_none_or(|s| s.contains(&r.sender)))
        {
            return Ok(false);
        }
        // Like Synapse, state events that are part of the current state are always shown,
        // so a client sees how the room got to its current state.
        if let Some(k) = &r.state_key
            && crate::store::state::current_lookup(c, room_nid, &r.event_type, k)? == Some(r.nid)
        {
            return Ok(true);
        }
        crate::rooms::visibility::visible_cached(c, r, p.user_id, currently_joined, &mut seen)
    };
    // `limit` and `limited` count the events the client is shown (as Synapse does), so
    // read in batches until one more than the limit has passed the filters.
    let mut rows = vec![];
    let mut upper = to;
    let batch = if f.is_some() || !p.ignored.is_empty() { (limit * 2).max(50) } else { limit + 1 };
    let mut first_page = true;
    loop {
        let page = events::timeline_desc(c, room_nid, from, upper, batch)?;
        let exhausted = (page.len() as i64) < batch;
        // The state at the start of the timeline is (with no state event among the
        // newest events) the state each of them is checked against: read it whole once,
        // so those checks and the state section become lookups in it.
        if full_state
            && std::mem::take(&mut first_page)
            && let Some(g) = page
                .get((limit.max(1) as usize).min(page.len()).wrapping_sub(1))
                .and_then(|r| r.state_before)
        {
            p.states.at(c, g)?;
        }
        for r in page {
            upper = r.stream_pos.unwrap_or(0) - 1;
            if shown(&r)? {
                rows.push(r);
                if rows.len() as i64 > limit {
                    break;
                }
            }
        }
        if rows.len() as i64 > limit || exhausted || upper <= from {
            break;
        }
    }
    let limited = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    rows.reverse();
    Ok((rows, limited))
}

/// The state group a room was at when the events stream was at `pos`.
fn group_at(c: &Connection, room_nid: i64, pos: i64) -> Result<Option<i64>> {
    Ok(events::timeline_desc(c, room_nid, 0, pos, 1)?.first().and_then(|r| r.state_after))
}

/// `{"events": [...]}`.
fn events_object(events: Vec<Value>) -> Value {
    object([("events", Value::Array(events))])
}

fn timeline_object(events: Vec<Value>, limited: bool, prev_batch: String) -> Value {
    object([
        ("events", Value::Array(events)),
        ("limited", Value::Bool(limited)),
        ("prev_batch", Value::String(prev_batch)),
    ])
}

fn strip_room_id(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("room_id");
    }
    v
}

fn state_events(c: &Connection, nids: &[i64], f: Option<&RoomEventFilter>) -> Result<Vec<Value>> {
    let mut rows = events::by_nids(c, nids)?;
    if let Some(f) = f {
        rows.retain(|r| type_wanted(Some(&f.base), &r.event_type));
    }
    rows.sort_by_key(|r| r.stream_pos);
    Ok(format::client_events(c, &rows, None)?.into_iter().map(strip_room_id).collect())
}

/// State for the `state` section: full (at `start_group`) or the delta since `since_group`,
/// leaving out what the timeline itself carries; lazily loaded members if asked.
fn state_section(
    c: &Connection,
    start_group: Option<i64>,
    since_group: Option<i64>,
    full: bool,
    timeline: &[EventRow],
    p: &Params<'_>,
) -> Result<Vec<Value>> {
    let Some(start) = start_group else { return Ok(vec![]) };
    let at_start = p.states.at(c, start)?;
    let before = match since_group {
        Some(g) if !full => Some(p.states.at(c, g)?),
        _ => None,
    };
    let sf = p.room_filter.and_then(|f| f.state.as_ref());
    let lazy = sf.and_then(|f| f.lazy_load_members).unwrap_or(false);
    let mut wanted: HashSet<&str> = HashSet::new();
    if lazy {
        wanted.extend(timeline.iter().map(|e| e.sender.as_str()));
        wanted.insert(p.user_id);
    }
    let in_timeline: HashSet<i64> = timeline.iter().map(|e| e.nid).collect();
    let nids: Vec<i64> = at_start
        .iter()
        .filter(|(k, v)| before.as_ref().is_none_or(|b| b.get(*k) != Some(*v)))
        .filter(|((t, k), _)| !lazy || t != "m.room.member" || wanted.contains(k.as_str()))
        .map(|(_, n)| *n)
        .filter(|n| !in_timeline.contains(n))
        .collect();
    state_events(c, &nids, sf)
}

fn room_account_data(
    c: &Connection,
    p: &Params<'_>,
    room_id: &str,
    initial: bool,
) -> Result<Vec<Value>> {
    let from = if initial { 0 } else { p.account_data_from };
    let mut st = c.prepare_cached(
        "SELECT data_type, content FROM account_data WHERE user_nid = ?1 AND room_id = ?2
         AND stream_pos > ?3 AND stream_pos <= ?4 ORDER BY stream_pos",
    )?;
    let rows = st
        .query_map(rusqlite::params![p.viewer.user_nid, room_id, from, p.account_data_to], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
    let mut out = vec![];
    for row in rows {
        let (t, content) = row?;
        let content: Value = serde_json::from_str(&content).map_err(Error::internal)?;
        out.push(object([("type", Value::String(t)), ("content", content)]));
    }
    Ok(out)
}

fn summary(c: &Connection, room_nid: i64, user_id: &str) -> Result<Value> {
    let joined = events::members(c, room_nid, "join")?;
    let invited = events::members(c, room_nid, "invite")?;
    let heroes: Vec<&str> = joined
        .iter()
        .chain(invited.iter())
        .map(|(u, _)| u.as_str())
        .filter(|u| *u != user_id)
        .take(5)
        .collect();
    Ok(json!({
        "m.heroes": heroes,
        "m.joined_member_count": joined.len(),
        "m.invited_member_count": invited.len(),
    }))
}

fn joined_room(c: &Connection, p: &Params<'_>, m: &MembershipRow) -> Result<Option<Value>> {
    let newly_joined = p.since.is_none_or(|s| m.stream_pos > s);
    let from = if newly_joined && p.since.is_none() { 0 } else { p.since.unwrap_or(0) };
    let full = p.since.is_none() || newly_joined || p.full_state;
    let (rows, limited) = timeline(c, m.room_nid, from, p.upto, p, true, full)?;
    let account_data = room_account_data(c, p, &m.room_id, p.since.is_none() || newly_joined)?;
    let ephemeral = ephemeral(c, p, m, newly_joined)?;
    if p.since.is_some()
        && rows.is_empty()
        && account_data.is_empty()
        && ephemeral.is_empty()
        && !p.full_state
        && !newly_joined
    {
        return Ok(None);
    }
    let start_group = match rows.first() {
        Some(first) => first.state_before,
        None => group_at(c, m.room_nid, p.upto)?,
    };
    let since_group = match p.since {
        Some(s) if !full => group_at(c, m.room_nid, s)?,
        _ => None,
    };
    let state = state_section(c, start_group, since_group, full, &rows, p)?;
    let prev_batch = match rows.first().and_then(|r| r.stream_pos) {
        Some(pos) => format!("p{}", pos - 1),
        None => format!("p{}", p.upto),
    };
    let timeline_events: Vec<Value> =
        format::client_events_with(c, &rows, Some(p.viewer), Some(&p.states))?
            .into_iter()
            .map(strip_room_id)
            .collect();
    let (unread, unread_threads) = unread_section(c, p, m.room_nid)?;
    let mut room = object([
        ("timeline", timeline_object(timeline_events, limited, prev_batch)),
        ("state", events_object(state)),
        ("account_data", events_object(account_data)),
        ("ephemeral", events_object(ephemeral)),
        ("summary", summary(c, m.room_nid, p.user_id)?),
        ("unread_notifications", unread),
    ]);
    if let Some(threads) = unread_threads {
        room["unread_thread_notifications"] = threads;
    }
    Ok(Some(room))
}

/// `unread_notifications`, and `unread_thread_notifications` when the timeline filter's
/// `unread_thread_notifications` asks for counts per thread: then the former counts the
/// main timeline only; otherwise it counts every thread. Threads with nothing unread
/// are left out.
fn unread_section(c: &Connection, p: &Params<'_>, room_nid: i64) -> Result<(Value, Option<Value>)> {
    let by_thread = p
        .room_filter
        .and_then(|f| f.timeline.as_ref())
        .and_then(|t| t.unread_thread_notifications)
        .unwrap_or(false);
    let counts = |u: events::Unread| json!({"highlight_count": u.highlights, "notification_count": u.notifications});
    let mut main = events::Unread::default();
    let mut threads = serde_json::Map::new();
    for (thread, u) in events::unread_counts(c, room_nid, p.user_id)? {
        if by_thread && thread != "main" {
            threads.insert(thread, counts(u));
        } else {
            main.notifications += u.notifications;
            main.highlights += u.highlights;
        }
    }
    // Synapse leaves the key out when no thread has anything unread.
    Ok((counts(main), (!threads.is_empty()).then_some(Value::Object(threads))))
}

/// Typing and receipts for a joined room.
fn ephemeral(
    c: &Connection,
    p: &Params<'_>,
    m: &MembershipRow,
    newly_joined: bool,
) -> Result<Vec<Value>> {
    let mut out = vec![];
    if let Some((users, changed)) = p.typing.get(&m.room_id) {
        // A typing position past the server's means the server restarted: resend.
        let fresh = match p.typing_since {
            None => !users.is_empty(),
            Some(s) => *changed > s || s > p.typing_now || (newly_joined && !users.is_empty()),
        };
        if fresh {
            out.push(json!({"type": "m.typing", "content": {"user_ids": users}}));
        }
    }
    let from = if newly_joined { 0 } else { p.receipts_from };
    let mut content = Map::new();
    for r in crate::store::receipts::changed(c, m.room_nid, from, p.receipts_to)? {
        if r.receipt_type == "m.read.private" && r.user_id != p.user_id {
            continue;
        }
        let mut entry = json!({"ts": r.ts});
        if !r.thread_id.is_empty() {
            entry["thread_id"] = json!(r.thread_id);
        }
        let by_event = content.entry(r.event_id).or_insert_with(|| json!({}));
        by_event[&r.receipt_type][&r.user_id] = entry;
    }
    if !content.is_empty() {
        out.push(json!({"type": "m.receipt", "content": content}));
    }
    Ok(out)
}

fn invited_room(c: &Connection, m: &MembershipRow) -> Result<Value> {
    let mut stripped = vec![];
    if let Some(invite) = events::by_nid(c, m.event_nid)?
        && let Some(g) = invite.state_before
    {
        let st = state::state_at(c, g)?;
        for t in INVITE_STATE {
            if let Some(nid) = st.get(&(t.to_string(), String::new()))
                && let Some(row) = events::by_nid(c, *nid)?
            {
                stripped.push(format::stripped(&row)?);
            }
        }
        stripped.push(format::stripped(&invite)?);
    } else if let Some(invite) = events::by_nid(c, m.event_nid)? {
        // An invite from another server to a room we are not in: the stripped state it
        // came with.
        let pdu: Value = serde_json::from_str(&invite.json).unwrap_or_default();
        if let Some(list) = pdu["unsigned"]["invite_room_state"].as_array() {
            // Entries may be whole PDUs (v12 rooms); clients get stripped state.
            stripped.extend(list.iter().filter(|e| e["type"] != "m.room.member").map(|e| {
                json!({"type": e["type"], "state_key": e["state_key"], "content": e["content"], "sender": e["sender"]})
            }));
        }
        stripped.push(format::stripped(&invite)?);
    }
    Ok(json!({"invite_state": {"events": stripped}}))
}

fn left_room(c: &Connection, p: &Params<'_>, m: &MembershipRow) -> Result<Option<Value>> {
    // The timeline stops at the leave: later events are not the user's to see.
    let to = m.stream_pos.min(p.upto);
    let from = p.since.unwrap_or(0);
    let full = p.since.is_none() || p.full_state;
    let (rows, limited) = timeline(c, m.room_nid, from, to, p, false, full)?;
    // An empty timeline (`limit: 0`) leaves the state at the leave, the leave included.
    let start_group = match rows.first() {
        Some(first) => first.state_before,
        None => group_at(c, m.room_nid, to)?,
    };
    let since_group = match p.since {
        Some(s) => group_at(c, m.room_nid, s)?,
        None => None,
    };
    let state = state_section(c, start_group, since_group, full, &rows, p)?;
    let prev_batch = match rows.first().and_then(|r| r.stream_pos) {
        Some(pos) => format!("p{}", pos - 1),
        None => format!("p{to}"),
    };
    let timeline_events: Vec<Value> =
        format::client_events_with(c, &rows, Some(p.viewer), Some(&p.states))?
            .into_iter()
            .map(strip_room_id)
            .collect();
    Ok(Some(object([
        ("timeline", timeline_object(timeline_events, limited, prev_batch)),
        ("state", events_object(state)),
        ("account_data", events_object(vec![])),
    ])))
}
