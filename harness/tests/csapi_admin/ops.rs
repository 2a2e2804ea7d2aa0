//! Operations: `/health`, and `glia backup` of a running server that a new server then
//! starts from.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use glia_harness::process::{GliaProcess, run_glia};
use glia_harness::{Client, Deployment, HsConfig, Target, wait_until};
use serde_json::json;

use crate::{PASSWORD, create_room, message_bodies, send_text};

/// `GET /health` answers 200 `OK` without authentication (on every listener; the harness
/// starts one).
#[tokio::test]
async fn test_health() {
    let d = Deployment::new(1).await;
    let r = d.client(0).get(&["health"]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "OK");
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/plain")), "{r:?}");
    d.destroy().await;
}

/// Back up a server while it takes writes, start a second server from the backup, and
/// log in there: the accounts, rooms and messages acknowledged before the backup are
/// there, with the same signing key. (Glia only: it runs the `glia` binary.)
#[tokio::test]
async fn test_backup_of_running_server() {
    if Target::from_env() != Target::InProcess {
        eprintln!("SKIP: this scenario runs the glia binary, not an external server");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let server = GliaProcess::start(dir.path(), &HsConfig::default()).await;
    let alice = Client::new(&server.base_url).must_register("alice", PASSWORD).await;
    let room = create_room(&alice, json!({"name": "Kept"})).await;
    send_text(&alice, &room, "before the backup").await;
    let media = dir.path().join("media");
    std::fs::create_dir_all(media.join("aa")).expect("media dir");
    std::fs::write(media.join("aa/bbcc"), b"a media file").expect("media file");

    // Writes keep arriving while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let load = {
        let (alice, room, stop, sent) = (alice.clone(), room.clone(), stop.clone(), sent.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                send_text(&alice, &room, "during the backup").await;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    wait_until("writes to be flowing", Duration::from_secs(30), || {
        let n = sent.load(Ordering::Relaxed);
        async move { (n >= 3).then_some(()) }
    })
    .await;
    let dest = tempfile::tempdir().expect("tempdir");
    let backup_dir = dest.path().join("backup");
    let config = server.config_path.to_str().expect("path").to_string();
    let out = run_glia(
        ["backup", "-c", &config, backup_dir.to_str().expect("path")],
        None,
        Duration::from_secs(60),
    )
    .await;
    out.must_succeed();
    stop.store(true, Ordering::Relaxed);
    load.await.expect("load");
    assert!(out.stdout.contains("Backup complete"), "{out}");
    // A user registered after the backup is not in it.
    Client::new(&server.base_url).must_register("later", PASSWORD).await;

    // A second backup into the same place is refused.
    let again = run_glia(
        ["backup", "-c", &config, backup_dir.to_str().expect("path")],
        None,
        Duration::from_secs(60),
    )
    .await;
    again.must_fail();
    assert!(again.output().contains("exists already"), "{again}");

    for f in ["homeserver.db", "signing.key", "media/aa/bbcc"] {
        assert!(backup_dir.join(f).exists(), "{f} is in the backup: {out}");
    }
    assert_eq!(
        std::fs::read(backup_dir.join("signing.key")).expect("key"),
        std::fs::read(dir.path().join("signing.key")).expect("key"),
    );

    // A new server (on another port) from the backup.
    let restored = GliaProcess::start(&backup_dir, &HsConfig::default()).await;
    assert_ne!(restored.base_url, server.base_url);
    let alice2 = Client::new(&restored.base_url).must_login("alice", PASSWORD).await;
    let bodies = message_bodies(&alice2, &room).await;
    assert!(bodies.contains(&"before the backup".to_string()), "{bodies:?}");
    let name = alice2
        .get(&["_matrix", "client", "v3", "rooms", &room, "state", "m.room.name", ""])
        .await
        .must_status(200);
    assert_eq!(name["name"], "Kept");
    // It can take new writes too.
    send_text(&alice2, &room, "after the restore").await;
    let r = Client::new(&restored.base_url).login("later", PASSWORD, json!({})).await;
    assert_eq!(r.status, 403, "registered after the backup: {}", r.text());
    assert!(sent.load(Ordering::Relaxed) > 0, "the load ran during the backup");
    drop(restored);
    drop(server);
}
