//! Account data reaches clients through `/sync` (Complement TestAddAccountData checks
//! it this way), and a waiting long-poll wakes when it changes.

use std::time::Duration;

use glia_harness::Deployment;
use glia_harness::sync::global_account_data_has;
use serde_json::json;

/// Complement: TestAddAccountData/can add global account data, seen in sync.
#[tokio::test]
async fn test_add_account_data_seen_in_sync() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let path =
        ["_matrix", "client", "v3", "user", &alice.user_id, "account_data", "org.example.test"];
    alice.must_do("PUT", &path, json!({"n": 1})).await;
    alice
        .sync_until(
            None,
            "account data in the initial sync",
            Duration::from_secs(10),
            global_account_data_has("org.example.test", |c| c["n"] == 1),
        )
        .await;
    d.destroy().await;
}

/// Clients read their push rules from the initial sync's account data.
#[tokio::test]
async fn test_initial_sync_has_push_rules() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    alice
        .sync_until(
            None,
            "m.push_rules in the initial sync",
            Duration::from_secs(10),
            global_account_data_has("m.push_rules", |c| c["global"]["override"].is_array()),
        )
        .await;
    d.destroy().await;
}

/// A long-poll that is already waiting returns with the change, and an incremental sync
/// carries only what changed since its token.
#[tokio::test]
async fn test_long_poll_wakes_on_account_data() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let path =
        ["_matrix", "client", "v3", "user", &alice.user_id, "account_data", "org.example.first"];
    alice.must_do("PUT", &path, json!({"v": "first"})).await;
    let since = alice
        .sync_until(
            None,
            "first",
            Duration::from_secs(10),
            global_account_data_has("org.example.first", |_| true),
        )
        .await;
    let waiter = {
        let alice = alice.clone();
        let since = since.clone();
        // A 30 s long-poll: it can only return early if the server wakes it.
        tokio::spawn(async move { alice.sync(Some(&since), 30_000, None).await })
    };
    let path2 =
        ["_matrix", "client", "v3", "user", &alice.user_id, "account_data", "org.example.second"];
    alice.must_do("PUT", &path2, json!({"v": "second"})).await;
    let resp = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .expect("the long-poll was woken well before its 30 s timeout")
        .expect("join");
    let events = resp["account_data"]["events"].as_array().expect("events");
    assert!(
        events.iter().any(|e| e["type"] == "org.example.second" && e["content"]["v"] == "second"),
        "{resp}"
    );
    assert!(
        !events.iter().any(|e| e["type"] == "org.example.first"),
        "only changes since the token: {resp}"
    );
    d.destroy().await;
}

/// An inline filter limits account data to the listed types.
#[tokio::test]
async fn test_sync_filters_account_data_types() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    for t in ["org.example.keep", "org.example.drop"] {
        let path = ["_matrix", "client", "v3", "user", &alice.user_id, "account_data", t];
        alice.must_do("PUT", &path, json!({})).await;
    }
    let filter = json!({"account_data": {"types": ["org.example.keep"]}}).to_string();
    let resp = alice.sync(None, 0, Some(&filter)).await;
    let types: Vec<&str> = resp["account_data"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(types, vec!["org.example.keep"], "{resp}");
    d.destroy().await;
}
