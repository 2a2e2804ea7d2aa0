//! TestMediaConfig (sytest "Can read configuration endpoint"): `m.upload.size` on the
//! authenticated and the legacy `/config`, and it is the configured `max_upload_size`.

use glia_harness::{Deployment, HsConfig};
use serde_json::Value;

use crate::send;

#[tokio::test]
async fn test_media_config() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let mut sizes = vec![];
    for path in
        ["/_matrix/client/v1/media/config", "/_matrix/media/v3/config", "/_matrix/media/r0/config"]
    {
        let body = send(&alice, "GET", path, None, None, true).await.must_status(200);
        let size = body["m.upload.size"].as_u64().unwrap_or_else(|| panic!("{path}: {body}"));
        assert!(size > 0, "{body}");
        sizes.push(size);
        send(&alice.unauthed(), "GET", path, None, None, false)
            .await
            .must_error(401, "M_MISSING_TOKEN");
    }
    assert!(sizes.windows(2).all(|w| w[0] == w[1]), "every /config agrees: {sizes:?}");
    d.destroy().await;
}

/// Needs a server configuration: `max_upload_size` is what `/config` reports.
#[tokio::test]
async fn test_media_config_reports_max_upload_size() {
    let cfg = HsConfig { extra_yaml: "max_upload_size: 3M\n".into(), ..Default::default() };
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    let alice = d.register_user(0, "alice").await;
    let body = send(&alice, "GET", "/_matrix/client/v1/media/config", None, None, true)
        .await
        .must_status(200);
    assert_eq!(body["m.upload.size"], Value::from(3 * 1024 * 1024), "{body}");
    d.destroy().await;
}
