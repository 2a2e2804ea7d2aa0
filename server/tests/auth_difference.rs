//! `auth_difference::by_walk` against the full walk on randomly generated auth DAGs
//! (seeded): forks, merges, rejected events, auth events that are not stored, and states
//! holding events in any mix; and the conflicted state subgraph (state res v2.1) against
//! its definition.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use glia::rooms::auth_difference::{by_full_walk, by_walk};
use glia::rooms::conflicted_subgraph::conflicted_subgraph;
use glia::rooms::{Pdu, PduRef, rules_for};
use ruma::OwnedEventId;
use ruma::canonical_json::CanonicalJsonObject;
use serde_json::json;

/// splitmix64: a small seeded generator, so every run checks the same DAGs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn id(i: usize) -> OwnedEventId {
    OwnedEventId::try_from(format!("$e{i}:example.com")).expect("event ID")
}

fn pdu(i: usize, auth: &[OwnedEventId], rejected: bool) -> PduRef {
    let (_, rules) = rules_for("10").expect("rules");
    let v = json!({
        "auth_events": auth,
        "prev_events": [],
        "content": {"n": i},
        "depth": 1,
        "origin_server_ts": 0,
        "room_id": "!room:example.com",
        "sender": "@a:example.com",
        "state_key": format!("k{i}"),
        "type": "m.test",
        "hashes": {"sha256": "unused"},
        "signatures": {},
    });
    let obj: CanonicalJsonObject = serde_json::from_value(v).expect("canonical JSON");
    let mut p = Pdu::from_object(id(i), obj, &rules).expect("PDU");
    p.rejected = rejected;
    Arc::new(p)
}

struct Dag {
    events: HashMap<String, PduRef>,
    order: HashMap<String, i64>,
}

