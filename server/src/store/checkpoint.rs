//! WAL checkpoints off the commit path. SQLite's automatic checkpoint runs inside the
//! commit that crosses its threshold, so that commit (and every caller waiting on it)
//! also paid for copying the WAL into the database and two more fsyncs. Instead the
//! writer's WAL hook signals a thread with its own connection, which runs a passive
//! checkpoint while the writer goes on committing. The WAL is bounded as before: the
//! checkpoint starts at the same size, and the writer restarts the WAL from its beginning
//! once a checkpoint has copied everything.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// WAL frames (pages) that trigger a checkpoint: SQLite's own default threshold.
pub const FRAMES: i32 = 1000;

/// Hook `writer` (in WAL mode, on a file) up to a checkpointer thread; returns the thread,
/// which ends once `writer` is dropped. Without a file, the automatic checkpoint stays.
pub fn start(writer: &mut Connection) -> Result<Option<JoinHandle<()>>> {
    let Some(path) = writer.path().filter(|p| !p.is_empty()).map(str::to_string) else {
        return Ok(None);
    };
    let conn = Connection::open(&path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    let thread = std::thread::Builder::new()
        .name("glia-db-ckpt".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                // PASSIVE: never waits for the writer or readers; what it cannot copy now
                // the next signal copies.
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        })
        .map_err(Error::internal)?;
    // Replaces SQLite's automatic checkpoint (itself a WAL hook).
    writer.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames: i32| {
        if frames >= FRAMES {
            // Full: a checkpoint is already due.
            let _ = tx.try_send(());
        }
        Ok(())
    }))?;
    Ok(Some(thread))
}
