//! The `events`, `event_edges`, `forward_extremities`, `memberships` and `txn_ids` tables.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::account_data::next_stream_pos;
use super::state;
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct EventRow {
    pub nid: i64,
    pub event_id: String,
    pub room_nid: i64,
    pub event_type: String,
    pub state_key: Option<String>,
    pub sender: String,
    pub stream_pos: Option<i64>,
    pub json: String,
    pub state_before: Option<i64>,
    pub state_after: Option<i64>,
    pub rejected: Option<String>,
    pub soft_failed: bool,
    pub redacted_by: Option<String>,
    pub replaces_nid: Option<i64>,
    pub origin_server_ts: i64,
}

const COLUMNS: &str = "nid, event_id, room_nid, event_type, state_key, sender, stream_pos, json, \
    state_before, state_after, rejected, soft_failed, redacted_by, replaces_nid, origin_server_ts";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        nid: r.get(0)?,
        event_id: r.get(1)?,
        room_nid: r.get(2)?,
        event_type: r.get(3)?,
        state_key: r.get(4)?,
        sender: r.get(5)?,
        stream_pos: r.get(6)?,
        json: r.get(7)?,
        state_before: r.get(8)?,
        state_after: r.get(9)?,
        rejected: r.get(10)?,
        soft_failed: r.get(11)?,
        redacted_by: r.get(12)?,
        replaces_nid: r.get(13)?,
        origin_server_ts: r.get(14)?,
    })
}

pub fn by_id(conn: &Connection, event_id: &str) -> Result<Option<EventRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM events WHERE event_id = ?1"))?
        .query_row([event_id], row)
        .optional()?)
}

pub fn by_nid(conn: &Connection, nid: i64) -> Result<Option<EventRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM events WHERE nid = ?1"))?
        .query_row([nid], row)
        .optional()?)
}

pub fn by_nids(conn: &Connection, nids: &[i64]) -> Result<Vec<EventRow>> {
    nids.iter().filter_map(|n| by_nid(conn, *n).transpose()).collect()
}

/// Timeline events of a room with stream positions in `(from, to]`, newest first, at most
/// `limit` (rejected and soft-failed events are never shown to clients).
pub fn timeline_desc(
    conn: &Connection,
    room_nid: i64,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<EventRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events WHERE room_nid = ?1 AND stream_pos > ?2 AND stream_pos <= ?3
         AND rejected IS NULL AND soft_failed = 0 ORDER BY stream_pos DESC LIMIT ?4"
    ))?;
    let rows = st.query_map(params![room_nid, from, to, limit], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Timeline events with stream positions in `[from, to)`, oldest first (forward pagination).
pub fn timeline_asc(
    conn: &Connection,
    room_nid: i64,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<EventRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events WHERE room_nid = ?1 AND stream_pos >= ?2 AND stream_pos < ?3
         AND rejected IS NULL AND soft_failed = 0 ORDER BY stream_pos ASC LIMIT ?4"
    ))?;
    let rows = st.query_map(params![room_nid, from, to, limit], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Events after stream position `from` that `user_id` sees in the legacy `/events`
/// stream: those of rooms it is joined to, and its own membership events (invites);
/// `only_room` (a room nid) narrows it to one room.
pub fn stream_for_user(
    conn: &Connection,
    user_id: &str,
    only_room: Option<i64>,
    from: i64,
    limit: i64,
) -> Result<Vec<EventRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events WHERE stream_pos > ?1 AND rejected IS NULL
         AND soft_failed = 0 AND (room_nid IN
           (SELECT room_nid FROM memberships WHERE user_id = ?2 AND membership = 'join')
           OR (event_type = 'm.room.member' AND state_key = ?2))
         AND (?4 IS NULL OR room_nid = ?4)
         ORDER BY stream_pos ASC LIMIT ?3"
    ))?;
    let rows = st.query_map(params![from, user_id, limit, only_room], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The last position handed out on the events stream.
pub fn stream_head(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(stream_pos), 0) FROM events")?
        .query_row([], |r| r.get(0))?)
}

