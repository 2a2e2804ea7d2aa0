//! Delivery of notifications to HTTP pushers' push gateways (spec: Push Gateway API,
//! `POST /_matrix/push/v1/notify`). Sending an event only queues a [`Job`]; a background
//! task posts each notification, retrying with backoff, so a slow or dead gateway never
//! holds up a send. A gateway answering `rejected: [pushkey]` loses that pusher.
//!
//! Gateways are reached like other outbound requests of the server's choosing: every
//! address the host resolves to must be public, unless `ip_range_whitelist` allows it
//! (loopback gateways in tests), and the connection goes to a checked address. TLS
//! trusts the system's roots and, for test setups, `federation_custom_ca_list`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::app::App;
use crate::cli::http_client::{parse_url, request_bytes_at};
use crate::media::preview::PreviewPolicy;
use crate::store::{events, pushers, users};

/// Attempts per notification, and the first wait between them (doubling each time).
const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_secs(20);

/// One event to notify local users about.
#[derive(Debug, Clone)]
pub struct Job {
    pub room_nid: i64,
    pub room_id: String,
    pub event_id: String,
    pub event_type: String,
    pub sender: String,
    pub content: Value,
    pub state_key: Option<String>,
    pub room_name: Option<String>,
    pub room_alias: Option<String>,
    pub sender_display_name: Option<String>,
    /// Each user to notify and their tweaks.
    pub targets: Vec<(String, Map<String, Value>)>,
}

/// What the worker does: notify about an event, or send a user's devices a new badge
/// (after a read receipt).
#[derive(Debug)]
enum Work {
    Event(Box<Job>),
    Badge(String),
}

/// The queue of notifications; [`Gateway::start`] runs its worker.
#[derive(Default)]
pub struct Gateway {
    tx: Mutex<Option<mpsc::UnboundedSender<Work>>>,
    /// TLS for gateways: the system's roots plus `federation_custom_ca_list` (a
    /// test-setup key: SyTest's gateway has a certificate from its own CA).
    tls: std::sync::OnceLock<Option<Arc<rustls::ClientConfig>>>,
    /// The badge each pusher (user, app, key) was last sent: a receipt that leaves it
    /// unchanged sends nothing (as Synapse).
    last_badge: Mutex<std::collections::HashMap<(i64, String, String), i64>>,
}

impl Gateway {
    /// Start the worker for `app` (which it holds weakly, so that the server can stop).
    pub fn start(app: &Arc<App>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Work>();
        if let Ok(mut slot) = app.pushes.tx.lock() {
            *slot = Some(tx);
        }
        let weak: Weak<App> = Arc::downgrade(app);
        let mut shutdown = app.shutdown.clone();
        tokio::spawn(async move {
            loop {
                let job = tokio::select! {
                    j = rx.recv() => j,
                    _ = shutdown.wait_for(|s| *s) => None,
                };
                let (Some(work), Some(app)) = (job, weak.upgrade()) else { break };
                match work {
                    Work::Event(job) => tokio::spawn(deliver(app, *job)),
                    Work::Badge(user_id) => tokio::spawn(send_badge(app, user_id)),
                };
            }
        });
    }

    /// Queue a job; never waits.
    pub fn enqueue(&self, job: Job) {
        self.send(Work::Event(Box::new(job)));
    }

    /// Queue a badge update for the user's pushers; never waits.
    pub fn badge(&self, user_id: &str) {
        self.send(Work::Badge(user_id.to_string()));
    }

    /// Remember the badge a pusher got; true if it differs from the last one.
    fn badge_changed(&self, p: &pushers::Pusher, badge: i64) -> bool {
        let key = (p.user_nid, p.app_id.clone(), p.pushkey.clone());
        match self.last_badge.lock() {
            Ok(mut m) => m.insert(key, badge) != Some(badge),
            Err(_) => true,
        }
    }

    fn send(&self, work: Work) {
        if let Ok(slot) = self.tx.lock()
            && let Some(tx) = slot.as_ref()
        {
            let _ = tx.send(work);
        }
    }
}

/// `high` for encrypted events and for those that highlight or make a sound (as Synapse).
fn priority(event_type: &str, tweaks: &Map<String, Value>) -> &'static str {
    let on = |k: &str| tweaks.get(k).is_some_and(|v| v != &json!(false) && !v.is_null());
    if event_type == "m.room.encrypted" || on("highlight") || on("sound") { "high" } else { "low" }
}

