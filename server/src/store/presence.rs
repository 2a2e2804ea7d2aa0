//! The `presence` table.

use rusqlite::{Connection, OptionalExtension, params};

use super::account_data::next_stream_pos;
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct PresenceRow {
    pub user_id: String,
    pub state: String,
    pub status_msg: Option<String>,
    pub last_active_ts: i64,
    pub stream_pos: i64,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PresenceRow> {
    Ok(PresenceRow {
        user_id: r.get(0)?,
        state: r.get(1)?,
        status_msg: r.get(2)?,
        last_active_ts: r.get(3)?,
        stream_pos: r.get(4)?,
    })
}

pub fn get(conn: &Connection, user_id: &str) -> Result<Option<PresenceRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT user_id, state, status_msg, last_active_ts, stream_pos FROM presence WHERE user_id = ?1",
        )?
        .query_row([user_id], row)
        .optional()?)
}

/// Set a user's presence. `status_msg` None keeps the old message (a sync's `set_presence`
/// does not clear it); Some("") clears it.
pub fn set(
    conn: &Connection,
    user_id: &str,
    state: &str,
    status_msg: Option<&str>,
    now: i64,
) -> Result<i64> {
    let pos = next_stream_pos(conn, "presence")?;
    conn.prepare_cached(
        "INSERT INTO presence (user_id, state, status_msg, last_active_ts, stream_pos)
         VALUES (?1, ?2, NULLIF(?3, ''), ?4, ?5)
         ON CONFLICT (user_id) DO UPDATE SET state = excluded.state,
           status_msg = CASE WHEN ?3 IS NULL THEN status_msg ELSE NULLIF(?3, '') END,
           last_active_ts = excluded.last_active_ts, stream_pos = excluded.stream_pos",
    )?
    .execute(params![user_id, state, status_msg, now, pos])?;
    Ok(pos)
}

/// Presence of users who share a joined room with `user_id` (and the user), changed in
/// `(from, to]`.
pub fn changed_for(
    conn: &Connection,
    user_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<PresenceRow>> {
    let mut st = conn.prepare_cached(
        "SELECT p.user_id, p.state, p.status_msg, p.last_active_ts, p.stream_pos FROM presence p
         WHERE p.stream_pos > ?2 AND p.stream_pos <= ?3 AND (p.user_id = ?1 OR EXISTS (
           SELECT 1 FROM memberships a JOIN memberships b ON a.room_nid = b.room_nid
           WHERE a.user_id = ?1 AND a.membership = 'join' AND b.user_id = p.user_id
             AND b.membership = 'join'))",
    )?;
    let rows = st.query_map(params![user_id, from, to], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Queue an `m.presence` EDU for the servers sharing a room with a local user.
pub fn federate(conn: &Connection, user_id: &str, content: &serde_json::Value) -> Result<()> {
    super::federation::edu_to_hosts_of(conn, user_id, "m.presence", content)
}
