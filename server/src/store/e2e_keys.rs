//! Device identity keys, one-time and fallback keys, cross-signing keys and the signatures
//! uploaded for them (tables `e2e_*`). Key material is stored as the JSON text clients sent
//! (serialised by serde_json: keys sorted, compact), so equal keys compare equal as text.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// A local user's nid, if the user exists.
pub fn user_nid(conn: &Connection, user_id: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT nid FROM users WHERE user_id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .optional()?)
}

/// A device's nid from its owner and ID.
pub fn device_nid(conn: &Connection, user_nid: i64, device_id: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT nid FROM devices WHERE user_nid = ?1 AND device_id = ?2")?
        .query_row(params![user_nid, device_id], |r| r.get(0))
        .optional()?)
}

/// Store a device's identity keys. Returns whether they differ from what was stored (only
/// then is it a device-list change). New keys drop the signatures made of the old ones.
pub fn set_device_keys(
    conn: &Connection,
    device_nid: i64,
    key_json: &str,
    now: i64,
) -> Result<bool> {
    let old: Option<String> = conn
        .prepare_cached("SELECT key_json FROM e2e_device_keys WHERE device_nid = ?1")?
        .query_row([device_nid], |r| r.get(0))
        .optional()?;
    if old.as_deref() == Some(key_json) {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO e2e_device_keys (device_nid, key_json, added_ts) VALUES (?1, ?2, ?3)
         ON CONFLICT (device_nid) DO UPDATE SET key_json = excluded.key_json,
           added_ts = excluded.added_ts",
    )?
    .execute(params![device_nid, key_json, now])?;
    conn.prepare_cached("DELETE FROM e2e_device_signatures WHERE device_nid = ?1")?
        .execute([device_nid])?;
    Ok(true)
}

/// A stored one-time key (`key_json`), to tell a retried upload from a conflicting one.
pub fn one_time_key(
    conn: &Connection,
    device_nid: i64,
    algorithm: &str,
    key_id: &str,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT key_json FROM e2e_one_time_keys
             WHERE device_nid = ?1 AND algorithm = ?2 AND key_id = ?3",
        )?
        .query_row(params![device_nid, algorithm, key_id], |r| r.get(0))
        .optional()?)
}

pub fn add_one_time_key(
    conn: &Connection,
    device_nid: i64,
    algorithm: &str,
    key_id: &str,
    key_json: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO e2e_one_time_keys (device_nid, algorithm, key_id, key_json)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![device_nid, algorithm, key_id, key_json])?;
    Ok(())
}

/// Unclaimed one-time keys per algorithm. `signed_curve25519` is always listed (0 when
/// there are none), as Synapse does, so clients see the count drop to zero.
pub fn one_time_key_counts(conn: &Connection, device_nid: i64) -> Result<BTreeMap<String, i64>> {
    let mut counts = BTreeMap::from([("signed_curve25519".to_string(), 0)]);
    let mut st = conn.prepare_cached(
        "SELECT algorithm, COUNT(*) FROM e2e_one_time_keys WHERE device_nid = ?1
         GROUP BY algorithm",
    )?;
    let rows = st.query_map([device_nid], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (alg, n) = row?;
        counts.insert(alg, n);
    }
    Ok(counts)
}

/// Set the fallback key for an algorithm. Uploading the key already stored changes nothing
/// (in particular it stays "used" if it was); a different key replaces it, unused.
pub fn set_fallback_key(
    conn: &Connection,
    device_nid: i64,
    algorithm: &str,
    key_id: &str,
    key_json: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO e2e_fallback_keys (device_nid, algorithm, key_id, key_json, used)
         VALUES (?1, ?2, ?3, ?4, 0)
         ON CONFLICT (device_nid, algorithm) DO UPDATE SET key_id = excluded.key_id,
           key_json = excluded.key_json, used = 0
         WHERE key_id != excluded.key_id OR key_json != excluded.key_json",
    )?
    .execute(params![device_nid, algorithm, key_id, key_json])?;
    Ok(())
}

