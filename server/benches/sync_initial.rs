//! `/sync` of a busy room: 2,000 messages and 20 members (DESIGN.md section 9: "initial
//! `/sync` of a 2,000-message room").
//!
//! The room is built through Glia's own code paths on a real server (`glia::Server::start`
//! on a temporary data directory, SQLite, the same config format as the harness): users
//! through `glia::users::register`, the room through `glia::rooms::create::create` and
//! `glia::rooms::membership::join`, messages through `glia::rooms::send` (one event per
//! call, each built, signed, authorised and committed by the writer). Then it measures
//! `glia::sync::sync` as a member who did not send the last message:
//!
//! - initial sync (no `since`, default filter: timeline limit 10, full member state);
//! - incremental sync with nothing new (`since` = the initial `next_batch`, timeout 0).
//!
//! Run: `cargo bench -p glia --bench sync_initial`. `GLIA_BENCH_SYNCHRONOUS=normal` builds
//! the room with `synchronous: normal` (faster setup, no fsync per commit); the default is
//! the server's default, `full`. The bench prints which one it used.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use glia::app::App;
use glia::filter::Filter;
use glia::http::auth::User;
use glia::rooms::NewEvent;
use glia::rooms::create::CreateRoom;
use glia::sync::{SyncRequest, SyncToken};
use serde_json::{Value, json};

const MEMBERS: usize = 20;
const MESSAGES: usize = 2_000;

fn config_yaml(dir: &std::path::Path, synchronous: &str) -> String {
    let d = dir.display();
    format!(
        "server_name: \"bench.local\"\n\
         listeners:\n  - port: 0\n    bind_addresses: ['127.0.0.1']\n    type: http\n\
         \x20   resources:\n      - names: [client]\n\
         database:\n  name: sqlite3\n  args:\n    database: \"{d}/homeserver.db\"\n\
         \x20   synchronous: {synchronous}\n\
         signing_key_path: \"{d}/signing.key\"\n\
         media_store_path: \"{d}/media\"\n\
         enable_registration: false\n"
    )
}

/// Register a user without a password (no hashing) and log in a device.
async fn register(app: &App, localpart: &str) -> User {
    let user_id = format!("@{localpart}:{}", app.config.server_name);
    let reg = glia::users::Registration {
        user_id: user_id.clone(),
        password: None,
        is_admin: false,
        is_guest: false,
        displayname: Some(format!("Member {localpart}")),
    };
    let (user_nid, session) =
        glia::users::register(app, reg, Some((None, Some("bench".into()))), "127.0.0.1".into())
            .await
            .expect("register");
    let session = session.expect("session");
    let hash = glia::http::auth::hash_token(&session.access_token);
    let owner = app
        .db
        .read(move |c| glia::store::devices::owner_of_token(c, &hash))
        .await
        .expect("token owner")
        .expect("token");
    assert_eq!(owner.user_nid, user_nid);
    User {
        user_nid,
        user_id,
        device_nid: owner.device_nid,
        device_id: owner.device_id,
        is_admin: false,
        is_guest: false,
        appservice: None,
    }
}

struct Fixture {
    users: Vec<User>,
    room_id: String,
}

async fn build_room(app: &App) -> Fixture {
    let mut users = vec![];
    for i in 0..MEMBERS {
        users.push(register(app, &format!("member{i:02}")).await);
    }
    let req = CreateRoom {
        preset: Some("public_chat".into()),
        name: Some("Bench room".into()),
        topic: Some("2,000 messages, 20 members".into()),
        ..Default::default()
    };
    let room_id = glia::rooms::create::create(app, &users[0].user_id, req).await.expect("create");
    for u in &users[1..] {
        glia::rooms::membership::join(app, &u.user_id, &room_id, None).await.expect("join");
    }
    for i in 0..MESSAGES {
        let sender = &users[i % MEMBERS].user_id;
        let content = json!({
            "msgtype": "m.text",
            "body": format!("Message {i} of {MESSAGES}: the quick brown fox jumps over the lazy dog"),
        });
        glia::rooms::send(
            app,
            &room_id,
            sender,
            NewEvent::message("m.room.message", content),
            None,
        )
        .await
        .expect("send");
    }
    Fixture { users, room_id }
}

fn request(since: Option<SyncToken>) -> SyncRequest {
    SyncRequest { since, timeout: Duration::ZERO, filter: Filter::default(), full_state: false }
}

/// What a client would check of the initial sync: the room, its members, a limited
/// timeline ending with the last message.
fn check_initial(body: &Value, room_id: &str) {
    let room = &body["rooms"]["join"][room_id];
    assert!(room.is_object(), "room missing from the initial sync: {body}");
    let timeline = room["timeline"]["events"].as_array().expect("timeline");
    assert!(!timeline.is_empty() && timeline.len() <= 50, "timeline of {}", timeline.len());
    assert_eq!(room["timeline"]["limited"], true);
    let last = timeline.last().expect("last event");
    assert_eq!(
        last["content"]["body"],
        format!(
            "Message {} of {MESSAGES}: the quick brown fox jumps over the lazy dog",
            MESSAGES - 1
        )
    );
    let members = room["state"]["events"]
        .as_array()
        .expect("state")
        .iter()
        .chain(timeline)
        .filter(|e| e["type"] == "m.room.member")
        .count();
    assert!(members >= MEMBERS, "{members} member events in state + timeline");
}

fn main() {
    let synchronous = std::env::var("GLIA_BENCH_SYNCHRONOUS").unwrap_or_else(|_| "full".into());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (config, _) = glia::config::Config::from_yaml_str(&config_yaml(dir.path(), &synchronous))
        .unwrap_or_else(|r| panic!("bench config invalid: {:?}", r.errors));
    let server = rt.block_on(glia::Server::start(config)).expect("start glia");
    let app: Arc<App> = server.app.clone();

    let start = Instant::now();
    let fixture = rt.block_on(build_room(&app));
    let setup = start.elapsed();
    // The reader: a member who did not send the last message.
    let user = fixture.users[MEMBERS / 2].clone();
    let room_id = fixture.room_id.clone();

    let initial = rt.block_on(glia::sync::sync(&app, &user, request(None))).expect("initial sync");
    check_initial(&initial, &room_id);
    let size = serde_json::to_vec(&initial).expect("json").len();
    let since = SyncToken::parse(initial["next_batch"].as_str().expect("next_batch"))
        .expect("next_batch parses");
    let again = rt.block_on(glia::sync::sync(&app, &user, request(Some(since)))).expect("sync");
    assert!(
        again["rooms"]["join"].as_object().is_none_or(|j| j.is_empty()),
        "nothing new, yet: {again}"
    );
    println!(
        "sync_initial: room with {MESSAGES} messages and {MEMBERS} members built through \
         glia::rooms in {:.1} s (SQLite synchronous: {synchronous}); initial sync response \
         {size} bytes",
        setup.as_secs_f64()
    );

    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    c.bench_function("sync_initial/2000_messages_20_members", |b| {
        b.iter(|| rt.block_on(glia::sync::sync(&app, &user, request(None))).expect("sync"))
    });
    c.bench_function("sync_incremental/nothing_new_timeout_0", |b| {
        b.iter(|| rt.block_on(glia::sync::sync(&app, &user, request(Some(since)))).expect("sync"))
    });
    c.final_summary();

    drop(app);
    rt.block_on(server.shutdown());
}
