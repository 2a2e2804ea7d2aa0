//! Complement: TestKeyChangesLocal (tests/csapi/keychanges_test.go), plus a user's own
//! device changes in `/sync` and `/keys/changes` (which need no room).

use glia_harness::Deployment;
use serde_json::json;

use crate::{
    create_room, cs, device_keys, device_lists_has, join_room, joined_to, must_upload, next_batch,
    one_time_keys, query_keys, sync_until,
};

/// A new login (with keys) of a user Alice shares a room with shows up in her
/// `device_lists.changed` and in `/keys/changes`, and `/keys/query` lists both devices.
#[tokio::test]
async fn test_key_changes_local() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let (key, dk) = device_keys(&bob);
    must_upload(
        &bob,
        json!({"device_keys": dk, "one_time_keys": one_time_keys(&bob, &key, &["B1"])}),
    )
    .await;

    let room = create_room(&alice).await;
    join_room(&bob, &room).await;
    let since = sync_until(&alice, None, "bob joined", |r| joined_to(r, &room, &bob.user_id)).await;

    // A new device for Bob, with keys.
    let bob2 = bob.unauthed().must_login(&bob.user_id, &bob.password).await;
    let (key2, dk2) = device_keys(&bob2);
    must_upload(
        &bob2,
        json!({"device_keys": dk2, "one_time_keys": one_time_keys(&bob2, &key2, &["B2"])}),
    )
    .await;

    let next = sync_until(&alice, Some(&since), "bob in device_lists.changed", |r| {
        device_lists_has(r, "changed", &bob.user_id)
    })
    .await;
    let changes = alice
        .get(&cs(&["keys", "changes", &format!("?from={since}&to={next}")]))
        .await
        .must_status(200);
    assert_eq!(changes["changed"], json!([bob.user_id]), "only Bob changed: {changes}");

    let q = query_keys(&alice, &bob.user_id).await;
    let devices = q["device_keys"][&bob.user_id].as_object().expect("bob's devices");
    assert_eq!(devices.len(), 2, "both of Bob's devices: {q}");
    d.destroy().await;
}

/// With no room at all, a user still hears about their own devices: a second device's keys
/// and its deletion (Synapse includes the user's own ID when their devices change).
#[tokio::test]
async fn test_own_device_changes_without_rooms() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let since = next_batch(&alice).await;

    let other = alice.unauthed().must_login(&alice.user_id, &alice.password).await;
    let (_, dk) = device_keys(&other);
    must_upload(&other, json!({"device_keys": dk})).await;
    let next = sync_until(&alice, Some(&since), "own new device in device_lists.changed", |r| {
        device_lists_has(r, "changed", &alice.user_id)
    })
    .await;
    let changes = alice
        .get(&cs(&["keys", "changes", &format!("?from={since}&to={next}")]))
        .await
        .must_status(200);
    assert_eq!(changes["changed"], json!([alice.user_id]), "{changes}");

    // Logging the other device out is a change too, and its keys are gone.
    other.must_do("POST", &cs(&["logout"]), json!({})).await;
    sync_until(&alice, Some(&next), "own device deletion in device_lists.changed", |r| {
        device_lists_has(r, "changed", &alice.user_id)
    })
    .await;
    let q = query_keys(&alice, &alice.user_id).await;
    assert!(q["device_keys"][&alice.user_id][&other.device_id].is_null(), "{q}");
    d.destroy().await;
}

/// A long-poll that is already waiting wakes up for a device-list change.
#[tokio::test]
async fn test_long_poll_wakes_on_device_list_change() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let since = next_batch(&alice).await;
    let other = alice.unauthed().must_login(&alice.user_id, &alice.password).await;
    // The login itself may or may not count as a change (Synapse: yes); start from after it.
    let since = sync_until(&alice, Some(&since), "settled", |_| true).await;
    let waiter = {
        let alice = alice.clone();
        let since = since.clone();
        tokio::spawn(async move { alice.sync(Some(&since), 30_000, None).await })
    };
    d.until_parked(0, "the long-poll to wait", |app| app.notifier.waiting.count()).await;
    let (_, dk) = device_keys(&other);
    must_upload(&other, json!({"device_keys": dk})).await;
    let resp = tokio::time::timeout(std::time::Duration::from_secs(20), waiter)
        .await
        .expect("woken well before the 30 s timeout")
        .expect("join");
    assert!(device_lists_has(&resp, "changed", &alice.user_id), "{resp}");
    d.destroy().await;
}

/// `/keys/changes` needs `from`, and refuses garbage tokens.
#[tokio::test]
async fn test_key_changes_bad_tokens() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    alice.get(&cs(&["keys", "changes"])).await.must_client_error();
    alice.get(&cs(&["keys", "changes", "?from=garbage&to=garbage"])).await.must_client_error();
    d.destroy().await;
}
