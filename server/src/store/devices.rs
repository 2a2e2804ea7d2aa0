//! The `devices` and `access_tokens` tables.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub device_id: String,
    pub display_name: Option<String>,
    pub last_seen_ts: Option<i64>,
    pub last_seen_ip: Option<String>,
}

/// Who an access token belongs to.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub user_nid: i64,
    pub user_id: String,
    pub device_nid: i64,
    pub device_id: String,
    pub is_admin: bool,
    pub is_guest: bool,
    pub deactivated: bool,
}

pub fn owner_of_token(conn: &Connection, token_hash: &[u8]) -> Result<Option<TokenOwner>> {
    let mut st = conn.prepare_cached(
        "SELECT u.nid, u.user_id, d.nid, d.device_id, u.is_admin, u.is_guest, u.deactivated
         FROM access_tokens t JOIN devices d ON d.nid = t.device_nid
         JOIN users u ON u.nid = d.user_nid WHERE t.token_hash = ?1",
    )?;
    Ok(st
        .query_row([token_hash], |r| {
            Ok(TokenOwner {
                user_nid: r.get(0)?,
                user_id: r.get(1)?,
                device_nid: r.get(2)?,
                device_id: r.get(3)?,
                is_admin: r.get(4)?,
                is_guest: r.get(5)?,
                deactivated: r.get(6)?,
            })
        })
        .optional()?)
}

/// Create the device if it does not exist (a login may reuse a device ID), replacing the
/// display name only when one is given. Returns the device's nid. A new device is a
/// device-list change (as in Synapse), so other users and servers refetch the list.
pub fn upsert(
    conn: &Connection,
    user_nid: i64,
    device_id: &str,
    display_name: Option<&str>,
    ip: Option<&str>,
    now: i64,
) -> Result<i64> {
    let existed = get(conn, user_nid, device_id)?.is_some();
    conn.prepare_cached(
        "INSERT INTO devices (user_nid, device_id, display_name, last_seen_ts, last_seen_ip, created_ts)
         VALUES (?1, ?2, ?3, ?5, ?4, ?5)
         ON CONFLICT (user_nid, device_id) DO UPDATE SET
           display_name = COALESCE(excluded.display_name, display_name),
           last_seen_ts = excluded.last_seen_ts, last_seen_ip = excluded.last_seen_ip",
    )?
    .execute(params![user_nid, device_id, display_name, ip, now])?;
    if !existed {
        // After the insert, so other servers are sent the device as it now is.
        super::device_lists::device_changed(conn, user_nid, device_id)?;
    }
    Ok(conn
        .prepare_cached("SELECT nid FROM devices WHERE user_nid = ?1 AND device_id = ?2")?
        .query_row(params![user_nid, device_id], |r| r.get(0))?)
}

/// A device that logs in again gets a fresh token; its old tokens stop working.
pub fn replace_tokens(
    conn: &Connection,
    device_nid: i64,
    token_hash: &[u8],
    now: i64,
) -> Result<()> {
    conn.prepare_cached("DELETE FROM access_tokens WHERE device_nid = ?1")?
        .execute([device_nid])?;
    conn.prepare_cached(
        "INSERT INTO access_tokens (token_hash, device_nid, created_ts) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![token_hash, device_nid, now])?;
    Ok(())
}

pub fn list(conn: &Connection, user_nid: i64) -> Result<Vec<DeviceRow>> {
    let mut st = conn.prepare_cached(
        "SELECT device_id, display_name, last_seen_ts, last_seen_ip FROM devices
         WHERE user_nid = ?1 ORDER BY device_id",
    )?;
    let rows = st.query_map([user_nid], device_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, user_nid: i64, device_id: &str) -> Result<Option<DeviceRow>> {
    let mut st = conn.prepare_cached(
        "SELECT device_id, display_name, last_seen_ts, last_seen_ip FROM devices
         WHERE user_nid = ?1 AND device_id = ?2",
    )?;
    Ok(st.query_row(params![user_nid, device_id], device_row).optional()?)
}

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRow> {
    Ok(DeviceRow {
        device_id: r.get(0)?,
        display_name: r.get(1)?,
        last_seen_ts: r.get(2)?,
        last_seen_ip: r.get(3)?,
    })
}

/// Returns whether the device existed.
pub fn rename(conn: &Connection, user_nid: i64, device_id: &str, name: &str) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE devices SET display_name = ?3 WHERE user_nid = ?1 AND device_id = ?2",
        )?
        .execute(params![user_nid, device_id, name])?;
    if n > 0 {
        // The name is in `/keys/query` (`unsigned.device_display_name`).
        super::device_lists::device_changed(conn, user_nid, device_id)?;
    }
    Ok(n > 0)
}

/// Deleting a device also deletes its tokens, keys and to-device messages (foreign key
/// cascades), and is a device-list change: the caller notifies after the commit.
pub fn delete(conn: &Connection, user_nid: i64, device_id: &str) -> Result<()> {
    let n = conn
        .prepare_cached("DELETE FROM devices WHERE user_nid = ?1 AND device_id = ?2")?
        .execute(params![user_nid, device_id])?;
    if n > 0 {
        super::device_lists::device_changed(conn, user_nid, device_id)?;
    }
    Ok(())
}

/// Log out every device except `keep` (used on password change with `logout_devices`).
pub fn delete_all_except(conn: &Connection, user_nid: i64, keep: Option<i64>) -> Result<()> {
    let gone: Vec<String> = conn
        .prepare_cached(
            "DELETE FROM devices WHERE user_nid = ?1 AND nid IS NOT ?2 RETURNING device_id",
        )?
        .query_map(params![user_nid, keep], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for d in gone {
        super::device_lists::device_changed(conn, user_nid, &d)?;
    }
    Ok(())
}

/// Logout invalidates the token and deletes its device, as the spec requires.
pub fn delete_by_nid(conn: &Connection, device_nid: i64) -> Result<()> {
    let owner: Option<(i64, String)> = conn
        .prepare_cached("DELETE FROM devices WHERE nid = ?1 RETURNING user_nid, device_id")?
        .query_row([device_nid], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((user_nid, device_id)) = owner {
        super::device_lists::device_changed(conn, user_nid, &device_id)?;
    }
    Ok(())
}

pub fn touch(conn: &Connection, device_nid: i64, ip: &str, now: i64) -> Result<()> {
    conn.prepare_cached("UPDATE devices SET last_seen_ts = ?2, last_seen_ip = ?3 WHERE nid = ?1")?
        .execute(params![device_nid, now, ip])?;
    Ok(())
}
