//! The goose scenarios: `send`, `ratelimit`, `sync_fanout`. Each sets up its users and room
//! with plain requests first, then lets goose drive the load for a bounded time, then
//! prints its own figures (and goose writes its HTML report).

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goose::config::GooseConfiguration;
use goose::metrics::GooseRequestMetric;
use goose::prelude::*;
use serde_json::{Value, json};

use crate::client::{Creds, Hs, enc, next_txn, run_prefix};
use crate::server::GliaServer;
use crate::stats::{Latencies, Summary};

/// What every run takes.
#[derive(Debug, Clone)]
pub struct RunOpts {
    /// An already running homeserver (open registration); else a Glia is started.
    pub target: Option<String>,
    /// The glia binary to start (see `server::glia_binary`).
    pub glia: Option<PathBuf>,
    pub users: usize,
    pub run_time: Duration,
    /// Where goose writes `<scenario>.html`.
    pub report_dir: PathBuf,
}

/// The homeserver of a run: started here, or the `--target`.
pub struct Target {
    pub hs: Hs,
    pub glia: Option<GliaServer>,
}

impl Target {
    pub async fn open(opts: &RunOpts, extra_yaml: &str) -> Result<Target, String> {
        match &opts.target {
            Some(url) => Ok(Target { hs: Hs::new(url), glia: None }),
            None => {
                let bin = crate::server::glia_binary(opts.glia.as_deref())?;
                let glia = GliaServer::start(&bin, extra_yaml).await?;
                Ok(Target { hs: Hs::new(&glia.base_url), glia: Some(glia) })
            }
        }
    }
}

/// A goose run of `users` users for `run_time`, all started within about a second.
pub(crate) fn goose_config(
    base_url: &str,
    opts: &RunOpts,
    users: usize,
    name: &str,
) -> GooseConfiguration {
    let report = opts.report_dir.join(format!("{name}.html"));
    let mut c = GooseConfiguration::default();
    c.host = Some(base_url.to_string());
    c.users = Some(users);
    c.increase_rate = Some(users.to_string());
    c.run_time = Some(opts.run_time.as_secs().max(1).to_string());
    c.report_file = vec![report.display().to_string()];
    // No controllers: they would listen on fixed ports, and runs may overlap.
    c.no_telnet = true;
    // Keep the requests made while users start.
    c.no_reset_metrics = true;
    // Our own summary is printed instead of goose's tables.
    c.no_print_metrics = true;
    c.quiet = 1;
    c
}

pub(crate) type TxFuture<'r> = Pin<Box<dyn Future<Output = TransactionResult> + Send + 'r>>;

/// A goose transaction from an async function of the user and some shared state.
pub(crate) fn tx<S, F>(name: &str, state: Arc<S>, f: F) -> Transaction
where
    S: Send + Sync + 'static,
    F: for<'r> Fn(&'r mut GooseUser, Arc<S>) -> TxFuture<'r> + Send + Sync + 'static,
{
    Transaction::new(Arc::new(move |u| f(u, state.clone()))).set_name(name)
}

pub(crate) async fn run_goose(
    config: GooseConfiguration,
    scenario: Scenario,
) -> Result<(), String> {
    let _ = std::fs::create_dir_all(
        config
            .report_file
            .first()
            .map(PathBuf::from)
            .and_then(|p| p.parent().map(PathBuf::from))
            .unwrap_or_default(),
    );
    GooseAttack::initialize_with_config(config)
        .map_err(|e| format!("goose: {e}"))?
        .register_scenario(scenario)
        .execute()
        .await
        .map(drop)
        .map_err(|e| format!("goose: {e}"))
}

/// The response of one request made through goose (so goose counts and times it too).
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) took: Duration,
    pub(crate) metric: GooseRequestMetric,
}

