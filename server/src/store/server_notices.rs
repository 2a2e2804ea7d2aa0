//! The `server_notice_rooms` table: the room each user receives server notices in.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

pub fn room_of(conn: &Connection, user_nid: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT room_id FROM server_notice_rooms WHERE user_nid = ?1")?
        .query_row([user_nid], |r| r.get(0))
        .optional()?)
}

pub fn set_room(conn: &Connection, user_nid: i64, room_id: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO server_notice_rooms (user_nid, room_id) VALUES (?1, ?2)
         ON CONFLICT (user_nid) DO UPDATE SET room_id = excluded.room_id",
    )?
    .execute(params![user_nid, room_id])?;
    Ok(())
}
