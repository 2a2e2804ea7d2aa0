//! The `users` table: accounts and their profiles.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub nid: i64,
    pub user_id: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub is_guest: bool,
    pub deactivated: bool,
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
}

const COLUMNS: &str =
    "nid, user_id, password_hash, is_admin, is_guest, deactivated, displayname, avatar_url";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        nid: r.get(0)?,
        user_id: r.get(1)?,
        password_hash: r.get(2)?,
        is_admin: r.get(3)?,
        is_guest: r.get(4)?,
        deactivated: r.get(5)?,
        displayname: r.get(6)?,
        avatar_url: r.get(7)?,
    })
}

pub fn get(conn: &Connection, user_id: &str) -> Result<Option<UserRow>> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE user_id = ?1"))?;
    Ok(st.query_row([user_id], row).optional()?)
}

pub fn exists(conn: &Connection, user_id: &str) -> Result<bool> {
    let mut st = conn.prepare_cached("SELECT 1 FROM users WHERE user_id = ?1")?;
    Ok(st.exists([user_id])?)
}

pub struct NewUser<'a> {
    pub user_id: &'a str,
    pub password_hash: Option<&'a str>,
    pub is_admin: bool,
    pub is_guest: bool,
    pub displayname: Option<&'a str>,
}

/// Insert a user; `M_USER_IN_USE` if the ID is taken (checked inside the writer, so two
/// racing registrations of one name cannot both succeed).
pub fn insert(conn: &Connection, u: &NewUser<'_>, now: i64) -> Result<i64> {
    if exists(conn, u.user_id)? {
        return Err(Error::UserInUse("User ID already taken.".into()));
    }
    let mut st = conn.prepare_cached(
        "INSERT INTO users (user_id, password_hash, is_admin, is_guest, displayname, created_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    st.execute(params![u.user_id, u.password_hash, u.is_admin, u.is_guest, u.displayname, now])?;
    Ok(conn.last_insert_rowid())
}

pub fn set_password_hash(conn: &Connection, user_nid: i64, hash: Option<&str>) -> Result<()> {
    conn.prepare_cached("UPDATE users SET password_hash = ?2 WHERE nid = ?1")?
        .execute(params![user_nid, hash])?;
    Ok(())
}

pub fn set_displayname(conn: &Connection, user_nid: i64, name: Option<&str>) -> Result<()> {
    conn.prepare_cached("UPDATE users SET displayname = ?2 WHERE nid = ?1")?
        .execute(params![user_nid, name])?;
    Ok(())
}

pub fn set_avatar_url(conn: &Connection, user_nid: i64, url: Option<&str>) -> Result<()> {
    conn.prepare_cached("UPDATE users SET avatar_url = ?2 WHERE nid = ?1")?
        .execute(params![user_nid, url])?;
    Ok(())
}

/// Deactivation keeps the row (the ID may never be reused) but removes everything that
/// lets the account act or be found: password, profile, devices and their tokens.
pub fn deactivate(conn: &Connection, user_nid: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE users SET deactivated = 1, password_hash = NULL, displayname = NULL,
         avatar_url = NULL WHERE nid = ?1",
    )?
    .execute([user_nid])?;
    let n = conn.prepare_cached("DELETE FROM devices WHERE user_nid = ?1")?.execute([user_nid])?;
    if n > 0 {
        super::device_lists::changed(conn, user_nid)?;
    }
    // Server-side key backups go too, as in Synapse.
    super::key_backup::delete_all(conn, user_nid)?;
    Ok(())
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}
