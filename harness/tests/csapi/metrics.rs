//! Prometheus metrics on an opt-in `type: metrics` listener (Glia configuration only).

use glia_harness::{Deployment, HsConfig};
use serde_json::json;

#[tokio::test]
async fn test_metrics_listener() {
    let Some(d) =
        Deployment::with_config(1, HsConfig { metrics: true, ..Default::default() }).await
    else {
        return;
    };
    let alice = d.register_user(0, "alice").await;
    alice.must_do("POST", &["_matrix", "client", "v3", "createRoom"], json!({})).await;
    d.client(0)
        .get(&["_matrix", "client", "v3", "nonexistent"])
        .await
        .must_error(404, "M_UNRECOGNIZED");
    let addrs = &d.hs(0).server.as_ref().expect("in-process").addrs;
    assert_eq!(addrs.len(), 2, "client and metrics listeners");
    let metrics = glia_harness::Client::new(&format!("http://{}", addrs[1]));
    let r = metrics.get(&["_synapse", "metrics"]).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    for needle in [
        r#"glia_http_requests_total{method="POST",route="/_matrix/client/{v}/createRoom",status="200"} 1"#,
        r#"route="unrecognized",status="404"} 1"#,
        "glia_http_request_duration_seconds_bucket{",
        "glia_db_writer_batch_size_count ",
        "glia_sync_waiters ",
        "glia_database_size_bytes ",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let size: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("glia_database_size_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .expect("size");
    assert!(size > 0, "the database has a size");
    // The metrics listener serves nothing else, and the client listener no metrics.
    metrics.get(&["_matrix", "client", "versions"]).await.must_error(404, "M_UNRECOGNIZED");
    d.client(0).get(&["_synapse", "metrics"]).await.must_error(404, "M_UNRECOGNIZED");
    d.destroy().await;
}