pub(crate) async fn request(
    user: &mut GooseUser,
    method: GooseMethod,
    name: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Result<Reply, Box<TransactionError>> {
    let mut rb = user.get_request_builder(&method, path)?.bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let req = GooseRequest::builder()
        .method(method)
        .path(path)
        .name(name)
        .set_request_builder(rb)
        .build();
    let started = Instant::now();
    let resp = user.request(req).await?;
    let (status, body) = match resp.response {
        Ok(r) => {
            let status = r.status().as_u16();
            let bytes = r.bytes().await.unwrap_or_default();
            (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        }
        Err(e) => return Err(Box::new(TransactionError::Custom(format!("{name}: {e}")))),
    };
    Ok(Reply { status, body, took: started.elapsed(), metric: resp.request })
}

/// Per goose user: which prepared account it drives.
#[derive(Clone)]
struct Session {
    index: usize,
    creds: Creds,
}

/// Hands the prepared accounts out to goose users as they start.
pub(crate) struct Pool {
    pub(crate) users: Vec<Creds>,
    pub(crate) next: AtomicUsize,
}

impl Pool {
    pub(crate) fn claim(&self, user: &mut GooseUser) -> TransactionResult {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let creds = self
            .users
            .get(index)
            .cloned()
            .ok_or_else(|| TransactionError::Custom(format!("no account for user {index}")))?;
        user.set_session_data(Session { index, creds });
        Ok(())
    }
}

pub(crate) fn session(user: &GooseUser) -> Result<(usize, Creds), Box<TransactionError>> {
    user.get_session_data::<Session>()
        .map(|s| (s.index, s.creds.clone()))
        .ok_or_else(|| Box::new(TransactionError::Custom("no session".into())))
}

fn send_path(room: &str) -> String {
    format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{}", enc(room), next_txn())
}

// ---------------------------------------------------------------------------------------
// send

pub struct SendReport {
    pub users: usize,
    pub sent: usize,
    pub failed: usize,
    pub elapsed: Duration,
    pub latency: Summary,
}

impl SendReport {
    pub fn per_second(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for SendReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "send: {} users in one room, {} messages accepted in {:.1} s = {:.0} messages/s, \
             {} failed; send latency {}",
            self.users,
            self.sent,
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.failed,
            self.latency
        )
    }
}

struct SendState {
    pool: Pool,
    room: String,
    latency: Latencies,
    failed: AtomicUsize,
    first: Mutex<Option<Instant>>,
    last: Mutex<Option<Instant>>,
}

/// N users in one room sending as fast as they can.
pub async fn send(opts: &RunOpts) -> Result<SendReport, String> {
    let target = Target::open(opts, "").await?;
    let (users, room) = target.hs.room_with_users(&run_prefix("send"), opts.users).await?;
    let state = Arc::new(SendState {
        pool: Pool { users, next: AtomicUsize::new(0) },
        room,
        latency: Latencies::default(),
        failed: AtomicUsize::new(0),
        first: Mutex::new(None),
        last: Mutex::new(None),
    });
    let scenario = scenario!("send")
        .register_transaction(
            tx("claim", state.clone(), |u, s| Box::pin(async move { s.pool.claim(u) }))
                .set_on_start(),
        )
        .register_transaction(tx("send", state.clone(), |u, s| {
            Box::pin(async move {
                let (i, creds) = session(u)?;
                let path = send_path(&s.room);
                let body = json!({"msgtype": "m.text", "body": format!("load from {i}")});
                let r =
                    request(u, GooseMethod::Put, "send", &path, &creds.token, Some(&body)).await?;
                let now = Instant::now();
                if r.status == 200 && r.body["event_id"].is_string() {
                    s.latency.record(r.took);
                    if let Ok(mut first) = s.first.lock() {
                        first.get_or_insert(now - r.took);
                    }
                    if let Ok(mut last) = s.last.lock() {
                        *last = Some(now);
                    }
                } else {
                    s.failed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        }));
    run_goose(goose_config(&target.hs.base_url, opts, opts.users, "send"), scenario).await?;
    let latency = state.latency.summary();
    let elapsed = match (
        *state.first.lock().map_err(|e| e.to_string())?,
        *state.last.lock().map_err(|e| e.to_string())?,
    ) {
        (Some(a), Some(b)) => b.duration_since(a),
        _ => Duration::ZERO,
    };
    Ok(SendReport {
        users: opts.users,
        sent: latency.count,
        failed: state.failed.load(Ordering::Relaxed),
        elapsed,
        latency,
    })
}

// ---------------------------------------------------------------------------------------
// ratelimit

/// `rc_message` for the run (Synapse's default is 0.2 a second, bursts of 10).
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Debug, Default, Clone)]
pub struct RateReport {
    pub users: usize,
    pub rate: Option<(f64, f64)>,
    pub accepted: usize,
    pub refused: usize,
    /// Refusals that were not 429 `M_LIMIT_EXCEEDED` with a numeric `retry_after_ms`.
    pub malformed_refusals: usize,
    /// Other failures (neither 200 nor 429).
    pub errors: usize,
    /// Sends made after waiting the `retry_after_ms` of a refusal, and how many of them
    /// were accepted.
    pub retries_honoured: usize,
    pub retries_accepted: usize,
    /// Sum over users of `burst + per_second * (last attempt - first attempt)`.
    pub expected_accepted: f64,
    /// Accepted after the burst, per user per second (median over users).
    pub steady_rate_per_user: f64,
}

impl std::fmt::Display for RateReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ps, burst) = self.rate.unwrap_or_default();
        write!(
            f,
            "ratelimit: {} users, rc_message per_second {ps} burst_count {burst}\n  \
             accepted {} (expected {:.1} = burst + per_second x each user's active time), \
             refused {}\n  refusals not 429 M_LIMIT_EXCEEDED with retry_after_ms: {}; other \
             errors: {}\n  retries after honouring retry_after_ms: {}, accepted {}\n  accepted \
             rate per user after the burst: {:.3}/s (configured {ps}/s)",
            self.users,
            self.accepted,
            self.expected_accepted,
            self.refused,
            self.malformed_refusals,
            self.errors,
            self.retries_honoured,
            self.retries_accepted,
            self.steady_rate_per_user,
        )
    }
}

