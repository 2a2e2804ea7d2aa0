//! The `remote_device_lists` and `remote_devices` tables: remote users' device lists,
//! cached while a local user shares a room with them.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::now_ms;
use crate::error::{Error, Result};

/// How many applied stream_ids a list remembers for checking `prev_id`.
const SEEN: usize = 20;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CachedList {
    pub stream_id: i64,
    pub stale: bool,
    pub master_key: Option<Value>,
    pub self_signing_key: Option<Value>,
    /// (device ID, device keys, display name)
    pub devices: Vec<(String, Option<Value>, Option<String>)>,
}

fn parse(s: Option<String>) -> Option<Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

fn text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(Value::to_string)
}

/// Whether a local user shares a joined room with `user_id` (the condition for caching
/// their devices: their server then tells us of changes).
pub fn shares_room(conn: &Connection, user_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM memberships a JOIN memberships b ON b.room_nid = a.room_nid
             JOIN users u ON u.user_id = a.user_id
             WHERE b.user_id = ?1 AND a.membership = 'join' AND b.membership = 'join' LIMIT 1",
        )?
        .query_row([user_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether a local user and `user_id` have both been joined to some room since before
/// their list was fetched (`memberships` holds each user's latest membership).
fn shared_since_fetch(conn: &Connection, user_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM remote_device_lists l
             JOIN memberships b ON b.user_id = l.user_id
             JOIN memberships a ON a.room_nid = b.room_nid
             JOIN users u ON u.user_id = a.user_id
             WHERE l.user_id = ?1 AND a.membership = 'join' AND b.membership = 'join'
               AND a.stream_pos <= l.fetched_pos AND b.stream_pos <= l.fetched_pos LIMIT 1",
        )?
        .query_row([user_id], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn get(conn: &Connection, user_id: &str) -> Result<Option<CachedList>> {
    let head = conn
        .prepare_cached(
            "SELECT stream_id, stale, master_key, self_signing_key FROM remote_device_lists
             WHERE user_id = ?1",
        )?
        .query_row([user_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .optional()?;
    let Some((stream_id, stale, master, ssk)) = head else { return Ok(None) };
    // A room shared only since the fetch means one was not shared in between (a leave
    // and a rejoin): updates sent meanwhile never reached us, so fetch it again.
    let stale = stale || !shared_since_fetch(conn, user_id)?;
    let mut st = conn.prepare_cached(
        "SELECT device_id, keys, display_name FROM remote_devices WHERE user_id = ?1
         ORDER BY device_id",
    )?;
    let devices = st
        .query_map([user_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .map(|(d, k, n)| (d, parse(k), n))
        .collect();
    Ok(Some(CachedList {
        stream_id,
        stale,
        master_key: parse(master),
        self_signing_key: parse(ssk),
        devices,
    }))
}

/// Replace a user's whole list (a full fetch from their server).
pub fn replace(conn: &Connection, user_id: &str, list: &CachedList) -> Result<()> {
    drop_user(conn, user_id)?;
    conn.prepare_cached(
        "INSERT INTO remote_device_lists
           (user_id, stream_id, seen_ids, stale, master_key, self_signing_key, fetched_ts,
            fetched_pos)
         VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, (SELECT COALESCE(MAX(stream_pos), 0) FROM memberships))",
    )?
    .execute(params![
        user_id,
        list.stream_id,
        serde_json::json!([list.stream_id]).to_string(),
        text(&list.master_key),
        text(&list.self_signing_key),
        now_ms()
    ])?;
    for (device_id, keys, name) in &list.devices {
        put_device(conn, user_id, device_id, keys, name)?;
    }
    Ok(())
}

fn put_device(
    conn: &Connection,
    user_id: &str,
    device_id: &str,
    keys: &Option<Value>,
    name: &Option<String>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO remote_devices (user_id, device_id, keys, display_name)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![user_id, device_id, text(keys), name])?;
    Ok(())
}

pub fn drop_user(conn: &Connection, user_id: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM remote_devices WHERE user_id = ?1")?.execute([user_id])?;
    conn.prepare_cached("DELETE FROM remote_device_lists WHERE user_id = ?1")?
        .execute([user_id])?;
    Ok(())
}

pub fn mark_stale(conn: &Connection, user_id: &str) -> Result<()> {
    conn.prepare_cached("UPDATE remote_device_lists SET stale = 1 WHERE user_id = ?1")?
        .execute([user_id])?;
    Ok(())
}

/// One `m.device_list_update`, as its fields arrive.
#[derive(Debug, Clone)]
pub struct Update {
    pub device_id: String,
    pub stream_id: i64,
    pub prev_ids: Vec<i64>,
    pub deleted: bool,
    pub keys: Option<Value>,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Nothing cached for the user: nothing to do.
    NotCached,
    /// Applied (or already seen).
    Applied,
    /// A prev_id we never saw, or an update that carries no device: the list is marked
    /// stale and must be fetched whole again.
    NeedsResync,
}

/// Apply an update to a cached list incrementally when every prev_id is one we applied
/// (as Synapse does); otherwise mark the list stale.
pub fn apply_update(conn: &Connection, user_id: &str, u: &Update) -> Result<Applied> {
    let row = conn
        .prepare_cached("SELECT stream_id, seen_ids FROM remote_device_lists WHERE user_id = ?1")?
        .query_row([user_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .optional()?;
    let Some((stream_id, seen)) = row else { return Ok(Applied::NotCached) };
    let mut seen: Vec<i64> = serde_json::from_str(&seen).unwrap_or_default();
    // Already applied, or older than the list we hold (as Synapse, which skips those).
    if seen.contains(&u.stream_id) || u.stream_id <= stream_id {
        return Ok(Applied::Applied);
    }
    // An update that names no device says only "something changed": fetch the list
    // again. One without keys is a device without keys (the spec: "absent if the device
    // has no E2E keys defined").
    let usable = !u.device_id.is_empty();
    if !usable || u.prev_ids.iter().any(|p| !seen.contains(p)) {
        mark_stale(conn, user_id)?;
        return Ok(Applied::NeedsResync);
    }
    if u.deleted {
        conn.prepare_cached("DELETE FROM remote_devices WHERE user_id = ?1 AND device_id = ?2")?
            .execute(params![user_id, u.device_id])?;
    } else {
        put_device(conn, user_id, &u.device_id, &u.keys, &u.display_name)?;
    }
    seen.push(u.stream_id);
    if seen.len() > SEEN {
        seen.drain(..seen.len() - SEEN);
    }
    conn.prepare_cached(
        "UPDATE remote_device_lists SET stream_id = ?2, seen_ids = ?3 WHERE user_id = ?1",
    )?
    .execute(params![
        user_id,
        stream_id.max(u.stream_id),
        serde_json::to_string(&seen).map_err(Error::internal)?
    ])?;
    Ok(Applied::Applied)
}

/// `m.signing_key_update`: new cross-signing keys for a cached user. Returns whether the
/// user is cached.
pub fn set_cross_signing(
    conn: &Connection,
    user_id: &str,
    master: Option<&Value>,
    self_signing: Option<&Value>,
) -> Result<bool> {
    let mut n = 0;
    if let Some(m) = master {
        n = conn
            .prepare_cached("UPDATE remote_device_lists SET master_key = ?2 WHERE user_id = ?1")?
            .execute(params![user_id, m.to_string()])?;
    }
    if let Some(s) = self_signing {
        n = conn
            .prepare_cached(
                "UPDATE remote_device_lists SET self_signing_key = ?2 WHERE user_id = ?1",
            )?
            .execute(params![user_id, s.to_string()])?;
    }
    if master.is_none() && self_signing.is_none() {
        return Ok(get(conn, user_id)?.is_some());
    }
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database where local @alice and @bob:remote share a room since before any fetch
    /// (foreign keys off so memberships need no real events).
    fn db() -> Connection {
        let mut c = Connection::open_in_memory().expect("open");
        crate::store::migrations::apply(&mut c).expect("migrations");
        c.pragma_update(None, "foreign_keys", "OFF").expect("fk");
        c.execute("INSERT INTO users (nid, user_id, created_ts) VALUES (1, '@alice:hs', 0)", [])
            .expect("user");
        for (user, pos) in [("@alice:hs", 1), ("@bob:remote", 2)] {
            c.execute(
                "INSERT INTO memberships (room_nid, user_id, membership, event_nid, stream_pos)
                 VALUES (1, ?1, 'join', 0, ?2)",
                params![user, pos],
            )
            .expect("membership");
        }
        c
    }

    fn update(device: &str, stream_id: i64, prev: &[i64]) -> Update {
        Update {
            device_id: device.into(),
            stream_id,
            prev_ids: prev.to_vec(),
            deleted: false,
            keys: Some(serde_json::json!({"device_id": device})),
            display_name: None,
        }
    }

    #[test]
    fn updates_apply_in_order_and_unknown_prev_ids_ask_for_a_resync() {
        let c = db();
        let u = "@bob:remote";
        assert_eq!(apply_update(&c, u, &update("D1", 1, &[])).expect("apply"), Applied::NotCached);
        let list = CachedList {
            stream_id: 5,
            devices: vec![("D0".into(), None, None)],
            ..Default::default()
        };
        replace(&c, u, &list).expect("replace");
        assert_eq!(apply_update(&c, u, &update("D1", 6, &[5])).expect("apply"), Applied::Applied);
        let got = get(&c, u).expect("get").expect("cached");
        assert_eq!(got.stream_id, 6);
        assert_eq!(got.devices.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(), ["D0", "D1"]);
        assert!(!got.stale);
        // A repeat is ignored; a deletion applies.
        assert_eq!(apply_update(&c, u, &update("D1", 6, &[5])).expect("apply"), Applied::Applied);
        let del = Update { deleted: true, keys: None, ..update("D0", 7, &[6]) };
        assert_eq!(apply_update(&c, u, &del).expect("apply"), Applied::Applied);
        assert_eq!(get(&c, u).expect("get").expect("cached").devices.len(), 1);
        // A gap: stale.
        assert_eq!(
            apply_update(&c, u, &update("D2", 9, &[8])).expect("apply"),
            Applied::NeedsResync
        );
        assert!(get(&c, u).expect("get").expect("cached").stale);
        drop_user(&c, u).expect("drop");
        assert!(get(&c, u).expect("get").is_none());
    }

    #[test]
    fn a_list_fetched_before_the_room_was_shared_again_is_stale() {
        let c = db();
        let u = "@bob:remote";
        replace(&c, u, &CachedList { stream_id: 5, ..Default::default() }).expect("replace");
        assert!(!get(&c, u).expect("get").expect("cached").stale);
        // Bob left and rejoined after the fetch: updates sent meanwhile never came.
        c.execute("UPDATE memberships SET stream_pos = 3 WHERE user_id = ?1", [u]).expect("rejoin");
        assert!(get(&c, u).expect("get").expect("cached").stale);
    }
}
