//! Parsed stored events shared across state resolutions: a resolution reads the same
//! power-levels chain (its mainline) and auth events again and again, and parsing their
//! JSON from SQLite each time made its cost grow with the room's history. An entry is
//! used only while the event's row still has the same nid, redaction and rejection
//! (checked with one indexed lookup per event), so a redaction, a purge or a rolled-back
//! write never serves a stale event. Entries are per database file, as several servers
//! may share a process and see the same event differently.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use ruma::room_version_rules::RoomVersionRules;
use rusqlite::{Connection, OptionalExtension};

use super::{Pdu, PduRef};
use crate::store::events;

/// Events kept per database; past this the database's entries are dropped and refilled.
const CAPACITY: usize = 20_000;

struct Entry {
    nid: i64,
    redacted: bool,
    pdu: PduRef,
}

static PARSED: LazyLock<Mutex<HashMap<String, HashMap<String, Entry>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A stored event (None: not stored) and its nid.
pub fn get(conn: &Connection, rules: &RoomVersionRules, id: &str) -> Option<(i64, PduRef)> {
    let (nid, redacted, rejected): (i64, bool, bool) = conn
        .prepare_cached(
            "SELECT nid, redacted_by IS NOT NULL, rejected IS NOT NULL FROM events
             WHERE event_id = ?1",
        )
        .ok()?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .ok()??;
    // In-memory databases have no path, and nothing to share with.
    let db = conn.path().filter(|p| !p.is_empty()).map(str::to_string);
    if let Some(db) = &db
        && let Ok(map) = PARSED.lock()
        && let Some(e) = map.get(db).and_then(|m| m.get(id))
        && e.nid == nid
        && e.redacted == redacted
        && e.pdu.rejected == rejected
    {
        return Some((nid, e.pdu.clone()));
    }
    let row = events::by_id(conn, id).ok()??;
    let mut p = Pdu::from_stored(&row.event_id, &row.json, rules).ok()?;
    p.rejected = row.rejected.is_some();
    let pdu = Arc::new(p);
    if let Some(db) = db
        && let Ok(mut map) = PARSED.lock()
    {
        let events = map.entry(db).or_default();
        if events.len() >= CAPACITY {
            events.clear();
        }
        let entry = Entry { nid: row.nid, redacted: row.redacted_by.is_some(), pdu: pdu.clone() };
        events.insert(id.to_string(), entry);
    }
    Some((row.nid, pdu))
}
