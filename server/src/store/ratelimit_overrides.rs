//! The `ratelimit_overrides` table: per-user message rate limits set by an admin
//! (`/_synapse/admin/v1/users/{userId}/override_ratelimit`). The rate limiter asks
//! [`for_user`] before applying `rc_message`; `0` / `0` means "never limited".

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Override {
    pub messages_per_second: i64,
    pub burst_count: i64,
}

impl Override {
    /// Synapse treats 0 messages per second as "no limit at all".
    pub fn is_unlimited(&self) -> bool {
        self.messages_per_second == 0
    }
}

pub fn get(conn: &Connection, user_nid: i64) -> Result<Option<Override>> {
    Ok(conn
        .prepare_cached(
            "SELECT messages_per_second, burst_count FROM ratelimit_overrides WHERE user_nid = ?1",
        )?
        .query_row([user_nid], |r| {
            Ok(Override { messages_per_second: r.get(0)?, burst_count: r.get(1)? })
        })
        .optional()?)
}

/// The override for a user by ID, for the rate limiter (which keys on user IDs).
pub fn for_user(conn: &Connection, user_id: &str) -> Result<Option<Override>> {
    Ok(conn
        .prepare_cached(
            "SELECT o.messages_per_second, o.burst_count FROM ratelimit_overrides o
             JOIN users u ON u.nid = o.user_nid WHERE u.user_id = ?1",
        )?
        .query_row([user_id], |r| {
            Ok(Override { messages_per_second: r.get(0)?, burst_count: r.get(1)? })
        })
        .optional()?)
}

pub fn set(conn: &Connection, user_nid: i64, o: Override) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO ratelimit_overrides (user_nid, messages_per_second, burst_count)
         VALUES (?1, ?2, ?3)
         ON CONFLICT (user_nid) DO UPDATE SET messages_per_second = excluded.messages_per_second,
           burst_count = excluded.burst_count",
    )?
    .execute(params![user_nid, o.messages_per_second, o.burst_count])?;
    Ok(())
}

pub fn delete(conn: &Connection, user_nid: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM ratelimit_overrides WHERE user_nid = ?1")?
        .execute([user_nid])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replace_read_delete() {
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::migrations::apply(&mut c).expect("migrate");
        c.execute("INSERT INTO users (nid, user_id, created_ts) VALUES (7, '@a:x', 0)", [])
            .expect("user");
        assert_eq!(for_user(&c, "@a:x").expect("none"), None);
        set(&c, 7, Override { messages_per_second: 0, burst_count: 0 }).expect("set");
        assert!(for_user(&c, "@a:x").expect("read").expect("some").is_unlimited());
        let o = Override { messages_per_second: 5, burst_count: 20 };
        set(&c, 7, o).expect("replace");
        assert_eq!(get(&c, 7).expect("get"), Some(o));
        assert_eq!(for_user(&c, "@a:x").expect("by id"), Some(o));
        delete(&c, 7).expect("delete");
        assert_eq!(get(&c, 7).expect("gone"), None);
    }
}
