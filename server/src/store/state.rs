//! State snapshots as deduplicated deltas, and the current state of each room.
//!
//! A state group is its parent's state plus its own entries (a NULL event_nid removes a
//! key). A new group is a full snapshot instead of a delta once the chain below it would
//! pass `MAX_CHAIN`, so reading any state walks at most that many groups.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

pub type StateKey = (String, String);

/// Longest delta chain before a full snapshot is written.
const MAX_CHAIN: i64 = 64;

/// The full state at a group: (type, state_key) -> event nid.
pub fn state_at(conn: &Connection, group: i64) -> Result<HashMap<StateKey, i64>> {
    // One statement for the whole chain: a statement per group (two, with the parent
    // lookup) cost more than reading the entries themselves.
    let mut entries = conn.prepare_cached(&format!(
        "{CHAIN} SELECT e.event_type, e.state_key, e.event_nid
         FROM chain JOIN state_group_entries e ON e.group_id = chain.id ORDER BY chain.n DESC"
    ))?;
    let rows = entries.query_map([group], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<i64>>(2)?))
    })?;
    let mut state = HashMap::new();
    // Oldest first, so newer deltas overwrite.
    for row in rows {
        let (t, k, nid) = row?;
        match nid {
            Some(n) => state.insert((t, k), n),
            None => state.remove(&(t, k)),
        };
    }
    Ok(state)
}

/// Full states read while building one answer, by group: a group never changes once
/// written, and the sections of one answer keep asking about the same few groups.
#[derive(Default)]
pub struct Snapshots {
    by_group: RefCell<HashMap<i64, Rc<HashMap<StateKey, i64>>>>,
}

impl Snapshots {
    /// [`state_at`], read once per group.
    pub fn at(&self, conn: &Connection, group: i64) -> Result<Rc<HashMap<StateKey, i64>>> {
        if let Some(s) = self.by_group.borrow().get(&group) {
            return Ok(s.clone());
        }
        let s = Rc::new(state_at(conn, group)?);
        self.by_group.borrow_mut().insert(group, s.clone());
        Ok(s)
    }

    /// [`lookup`], answered from the group's full state when it has been read already.
    pub fn lookup(
        &self,
        conn: &Connection,
        group: i64,
        event_type: &str,
        state_key: &str,
    ) -> Result<Option<i64>> {
        if let Some(s) = self.by_group.borrow().get(&group) {
            return Ok(s.get(&(event_type.to_owned(), state_key.to_owned())).copied());
        }
        lookup(conn, group, event_type, state_key)
    }
}

/// [`lookup`], through `states` when the caller holds full states already.
pub fn lookup_in(
    states: Option<&Snapshots>,
    conn: &Connection,
    group: i64,
    event_type: &str,
    state_key: &str,
) -> Result<Option<i64>> {
    match states {
        Some(s) => s.lookup(conn, group, event_type, state_key),
        None => lookup(conn, group, event_type, state_key),
    }
}

/// The groups from `?1` up to its full snapshot, `n` counting up from `?1` itself.
const CHAIN: &str = "WITH RECURSIVE chain(id, n) AS (
    SELECT ?1, 0
    UNION ALL
    SELECT g.parent, chain.n + 1 FROM state_groups g JOIN chain ON g.id = chain.id
    WHERE g.parent IS NOT NULL)";

