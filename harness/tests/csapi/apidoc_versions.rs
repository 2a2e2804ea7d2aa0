//! TestVersionStructure, TestServerCapabilities, well-known and CORS.

use glia_harness::{Deployment, matchers};
use serde_json::Value;

/// Complement: TestVersionStructure.
#[tokio::test]
async fn test_version_structure() {
    let d = Deployment::new(1).await;
    let body = d.client(0).get(&["_matrix", "client", "versions"]).await.must_status(200);
    let versions = body["versions"].as_array().expect("versions is an array");
    assert!(!versions.is_empty());
    for v in versions {
        let v = v.as_str().expect("each version is a string");
        let ok = v.strip_prefix('r').or_else(|| v.strip_prefix('v')).is_some_and(|rest| {
            rest.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        assert!(ok, "version {v:?} does not look like rX.Y.Z or vX.Y");
    }
    if let Some(u) = body.get("unstable_features") {
        assert!(u.as_object().is_some_and(|m| m.values().all(Value::is_boolean)));
    }
    d.destroy().await;
}

/// Complement: TestServerCapabilities.
#[tokio::test]
async fn test_server_capabilities() {
    let d = Deployment::new(1).await;
    let unauthed = d.client(0).get(&["_matrix", "client", "v3", "capabilities"]).await;
    unauthed.must_error(401, "M_MISSING_TOKEN");
    let alice = d.register_user(0, "alice").await;
    let body =
        alice.must_do("GET", &["_matrix", "client", "v3", "capabilities"], Value::Null).await;
    let enabled = matchers::json_key_present(&body, "capabilities.m\\.change_password.enabled");
    assert!(enabled.is_boolean(), "{body}");
    let default = matchers::json_key_present(&body, "capabilities.m\\.room_versions.default");
    let default = default.as_str().expect("default room version is a string").to_string();
    let path = format!("capabilities.m\\.room_versions.available.{}", default.replace('.', "\\."));
    matchers::json_key_present(&body, &path);
    d.destroy().await;
}

/// The spec's CORS headers on every response, and OPTIONS answered without auth.
#[tokio::test]
async fn test_cors_and_options() {
    let d = Deployment::new(1).await;
    let c = d.client(0);
    for r in [
        c.get(&["_matrix", "client", "versions"]).await,
        c.request("OPTIONS", &["_matrix", "client", "v3", "login"], Value::Null).await,
        c.get(&["_matrix", "client", "v3", "account", "whoami"]).await,
    ] {
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{}", r.what);
        let methods = r.header("access-control-allow-methods").unwrap_or_default();
        for m in ["GET", "POST", "PUT", "DELETE", "OPTIONS"] {
            assert!(methods.contains(m), "{}: {methods}", r.what);
        }
        let headers = r.header("access-control-allow-headers").unwrap_or_default().to_lowercase();
        for h in ["x-requested-with", "content-type", "authorization"] {
            assert!(headers.contains(h), "{}: {headers}", r.what);
        }
    }
    let pre =
        c.request("OPTIONS", &["_matrix", "client", "v3", "account", "whoami"], Value::Null).await;
    assert!(pre.status == 200 || pre.status == 204, "preflight: {}", pre.status);
    d.destroy().await;
}

/// `.well-known/matrix/client` points clients at the homeserver.
#[tokio::test]
async fn test_well_known_client() {
    let d = Deployment::new(1).await;
    let r = d.client(0).get(&["/.well-known/matrix/client"]).await;
    if d.is_external() && r.status == 404 {
        // Synapse serves it only with public_baseurl set; nothing to check then.
        return d.destroy().await;
    }
    let body = r.must_status(200);
    let base = body["m.homeserver"]["base_url"].as_str().expect("base_url");
    assert!(base.starts_with("http://") || base.starts_with("https://"), "{body}");
    d.destroy().await;
}