/// The `devices` entry for a pusher: its data without the URL.
fn device(p: &pushers::Pusher) -> Value {
    let mut data = p.data.clone();
    if let Some(d) = data.as_object_mut() {
        d.remove("url");
    }
    json!({
        "app_id": p.app_id,
        "pushkey": p.pushkey,
        "pushkey_ts": p.pushkey_ts / 1000,
        "data": data,
    })
}

/// A badge-only notification (Synapse's shape).
pub fn badge_notification(p: &pushers::Pusher, badge: i64) -> Value {
    json!({"notification": {
        "id": "", "type": null, "sender": "",
        "counts": {"unread": badge},
        "devices": [device(p)],
    }})
}

/// The notify request body for one pusher of `user_id`.
pub fn notification(
    job: &Job,
    user_id: &str,
    tweaks: &Map<String, Value>,
    p: &pushers::Pusher,
    unread: i64,
) -> Value {
    let event_id_only = p.data["format"] == "event_id_only";
    let mut device = device(p);
    if !event_id_only {
        device["tweaks"] = Value::Object(tweaks.clone());
    }
    let mut n = json!({
        "event_id": job.event_id,
        "room_id": job.room_id,
        "prio": priority(&job.event_type, tweaks),
        "counts": {"unread": unread},
        "devices": [device],
    });
    if event_id_only {
        return json!({"notification": n});
    }
    n["id"] = json!(job.event_id);
    n["type"] = json!(job.event_type);
    n["sender"] = json!(job.sender);
    if job.content.as_object().is_some_and(|c| !c.is_empty()) {
        n["content"] = job.content.clone();
    }
    if job.event_type == "m.room.member"
        && let Some(k) = &job.state_key
    {
        n["membership"] = job.content["membership"].clone();
        n["user_is_target"] = json!(k == user_id);
    }
    for (key, v) in [
        ("sender_display_name", &job.sender_display_name),
        ("room_name", &job.room_name),
        ("room_alias", &job.room_alias),
    ] {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            n[key] = json!(v);
        }
    }
    json!({"notification": n})
}

async fn deliver(app: Arc<App>, job: Job) {
    let user_ids: Vec<String> = job.targets.iter().map(|(u, _)| u.clone()).collect();
    let found = match pushers_and_badges(&app, user_ids).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(event_id = %job.event_id, error = %e, "push failed");
            return;
        }
    };
    for ((user_id, tweaks), (list, unread)) in job.targets.iter().zip(found) {
        for p in list {
            app.pushes.badge_changed(&p, unread);
            let body = notification(&job, user_id, tweaks, &p, unread);
            let app = app.clone();
            tokio::spawn(async move { post_with_retries(&app, &p, body).await });
        }
    }
}

/// Each user's HTTP pushers and, when there are any, their badge: one read for all of an
/// event's targets (a read each made every message cost a blocking-pool round trip per
/// member).
async fn pushers_and_badges(
    app: &App,
    user_ids: Vec<String>,
) -> crate::error::Result<Vec<(Vec<pushers::Pusher>, i64)>> {
    let n = user_ids.len();
    let load = move |c: &rusqlite::Connection| {
        let _snapshot = c.unchecked_transaction()?;
        user_ids
            .iter()
            .map(|uid| {
                let Some(user) = users::get(c, uid)? else { return Ok((vec![], 0)) };
                let list: Vec<_> = pushers::for_user(c, user.nid)?
                    .into_iter()
                    .filter(|p| p.kind == "http")
                    .collect();
                let badge = if list.is_empty() { 0 } else { events::badge(c, uid)? };
                Ok((list, badge))
            })
            .collect()
    };
    app.db.read_keyed(n, load).await
}

async fn send_badge(app: Arc<App>, user_id: String) {
    match pushers_and_badges(&app, vec![user_id.clone()]).await {
        Ok(found) => {
            for (list, badge) in found {
                for p in list.into_iter().filter(|p| app.pushes.badge_changed(p, badge)) {
                    let body = badge_notification(&p, badge);
                    let app = app.clone();
                    tokio::spawn(async move { post_with_retries(&app, &p, body).await });
                }
            }
        }
        Err(e) => tracing::warn!(user_id, error = %e, "badge push failed"),
    }
}

