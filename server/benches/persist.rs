//! Event persistence throughput through Glia's writer: `glia::rooms::persist` of batches of
//! 1, 10 and 100 signed, authorised `m.room.message` events (one writer job, one SQLite
//! transaction, one commit per batch), in a room of 20 members (push rules evaluated for
//! each, as on the send path). The batches are built outside the timed part; criterion
//! reports events per second.
//!
//! Run: `cargo bench -p glia --bench persist`. `GLIA_BENCH_SYNCHRONOUS=normal` skips the
//! fsync per commit (the default is the server's default, `full`).

mod common;

use std::time::{Duration, Instant};

use common::Bench;
use criterion::{Criterion, Throughput};
use glia::rooms::builder::{authorise, build};
use glia::rooms::{NewEvent, PduRef};
use serde_json::json;

fn main() {
    let bench = Bench::start();
    let app = bench.app.clone();
    let (users, room_id) = bench.rt.block_on(bench.room(20, "persist bench"));
    println!("persist: SQLite synchronous: {}", bench.synchronous);
    let mut room = bench.rt.block_on(app.rooms.lock(&app, &room_id)).expect("lock room");

    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut group = c.benchmark_group("persist");
    let mut n = 0u64;
    for batch in [1usize, 10, 100] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("batch_{batch}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    // A chain of `batch` events, each on top of the one before.
                    let mut events: Vec<(PduRef, Option<glia::rooms::Txn>)> = vec![];
                    let tips = room.tips.clone();
                    for _ in 0..batch {
                        n += 1;
                        let sender = &users[n as usize % users.len()].user_id;
                        let content = json!({"msgtype": "m.text", "body": format!("message {n}")});
                        let pdu = build(
                            &app,
                            &room,
                            sender,
                            NewEvent::message("m.room.message", content),
                            glia::store::now_ms(),
                        )
                        .expect("build");
                        authorise(&room, &pdu).expect("auth");
                        room.tips = vec![pdu.clone()];
                        events.push((pdu, None));
                    }
                    room.tips = tips;
                    let t = Instant::now();
                    bench
                        .rt
                        .block_on(glia::rooms::persist(&app, &mut room, events))
                        .expect("persist");
                    spent += t.elapsed();
                }
                spent
            })
        });
    }
    group.finish();
    c.final_summary();

    drop(room);
    drop(app);
    bench.shutdown();
}
