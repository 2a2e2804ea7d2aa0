//! The `pushers` table: where a user's notifications go (spec: "Push Notifications").

use rusqlite::{Connection, params};
use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Pusher {
    pub user_nid: i64,
    pub app_id: String,
    pub pushkey: String,
    pub kind: String,
    pub app_display_name: String,
    pub device_display_name: String,
    pub profile_tag: Option<String>,
    pub lang: String,
    /// The `data` object, `url` included.
    pub data: Value,
    pub pushkey_ts: i64,
    pub device_id: Option<String>,
}

const COLUMNS: &str = "user_nid, app_id, pushkey, kind, app_display_name, device_display_name, \
    profile_tag, lang, data, pushkey_ts, device_id";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Pusher, String)> {
    Ok((
        Pusher {
            user_nid: r.get(0)?,
            app_id: r.get(1)?,
            pushkey: r.get(2)?,
            kind: r.get(3)?,
            app_display_name: r.get(4)?,
            device_display_name: r.get(5)?,
            profile_tag: r.get(6)?,
            lang: r.get(7)?,
            data: Value::Null,
            pushkey_ts: r.get(9)?,
            device_id: r.get(10)?,
        },
        r.get(8)?,
    ))
}

/// The user's pushers, oldest first.
pub fn for_user(conn: &Connection, user_nid: i64) -> Result<Vec<Pusher>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM pushers WHERE user_nid = ?1 ORDER BY pushkey_ts, app_id, pushkey"
    ))?;
    let rows = st.query_map([user_nid], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(mut p, data)| {
            p.data = serde_json::from_str(&data).map_err(Error::internal)?;
            Ok(p)
        })
        .collect()
}

/// Add or replace (same user, app and key) a pusher.
pub fn upsert(conn: &Connection, p: &Pusher) -> Result<()> {
    let data = serde_json::to_string(&p.data).map_err(Error::internal)?;
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO pushers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))?
    .execute(params![
        p.user_nid,
        p.app_id,
        p.pushkey,
        p.kind,
        p.app_display_name,
        p.device_display_name,
        p.profile_tag,
        p.lang,
        data,
        p.pushkey_ts,
        p.device_id
    ])?;
    Ok(())
}

/// Remove the user's pusher for an app and key.
pub fn delete(conn: &Connection, user_nid: i64, app_id: &str, pushkey: &str) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM pushers WHERE user_nid = ?1 AND app_id = ?2 AND pushkey = ?3",
    )?
    .execute(params![user_nid, app_id, pushkey])?;
    Ok(())
}

/// Remove other users' pushers for an app and key (a key moved to another account).
pub fn delete_for_others(
    conn: &Connection,
    user_nid: i64,
    app_id: &str,
    pushkey: &str,
) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM pushers WHERE app_id = ?2 AND pushkey = ?3 AND user_nid != ?1",
    )?
    .execute(params![user_nid, app_id, pushkey])?;
    Ok(())
}
