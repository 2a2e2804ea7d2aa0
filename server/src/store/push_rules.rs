//! The `push_rules` table: a user's whole ruleset as JSON; no row means the defaults.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

pub fn get(conn: &Connection, user_nid: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT ruleset FROM push_rules WHERE user_nid = ?1")?
        .query_row([user_nid], |r| r.get(0))
        .optional()?)
}

pub fn put(conn: &Connection, user_nid: i64, ruleset: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO push_rules (user_nid, ruleset) VALUES (?1, ?2)
         ON CONFLICT (user_nid) DO UPDATE SET ruleset = excluded.ruleset",
    )?
    .execute(params![user_nid, ruleset])?;
    Ok(())
}
