//! The `device_list_changes` table (the `device_lists` stream) and the "who shares a room
//! with whom" questions `/sync` and `/keys/changes` ask of `memberships`.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::account_data::next_stream_pos;
use crate::error::Result;

/// Record that a local user's devices as a whole (or cross-signing keys) changed:
/// everyone who shares a room with them, and the user themselves, should refetch their
/// keys. Other servers get an update naming no device, which tells them to refetch the
/// list. Advances the `device_lists` stream; the caller notifies once the job has
/// committed.
pub fn changed(conn: &Connection, user_nid: i64) -> Result<i64> {
    let Some((pos, user_id)) = record(conn, user_nid)? else { return Ok(0) };
    let edu = json!({"user_id": user_id, "device_id": "", "stream_id": pos, "deleted": false});
    send_update(conn, &user_id, pos, edu)?;
    Ok(pos)
}

/// Record that one of a local user's devices was added, renamed, got new keys or was
/// deleted (it is gone from `devices`): as [`changed`], but other servers get the
/// device's current state (`m.device_list_update` with its signed keys, or
/// `deleted`) so they can apply it without refetching the list.
pub fn device_changed(conn: &Connection, user_nid: i64, device_id: &str) -> Result<i64> {
    let Some((pos, user_id)) = record(conn, user_nid)? else { return Ok(0) };
    let device = conn
        .prepare_cached(
            "SELECT d.nid, k.key_json FROM devices d
             LEFT JOIN e2e_device_keys k ON k.device_nid = d.nid
             WHERE d.user_nid = ?1 AND d.device_id = ?2",
        )?
        .query_row(params![user_nid, device_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
        })
        .optional()?;
    let mut edu = json!({"user_id": user_id, "device_id": device_id, "stream_id": pos});
    match device {
        None => edu["deleted"] = json!(true),
        // No `device_display_name`: other servers do not learn device names, as from
        // `/user/keys/query` (Synapse's `allow_device_name_lookup_over_federation` off).
        Some((nid, keys)) => {
            edu["deleted"] = json!(false);
            // Keys as `/user/devices` gives them: with the owner's cross-signatures.
            if let Some(mut k) = keys.and_then(|k| serde_json::from_str::<Value>(&k).ok()) {
                let sigs = super::e2e_keys::device_signatures(conn, nid)?;
                crate::e2ee::keys::add_signatures(&mut k, &user_id, sigs);
                edu["keys"] = k;
            }
        }
    }
    send_update(conn, &user_id, pos, edu)?;
    Ok(pos)
}

/// Advance the stream for a local user's change, which everyone sharing a room with them
/// (and they themselves) hears of. `None` for an unknown user.
fn record(conn: &Connection, user_nid: i64) -> Result<Option<(i64, String)>> {
    let user_id: Option<String> = conn
        .prepare_cached("SELECT user_id FROM users WHERE nid = ?1")?
        .query_row([user_nid], |r| r.get(0))
        .optional()?;
    let Some(user_id) = user_id else { return Ok(None) };
    let pos = next_stream_pos(conn, "device_lists")?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO device_list_changes (stream_pos, user_id, observer)
         VALUES (?1, ?2, NULL)",
    )?
    .execute(params![pos, user_id])?;
    Ok(Some((pos, user_id)))
}

/// Queue an `m.device_list_update` to every server sharing a room with the user, each
/// with `prev_id` set to the stream_id of the last update that server was sent for the
/// user (as Synapse does), so a server that missed one knows to refetch.
fn send_update(conn: &Connection, user_id: &str, pos: i64, mut edu: Value) -> Result<()> {
    let own = user_id.split_once(':').map(|(_, s)| s).unwrap_or_default();
    let dests = super::federation::hosts_of_user(conn, user_id, own)?;
    let mut last = conn.prepare_cached(
        "SELECT stream_id FROM device_list_outbound WHERE destination = ?1 AND user_id = ?2",
    )?;
    let mut set = conn.prepare_cached(
        "INSERT OR REPLACE INTO device_list_outbound (destination, user_id, stream_id)
         VALUES (?1, ?2, ?3)",
    )?;
    for d in dests {
        let prev: Option<i64> = last.query_row(params![d, user_id], |r| r.get(0)).optional()?;
        edu["prev_id"] = json!(prev.into_iter().collect::<Vec<_>>());
        set.execute(params![d, user_id, pos])?;
        let body = json!({"edu_type": "m.device_list_update", "content": edu}).to_string();
        super::federation::enqueue(conn, std::slice::from_ref(&d), "edu", &body)?;
    }
    Ok(())
}

/// Record that a remote user's devices changed (their server told us): local users
/// sharing a room with them see it in `device_lists.changed`.
pub fn changed_remote(conn: &Connection, user_id: &str) -> Result<i64> {
    let pos = next_stream_pos(conn, "device_lists")?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO device_list_changes (stream_pos, user_id, observer)
         VALUES (?1, ?2, NULL)",
    )?
    .execute(params![pos, user_id])?;
    Ok(pos)
}

