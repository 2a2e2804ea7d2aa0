//! Each load run for a few seconds against a debug Glia (the workspace builds
//! `target/debug/glia`; `GLIA_BINARY` overrides), checking the runs' accounting, so that
//! CI exercises the code without long runs. No speed is asserted: figures are printed.
//!
//! The runs share process-wide goose state (its logger, its ctrl-c handler), so they run
//! one after the other in one test.

use std::time::Duration;

use glia_loadtest::scenarios::{self, Rate, RunOpts};
use glia_loadtest::state_res;

fn opts(users: usize, secs: u64) -> RunOpts {
    RunOpts {
        target: None,
        glia: None,
        users,
        run_time: Duration::from_secs(secs),
        report_dir: std::env::temp_dir()
            .join(format!("glia-loadtest-smoke-{}", std::process::id())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_scenario_runs_and_accounts() {
    glia_loadtest::install_crypto_provider();

    let send = scenarios::send(&opts(4, 2)).await.expect("send run");
    println!("{send}");
    assert!(send.sent > 0, "no message accepted: {send}");
    assert_eq!(send.failed, 0, "{send}");
    assert!(send.latency.p50 <= send.latency.p99 && send.latency.p99 <= send.latency.max);

    // A rate fast enough to see refusals and honoured retries within a few seconds.
    let rate = Rate { per_second: 2.0, burst: 3.0 };
    let r = scenarios::ratelimit(&opts(4, 4), rate).await.expect("ratelimit run");
    println!("{r}");
    assert_eq!(r.errors, 0, "{r}");
    assert!(r.refused > 0, "nothing refused: {r}");
    assert_eq!(r.malformed_refusals, 0, "every refusal is 429 M_LIMIT_EXCEEDED: {r}");
    assert!(r.retries_honoured > 0, "{r}");
    assert_eq!(r.retries_accepted, r.retries_honoured, "an honoured retry_after_ms: {r}");
    // Each user's bucket allows its burst plus the rate over its active time, give or take
    // the one action in flight at either end.
    let slack = 2.0 * r.users as f64;
    assert!(
        (r.accepted as f64 - r.expected_accepted).abs() <= slack,
        "accepted {} vs expected {:.1}: {r}",
        r.accepted,
        r.expected_accepted
    );

    let f = scenarios::sync_fanout(&opts(3, 3), Duration::from_millis(100))
        .await
        .expect("sync_fanout run");
    println!("{f}");
    assert!(f.messages > 0 && f.delivered > 0, "{f}");
    assert!(f.delivered <= f.messages * f.syncers, "{f}");

    // Two federating servers, two actors on each: every change is accepted or refused by
    // the auth rules, and both servers end with the same current state.
    let sr = state_res::state_res(&opts(2, 4)).await.expect("state_res run");
    println!("{sr}");
    assert_eq!(sr.errors, 0, "{sr}");
    assert!(sr.accepted_total() > 0, "no change accepted: {sr}");
    assert!(sr.converged(), "{sr}");
    assert!(sr.only_on_1.is_empty() && sr.only_on_2.is_empty(), "{sr}");
    // The admin, the observer and the four actors are members or have left: each has an
    // m.room.member entry, and create/power_levels/join_rules are there too.
    assert!(sr.state_entries >= 6 + 3, "{sr}");
}
