//! The `federation_outbox` and `federation_inbound_txns` tables, and the servers in a room.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// Queue one PDU or EDU for each destination.
pub fn enqueue(conn: &Connection, destinations: &[String], kind: &str, body: &str) -> Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT INTO federation_outbox (destination, kind, body) VALUES (?1, ?2, ?3)",
    )?;
    for d in destinations {
        st.execute(params![d, kind, body])?;
    }
    Ok(())
}

pub struct Queued {
    pub id: i64,
    pub kind: String,
    pub body: String,
}

/// The oldest queued items for a destination: at most `max_pdus` PDUs and `max_edus` EDUs,
/// stopping at the first item that does not fit so order is kept.
pub fn next_batch(
    conn: &Connection,
    destination: &str,
    max_pdus: usize,
    max_edus: usize,
) -> Result<Vec<Queued>> {
    let mut st = conn.prepare_cached(
        "SELECT id, kind, body FROM federation_outbox WHERE destination = ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = st.query_map(params![destination, (max_pdus + max_edus) as i64], |r| {
        Ok(Queued { id: r.get(0)?, kind: r.get(1)?, body: r.get(2)? })
    })?;
    let (mut pdus, mut edus, mut out) = (0, 0, vec![]);
    for row in rows {
        let q = row?;
        let n = if q.kind == "pdu" { &mut pdus } else { &mut edus };
        *n += 1;
        if pdus > max_pdus || edus > max_edus {
            break;
        }
        out.push(q);
    }
    Ok(out)
}

/// Forget items a destination accepted.
pub fn delete(conn: &Connection, ids: &[i64]) -> Result<()> {
    let mut st = conn.prepare_cached("DELETE FROM federation_outbox WHERE id = ?1")?;
    for id in ids {
        st.execute([id])?;
    }
    Ok(())
}

/// Destinations with something queued (to restart their senders at start-up).
pub fn pending_destinations(conn: &Connection) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached("SELECT DISTINCT destination FROM federation_outbox")?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn inbound_txn(conn: &Connection, origin: &str, txn_id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT response FROM federation_inbound_txns WHERE origin = ?1 AND txn_id = ?2",
        )?
        .query_row(params![origin, txn_id], |r| r.get(0))
        .optional()?)
}

pub fn put_inbound_txn(
    conn: &Connection,
    origin: &str,
    txn_id: &str,
    response: &str,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO federation_inbound_txns (origin, txn_id, response, received_ts)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![origin, txn_id, response, now])?;
    Ok(())
}

/// The distinct servers of the users `sql` selects (with `arg`), other than `own`.
fn servers_of(
    conn: &Connection,
    sql: &str,
    arg: &dyn rusqlite::ToSql,
    own: &str,
) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map([arg], |r| r.get::<_, String>(0))?;
    let mut out: Vec<String> = vec![];
    for r in rows {
        let user = r?;
        if let Some((_, server)) = user.split_once(':')
            && server != own
            && !out.iter().any(|s| s == server)
        {
            out.push(server.to_string());
        }
    }
    Ok(out)
}

/// The other servers with a joined member in a room (the room's "hosts").
pub fn hosts(conn: &Connection, room_nid: i64, own: &str) -> Result<Vec<String>> {
    let sql = "SELECT user_id FROM memberships WHERE room_nid = ?1 AND membership = 'join'";
    servers_of(conn, sql, &room_nid, own)
}

/// The room's hosts its server ACL lets in: where its EDUs go.
pub fn allowed_hosts(conn: &Connection, room_nid: i64, own: &str) -> Result<Vec<String>> {
    let mut out = hosts(conn, room_nid, own)?;
    let acl = crate::rooms::acl::current(conn, room_nid)?;
    out.retain(|d| crate::rooms::acl::allows(acl.as_ref(), d));
    Ok(out)
}

/// The other servers sharing a joined room with `user_id` (where their presence and
/// device list updates go).
pub fn hosts_of_user(conn: &Connection, user_id: &str, own: &str) -> Result<Vec<String>> {
    let sql =
        "SELECT DISTINCT b.user_id FROM memberships a JOIN memberships b ON b.room_nid = a.room_nid
         WHERE a.user_id = ?1 AND a.membership = 'join' AND b.membership = 'join'";
    servers_of(conn, sql, &user_id, own)
}

/// Queue an EDU for every other server sharing a room with a local user.
pub fn edu_to_hosts_of(
    conn: &Connection,
    user_id: &str,
    edu_type: &str,
    content: &serde_json::Value,
) -> Result<()> {
    let own = user_id.split_once(':').map(|(_, s)| s).unwrap_or_default();
    let dests = hosts_of_user(conn, user_id, own)?;
    let body = serde_json::json!({"edu_type": edu_type, "content": content}).to_string();
    enqueue(conn, &dests, "edu", &body)
}

/// Whether `server` has a user joined to the room.
pub fn server_in_room(conn: &Connection, room_nid: i64, server: &str) -> Result<bool> {
    Ok(hosts(conn, room_nid, "")?.iter().any(|s| s == server))
}
