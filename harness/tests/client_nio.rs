//! A real client library drives the server: matrix-nio (Python) registers, logs in,
//! checks whoami, sets and reads its display name and logs out, through
//! `harness/clients/nio_login.py`.
//!
//! Needs the venv made by `ci/setup-python` (`<repo>/.venv/nio`), or a Python with
//! matrix-nio in `$GLIA_NIO_PYTHON`. Without it the test fails: it is never skipped.

use std::path::PathBuf;
use std::time::Duration;

use glia_harness::client::unique_localpart;
use glia_harness::{Deployment, python};
use serde_json::Value;

fn nio_python() -> PathBuf {
    python::nio_python("import nio", "matrix-nio")
}

/// matrix-nio's register (m.login.dummy), login, whoami, set/get_displayname, logout.
#[tokio::test]
async fn test_nio_register_login_profile_logout() {
    let py = nio_python();
    let d = Deployment::new(1).await;
    let base = d.hs(0).base_url.clone();
    let localpart = unique_localpart("nio");
    let out = python::run_script(
        py,
        "harness/clients/nio_login.py",
        vec![base, localpart.clone(), "nio correct horse battery".into()],
        Duration::from_secs(90),
    )
    .await;
    let line = out.stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let r: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "nio_login.py printed no JSON ({e}), exit {:?}\nstdout: {}\nstderr: {}",
            out.code, out.stdout, out.stderr
        )
    });
    assert_eq!(out.code, Some(0), "nio_login.py failed: {r}\nstderr: {}", out.stderr);
    assert_eq!(r["ok"], true, "{r}");
    eprintln!("nio_login.py: {r}");

    let user_id = r["register"]["user_id"].as_str().expect("register.user_id");
    assert!(user_id.starts_with(&format!("@{localpart}:")), "registered as {user_id}: {r}");
    assert!(r["register"]["device_id"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
    assert_eq!(r["login"]["user_id"], user_id, "{r}");
    let device = r["login"]["device_id"].as_str().expect("login.device_id");
    assert_ne!(device, r["register"]["device_id"], "login made a new device: {r}");
    assert_eq!(r["whoami"]["user_id"], user_id, "{r}");
    assert_eq!(r["whoami"]["device_id"], device, "{r}");
    assert_eq!(r["whoami"]["is_guest"], false, "{r}");
    assert_eq!(r["displayname"], "Nio Tester ✓ 🐍", "{r}");
    assert_eq!(r["logout"], true, "{r}");
    assert_eq!(r["after_logout"], "M_UNKNOWN_TOKEN", "{r}");
    d.destroy().await;
}
