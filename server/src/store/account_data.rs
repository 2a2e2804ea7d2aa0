//! The `account_data` table: global (room_id '') and per-room account data.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// Advance a named stream and return its new position.
pub fn next_stream_pos(conn: &Connection, stream: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "UPDATE streams SET position = position + 1 WHERE name = ?1 RETURNING position",
        )?
        .query_row([stream], |r| r.get(0))?)
}

pub fn put(
    conn: &Connection,
    user_nid: i64,
    room_id: &str,
    data_type: &str,
    content: &str,
) -> Result<i64> {
    let pos = next_stream_pos(conn, "account_data")?;
    conn.prepare_cached(
        "INSERT INTO account_data (user_nid, room_id, data_type, content, stream_pos)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user_nid, room_id, data_type) DO UPDATE SET
           content = excluded.content, stream_pos = excluded.stream_pos",
    )?
    .execute(params![user_nid, room_id, data_type, content, pos])?;
    Ok(pos)
}

pub fn get(
    conn: &Connection,
    user_nid: i64,
    room_id: &str,
    data_type: &str,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT content FROM account_data WHERE user_nid = ?1 AND room_id = ?2 AND data_type = ?3",
        )?
        .query_row(params![user_nid, room_id, data_type], |r| r.get(0))
        .optional()?)
}

/// Global account data changed in `(from, to]`, as (type, content), oldest change first.
pub fn changed_global(
    conn: &Connection,
    user_nid: i64,
    from: i64,
    to: i64,
) -> Result<Vec<(String, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT data_type, content FROM account_data
         WHERE user_nid = ?1 AND room_id = '' AND stream_pos > ?2 AND stream_pos <= ?3
         ORDER BY stream_pos",
    )?;
    let rows = st.query_map(params![user_nid, from, to], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
