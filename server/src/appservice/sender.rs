//! One task per appservice delivering its queue: each transaction is
//! `PUT {url}/_matrix/app/v1/transactions/{txnId}` with the hs_token, retried with
//! exponential backoff until the appservice answers 2xx with JSON. The queue and the
//! transaction in flight are in SQLite (`store::appservice`), so a restart resumes where
//! delivery stopped and a retry resends exactly what the first attempt carried.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::AppService;
use super::http::segment;
use crate::app::App;
use crate::error::Result;
use crate::rooms::format;
use crate::store::appservice::{self as queue, Item};
use crate::store::events;

/// The most items one transaction carries.
const BATCH: usize = 100;
/// First retry delay; it doubles per failure up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long one transaction may take.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// Start a sender for every appservice with a URL.
pub fn spawn_all(app: &Arc<App>, tasks: &mut JoinSet<()>) {
    for a in &app.appservices.list {
        if a.reg.url.is_some() {
            tasks.spawn(run(app.clone(), a.clone()));
        }
    }
}

async fn run(app: Arc<App>, a: Arc<AppService>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let outcome = tokio::select! {
            r = step(&app, &a) => r,
            _ = app.shutting_down() => return,
        };
        let wait = match outcome {
            Ok(true) => {
                backoff = FIRST_BACKOFF;
                continue;
            }
            Ok(false) => None,
            Err(e) => {
                tracing::warn!(appservice = %a.reg.id, retry_in = ?backoff, "transaction not delivered: {e}");
                let d = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                Some(d)
            }
        };
        tokio::select! {
            _ = async {
                match wait {
                    Some(d) => tokio::time::sleep(d).await,
                    None => a.wake.notified().await,
                }
            } => {}
            _ = app.shutting_down() => return,
        }
    }
}

/// Deliver the next transaction: Ok(true) if one was delivered, Ok(false) if nothing is
/// owed, Err if the appservice did not take it.
async fn step(app: &App, a: &AppService) -> Result<bool, String> {
    let id = a.reg.id.clone();
    let next = app.db.write(move |c| queue::next_txn(c, &id, BATCH)).await;
    let Some((txn_id, items)) = next.map_err(|e| e.to_string())? else { return Ok(false) };
    let body = app.db.read(move |c| body(c, &items)).await.map_err(|e| e.to_string())?;
    let url = a.reg.url.as_deref().unwrap_or_default();
    let path = format!("/_matrix/app/v1/transactions/{}", segment(&txn_id.to_string()));
    app.appservices
        .client
        .request(Method::PUT, url, &path, &a.reg.hs_token, Some(&body), TXN_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let id = a.reg.id.clone();
    app.db.write(move |c| queue::complete(c, &id, txn_id)).await.map_err(|e| e.to_string())?;
    tracing::debug!(appservice = %a.reg.id, txn_id, "transaction delivered");
    Ok(true)
}

/// The transaction body: `events` (client format) and, when any, `ephemeral` under its
/// stable name and MSC2409's unstable one (which bridges built on older SDKs read).
fn body(c: &rusqlite::Connection, items: &[Item]) -> Result<Value> {
    let (mut evs, mut eph, mut to_device) = (vec![], vec![], vec![]);
    for item in items {
        match item {
            // An event purged since it was queued is skipped.
            Item::Event(nid) => {
                if let Some(row) = events::by_nid(c, *nid)? {
                    evs.push(format::client_event(c, &row, None)?);
                }
            }
            Item::Ephemeral(j) => eph.extend(serde_json::from_str::<Value>(j).ok()),
            Item::ToDevice(j) => to_device.extend(serde_json::from_str::<Value>(j).ok()),
        }
    }
    let mut body = json!({ "events": evs });
    if !eph.is_empty() {
        body["ephemeral"] = json!(eph);
        body["de.sorunome.msc2409.ephemeral"] = json!(eph);
    }
    if !to_device.is_empty() {
        // MSC4203's key (Synapse's name for it).
        body["de.sorunome.msc2409.to_device"] = json!(to_device);
    }
    Ok(body)
}

/// Queue an ephemeral event (typing, receipt) for these appservices and wake them.
pub async fn enqueue_ephemeral(app: &App, ids: Vec<String>, event: Value) -> Result<()> {
    let item = Item::Ephemeral(event.to_string());
    enqueue_all(app, ids.into_iter().map(|id| (id, item.clone())).collect()).await
}

/// Queue items (each for the appservice named with it) and wake their senders.
pub async fn enqueue_all(app: &App, items: Vec<(String, Item)>) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
    app.db
        .write(move |c| {
            for (id, item) in &items {
                queue::enqueue(c, id, item)?;
            }
            Ok(())
        })
        .await?;
    app.appservices.wake(&ids);
    Ok(())
}
