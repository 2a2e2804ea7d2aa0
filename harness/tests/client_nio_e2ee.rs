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

use std::path::PathBuf;
use std::time::Duration;

use glia_harness::client::unique_localpart;
use glia_harness::{Deployment, python};
use serde_json::Value;

const SCRIPT: &str = "harness/clients/nio_e2ee.py";

/// The venv's Python, checked to have matrix-nio with encryption support.
fn nio_python() -> PathBuf {
    python::nio_python(
        "import sys, nio.crypto; sys.exit(0 if nio.crypto.ENCRYPTION_ENABLED else \
         'matrix-nio is installed without its e2e extra (vodozemac)')",
        "matrix-nio with end-to-end encryption (matrix-nio[e2e])",
    )
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
    let out = python::run_script(
        py,
        SCRIPT,
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
