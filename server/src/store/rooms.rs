//! The `rooms` and `room_aliases` tables.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct RoomRow {
    pub nid: i64,
    pub room_id: String,
    pub room_version: String,
    pub creator: String,
    pub is_public: bool,
}

fn room_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RoomRow> {
    Ok(RoomRow {
        nid: r.get(0)?,
        room_id: r.get(1)?,
        room_version: r.get(2)?,
        creator: r.get(3)?,
        is_public: r.get(4)?,
    })
}

pub fn get(conn: &Connection, room_id: &str) -> Result<Option<RoomRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT nid, room_id, room_version, creator, is_public FROM rooms WHERE room_id = ?1",
        )?
        .query_row([room_id], room_row)
        .optional()?)
}

pub fn get_by_nid(conn: &Connection, nid: i64) -> Result<Option<RoomRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT nid, room_id, room_version, creator, is_public FROM rooms WHERE nid = ?1",
        )?
        .query_row([nid], room_row)
        .optional()?)
}

pub fn insert(
    conn: &Connection,
    room_id: &str,
    version: &str,
    creator: &str,
    now: i64,
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![room_id, version, creator, now])?;
    Ok(conn.last_insert_rowid())
}

pub fn set_public(conn: &Connection, room_nid: i64, public: bool) -> Result<()> {
    conn.prepare_cached("UPDATE rooms SET is_public = ?2 WHERE nid = ?1")?
        .execute(params![room_nid, public])?;
    Ok(())
}

pub fn public_rooms(conn: &Connection) -> Result<Vec<RoomRow>> {
    let mut st = conn.prepare_cached(
        "SELECT nid, room_id, room_version, creator, is_public FROM rooms WHERE is_public = 1
         ORDER BY nid",
    )?;
    let rows = st.query_map([], room_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Returns false if the alias is taken.
pub fn put_alias(conn: &Connection, alias: &str, room_nid: i64, creator: &str) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT INTO room_aliases (alias, room_nid, creator) VALUES (?1, ?2, ?3)
             ON CONFLICT (alias) DO NOTHING",
        )?
        .execute(params![alias, room_nid, creator])?;
    Ok(n == 1)
}

/// The room an alias points at, and who created the alias.
pub fn get_alias(conn: &Connection, alias: &str) -> Result<Option<(String, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT r.room_id, a.creator FROM room_aliases a JOIN rooms r ON r.nid = a.room_nid
             WHERE a.alias = ?1",
        )?
        .query_row([alias], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

pub fn delete_alias(conn: &Connection, alias: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM room_aliases WHERE alias = ?1")?.execute([alias])?;
    Ok(())
}

pub fn aliases_of(conn: &Connection, room_nid: i64) -> Result<Vec<String>> {
    let mut st =
        conn.prepare_cached("SELECT alias FROM room_aliases WHERE room_nid = ?1 ORDER BY alias")?;
    let rows = st.query_map([room_nid], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