/// `n` events, each citing up to four earlier ones (a few citing events that are not
/// stored), numbered in a random topological order.
fn dag(rng: &mut Rng, n: usize) -> Dag {
    let mut auth: Vec<Vec<usize>> = vec![];
    let mut events = HashMap::new();
    let missing = n + 1000;
    for i in 0..n {
        let mut a: Vec<usize> = vec![];
        if i > 0 {
            // Mostly recent events (long chains, forks off them), sometimes old ones.
            for _ in 0..1 + rng.below(4) {
                let j = if rng.below(3) == 0 { rng.below(i) } else { i - 1 - rng.below(i.min(5)) };
                if !a.contains(&j) {
                    a.push(j);
                }
            }
        }
        let mut ids: Vec<OwnedEventId> = a.iter().map(|j| id(*j)).collect();
        if rng.below(20) == 0 {
            ids.push(id(missing + i));
        }
        events.insert(id(i).to_string(), pdu(i, &ids, rng.below(10) == 0));
        auth.push(a);
    }
    // A random linear extension: repeatedly take any event whose auth events are placed.
    let mut cited_by: Vec<Vec<usize>> = vec![vec![]; n];
    let mut waiting: Vec<usize> = auth.iter().map(Vec::len).collect();
    for (i, a) in auth.iter().enumerate() {
        for j in a {
            cited_by[*j].push(i);
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|i| waiting[*i] == 0).collect();
    let mut order = HashMap::new();
    let mut next = 0i64;
    while !ready.is_empty() {
        let i = ready.swap_remove(rng.below(ready.len()));
        next += 1 + rng.below(3) as i64;
        order.insert(id(i).to_string(), next);
        for c in &cited_by[i] {
            waiting[*c] -= 1;
            if waiting[*c] == 0 {
                ready.push(*c);
            }
        }
    }
    assert_eq!(order.len(), n);
    Dag { events, order }
}

fn states(rng: &mut Rng, n: usize) -> Vec<Vec<OwnedEventId>> {
    let count = 2 + rng.below(3);
    let shared: Vec<OwnedEventId> = (0..rng.below(6)).map(|_| id(rng.below(n))).collect();
    (0..count)
        .map(|_| {
            let mut s = shared.clone();
            for _ in 0..1 + rng.below(8) {
                // Recent events mostly, as forks are.
                let i = if rng.below(2) == 0 { n - 1 - rng.below(n.min(30)) } else { rng.below(n) };
                s.push(id(i));
            }
            if rng.below(10) == 0 {
                s.push(id(n + 5000));
            }
            s
        })
        .collect()
}

#[test]
fn walk_matches_the_full_chains_on_random_dags() {
    let mut rng = Rng(0x5eed);
    let mut nonempty = 0;
    for round in 0..300 {
        let n = 5 + rng.below(200);
        let d = dag(&mut rng, n);
        let fetch = |i: &str| d.events.get(i).cloned();
        let order = |i: &str| d.order.get(i).copied();
        for _ in 0..5 {
            let s = states(&mut rng, n);
            let full = by_full_walk(&s, &fetch);
            let walked = by_walk(&s, &fetch, &order);
            assert_eq!(walked.as_ref(), Some(&full), "round {round}: states {s:?}");
            nonempty += usize::from(full.iter().any(|d| !d.is_empty()));
        }
    }
    // The generator must produce real differences, not only identical chains.
    assert!(nonempty > 1000, "only {nonempty} cases with a difference");
}

#[test]
fn walk_refuses_an_order_it_sees_broken() {
    // e2 cites e1, e1 cites e0; e1 is numbered after e2.
    let events: HashMap<String, PduRef> = [
        (id(0).to_string(), pdu(0, &[], false)),
        (id(1).to_string(), pdu(1, &[id(0)], false)),
        (id(2).to_string(), pdu(2, &[id(1)], false)),
    ]
    .into();
    let order: HashMap<String, i64> =
        [(id(0).to_string(), 1), (id(1).to_string(), 5), (id(2).to_string(), 3)].into();
    let fetch = |i: &str| events.get(i).cloned();
    let states = vec![vec![id(2)], vec![id(0)]];
    assert_eq!(by_walk(&states, &fetch, &|i: &str| order.get(i).copied()), None);
    let full = by_full_walk(&states, &fetch);
    assert_eq!(full[0], [id(1), id(2)].into());
    assert!(full[1].is_empty());
}

/// Events reachable from `start` through auth_events, `start` included.
fn reachable(
    start: &OwnedEventId,
    fetch: &dyn Fn(&str) -> Option<PduRef>,
) -> HashSet<OwnedEventId> {
    let mut seen: HashSet<OwnedEventId> = [start.clone()].into();
    let mut todo = vec![start.clone()];
    while let Some(i) = todo.pop() {
        for a in fetch(i.as_str()).map(|e| e.auth_events.clone()).unwrap_or_default() {
            if seen.insert(a.clone()) {
                todo.push(a);
            }
        }
    }
    seen
}

#[test]
fn conflicted_subgraph_matches_its_definition_on_random_dags() {
    let mut rng = Rng(0x50b9);
    let mut inner = 0;
    for round in 0..120 {
        let n = 5 + rng.below(100);
        let d = dag(&mut rng, n);
        let fetch = |i: &str| d.events.get(i).cloned();
        let order = |i: &str| d.order.get(i).copied();
        for _ in 0..5 {
            let conflicted: Vec<OwnedEventId> = states(&mut rng, n)
                .into_iter()
                .flatten()
                .filter(|i| fetch(i.as_str()).is_some())
                .collect();
            // By the definition: x lies on a path from one conflicted event to another
            // when a conflicted event reaches x and x reaches a conflicted event.
            let below: Vec<HashSet<OwnedEventId>> =
                conflicted.iter().map(|c| reachable(c, &fetch)).collect();
            let want: HashSet<OwnedEventId> = below
                .iter()
                .flatten()
                .filter(|x| {
                    let from_x = reachable(x, &fetch);
                    conflicted.iter().any(|c| from_x.contains(c))
                })
                .cloned()
                .collect();
            let cs: HashSet<OwnedEventId> = conflicted.iter().cloned().collect();
            inner += want.difference(&cs).count();
            assert_eq!(
                conflicted_subgraph(&conflicted, &fetch, Some(&order)),
                want,
                "round {round}"
            );
            assert_eq!(conflicted_subgraph(&conflicted, &fetch, None), want, "round {round}");
        }
    }
    // Paths through events outside the conflicted set must occur.
    assert!(inner > 300, "only {inner} events between conflicted ones");
}

#[test]
fn conflicted_subgraph_walks_again_when_the_order_is_broken() {
    // e3 cites e2, e2 cites e1, e1 cites e0; e2 is numbered after e3.
    let events: HashMap<String, PduRef> = [
        (id(0).to_string(), pdu(0, &[], false)),
        (id(1).to_string(), pdu(1, &[id(0)], false)),
        (id(2).to_string(), pdu(2, &[id(1)], false)),
        (id(3).to_string(), pdu(3, &[id(2)], false)),
    ]
    .into();
    let order: HashMap<String, i64> = [
        (id(0).to_string(), 1),
        (id(1).to_string(), 2),
        (id(2).to_string(), 9),
        (id(3).to_string(), 4),
    ]
    .into();
    let fetch = |i: &str| events.get(i).cloned();
    let got = conflicted_subgraph(&[id(3), id(1)], &fetch, Some(&|i: &str| order.get(i).copied()));
    assert_eq!(got, [id(3), id(2), id(1)].into());
}
