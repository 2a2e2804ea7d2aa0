//! SQLite used as a relational database: one writer thread that group-commits queued jobs,
//! and a small pool of read connections. Handlers never touch a connection directly; each
//! area has a module here with the queries it needs.

pub mod account_data;
pub mod appservice;
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
    // Without the query planner stability guarantee, SQLite marks a statement for
    // re-preparation when a bound value could change its plan (in the bundled 3.54, any
    // `column = ?` term or `LIMIT ?`), and rusqlite clears the bindings of every statement it returns
    // to the cache, which expires such statements: nearly every cached statement was
    // compiled again on each use (a fifth of an initial /sync). Plans never depended on
    // bound values here (partial indexes are matched by literals).
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
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
        tokio::task::spawn_blocking(move || {
            let conn = pool2
                .conns
                .lock()
                .map_err(|_| Error::internal("reader pool poisoned"))?
                .pop()
                .ok_or_else(|| Error::internal("reader pool empty"))?;
            let out = f(&conn);
            if let Ok(mut conns) = pool2.conns.lock() {
                conns.push(conn);
            }
            out
        })
        .await
        .map_err(Error::internal)?
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
