//! The process lifecycle: graceful shutdown on SIGTERM/SIGINT under load, and `kill -9`
//! losing nothing that was acknowledged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use glia_harness::deployment::integrity_check;
use glia_harness::process::GliaProcess;
use glia_harness::{Client, HsConfig, wait_until};
use serde_json::{Value, json};

use crate::PASSWORD;

const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// Results that load tasks share with the scenario.
type Shared<T> = Arc<Mutex<Vec<T>>>;

fn count<T>(v: &Shared<T>) -> usize {
    v.lock().expect("lock").len()
}

fn take<T: Clone>(v: &Shared<T>) -> Vec<T> {
    v.lock().expect("lock").clone()
}

/// Registrations run from 20 tasks while the signal arrives: the process exits 0 within
/// the deadline, says it shut down cleanly, and every registration it answered 200 to is
/// there after a restart.
async fn shutdown_under_load(sig: i32, name: &'static str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = HsConfig::default();
    let mut p = GliaProcess::start(dir.path(), &cfg).await;

    let ok: Shared<String> = Default::default();
    let unexpected: Shared<String> = Default::default();
    let mut tasks = vec![];
    for t in 0..20 {
        let (ok, unexpected) = (ok.clone(), unexpected.clone());
        let c = Client::new(&p.base_url);
        tasks.push(tokio::spawn(async move {
            for i in 0..500 {
                let localpart = format!("{name}-{t}-{i}");
                let body = json!({
                    "username": localpart,
                    "password": PASSWORD,
                    "auth": {"type": "m.login.dummy"},
                });
                let path = ["_matrix", "client", "v3", "register"];
                match c.try_request("POST", &path, body, &[]).await {
                    Ok(r) if r.status == 200 => ok.lock().expect("lock").push(localpart),
                    Ok(r) => {
                        let what = format!("{}: {} {}", r.what, r.status, r.text());
                        unexpected.lock().expect("lock").push(what);
                        return;
                    }
                    // Refused or closed: the server is going away.
                    Err(_) => return,
                }
            }
        }));
    }
    wait_until("10 registrations", Duration::from_secs(120), || {
        let n = count(&ok);
        async move { (n >= 10).then_some(()) }
    })
    .await;
    let before = count(&ok);
    p.signal(sig);
    let code = p.wait_exit(Duration::from_secs(30)).await;
    let log = p.log();
    assert_eq!(code, Some(0), "exit code after signal {sig}; log:\n{log}");
    for t in tasks {
        t.await.expect("load task");
    }
    assert!(log.contains("shutting down"), "log:\n{log}");
    assert!(log.contains("shut down cleanly"), "log:\n{log}");
    assert!(!log.contains("did not finish within the grace period"), "log:\n{log}");
    let unexpected = take(&unexpected);
    assert!(
        unexpected.is_empty(),
        "during shutdown a request gets its answer or no connection, not an error: {unexpected:#?}"
    );
    let registered = take(&ok);
    eprintln!(
        "signal {sig}: {before} registrations before it, {} answered 200 in all",
        registered.len()
    );

    let p = GliaProcess::start(dir.path(), &cfg).await;
    let c = Client::new(&p.base_url);
    for localpart in &registered {
        let r = c.login(localpart, PASSWORD, json!({})).await;
        assert_eq!(
            r.status,
            200,
            "{localpart} was registered (200) before the signal but cannot log in: {}",
            r.text()
        );
    }
    stop(p).await;
}

