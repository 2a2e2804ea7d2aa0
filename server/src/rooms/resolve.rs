//! State resolution over stored events: the states of several forks (or of several
//! prev_events) merged with the room version's algorithm: ruma's v2, or Glia's v1
//! (`resolve_v1`) for room version 1.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use ruma::events::StateEventType;
use ruma::room_version_rules::RoomVersionRules;
use ruma::state_res::utils::event_id_set::EventIdSet;
use ruma::{EventId, OwnedEventId};
use rusqlite::Connection;

use super::conflicted_subgraph::conflicted_subgraph;
use super::{PduRef, auth_difference};
use crate::error::{Error, Result};
use crate::store::events;

/// A state: (type, state_key) -> event ID.
pub type IdState = HashMap<(String, String), String>;

/// Loads events by ID from SQLite (and from `extra`, events not stored yet), caching them.
pub struct EventCache<'c> {
    conn: &'c Connection,
    rules: RoomVersionRules,
    cache: RefCell<HashMap<String, Option<PduRef>>>,
    nids: RefCell<HashMap<String, Option<i64>>>,
}

impl<'c> EventCache<'c> {
    pub fn new(conn: &'c Connection, rules: &RoomVersionRules, extra: &[PduRef]) -> Self {
        let cache = extra.iter().map(|p| (p.event_id.to_string(), Some(p.clone()))).collect();
        EventCache {
            conn,
            rules: rules.clone(),
            cache: RefCell::new(cache),
            nids: RefCell::new(HashMap::new()),
        }
    }

    pub fn get(&self, id: &str) -> Option<PduRef> {
        if let Some(hit) = self.cache.borrow().get(id) {
            return hit.clone();
        }
        let found = super::parsed_events::get(self.conn, &self.rules, id);
        if let Some((nid, _)) = &found {
            self.nids.borrow_mut().insert(id.to_string(), Some(*nid));
        }
        let loaded = found.map(|(_, p)| p);
        self.cache.borrow_mut().insert(id.to_string(), loaded.clone());
        loaded
    }

    /// A stored event's nid, its place in `auth_difference::by_walk`'s order.
    pub fn nid(&self, id: &str) -> Option<i64> {
        if let Some(hit) = self.nids.borrow().get(id) {
            return *hit;
        }
        let nid = crate::store::auth_order::nid_of(self.conn, id).ok().flatten();
        self.nids.borrow_mut().insert(id.to_string(), nid);
        nid
    }

    /// Whether the room of these states keeps auth events stored before the events citing
    /// them, so that nids order its auth DAG.
    fn nids_ordered(&self, states: &[IdState]) -> bool {
        states
            .iter()
            .flat_map(|s| s.values())
            .find_map(|id| crate::store::auth_order::ordered_room_of(self.conn, id).ok().flatten())
            .unwrap_or(false)
    }

    /// Every event reachable through auth_events from `start`.
    pub fn auth_chain(&self, start: &[OwnedEventId]) -> HashSet<OwnedEventId> {
        auth_chain_with(start, &|id: &str| self.get(id))
    }
}

/// Resolve `states` into one. A single state (or identical ones) is returned as is.
pub fn resolve(cache: &EventCache<'_>, states: &[IdState]) -> Result<IdState> {
    let fetch = |id: &str| cache.get(id);
    if states.len() > 1 && cache.nids_ordered(states) {
        resolve_ordered(&cache.rules, states, &fetch, Some(&|id: &str| cache.nid(id)))
    } else {
        resolve_ordered(&cache.rules, states, &fetch, None)
    }
}

/// Every event reachable through auth_events from `start`, events found by `fetch`.
pub fn auth_chain_with(
    start: &[OwnedEventId],
    fetch: &dyn Fn(&str) -> Option<PduRef>,
) -> HashSet<OwnedEventId> {
    let mut seen = HashSet::new();
    let mut todo: Vec<OwnedEventId> = start.to_vec();
    while let Some(id) = todo.pop() {
        if let Some(e) = fetch(id.as_str()) {
            for a in &e.auth_events {
                if seen.insert(a.clone()) {
                    todo.push(a.clone());
                }
            }
        }
    }
    seen
}

/// State resolution (v1 or v2, by `rules`) of `states`, with events found by `fetch`: storage-free, so the
/// state-res fixtures and benches run it on events held in memory.
pub fn resolve_with(
    rules: &RoomVersionRules,
    states: &[IdState],
    fetch: &dyn Fn(&str) -> Option<PduRef>,
) -> Result<IdState> {
    resolve_ordered(rules, states, fetch, None)
}

/// [`resolve_with`], the auth difference found by `auth_difference::by_walk` when `order`
/// places every event after its auth events, else from the full auth chains.
pub fn resolve_ordered(
    rules: &RoomVersionRules,
    states: &[IdState],
    fetch: &dyn Fn(&str) -> Option<PduRef>,
    order: Option<auth_difference::Order<'_>>,
) -> Result<IdState> {
    let mut distinct: Vec<&IdState> = vec![];
    for s in states {
        if !distinct.contains(&s) {
            distinct.push(s);
        }
    }
    match distinct.len() {
        0 => return Ok(IdState::new()),
        1 => return Ok(distinct[0].clone()),
        _ => {}
    }
    let started = std::time::Instant::now();
    let conflicted = conflicted_keys(&distinct);
    crate::metrics::STATE_CONFLICTS.observe(conflicted as f64);
    let out = resolve_distinct(rules, &distinct, fetch, order);
    crate::metrics::STATE_RESOLUTION.observe(started.elapsed().as_secs_f64());
    out
}