pub fn extremities(conn: &Connection, room_nid: i64) -> Result<Vec<i64>> {
    let mut st =
        conn.prepare_cached("SELECT event_nid FROM forward_extremities WHERE room_nid = ?1")?;
    let rows = st.query_map([room_nid], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The events behind soft-failed or rejected ancestors of `prevs` (an accepted event's
/// prev_events), walking up through soft-failed and rejected events: these stop being
/// forward extremities once the new event is accepted, as Synapse drops them (otherwise
/// each soft-failed event leaves its parent a dangling extremity, and extremities pile
/// up on the server that soft-fails a busy fork).
pub fn behind_soft_failed(conn: &Connection, prevs: &[String]) -> Result<Vec<String>> {
    let mut out = vec![];
    let mut seen = std::collections::HashSet::new();
    let mut todo: Vec<String> = prevs.to_vec();
    let mut edges =
        conn.prepare_cached("SELECT prev_event_id FROM event_edges WHERE event_nid = ?1")?;
    while let Some(id) = todo.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(row) = by_id(conn, &id)? else { continue };
        if row.rejected.is_none() && !row.soft_failed {
            continue;
        }
        let parents: Vec<String> =
            edges.query_map([row.nid], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        for p in parents {
            out.push(p.clone());
            todo.push(p);
        }
    }
    Ok(out)
}

/// Stop `event_id` being a forward extremity of the room.
pub fn drop_extremity(conn: &Connection, room_nid: i64, event_id: &str) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM forward_extremities WHERE room_nid = ?1
         AND event_nid = (SELECT nid FROM events WHERE event_id = ?2)",
    )?
    .execute(params![room_nid, event_id])?;
    Ok(())
}

/// What persisting one event needs beyond its JSON.
pub struct NewEventRow<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub state_key: Option<&'a str>,
    pub sender: &'a str,
    pub depth: i64,
    pub origin_server_ts: i64,
    pub json: &'a str,
    pub prev_events: &'a [String],
    /// The auth events, as the PDU names them (for `auth_order`'s bookkeeping).
    pub auth_events: &'a [ruma::OwnedEventId],
    /// For `m.room.member` events: the target's membership.
    pub membership: Option<&'a str>,
    /// (user nid, device ID, scope, transaction ID).
    pub txn: Option<(i64, &'a str, &'a str, &'a str)>,
}

pub struct Persisted {
    pub nid: i64,
    pub stream_pos: i64,
    pub state_after: i64,
}

/// Where a persisted event goes beyond the `events` table.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    /// Give it a stream position (clients see it). Outliers, rejected and soft-failed
    /// events get none.
    pub timeline: bool,
    /// It becomes a forward extremity (replacing its prev_events).
    pub extremity: bool,
    /// Its own key updates current state and memberships. Events from other servers
    /// leave this to [`state::replace_current`], after state resolution.
    pub current: bool,
    pub rejected: Option<&'a str>,
    pub soft_failed: bool,
}

impl Placement<'_> {
    /// Stored outside the timeline, current state and the DAG's tips.
    pub const OUTLIER: Placement<'static> = Placement {
        timeline: false,
        extremity: false,
        current: false,
        rejected: None,
        soft_failed: false,
    };

    /// A local event on the room's single chain.
    pub const LOCAL: Placement<'static> = Placement {
        timeline: true,
        extremity: true,
        current: true,
        rejected: None,
        soft_failed: false,
    };
}

/// Append an accepted event to the room's timeline: a new stream position, the DAG edges
/// and extremities, the state group after it, current state and memberships.
/// `state_before` is the group the event was authorised against.
pub fn append(
    conn: &Connection,
    room_nid: i64,
    state_before: Option<i64>,
    e: &NewEventRow<'_>,
) -> Result<Persisted> {
    insert(conn, room_nid, state_before, e, Placement::LOCAL)
}

