//! The appservice transaction queue is on disk: events owed to an appservice that is down
//! survive a restart of Glia and are delivered, in order, once the appservice is back.

use std::time::Duration;

use glia_harness::appservice::{FakeAppService, write_registration};
use glia_harness::process::GliaProcess;
use glia_harness::{Client, HsConfig, wait_until};
use serde_json::{Value, json};

const SIGTERM: i32 = 15;
const TXN_PATH: &str = "/_matrix/app/v1/transactions/";

#[tokio::test]
async fn owed_events_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeAppService::start().await;
    fake.set_down(true);
    let reg =
        write_registration(dir.path(), "bridge", Some(&fake.url()), &["@bridge_.*"], &[], &[]);
    let cfg = HsConfig {
        extra_yaml: format!("app_service_config_files: [\"{}\"]\n", reg.path.display()),
        ..HsConfig::default()
    };
    let mut p = GliaProcess::start(dir.path(), &cfg).await;
    let user = Client::new(&p.base_url).must_register("alice", crate::PASSWORD).await;
    let room_id = user.must_create_room(json!({"preset": "public_chat"})).await;
    let mut bot = Client::new(&p.base_url);
    bot.access_token = Some(reg.as_token.clone());
    bot.must_do("POST", &["_matrix", "client", "v3", "join", &room_id], json!({})).await;
    for i in 0..3 {
        let txn = format!("m{i}");
        let path = ["_matrix", "client", "v3", "rooms", &room_id, "send", "m.room.message", &txn];
        user.must_do("PUT", &path, json!({"msgtype": "m.text", "body": format!("msg {i}")})).await;
    }
    p.signal(SIGTERM);
    assert_eq!(p.wait_exit(Duration::from_secs(30)).await, Some(0));
    assert!(fake.requests().is_empty(), "nothing could be delivered while down");

    let p = GliaProcess::start(dir.path(), &cfg).await;
    fake.set_down(false);
    let bodies = wait_until("the owed messages after the restart", Duration::from_secs(30), || {
        let bodies: Vec<String> = fake
            .requests_to(TXN_PATH)
            .iter()
            .flat_map(|r| r.body["events"].as_array().cloned().unwrap_or_default())
            .filter(|e: &Value| e["type"] == "m.room.message")
            .filter_map(|e| e["content"]["body"].as_str().map(str::to_string))
            .collect();
        async move { (bodies.len() >= 3).then_some(bodies) }
    })
    .await;
    assert_eq!(bodies, vec!["msg 0", "msg 1", "msg 2"]);
    drop(p);
}