#[derive(Default)]
struct UserRate {
    first: Option<Instant>,
    last: Option<Instant>,
    accepted: usize,
}

#[derive(Default)]
struct RateState {
    report: RateReport,
    per_user: HashMap<usize, UserRate>,
}

struct RateShared {
    pool: Pool,
    room: String,
    state: Mutex<RateState>,
    /// Per goose user: wait until then (a refusal's `retry_after_ms`).
    not_before: Mutex<HashMap<usize, Instant>>,
}

/// Many users sending against `rc_message`: accepted/refused against the expected counts.
pub async fn ratelimit(opts: &RunOpts, rate: Rate) -> Result<RateReport, String> {
    let yaml = format!(
        "rc_disabled: false\n\
         rc_message: {{per_second: {}, burst_count: {}}}\n\
         rc_registration: {{per_second: 10000, burst_count: 100000}}\n\
         rc_joins: {{local: {{per_second: 10000, burst_count: 100000}}}}\n\
         rc_room_creation: {{per_second: 10000, burst_count: 100000}}\n",
        rate.per_second, rate.burst
    );
    let target = Target::open(opts, &yaml).await?;
    let (users, room) = target.hs.room_with_users(&run_prefix("rate"), opts.users).await?;
    let shared = Arc::new(RateShared {
        pool: Pool { users, next: AtomicUsize::new(0) },
        room,
        state: Mutex::new(RateState::default()),
        not_before: Mutex::new(HashMap::new()),
    });
    let scenario = scenario!("ratelimit")
        .register_transaction(
            tx("claim", shared.clone(), |u, s| Box::pin(async move { s.pool.claim(u) }))
                .set_on_start(),
        )
        .register_transaction(tx("send", shared.clone(), |u, s| {
            Box::pin(async move { rate_send(u, &s).await })
        }));
    run_goose(goose_config(&target.hs.base_url, opts, opts.users, "ratelimit"), scenario).await?;
    let state = shared.state.lock().map_err(|e| e.to_string())?;
    let mut report = state.report.clone();
    report.users = opts.users;
    report.rate = Some((rate.per_second, rate.burst));
    let mut steady = vec![];
    for u in state.per_user.values() {
        if let (Some(a), Some(b)) = (u.first, u.last) {
            let secs = b.duration_since(a).as_secs_f64();
            report.expected_accepted += rate.burst + rate.per_second * secs;
            if secs > 0.0 {
                steady.push((u.accepted as f64 - rate.burst).max(0.0) / secs);
            }
        }
    }
    steady.sort_by(f64::total_cmp);
    report.steady_rate_per_user = steady.get(steady.len() / 2).copied().unwrap_or_default();
    Ok(report)
}

