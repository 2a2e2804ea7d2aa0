//! `state_res`: users on two federating Glias change one room's state concurrently (topic,
//! power levels, join rules, membership); afterwards both servers must report the same
//! current state. Figures: accepted state events per second, and the time from the last
//! accepted change to both servers agreeing.
//!
//! The room is created on server 1 by an admin (power 100) who never leaves; the actors
//! (half on each server) have power 50, enough for every change they try. The admin
//! promotes and demotes actors (50 <-> 0) and sets join rules back to public; actors set the
//! topic, move a power-level entry of their own between 0 and 25 (a read-modify-write of
//! the whole event, so stale reads also undo each other's changes), flip the join rules,
//! and leave and rejoin. A demoted actor's changes, and a rejoin while the room is
//! invite-only, are refused (403): that is the load's point, not a failure. An observer on
//! server 2 joins once and only reads, so that server 2 always has the room to compare.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goose::prelude::*;
use serde_json::{Value, json};

use crate::client::{Creds, Hs, enc, next_txn, run_prefix};
use crate::scenarios::{Pool, RunOpts, goose_config, request, run_goose, session, tx};
use crate::server::{GliaServer, glia_binary};

/// (type, state_key, event_id) of one current state entry.
pub type StateKey = (String, String, String);

#[derive(Debug, Default, Clone)]
pub struct StateResReport {
    /// Actors per server.
    pub users_per_server: usize,
    /// Accepted changes (200) by kind: topic, power_levels, join_rules, leave, join.
    pub accepted: HashMap<&'static str, usize>,
    /// Refused as the auth rules say (403): demoted senders, invite-only rejoins.
    pub refused: usize,
    /// Anything else (5xx, transport errors): failures.
    pub errors: usize,
    /// From the first to the last accepted change.
    pub load_time: Duration,
    /// From the last accepted change until both servers reported the same current state
    /// (twice in a row).
    pub resolution_time: Option<Duration>,
    /// State entries on one server and not on the other, when they did not converge.
    pub only_on_1: Vec<StateKey>,
    pub only_on_2: Vec<StateKey>,
    /// Of those, how many events the other server does not have at all (not received,
    /// as opposed to received and resolved differently).
    pub unknown_on_other: usize,
    /// Entries in the converged current state.
    pub state_entries: usize,
    pub room_id: String,
    /// Each server's own state resolution figures, scraped from its metrics at the end.
    pub resolutions: [Option<Resolutions>; 2],
}

/// `glia_state_resolution_seconds` (and the conflicted-keys histogram) of one server.
#[derive(Debug, Default, Clone)]
pub struct Resolutions {
    pub count: u64,
    pub total_seconds: f64,
    /// Upper bound of the bucket holding the 99th percentile (None: in +Inf).
    pub p99_at_most: Option<f64>,
    pub conflicted_keys: f64,
}

impl Resolutions {
    /// From the Prometheus text exposition.
    pub fn parse(text: &str) -> Option<Resolutions> {
        let value = |name: &str| -> Option<f64> {
            text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        };
        let count = value("glia_state_resolution_seconds_count")? as u64;
        let total_seconds = value("glia_state_resolution_seconds_sum")?;
        let conflicted_keys = value("glia_state_resolution_conflicted_keys_sum").unwrap_or(0.0);
        let want = (count as f64 * 0.99).ceil() as u64;
        let p99_at_most = text
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("glia_state_resolution_seconds_bucket{le=\"")?;
                let (bound, n) = rest.split_once("\"} ")?;
                Some((bound.parse::<f64>().ok()?, n.trim().parse::<u64>().ok()?))
            })
            .find(|(_, n)| *n >= want)
            .map(|(b, _)| b)
            .filter(|b| b.is_finite());
        Some(Resolutions { count, total_seconds, p99_at_most, conflicted_keys })
    }
}

impl std::fmt::Display for Resolutions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.count.max(1) as f64;
        write!(
            f,
            "{} resolutions, {:.1} ms in total, mean {:.2} ms, p99 <= {}, mean {:.1} conflicted keys",
            self.count,
            self.total_seconds * 1000.0,
            self.total_seconds * 1000.0 / n,
            match self.p99_at_most {
                Some(b) => format!("{} ms", b * 1000.0),
                None => "+Inf".to_string(),
            },
            self.conflicted_keys / n
        )
    }
}

impl StateResReport {
    pub fn accepted_total(&self) -> usize {
        self.accepted.values().sum()
    }

    pub fn per_second(&self) -> f64 {
        self.accepted_total() as f64 / self.load_time.as_secs_f64().max(1e-9)
    }

