//! A real bridge framework drives Glia: mautrix-python's `AppService`
//! (`harness/clients/bridge_mautrix.py`) registers a puppet in its namespace through
//! `m.login.application_service`, joins a room, relays a "remote" message into it, and
//! receives a Matrix user's reply through Glia's transactions.
//!
//! Needs the venv made by `ci/setup-bridge` (`<repo>/.venv/mautrix`), or a Python with
//! mautrix in `$GLIA_MAUTRIX_PYTHON`. Without it the test fails: it is never skipped.
//! Against an external server it is skipped (the registration is Glia's config).

use std::time::Duration;

use glia_harness::appservice::write_registration;
use glia_harness::process::free_port;
use glia_harness::{Deployment, HsConfig, python};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn mautrix_bridge_relays_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let reg = write_registration(dir.path(), "bridge", Some(&url), &["@bridge_.*"], &[], &[]);
    let cfg = HsConfig {
        extra_yaml: format!("app_service_config_files: [\"{}\"]\n", reg.path.display()),
        ..HsConfig::default()
    };
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    let py = python::venv_python(
        "mautrix",
        "GLIA_MAUTRIX_PYTHON",
        "ci/setup-bridge",
        "import mautrix.appservice",
        "mautrix",
    );
    let user = d.register_user(0, "matrixuser").await;
    let room_id = user.must_create_room(json!({"preset": "public_chat"})).await;

    let args = vec![
        d.hs(0).base_url.clone(),
        "hs1".into(),
        reg.as_token.clone(),
        reg.hs_token.clone(),
        port.to_string(),
        room_id.clone(),
        TIMEOUT.as_secs().to_string(),
    ];
    let mut bridge = tokio::spawn(python::run_script(
        py,
        "harness/clients/bridge_mautrix.py",
        args,
        TIMEOUT * 2,
    ));

    // Remote -> Matrix: the puppet's message arrives in the user's sync.
    let puppet = "@bridge_puppet:hs1";
    let from_puppet = |resp: &Value| {
        resp["rooms"]["join"][&room_id]["timeline"]["events"].as_array().is_some_and(|evs| {
            evs.iter().any(|e| {
                e["sender"] == puppet && e["content"]["body"] == "hello from the remote network"
            })
        })
    };
    tokio::select! {
        _ = user.sync_until(None, "the puppet's message", TIMEOUT, from_puppet) => {}
        out = &mut bridge => {
            let out = out.expect("bridge task");
            panic!("the bridge stopped early ({:?})\nstdout: {}\nstderr: {}", out.code, out.stdout, out.stderr);
        }
    }
    // Matrix -> remote: the bridge hears the reply through a transaction.
    let path = ["_matrix", "client", "v3", "rooms", &room_id, "send", "m.room.message", "reply1"];
    let sent =
        user.must_do("PUT", &path, json!({"msgtype": "m.text", "body": "hello from matrix"})).await;
    let out = bridge.await.expect("bridge task");
    assert_eq!(out.code, Some(0), "bridge failed\nstdout: {}\nstderr: {}", out.stdout, out.stderr);
    let last: Value = out
        .stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON from the bridge: {}\n{}", out.stdout, out.stderr));
    assert_eq!(last["relayed"], "hello from matrix");
    assert_eq!(last["sender"], user.user_id.as_str());
    assert_eq!(last["event_id"], sent["event_id"]);
    let profile = user.get(&["_matrix", "client", "v3", "profile", puppet, "displayname"]).await;
    assert_eq!(profile.must_status(200)["displayname"], "Remote Puppet");
    d.destroy().await;
}
