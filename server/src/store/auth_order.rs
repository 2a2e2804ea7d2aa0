//! Whether nid order is a topological order of a room's auth DAG (every auth event stored
//! before the events citing it), which lets state resolution walk auth chains back from
//! the states only as far as they differ (`rooms::auth_difference`). An event stored
//! before one of its auth events leaves a gap; when the gap is filled later the room is
//! marked unordered and its resolutions walk the full chains instead.

use ruma::OwnedEventId;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// Bookkeeping for an event just inserted: remember its auth events that are not stored,
/// and mark the rooms of events that cited this one before it was stored.
pub fn on_insert(
    conn: &Connection,
    room_nid: i64,
    event_id: &str,
    auth_events: &[OwnedEventId],
) -> Result<()> {
    let mut known = conn.prepare_cached("SELECT 1 FROM events WHERE event_id = ?1")?;
    let mut gap = conn
        .prepare_cached("INSERT OR IGNORE INTO auth_gaps (event_id, room_nid) VALUES (?1, ?2)")?;
    for a in auth_events {
        if !known.exists([a.as_str()])? {
            gap.execute(params![a.as_str(), room_nid])?;
        }
    }
    let cited_by: Vec<i64> = conn
        .prepare_cached("DELETE FROM auth_gaps WHERE event_id = ?1 RETURNING room_nid")?
        .query_map([event_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for room in cited_by {
        tracing::info!(event_id, room_nid = room, "an auth event arrived after an event citing it");
        conn.prepare_cached("INSERT OR IGNORE INTO auth_unordered_rooms (room_nid) VALUES (?1)")?
            .execute([room])?;
    }
    Ok(())
}

/// Whether the room of `event_id` keeps auth events before the events citing them (None:
/// the event is not stored).
pub fn ordered_room_of(conn: &Connection, event_id: &str) -> Result<Option<bool>> {
    Ok(conn
        .prepare_cached(
            "SELECT NOT EXISTS (SELECT 1 FROM auth_unordered_rooms u WHERE u.room_nid = e.room_nid)
             FROM events e WHERE e.event_id = ?1",
        )?
        .query_row([event_id], |r| r.get(0))
        .optional()?)
}

/// The nid of a stored event: its place in the order.
pub fn nid_of(conn: &Connection, event_id: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT nid FROM events WHERE event_id = ?1")?
        .query_row([event_id], |r| r.get(0))
        .optional()?)
}

/// Forget a purged room's bookkeeping.
pub fn purge(conn: &Connection, room_nid: i64) -> Result<()> {
    conn.execute("DELETE FROM auth_gaps WHERE room_nid = ?1", [room_nid])?;
    conn.execute("DELETE FROM auth_unordered_rooms WHERE room_nid = ?1", [room_nid])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::{NewEventRow, Placement, insert};

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::migrations::apply(&mut c).expect("migrate");
        c.execute(
            "INSERT INTO rooms (nid, room_id, room_version, creator, created_ts)
             VALUES (1, '!r:x', '10', '@a:x', 0)",
            [],
        )
        .expect("room");
        c
    }

    fn store(c: &Connection, id: &str, auth: &[&str]) {
        let json = serde_json::json!({"auth_events": auth}).to_string();
        let auth: Vec<OwnedEventId> =
            auth.iter().map(|a| OwnedEventId::try_from(*a).expect("event ID")).collect();
        let row = NewEventRow {
            event_id: id,
            event_type: "m.room.topic",
            state_key: Some(""),
            sender: "@a:x",
            depth: 1,
            origin_server_ts: 0,
            json: &json,
            prev_events: &[],
            auth_events: &auth,
            membership: None,
            txn: None,
        };
        insert(c, 1, None, &row, Placement::OUTLIER).expect("insert");
    }

    #[test]
    fn an_auth_event_stored_after_its_citer_unorders_the_room() {
        let c = db();
        store(&c, "$a", &[]);
        store(&c, "$b", &["$a"]);
        assert_eq!(ordered_room_of(&c, "$b").expect("query"), Some(true));
        // $d cites $c, which arrives later.
        store(&c, "$d", &["$b", "$c"]);
        assert_eq!(ordered_room_of(&c, "$d").expect("query"), Some(true));
        store(&c, "$c", &["$a"]);
        assert_eq!(ordered_room_of(&c, "$d").expect("query"), Some(false));
        assert_eq!(ordered_room_of(&c, "$unknown").expect("query"), None);
    }

    #[test]
    fn the_migration_finds_gaps_and_disorder_in_stored_events() {
        let c = db();
        let raw = |nid: i64, id: &str, room: i64, auth: serde_json::Value| {
            if room != 1 {
                c.execute(
                    "INSERT OR IGNORE INTO rooms (nid, room_id, room_version, creator, created_ts)
                     VALUES (?1, ?2, '1', '@a:x', 0)",
                    params![room, format!("!r{room}:x")],
                )
                .expect("room");
            }
            let json = serde_json::json!({ "auth_events": auth }).to_string();
            c.execute(
                "INSERT INTO events (nid, event_id, room_nid, event_type, sender, depth,
                   origin_server_ts, json) VALUES (?1, ?2, ?3, 't', '@a:x', 1, 0, ?4)",
                params![nid, id, room, json],
            )
            .expect("event");
        };
        // Room 1 in order, with a gap; room 2 (pairs, as v1 has them) cites a later event.
        raw(1, "$a", 1, serde_json::json!([]));
        raw(2, "$b", 1, serde_json::json!(["$a", "$gone"]));
        raw(3, "$x", 2, serde_json::json!([["$y", {"sha256": "h"}]]));
        raw(4, "$y", 2, serde_json::json!([]));
        c.execute_batch("DROP TABLE auth_gaps; DROP TABLE auth_unordered_rooms;").expect("drop");
        c.execute_batch(include_str!("../../migrations/0018_auth_order.sql")).expect("migration");
        assert_eq!(ordered_room_of(&c, "$b").expect("query"), Some(true));
        assert_eq!(ordered_room_of(&c, "$x").expect("query"), Some(false));
        let gaps: Vec<String> = c
            .prepare("SELECT event_id FROM auth_gaps")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(gaps, vec!["$gone"]);
        // The gap is remembered: $gone turning up unorders room 1.
        store(&c, "$gone", &[]);
        assert_eq!(ordered_room_of(&c, "$b").expect("query"), Some(false));
    }
}
