//! Complement: TestUploadKey, TestKeyClaimOrdering, TestUploadKeyIdempotency and
//! TestUploadKeyIdempotencyOverlap (tests/csapi/upload_keys_test.go), plus fallback keys
//! and the key counts `/sync` reports.

use glia_harness::Deployment;
use serde_json::{Value, json};

use crate::{
    claim, cs, device_keys, fallback_key, fresh_sync, must_upload, one_time_keys, query_keys,
    sync_until,
};

/// Upload device keys and a one-time key, query them back, claim the key once.
#[tokio::test]
async fn test_upload_key() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let (key, dk) = device_keys(&alice);
    let otks = one_time_keys(&alice, &key, &["AAAAAQ"]);

    // sytest: Can upload device keys
    let body = must_upload(&alice, json!({"device_keys": dk, "one_time_keys": otks})).await;
    assert_eq!(body["one_time_key_counts"]["signed_curve25519"], 1, "{body}");

    // sytest: Should reject keys claiming to belong to a different user (or device)
    let (_, mut theirs) = device_keys(&bob);
    let r = alice.request("POST", &cs(&["keys", "upload"]), json!({"device_keys": theirs})).await;
    r.must_status(400);
    theirs["user_id"] = json!(alice.user_id);
    let r = alice.request("POST", &cs(&["keys", "upload"]), json!({"device_keys": theirs})).await;
    r.must_status(400);

    // sytest: Rejects invalid device keys (algorithms, keys and signatures are required)
    let partial = json!({"user_id": bob.user_id, "device_id": bob.device_id});
    bob.request("POST", &cs(&["keys", "upload"]), json!({"device_keys": partial}))
        .await
        .must_error(400, "M_BAD_JSON");

    // sytest: Can query device keys using POST
    let q = query_keys(&bob, &alice.user_id).await;
    let got = &q["device_keys"][&alice.user_id][&alice.device_id];
    for field in ["algorithms", "device_id", "keys", "signatures", "user_id"] {
        assert_eq!(got[field], dk[field], "{field} in {q}");
    }
    assert!(got["unsigned"].is_object(), "unsigned added: {q}");

    // sytest: Can query specific device keys using POST
    let body = json!({"device_keys": {&alice.user_id: [&alice.device_id]}});
    let q = bob.request("POST", &cs(&["keys", "query"]), body).await.must_status(200);
    assert_eq!(q["device_keys"][&alice.user_id][&alice.device_id]["keys"], dk["keys"], "{q}");
    let body = json!({"device_keys": {&alice.user_id: ["NOSUCHDEVICE"]}});
    let q = bob.request("POST", &cs(&["keys", "query"]), body).await.must_status(200);
    assert_eq!(q["device_keys"][&alice.user_id], json!({}), "{q}");

    // sytest: query for user with no keys returns empty key dict
    let q = query_keys(&alice, &bob.user_id).await;
    assert_eq!(q["device_keys"][&bob.user_id], json!({}), "{q}");

    // sytest: Can claim one time key using POST
    let c = claim(&bob, &alice.user_id, &alice.device_id).await;
    assert_eq!(c["one_time_keys"][&alice.user_id][&alice.device_id], otks, "{c}");
    // There is no one-time key left, and no fallback key.
    let c = claim(&bob, &alice.user_id, &alice.device_id).await;
    assert!(c["one_time_keys"][&alice.user_id].is_null(), "nothing left to claim: {c}");
    let counts = must_upload(&alice, json!({})).await;
    assert_eq!(counts["one_time_key_counts"]["signed_curve25519"], 0, "{counts}");
    d.destroy().await;
}

/// Per MSC4225, keys are handed out in the order they were uploaded, whatever their IDs.
#[tokio::test]
async fn test_key_claim_ordering() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let (key, _) = device_keys(&alice);
    let first = one_time_keys(&alice, &key, &["BBBBBB"]);
    let second = one_time_keys(&alice, &key, &["AAAAAA"]);
    must_upload(&alice, json!({"one_time_keys": first})).await;
    // Synapse orders by upload time in milliseconds: let the clock pass the first upload.
    let uploaded = now_ms();
    glia_harness::wait_until("the next millisecond", std::time::Duration::from_secs(5), || {
        let later = now_ms() > uploaded;
        async move { later.then_some(()) }
    })
    .await;
    must_upload(&alice, json!({"one_time_keys": second})).await;

    let c = claim(&alice, &alice.user_id, &alice.device_id).await;
    assert_eq!(c["one_time_keys"][&alice.user_id][&alice.device_id], first, "{c}");
    let c = claim(&alice, &alice.user_id, &alice.device_id).await;
    assert_eq!(c["one_time_keys"][&alice.user_id][&alice.device_id], second, "{c}");
    d.destroy().await;
}

fn otk_count(body: &Value) -> i64 {
    body["one_time_key_counts"]["signed_curve25519"].as_i64().unwrap_or(0)
}

