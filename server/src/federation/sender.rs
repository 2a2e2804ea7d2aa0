//! Outbound transactions: one sender per destination. PDUs and EDUs are queued in SQLite
//! (in the same transaction as the event they carry), sent in order in transactions of at
//! most 50 PDUs and 100 EDUs, and deleted only once the destination accepted them; a
//! destination that fails is retried with exponential backoff, and sooner when it talks
//! to us again, so a server that was down catches up on everything it missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::app::App;
use crate::error::{Error, Result};
use crate::store::{federation as outbox, now_ms};

pub const MAX_PDUS: usize = 50;
pub const MAX_EDUS: usize = 100;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How often queued items are looked for without a wake-up.
const SWEEP: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Sender {
    app: OnceLock<Weak<App>>,
    workers: Mutex<HashMap<String, Arc<Worker>>>,
    txn_counter: AtomicU64,
}

#[derive(Default)]
struct Worker {
    /// Something new was queued.
    queued: Notify,
    /// The destination talked to us: retry now instead of waiting out the backoff.
    alive: Notify,
}

impl Sender {
    /// Called once the `App` exists; starts senders for destinations with a backlog.
    pub async fn start(&self, app: &Arc<App>) -> Result<()> {
        let _ = self.app.set(Arc::downgrade(app));
        let pending = app.db.read(outbox::pending_destinations).await?;
        for d in pending {
            self.wake(&d);
        }
        // Some writers queue EDUs deep in the store (device list changes, presence): a
        // sweep wakes the senders of whatever is queued.
        let weak = Arc::downgrade(app);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP);
            loop {
                tick.tick().await;
                let Some(app) = weak.upgrade() else { return };
                if *app.shutdown.borrow() {
                    return;
                }
                if let Ok(pending) = app.db.read(outbox::pending_destinations).await {
                    for d in pending {
                        app.fed_sender.wake(&d);
                    }
                }
            }
        });
        Ok(())
    }

    fn worker(&self, destination: &str) -> Option<Arc<Worker>> {
        let app = self.app.get()?.upgrade()?;
        let mut map = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = map.get(destination) {
            return Some(w.clone());
        }
        let w = Arc::new(Worker::default());
        map.insert(destination.to_string(), w.clone());
        tokio::spawn(run(app, destination.to_string(), w.clone()));
        Some(w)
    }

    /// New items were queued for `destination`.
    pub fn wake(&self, destination: &str) {
        if let Some(w) = self.worker(destination) {
            w.queued.notify_one();
        }
    }

    /// `destination` sent us a request: if its sender is backing off, retry now.
    pub fn destination_alive(&self, destination: &str) {
        let map = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = map.get(destination) {
            w.alive.notify_one();
        }
    }

    fn next_txn_id(&self) -> String {
        let n = self.txn_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}.{n}", now_ms())
    }
}

/// Queue an EDU for destinations and wake their senders.
pub async fn send_edu(
    app: &App,
    destinations: Vec<String>,
    edu_type: &str,
    content: Value,
) -> Result<()> {
    if destinations.is_empty() {
        return Ok(());
    }
    let body = json!({"edu_type": edu_type, "content": content}).to_string();
    let d = destinations.clone();
    app.db.write(move |c| outbox::enqueue(c, &d, "edu", &body)).await?;
    for d in &destinations {
        app.fed_sender.wake(d);
    }
    Ok(())
}

async fn run(app: Arc<App>, destination: String, w: Arc<Worker>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *app.shutdown.borrow() {
            return;
        }
        let d = destination.clone();
        let batch = match app.db.read(move |c| outbox::next_batch(c, &d, MAX_PDUS, MAX_EDUS)).await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%destination, "reading the federation queue: {e}");
                vec![]
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = w.queued.notified() => {}
                _ = app.shutting_down() => return,
            }
            continue;
        }
        match send_batch(&app, &destination, &batch).await {
            Ok(()) => {
                backoff = FIRST_BACKOFF;
                let ids: Vec<i64> = batch.iter().map(|q| q.id).collect();
                if let Err(e) = app.db.write(move |c| outbox::delete(c, &ids)).await {
                    tracing::warn!(%destination, "dequeueing: {e}");
                }
            }
            Err(e) => {
                tracing::info!(%destination, retry_in = ?backoff, "transaction failed: {e}");
                // Wait out the backoff, unless the destination shows it is back.
                tokio::select! {
                    _ = tokio::time::timeout(backoff, w.alive.notified()) => {}
                    _ = app.shutting_down() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The body of `PUT /send/{txnId}`.
pub fn transaction(origin: &str, ts: i64, pdus: Vec<Value>, edus: Vec<Value>) -> Value {
    json!({"origin": origin, "origin_server_ts": ts, "pdus": pdus, "edus": edus})
}

async fn send_batch(app: &App, destination: &str, batch: &[outbox::Queued]) -> Result<()> {
    let mut pdus = vec![];
    let mut edus = vec![];
    for q in batch {
        let v: Value = serde_json::from_str(&q.body).map_err(Error::internal)?;
        if q.kind == "pdu" { pdus.push(v) } else { edus.push(v) }
    }
    let txn_id = app.fed_sender.next_txn_id();
    let body = transaction(app.config.server_name.as_str(), now_ms(), pdus, edus);
    let path = format!("/_matrix/federation/v1/send/{txn_id}");
    let (status, resp) = app.fed_request(destination, Method::PUT, &path, Some(&body)).await?;
    if !status.is_success() {
        return Err(Error::Unknown(format!("{destination} answered {status}: {resp}")));
    }
    if let Some(results) = resp["pdus"].as_object() {
        for (id, r) in results {
            if let Some(err) = r.get("error") {
                tracing::info!(%destination, event_id = %id, "destination refused a PDU: {err}");
            }
        }
    }
    Ok(())
}
