//! Push rules are stored as the user's global `m.push_rules` account data, as the spec
//! presents them to clients in `/sync`; no row means the spec's defaults.

use rusqlite::Connection;

use super::account_data;
use crate::error::Result;

pub const TYPE: &str = "m.push_rules";

pub fn get(conn: &Connection, user_nid: i64) -> Result<Option<String>> {
    account_data::get(conn, user_nid, "", TYPE)
}

pub fn put(conn: &Connection, user_nid: i64, ruleset: &str) -> Result<()> {
    account_data::put(conn, user_nid, "", TYPE, ruleset).map(|_| ())
}
