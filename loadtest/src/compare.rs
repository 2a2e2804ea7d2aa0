//! The side-by-side workload (`ci/compare-synapse`): the same requests, in the same order,
//! against each homeserver; one figure per row.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{Creds, Hs, run_prefix};
use crate::server::rss_kib;
use crate::stats::Summary;

/// How a row's figures compare: higher is better (a rate) or lower is better (a time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Better {
    Higher,
    Lower,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub unit: &'static str,
    pub better: Better,
    pub value: f64,
}

/// Sizes of the workload.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub users: usize,
    pub rooms: usize,
    pub sequential: usize,
    pub concurrent_clients: usize,
    pub per_client: usize,
    pub sync_repeats: usize,
}

impl Default for Workload {
    fn default() -> Self {
        // 500 + 16 x 100 messages: the room holds over 2,000 events for the initial sync.
        Workload {
            users: 20,
            rooms: 20,
            sequential: 500,
            concurrent_clients: 16,
            per_client: 100,
            sync_repeats: 16,
        }
    }
}

fn row(name: impl Into<String>, unit: &'static str, better: Better, value: f64) -> Row {
    Row { name: name.into(), unit, better, value }
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    Summary::of(&mut v).p50.as_secs_f64() * 1000.0
}

async fn timed<T, F: std::future::Future<Output = Result<T, String>>>(
    f: F,
) -> Result<(T, Duration), String> {
    let t = Instant::now();
    let v = f.await?;
    Ok((v, t.elapsed()))
}

