//! Live state resolution (events in SQLite, a fresh `EventCache` per resolution as the
//! federation paths use) of one fixed small conflict, in rooms with 1,000 and 20,000
//! earlier events: topic changes, members leaving and rejoining, power-level changes.
//! The state stays at about 25 entries, so only the stored history grows. `walk` is what
//! Glia runs; `full_chains` walks every state event's whole auth chain instead (what
//! Glia did before `auth_difference::by_walk`, though now with parsed events shared).
//!
//!     cargo bench -p glia --bench state_res_history

use criterion::{Criterion, criterion_group, criterion_main};
use glia::rooms::resolve::{EventCache, IdState, resolve, resolve_ordered};
use glia::rooms::rules_for;
use glia::store::events::{self, NewEventRow, Placement};
use ruma::OwnedEventId;
use rusqlite::Connection;
use serde_json::{Value, json};

const MEMBERS: usize = 20;

struct Room {
    conn: Connection,
    _dir: tempfile::TempDir,
    next: usize,
    state: IdState,
}

impl Room {
    fn user(i: usize) -> String {
        format!("@u{i}:example.com")
    }

    fn get(&self, t: &str, k: &str) -> String {
        self.state[&(t.to_string(), k.to_string())].clone()
    }

    /// Store a state event citing the current state's `auth` keys; returns its ID.
    fn send(
        &mut self,
        t: &str,
        k: &str,
        sender: &str,
        content: Value,
        auth: &[(&str, &str)],
    ) -> String {
        let auth: Vec<String> = auth.iter().map(|(t, k)| self.get(t, k)).collect();
        self.store(t, k, sender, content, auth, true)
    }

    fn store(
        &mut self,
        t: &str,
        k: &str,
        sender: &str,
        content: Value,
        auth: Vec<String>,
        apply: bool,
    ) -> String {
        self.next += 1;
        let id = format!("$e{}:example.com", self.next);
        let v = json!({
            "auth_events": auth,
            "prev_events": [],
            "content": content,
            "depth": self.next,
            "origin_server_ts": self.next,
            "room_id": "!room:example.com",
            "sender": sender,
            "state_key": k,
            "type": t,
            "hashes": {"sha256": "unused"},
            "signatures": {},
        });
        let json = v.to_string();
        let auth_ids: Vec<OwnedEventId> =
            auth.iter().filter_map(|a| OwnedEventId::try_from(a.as_str()).ok()).collect();
        let membership = content["membership"].as_str().map(str::to_string);
        let row = NewEventRow {
            event_id: &id,
            event_type: t,
            state_key: Some(k),
            sender,
            depth: self.next as i64,
            origin_server_ts: self.next as i64,
            json: &json,
            prev_events: &[],
            auth_events: &auth_ids,
            membership: membership.as_deref(),
            txn: None,
        };
        events::insert(&self.conn, 1, None, &row, Placement::OUTLIER).expect("insert");
        if apply {
            self.state.insert((t.to_string(), k.to_string()), id.clone());
        }
        id
    }
}

fn levels(raised: Option<usize>) -> Value {
    let mut users = json!({"@admin:example.com": 100});
    if let Some(i) = raised {
        users[Room::user(i)] = json!(50);
    }
    json!({"users": users, "users_default": 0, "state_default": 50, "events_default": 0})
}

/// A room with `history` events after its creation, and two forks off its state.
fn room(history: usize) -> (Room, Vec<IdState>) {
    // A database file, as a server has (the parsed-event cache is per file).
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut conn = Connection::open(dir.path().join("bench.db")).expect("db");
    glia::store::migrations::apply(&mut conn).expect("migrate");
    conn.execute_batch("BEGIN").expect("begin");
    conn.execute(
        "INSERT INTO rooms (nid, room_id, room_version, creator, created_ts)
         VALUES (1, '!room:example.com', '10', '@admin:example.com', 0)",
        [],
    )
    .expect("room");
    let mut r = Room { conn, _dir: dir, next: 0, state: IdState::new() };
    let admin = "@admin:example.com";
    let create = json!({"creator": admin, "room_version": "10"});
    r.store("m.room.create", "", admin, create, vec![], true);
    let join = json!({"membership": "join"});
    let c = ("m.room.create", "");
    let me = ("m.room.member", admin);
    r.send("m.room.member", admin, admin, join.clone(), &[c]);
    r.send("m.room.power_levels", "", admin, levels(None), &[c, me]);
    let pl = ("m.room.power_levels", "");
    r.send("m.room.join_rules", "", admin, json!({"join_rule": "public"}), &[c, pl, me]);
    let jr = ("m.room.join_rules", "");
    for i in 0..MEMBERS {
        let u = Room::user(i);
        r.send("m.room.member", &u, &u, join.clone(), &[c, pl, jr]);
    }
    let mut joined = [true; MEMBERS];
    for k in 0..history {
        if k % 100 == 99 {
            r.send("m.room.power_levels", "", admin, levels(Some(k % MEMBERS)), &[c, pl, me]);
        } else if k % 2 == 0 {
            r.send("m.room.topic", "", admin, json!({"topic": format!("t{k}")}), &[c, pl, me]);
        } else {
            let i = (k / 2) % MEMBERS;
            let u = Room::user(i);
            joined[i] = !joined[i];
            let m = if joined[i] { "join" } else { "leave" };
            let own = r.get("m.room.member", &u);
            let auth = vec![r.get(c.0, c.1), r.get(pl.0, pl.1), r.get(jr.0, jr.1), own];
            r.store("m.room.member", &u, &u, json!({"membership": m}), auth, true);
        }
    }
    // Fork A: the admin raises a member and sets the topic. Fork B: the admin sets
    // another topic and a joined member leaves.
    let base = r.state.clone();
    r.send("m.room.power_levels", "", admin, levels(Some(1)), &[c, pl, me]);
    r.send("m.room.topic", "", admin, json!({"topic": "A"}), &[c, pl, me]);
    let a = std::mem::replace(&mut r.state, base);
    r.send("m.room.topic", "", admin, json!({"topic": "B"}), &[c, pl, me]);
    let i = (0..MEMBERS).find(|i| joined[*i]).expect("a joined member");
    let u = Room::user(i);
    let own = r.get("m.room.member", &u);
    let auth = vec![r.get(c.0, c.1), r.get(pl.0, pl.1), r.get(jr.0, jr.1), own];
    r.store("m.room.member", &u, &u, json!({"membership": "leave"}), auth, true);
    let b = r.state.clone();
    r.conn.execute_batch("COMMIT").expect("commit");
    (r, vec![a, b])
}

fn bench(c: &mut Criterion) {
    let (_, rules) = rules_for("10").expect("rules");
    let mut group = c.benchmark_group("state_res_history");
    group.sample_size(20);
    for history in [1_000, 20_000] {
        let (r, forks) = room(history);
        let walked = resolve(&EventCache::new(&r.conn, &rules, &[]), &forks).expect("resolve");
        let cache = EventCache::new(&r.conn, &rules, &[]);
        let full =
            resolve_ordered(&rules, &forks, &|id: &str| cache.get(id), None).expect("resolve");
        assert_eq!(walked, full, "the walk and the full chains disagree");
        group.bench_function(format!("walk/{history}"), |b| {
            b.iter(|| resolve(&EventCache::new(&r.conn, &rules, &[]), &forks).expect("resolve"))
        });
        group.bench_function(format!("full_chains/{history}"), |b| {
            b.iter(|| {
                let cache = EventCache::new(&r.conn, &rules, &[]);
                resolve_ordered(&rules, &forks, &|id: &str| cache.get(id), None).expect("resolve")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