/// Post `body` to the pusher's gateway until it answers 2xx or the attempts run out; a
/// pushkey the gateway rejects deletes the pusher.
async fn post_with_retries(app: &App, p: &pushers::Pusher, body: Value) {
    let url = p.data["url"].as_str().unwrap_or_default().to_string();
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        match post(app, &url, &body).await {
            Ok(answer) => {
                let rejected = answer["rejected"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|k| k == p.pushkey.as_str()));
                if rejected {
                    tracing::info!(app_id = %p.app_id, "push gateway rejected a pushkey: pusher removed");
                    let (nid, app_id, key) = (p.user_nid, p.app_id.clone(), p.pushkey.clone());
                    let _ = app.db.write(move |c| pushers::delete(c, nid, &app_id, &key)).await;
                }
                return;
            }
            Err(e) => {
                tracing::debug!(url, attempt, error = %e, "push gateway failed");
                if attempt == ATTEMPTS {
                    tracing::warn!(url, error = %e, "push gateway unreachable; notification dropped");
                    return;
                }
            }
        }
        let until = Instant::now() + backoff;
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = app.shutting_down() => return,
        }
        backoff *= 2;
    }
}

/// One POST: the gateway's JSON answer on 2xx.
async fn post(app: &App, url: &str, body: &Value) -> Result<Value, String> {
    let base = parse_url(url)?;
    let addr = checked_address(app, &base.host, base.port).await?;
    let bytes = Bytes::from(body.to_string());
    let tls = app
        .pushes
        .tls
        .get_or_init(|| {
            crate::cli::http_client::native_tls_with(
                &app.config.test_setup.federation_custom_ca_list,
            )
            .inspect_err(|e| tracing::warn!(error = %e, "push gateway TLS roots"))
            .ok()
        })
        .clone();
    let (status, answer) = tokio::time::timeout(
        TIMEOUT,
        request_bytes_at(&base, Some(addr), tls, Method::POST, "", "application/json", bytes),
    )
    .await
    .map_err(|_| "timed out".to_string())??;
    if !status.is_success() {
        return Err(format!("status {status}"));
    }
    Ok(serde_json::from_slice(&answer).unwrap_or(Value::Null))
}

/// An address of `host` to connect to, when every address it has may be reached.
async fn checked_address(app: &App, host: &str, port: u16) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let policy = PreviewPolicy {
        allowlist: app.config.test_setup.ip_range_whitelist.clone(),
        ..PreviewPolicy::default()
    };
    let ips: Vec<_> = addrs.iter().map(SocketAddr::ip).collect();
    policy
        .check_all(&ips)
        .map_err(|ip| format!("{host} resolves to {ip}, which is not allowed"))?;
    addrs.first().copied().ok_or_else(|| format!("{host} has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            room_nid: 1,
            room_id: "!r:hs".into(),
            event_id: "$e".into(),
            event_type: "m.room.message".into(),
            sender: "@bob:hs".into(),
            content: json!({"msgtype": "m.text", "body": "hi"}),
            state_key: None,
            room_name: Some("Room".into()),
            room_alias: None,
            sender_display_name: Some("Bob".into()),
            targets: vec![],
        }
    }

    fn pusher(data: Value) -> pushers::Pusher {
        pushers::Pusher {
            user_nid: 1,
            app_id: "app".into(),
            pushkey: "key".into(),
            kind: "http".into(),
            app_display_name: "App".into(),
            device_display_name: "Phone".into(),
            profile_tag: None,
            lang: "en".into(),
            data,
            pushkey_ts: 1_700_000_000_123,
            device_id: None,
        }
    }

    #[test]
    fn full_and_event_id_only_bodies() {
        let tweaks: Map<String, Value> =
            json!({"sound": "default"}).as_object().cloned().unwrap_or_default();
        let p = pusher(json!({"url": "http://gw/_matrix/push/v1/notify", "x": 1}));
        let n = &notification(&job(), "@alice:hs", &tweaks, &p, 3)["notification"];
        assert_eq!(n["prio"], "high", "a sound makes it high");
        assert_eq!(n["counts"]["unread"], 3);
        assert_eq!(n["sender_display_name"], "Bob");
        assert_eq!(n["room_name"], "Room");
        assert!(n.get("room_alias").is_none());
        assert_eq!(n["content"]["body"], "hi");
        let d = &n["devices"][0];
        assert_eq!(d["pushkey_ts"], 1_700_000_000);
        assert_eq!(d["data"], json!({"x": 1}), "the url is left out");
        assert_eq!(d["tweaks"], json!({"sound": "default"}));

        let p =
            pusher(json!({"url": "http://gw/_matrix/push/v1/notify", "format": "event_id_only"}));
        let n = &notification(&job(), "@alice:hs", &Map::new(), &p, 0)["notification"];
        assert_eq!(n["prio"], "low");
        assert_eq!(n["event_id"], "$e");
        assert!(n.get("content").is_none() && n.get("sender").is_none() && n.get("type").is_none());
        assert_eq!(n["devices"][0]["data"], json!({"format": "event_id_only"}));
    }
}