/// Uploading the same keys again is not an error and does not count them twice; an
/// overlapping upload adds only the new ones.
#[tokio::test]
async fn test_upload_key_idempotency() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let (key, dk) = device_keys(&alice);
    let abcd = one_time_keys(&alice, &key, &["A", "B", "C", "D"]);
    let body = must_upload(&alice, json!({"device_keys": dk, "one_time_keys": abcd})).await;
    assert_eq!(otk_count(&body), 4, "{body}");
    for _ in 0..2 {
        let body = must_upload(&alice, json!({"one_time_keys": abcd})).await;
        assert_eq!(otk_count(&body), 4, "{body}");
    }
    // TestUploadKeyIdempotencyOverlap: B, C again plus a new E.
    let mut bce = one_time_keys(&alice, &key, &["E"]);
    for id in ["B", "C"] {
        let k = format!("signed_curve25519:{id}");
        bce[&k] = abcd[&k].clone();
    }
    let body = must_upload(&alice, json!({"one_time_keys": bce})).await;
    assert_eq!(otk_count(&body), 5, "{body}");

    // The same key ID with another key is refused, and nothing of that upload is kept.
    let mut conflicting = one_time_keys(&alice, &key, &["A", "F"]);
    conflicting["signed_curve25519:A"]["key"] = json!("c29tZXRoaW5nIGVsc2U");
    let r = alice
        .request("POST", &cs(&["keys", "upload"]), json!({"one_time_keys": conflicting}))
        .await;
    r.must_status(400);
    let body = must_upload(&alice, json!({})).await;
    assert_eq!(otk_count(&body), 5, "{body}");
    d.destroy().await;
}

/// Fallback keys: handed out when the one-time keys run out, never deleted by a claim,
/// reported unused in `/sync` until claimed; re-uploading the same key keeps it used.
#[tokio::test]
async fn test_fallback_keys() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let (key, dk) = device_keys(&alice);
    let otk = one_time_keys(&alice, &key, &["OTK1"]);
    let fallback = fallback_key(&alice, &key, "FB1");
    must_upload(
        &alice,
        json!({"device_keys": dk, "one_time_keys": otk, "fallback_keys": fallback}),
    )
    .await;

    let resp = fresh_sync(&alice, None).await;
    assert_eq!(resp["device_unused_fallback_key_types"], json!(["signed_curve25519"]), "{resp}");
    assert_eq!(resp["device_one_time_keys_count"]["signed_curve25519"], 1, "{resp}");

    // The one-time key first, then the fallback key, again and again.
    let c = claim(&bob, &alice.user_id, &alice.device_id).await;
    assert_eq!(c["one_time_keys"][&alice.user_id][&alice.device_id], otk, "{c}");
    for _ in 0..2 {
        let c = claim(&bob, &alice.user_id, &alice.device_id).await;
        assert_eq!(c["one_time_keys"][&alice.user_id][&alice.device_id], fallback, "{c}");
    }
    let resp = fresh_sync(&alice, None).await;
    assert_eq!(resp["device_unused_fallback_key_types"], json!([]), "used now: {resp}");
    assert_eq!(resp["device_one_time_keys_count"]["signed_curve25519"], 0, "{resp}");

    // Uploading the same fallback key does not make it unused again...
    must_upload(&alice, json!({"fallback_keys": fallback})).await;
    let resp = fresh_sync(&alice, None).await;
    assert_eq!(resp["device_unused_fallback_key_types"], json!([]), "{resp}");
    // ...a new one does.
    let new_fallback = fallback_key(&alice, &key, "FB2");
    must_upload(&alice, json!({"fallback_keys": new_fallback})).await;
    sync_until(&alice, None, "the new fallback key reported unused", |r| {
        r["device_unused_fallback_key_types"] == json!(["signed_curve25519"])
    })
    .await;
    let c = claim(&bob, &alice.user_id, &alice.device_id).await;
    assert_eq!(c["one_time_keys"][&alice.user_id][&alice.device_id], new_fallback, "{c}");
    d.destroy().await;
}

/// Logging a device out deletes its keys: they are no longer queried or claimed.
#[tokio::test]
async fn test_logout_deletes_device_keys() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let (key, dk) = device_keys(&alice);
    let otks = one_time_keys(&alice, &key, &["X1", "X2"]);
    must_upload(&alice, json!({"device_keys": dk, "one_time_keys": otks})).await;
    let q = query_keys(&bob, &alice.user_id).await;
    assert!(q["device_keys"][&alice.user_id][&alice.device_id].is_object(), "{q}");

    alice.must_do("POST", &cs(&["logout"]), json!({})).await;
    let q = query_keys(&bob, &alice.user_id).await;
    assert_eq!(q["device_keys"][&alice.user_id], json!({}), "keys gone with the device: {q}");
    let c = claim(&bob, &alice.user_id, &alice.device_id).await;
    assert!(c["one_time_keys"][&alice.user_id].is_null(), "{c}");
    d.destroy().await;
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}