/// The `device_lists` position of a user's latest change seen by everyone (0: none): the
/// `stream_id` other servers get with the user's device list.
pub fn latest_for(conn: &Connection, user_id: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(MAX(stream_pos), 0) FROM device_list_changes
             WHERE user_id = ?1 AND observer IS NULL",
        )?
        .query_row([user_id], |r| r.get(0))?)
}

/// Record a change that only `observer` needs to hear about: their own signatures of
/// `user_ids`' keys (Synapse's "user signature" stream).
pub fn changed_for(conn: &Connection, observer: &str, user_ids: &[String]) -> Result<i64> {
    let pos = next_stream_pos(conn, "device_lists")?;
    let mut st = conn.prepare_cached(
        "INSERT OR IGNORE INTO device_list_changes (stream_pos, user_id, observer)
         VALUES (?1, ?2, ?3)",
    )?;
    for u in user_ids {
        st.execute(params![pos, u, observer])?;
    }
    Ok(pos)
}

/// Stream ranges to compare: `(from, to]` on the `device_lists` and `events` streams.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub lists_from: i64,
    pub lists_to: i64,
    pub events_from: i64,
    pub events_to: i64,
}

/// `device_lists.changed` / `.left` for `user_id` (spec: "Extensions to /sync" of
/// end-to-end encryption, and `GET /keys/changes`):
/// - changed: users sharing a room with `user_id` whose devices changed in the range, the
///   user themselves when their own devices changed, users who joined a room `user_id` is
///   in, and everyone in a room `user_id` joined;
/// - left: users who no longer share any room with `user_id` after a membership change in
///   the range (theirs or `user_id`'s).
///
/// "Share a room" means both are joined (`memberships.membership = 'join'`).
pub fn changes(
    conn: &Connection,
    user_id: &str,
    r: Range,
) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    let mut changed = BTreeSet::new();
    let mut left = BTreeSet::new();
    if r.lists_to > r.lists_from {
        let mut st = conn.prepare_cached(
            "SELECT DISTINCT c.user_id FROM device_list_changes c
             WHERE c.stream_pos > ?2 AND c.stream_pos <= ?3
               AND (c.observer = ?1 OR (c.observer IS NULL AND (c.user_id = ?1 OR EXISTS (
                   SELECT 1 FROM memberships a JOIN memberships b ON b.room_nid = a.room_nid
                   WHERE a.user_id = ?1 AND a.membership = 'join'
                     AND b.user_id = c.user_id AND b.membership = 'join'))))",
        )?;
        let rows = st.query_map(params![user_id, r.lists_from, r.lists_to], |row| row.get(0))?;
        for u in rows {
            changed.insert(u?);
        }
    }
    if r.events_to > r.events_from {
        // Others who joined one of my rooms, and everyone in a room I joined.
        let mut st = conn.prepare_cached(
            "SELECT DISTINCT b.user_id FROM memberships a JOIN memberships b ON b.room_nid = a.room_nid
             WHERE a.user_id = ?1 AND a.membership = 'join' AND b.membership = 'join'
               AND b.user_id != ?1
               AND ((b.stream_pos > ?2 AND b.stream_pos <= ?3)
                 OR (a.stream_pos > ?2 AND a.stream_pos <= ?3))",
        )?;
        let rows = st.query_map(params![user_id, r.events_from, r.events_to], |row| row.get(0))?;
        for u in rows {
            changed.insert(u?);
        }
        // Others who left one of my rooms, and everyone still in a room I left...
        let mut st = conn.prepare_cached(
            "SELECT DISTINCT b.user_id FROM memberships a JOIN memberships b ON b.room_nid = a.room_nid
             WHERE a.user_id = ?1 AND b.user_id != ?1
               AND ((a.membership = 'join' AND b.membership != 'join'
                     AND b.stream_pos > ?2 AND b.stream_pos <= ?3)
                 OR (a.membership != 'join' AND b.membership = 'join'
                     AND a.stream_pos > ?2 AND a.stream_pos <= ?3))",
        )?;
        let rows = st.query_map(params![user_id, r.events_from, r.events_to], |row| row.get(0))?;
        let mut candidates = vec![];
        for u in rows {
            candidates.push(u?);
        }
        // ...unless we still share another room.
        let mut shares = conn.prepare_cached(
            "SELECT 1 FROM memberships a JOIN memberships b ON b.room_nid = a.room_nid
             WHERE a.user_id = ?1 AND a.membership = 'join'
               AND b.user_id = ?2 AND b.membership = 'join' LIMIT 1",
        )?;
        for u in candidates {
            if !shares.exists(params![user_id, u])? {
                left.insert(u);
            }
        }
    }
    // Someone who left every shared room is not "changed" (their last device change may
    // fall in the same range).
    changed.retain(|u| !left.contains(u));
    Ok((changed, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with the schema; foreign keys off so memberships need no real events.
    fn db() -> Connection {
        let mut c = Connection::open_in_memory().expect("open");
        crate::store::migrations::apply(&mut c).expect("migrate");
        c.pragma_update(None, "foreign_keys", "OFF").expect("fk");
        for (nid, user) in [(1, "@alice:hs"), (2, "@bob:hs"), (3, "@carol:hs")] {
            c.execute(
                "INSERT INTO users (nid, user_id, created_ts) VALUES (?1, ?2, 0)",
                params![nid, user],
            )
            .expect("user");
        }
        c
    }

    fn member(c: &Connection, room: i64, user: &str, membership: &str, pos: i64) {
        c.execute(
            "INSERT INTO memberships (room_nid, user_id, membership, event_nid, stream_pos)
             VALUES (?1, ?2, ?3, 0, ?4)
             ON CONFLICT (room_nid, user_id) DO UPDATE SET membership = excluded.membership,
               stream_pos = excluded.stream_pos",
            params![room, user, membership, pos],
        )
        .expect("membership");
    }

    fn range(lists: (i64, i64), events: (i64, i64)) -> Range {
        Range { lists_from: lists.0, lists_to: lists.1, events_from: events.0, events_to: events.1 }
    }

    fn set(users: &[&str]) -> BTreeSet<String> {
        users.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn device_changes_reach_room_mates_and_the_user() {
        let c = db();
        member(&c, 1, "@alice:hs", "join", 1);
        member(&c, 1, "@bob:hs", "join", 2);
        let p1 = changed(&c, 2).expect("bob changed");
        let p2 = changed(&c, 3).expect("carol changed");
        assert_eq!((p1, p2), (1, 2), "the stream advances by one per change");
        let (ch, left) = changes(&c, "@alice:hs", range((0, 2), (2, 2))).expect("changes");
        assert_eq!(ch, set(&["@bob:hs"]), "carol shares no room with alice");
        assert!(left.is_empty());
        let (ch, _) = changes(&c, "@carol:hs", range((0, 2), (2, 2))).expect("changes");
        assert_eq!(ch, set(&["@carol:hs"]), "own changes, without any room");
        let (ch, _) = changes(&c, "@alice:hs", range((1, 2), (2, 2))).expect("changes");
        assert!(ch.is_empty(), "bob's change is before the range");
        // Only the observer hears about their own signatures of others.
        let p3 = changed_for(&c, "@carol:hs", &["@bob:hs".to_string()]).expect("signature");
        let (ch, _) = changes(&c, "@carol:hs", range((2, p3), (2, 2))).expect("changes");
        assert_eq!(ch, set(&["@bob:hs"]));
        let (ch, _) = changes(&c, "@alice:hs", range((2, p3), (2, 2))).expect("changes");
        assert!(ch.is_empty(), "{ch:?}");
    }

    #[test]
    fn joins_and_leaves() {
        let c = db();
        member(&c, 1, "@alice:hs", "join", 1);
        // Bob joins alice's room: changed.
        member(&c, 1, "@bob:hs", "join", 2);
        assert_eq!(
            changes(&c, "@alice:hs", range((0, 0), (1, 2))).expect("c").0,
            set(&["@bob:hs"])
        );
        // Alice joins carol's room: carol is changed for alice.
        member(&c, 2, "@carol:hs", "join", 3);
        member(&c, 2, "@alice:hs", "join", 4);
        let (ch, left) = changes(&c, "@alice:hs", range((0, 0), (3, 4))).expect("c");
        assert_eq!(ch, set(&["@carol:hs"]));
        assert!(left.is_empty());
        // Bob leaves: left for alice, and for bob alice is left too.
        member(&c, 1, "@bob:hs", "leave", 5);
        let (ch, left) = changes(&c, "@alice:hs", range((0, 0), (4, 5))).expect("c");
        assert!(ch.is_empty());
        assert_eq!(left, set(&["@bob:hs"]));
        // Alice leaves carol's room: carol is left for alice.
        member(&c, 2, "@alice:hs", "leave", 6);
        assert_eq!(
            changes(&c, "@alice:hs", range((0, 0), (5, 6))).expect("c").1,
            set(&["@carol:hs"])
        );
        // Carol and alice still sharing another room: not left.
        member(&c, 3, "@alice:hs", "join", 7);
        member(&c, 3, "@carol:hs", "join", 8);
        member(&c, 3, "@bob:hs", "join", 9);
        member(&c, 3, "@bob:hs", "leave", 10);
        member(&c, 1, "@bob:hs", "join", 11);
        // Bob joined and left room 3, then rejoined room 1, where alice still is.
        let (ch, left) = changes(&c, "@alice:hs", range((0, 0), (9, 11))).expect("c");
        assert_eq!(ch, set(&["@bob:hs"]), "bob shares room 1 with alice again");
        assert!(left.is_empty(), "{left:?}");
        // A device change of someone who left every shared room is not reported.
        member(&c, 1, "@bob:hs", "leave", 12);
        let p = changed(&c, 2).expect("bob changed");
        let (ch, left) = changes(&c, "@alice:hs", range((0, p), (11, 12))).expect("c");
        assert!(ch.is_empty(), "{ch:?}");
        assert_eq!(left, set(&["@bob:hs"]));
    }
}