/// How many keys the states disagree on (absent from some counts): a key of the first
/// state that another holds differently, or a key the first lacks, counted once.
fn conflicted_keys(states: &[&IdState]) -> usize {
    let (first, rest) = match states.split_first() {
        Some(split) => split,
        None => return 0,
    };
    let differing =
        first.iter().filter(|(k, v)| rest.iter().any(|s| s.get(*k) != Some(*v))).count();
    let mut missing: Vec<&(String, String)> =
        rest.iter().flat_map(|s| s.keys()).filter(|k| !first.contains_key(*k)).collect();
    missing.sort_unstable();
    missing.dedup();
    differing + missing.len()
}

fn resolve_distinct(
    rules: &RoomVersionRules,
    distinct: &[&IdState],
    fetch: &dyn Fn(&str) -> Option<PduRef>,
    order: Option<auth_difference::Order<'_>>,
) -> Result<IdState> {
    // Room version 1 keeps the original algorithm, which ruma doesn't implement.
    let Some(v2) = rules.state_res.v2_rules() else {
        return Ok(super::resolve_v1::resolve(rules, distinct, fetch));
    };
    let maps: Vec<ruma::state_res::StateMap<OwnedEventId>> = distinct
        .iter()
        .map(|s| {
            s.iter()
                .filter_map(|((t, k), id)| {
                    Some((
                        (StateEventType::from(t.as_str()), k.clone()),
                        OwnedEventId::try_from(id.as_str()).ok()?,
                    ))
                })
                .collect()
        })
        .collect();
    // ruma only takes ∪ − ∩ of these, so each state's chain minus what all of them share
    // will do.
    let ids: Vec<Vec<OwnedEventId>> = maps.iter().map(|m| m.values().cloned().collect()).collect();
    let differences = order
        .and_then(|order| auth_difference::by_walk(&ids, fetch, order))
        .unwrap_or_else(|| auth_difference::by_full_walk(&ids, fetch));
    let chains: Vec<EventIdSet<OwnedEventId>> =
        differences.into_iter().map(|d| d.into_iter().collect()).collect();
    let resolved = ruma::state_res::resolve(
        &rules.authorization,
        v2,
        maps.iter(),
        chains,
        // Shared, not deep copies: ruma fetches the same events many times.
        |id: &EventId| fetch(id.as_str()),
        // Asked for by state resolution v2.1 (room version 12) only.
        |conflicted| {
            let ids: Vec<OwnedEventId> = conflicted.values().flatten().cloned().collect();
            Some(conflicted_subgraph(&ids, fetch, order).into_iter().collect())
        },
    )
    .map_err(|e| Error::internal(format!("state resolution: {e}")))?;
    Ok(resolved.into_iter().map(|((t, k), id)| ((t.to_string(), k), id.to_string())).collect())
}

/// The state after a stored event, as event IDs.
pub fn state_after(conn: &Connection, event_id: &str) -> Result<Option<IdState>> {
    let Some(row) = events::by_id(conn, event_id)? else { return Ok(None) };
    let Some(group) = row.state_after else { return Ok(None) };
    ids_of_group(conn, group).map(Some)
}

pub fn ids_of_group(conn: &Connection, group: i64) -> Result<IdState> {
    let nids = crate::store::state::state_at(conn, group)?;
    let mut out = IdState::new();
    for (k, nid) in nids {
        if let Some(r) = events::by_nid(conn, nid)? {
            out.insert(k, r.event_id);
        }
    }
    Ok(out)
}

/// Event IDs to nids, for storing a resolved state.
pub fn to_nids(conn: &Connection, state: &IdState) -> Result<HashMap<(String, String), i64>> {
    let mut out = HashMap::new();
    for (k, id) in state {
        if let Some(r) = events::by_id(conn, id)? {
            out.insert(k.clone(), r.nid);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(entries: &[(&str, &str)]) -> IdState {
        entries.iter().map(|(k, v)| ((k.to_string(), String::new()), v.to_string())).collect()
    }

    #[test]
    fn conflicted_keys_counts_each_disagreement_once() {
        let a = state(&[("topic", "$1"), ("name", "$2"), ("avatar", "$3")]);
        let b = state(&[("topic", "$9"), ("name", "$2"), ("alias", "$4")]);
        let c = state(&[("topic", "$1"), ("name", "$2"), ("alias", "$5"), ("tags", "$6")]);
        // topic differs, avatar is absent from b, alias and tags are absent from a.
        assert_eq!(conflicted_keys(&[&a, &b, &c]), 4);
        assert_eq!(conflicted_keys(&[&a, &b]), 3);
        assert_eq!(conflicted_keys(&[&a, &a]), 0);
        assert_eq!(conflicted_keys(&[]), 0);
    }
}
