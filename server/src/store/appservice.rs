//! The appservice transaction queue: items owed to each appservice in delivery order, and
//! the one transaction in flight per appservice (so a retry resends the same items under
//! the same transaction ID, as the spec requires).

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// What one queue row holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A timeline event, by nid (formatted when sent, so it reflects redactions).
    Event(i64),
    /// An ephemeral event's JSON (typing, receipt, presence).
    Ephemeral(String),
    /// A to-device message's JSON (MSC4203).
    ToDevice(String),
}

pub fn enqueue(conn: &Connection, as_id: &str, item: &Item) -> Result<()> {
    let (nid, eph, to_device) = match item {
        Item::Event(n) => (Some(*n), None, false),
        Item::Ephemeral(j) => (None, Some(j.as_str()), false),
        Item::ToDevice(j) => (None, Some(j.as_str()), true),
    };
    conn.prepare_cached(
        "INSERT INTO appservice_queue (as_id, event_nid, ephemeral, to_device)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![as_id, nid, eph, to_device])?;
    Ok(())
}

/// The transaction to send next: the one in flight, else a new one of at most `limit`
/// items (recorded as in flight). `None` when nothing is owed.
pub fn next_txn(conn: &Connection, as_id: &str, limit: usize) -> Result<Option<(i64, Vec<Item>)>> {
    let state: Option<(i64, Option<i64>)> = conn
        .prepare_cached("SELECT last_txn_id, inflight_upto FROM appservice_txns WHERE as_id = ?1")?
        .query_row([as_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (last, inflight) = state.unwrap_or((0, None));
    let rows = |upto: i64, limit: i64| -> Result<Vec<(i64, Item)>> {
        let mut st = conn.prepare_cached(
            "SELECT seq, event_nid, ephemeral, to_device FROM appservice_queue
             WHERE as_id = ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
        )?;
        let v = st
            .query_map(params![as_id, upto, limit], |r| {
                let json = || r.get::<_, Option<String>>(2).map(Option::unwrap_or_default);
                let item = match (r.get::<_, Option<i64>>(1)?, r.get::<_, bool>(3)?) {
                    (Some(n), _) => Item::Event(n),
                    (None, false) => Item::Ephemeral(json()?),
                    (None, true) => Item::ToDevice(json()?),
                };
                Ok((r.get(0)?, item))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(v)
    };
    if let Some(upto) = inflight {
        let items = rows(upto, i64::MAX)?;
        return Ok(Some((last, items.into_iter().map(|(_, i)| i).collect())));
    }
    let items = rows(i64::MAX, limit as i64)?;
    let Some((upto, _)) = items.last() else { return Ok(None) };
    let txn_id = last + 1;
    conn.prepare_cached(
        "INSERT INTO appservice_txns (as_id, last_txn_id, inflight_upto) VALUES (?1, ?2, ?3)
         ON CONFLICT (as_id) DO UPDATE SET last_txn_id = excluded.last_txn_id,
           inflight_upto = excluded.inflight_upto",
    )?
    .execute(params![as_id, txn_id, upto])?;
    Ok(Some((txn_id, items.into_iter().map(|(_, i)| i).collect())))
}

/// The appservice acknowledged `txn_id`: drop what it carried.
pub fn complete(conn: &Connection, as_id: &str, txn_id: i64) -> Result<()> {
    let upto: Option<i64> = conn
        .prepare_cached(
            "SELECT inflight_upto FROM appservice_txns WHERE as_id = ?1 AND last_txn_id = ?2",
        )?
        .query_row(params![as_id, txn_id], |r| r.get(0))
        .optional()?
        .flatten();
    if let Some(upto) = upto {
        conn.prepare_cached("DELETE FROM appservice_queue WHERE as_id = ?1 AND seq <= ?2")?
            .execute(params![as_id, upto])?;
        conn.prepare_cached("UPDATE appservice_txns SET inflight_upto = NULL WHERE as_id = ?1")?
            .execute([as_id])?;
    }
    Ok(())
}

/// How many items are owed to `as_id` (for logs and tests).
pub fn pending(conn: &Connection, as_id: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM appservice_queue WHERE as_id = ?1")?
        .query_row([as_id], |r| r.get(0))?)
}

/// Publish (or unpublish) a room in an appservice's own room directory list.
pub fn set_listed(
    conn: &Connection,
    as_id: &str,
    network_id: &str,
    room_id: &str,
    listed: bool,
) -> Result<()> {
    let sql = if listed {
        "INSERT OR IGNORE INTO appservice_room_list (as_id, network_id, room_id)
         VALUES (?1, ?2, ?3)"
    } else {
        "DELETE FROM appservice_room_list WHERE as_id = ?1 AND network_id = ?2 AND room_id = ?3"
    };
    conn.prepare_cached(sql)?.execute(params![as_id, network_id, room_id])?;
    Ok(())
}

/// Rooms in appservice lists: `(as_id, network_id, room_id)`.
pub fn listed_rooms(conn: &Connection) -> Result<Vec<(String, String, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT as_id, network_id, room_id FROM appservice_room_list ORDER BY room_id",
    )?;
    let v = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().expect("open");
        crate::store::migrations::apply(&mut c).expect("migrate");
        c
    }

    #[test]
    fn retries_resend_the_same_items_under_the_same_id() {
        let c = db();
        assert_eq!(next_txn(&c, "a", 2).expect("next"), None);
        for n in 1..=3 {
            enqueue(&c, "a", &Item::Event(n)).expect("enqueue");
        }
        enqueue(&c, "b", &Item::Ephemeral("{}".into())).expect("enqueue");
        enqueue(&c, "b", &Item::ToDevice("{\"t\":1}".into())).expect("enqueue");
        let (t1, items) = next_txn(&c, "a", 2).expect("next").expect("some");
        assert_eq!(items, vec![Item::Event(1), Item::Event(2)]);
        enqueue(&c, "a", &Item::Event(4)).expect("enqueue");
        // Not acknowledged: the retry is the same transaction, with nothing added.
        assert_eq!(next_txn(&c, "a", 10).expect("next"), Some((t1, items)));
        complete(&c, "a", t1).expect("complete");
        let (t2, items) = next_txn(&c, "a", 10).expect("next").expect("some");
        assert_eq!((t2, items), (t1 + 1, vec![Item::Event(3), Item::Event(4)]));
        complete(&c, "a", t2).expect("complete");
        assert_eq!(next_txn(&c, "a", 10).expect("next"), None);
        assert_eq!(pending(&c, "b").expect("pending"), 2, "other appservices keep theirs");
        let (_, items) = next_txn(&c, "b", 10).expect("next").expect("some");
        assert_eq!(items, vec![Item::Ephemeral("{}".into()), Item::ToDevice("{\"t\":1}".into())]);
    }
}
