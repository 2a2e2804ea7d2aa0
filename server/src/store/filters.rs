//! The `filters` table. Filter IDs count up per user from 0, as in Synapse.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

pub fn insert(conn: &Connection, user_nid: i64, filter_json: &str) -> Result<i64> {
    let next: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(filter_id) + 1, 0) FROM filters WHERE user_nid = ?1")?
        .query_row([user_nid], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO filters (user_nid, filter_id, filter_json) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![user_nid, next, filter_json])?;
    Ok(next)
}

pub fn get(conn: &Connection, user_nid: i64, filter_id: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT filter_json FROM filters WHERE user_nid = ?1 AND filter_id = ?2")?
        .query_row(params![user_nid, filter_id], |r| r.get(0))
        .optional()?)
}
