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
    pub fn start(conn: Connection) -> Result<Writer> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("glia-db-writer".into())
            .spawn(move || writer_loop(conn, rx))
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
        let (done_tx, done_rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn: &Connection| {
            let out = run_in_savepoint(conn, f);
            Box::new(move |commit: Result<(), String>| {
                let res = match commit {
                    Ok(()) => out,
                    Err(e) => Err(Error::internal(format!("commit failed: {e}"))),
                };
                let _ = done_tx.send(res);
            }) as Completion
        });
        {
            let guard = self
                .tx
                .lock()
                .map_err(|_| Error::internal("writer poisoned"))?;
            let tx = guard
                .as_ref()
                .ok_or_else(|| Error::internal("database is shut down"))?;
            tx.send(job)
                .map_err(|_| Error::internal("database writer stopped"))?;
        }
        done_rx
            .await
            .map_err(|_| Error::internal("database writer dropped a job"))?
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
fn run_in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.execute_batch("SAVEPOINT job")?;
    let out = f(conn);
    let end = if out.is_ok() {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    conn.execute_batch(end)?;
    out
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Dropping the jobs unanswered makes every caller see an error.
            tracing::error!(error = %e, "database writer cannot begin a transaction");
            continue;
        }
        let mut pending = Vec::with_capacity(batch.len());
        for job in batch {
            pending.push(job(&conn));
        }
        let outcome = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
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
