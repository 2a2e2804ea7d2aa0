//! SQLite used as a relational database: one writer thread that group-commits queued jobs,
//! and a small pool of read connections. Handlers never touch a connection directly; each
//! area has a module here with the queries it needs.

pub mod account_data;
pub mod appservice;
pub mod auth_order;
mod checkpoint;
pub mod device_lists;
pub mod devices;
pub mod e2e_keys;
pub mod events;
pub mod federation;
pub mod filters;
pub mod key_backup;
pub mod media;
pub mod media_admin;
pub mod migrations;
pub mod presence;
pub mod push_rules;
pub mod pushers;
pub mod ratelimit_overrides;
pub mod receipts;
pub mod registration_tokens;
pub mod remote_devices;
pub mod rooms;
pub mod server_notices;
pub mod state;
pub mod to_device;
pub mod users;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
pub use writer::Writer;

/// Most rows `read_keyed` looks up on the calling task.
const INLINE_KEYS: usize = 64;

#[derive(Clone)]
pub struct Db {
    writer: Writer,
    readers: Arc<ReaderPool>,
}

struct ReaderPool {
    conns: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

/// Connection settings shared by the writer and readers.
fn configure(conn: &Connection, synchronous_full: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", if synchronous_full { "FULL" } else { "NORMAL" })?;
    conn.set_prepared_statement_cache_capacity(128);
    // Without the query planner stability guarantee, SQLite marks a statement with
    // `column = ?` bound to an integer to be planned again when the value is rebound, and
    // rusqlite's statement cache clears the bindings of every statement it takes back,
    // which expires such a statement: each use of a cached statement parsed and planned
    // its SQL again (a fifth of the server's CPU in a send load). Glia never runs ANALYZE,
    // so the plans do not depend on values anyway (partial indexes are matched by
    // literals in their queries).
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // A WAL that grew past this (a large transaction) is cut back to it at its next
    // restart; below it the file is reused in place, whose fsync costs less than one
    // that must also journal a size change.
    conn.pragma_update_and_check(None, "journal_size_limit", 64 * 1024 * 1024, |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(())
}

impl ReaderPool {
    /// Run `f` on a pooled connection; the caller holds a permit, so one is free.
    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self
            .conns
            .lock()
            .map_err(|_| Error::internal("reader pool poisoned"))?
            .pop()
            .ok_or_else(|| Error::internal("reader pool empty"))?;
        let out = f(&conn);
        if let Ok(mut conns) = self.conns.lock() {
            conns.push(conn);
        }
        out
    }
}

impl Db {
    /// Open (creating if needed) the database, apply migrations and start the writer.
    pub fn open(path: &Path, synchronous_full: bool, readers: usize) -> Result<Db> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::internal(format!("SQLite refused WAL mode (got {mode})")));
        }
        configure(&conn, synchronous_full)?;
        // Each writer job runs in a savepoint, whose sub-journal (the pages it changed,
        // for a rollback of that job alone) went to a temporary file once past 64 KiB,
        // which most sends are: a pwrite per page. In memory it holds one job's pages.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        migrations::apply(&mut conn)?;

        let mut pool = Vec::with_capacity(readers);
        for _ in 0..readers.max(1) {
            let c = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            configure(&c, synchronous_full)?;
            pool.push(c);
        }
        let n = pool.len();
        Ok(Db {
            writer: Writer::start(conn)?,
            readers: Arc::new(ReaderPool { conns: Mutex::new(pool), permits: Semaphore::new(n) }),
        })
    }

    /// Run `f` on a read connection, off the async runtime.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.readers.clone();
        let _permit = pool.permits.acquire().await.map_err(Error::internal)?;
        let pool2 = pool.clone();
        tokio::task::spawn_blocking(move || pool2.with_conn(f)).await.map_err(Error::internal)?
    }

    /// Run `f`, a lookup of a few rows by index, on a read connection on the calling task.
    /// The hand-off to the blocking pool and back (two thread wake-ups) cost more than
    /// such a read; the send path makes several per message.
    pub async fn read_point<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T>,
    {
        let _permit = self.readers.permits.acquire().await.map_err(Error::internal)?;
        self.readers.with_conn(f)
    }

    /// `f` looks up `keys` rows by index: on the calling task when they are few
    /// (`read_point`), else on the blocking pool, so a large room cannot hold up the runtime.
    pub async fn read_keyed<T, F>(&self, keys: usize, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        if keys <= INLINE_KEYS { self.read_point(f).await } else { self.read(f).await }
    }

    /// Queue `f` for the writer; resolves once the batch holding it has committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.run(f).await
    }

    /// Queue `f` for the writer now; the returned future resolves once it has committed
    /// (see `Writer::submit`).
    pub fn submit<T, F, A>(
        &self,
        f: F,
        after: A,
    ) -> Result<impl std::future::Future<Output = Result<T>> + Send + 'static>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        A: FnOnce(&Result<T>) + Send + 'static,
        T: Send + 'static,
    {
        self.writer.submit(f, after)
    }

    /// Stop the writer after it has committed everything queued so far.
    pub fn close(&self) {
        self.writer.close();
    }

    pub async fn integrity_check(&self) -> Result<String> {
        self.read(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)).await
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_statements_are_not_prepared_again_for_each_use() {
        let conn = Connection::open_in_memory().expect("open");
        configure(&conn, true).expect("configure");
        conn.execute_batch(
            "CREATE TABLE t (k INTEGER PRIMARY KEY, g INTEGER NOT NULL, v TEXT);
             CREATE INDEX t_g ON t(g);
             INSERT INTO t VALUES (1, 0, 'a'), (2, 1, 'b'), (3, 7, 'c');",
        )
        .expect("schema");
        let sql = "SELECT v FROM t WHERE g = ?1 ORDER BY k";
        for g in [0i64, 7, 1, 7, 0] {
            let mut st = conn.prepare_cached(sql).expect("prepare");
            let _: Vec<String> = st
                .query_map([g], |r| r.get(0))
                .expect("query")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
        }
        let st = conn.prepare_cached(sql).expect("prepare");
        assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