/// Store an event as `place` says. Returns its nid, stream position (0 when it has none)
/// and the state group after it.
pub fn insert(
    conn: &Connection,
    room_nid: i64,
    state_before: Option<i64>,
    e: &NewEventRow<'_>,
    place: Placement<'_>,
) -> Result<Persisted> {
    let stream_pos = if place.timeline { Some(next_stream_pos(conn, "events")?) } else { None };
    let replaces = match (e.state_key, state_before) {
        (Some(k), Some(g)) => state::lookup(conn, g, e.event_type, k)?,
        _ => None,
    };
    conn.prepare_cached(
        "INSERT INTO events (event_id, room_nid, event_type, state_key, sender, depth,
           origin_server_ts, stream_pos, json, state_before, replaces_nid, rejected, soft_failed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        e.event_id,
        room_nid,
        e.event_type,
        e.state_key,
        e.sender,
        e.depth,
        e.origin_server_ts,
        stream_pos,
        e.json,
        state_before,
        replaces,
        place.rejected,
        place.soft_failed
    ])?;
    let nid = conn.last_insert_rowid();
    super::auth_order::on_insert(conn, room_nid, e.event_id, e.auth_events)?;
    let mut edge = conn.prepare_cached(
        "INSERT OR IGNORE INTO event_edges (event_nid, prev_event_id) VALUES (?1, ?2)",
    )?;
    let mut drop_ext = conn.prepare_cached(
        "DELETE FROM forward_extremities WHERE room_nid = ?1
         AND event_nid = (SELECT nid FROM events WHERE event_id = ?2)",
    )?;
    for p in e.prev_events {
        edge.execute(params![nid, p])?;
        if place.extremity {
            drop_ext.execute(params![room_nid, p])?;
        }
    }
    if place.extremity {
        conn.prepare_cached(
            "INSERT INTO forward_extremities (room_nid, event_nid) VALUES (?1, ?2)",
        )?
        .execute(params![room_nid, nid])?;
    }
    // A rejected event changes no state; an outlier's state is not known.
    let state_after = match (e.state_key, place.rejected, state_before) {
        (_, _, None) if !place.timeline && !place.extremity => None,
        (Some(k), None, _) => {
            let g = state::new_group(
                conn,
                room_nid,
                state_before,
                &[(e.event_type.into(), k.into(), Some(nid))],
            )?;
            if place.current {
                state::set_current(conn, room_nid, e.event_type, k, nid)?;
            }
            Some(g)
        }
        (_, _, Some(g)) => Some(g),
        (_, _, None) => Some(state::new_group(conn, room_nid, None, &[])?),
    };
    conn.prepare_cached("UPDATE events SET state_after = ?2 WHERE nid = ?1")?
        .execute(params![nid, state_after])?;
    if place.current
        && place.rejected.is_none()
        && let (Some(m), Some(target), Some(pos)) = (e.membership, e.state_key, stream_pos)
    {
        set_membership(conn, room_nid, target, m, nid, pos)?;
    }
    if let Some((user_nid, device_id, scope, txn_id)) = e.txn {
        conn.prepare_cached(
            "INSERT INTO txn_ids (user_nid, device_id, scope, txn_id, event_id)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![user_nid, device_id, scope, txn_id, e.event_id])?;
    }
    Ok(Persisted {
        nid,
        stream_pos: stream_pos.unwrap_or(0),
        state_after: state_after.unwrap_or(0),
    })
}

/// Record a user's current membership of a room.
pub fn set_membership(
    conn: &Connection,
    room_nid: i64,
    user_id: &str,
    membership: &str,
    event_nid: i64,
    stream_pos: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO memberships (room_nid, user_id, membership, event_nid, stream_pos)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (room_nid, user_id) DO UPDATE SET membership = excluded.membership,
           event_nid = excluded.event_nid, stream_pos = excluded.stream_pos,
           forgotten = CASE WHEN excluded.membership IN ('join', 'invite', 'knock') THEN 0 ELSE forgotten END",
    )?
    .execute(params![room_nid, user_id, membership, event_nid, stream_pos])?;
    Ok(())
}

pub fn txn_event(
    conn: &Connection,
    user_nid: i64,
    device_id: &str,
    scope: &str,
    txn_id: &str,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT event_id FROM txn_ids
             WHERE user_nid = ?1 AND device_id = ?2 AND scope = ?3 AND txn_id = ?4",
        )?
        .query_row(params![user_nid, device_id, scope, txn_id], |r| r.get(0))
        .optional()?)
}

/// The transaction ID a device used for an event, for `unsigned.transaction_id`.
pub fn txn_of(
    conn: &Connection,
    user_nid: i64,
    device_id: &str,
    event_id: &str,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT txn_id FROM txn_ids WHERE event_id = ?1 AND user_nid = ?2 AND device_id = ?3",
        )?
        .query_row(params![event_id, user_nid, device_id], |r| r.get(0))
        .optional()?)
}

#[derive(Debug, Clone)]
pub struct MembershipRow {
    pub room_nid: i64,
    pub room_id: String,
    pub membership: String,
    pub event_nid: i64,
    pub stream_pos: i64,
    pub forgotten: bool,
}