    pub fn converged(&self) -> bool {
        self.resolution_time.is_some()
    }
}

impl std::fmt::Display for StateResReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kinds: Vec<_> = self.accepted.iter().collect();
        kinds.sort();
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        write!(
            f,
            "state_res: 2 federating servers, {} actors each (+ admin, observer), one room\n  \
             {} state changes accepted in {:.1} s = {:.1} events/s ({}); {} refused by the auth \
             rules (403), {} errors\n  ",
            self.users_per_server,
            self.accepted_total(),
            self.load_time.as_secs_f64(),
            self.per_second(),
            kinds.join(", "),
            self.refused,
            self.errors,
        )?;
        for (i, r) in self.resolutions.iter().enumerate() {
            match r {
                Some(r) => write!(f, "server {}: {r}\n  ", i + 1)?,
                None => write!(f, "server {}: no state resolution metrics\n  ", i + 1)?,
            }
        }
        match self.resolution_time {
            Some(t) => write!(
                f,
                "both servers report the same current state ({} entries) {:.0} ms after the \
                 last accepted change",
                self.state_entries,
                t.as_secs_f64() * 1000.0
            ),
            None => write!(
                f,
                "NOT CONVERGED: {} entries only on server 1 {:?}, {} only on server 2 {:?}; {} \
                 of these events are unknown to the other server",
                self.only_on_1.len(),
                self.only_on_1,
                self.only_on_2.len(),
                self.only_on_2,
                self.unknown_on_other
            ),
        }
    }
}

#[derive(Default)]
struct Actor {
    joined: bool,
    turn: usize,
}

struct Shared {
    pool: Pool,
    /// Per pool index: the client base URL of that user's server (absolute, so that goose
    /// sends it there rather than to its one host).
    base: Vec<String>,
    /// Server 1's name, for remote rejoins (`server_name=`).
    via: String,
    room: String,
    actors: Mutex<HashMap<usize, Actor>>,
    report: Mutex<StateResReport>,
    first: Mutex<Option<Instant>>,
    last: Mutex<Option<Instant>>,
    /// Pool indexes of the actors (the admin is index 0).
    actor_ids: Vec<String>,
}

fn state_path(base: &str, room: &str, ty: &str) -> String {
    format!("{base}/_matrix/client/v3/rooms/{}/state/{ty}/", enc(room))
}

/// Two federating Glias, `opts.users` actors on each, changing state for `opts.run_time`.
pub async fn state_res(opts: &RunOpts) -> Result<StateResReport, String> {
    let bin = glia_binary(opts.glia.as_deref())?;
    let s1 = GliaServer::start_federating(&bin, "").await?;
    let s2 = GliaServer::start_federating(&bin, "").await?;
    let (hs1, hs2) = (Hs::new(&s1.base_url), Hs::new(&s2.base_url));
    let n = opts.users.max(1);
    let prefix = run_prefix("sr");

    let admin = hs1.register(&format!("{prefix}admin")).await?;
    let observer = hs2.register(&format!("{prefix}observer")).await?;
    let mut users = vec![admin.clone()];
    let mut base = vec![s1.base_url.clone()];
    for i in 0..n {
        users.push(hs1.register(&format!("{prefix}a{i}")).await?);
        base.push(s1.base_url.clone());
    }
    for i in 0..n {
        users.push(hs2.register(&format!("{prefix}b{i}")).await?);
        base.push(s2.base_url.clone());
    }
    let mut levels = serde_json::Map::new();
    levels.insert(admin.user_id.clone(), json!(100));
    for u in &users[1..] {
        levels.insert(u.user_id.clone(), json!(50));
    }
    let room = hs1
        .create_room(
            &admin,
            &json!({
                "preset": "public_chat",
                "name": "state res load",
                "power_level_content_override": {
                    "users": levels,
                    "state_default": 50,
                    "events": {
                        "m.room.power_levels": 50,
                        "m.room.join_rules": 50,
                        "m.room.topic": 50,
                    },
                },
            }),
        )
        .await?;
    let join_path =
        format!("/_matrix/client/v3/join/{}?server_name={}", enc(&room), enc(&s1.server_name));
    for (i, u) in users.iter().enumerate().skip(1) {
        let hs = if base[i] == s1.base_url { &hs1 } else { &hs2 };
        hs.ok(reqwest::Method::POST, &join_path, Some(&u.token), Some(&json!({}))).await?;
    }
    hs2.ok(reqwest::Method::POST, &join_path, Some(&observer.token), Some(&json!({}))).await?;

    let actor_ids = users.iter().map(|u| u.user_id.clone()).collect();
    let total = users.len();
    let shared = Arc::new(Shared {
        pool: Pool { users, next: AtomicUsize::new(0) },
        base,
        via: s1.server_name.clone(),
        room: room.clone(),
        actors: Mutex::new((1..total).map(|i| (i, Actor { joined: true, turn: i })).collect()),
        report: Mutex::new(StateResReport::default()),
        first: Mutex::new(None),
        last: Mutex::new(None),
        actor_ids,
    });
    let scenario = scenario!("state_res")
        .register_transaction(
            tx("claim", shared.clone(), |u, s| Box::pin(async move { s.pool.claim(u) }))
                .set_on_start(),
        )
        .register_transaction(tx("change", shared.clone(), |u, s| {
            Box::pin(async move { change(u, &s).await })
        }));
    run_goose(goose_config(&s1.base_url, opts, total, "state_res"), scenario).await?;

    let mut report = shared.report.lock().map_err(|e| e.to_string())?.clone();
    report.users_per_server = n;
    report.room_id = room.clone();
    let last = *shared.last.lock().map_err(|e| e.to_string())?;
    let first = *shared.first.lock().map_err(|e| e.to_string())?;
    if let (Some(a), Some(b)) = (first, last) {
        report.load_time = b.duration_since(a);
    }
    let since = last.unwrap_or_else(Instant::now);
    converge(&hs1, &admin, &hs2, &observer, &room, since, &mut report).await?;
    for (i, server) in [&s1, &s2].into_iter().enumerate() {
        report.resolutions[i] = scrape(&hs1, &server.metrics_url).await;
    }
    Ok(report)
}

