//! The `to_device_messages` inbox (the `to_device` stream) and `to_device_txns`.

use rusqlite::{Connection, params};

use crate::error::Result;

/// How long a `/sendToDevice` transaction ID is remembered. Clients retry within seconds
/// or minutes; Synapse remembers them for 30 minutes.
const TXN_LIFETIME_MS: i64 = 24 * 3600 * 1000;

/// Remember a transaction; false if the device already used it for this event type (the
/// request is a retry and must not deliver again). Old IDs of the device are forgotten.
pub fn claim_txn(
    conn: &Connection,
    device_nid: i64,
    event_type: &str,
    txn_id: &str,
    now: i64,
) -> Result<bool> {
    conn.prepare_cached("DELETE FROM to_device_txns WHERE device_nid = ?1 AND added_ts < ?2")?
        .execute(params![device_nid, now - TXN_LIFETIME_MS])?;
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO to_device_txns (device_nid, event_type, txn_id, added_ts)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![device_nid, event_type, txn_id, now])?;
    Ok(n > 0)
}

/// The devices of a local user that a message to `device_id` reaches (`*`: all of them),
/// as (nid, device ID).
pub fn recipients(conn: &Connection, user_id: &str, device_id: &str) -> Result<Vec<(i64, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT d.nid, d.device_id FROM devices d JOIN users u ON u.nid = d.user_nid
         WHERE u.user_id = ?1 AND (?2 = '*' OR d.device_id = ?2) ORDER BY d.device_id",
    )?;
    let rows = st.query_map(params![user_id, device_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn insert(
    conn: &Connection,
    device_nid: i64,
    stream_pos: i64,
    sender: &str,
    event_type: &str,
    content: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO to_device_messages (device_nid, stream_pos, sender, event_type, content)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![device_nid, stream_pos, sender, event_type, content])?;
    Ok(())
}

/// A message waiting for a device.
#[derive(Debug, Clone)]
pub struct Message {
    pub sender: String,
    pub event_type: String,
    pub content: String,
}

/// Messages for a device in `(from, to]`, oldest first, and whether any at or before
/// `from` are still stored (the client has acknowledged those: they can go).
pub fn pending(
    conn: &Connection,
    device_nid: i64,
    from: i64,
    to: i64,
) -> Result<(Vec<Message>, bool)> {
    let mut st = conn.prepare_cached(
        "SELECT sender, event_type, content FROM to_device_messages
         WHERE device_nid = ?1 AND stream_pos > ?2 AND stream_pos <= ?3 ORDER BY nid",
    )?;
    let rows = st.query_map(params![device_nid, from, to], |r| {
        Ok(Message { sender: r.get(0)?, event_type: r.get(1)?, content: r.get(2)? })
    })?;
    let messages = rows.collect::<rusqlite::Result<_>>()?;
    let acked = conn
        .prepare_cached(
            "SELECT 1 FROM to_device_messages WHERE device_nid = ?1 AND stream_pos <= ?2 LIMIT 1",
        )?
        .exists(params![device_nid, from])?;
    Ok((messages, acked))
}

/// Delete a device's messages up to `upto` (the client synced past them).
pub fn delete_acked(conn: &Connection, device_nid: i64, upto: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM to_device_messages WHERE device_nid = ?1 AND stream_pos <= ?2",
        )?
        .execute(params![device_nid, upto])?)
}
