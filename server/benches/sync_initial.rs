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

use std::time::{Duration, Instant};

mod common;

use common::Bench;
use criterion::Criterion;
use glia::filter::Filter;
use glia::http::auth::User;
use glia::rooms::NewEvent;
use glia::sync::{SyncRequest, SyncToken};
use serde_json::{Value, json};

const MEMBERS: usize = 20;
const MESSAGES: usize = 2_000;

struct Fixture {
    users: Vec<User>,
    room_id: String,
}

async fn build_room(bench: &Bench) -> Fixture {
    let app = &bench.app;
    let (users, room_id) = bench.room(MEMBERS, "Bench room").await;
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
    let bench = Bench::start();
    let (rt, app, synchronous) = (&bench.rt, bench.app.clone(), bench.synchronous.clone());

    let start = Instant::now();
    let fixture = rt.block_on(build_room(&bench));
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
    bench.shutdown();
}