async fn rate_send(u: &mut GooseUser, s: &RateShared) -> TransactionResult {
    let (i, creds) = session(u)?;
    let wait_until = s.not_before.lock().ok().and_then(|mut m| m.remove(&i));
    let honouring = wait_until.is_some();
    if let Some(t) = wait_until {
        // The scenario's point: a client that honours retry_after_ms waits that long.
        tokio::time::sleep_until(t.into()).await;
    }
    let path = send_path(&s.room);
    let body = json!({"msgtype": "m.text", "body": format!("rate from {i}")});
    let mut r = request(u, GooseMethod::Put, "send", &path, &creds.token, Some(&body)).await?;
    let now = Instant::now();
    let retry = r.body["retry_after_ms"].as_u64();
    let refused_well =
        r.status == 429 && r.body["errcode"] == "M_LIMIT_EXCEEDED" && retry.is_some();
    if refused_well {
        // A refusal is the expected answer here, not a failed request.
        u.set_success(&mut r.metric)?;
    }
    let Ok(mut st) = s.state.lock() else { return Ok(()) };
    let user = st.per_user.entry(i).or_default();
    user.first.get_or_insert(now - r.took);
    user.last = Some(now);
    if r.status == 200 {
        user.accepted += 1;
    }
    let rep = &mut st.report;
    if honouring {
        rep.retries_honoured += 1;
    }
    match r.status {
        200 => {
            rep.accepted += 1;
            if honouring {
                rep.retries_accepted += 1;
            }
        }
        429 => {
            rep.refused += 1;
            if !refused_well {
                rep.malformed_refusals += 1;
            }
        }
        _ => rep.errors += 1,
    }
    drop(st);
    if let Some(ms) = retry.filter(|_| refused_well)
        && let Ok(mut m) = s.not_before.lock()
    {
        m.insert(i, now + Duration::from_millis(ms));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// sync_fanout

pub struct FanoutReport {
    pub syncers: usize,
    pub messages: usize,
    /// Deliveries seen by syncers (at most `messages * syncers`).
    pub delivered: usize,
    /// Syncs that returned the message before the sender had its response.
    pub before_send_returned: usize,
    pub latency: Summary,
}

impl std::fmt::Display for FanoutReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sync_fanout: {} long-polling users, 1 sender, {} messages, {} of {} deliveries \
             seen ({} before the send returned, counted as 0); latency from send returning \
             to sync returning: {}",
            self.syncers,
            self.messages,
            self.delivered,
            self.messages * self.syncers,
            self.before_send_returned,
            self.latency
        )
    }
}

struct FanoutShared {
    pool: Pool,
    room: String,
    interval: Duration,
    /// Message number -> when its send returned.
    sent: Mutex<HashMap<u64, Instant>>,
    /// Message number -> when a sync first saw it before its send returned.
    early: Mutex<Vec<(u64, Instant)>>,
    latency: Latencies,
    since: Mutex<HashMap<usize, String>>,
    next_message: AtomicUsize,
}

const FANOUT_PREFIX: &str = "fanout message ";

