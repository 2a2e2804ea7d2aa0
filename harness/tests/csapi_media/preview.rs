//! URL previews are off by default (Synapse's `url_preview_enabled: false`): both
//! endpoints answer as ones the server does not have, 404 `M_UNRECOGNIZED`, after
//! authentication. (The SSRF address checks that guard them when on are unit tests in
//! server/src/media/preview.rs.)

use glia_harness::Deployment;

use crate::send;

#[tokio::test]
async fn test_url_preview_disabled_by_default() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    for path in [
        "/_matrix/client/v1/media/preview_url?url=https%3A%2F%2Fmatrix.org",
        "/_matrix/media/v3/preview_url?url=http%3A%2F%2F127.0.0.1%3A8008%2F",
    ] {
        send(&alice, "GET", path, None, None, true).await.must_error(404, "M_UNRECOGNIZED");
    }
    d.destroy().await;
}