/// Stop a server gracefully and check its database.
async fn stop(mut p: GliaProcess) {
    p.signal(SIGTERM);
    let code = p.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "log:\n{}", p.log());
    assert_eq!(integrity_check(&p.db_path), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_is_graceful() {
    shutdown_under_load(SIGTERM, "term").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_under_load_is_graceful() {
    shutdown_under_load(SIGINT, "int").await;
}

/// `kill -9` in the middle of concurrent writes: after a restart the database is intact and
/// every write that was answered 200 reads back with its content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_write() {
    const WRITERS: usize = 6;
    const ACKED_BEFORE_KILL: usize = 200;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = HsConfig::default();
    let mut p = GliaProcess::start(dir.path(), &cfg).await;
    let base = Client::new(&p.base_url);
    let mut users = vec![];
    for t in 0..WRITERS {
        users.push(base.must_register(&format!("writer{t}"), PASSWORD).await);
    }

    // (writer, account data type, content) of every write answered 200.
    let acked: Shared<(usize, String, Value)> = Default::default();
    let unexpected: Shared<String> = Default::default();
    let run = rand::random::<u32>();
    let mut tasks = vec![];
    for (t, c) in users.iter().cloned().enumerate() {
        let (acked, unexpected) = (acked.clone(), unexpected.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..100_000 {
                let data_type = format!("org.glia.test.durability.{i}");
                let content = json!({
                    "writer": t,
                    "i": i,
                    "run": run,
                    "pad": "x".repeat(i % 97),
                });
                let path =
                    ["_matrix", "client", "v3", "user", &c.user_id, "account_data", &data_type];
                match c.try_request("PUT", &path, content.clone(), &[]).await {
                    Ok(r) if r.status == 200 => {
                        acked.lock().expect("lock").push((t, data_type, content));
                    }
                    Ok(r) => {
                        let what = format!("{}: {} {}", r.what, r.status, r.text());
                        unexpected.lock().expect("lock").push(what);
                        return;
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    wait_until(
        &format!("{ACKED_BEFORE_KILL} acknowledged writes"),
        Duration::from_secs(120),
        || {
            let n = count(&acked);
            async move { (n >= ACKED_BEFORE_KILL).then_some(()) }
        },
    )
    .await;
    p.signal(SIGKILL);
    let code = p.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(code, None, "killed by a signal, not exited");
    for t in tasks {
        t.await.expect("writer task");
    }
    let unexpected = take(&unexpected);
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    let acked = take(&acked);
    assert!(acked.len() >= ACKED_BEFORE_KILL);

    let p = GliaProcess::start(dir.path(), &cfg).await;
    assert_eq!(integrity_check(&p.db_path), "ok", "after kill -9 and restart");
    for (t, data_type, content) in &acked {
        let c = &users[*t];
        let path = ["_matrix", "client", "v3", "user", &c.user_id, "account_data", data_type];
        let r = c.get(&path).await;
        assert_eq!(
            r.status,
            200,
            "acknowledged write {data_type} of {} lost after kill -9: {}",
            c.user_id,
            r.text()
        );
        assert_eq!(&r.json(), content, "{}", r.what);
    }
    eprintln!("{} acknowledged writes survived kill -9", acked.len());
    stop(p).await;
}

/// `kill -9` while many clients send to one room (sends to a room are pipelined: answered
/// after their commit, with later sends queued behind them): after a restart every event
/// ID that was answered 200 reads back with its content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_send() {
    const SENDERS: usize = 8;
    const ACKED_BEFORE_KILL: usize = 200;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = HsConfig::default();
    let mut p = GliaProcess::start(dir.path(), &cfg).await;
    let base = Client::new(&p.base_url);
    let mut users = vec![];
    for t in 0..SENDERS {
        users.push(base.must_register(&format!("sender{t}"), PASSWORD).await);
    }
    let room = users[0].must_create_room(json!({"preset": "public_chat"})).await;
    for u in &users[1..] {
        u.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    }

    // (sender, event ID, body) of every send answered 200.
    let acked: Shared<(usize, String, String)> = Default::default();
    let unexpected: Shared<String> = Default::default();
    let mut tasks = vec![];
    for (t, c) in users.iter().cloned().enumerate() {
        let (acked, unexpected, room) = (acked.clone(), unexpected.clone(), room.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..100_000 {
                let body = format!("sender {t} message {i}");
                let txn = format!("k9-{i}");
                let path =
                    ["_matrix", "client", "v3", "rooms", &room, "send", "m.room.message", &txn];
                let content = json!({"msgtype": "m.text", "body": body});
                match c.try_request("PUT", &path, content, &[]).await {
                    Ok(r) if r.status == 200 => {
                        let id = r.json()["event_id"].as_str().unwrap_or_default().to_string();
                        acked.lock().expect("lock").push((t, id, body));
                    }
                    Ok(r) => {
                        let what = format!("{}: {} {}", r.what, r.status, r.text());
                        unexpected.lock().expect("lock").push(what);
                        return;
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    wait_until(
        &format!("{ACKED_BEFORE_KILL} acknowledged sends"),
        Duration::from_secs(120),
        || {
            let n = count(&acked);
            async move { (n >= ACKED_BEFORE_KILL).then_some(()) }
        },
    )
    .await;
    p.signal(SIGKILL);
    let code = p.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(code, None, "killed by a signal, not exited");
    for t in tasks {
        t.await.expect("sender task");
    }
    let unexpected = take(&unexpected);
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    let acked = take(&acked);

    let p = GliaProcess::start(dir.path(), &cfg).await;
    assert_eq!(integrity_check(&p.db_path), "ok", "after kill -9 and restart");
    for (t, id, body) in &acked {
        let c = &users[*t];
        let r = c.get(&["_matrix", "client", "v3", "rooms", &room, "event", id]).await;
        assert_eq!(r.status, 200, "acknowledged send {id} lost after kill -9: {}", r.text());
        assert_eq!(r.json()["content"]["body"], body.as_str(), "{}", r.what);
    }
    // The room still takes messages after the restart (its tips were stored).
    let r = users[0]
        .try_request(
            "PUT",
            &["_matrix", "client", "v3", "rooms", &room, "send", "m.room.message", "after"],
            json!({"msgtype": "m.text", "body": "after"}),
            &[],
        )
        .await
        .expect("send after restart");
    assert_eq!(r.status, 200, "{}: {}", r.what, r.text());
    eprintln!("{} acknowledged sends survived kill -9", acked.len());
    stop(p).await;
}
