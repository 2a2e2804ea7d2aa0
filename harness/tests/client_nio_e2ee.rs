//! Two real client-library users exchange end-to-end encrypted messages through the
//! server: matrix-nio with its `e2e` extra (vodozemac) registers alice and bob, alice
//! creates a megolm-encrypted room and invites bob, they trust each other's devices, and
//! each decrypts the message the other sent (`harness/clients/nio_e2ee.py`).
//!
//! This exercises, as a real client uses them: `/keys/upload`, `/keys/query`,
//! `/keys/claim`, `/sendToDevice` with Olm-encrypted room keys, and the `to_device`,
//! `device_lists` and `device_one_time_keys_count` sections of `/sync`.
//!
//! Needs the venv made by `ci/setup-python` (`<repo>/.venv/nio`, matrix-nio[e2e]), or a
//! Python with matrix-nio and vodozemac in `$GLIA_NIO_PYTHON`. Without it the test fails:
//! it is never skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use glia_harness::Deployment;
use glia_harness::client::unique_localpart;
use serde_json::Value;

const SCRIPT: &str = "harness/clients/nio_e2ee.py";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv's Python, checked to have matrix-nio with encryption support.
fn nio_python() -> PathBuf {
    let py = match std::env::var_os("GLIA_NIO_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(".venv/nio/bin/python"),
    };
    assert!(
        py.exists(),
        "{} is missing: run ci/setup-python to install matrix-nio[e2e] (or set GLIA_NIO_PYTHON)",
        py.display()
    );
    let check = Command::new(&py)
        .args([
            "-c",
            "import sys, nio.crypto; sys.exit(0 if nio.crypto.ENCRYPTION_ENABLED else \
             'matrix-nio is installed without its e2e extra (vodozemac)')",
        ])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}; run ci/setup-python", py.display()));
    assert!(
        check.status.success(),
        "{} cannot run matrix-nio with end-to-end encryption: run ci/setup-python\n{}",
        py.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    py
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run the script to completion (killing it after `timeout`) off the runtime's threads,
/// so the in-process server keeps serving it.
async fn run_script(py: PathBuf, args: Vec<String>, timeout: Duration) -> Output {
    tokio::task::spawn_blocking(move || {
        let script = repo_root().join(SCRIPT);
        let mut child = Command::new(&py)
            .arg(&script)
            .args(&args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} {}: {e}", py.display(), script.display()));
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break Some(s);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = child.wait_with_output().expect("script output");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            status.is_some(),
            "{SCRIPT} did not finish within {timeout:?}\nstdout: {stdout}\nstderr: {stderr}"
        );
        Output { code: status.and_then(|s| s.code()), stdout, stderr }
    })
    .await
    .expect("script task")
}

/// One direction of the exchange: ciphertext on the server, the plaintext on the other side.
fn check_exchange(r: &Value, key: &str, body: &str, room_id: &str) {
    let x = &r[key];
    assert_eq!(x["server_type"], "m.room.encrypted", "{key}: the server held plaintext: {r}");
    assert_eq!(x["decrypted_type"], "m.room.message", "{key}: not decrypted: {r}");
    assert_eq!(x["decrypted_body"], body, "{key}: wrong plaintext: {r}");
    assert_eq!(x["decrypted"], true, "{key}: nio did not decrypt it: {r}");
    assert_eq!(x["verified"], true, "{key}: sender's device not trusted: {r}");
    assert!(x["event_id"].as_str().is_some_and(|e| e.starts_with('$')), "{key}: {r}");
    assert!(x["session_id"].as_str().is_some_and(|s| !s.is_empty()), "{key}: {r}");
    assert!(room_id.starts_with('!'), "{r}");
}

/// alice -> bob and bob -> alice over megolm, with Olm-encrypted room keys to-device.
#[tokio::test]
async fn test_nio_e2ee_two_users_exchange_encrypted_messages() {
    let py = nio_python();
    let d = Deployment::new(1).await;
    let base = d.hs(0).base_url.clone();
    let (alice, bob) = (unique_localpart("nio-alice"), unique_localpart("nio-bob"));
    let out = run_script(
        py,
        vec![base, alice.clone(), bob.clone(), "nio correct horse battery".into()],
        // The script gives up by itself after 150 s.
        Duration::from_secs(180),
    )
    .await;
    let line = out.stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let r: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{SCRIPT} printed no JSON ({e}), exit {:?}\nstdout: {}\nstderr: {}",
            out.code, out.stdout, out.stderr
        )
    });
    assert_eq!(
        out.code,
        Some(0),
        "{SCRIPT} failed at step {:?}: {}\nresults: {r}\nstderr: {}",
        r["step"],
        r["error"],
        out.stderr
    );
    assert_eq!(r["ok"], true, "{r}");
    eprintln!("{SCRIPT}: {r}");

    let alice_id = r["alice"]["user_id"].as_str().expect("alice.user_id");
    let bob_id = r["bob"]["user_id"].as_str().expect("bob.user_id");
    assert!(alice_id.starts_with(&format!("@{alice}:")), "{r}");
    assert!(bob_id.starts_with(&format!("@{bob}:")), "{r}");
    for who in ["alice", "bob"] {
        assert!(
            r[who]["otk_counts"]["signed_curve25519"].as_i64().is_some_and(|n| n > 0),
            "{who}'s one-time keys were not counted: {r}"
        );
    }
    // Each trusts exactly the other's one device, learnt through device_lists + keys/query.
    assert_eq!(r["alice"]["trusted"], serde_json::json!([r["bob"]["device_id"]]), "{r}");
    assert_eq!(r["bob"]["trusted"], serde_json::json!([r["alice"]["device_id"]]), "{r}");
    let changed = |who: &str, other: &str| {
        r["device_list_changed"][who].as_array().is_some_and(|a| a.iter().any(|u| u == other))
    };
    assert!(changed("alice", bob_id), "bob's join never put him in alice's device_lists: {r}");
    assert!(changed("bob", alice_id), "joining never put alice in bob's device_lists: {r}");
    // The room keys arrived as Olm-encrypted to-device messages that nio decrypted.
    for who in ["alice", "bob"] {
        assert!(
            r["to_device"][who].as_array().is_some_and(|a| a.iter().any(|t| t == "RoomKeyEvent")),
            "{who} received no m.room_key over to-device: {r}"
        );
    }
    let room_id = r["room_id"].as_str().expect("room_id");
    check_exchange(&r, "alice_to_bob", "Hello Bob, this is secret 🔐", room_id);
    check_exchange(&r, "bob_to_alice", "Hi Alice, I read you: secret received ✓", room_id);
    assert_ne!(
        r["alice_to_bob"]["session_id"], r["bob_to_alice"]["session_id"],
        "each sender has its own megolm session: {r}"
    );
    d.destroy().await;
}
