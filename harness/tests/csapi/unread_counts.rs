//! Unread notification counts from push-rule evaluation (TestPushSync's counts side):
//! messages notify, a mention highlights, a read receipt clears them.

use std::time::Duration;

use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// Alice and Bob in a private room; Alice sends with `send`.
async fn alice_and_bob(d: &Deployment) -> (Client, Client, String) {
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let r = alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "createRoom"],
            json!({"preset": "private_chat", "invite": [bob.user_id]}),
        )
        .await;
    let room = r["room_id"].as_str().expect("room").to_string();
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    (alice, bob, room)
}

/// Send a message as `c`; its event ID.
async fn send(c: &Client, room: &str, txn: &str, body: Value) -> String {
    c.must_do(
        "PUT",
        &["_matrix", "client", "v3", "rooms", room, "send", "m.room.message", txn],
        body,
    )
    .await["event_id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// Initial-sync `c` with `filter` until `project`, given the room's entry, is `want`.
async fn wait_for_unread(
    c: &Client,
    room: &str,
    filter: Option<&str>,
    what: &str,
    project: fn(&Value) -> Value,
    want: Value,
) {
    // Synapse answers identical initial syncs from a cache for a while; a new `timeout`
    // (which an initial sync does not wait for) makes each poll new.
    let mut poll = 0;
    glia_harness::wait::wait_until(what, WAIT, || {
        poll += 1;
        let (timeout, want) = (poll, want.clone());
        async move {
            let r = c.sync(None, timeout, filter).await;
            let got = project(&r["rooms"]["join"][room]);
            eprintln!("{what}: {got}");
            (got == want).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn test_unread_notification_counts() {
    let d = Deployment::new(1).await;
    let (alice, bob, room) = alice_and_bob(&d).await;
    send(&alice, &room, "u1", json!({"msgtype": "m.text", "body": "hello"})).await;
    let last = send(&alice, &room, "u2", json!({"msgtype": "m.text", "body": "are you there, bob?", "m.mentions": {"user_ids": [bob.user_id]}})).await;
    let counts = |r: &serde_json::Value| r["rooms"]["join"][&room]["unread_notifications"].clone();
    bob.sync_until(None, "two notifications, one highlight", WAIT, |r| {
        let c = counts(r);
        c["notification_count"] == 2 && c["highlight_count"] == 1
    })
    .await;
    bob.must_do(
        "POST",
        &["_matrix", "client", "v3", "rooms", &room, "receipt", "m.read", &last],
        json!({}),
    )
    .await;
    bob.sync_until(None, "counts cleared by the receipt", WAIT, |r| {
        let c = counts(r);
        c["notification_count"] == 0 && c["highlight_count"] == 0
    })
    .await;
    // Alice's own messages never count for her.
    alice
        .sync_until(None, "alice has nothing unread", WAIT, |r| {
            counts(r)["notification_count"] == 0
        })
        .await;
    d.destroy().await;
}

/// `unread_thread_notifications` (spec: "Threaded read receipts"): with the filter flag,
/// thread messages count under their thread root and `unread_notifications` counts the
/// main timeline only; a receipt in a thread clears that thread alone, and without the
/// flag every thread counts in `unread_notifications`. Threads with nothing unread are
/// left out (as Synapse does).
#[tokio::test]
async fn test_unread_thread_notifications() {
    let d = Deployment::new(1).await;
    let (alice, bob, room) = alice_and_bob(&d).await;
    let root = send(&alice, &room, "root", json!({"msgtype": "m.text", "body": "root"})).await;
    let mut in_thread = String::new();
    for i in 0..2 {
        in_thread = send(
            &alice,
            &room,
            &format!("t{i}"),
            json!({"msgtype": "m.text", "body": format!("reply {i}"),
                   "m.relates_to": {"rel_type": "m.thread", "event_id": root}}),
        )
        .await;
    }
    // A message relating to a thread reply (not a thread relation itself) is in the thread;
    // it is the thread's latest event, which the thread receipt below names.
    in_thread = send(
        &alice,
        &room,
        "ref",
        json!({"msgtype": "m.text", "body": "about that reply",
               "m.relates_to": {"rel_type": "m.reference", "event_id": in_thread}}),
    )
    .await;
    let threads_on = json!({"room": {"timeline": {"unread_thread_notifications": true}}});
    let threads_on = threads_on.to_string();
    let counts = |filter: Option<String>, what: &'static str, want: Value| {
        let (bob, room) = (bob.clone(), room.clone());
        async move {
            let project = |joined: &Value| {
                json!({
                    "main": joined["unread_notifications"]["notification_count"],
                    "threads": joined["unread_thread_notifications"],
                })
            };
            wait_for_unread(&bob, &room, filter.as_deref(), what, project, want).await;
        }
    };
    let thread_counts =
        |n: i64| json!({root.clone(): {"notification_count": n, "highlight_count": 0}});
    counts(
        Some(threads_on.clone()),
        "main 1, thread 3",
        json!({"main": 1, "threads": thread_counts(3)}),
    )
    .await;
    counts(None, "all four counted together", json!({"main": 4, "threads": null})).await;

    // A receipt in the thread clears the thread only.
    bob.must_do(
        "POST",
        &["_matrix", "client", "v3", "rooms", &room, "receipt", "m.read", &in_thread],
        json!({"thread_id": root}),
    )
    .await;
    counts(Some(threads_on.clone()), "thread read, main not", json!({"main": 1, "threads": null}))
        .await;
    // A main-timeline receipt clears the main timeline.
    bob.must_do(
        "POST",
        &["_matrix", "client", "v3", "rooms", &room, "receipt", "m.read", &root],
        json!({"thread_id": "main"}),
    )
    .await;
    counts(Some(threads_on), "everything read", json!({"main": 0, "threads": null})).await;
    d.destroy().await;
}

/// Highlights count per thread as notifications do, and an unthreaded receipt reads every
/// thread up to the event it names: a thread mention and a main-timeline mention both
/// highlight; a receipt without `thread_id` on the newer one clears both, and what comes
/// after it counts again.
#[tokio::test]
async fn test_unread_highlights_in_threads_and_unthreaded_receipt() {
    let d = Deployment::new(1).await;
    let (alice, bob, room) = alice_and_bob(&d).await;
    let mention = |body: &str| json!({"msgtype": "m.text", "body": body, "m.mentions": {"user_ids": [bob.user_id]}});
    let root = send(&alice, &room, "root", json!({"msgtype": "m.text", "body": "root"})).await;
    let mut reply = mention("in the thread, bob");
    reply["m.relates_to"] = json!({"rel_type": "m.thread", "event_id": root});
    send(&alice, &room, "reply", reply).await;
    let main_mention = send(&alice, &room, "main", mention("bob, in main")).await;
    let filter = json!({"room": {"timeline": {"unread_thread_notifications": true}}}).to_string();
    let counts = |what: &'static str, want: Value| {
        let (bob, room, filter) = (bob.clone(), room.clone(), filter.clone());
        async move {
            let project = |joined: &Value| {
                json!({
                    "main": joined["unread_notifications"],
                    "threads": joined["unread_thread_notifications"],
                })
            };
            wait_for_unread(&bob, &room, Some(&filter), what, project, want).await;
        }
    };
    let n = |notifications: i64, highlights: i64| json!({"notification_count": notifications, "highlight_count": highlights});
    counts(
        "main: root and mention, thread: one mention",
        json!({"main": n(2, 1), "threads": {root.clone(): n(1, 1)}}),
    )
    .await;
    bob.must_do(
        "POST",
        &["_matrix", "client", "v3", "rooms", &room, "receipt", "m.read", &main_mention],
        json!({}),
    )
    .await;
    counts("everything read", json!({"main": n(0, 0), "threads": null})).await;
    let mut later = mention("again in the thread");
    later["m.relates_to"] = json!({"rel_type": "m.thread", "event_id": root});
    send(&alice, &room, "later", later).await;
    counts(
        "the newer thread mention unread",
        json!({"main": n(0, 0), "threads": {root.clone(): n(1, 1)}}),
    )
    .await;
    d.destroy().await;
}

/// A redacted event no longer counts (Synapse removes its push actions): redacting an
/// unread mention takes it off both counts.
#[tokio::test]
async fn test_unread_counts_after_redaction() {
    let d = Deployment::new(1).await;
    let (alice, bob, room) = alice_and_bob(&d).await;
    send(&alice, &room, "plain", json!({"msgtype": "m.text", "body": "hello"})).await;
    let body =
        json!({"msgtype": "m.text", "body": "bob!", "m.mentions": {"user_ids": [bob.user_id]}});
    let mention = send(&alice, &room, "mention", body).await;
    let project = |joined: &Value| joined["unread_notifications"].clone();
    let n = |notifications: i64, highlights: i64| json!({"notification_count": notifications, "highlight_count": highlights});
    wait_for_unread(&bob, &room, None, "a message and a mention", project, n(2, 1)).await;
    alice
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "rooms", &room, "redact", &mention, "r1"],
            json!({}),
        )
        .await;
    wait_for_unread(&bob, &room, None, "the mention redacted", project, n(1, 0)).await;
    d.destroy().await;
}
