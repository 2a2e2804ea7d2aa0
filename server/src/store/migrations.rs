//! Numbered schema migrations, compiled into the binary and applied at start-up, each in a
//! transaction of its own. `PRAGMA user_version` records how many have been applied.

use rusqlite::Connection;

use crate::error::{Error, Result};

const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_accounts", include_str!("../../migrations/0001_accounts.sql")),
    ("0002_rooms", include_str!("../../migrations/0002_rooms.sql")),
    ("0003_e2ee", include_str!("../../migrations/0003_e2ee.sql")),
    ("0004_receipts_presence", include_str!("../../migrations/0004_receipts_presence.sql")),
    ("0005_push_actions", include_str!("../../migrations/0005_push_actions.sql")),
    ("0006_txn_scope", include_str!("../../migrations/0006_txn_scope.sql")),
    ("0007_media", include_str!("../../migrations/0007_media.sql")),
    ("0008_admin", include_str!("../../migrations/0008_admin.sql")),
    ("0009_server_keys", include_str!("../../migrations/0009_server_keys.sql")),
    ("0010_push", include_str!("../../migrations/0010_push.sql")),
    ("0011_appservice", include_str!("../../migrations/0011_appservice.sql")),
    ("0012_federation", include_str!("../../migrations/0012_federation.sql")),
    ("0013_federation_queries", include_str!("../../migrations/0013_federation_queries.sql")),
    ("0014_redaction_targets", include_str!("../../migrations/0014_redaction_targets.sql")),
    ("0015_remote_device_lists", include_str!("../../migrations/0015_remote_device_lists.sql")),
    ("0016_device_list_outbound", include_str!("../../migrations/0016_device_list_outbound.sql")),
    (
        "0017_remote_device_lists_shared_pos",
        include_str!("../../migrations/0017_remote_device_lists_shared_pos.sql"),
    ),
    ("0018_auth_order", include_str!("../../migrations/0018_auth_order.sql")),
    ("0019_push_actions_rare", include_str!("../../migrations/0019_push_actions_rare.sql")),
];

pub fn apply(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current as usize > MIGRATIONS.len() {
        return Err(Error::internal(format!(
            "the database is at schema version {current}, newer than this Glia knows ({}); \
             run a newer Glia or restore a backup",
            MIGRATIONS.len()
        )));
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let txn = conn.transaction()?;
        txn.execute_batch(sql)
            .map_err(|e| Error::internal(format!("migration {name} failed: {e}")))?;
        txn.pragma_update(None, "user_version", (i + 1) as i64)?;
        txn.commit()?;
        tracing::info!(migration = name, "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_are_idempotent() {
        let mut c = Connection::open_in_memory().expect("open");
        apply(&mut c).expect("first");
        apply(&mut c).expect("second is a no-op");
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
        assert_eq!(v as usize, MIGRATIONS.len());
    }
}
