//! The `receipts` table.

use rusqlite::{Connection, params};

use super::account_data::next_stream_pos;
use crate::error::Result;

pub struct ReceiptRow {
    pub user_id: String,
    pub receipt_type: String,
    pub thread_id: String,
    pub event_id: String,
    pub ts: i64,
}

/// Store a receipt; returns its stream position.
pub fn put(conn: &Connection, room_nid: i64, r: &ReceiptRow) -> Result<i64> {
    let pos = next_stream_pos(conn, "receipts")?;
    conn.prepare_cached(
        "INSERT INTO receipts (room_nid, user_id, receipt_type, thread_id, event_id, ts, stream_pos)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (room_nid, user_id, receipt_type, thread_id) DO UPDATE SET
           event_id = excluded.event_id, ts = excluded.ts, stream_pos = excluded.stream_pos",
    )?
    .execute(params![room_nid, r.user_id, r.receipt_type, r.thread_id, r.event_id, r.ts, pos])?;
    Ok(pos)
}

/// Receipts of a room changed in `(from, to]`.
pub fn changed(conn: &Connection, room_nid: i64, from: i64, to: i64) -> Result<Vec<ReceiptRow>> {
    let mut st = conn.prepare_cached(
        "SELECT user_id, receipt_type, thread_id, event_id, ts FROM receipts
         WHERE room_nid = ?1 AND stream_pos > ?2 AND stream_pos <= ?3",
    )?;
    let rows = st.query_map(params![room_nid, from, to], |r| {
        Ok(ReceiptRow {
            user_id: r.get(0)?,
            receipt_type: r.get(1)?,
            thread_id: r.get(2)?,
            event_id: r.get(3)?,
            ts: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
