//! One PDU's cost on the send path, on a realistic room: 200 members (public_chat preset,
//! Glia's default room version 11), built through Glia's own code (see `common`).
//!
//! - `pdu/build_hash_sign`: `glia::rooms::builder::build` of an `m.room.message`: auth
//!   events chosen from the state, canonical JSON, content hash, ed25519 signature,
//!   reference hash (the event ID);
//! - `pdu/canonical_json_serialize` / `_parse`: the signed PDU to and from canonical JSON
//!   text (what is stored and sent over federation);
//! - `pdu/verify`: ruma's `verify_event` (hashes and the server's signature), as a receiving
//!   server does;
//! - `auth/message`, `auth/join`, `auth/power_levels`: `glia::rooms::builder::authorise`,
//!   ruma's state-res auth rules (state-independent and state-dependent checks) against the
//!   room's current state, for a message, a new member's join and a power-levels change.
//!
//! Run: `cargo bench -p glia --bench pdu`.

mod common;

use std::time::{Duration, Instant};

use common::Bench;
use std::hint::black_box;

use criterion::Criterion;
use glia::rooms::NewEvent;
use glia::rooms::builder::{authorise, build};
use ruma::canonical_json::CanonicalJsonObject;
use ruma::signatures::{PublicKeyMap, PublicKeySet};
use serde_json::json;

const MEMBERS: usize = 200;

fn main() {
    let bench = Bench::start();
    let app = bench.app.clone();
    let start = Instant::now();
    let (users, room_id) = bench.rt.block_on(bench.room(MEMBERS, "PDU bench"));
    let newcomer = bench.rt.block_on(bench.register("newcomer"));
    println!(
        "pdu: room of {MEMBERS} members built through glia::rooms in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let room = bench.rt.block_on(app.rooms.lock(&app, &room_id)).expect("lock room");
    let sender = users[1].user_id.clone();
    let creator = users[0].user_id.clone();
    let message = || {
        NewEvent::message(
            "m.room.message",
            json!({"msgtype": "m.text", "body": "the quick brown fox jumps over the lazy dog"}),
        )
    };
    let now = glia::store::now_ms();

    let pdu = build(&app, &room, &sender, message(), now).expect("build");
    authorise(&room, &pdu).expect("a member may send");
    let text = serde_json::to_string(&pdu.json).expect("canonical json");
    println!("pdu: signed m.room.message is {} bytes of canonical JSON", text.len());

    let mut keys = PublicKeySet::new();
    keys.insert(
        format!("ed25519:{}", app.signing_key.version),
        ruma::serde::Base64::new(app.signing_key.pair.public_key().to_vec()),
    );
    let mut key_map = PublicKeyMap::new();
    key_map.insert(app.config.server_name.to_string(), keys);
    ruma::signatures::verify_event(&key_map, &pdu.json, &room.rules).expect("verifies");

    let join = build(
        &app,
        &room,
        &newcomer.user_id,
        NewEvent::state("m.room.member", &newcomer.user_id, json!({"membership": "join"})),
        now,
    )
    .expect("build join");
    authorise(&room, &join).expect("public room: anyone may join");
    let mut pl = glia::rooms::state_content(&room, "m.room.power_levels", "").expect("PLs");
    pl["users"][&sender] = json!(50);
    let pl_change =
        build(&app, &room, &creator, NewEvent::state("m.room.power_levels", "", pl), now)
            .expect("build power levels");
    authorise(&room, &pl_change).expect("the creator may change power levels");

    let mut c = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    c.bench_function("pdu/build_hash_sign", |b| {
        b.iter(|| build(&app, &room, &sender, message(), now).expect("build"))
    });
    c.bench_function("pdu/canonical_json_serialize", |b| {
        b.iter(|| serde_json::to_string(black_box(&pdu.json)).expect("json"))
    });
    c.bench_function("pdu/canonical_json_parse", |b| {
        b.iter(|| serde_json::from_str::<CanonicalJsonObject>(black_box(&text)).expect("json"))
    });
    c.bench_function("pdu/verify", |b| {
        b.iter(|| {
            ruma::signatures::verify_event(&key_map, black_box(&pdu.json), &room.rules)
                .expect("verify")
        })
    });
    c.bench_function("auth/message", |b| b.iter(|| authorise(&room, &pdu).expect("auth")));
    c.bench_function("auth/join", |b| b.iter(|| authorise(&room, &join).expect("auth")));
    c.bench_function("auth/power_levels", |b| {
        b.iter(|| authorise(&room, &pl_change).expect("auth"))
    });
    c.final_summary();

    drop(room);
    drop(app);
    bench.shutdown();
}