/// Every room a user has a membership in (any state), with the room ID.
pub fn memberships_of(conn: &Connection, user_id: &str) -> Result<Vec<MembershipRow>> {
    let mut st = conn.prepare_cached(
        "SELECT m.room_nid, r.room_id, m.membership, m.event_nid, m.stream_pos, m.forgotten
         FROM memberships m JOIN rooms r ON r.nid = m.room_nid WHERE m.user_id = ?1",
    )?;
    let rows = st.query_map([user_id], |r| {
        Ok(MembershipRow {
            room_nid: r.get(0)?,
            room_id: r.get(1)?,
            membership: r.get(2)?,
            event_nid: r.get(3)?,
            stream_pos: r.get(4)?,
            forgotten: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn membership(conn: &Connection, room_nid: i64, user_id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT membership FROM memberships WHERE room_nid = ?1 AND user_id = ?2")?
        .query_row(params![room_nid, user_id], |r| r.get(0))
        .optional()?)
}

pub fn set_forgotten(conn: &Connection, room_nid: i64, user_id: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE memberships SET forgotten = 1 WHERE room_nid = ?1 AND user_id = ?2",
    )?
    .execute(params![room_nid, user_id])?;
    Ok(())
}

/// Members of a room with the given membership: (user_id, event nid).
pub fn members(conn: &Connection, room_nid: i64, membership: &str) -> Result<Vec<(String, i64)>> {
    let mut st = conn.prepare_cached(
        "SELECT user_id, event_nid FROM memberships WHERE room_nid = ?1 AND membership = ?2 ORDER BY user_id",
    )?;
    let rows = st.query_map(params![room_nid, membership], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn mark_redacted(
    conn: &Connection,
    event_id: &str,
    by: &str,
    redacted_json: &str,
) -> Result<()> {
    conn.prepare_cached("UPDATE events SET redacted_by = ?2, json = ?3 WHERE event_id = ?1")?
        .execute(params![event_id, by, redacted_json])?;
    Ok(())
}

/// Forget every member's push actions for the event at `stream_pos`. Looked up per user
/// who ever had a membership (those with actions are among them), so the delete stays on
/// the primary key.
pub fn remove_push_actions(conn: &Connection, room_nid: i64, stream_pos: i64) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM event_push_actions WHERE room_nid = ?1 AND stream_pos = ?2
           AND user_id IN (SELECT user_id FROM memberships WHERE room_nid = ?1)",
    )?
    .execute(params![room_nid, stream_pos])?;
    Ok(())
}

pub fn add_push_action(
    conn: &Connection,
    room_nid: i64,
    user_id: &str,
    stream_pos: i64,
    highlight: bool,
    thread_id: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO event_push_actions (room_nid, user_id, stream_pos, highlight, thread_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![room_nid, user_id, stream_pos, highlight, thread_id])?;
    Ok(())
}

/// The badge of a user's devices: how many rooms have unread notifications (Synapse's
/// default, `push.group_unread_count_by_room`).
pub fn badge(conn: &Connection, user_id: &str) -> Result<i64> {
    let rooms: Vec<i64> = conn
        .prepare_cached("SELECT DISTINCT room_nid FROM event_push_actions WHERE user_id = ?1")?
        .query_map([user_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut n = 0;
    for room in rooms {
        if unread_counts(conn, room, user_id)?.iter().any(|(_, u)| u.notifications > 0) {
            n += 1;
        }
    }
    Ok(n)
}

/// Unread counts of one thread: notifications and highlights.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unread {
    pub notifications: i64,
    pub highlights: i64,
}

/// Unread counts per thread (`main` or a thread root's event ID): push actions past the
/// user's latest unthreaded read receipt and past their receipt in that thread, public
/// or private (spec: "Threaded read receipts"). Threads with nothing unread are left out.
pub fn unread_counts(
    conn: &Connection,
    room_nid: i64,
    user_id: &str,
) -> Result<Vec<(String, Unread)>> {
    // The user's receipts first (a handful of rows), so the count below is one range scan
    // of the push actions' primary key instead of a receipt lookup per unread action.
    let mut receipts: HashMap<String, i64> = HashMap::new();
    let mut st = conn.prepare_cached(
        "SELECT r.thread_id, MAX(e.stream_pos) FROM receipts r
         JOIN events e ON e.event_id = r.event_id
         WHERE r.room_nid = ?1 AND r.user_id = ?2 GROUP BY r.thread_id",
    )?;
    let rows = st.query_map(params![room_nid, user_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
    })?;
    for row in rows {
        let (thread, pos) = row?;
        if let Some(pos) = pos {
            receipts.insert(thread, pos);
        }
    }
    let unthreaded = receipts.get("").copied().unwrap_or(0);
    let main_read = receipts.get("main").copied().unwrap_or(0).max(unthreaded);
    // Every action past the main timeline's receipt, counted from the primary key alone;
    // the few highlights and thread actions come from their partial index, so no unread
    // plain notification is read column by column.
    let past_main: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM event_push_actions
             WHERE room_nid = ?1 AND user_id = ?2 AND stream_pos > ?3",
        )?
        .query_row(params![room_nid, user_id, main_read], |r| r.get(0))?;
    let mut st = conn.prepare_cached(
        "SELECT stream_pos, thread_id, highlight FROM event_push_actions
         INDEXED BY event_push_actions_rare
         WHERE room_nid = ?1 AND user_id = ?2 AND stream_pos > ?3
           AND (highlight <> 0 OR thread_id <> 'main')",
    )?;
    let rare = st
        .query_map(params![room_nid, user_id, unthreaded], |r| {
            Ok(RareAction { stream_pos: r.get(0)?, thread: r.get(1)?, highlight: r.get(2)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(tally_unread(&receipts, past_main, rare))
}

/// A push action that is a highlight or in a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RareAction {
    stream_pos: i64,
    thread: String,
    highlight: i64,
}

/// Unread counts per thread from the user's receipts (thread -> stream position, `""` for
/// the unthreaded one), the number of actions of any thread past the main timeline's
/// receipt, and the highlights and thread actions past the unthreaded receipt. An action
/// is unread when it is past both the unthreaded receipt and its own thread's.
fn tally_unread(
    receipts: &HashMap<String, i64>,
    past_main: i64,
    rare: Vec<RareAction>,
) -> Vec<(String, Unread)> {
    let unthreaded = receipts.get("").copied().unwrap_or(0);
    let read_up_to = |thread: &str| receipts.get(thread).copied().unwrap_or(0).max(unthreaded);
    let main_read = read_up_to("main");
    let mut counts: std::collections::BTreeMap<String, Unread> = Default::default();
    let mut main = Unread { notifications: past_main, highlights: 0 };
    for a in rare {
        if a.thread == "main" {
            if a.stream_pos > main_read {
                main.highlights += a.highlight;
            }
            continue;
        }
        // A thread's action among those counted for the main timeline: not its own.
        if a.stream_pos > main_read {
            main.notifications -= 1;
        }
        if a.stream_pos > read_up_to(&a.thread) {
            let u = counts.entry(a.thread).or_default();
            u.notifications += 1;
            u.highlights += a.highlight;
        }
    }
    counts.insert("main".into(), main);
    counts.into_iter().filter(|(_, u)| u.notifications > 0).collect()
}

/// The room's backward extremities: prev_events of its timeline events that we lack or
/// hold only as outliers, where history continues on other servers. Those of the
/// newest events first, at most `limit`.
pub fn backward_extremities(conn: &Connection, room_nid: i64, limit: i64) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT ed.prev_event_id FROM events ch
         JOIN event_edges ed ON ed.event_nid = ch.nid
         LEFT JOIN events p ON p.event_id = ed.prev_event_id
         WHERE ch.room_nid = ?1 AND ch.stream_pos IS NOT NULL AND ch.rejected IS NULL
           AND (p.nid IS NULL
                OR (p.stream_pos IS NULL AND p.rejected IS NULL AND p.soft_failed = 0))
         ORDER BY ch.depth DESC",
    )?;
    let mut out: Vec<String> = vec![];
    for id in st.query_map([room_nid], |r| r.get::<_, String>(0))? {
        let id = id?;
        if !out.contains(&id) {
            out.push(id);
            if out.len() as i64 >= limit {
                break;
            }
        }
    }
    Ok(out)
}

/// Give an outlier the state before it, now that it is known (a backfilled event we
/// held only for auth or state): its state after follows, as for any event.
pub fn set_historical_state(
    conn: &Connection,
    room_nid: i64,
    nid: i64,
    state_before: i64,
    event_type: &str,
    state_key: Option<&str>,
) -> Result<()> {
    let (replaces, after) = match state_key {
        Some(k) => (
            state::lookup(conn, state_before, event_type, k)?,
            state::new_group(
                conn,
                room_nid,
                Some(state_before),
                &[(event_type.into(), k.into(), Some(nid))],
            )?,
        ),
        None => (None, state_before),
    };
    conn.prepare_cached(
        "UPDATE events SET state_before = ?2, state_after = ?3, replaces_nid = ?4 WHERE nid = ?1",
    )?
    .execute(params![nid, state_before, after, replaces])?;
    Ok(())
}

/// Place backfilled events (newest first) before everything on the events stream:
/// negative, decreasing positions, as Synapse's backfilled stream orderings. They are
/// history for `/messages`, never new to `/sync` (which reads positions above its token).
pub fn assign_backfill_positions(conn: &Connection, nids_newest_first: &[i64]) -> Result<()> {
    let lowest: Option<i64> =
        conn.prepare_cached("SELECT MIN(stream_pos) FROM events")?.query_row([], |r| r.get(0))?;
    let mut pos = lowest.unwrap_or(0).min(0);
    let mut set = conn.prepare_cached(
        "UPDATE events SET stream_pos = ?2 WHERE nid = ?1 AND stream_pos IS NULL",
    )?;
    for nid in nids_newest_first {
        pos -= 1;
        set.execute(params![nid, pos])?;
    }
    Ok(())
}

/// The accepted redactions in a room that name `target` (`redacts`, in `content` from
/// room version 11): (event ID, JSON). The expression is the one migration 0014 indexes.
pub fn redactions_of(
    conn: &Connection,
    room_nid: i64,
    target: &str,
) -> Result<Vec<(String, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT event_id, json FROM events WHERE event_type = 'm.room.redaction'
           AND COALESCE(json_extract(json, '$.redacts'), json_extract(json, '$.content.redacts')) = ?2
           AND room_nid = ?1 AND rejected IS NULL AND soft_failed = 0",
    )?;
    let rows = st.query_map(params![room_nid, target], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unread counts by definition: each action past both the unthreaded receipt and its
    /// thread's receipt.
    fn unread_by_definition(
        receipts: &HashMap<String, i64>,
        actions: &[(i64, &str, i64)],
    ) -> Vec<(String, Unread)> {
        let unthreaded = receipts.get("").copied().unwrap_or(0);
        let mut counts: std::collections::BTreeMap<String, Unread> = Default::default();
        for &(pos, thread, highlight) in actions {
            if pos > unthreaded && pos > receipts.get(thread).copied().unwrap_or(0) {
                let u = counts.entry(thread.to_string()).or_default();
                u.notifications += 1;
                u.highlights += highlight;
            }
        }
        counts.into_iter().filter(|(_, u)| u.notifications > 0).collect()
    }

    /// What unread_counts hands tally_unread for these actions.
    fn tally(
        receipts: &HashMap<String, i64>,
        actions: &[(i64, &str, i64)],
    ) -> Vec<(String, Unread)> {
        let unthreaded = receipts.get("").copied().unwrap_or(0);
        let main_read = receipts.get("main").copied().unwrap_or(0).max(unthreaded);
        let past_main = actions.iter().filter(|a| a.0 > main_read).count() as i64;
        let rare = actions
            .iter()
            .filter(|a| a.0 > unthreaded && (a.2 != 0 || a.1 != "main"))
            .map(|&(stream_pos, thread, highlight)| RareAction {
                stream_pos,
                thread: thread.to_string(),
                highlight,
            })
            .collect();
        tally_unread(receipts, past_main, rare)
    }

    #[test]
    fn tally_unread_matches_the_definition_under_threaded_and_unthreaded_receipts() {
        let threads = ["main", "$t1", "$t2"];
        // A small deterministic generator: every mix of threads, highlights and receipts.
        let mut seed: u64 = 7;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..500 {
            let mut actions: Vec<(i64, &str, i64)> = vec![];
            for pos in 1..=20 {
                if next(3) != 0 {
                    actions.push((pos, threads[next(3) as usize], (next(4) == 0) as i64));
                }
            }
            let mut receipts = HashMap::new();
            for key in ["", "main", "$t1", "$t2"] {
                if next(2) == 0 {
                    receipts.insert(key.to_string(), next(22) as i64);
                }
            }
            assert_eq!(
                tally(&receipts, &actions),
                unread_by_definition(&receipts, &actions),
                "receipts {receipts:?}, actions {actions:?}"
            );
        }
    }

    #[test]
    fn tally_unread_leaves_out_threads_with_nothing_unread() {
        let receipts = HashMap::from([("$t1".to_string(), 5)]);
        let actions = [(3, "$t1", 1), (4, "main", 0), (5, "$t1", 0)];
        assert_eq!(
            tally(&receipts, &actions),
            vec![("main".to_string(), Unread { notifications: 1, highlights: 0 })]
        );
    }

    #[test]
    fn unread_counts_reads_plain_highlighted_and_threaded_actions() {
        let c = db();
        for (pos, highlight, thread) in
            [(1, 0, "main"), (2, 1, "main"), (3, 0, "$t"), (4, 1, "$t"), (5, 0, "main")]
        {
            c.execute(
                "INSERT INTO event_push_actions (room_nid, user_id, stream_pos, highlight, thread_id)
                 VALUES (1, '@b:x', ?1, ?2, ?3)",
                params![pos, highlight, thread],
            )
            .expect("action");
        }
        assert_eq!(
            unread_counts(&c, 1, "@b:x").expect("counts"),
            vec![
                ("$t".to_string(), Unread { notifications: 2, highlights: 1 }),
                ("main".to_string(), Unread { notifications: 3, highlights: 1 }),
            ]
        );
        assert_eq!(unread_counts(&c, 1, "@c:x").expect("counts"), vec![]);
    }

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::migrations::apply(&mut c).expect("migrate");
        c.execute("INSERT INTO rooms (nid, room_id, room_version, creator, created_ts) VALUES (1, '!r:x', '10', '@a:x', 0)", [])
            .expect("room");
        c
    }

    fn row<'a>(id: &'a str, depth: i64, json: &'a str, prev: &'a [String]) -> NewEventRow<'a> {
        NewEventRow {
            event_id: id,
            event_type: "m.room.message",
            state_key: None,
            sender: "@a:x",
            depth,
            origin_server_ts: 0,
            json,
            prev_events: prev,
            auth_events: &[],
            membership: None,
            txn: None,
        }
    }

    const HISTORY: Placement<'static> = Placement::OUTLIER;

    /// Our join points at an event we lack; backfilling it (and the event before it)
    /// puts both before everything else, in order, and the extremity moves back.
    #[test]
    fn backfilled_events_go_before_the_stream() {
        let c = db();
        let prev = vec!["$b".to_string()];
        let join = append(&c, 1, None, &row("$join", 3, "{}", &prev)).expect("join");
        assert!(join.stream_pos > 0);
        assert_eq!(backward_extremities(&c, 1, 10).expect("ext"), vec!["$b".to_string()]);
        let prev_a = vec!["$a".to_string()];
        let b = insert(&c, 1, None, &row("$b", 2, "{}", &prev_a), HISTORY).expect("b");
        let a = insert(&c, 1, None, &row("$a", 1, "{}", &[]), HISTORY).expect("a");
        assign_backfill_positions(&c, &[b.nid]).expect("b pos");
        assert_eq!(backward_extremities(&c, 1, 10).expect("ext"), vec!["$a".to_string()]);
        assign_backfill_positions(&c, &[a.nid]).expect("a pos");
        assert!(backward_extremities(&c, 1, 10).expect("ext").is_empty());
        let ids: Vec<String> = timeline_desc(&c, 1, i64::MIN, i64::MAX, 10)
            .expect("timeline")
            .into_iter()
            .map(|r| r.event_id)
            .collect();
        assert_eq!(ids, ["$join", "$b", "$a"]);
        // Never in what /sync reads (positions above 0).
        assert_eq!(timeline_desc(&c, 1, 0, i64::MAX, 10).expect("sync").len(), 1);
    }

    /// Redactions are found by their target, `redacts` at the top or (v11) in content.
    #[test]
    fn redactions_by_target() {
        let c = db();
        let mut r1 = row("$r1", 1, r#"{"redacts":"$t"}"#, &[]);
        r1.event_type = "m.room.redaction";
        let mut r2 = row("$r2", 1, r#"{"content":{"redacts":"$t"}}"#, &[]);
        r2.event_type = "m.room.redaction";
        let mut other = row("$r3", 1, r#"{"redacts":"$u"}"#, &[]);
        other.event_type = "m.room.redaction";
        for r in [r1, r2, other] {
            append(&c, 1, None, &r).expect("append");
        }
        let mut found: Vec<String> =
            redactions_of(&c, 1, "$t").expect("found").into_iter().map(|(id, _)| id).collect();
        found.sort();
        assert_eq!(found, ["$r1", "$r2"]);
    }
}