async fn scrape(hs: &Hs, url: &str) -> Option<Resolutions> {
    let text = hs.http.get(url).send().await.ok()?.text().await.ok()?;
    Resolutions::parse(&text)
}

/// Poll both servers' current state until they agree on two polls in a row (a transaction
/// still in flight would make them differ again), or the deadline passes.
async fn converge(
    hs1: &Hs,
    a: &Creds,
    hs2: &Hs,
    b: &Creds,
    room: &str,
    since: Instant,
    report: &mut StateResReport,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut agreed: Option<(Instant, BTreeSet<StateKey>)> = None;
    loop {
        let one = current_state(hs1, a, room).await?;
        let two = current_state(hs2, b, room).await?;
        let now = Instant::now();
        if one == two {
            match &agreed {
                Some((at, set)) if *set == one => {
                    report.resolution_time = Some(at.saturating_duration_since(since));
                    report.state_entries = one.len();
                    return Ok(());
                }
                _ => agreed = Some((now, one)),
            }
        } else {
            agreed = None;
            if now > deadline {
                report.only_on_1 = one.difference(&two).cloned().collect();
                report.only_on_2 = two.difference(&one).cloned().collect();
                for ((hs, who), entries) in
                    [((hs2, b), &report.only_on_1), ((hs1, a), &report.only_on_2)]
                {
                    for (_, _, id) in entries {
                        let path =
                            format!("/_matrix/client/v3/rooms/{}/event/{}", enc(room), enc(id));
                        let (status, _) =
                            hs.call(reqwest::Method::GET, &path, Some(&who.token), None).await?;
                        if status == 404 {
                            report.unknown_on_other += 1;
                        }
                    }
                }
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn current_state(hs: &Hs, who: &Creds, room: &str) -> Result<BTreeSet<StateKey>, String> {
    let path = format!("/_matrix/client/v3/rooms/{}/state", enc(room));
    let v = hs.ok(reqwest::Method::GET, &path, Some(&who.token), None).await?;
    let events = v.as_array().ok_or_else(|| format!("{path}: not a list: {v}"))?;
    Ok(events
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("type"), s("state_key"), s("event_id"))
        })
        .collect())
}

/// One change by one user: the admin alternates promote/demote and re-opening the room;
/// an actor that is out rejoins, else it takes the next of topic, power levels, join rules,
/// leave.
async fn change(u: &mut GooseUser, s: &Shared) -> TransactionResult {
    let (i, creds) = session(u)?;
    let base = s.base.get(i).cloned().unwrap_or_default();
    let (joined, turn) = {
        let mut actors = s.actors.lock().map_err(|e| TransactionError::Custom(e.to_string()))?;
        let a = actors.entry(i).or_default();
        let joined = a.joined || i == 0;
        // Rejoining takes no turn, so that the turn after a leave is not always lost.
        if joined {
            a.turn += 1;
        }
        (joined, a.turn)
    };
    let room = enc(&s.room);
    let (kind, method, path, body): (&'static str, _, String, Value) = if i == 0 {
        if turn % 3 == 0 {
            let c = json!({"join_rule": "public"});
            ("join_rules", GooseMethod::Put, state_path(&base, &s.room, "m.room.join_rules"), c)
        } else {
            let target = s.actor_ids.get(1 + turn % (s.actor_ids.len() - 1).max(1)).cloned();
            let level = if turn % 2 == 0 { 0 } else { 50 };
            let Some(content) = levels_with(u, s, &base, &creds, target, level).await? else {
                return Ok(());
            };
            (
                "power_levels",
                GooseMethod::Put,
                state_path(&base, &s.room, "m.room.power_levels"),
                content,
            )
        }
    } else if !joined {
        let path = format!("{base}/_matrix/client/v3/join/{room}?server_name={}", enc(&s.via));
        ("join", GooseMethod::Post, path, json!({}))
    } else {
        match turn % 4 {
            0 => {
                let c = json!({"topic": format!("topic {i}/{turn} {}", next_txn())});
                ("topic", GooseMethod::Put, state_path(&base, &s.room, "m.room.topic"), c)
            }
            1 => {
                let level = if turn % 8 == 1 { 25 } else { 0 };
                let Some(content) =
                    levels_with(u, s, &base, &creds, Some(format!("@pawn{i}:{}", s.via)), level)
                        .await?
                else {
                    return Ok(());
                };
                (
                    "power_levels",
                    GooseMethod::Put,
                    state_path(&base, &s.room, "m.room.power_levels"),
                    content,
                )
            }
            2 => {
                let rule = if turn % 8 == 2 { "invite" } else { "public" };
                let c = json!({"join_rule": rule});
                ("join_rules", GooseMethod::Put, state_path(&base, &s.room, "m.room.join_rules"), c)
            }
            _ => {
                let path = format!("{base}/_matrix/client/v3/rooms/{room}/leave");
                ("leave", GooseMethod::Post, path, json!({}))
            }
        }
    };
    let mut r = request(u, method, kind, &path, &creds.token, Some(&body)).await?;
    let now = Instant::now();
    let Ok(mut rep) = s.report.lock() else { return Ok(()) };
    match r.status {
        200 => {
            *rep.accepted.entry(kind).or_default() += 1;
            if let Ok(mut first) = s.first.lock() {
                first.get_or_insert(now - r.took);
            }
            if let Ok(mut last) = s.last.lock() {
                *last = Some(now);
            }
            if (kind == "join" || kind == "leave")
                && let Ok(mut actors) = s.actors.lock()
            {
                actors.entry(i).or_default().joined = kind == "join";
            }
        }
        403 => {
            rep.refused += 1;
            // Refused by the room's rules, as the load intends: not a failed request.
            u.set_success(&mut r.metric)?;
        }
        _ => rep.errors += 1,
    }
    Ok(())
}

/// The room's power levels as this user's server has them now, with `target` set to
/// `level`; `None` when they could not be read (counted as an error).
async fn levels_with(
    u: &mut GooseUser,
    s: &Shared,
    base: &str,
    creds: &Creds,
    target: Option<String>,
    level: u32,
) -> Result<Option<Value>, Box<TransactionError>> {
    let path = state_path(base, &s.room, "m.room.power_levels");
    let r = request(u, GooseMethod::Get, "get power_levels", &path, &creds.token, None).await?;
    let (200, Some(target)) = (r.status, target) else {
        if r.status != 403
            && let Ok(mut rep) = s.report.lock()
        {
            rep.errors += 1;
        }
        return Ok(None);
    };
    let mut content = r.body;
    if let Some(users) = content["users"].as_object_mut() {
        users.insert(target, json!(level));
    }
    Ok(Some(content))
}

#[cfg(test)]
mod tests {
    use super::Resolutions;

    #[test]
    fn resolutions_from_the_exposition() {
        let text = "glia_state_resolution_seconds_bucket{le=\"0.001\"} 90\n\
                    glia_state_resolution_seconds_bucket{le=\"0.01\"} 98\n\
                    glia_state_resolution_seconds_bucket{le=\"0.1\"} 100\n\
                    glia_state_resolution_seconds_bucket{le=\"+Inf\"} 100\n\
                    glia_state_resolution_seconds_sum 0.25\n\
                    glia_state_resolution_seconds_count 100\n\
                    glia_state_resolution_conflicted_keys_sum 300\n";
        let r = Resolutions::parse(text).expect("parsed");
        assert_eq!(r.count, 100);
        assert_eq!(r.total_seconds, 0.25);
        assert_eq!(r.p99_at_most, Some(0.1));
        assert_eq!(r.conflicted_keys, 300.0);
        assert!(Resolutions::parse("glia_sync_waiters 0\n").is_none());
    }
}
