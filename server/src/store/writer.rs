//! The one writer: a thread owning the write connection. Jobs queue on a channel; the
//! thread takes every job waiting, runs each in its own savepoint inside one transaction,
//! commits once, and only then answers the callers. Many concurrent requests therefore
//! share one fsync (group commit), and nothing is acknowledged before it is durable.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Upper bound on jobs per transaction, so one batch cannot hold the lock for long.
const MAX_BATCH: usize = 256;

/// Runs a job on the connection and returns what to do once the commit outcome is known.
type Job = Box<dyn FnOnce(&Connection) -> Completion + Send>;
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;

#[derive(Clone)]
pub struct Writer {
    tx: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Writer {
    pub fn start(mut conn: Connection) -> Result<Writer> {
        let checkpointer = super::checkpoint::start(&mut conn)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("glia-db-writer".into())
            .spawn(move || {
                writer_loop(&conn, rx);
                // Dropping the connection drops its WAL hook, which ends the checkpointer.
                drop(conn);
                if let Some(c) = checkpointer {
                    let _ = c.join();
                }
            })
            .map_err(Error::internal)?;
        Ok(Writer {
            tx: Arc::new(Mutex::new(Some(tx))),
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(f, |_| ())?.await
    }

    /// Queue `f` now and return a future that resolves once its batch has committed.
    /// Jobs run in the order they were queued, so a caller can queue several dependent
    /// jobs (one room's events) without waiting for each commit. `after` runs on the
    /// writer thread with the final outcome (commit included), before the next batch.
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
        let (done_tx, done_rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn: &Connection| {
            let out = run_in_savepoint(conn, f);
            Box::new(move |commit: Result<(), String>| {
                let res = match commit {
                    Ok(()) => out,
                    Err(e) => Err(Error::internal(format!("commit failed: {e}"))),
                };
                after(&res);
                let _ = done_tx.send(res);
            }) as Completion
        });
        {
            let guard = self.tx.lock().map_err(|_| Error::internal("writer poisoned"))?;
            let tx = guard.as_ref().ok_or_else(|| Error::internal("database is shut down"))?;
            tx.send(job).map_err(|_| Error::internal("database writer stopped"))?;
        }
        Ok(
            async move { done_rx.await.map_err(|_| Error::internal("database writer dropped a job"))? },
        )
    }

    /// Close the queue and wait for the thread to commit what is left.
    pub fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// A failing job rolls back only its own savepoint; the rest of the batch still commits.
/// The statements are cached: parsing them again for every job showed in profiles.
fn run_in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    let out = f(conn);
    if out.is_err() {
        conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
    }
    conn.prepare_cached("RELEASE job")?.execute([])?;
    out
}

fn writer_loop(conn: &Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.prepare_cached("BEGIN IMMEDIATE").and_then(|mut s| s.execute([])) {
            // Dropping the jobs unanswered makes every caller see an error.
            tracing::error!(error = %e, "database writer cannot begin a transaction");
            continue;
        }
        crate::metrics::WRITER_BATCHES.observe(batch.len() as f64);
        let mut pending = Vec::with_capacity(batch.len());
        for job in batch {
            pending.push(job(conn));
        }
        let outcome = conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "database commit failed");
            let _ = conn.execute_batch("ROLLBACK");
        }
        tracing::trace!(jobs = pending.len(), "committed batch");
        for done in pending {
            done(outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer_on(path: &std::path::Path) -> Writer {
        let c = Connection::open(path).expect("open");
        c.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);",
        )
        .expect("schema");
        Writer::start(c).expect("writer")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_does_not_poison_its_batch() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("w.db");
        let w = writer_on(&path);
        let mut tasks = vec![];
        for k in 0..200i64 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                w.run(move |c| {
                    c.execute("INSERT INTO t (k, v) VALUES (?1, 'x')", [k])?;
                    if k % 7 == 0 {
                        // Violates NOT NULL: this job fails, and its insert above is undone.
                        c.execute("INSERT INTO t (k, v) VALUES (?1, NULL)", [k + 1000])?;
                    }
                    Ok(k)
                })
                .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.expect("join") {
                Ok(_) => ok += 1,
                Err(e) => assert!(e.to_string().contains("NOT NULL"), "{e}"),
            }
        }
        w.close();
        let c = Connection::open(&path).expect("reopen");
        let n: i64 = c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).expect("count");
        assert_eq!(n, ok);
        assert_eq!(ok, 200 - (0..200).filter(|k| k % 7 == 0).count() as i64);
        let bad: i64 =
            c.query_row("SELECT COUNT(*) FROM t WHERE k % 7 = 0", [], |r| r.get(0)).expect("count");
        assert_eq!(bad, 0, "failed jobs left nothing behind");
    }

    #[tokio::test]
    async fn close_commits_what_was_queued_and_refuses_more() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("w.db");
        let w = writer_on(&path);
        w.run(|c| Ok(c.execute("INSERT INTO t (k, v) VALUES (1, 'a')", [])?)).await.expect("write");
        w.close();
        assert!(w.run(|_| Ok(())).await.is_err(), "a closed writer refuses jobs");
        let c = Connection::open(&path).expect("reopen");
        let v: String = c.query_row("SELECT v FROM t WHERE k = 1", [], |r| r.get(0)).expect("row");
        assert_eq!(v, "a");
    }
}