/// Run the workload against `hs` (process `pid`, for its RSS); `log` gets progress lines.
pub async fn workload(
    hs: &Hs,
    pid: u32,
    w: Workload,
    log: &dyn Fn(&str),
) -> Result<Vec<Row>, String> {
    let mut rows = vec![];
    let rss = |what: &str| {
        let kib = rss_kib(pid).ok_or_else(|| format!("no /proc/{pid}/status"))?;
        Ok::<Row, String>(row(format!("RSS {what}"), "MB", Better::Lower, kib as f64 / 1024.0))
    };
    rows.push(rss("at idle")?);

    let prefix = run_prefix("cmp");
    let mut users: Vec<Creds> = vec![];
    let mut times = vec![];
    for i in 0..w.users.max(w.concurrent_clients + 1) {
        let (c, t) = timed(hs.register(&format!("{prefix}{i}"))).await?;
        users.push(c);
        times.push(t);
    }
    log(&format!("registered {} users", users.len()));
    rows.push(row("register (one user)", "ms", Better::Lower, median_ms(times)));

    let mut times = vec![];
    for i in 0..w.rooms {
        let body = json!({"preset": "private_chat", "name": format!("room {i}")});
        times.push(timed(hs.create_room(&users[0], &body)).await?.1);
    }
    rows.push(row("createRoom", "ms", Better::Lower, median_ms(times)));

    let room =
        hs.create_room(&users[0], &json!({"preset": "public_chat", "name": "compare"})).await?;
    let mut times = vec![];
    for u in &users[1..] {
        times.push(timed(hs.join(u, &room)).await?.1);
    }
    rows.push(row("join", "ms", Better::Lower, median_ms(times)));
    log("rooms created and joined");

    // Sequential send: one client, one request at a time.
    let mut lat = vec![];
    let start = Instant::now();
    for i in 0..w.sequential {
        let (r, t) = timed(hs.send_text(&users[0], &room, &format!("sequential {i}"))).await?;
        if r.0 != 200 {
            return Err(format!("send: {} {}", r.0, r.1));
        }
        lat.push(t);
    }
    let secs = start.elapsed().as_secs_f64();
    let s = Summary::of(&mut lat);
    rows.push(row("sequential send", "msg/s", Better::Higher, w.sequential as f64 / secs));
    rows.push(row("sequential send p99", "ms", Better::Lower, s.p99.as_secs_f64() * 1000.0));
    log(&format!("sequential send: {} messages in {secs:.1} s", w.sequential));

    // Concurrent send: N clients, each sending its messages one after the other.
    let start = Instant::now();
    let mut tasks = vec![];
    for u in &users[1..=w.concurrent_clients] {
        let (hs, u) = (hs.clone(), u.clone());
        let room = room.clone();
        let n = w.per_client;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            for i in 0..n {
                let t = Instant::now();
                let r = hs.send_text(&u, &room, &format!("concurrent {i}")).await?;
                if r.0 != 200 {
                    return Err(format!("send: {} {}", r.0, r.1));
                }
                lat.push(t.elapsed());
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut lat = vec![];
    for t in tasks {
        lat.extend(t.await.map_err(|e| e.to_string())??);
    }
    let secs = start.elapsed().as_secs_f64();
    let total = w.concurrent_clients * w.per_client;
    let s = Summary::of(&mut lat);
    rows.push(row(
        format!("{}-way concurrent send", w.concurrent_clients),
        "msg/s",
        Better::Higher,
        total as f64 / secs,
    ));
    rows.push(row("concurrent send p99", "ms", Better::Lower, s.p99.as_secs_f64() * 1000.0));
    log(&format!("concurrent send: {total} messages in {secs:.1} s"));

    // Initial sync, default filter, then an incremental sync with nothing new, each once
    // per reader: Synapse answers a repeated identical /sync from its response cache (for
    // two minutes), so no request is repeated.
    let readers = &users[1..users.len().min(w.sync_repeats.max(1) + 1)];
    let (mut initial, mut incremental) = (vec![], vec![]);
    let mut next_batch = String::new();
    for reader in readers {
        let (v, t) = timed(hs.sync(reader, None, 0, None)).await?;
        if !v["rooms"]["join"][room.as_str()].is_object() {
            return Err(format!("initial sync lacks the room: {v}"));
        }
        next_batch = v["next_batch"].as_str().unwrap_or_default().to_string();
        initial.push(t);
        incremental.push(timed(hs.sync(reader, Some(&next_batch), 0, None)).await?.1);
    }
    rows.push(row(
        format!("initial sync ({}-message room)", w.sequential + total),
        "ms",
        Better::Lower,
        median_ms(initial),
    ));
    rows.push(row("incremental sync, nothing new", "ms", Better::Lower, median_ms(incremental)));
    let reader = readers.last().ok_or("no reader")?;

    // Incremental sync wake-up: a long-poll is waiting, a message is sent; the time from
    // the send being issued to the sync returning with it. Measured from the send's start,
    // not its answer: a server that wakes waiters at commit often answers the sync before
    // the send's own response arrives, which a clamp to zero would hide.
    let mut times = vec![];
    for i in 0..w.sync_repeats.max(1) {
        let poll = {
            let hs = hs.clone();
            let reader = reader.clone();
            let since = next_batch.clone();
            tokio::spawn(async move {
                let v = hs.sync(&reader, Some(&since), 20_000, None).await;
                (v, Instant::now())
            })
        };
        // Give the long-poll time to reach the server and park (pacing, not a wait for
        // a result: the sync below is awaited whatever happens).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sent = Instant::now();
        let r = hs.send_text(&users[0], &room, &format!("wake {i}")).await?;
        if r.0 != 200 {
            return Err(format!("send: {} {}", r.0, r.1));
        }
        let (v, returned) = poll.await.map_err(|e| e.to_string())?;
        let v = v?;
        next_batch = v["next_batch"].as_str().unwrap_or_default().to_string();
        times.push(returned.saturating_duration_since(sent));
    }
    rows.push(row(
        "incremental sync wake-up (send issued to sync return)",
        "ms",
        Better::Lower,
        median_ms(times),
    ));
    log("syncs done");

    rows.push(rss("after load")?);
    Ok(rows)
}

/// How many times better `g` is than `s` on a row.
fn ratio(better: Better, g: f64, s: f64) -> f64 {
    match better {
        Better::Higher => g / s,
        Better::Lower => s / g,
    }
}

/// The table: Glia as shipped (`synchronous: full`), Glia with `synchronous: normal` (the
/// relaxed durability DESIGN.md section 3 allows) when it ran, Synapse, and how many times
/// better each Glia is on each row.
pub fn table(glia: &[Row], glia_normal: Option<&[Row]>, synapse: &[Row]) -> String {
    let mut out = match glia_normal {
        Some(_) => String::from(
            "| workload | Glia (sync FULL, default) | Glia (sync NORMAL) | Synapse (sync FULL) \
             | Glia FULL vs Synapse | Glia NORMAL vs Synapse |\n\
             | --- | ---: | ---: | ---: | ---: | ---: |\n",
        ),
        None => String::from(
            "| workload | Glia | Synapse | Glia vs Synapse |\n| --- | ---: | ---: | ---: |\n",
        ),
    };
    for g in glia {
        let Some(s) = synapse.iter().find(|s| s.name == g.name) else { continue };
        let name = format!(
            "{} ({}, {} is better)",
            g.name,
            g.unit,
            if g.better == Better::Higher { "higher" } else { "lower" }
        );
        let full = ratio(g.better, g.value, s.value);
        match glia_normal {
            Some(n) => {
                let (nv, nr) = match n.iter().find(|n| n.name == g.name) {
                    Some(n) => (fmt(n.value), format!("{:.1}x", ratio(g.better, n.value, s.value))),
                    None => ("-".into(), "-".into()),
                };
                out.push_str(&format!(
                    "| {name} | {} | {nv} | {} | {full:.1}x | {nr} |\n",
                    fmt(g.value),
                    fmt(s.value)
                ));
            }
            None => out.push_str(&format!(
                "| {name} | {} | {} | {full:.1}x |\n",
                fmt(g.value),
                fmt(s.value)
            )),
        }
    }
    out
}

fn fmt(v: f64) -> String {
    if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_puts_each_glia_beside_synapse_with_its_own_ratio() {
        let g = vec![
            row("send", "msg/s", Better::Higher, 400.0),
            row("sync", "ms", Better::Lower, 2.0),
        ];
        let n = vec![row("send", "msg/s", Better::Higher, 1000.0)];
        let s = vec![
            row("send", "msg/s", Better::Higher, 50.0),
            row("sync", "ms", Better::Lower, 10.0),
        ];
        let t = table(&g, Some(&n), &s);
        assert!(t.contains("| Glia (sync FULL, default) | Glia (sync NORMAL) |"), "{t}");
        assert!(
            t.contains("| send (msg/s, higher is better) | 400 | 1000 | 50.00 | 8.0x | 20.0x |"),
            "{t}"
        );
        assert!(t.contains("| sync (ms, lower is better) | 2.00 | - | 10.00 | 5.0x | - |"), "{t}");
        let t = table(&g, None, &s);
        assert!(t.contains("| send (msg/s, higher is better) | 400 | 50.00 | 8.0x |"), "{t}");
    }
}