/// M long-polling users and one sender: latency from the send returning to each sync
/// returning with the message.
pub async fn sync_fanout(opts: &RunOpts, interval: Duration) -> Result<FanoutReport, String> {
    let target = Target::open(opts, "").await?;
    // User 0 sends, the others long-poll.
    let n = opts.users.max(1) + 1;
    let (users, room) = target.hs.room_with_users(&run_prefix("fan"), n).await?;
    let shared = Arc::new(FanoutShared {
        pool: Pool { users, next: AtomicUsize::new(0) },
        room,
        interval,
        sent: Mutex::new(HashMap::new()),
        early: Mutex::new(vec![]),
        latency: Latencies::default(),
        since: Mutex::new(HashMap::new()),
        next_message: AtomicUsize::new(0),
    });
    let scenario = scenario!("sync_fanout")
        .register_transaction(
            tx("claim", shared.clone(), |u, s| Box::pin(async move { s.pool.claim(u) }))
                .set_on_start(),
        )
        .register_transaction(tx("fanout", shared.clone(), |u, s| {
            Box::pin(async move {
                match session(u)?.0 {
                    0 => fanout_send(u, &s).await,
                    _ => fanout_sync(u, &s).await,
                }
            })
        }));
    run_goose(goose_config(&target.hs.base_url, opts, n, "sync_fanout"), scenario).await?;
    let sent = shared.sent.lock().map_err(|e| e.to_string())?;
    let early = shared.early.lock().map_err(|e| e.to_string())?;
    let mut before = 0;
    for (seq, _) in early.iter() {
        if sent.contains_key(seq) {
            before += 1;
            shared.latency.record(Duration::ZERO);
        }
    }
    let latency = shared.latency.summary();
    Ok(FanoutReport {
        syncers: n - 1,
        messages: sent.len(),
        delivered: latency.count,
        before_send_returned: before,
        latency,
    })
}

async fn fanout_send(u: &mut GooseUser, s: &FanoutShared) -> TransactionResult {
    let (_, creds) = session(u)?;
    // One message per interval, so that each is measured on its own (the scenario's pace).
    let next = Instant::now() + s.interval;
    let seq = s.next_message.fetch_add(1, Ordering::Relaxed) as u64;
    let path = send_path(&s.room);
    let body = json!({"msgtype": "m.text", "body": format!("{FANOUT_PREFIX}{seq}")});
    let r = request(u, GooseMethod::Put, "send", &path, &creds.token, Some(&body)).await?;
    if r.status == 200
        && let Ok(mut sent) = s.sent.lock()
    {
        sent.insert(seq, Instant::now());
    }
    tokio::time::sleep_until(next.into()).await;
    Ok(())
}

async fn fanout_sync(u: &mut GooseUser, s: &FanoutShared) -> TransactionResult {
    let (i, creds) = session(u)?;
    let since = s.since.lock().ok().and_then(|m| m.get(&i).cloned());
    let filter = json!({"room": {"timeline": {"limit": 50}, "state": {"lazy_load_members": true}}});
    let mut path = format!("/_matrix/client/v3/sync?filter={}", enc(&filter.to_string()));
    match &since {
        Some(t) => path.push_str(&format!("&timeout=5000&since={}", enc(t))),
        None => path.push_str("&timeout=0"),
    }
    let name = if since.is_some() { "sync (long-poll)" } else { "sync (initial)" };
    let r = request(u, GooseMethod::Get, name, &path, &creds.token, None).await?;
    let now = Instant::now();
    if r.status != 200 {
        return Ok(());
    }
    if let Some(next) = r.body["next_batch"].as_str()
        && let Ok(mut m) = s.since.lock()
    {
        m.insert(i, next.to_string());
    }
    if since.is_none() {
        return Ok(());
    }
    let events = r.body["rooms"]["join"][s.room.as_str()]["timeline"]["events"].as_array().cloned();
    for e in events.unwrap_or_default() {
        let Some(seq) = e["content"]["body"]
            .as_str()
            .and_then(|b| b.strip_prefix(FANOUT_PREFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let sent_at = s.sent.lock().ok().and_then(|m| m.get(&seq).copied());
        match sent_at {
            Some(t) => s.latency.record(now.saturating_duration_since(t)),
            None => {
                if let Ok(mut early) = s.early.lock() {
                    early.push((seq, now));
                }
            }
        }
    }
    Ok(())
}
