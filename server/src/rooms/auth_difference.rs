//! The auth difference of several states: with C_i the full auth chain of state i (its
//! events and everything reachable through auth_events), the events in some C_i but not
//! in all. ruma's `resolve` only ever uses the chains it is given for ∪C_i − ∩C_i, so each
//! C_i minus events common to all of them yields the same result; `by_walk` finds those
//! sets without visiting the history the states share.
//!
//! Events that cannot be fetched are left out: ruma drops them from the full conflicted
//! set anyway.

use std::collections::{BinaryHeap, HashMap, HashSet};

use ruma::OwnedEventId;

use super::PduRef;

/// Per state, the events of its chain that are not in every state's chain.
pub type Differences = Vec<HashSet<OwnedEventId>>;

/// An event's place in an order that puts every event after its auth events.
pub type Order<'a> = &'a dyn Fn(&str) -> Option<i64>;

/// Walk back from the states' events in decreasing `order`, each event carrying the set
/// of states whose chains hold it, until every event still to visit is held by all
/// states (then so is everything behind it). `order` must place every event after its
/// auth events (stored events: their nids, see `store::auth_order`); an edge seen to break
/// that, an event with an order but no body, or more than 64 states return None, and the
/// caller walks the full chains instead.
pub fn by_walk(
    states: &[Vec<OwnedEventId>],
    fetch: &dyn Fn(&str) -> Option<PduRef>,
    order: Order<'_>,
) -> Option<Differences> {
    let n = states.len();
    if n == 0 || n > 64 {
        return None;
    }
    let all: u64 = if n == 64 { u64::MAX } else { (1 << n) - 1 };
    let mut walk = Walk { all, heap: BinaryHeap::new(), holders: HashMap::new(), partial: 0 };
    for (i, s) in states.iter().enumerate() {
        for id in s {
            walk.reach(id, 1 << i, None, fetch, order)?;
        }
    }
    let mut out = vec![HashSet::new(); n];
    while walk.partial > 0 {
        let (at, id) = walk.heap.pop()?;
        let held = walk.holders.remove(&id)?;
        if held != all {
            walk.partial -= 1;
            for (i, set) in out.iter_mut().enumerate() {
                if held & (1 << i) != 0 {
                    set.insert(id.clone());
                }
            }
        }
        let event = fetch(id.as_str())?;
        for a in &event.auth_events {
            walk.reach(a, held, Some(at), fetch, order)?;
        }
    }
    Some(out)
}

struct Walk {
    all: u64,
    heap: BinaryHeap<(i64, OwnedEventId)>,
    /// Events reached and not yet visited: which states' chains hold them so far.
    holders: HashMap<OwnedEventId, u64>,
    /// How many of those are not held by all states.
    partial: usize,
}

impl Walk {
    /// `id` is in the chains of `states`, reached from an event at order `from`.
    fn reach(
        &mut self,
        id: &OwnedEventId,
        states: u64,
        from: Option<i64>,
        fetch: &dyn Fn(&str) -> Option<PduRef>,
        order: Order<'_>,
    ) -> Option<()> {
        let Some(at) = order(id.as_str()) else {
            // Unknown events are left out; one we could fetch but not order is not.
            return fetch(id.as_str()).is_none().then_some(());
        };
        if from.is_some_and(|f| at >= f) {
            return None;
        }
        match self.holders.get_mut(id) {
            Some(held) => {
                let was = *held;
                *held |= states;
                if was != self.all && *held == self.all {
                    self.partial -= 1;
                }
            }
            // (An event visited already is not reached again: it comes before everything
            // still to visit, so only an edge against the order, refused above, leads to it.)
            None => {
                self.holders.insert(id.clone(), states);
                self.heap.push((at, id.clone()));
                if states != self.all {
                    self.partial += 1;
                }
            }
        }
        Some(())
    }
}

/// The same sets from the full chains, every event of them visited: the reference
/// `by_walk` is tested against, and the fallback.
pub fn by_full_walk(
    states: &[Vec<OwnedEventId>],
    fetch: &dyn Fn(&str) -> Option<PduRef>,
) -> Differences {
    let chains: Vec<HashSet<OwnedEventId>> = states
        .iter()
        .map(|s| {
            let mut chain = super::resolve::auth_chain_with(s, fetch);
            chain.extend(s.iter().cloned());
            chain.retain(|id| fetch(id.as_str()).is_some());
            chain
        })
        .collect();
    let common: HashSet<OwnedEventId> = match chains.split_first() {
        Some((first, rest)) => {
            first.iter().filter(|id| rest.iter().all(|c| c.contains(*id))).cloned().collect()
        }
        None => HashSet::new(),
    };
    chains.into_iter().map(|c| c.into_iter().filter(|id| !common.contains(id)).collect()).collect()
}
