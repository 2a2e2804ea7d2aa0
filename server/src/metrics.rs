//! Prometheus metrics, served on an opt-in listener (`type: metrics` with
//! `enable_metrics: true`, as in Synapse): requests by route and status, latency
//! histograms, the writer's batch sizes, long-polling sync waiters and the database size.
//! Counters are plain atomics and small maps: no metrics crate is needed for this much.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const RESOLUTION_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
const CONFLICT_BUCKETS: &[f64] = &[0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// A histogram with fixed buckets (cumulative counts are computed when rendering).
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    total: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: f64) {
        let i = self.bounds.iter().position(|b| v <= *b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((v * 1e6) as u64, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {}", self.total.load(Ordering::Relaxed));
    }
}

/// Batch sizes of the database writer (recorded by its thread, which has no `App`).
pub static WRITER_BATCHES: std::sync::LazyLock<Histogram> =
    std::sync::LazyLock::new(|| Histogram::new(BATCH_BUCKETS));
/// Time spent in state resolution (only calls with more than one distinct state).
pub static STATE_RESOLUTION: std::sync::LazyLock<Histogram> =
    std::sync::LazyLock::new(|| Histogram::new(RESOLUTION_BUCKETS));
/// Conflicted state keys per resolution (keys whose event differs between the states).
pub static STATE_CONFLICTS: std::sync::LazyLock<Histogram> =
    std::sync::LazyLock::new(|| Histogram::new(CONFLICT_BUCKETS));
/// `/sync` requests currently waiting for something to happen.
pub static SYNC_WAITERS: AtomicI64 = AtomicI64::new(0);

/// Counts a waiting sync while alive.
pub struct WaiterGuard;
impl WaiterGuard {
    pub fn new() -> WaiterGuard {
        SYNC_WAITERS.fetch_add(1, Ordering::Relaxed);
        WaiterGuard
    }
}
impl Default for WaiterGuard {
    fn default() -> Self {
        WaiterGuard::new()
    }
}
impl Drop for WaiterGuard {
    fn drop(&mut self) {
        SYNC_WAITERS.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<(String, &'static str), std::sync::Arc<Histogram>>>,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

impl Metrics {
    pub fn record(&self, method: &str, route: &'static str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_string(), route, status)).or_default() += 1;
        }
        let h = match self.latency.lock() {
            Ok(mut m) => m
                .entry((method.to_string(), route))
                .or_insert_with(|| std::sync::Arc::new(Histogram::new(LATENCY_BUCKETS)))
                .clone(),
            Err(_) => return,
        };
        h.observe(seconds);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, db_path: &Path) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP glia_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE glia_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "glia_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(method),
                    escape(route)
                );
            }
        }
        out.push_str("# HELP glia_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE glia_http_request_duration_seconds histogram\n");
        let hists: Vec<_> = match self.latency.lock() {
            Ok(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => vec![],
        };
        for ((method, route), h) in hists {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(&method), escape(route));
            h.render(&mut out, "glia_http_request_duration_seconds", &labels);
        }
        out.push_str("# HELP glia_db_writer_batch_size Write jobs committed per transaction.\n");
        out.push_str("# TYPE glia_db_writer_batch_size histogram\n");
        WRITER_BATCHES.render(&mut out, "glia_db_writer_batch_size", "");
        out.push_str("# HELP glia_state_resolution_seconds Time to resolve forked room state.\n");
        out.push_str("# TYPE glia_state_resolution_seconds histogram\n");
        STATE_RESOLUTION.render(&mut out, "glia_state_resolution_seconds", "");
        out.push_str(
            "# HELP glia_state_resolution_conflicted_keys Conflicted state keys per resolution.\n",
        );
        out.push_str("# TYPE glia_state_resolution_conflicted_keys histogram\n");
        STATE_CONFLICTS.render(&mut out, "glia_state_resolution_conflicted_keys", "");
        out.push_str("# HELP glia_sync_waiters Long-polling /sync requests waiting now.\n");
        out.push_str("# TYPE glia_sync_waiters gauge\n");
        let _ = writeln!(out, "glia_sync_waiters {}", SYNC_WAITERS.load(Ordering::Relaxed));
        let size: u64 = ["", "-wal"]
            .iter()
            .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db_path.display())).ok())
            .map(|m| m.len())
            .sum();
        out.push_str("# HELP glia_database_size_bytes Size of the SQLite database and its WAL.\n");
        out.push_str("# TYPE glia_database_size_bytes gauge\n");
        let _ = writeln!(out, "glia_database_size_bytes {size}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_counts_and_buckets() {
        let m = Metrics::default();
        m.record("GET", "/_matrix/client/versions", 200, 0.002);
        m.record("GET", "/_matrix/client/versions", 200, 0.3);
        m.record("GET", "/_matrix/client/versions", 404, 0.0001);
        let text = m.render(Path::new("/nonexistent"));
        assert!(text.contains(r#"glia_http_requests_total{method="GET",route="/_matrix/client/versions",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"status="404"} 1"#));
        // Cumulative buckets: 1 request <= 1 ms, 2 <= 2.5 ms, 3 <= +Inf.
        assert!(text.contains(r#"route="/_matrix/client/versions",le="0.001"} 1"#), "{text}");
        assert!(text.contains(r#"route="/_matrix/client/versions",le="0.0025"} 2"#));
        assert!(text.contains(r#"route="/_matrix/client/versions",le="+Inf"} 3"#));
        assert!(text.contains("glia_database_size_bytes 0"));
    }
}
