//! Server-side key backups: `room_key_backup_versions` and `room_key_backup_keys`.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct VersionRow {
    pub version: i64,
    pub algorithm: String,
    pub auth_data: String,
    pub etag: i64,
}

fn version_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        version: r.get(0)?,
        algorithm: r.get(1)?,
        auth_data: r.get(2)?,
        etag: r.get(3)?,
    })
}

/// Create the next version (never reusing a number, deleted ones included); it becomes the
/// current one.
pub fn create_version(
    conn: &Connection,
    user_nid: i64,
    algorithm: &str,
    auth_data: &str,
) -> Result<i64> {
    let version: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM room_key_backup_versions WHERE user_nid = ?1",
        )?
        .query_row([user_nid], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO room_key_backup_versions (user_nid, version, algorithm, auth_data)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![user_nid, version, algorithm, auth_data])?;
    Ok(version)
}

/// The current (newest, not deleted) version.
pub fn current_version(conn: &Connection, user_nid: i64) -> Result<Option<VersionRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT version, algorithm, auth_data, etag FROM room_key_backup_versions
             WHERE user_nid = ?1 AND deleted = 0 ORDER BY version DESC LIMIT 1",
        )?
        .query_row([user_nid], version_row)
        .optional()?)
}

/// A version that exists and is not deleted.
pub fn version(conn: &Connection, user_nid: i64, version: i64) -> Result<Option<VersionRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT version, algorithm, auth_data, etag FROM room_key_backup_versions
             WHERE user_nid = ?1 AND version = ?2 AND deleted = 0",
        )?
        .query_row(params![user_nid, version], version_row)
        .optional()?)
}

pub fn set_auth_data(
    conn: &Connection,
    user_nid: i64,
    version: i64,
    auth_data: &str,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE room_key_backup_versions SET auth_data = ?3 WHERE user_nid = ?1 AND version = ?2",
    )?
    .execute(params![user_nid, version, auth_data])?;
    Ok(())
}

/// Delete a version's keys and mark it deleted. False if the version never existed (one
/// deleted before counts as existing: deleting twice succeeds, as the spec asks).
pub fn delete_version(conn: &Connection, user_nid: i64, version: i64) -> Result<bool> {
    conn.prepare_cached("DELETE FROM room_key_backup_keys WHERE user_nid = ?1 AND version = ?2")?
        .execute(params![user_nid, version])?;
    let n = conn
        .prepare_cached(
            "UPDATE room_key_backup_versions SET deleted = 1 WHERE user_nid = ?1 AND version = ?2",
        )?
        .execute(params![user_nid, version])?;
    Ok(n > 0)
}

/// Every backup of a user, for deactivation.
pub fn delete_all(conn: &Connection, user_nid: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM room_key_backup_keys WHERE user_nid = ?1")?
        .execute([user_nid])?;
    conn.prepare_cached("DELETE FROM room_key_backup_versions WHERE user_nid = ?1")?
        .execute([user_nid])?;
    Ok(())
}

/// Advance a version's etag (its keys changed) and return it.
pub fn bump_etag(conn: &Connection, user_nid: i64, version: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "UPDATE room_key_backup_versions SET etag = etag + 1
             WHERE user_nid = ?1 AND version = ?2 RETURNING etag",
        )?
        .query_row(params![user_nid, version], |r| r.get(0))?)
}

pub fn count(conn: &Connection, user_nid: i64, version: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM room_key_backup_keys WHERE user_nid = ?1 AND version = ?2",
        )?
        .query_row(params![user_nid, version], |r| r.get(0))?)
}

/// One backed-up session key. `session_data` is JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub room_id: String,
    pub session_id: String,
    pub first_message_index: i64,
    pub forwarded_count: i64,
    pub is_verified: bool,
    pub session_data: String,
}

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        room_id: r.get(0)?,
        session_id: r.get(1)?,
        first_message_index: r.get(2)?,
        forwarded_count: r.get(3)?,
        is_verified: r.get(4)?,
        session_data: r.get(5)?,
    })
}

const KEY_COLUMNS: &str =
    "room_id, session_id, first_message_index, forwarded_count, is_verified, session_data";

pub fn key(
    conn: &Connection,
    user_nid: i64,
    version: i64,
    room_id: &str,
    session_id: &str,
) -> Result<Option<KeyRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM room_key_backup_keys
             WHERE user_nid = ?1 AND version = ?2 AND room_id = ?3 AND session_id = ?4"
        ))?
        .query_row(params![user_nid, version, room_id, session_id], key_row)
        .optional()?)
}

pub fn put_key(conn: &Connection, user_nid: i64, version: i64, k: &KeyRow) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO room_key_backup_keys (user_nid, version, {KEY_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?
    .execute(params![
        user_nid,
        version,
        k.room_id,
        k.session_id,
        k.first_message_index,
        k.forwarded_count,
        k.is_verified,
        k.session_data
    ])?;
    Ok(())
}

/// The keys of a version, optionally of one room (and one session), ordered.
pub fn keys(
    conn: &Connection,
    user_nid: i64,
    version: i64,
    room_id: Option<&str>,
    session_id: Option<&str>,
) -> Result<Vec<KeyRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM room_key_backup_keys
         WHERE user_nid = ?1 AND version = ?2 AND (?3 IS NULL OR room_id = ?3)
           AND (?4 IS NULL OR session_id = ?4)
         ORDER BY room_id, session_id"
    ))?;
    let rows = st.query_map(params![user_nid, version, room_id, session_id], key_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete_keys(
    conn: &Connection,
    user_nid: i64,
    version: i64,
    room_id: Option<&str>,
    session_id: Option<&str>,
) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM room_key_backup_keys
             WHERE user_nid = ?1 AND version = ?2 AND (?3 IS NULL OR room_id = ?3)
               AND (?4 IS NULL OR session_id = ?4)",
        )?
        .execute(params![user_nid, version, room_id, session_id])?)
}
