//! Complement: TestDeviceListUpdates (tests/csapi/device_lists_test.go), the local-user
//! cases: `/sync`'s `device_lists.changed` / `.left` follow joins, leaves and rejoins, and
//! `/keys/query` always returns the current keys.
//!
//! Alice observes; Bob joins, leaves and changes keys. As in Complement, a "barrier" user
//! (Barry, sharing a room with Alice) changes keys and Alice syncs until she sees it, so
//! that changes from before the barrier cannot show up after it.

use glia_harness::{Client, Deployment};
use serde_json::Value;

use crate::{
    create_room, device_lists_has, fresh_sync, join_room, joined_to, leave_room, next_batch,
    query_keys, sync_until, upload_new_device_keys,
};

/// Alice sees Bob's current device keys.
async fn must_see_keys(alice: &Client, bob: &Client, keys: &Value) {
    let q = query_keys(alice, &bob.user_id).await;
    let got = &q["device_keys"][&bob.user_id][&bob.device_id];
    assert_eq!(got["keys"], keys["keys"], "Alice sees Bob's current keys: {q}");
    assert_eq!(got["algorithms"], keys["algorithms"], "{q}");
}

struct Barrier {
    barry: Client,
}

impl Barrier {
    async fn new(d: &Deployment, observer: &Client) -> Barrier {
        let barry = d.register_user(0, "barry").await;
        let room = create_room(&barry).await;
        join_room(observer, &room).await;
        sync_until(observer, None, "joined the barrier room", |r| {
            joined_to(r, &room, &observer.user_id)
        })
        .await;
        Barrier { barry }
    }

    /// Barry changes keys; sync until the observer sees it. Returns the new token.
    async fn pass(&self, observer: &Client, since: &str) -> String {
        upload_new_device_keys(&self.barry).await;
        sync_until(observer, Some(since), "the barrier", |r| {
            device_lists_has(r, "changed", &self.barry.user_id)
        })
        .await
    }
}

async fn setup(d: &Deployment) -> (Client, Client, Barrier, Value) {
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let barrier = Barrier::new(d, &alice).await;
    let (_, bob_keys) = upload_new_device_keys(&bob).await;
    (alice, bob, barrier, bob_keys)
}

/// Alice must not see Bob in `device_lists.changed` after `since`.
async fn must_not_see_change(alice: &Client, bob: &Client, since: &str) {
    let resp = fresh_sync(alice, Some(since)).await;
    assert!(
        !device_lists_has(&resp, "changed", &bob.user_id),
        "Alice was notified about Bob's device update although they share no room: {resp}"
    );
}

/// "when local user joins a room": Bob joins Alice's room.
#[tokio::test]
async fn test_device_list_updates_other_user_joins() {
    let d = Deployment::new(1).await;
    let (alice, bob, barrier, bob_keys) = setup(&d).await;
    let room = create_room(&alice).await;
    let since = next_batch(&alice).await;

    join_room(&bob, &room).await;
    let since = sync_until(&alice, Some(&since), "bob changed (joined)", |r| {
        device_lists_has(r, "changed", &bob.user_id)
    })
    .await;
    must_see_keys(&alice, &bob, &bob_keys).await;
    let since = barrier.pass(&alice, &since).await;

    let (_, bob_keys) = upload_new_device_keys(&bob).await;
    sync_until(&alice, Some(&since), "bob changed (new keys)", |r| {
        device_lists_has(r, "changed", &bob.user_id)
    })
    .await;
    must_see_keys(&alice, &bob, &bob_keys).await;
    d.destroy().await;
}

/// "when joining a room with a local user": Alice joins Bob's room.
#[tokio::test]
async fn test_device_list_updates_join() {
    let d = Deployment::new(1).await;
    let (alice, bob, barrier, bob_keys) = setup(&d).await;
    let room = create_room(&bob).await;
    let since = next_batch(&alice).await;

    join_room(&alice, &room).await;
    let since = sync_until(&alice, Some(&since), "bob changed (alice joined)", |r| {
        device_lists_has(r, "changed", &bob.user_id)
    })
    .await;
    must_see_keys(&alice, &bob, &bob_keys).await;
    let since = barrier.pass(&alice, &since).await;

    let (_, bob_keys) = upload_new_device_keys(&bob).await;
    sync_until(&alice, Some(&since), "bob changed (new keys)", |r| {
        device_lists_has(r, "changed", &bob.user_id)
    })
    .await;
    must_see_keys(&alice, &bob, &bob_keys).await;
    d.destroy().await;
}

/// "when local user leaves a room": Bob leaves; Alice gets `left`, then no more changes.
#[tokio::test]
async fn test_device_list_updates_other_user_leaves() {
    let d = Deployment::new(1).await;
    let (alice, bob, barrier, bob_keys) = setup(&d).await;
    let room = create_room(&alice).await;
    join_room(&bob, &room).await;
    let since = sync_until(&alice, None, "bob joined", |r| joined_to(r, &room, &bob.user_id)).await;
    must_see_keys(&alice, &bob, &bob_keys).await;
    let since = barrier.pass(&alice, &since).await;

    leave_room(&bob, &room).await;
    let since = sync_until(&alice, Some(&since), "bob in device_lists.left", |r| {
        device_lists_has(r, "left", &bob.user_id)
    })
    .await;

    let (_, bob_keys) = upload_new_device_keys(&bob).await;
    must_see_keys(&alice, &bob, &bob_keys).await;
    must_not_see_change(&alice, &bob, &since).await;
    d.destroy().await;
}

/// "when leaving a room with a local user": Alice leaves Bob's room.
#[tokio::test]
async fn test_device_list_updates_leave() {
    let d = Deployment::new(1).await;
    let (alice, bob, barrier, bob_keys) = setup(&d).await;
    let room = create_room(&bob).await;
    join_room(&alice, &room).await;
    let since =
        sync_until(&alice, None, "alice joined", |r| joined_to(r, &room, &alice.user_id)).await;
    must_see_keys(&alice, &bob, &bob_keys).await;
    let since = barrier.pass(&alice, &since).await;

    leave_room(&alice, &room).await;
    let since = sync_until(&alice, Some(&since), "bob in device_lists.left", |r| {
        device_lists_has(r, "left", &bob.user_id)
    })
    .await;

    let (_, bob_keys) = upload_new_device_keys(&bob).await;
    must_see_keys(&alice, &bob, &bob_keys).await;
    must_not_see_change(&alice, &bob, &since).await;
    d.destroy().await;
}

/// "when local user rejoins a room": Bob leaves, changes keys, rejoins: Alice sees a change.
#[tokio::test]
async fn test_device_list_updates_other_user_rejoins() {
    let d = Deployment::new(1).await;
    let (alice, bob, barrier, bob_keys) = setup(&d).await;
    let room = create_room(&alice).await;
    join_room(&bob, &room).await;
    let since = sync_until(&alice, None, "bob joined", |r| joined_to(r, &room, &bob.user_id)).await;
    must_see_keys(&alice, &bob, &bob_keys).await;
    let since = barrier.pass(&alice, &since).await;

    leave_room(&bob, &room).await;
    sync_until(&alice, Some(&since), "bob in device_lists.left", |r| {
        device_lists_has(r, "left", &bob.user_id)
    })
    .await;

    let (_, bob_keys) = upload_new_device_keys(&bob).await;
    join_room(&bob, &room).await;
    sync_until(&alice, Some(&since), "bob changed (rejoined)", |r| {
        device_lists_has(r, "changed", &bob.user_id)
    })
    .await;
    must_see_keys(&alice, &bob, &bob_keys).await;
    d.destroy().await;
}