/// One key's value at a group, without loading the whole state.
pub fn lookup(
    conn: &Connection,
    group: i64,
    event_type: &str,
    state_key: &str,
) -> Result<Option<i64>> {
    // The nearest group with an entry for the key decides (a NULL entry removed it).
    let mut entry = conn.prepare_cached(&format!(
        "{CHAIN} SELECT e.event_nid FROM chain JOIN state_group_entries e
         ON e.group_id = chain.id AND e.event_type = ?2 AND e.state_key = ?3
         ORDER BY chain.n LIMIT 1"
    ))?;
    Ok(entry
        .query_row(params![group, event_type, state_key], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten())
}

/// A new group: `parent` plus `delta` (None removes a key).
pub fn new_group(
    conn: &Connection,
    room_nid: i64,
    parent: Option<i64>,
    delta: &[(String, String, Option<i64>)],
) -> Result<i64> {
    let parent_depth: Option<i64> = match parent {
        Some(p) => conn
            .prepare_cached("SELECT depth FROM state_groups WHERE id = ?1")?
            .query_row([p], |r| r.get(0))
            .optional()?,
        None => None,
    };
    let mut insert_entry = conn.prepare_cached(
        "INSERT OR REPLACE INTO state_group_entries (group_id, event_type, state_key, event_nid)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    match (parent, parent_depth) {
        (Some(p), Some(d)) if d + 1 < MAX_CHAIN => {
            conn.prepare_cached(
                "INSERT INTO state_groups (room_nid, parent, depth) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![room_nid, p, d + 1])?;
            let id = conn.last_insert_rowid();
            for (t, k, nid) in delta {
                insert_entry.execute(params![id, t, k, nid])?;
            }
            Ok(id)
        }
        _ => {
            // Full snapshot: the parent's whole state with the delta applied.
            let mut state = match parent {
                Some(p) => state_at(conn, p)?,
                None => HashMap::new(),
            };
            for (t, k, nid) in delta {
                match nid {
                    Some(n) => state.insert((t.clone(), k.clone()), *n),
                    None => state.remove(&(t.clone(), k.clone())),
                };
            }
            conn.prepare_cached(
                "INSERT INTO state_groups (room_nid, parent, depth) VALUES (?1, NULL, 0)",
            )?
            .execute([room_nid])?;
            let id = conn.last_insert_rowid();
            for ((t, k), nid) in &state {
                insert_entry.execute(params![id, t, k, nid])?;
            }
            Ok(id)
        }
    }
}

pub fn current(conn: &Connection, room_nid: i64) -> Result<Vec<(String, String, i64)>> {
    let mut st = conn.prepare_cached(
        "SELECT event_type, state_key, event_nid FROM current_state WHERE room_nid = ?1",
    )?;
    let rows = st.query_map([room_nid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn current_lookup(
    conn: &Connection,
    room_nid: i64,
    event_type: &str,
    state_key: &str,
) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT event_nid FROM current_state WHERE room_nid = ?1 AND event_type = ?2 AND state_key = ?3",
        )?
        .query_row(params![room_nid, event_type, state_key], |r| r.get(0))
        .optional()?)
}

pub fn set_current(
    conn: &Connection,
    room_nid: i64,
    event_type: &str,
    state_key: &str,
    nid: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO current_state (room_nid, event_type, state_key, event_nid) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (room_nid, event_type, state_key) DO UPDATE SET event_nid = excluded.event_nid",
    )?
    .execute(params![room_nid, event_type, state_key, nid])?;
    Ok(())
}

/// Make `state` the room's current state (after resolving a fork or joining over
/// federation): only the keys that differ are written, and memberships follow the
/// `m.room.member` keys that changed. `stream_pos` is the position the changes count at.
pub fn replace_current(
    conn: &Connection,
    room_nid: i64,
    state: &HashMap<StateKey, i64>,
    stream_pos: i64,
) -> Result<()> {
    let old: HashMap<StateKey, i64> =
        current(conn, room_nid)?.into_iter().map(|(t, k, n)| ((t, k), n)).collect();
    for ((t, k), nid) in state {
        if old.get(&(t.clone(), k.clone())) == Some(nid) {
            continue;
        }
        set_current(conn, room_nid, t, k, *nid)?;
        if t == "m.room.member" {
            let json: String = conn
                .prepare_cached("SELECT json FROM events WHERE nid = ?1")?
                .query_row([nid], |r| r.get(0))?;
            let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
            if let Some(m) = v["content"]["membership"].as_str() {
                super::events::set_membership(conn, room_nid, k, m, *nid, stream_pos)?;
            }
        }
    }
    let mut del = conn.prepare_cached(
        "DELETE FROM current_state WHERE room_nid = ?1 AND event_type = ?2 AND state_key = ?3",
    )?;
    for (t, k) in old.keys() {
        if !state.contains_key(&(t.clone(), k.clone())) {
            del.execute(params![room_nid, t, k])?;
        }
    }
    Ok(())
}

/// A new group holding exactly `state`, as a delta from `base` when there is one.
pub fn group_for(
    conn: &Connection,
    room_nid: i64,
    base: Option<i64>,
    state: &HashMap<StateKey, i64>,
) -> Result<i64> {
    let base_state = match base {
        Some(g) => state_at(conn, g)?,
        None => HashMap::new(),
    };
    let mut delta: Vec<(String, String, Option<i64>)> = state
        .iter()
        .filter(|(k, v)| base_state.get(*k) != Some(*v))
        .map(|((t, k), v)| (t.clone(), k.clone(), Some(*v)))
        .collect();
    for (t, k) in base_state.keys() {
        if !state.contains_key(&(t.clone(), k.clone())) {
            delta.push((t.clone(), k.clone(), None));
        }
    }
    if delta.is_empty()
        && let Some(g) = base
    {
        return Ok(g);
    }
    new_group(conn, room_nid, base, &delta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::migrations::apply(&mut c).expect("migrate");
        c.execute("INSERT INTO rooms (nid, room_id, room_version, creator, created_ts) VALUES (1, '!r:x', '10', '@a:x', 0)", [])
            .expect("room");
        c
    }

    #[test]
    fn deltas_and_snapshots_agree() {
        let c = db();
        let mut group = None;
        let mut expected = HashMap::new();
        // 200 changes: several snapshot cuts, overwrites and removals.
        for i in 0..200i64 {
            let key = format!("k{}", i % 17);
            let value = if i % 13 == 0 { None } else { Some(i) };
            group =
                Some(new_group(&c, 1, group, &[("t".into(), key.clone(), value)]).expect("group"));
            match value {
                Some(v) => expected.insert(("t".to_string(), key.clone()), v),
                None => expected.remove(&("t".to_string(), key.clone())),
            };
            let g = group.expect("group");
            assert_eq!(lookup(&c, g, "t", &key).expect("lookup"), value);
        }
        assert_eq!(state_at(&c, group.expect("g")).expect("state"), expected);
        let max_depth: i64 =
            c.query_row("SELECT MAX(depth) FROM state_groups", [], |r| r.get(0)).expect("depth");
        assert!(max_depth < MAX_CHAIN);
    }
}
