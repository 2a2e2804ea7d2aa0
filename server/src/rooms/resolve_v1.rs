//! The original state resolution algorithm (room version 1, "State resolution" in
//! rooms/v1.md). ruma-state-res only implements v2, so it lives here.
//!
//! Where the spec is silent (which state the member conflicts are checked against,
//! what to pick when no candidate passes), Glia follows Synapse: each conflicted key of a
//! stage is checked against the state resolved by the stages before it, not against its
//! siblings, and a normal key whose candidates all fail takes the shallowest one.

use std::cmp::Reverse;
use std::collections::HashMap;

use ruma::events::StateEventType;
use ruma::room_version_rules::RoomVersionRules;
use ruma::state_res::check_state_dependent_auth_rules;
use sha1::{Digest, Sha1};

use super::PduRef;
use super::resolve::IdState;

type Key = (String, String);

/// Resolves `states` (at least two distinct ones) with the v1 algorithm. Conflicting events
/// `fetch` can't find are left out of their conflict.
pub fn resolve(
    rules: &RoomVersionRules,
    states: &[&IdState],
    fetch: &dyn Fn(&str) -> Option<PduRef>,
) -> IdState {
    // R starts as the union of the states minus the conflicting keys: a key only some
    // states hold is not a conflict.
    let mut ids_by_key: HashMap<&Key, Vec<&String>> = HashMap::new();
    for s in states {
        for (k, id) in s.iter() {
            let ids = ids_by_key.entry(k).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let mut resolved = IdState::new();
    let mut conflicted: Vec<(Key, Vec<PduRef>)> = vec![];
    // A conflict with one event found takes it, but (as in Synapse) only once the others are
    // resolved: it was a conflict, so it is no part of the state they are checked in.
    let mut lone: Vec<(Key, String)> = vec![];
    for (k, ids) in ids_by_key {
        if let [id] = ids.as_slice() {
            resolved.insert(k.clone(), (*id).clone());
            continue;
        }
        let events: Vec<PduRef> = ids.iter().filter_map(|id| fetch(id)).collect();
        match events.as_slice() {
            [] => {}
            [only] => lone.push((k.clone(), only.event_id.to_string())),
            _ => conflicted.push((k.clone(), events)),
        }
    }
    // Stable key order, so nothing depends on hash-map iteration.
    conflicted.sort_by(|a, b| a.0.cmp(&b.0));

    let power = StateEventType::RoomPowerLevels.to_string();
    let join_rules = StateEventType::RoomJoinRules.to_string();
    let member = StateEventType::RoomMember.to_string();
    for t in [&power, &join_rules, &member] {
        let picked: Vec<(Key, String)> = conflicted
            .iter()
            .filter(|(k, _)| &k.0 == t)
            .map(|(k, events)| (k.clone(), resolve_auth_events(rules, events, &resolved, fetch)))
            .collect();
        resolved.extend(picked);
    }
    for (k, events) in &conflicted {
        if [&power, &join_rules, &member].contains(&&k.0) {
            continue;
        }
        let picked = resolve_normal_events(rules, events, &resolved, fetch);
        resolved.insert(k.clone(), picked);
    }
    resolved.extend(lone);
    resolved
}

/// Highest depth first, then lowest sha1(event_id): the order "normal" conflicts are
/// tried in; power events are walked in its reverse.
fn ordered(events: &[PduRef]) -> Vec<PduRef> {
    let mut v = events.to_vec();
    v.sort_by_cached_key(|e| {
        (Reverse(e.depth), Sha1::digest(e.event_id.as_str().as_bytes()).to_vec())
    });
    v
}

fn allowed(
    rules: &RoomVersionRules,
    event: &PduRef,
    state: &IdState,
    fetch: &dyn Fn(&str) -> Option<PduRef>,
) -> bool {
    check_state_dependent_auth_rules(&rules.authorization, event, |t: &StateEventType, k: &str| {
        state.get(&(t.to_string(), k.to_string())).and_then(|id| fetch(id))
    })
    .is_ok()
}

/// Power events of one key: from the oldest, each next one is taken while it is allowed
/// in R with the previous one applied; the last one taken wins.
fn resolve_auth_events(
    rules: &RoomVersionRules,
    events: &[PduRef],
    r: &IdState,
    fetch: &dyn Fn(&str) -> Option<PduRef>,
) -> String {
    let mut list = ordered(events);
    list.reverse();
    let mut state = r.clone();
    let mut prev = &list[0];
    for e in &list[1..] {
        state.insert(key_of(prev), prev.event_id.to_string());
        if !allowed(rules, e, &state, fetch) {
            break;
        }
        prev = e;
    }
    prev.event_id.to_string()
}

/// Other events of one key: the first in `ordered` order allowed in R.
fn resolve_normal_events(
    rules: &RoomVersionRules,
    events: &[PduRef],
    r: &IdState,
    fetch: &dyn Fn(&str) -> Option<PduRef>,
) -> String {
    let list = ordered(events);
    let pick = list.iter().find(|e| allowed(rules, e, r, fetch)).or(list.last());
    pick.map(|e| e.event_id.to_string()).unwrap_or_default()
}

fn key_of(e: &PduRef) -> Key {
    (e.type_str(), e.state_key.clone().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::rooms::{Pdu, rules_for};

    fn rules() -> RoomVersionRules {
        rules_for("1").expect("v1 rules").1
    }

    fn id(name: &str) -> String {
        format!("${name}:example.com")
    }

    fn user(name: &str) -> String {
        format!("@{name}:example.com")
    }

    /// A v1 event; its auth/prev events don't matter to resolution, which reads R.
    fn ev(name: &str, sender: &str, t: &str, key: &str, depth: u64, content: Value) -> PduRef {
        let obj = serde_json::from_value(json!({
            "room_id": "!room:example.com", "sender": user(sender), "type": t,
            "state_key": key, "content": content, "depth": depth, "origin_server_ts": depth,
            "auth_events": [], "prev_events": [],
        }))
        .expect("canonical JSON");
        let eid = ruma::OwnedEventId::try_from(id(name)).expect("event ID");
        Arc::new(Pdu::from_object(eid, obj, &rules()).expect("PDU"))
    }

    struct Room {
        events: HashMap<String, PduRef>,
        base: IdState,
    }

    impl Room {
        /// alice creates a public room and is its admin (100), bob (50) and charlie join,
        /// alice sets a topic.
        fn new() -> Room {
            let base = [
                ev("CREATE", "alice", "m.room.create", "", 1, json!({"creator": user("alice")})),
                ev(
                    "IMA",
                    "alice",
                    "m.room.member",
                    &user("alice"),
                    2,
                    json!({"membership": "join"}),
                ),
                ev(
                    "IPOWER",
                    "alice",
                    "m.room.power_levels",
                    "",
                    3,
                    json!({"users": {user("alice"): 100, user("bob"): 50}}),
                ),
                ev("IJR", "alice", "m.room.join_rules", "", 4, json!({"join_rule": "public"})),
                ev("IMB", "bob", "m.room.member", &user("bob"), 5, json!({"membership": "join"})),
                ev(
                    "IMC",
                    "charlie",
                    "m.room.member",
                    &user("charlie"),
                    6,
                    json!({"membership": "join"}),
                ),
                ev("T0", "alice", "m.room.topic", "", 7, json!({"topic": "base"})),
            ];
            let mut room = Room { events: HashMap::new(), base: IdState::new() };
            for e in base {
                room.base.insert(key_of(&e), e.event_id.to_string());
                room.events.insert(e.event_id.to_string(), e);
            }
            room
        }

        /// The base state with `events` applied (and remembered).
        fn fork(&mut self, events: &[PduRef]) -> IdState {
            let mut s = self.base.clone();
            for e in events {
                s.insert(key_of(e), e.event_id.to_string());
                self.events.insert(e.event_id.to_string(), e.clone());
            }
            s
        }

        /// Resolves the forks in both orders, which must agree.
        fn resolve(&self, forks: &[IdState]) -> IdState {
            let fetch = |i: &str| self.events.get(i).cloned();
            let refs: Vec<&IdState> = forks.iter().collect();
            let forward = resolve(&rules(), &refs, &fetch);
            let backward: Vec<&IdState> = forks.iter().rev().collect();
            assert_eq!(forward, resolve(&rules(), &backward, &fetch), "depends on fork order");
            forward
        }
    }

    fn get<'s>(s: &'s IdState, t: &str, k: &str) -> Option<&'s str> {
        s.get(&(t.to_string(), k.to_string())).map(String::as_str)
    }

    #[test]
    fn ordered_is_depth_descending_then_sha1_ascending() {
        let a = ev("a", "alice", "m.room.topic", "", 8, json!({}));
        let b = ev("b", "alice", "m.room.topic", "", 8, json!({}));
        let deep = ev("deep", "alice", "m.room.topic", "", 9, json!({}));
        let got: Vec<String> =
            ordered(&[a.clone(), b.clone(), deep]).iter().map(|e| e.event_id.to_string()).collect();
        let (low, high) = if Sha1::digest(id("a").as_bytes()) < Sha1::digest(id("b").as_bytes()) {
            (id("a"), id("b"))
        } else {
            (id("b"), id("a"))
        };
        assert_eq!(got, vec![id("deep"), low, high]);
    }

    #[test]
    fn power_level_fork_decides_the_member_conflict() {
        // Fork A: alice demotes bob to 0. Fork B: bob (still 50 there) kicks charlie.
        let mut room = Room::new();
        let demote = ev(
            "DEMOTE",
            "alice",
            "m.room.power_levels",
            "",
            8,
            json!({"users": {user("alice"): 100}}),
        );
        let kick =
            ev("KICK", "bob", "m.room.member", &user("charlie"), 9, json!({"membership": "leave"}));
        let a = room.fork(&[demote]);
        let b = room.fork(&[kick]);
        let r = room.resolve(&[a, b]);
        // The demotion is allowed after the base power levels; the kick, checked against
        // it, is not: charlie stays.
        assert_eq!(get(&r, "m.room.power_levels", ""), Some(id("DEMOTE").as_str()));
        assert_eq!(get(&r, "m.room.member", &user("charlie")), Some(id("IMC").as_str()));
    }

    #[test]
    fn power_levels_stop_at_the_first_disallowed() {
        // Fork A: alice gives charlie 50 (older). Fork B: bob gives dave 50 but drops
        // charlie, whose 50 bob may not touch once A applies: A wins although B is deeper.
        let mut room = Room::new();
        let pa = ev(
            "PA",
            "alice",
            "m.room.power_levels",
            "",
            8,
            json!({"users": {user("alice"): 100, user("bob"): 50, user("charlie"): 50}}),
        );
        let pb = ev(
            "PB",
            "bob",
            "m.room.power_levels",
            "",
            9,
            json!({"users": {user("alice"): 100, user("bob"): 50, user("dave"): 50}}),
        );
        let a = room.fork(&[pa]);
        let b = room.fork(&[pb]);
        let r = room.resolve(&[a, b]);
        assert_eq!(get(&r, "m.room.power_levels", ""), Some(id("PA").as_str()));
    }

    #[test]
    fn ban_beats_join_in_either_depth_order() {
        for (ban_depth, join_depth) in [(8, 9), (9, 8)] {
            let mut room = Room::new();
            let ban = ev(
                "BAN",
                "alice",
                "m.room.member",
                &user("dave"),
                ban_depth,
                json!({"membership": "ban"}),
            );
            let join = ev(
                "JOIN",
                "dave",
                "m.room.member",
                &user("dave"),
                join_depth,
                json!({"membership": "join"}),
            );
            let a = room.fork(&[ban]);
            let b = room.fork(&[join]);
            let r = room.resolve(&[a, b]);
            assert_eq!(get(&r, "m.room.member", &user("dave")), Some(id("BAN").as_str()));
        }
    }

    #[test]
    fn topic_conflict_takes_the_deepest_allowed() {
        let mut room = Room::new();
        let t1 = ev("T1", "alice", "m.room.topic", "", 8, json!({"topic": "one"}));
        let t2 = ev("T2", "bob", "m.room.topic", "", 9, json!({"topic": "two"}));
        // charlie (0) may not set the topic: deepest, but skipped.
        let t3 = ev("T3", "charlie", "m.room.topic", "", 10, json!({"topic": "three"}));
        let a = room.fork(&[t1]);
        let b = room.fork(&[t2]);
        let c = room.fork(&[t3]);
        let r = room.resolve(&[a.clone(), b.clone(), c]);
        assert_eq!(get(&r, "m.room.topic", ""), Some(id("T2").as_str()));
        let r = room.resolve(&[a, b]);
        assert_eq!(get(&r, "m.room.topic", ""), Some(id("T2").as_str()));
    }

    #[test]
    fn a_conflict_with_one_event_found_takes_it() {
        let mut room = Room::new();
        let t1 = ev("T1", "alice", "m.room.topic", "", 8, json!({"topic": "one"}));
        let a = room.fork(&[t1]);
        let mut b = room.base.clone();
        b.insert(("m.room.topic".into(), String::new()), id("UNKNOWN"));
        let r = room.resolve(&[a, b]);
        assert_eq!(get(&r, "m.room.topic", ""), Some(id("T1").as_str()));
    }

    #[test]
    fn keys_in_only_some_states_are_kept() {
        let mut room = Room::new();
        let name = ev("NAME", "alice", "m.room.name", "", 8, json!({"name": "n"}));
        let t1 = ev("T1", "alice", "m.room.topic", "", 8, json!({"topic": "one"}));
        let a = room.fork(&[name]);
        let b = room.fork(&[t1]);
        let r = room.resolve(&[a, b]);
        assert_eq!(get(&r, "m.room.name", ""), Some(id("NAME").as_str()));
        assert_eq!(get(&r, "m.room.topic", ""), Some(id("T1").as_str()));
        assert_eq!(get(&r, "m.room.create", ""), Some(id("CREATE").as_str()));
    }
}
