//! The conflicted state subgraph of state resolution v2.1 (room version 12): every event on
//! an auth_events path from one event of the conflicted state set to another, endpoints
//! included. ruma asks the caller for it; without it a v12 resolution with any conflict fails.

use std::collections::{HashMap, HashSet};

use ruma::OwnedEventId;

use super::PduRef;
use super::auth_difference::Order;

/// The subgraph between the events of `conflicted`, found through `fetch`. With `order`
/// (every event placed after its auth events) the walk stops below the earliest conflicted
/// event, where no path can lead back up to one; an edge against that order makes it walk
/// again without it.
pub fn conflicted_subgraph(
    conflicted: &[OwnedEventId],
    fetch: &dyn Fn(&str) -> Option<PduRef>,
    order: Option<Order<'_>>,
) -> HashSet<OwnedEventId> {
    order
        .and_then(|o| walk(conflicted, fetch, Some(o)))
        .or_else(|| walk(conflicted, fetch, None))
        .unwrap_or_default()
}

/// Depth-first from each conflicted event, deciding for every event reached whether one of
/// its auth paths leads to a conflicted event (or it is one). None: an edge broke `order`.
fn walk(
    conflicted: &[OwnedEventId],
    fetch: &dyn Fn(&str) -> Option<PduRef>,
    order: Option<Order<'_>>,
) -> Option<HashSet<OwnedEventId>> {
    let targets: HashSet<&OwnedEventId> = conflicted.iter().collect();
    let at = |id: &OwnedEventId| order.and_then(|o| o(id.as_str()));
    // Nothing ordered before every conflicted event can lead to one (and is not one).
    let floor = match order {
        Some(_) => {
            conflicted.iter().map(at).collect::<Option<Vec<_>>>().and_then(|v| v.into_iter().min())
        }
        None => None,
    };
    let mut leads: HashMap<OwnedEventId, bool> = HashMap::new();
    let mut open: HashSet<OwnedEventId> = HashSet::new();
    for start in conflicted {
        let mut stack = vec![(start.clone(), false)];
        while let Some((id, children_done)) = stack.pop() {
            if children_done {
                let via = fetch(id.as_str()).is_some_and(|e| {
                    e.auth_events.iter().any(|a| leads.get(a).copied().unwrap_or(false))
                });
                open.remove(&id);
                let own = targets.contains(&id);
                leads.insert(id, own || via);
                continue;
            }
            // Done already, or on the current path (only a broken DAG loops).
            if leads.contains_key(&id) || !open.insert(id.clone()) {
                continue;
            }
            stack.push((id.clone(), true));
            let Some(event) = fetch(id.as_str()) else { continue };
            let here = at(&id);
            for a in &event.auth_events {
                if leads.contains_key(a) {
                    continue;
                }
                let there = at(a);
                if let (Some(h), Some(t)) = (here, there)
                    && t >= h
                {
                    return None;
                }
                if let (Some(f), Some(t)) = (floor, there)
                    && t < f
                {
                    leads.insert(a.clone(), false);
                    continue;
                }
                stack.push((a.clone(), false));
            }
        }
    }
    Some(leads.into_iter().filter_map(|(id, on_path)| on_path.then_some(id)).collect())
}