/// Algorithms with a fallback key that has not been handed out yet.
pub fn unused_fallback_key_types(conn: &Connection, device_nid: i64) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT algorithm FROM e2e_fallback_keys WHERE device_nid = ?1 AND used = 0
         ORDER BY algorithm",
    )?;
    let rows = st.query_map([device_nid], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Claim one key of `algorithm` for a device: the oldest one-time key, which is deleted,
/// else the fallback key, which is kept and marked used. Returns (`algorithm:key_id`, JSON).
pub fn claim(
    conn: &Connection,
    device_nid: i64,
    algorithm: &str,
) -> Result<Option<(String, String)>> {
    let otk: Option<(i64, String, String)> = conn
        .prepare_cached(
            "SELECT nid, key_id, key_json FROM e2e_one_time_keys
             WHERE device_nid = ?1 AND algorithm = ?2 ORDER BY nid LIMIT 1",
        )?
        .query_row(params![device_nid, algorithm], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((nid, key_id, json)) = otk {
        conn.prepare_cached("DELETE FROM e2e_one_time_keys WHERE nid = ?1")?.execute([nid])?;
        return Ok(Some((format!("{algorithm}:{key_id}"), json)));
    }
    let fallback: Option<(String, String)> = conn
        .prepare_cached(
            "UPDATE e2e_fallback_keys SET used = 1 WHERE device_nid = ?1 AND algorithm = ?2
             RETURNING key_id, key_json",
        )?
        .query_row(params![device_nid, algorithm], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(fallback.map(|(key_id, json)| (format!("{algorithm}:{key_id}"), json)))
}

/// A device with identity keys, for `/keys/query`.
#[derive(Debug, Clone)]
pub struct DeviceKeysRow {
    pub device_nid: i64,
    pub device_id: String,
    pub display_name: Option<String>,
    pub key_json: String,
}

/// The devices of a user that have uploaded identity keys; `only` limits them to the
/// listed device IDs.
pub fn devices_with_keys(
    conn: &Connection,
    user_nid: i64,
    only: Option<&[String]>,
) -> Result<Vec<DeviceKeysRow>> {
    let mut st = conn.prepare_cached(
        "SELECT d.nid, d.device_id, d.display_name, k.key_json
         FROM devices d JOIN e2e_device_keys k ON k.device_nid = d.nid
         WHERE d.user_nid = ?1 ORDER BY d.device_id",
    )?;
    let rows = st.query_map([user_nid], |r| {
        Ok(DeviceKeysRow {
            device_nid: r.get(0)?,
            device_id: r.get(1)?,
            display_name: r.get(2)?,
            key_json: r.get(3)?,
        })
    })?;
    let mut out = vec![];
    for row in rows {
        let row = row?;
        if only.is_none_or(|ids| ids.contains(&row.device_id)) {
            out.push(row);
        }
    }
    Ok(out)
}

/// Signatures of a device's keys by its owner's self-signing key: (key ID, signature).
pub fn device_signatures(conn: &Connection, device_nid: i64) -> Result<Vec<(String, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT signer_key_id, signature FROM e2e_device_signatures WHERE device_nid = ?1
         ORDER BY signer_key_id",
    )?;
    let rows = st.query_map([device_nid], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn add_device_signature(
    conn: &Connection,
    device_nid: i64,
    signer_key_id: &str,
    signature: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO e2e_device_signatures (device_nid, signer_key_id, signature)
         VALUES (?1, ?2, ?3)",
    )?
    .execute(params![device_nid, signer_key_id, signature])?;
    Ok(())
}

/// A stored cross-signing key: its public key and JSON.
#[derive(Debug, Clone)]
pub struct CrossSigningKey {
    pub public_key: String,
    pub key_json: String,
}

pub fn cross_signing_key(
    conn: &Connection,
    user_nid: i64,
    key_type: &str,
) -> Result<Option<CrossSigningKey>> {
    Ok(conn
        .prepare_cached(
            "SELECT public_key, key_json FROM e2e_cross_signing_keys
             WHERE user_nid = ?1 AND key_type = ?2",
        )?
        .query_row(params![user_nid, key_type], |r| {
            Ok(CrossSigningKey { public_key: r.get(0)?, key_json: r.get(1)? })
        })
        .optional()?)
}

pub fn set_cross_signing_key(
    conn: &Connection,
    user_nid: i64,
    key_type: &str,
    public_key: &str,
    key_json: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO e2e_cross_signing_keys (user_nid, key_type, public_key, key_json)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_nid, key_type) DO UPDATE SET public_key = excluded.public_key,
           key_json = excluded.key_json",
    )?
    .execute(params![user_nid, key_type, public_key, key_json])?;
    Ok(())
}

/// Signatures `signer` made of a user's cross-signing key: (key ID, signature).
pub fn key_signatures(
    conn: &Connection,
    target_user_nid: i64,
    target_key: &str,
    signer: &str,
) -> Result<Vec<(String, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT signer_key_id, signature FROM e2e_key_signatures
         WHERE target_user_nid = ?1 AND target_key = ?2 AND signer_user_id = ?3
         ORDER BY signer_key_id",
    )?;
    let rows =
        st.query_map(params![target_user_nid, target_key, signer], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn add_key_signature(
    conn: &Connection,
    target_user_nid: i64,
    target_key: &str,
    signer: &str,
    signer_key_id: &str,
    signature: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO e2e_key_signatures
           (target_user_nid, target_key, signer_user_id, signer_key_id, signature)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![target_user_nid, target_key, signer, signer_key_id, signature])?;
    Ok(())
}

/// Whether one of the user's devices has this ID (a cross-signing public key must not
/// collide with one: the spec's 403 "Key ID in use").
pub fn is_device_id(conn: &Connection, user_nid: i64, device_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM devices WHERE user_nid = ?1 AND device_id = ?2")?
        .exists(params![user_nid, device_id])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (Connection, i64) {
        let mut c = Connection::open_in_memory().expect("open");
        crate::store::migrations::apply(&mut c).expect("migrate");
        c.pragma_update(None, "foreign_keys", "ON").expect("fk");
        c.execute("INSERT INTO users (nid, user_id, created_ts) VALUES (1, '@a:hs', 0)", [])
            .expect("user");
        c.execute(
            "INSERT INTO devices (nid, user_nid, device_id, created_ts) VALUES (10, 1, 'DEV', 0)",
            [],
        )
        .expect("device");
        (c, 10)
    }

    #[test]
    fn claims_take_the_oldest_one_time_key_then_the_fallback_key() {
        let (c, dev) = db();
        add_one_time_key(&c, dev, "signed_curve25519", "ZZZ", "\"first\"").expect("add");
        add_one_time_key(&c, dev, "signed_curve25519", "AAA", "\"second\"").expect("add");
        add_one_time_key(&c, dev, "curve25519", "X", "\"other alg\"").expect("add");
        set_fallback_key(&c, dev, "signed_curve25519", "FB", "\"fallback\"").expect("fb");
        assert_eq!(one_time_key_counts(&c, dev).expect("n").get("signed_curve25519"), Some(&2));
        assert_eq!(unused_fallback_key_types(&c, dev).expect("fb"), ["signed_curve25519"]);
        let take = || claim(&c, dev, "signed_curve25519").expect("claim");
        assert_eq!(take(), Some(("signed_curve25519:ZZZ".into(), "\"first\"".into())));
        assert_eq!(take(), Some(("signed_curve25519:AAA".into(), "\"second\"".into())));
        assert_eq!(take(), Some(("signed_curve25519:FB".into(), "\"fallback\"".into())));
        assert_eq!(take(), Some(("signed_curve25519:FB".into(), "\"fallback\"".into())));
        assert!(unused_fallback_key_types(&c, dev).expect("fb").is_empty(), "used");
        assert_eq!(one_time_key_counts(&c, dev).expect("n").get("signed_curve25519"), Some(&0));
        assert_eq!(claim(&c, dev, "nope").expect("claim"), None);
        // The same fallback key again stays used; a new one is unused.
        set_fallback_key(&c, dev, "signed_curve25519", "FB", "\"fallback\"").expect("fb");
        assert!(unused_fallback_key_types(&c, dev).expect("fb").is_empty());
        set_fallback_key(&c, dev, "signed_curve25519", "FB2", "\"new\"").expect("fb");
        assert_eq!(unused_fallback_key_types(&c, dev).expect("fb"), ["signed_curve25519"]);
    }

    #[test]
    fn deleting_a_device_deletes_its_keys() {
        let (c, dev) = db();
        assert!(set_device_keys(&c, dev, "{\"k\":1}", 0).expect("set"), "new keys");
        assert!(!set_device_keys(&c, dev, "{\"k\":1}", 0).expect("set"), "same keys");
        add_device_signature(&c, dev, "ed25519:SSK", "sig").expect("sig");
        assert!(set_device_keys(&c, dev, "{\"k\":2}", 0).expect("set"), "changed keys");
        assert!(device_signatures(&c, dev).expect("sigs").is_empty(), "old signatures dropped");
        add_one_time_key(&c, dev, "signed_curve25519", "A", "\"k\"").expect("otk");
        set_fallback_key(&c, dev, "signed_curve25519", "F", "\"f\"").expect("fb");
        crate::store::devices::delete(&c, 1, "DEV").expect("delete");
        for table in ["e2e_device_keys", "e2e_one_time_keys", "e2e_fallback_keys"] {
            let n: i64 = c
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .expect("count");
            assert_eq!(n, 0, "{table}");
        }
        let changes: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM device_list_changes WHERE user_id = '@a:hs'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(changes, 1, "the deletion is a device-list change");
    }
}
