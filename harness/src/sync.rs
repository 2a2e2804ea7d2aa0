//! `sync_until`: Complement's MustSyncUntil. Long-polls `/sync` from a token (or from an
//! initial sync) until a check passes on some response, or fails the test at a deadline.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::Client;

/// How long one long-poll may wait; the overall deadline is separate.
const POLL_TIMEOUT_MS: u64 = 1000;

impl Client {
    /// One `/sync` call; `since` None is an initial sync.
    pub async fn sync(&self, since: Option<&str>, timeout_ms: u64, filter: Option<&str>) -> Value {
        let mut q = format!("?timeout={timeout_ms}");
        if let Some(s) = since {
            q.push_str(&format!("&since={}", crate::client::encode_segment(s)));
        }
        if let Some(f) = filter {
            q.push_str(&format!("&filter={}", crate::client::encode_segment(f)));
        }
        self.get(&["_matrix", "client", "v3", "sync", &q]).await.must_status(200)
    }

    /// Sync until `check` accepts a response; returns that response's `next_batch`.
    /// Each response is checked on its own, as incremental syncs only carry changes.
    pub async fn sync_until(
        &self,
        since: Option<&str>,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Value) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let mut since = since.map(str::to_string);
        loop {
            let resp = self.sync(since.as_deref(), POLL_TIMEOUT_MS, None).await;
            let next = resp["next_batch"].as_str().expect("next_batch").to_string();
            if check(&resp) {
                return next;
            }
            assert!(
                Instant::now() < deadline,
                "sync_until timed out after {timeout:?} waiting for {what}"
            );
            since = Some(next);
        }
    }
}

/// A check for `sync_until`: global account data of `event_type` whose content satisfies `f`.
pub fn global_account_data_has(
    event_type: &str,
    f: impl Fn(&Value) -> bool,
) -> impl FnMut(&Value) -> bool {
    let event_type = event_type.to_string();
    move |resp: &Value| {
        resp["account_data"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| e["type"] == event_type.as_str() && f(&e["content"]))
        })
    }
}
