//! Pipelined writes of one room's events. A sender queues its event to the writer while
//! it holds the room's lock and waits for the commit after releasing it, so concurrent
//! sends to one room share commits (group commit) instead of queueing one fsync each.
//!
//! The writer runs jobs in the order they were queued, and the lock orders the queueing,
//! so the stored order is the order of `prev_events`. Each queued job takes a `Ticket`:
//! the state group the next event builds on passes from job to job on the writer thread
//! (the room's handle cannot know it before the commit), and a failed job breaks the chain
//! so every later job of the room fails too (their `prev_events` may name the lost event)
//! and the next locker reloads the handle from storage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ruma::OwnedEventId;
use tokio::sync::watch;

use crate::error::{Error, Result};

/// A transaction ID's scope: (user nid, device, endpoint, transaction ID).
pub type TxnKey = (i64, String, String, String);

struct Chain {
    /// The state group after the last event stored through the chain.
    group: Mutex<Option<i64>>,
    broken: AtomicBool,
    /// The highest sequence number whose job has finished (stored or failed).
    done: watch::Sender<u64>,
}

/// A room's queue of writes, kept in its handle.
pub struct Pipeline {
    chain: Arc<Chain>,
    queued: u64,
    /// Jobs were queued since the handle's `state_group` was last brought up to date.
    dirty: bool,
    /// Events queued but maybe not committed yet, by transaction ID, with their sequence
    /// number: a retry of the same transaction waits for the first instead of sending twice.
    pending_txns: HashMap<TxnKey, (OwnedEventId, u64)>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            chain: Arc::new(Chain {
                group: Mutex::new(None),
                broken: AtomicBool::new(false),
                done: watch::channel(0).0,
            }),
            queued: 0,
            dirty: false,
            pending_txns: HashMap::new(),
        }
    }
}

/// One queued job's place in its room's chain. Dropping it unfinished (the writer dropped
/// the job) breaks the chain.
pub struct Ticket {
    chain: Arc<Chain>,
    seq: u64,
    finished: bool,
}

/// What a job on the writer thread reads and writes of its chain.
#[derive(Clone)]
pub struct Link {
    chain: Arc<Chain>,
}

impl Link {
    /// The state group to build on, or an error if an earlier job of the room failed.
    pub fn group(&self) -> Result<Option<i64>> {
        if self.chain.broken.load(Ordering::SeqCst) {
            return Err(Error::internal("an earlier event of this room was not stored"));
        }
        Ok(*self.chain.group.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn set_group(&self, group: Option<i64>) {
        *self.chain.group.lock().unwrap_or_else(|p| p.into_inner()) = group;
    }
}

impl Ticket {
    pub fn link(&self) -> Link {
        Link { chain: self.chain.clone() }
    }

    /// Record the job's final outcome (after the commit).
    pub fn finish(mut self, ok: bool) {
        self.end(ok);
    }

    fn end(&mut self, ok: bool) {
        if self.finished {
            return;
        }
        self.finished = true;
        if !ok {
            self.chain.broken.store(true, Ordering::SeqCst);
        }
        let seq = self.seq;
        self.chain.done.send_modify(|d| *d = (*d).max(seq));
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.end(false);
    }
}

impl Pipeline {
    /// A ticket for the next job. `current` is the handle's state group, the chain's
    /// starting point when nothing is in flight.
    pub fn ticket(&mut self, current: Option<i64>) -> Ticket {
        if !self.dirty {
            *self.chain.group.lock().unwrap_or_else(|p| p.into_inner()) = current;
            self.dirty = true;
        }
        self.queued += 1;
        let done = *self.chain.done.borrow();
        self.pending_txns.retain(|_, (_, seq)| *seq > done);
        Ticket { chain: self.chain.clone(), seq: self.queued, finished: false }
    }

    /// The sequence number of the last queued job.
    pub fn last(&self) -> u64 {
        self.queued
    }

    pub fn broken(&self) -> bool {
        self.chain.broken.load(Ordering::SeqCst)
    }

    pub fn add_txn(&mut self, key: TxnKey, event_id: OwnedEventId, seq: u64) {
        self.pending_txns.insert(key, (event_id, seq));
    }

    pub fn pending_txn(&self, key: &TxnKey) -> Option<(OwnedEventId, u64)> {
        self.pending_txns.get(key).cloned()
    }

    /// A future that resolves once job `seq` and those before it have finished.
    pub fn finished(&self, seq: u64) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.chain.done.subscribe();
        async move {
            // A dropped chain (its handle was dropped) also ends the wait.
            let _ = rx.wait_for(|d| *d >= seq).await;
        }
    }

    /// Wait for every queued job, then return the state group they left (if any were
    /// queued since the handle was last up to date).
    pub async fn settle(&mut self) -> Option<Option<i64>> {
        self.finished(self.queued).await;
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        self.pending_txns.clear();
        Some(*self.chain.group.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether every queued job has finished.
    pub fn idle(&self) -> bool {
        *self.chain.done.borrow() >= self.queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_group_passes_from_job_to_job_and_settles_into_the_handle() {
        let mut p = Pipeline::default();
        let t1 = p.ticket(Some(5));
        let t2 = p.ticket(Some(99)); // in flight: the chain keeps its own group
        assert_eq!(t1.link().group().expect("group"), Some(5));
        t1.link().set_group(Some(6));
        t1.finish(true);
        assert!(!p.idle());
        assert_eq!(t2.link().group().expect("group"), Some(6));
        t2.link().set_group(Some(7));
        t2.finish(true);
        assert!(p.idle());
        assert_eq!(p.settle().await, Some(Some(7)));
        assert_eq!(p.settle().await, None, "nothing queued since");
        let t3 = p.ticket(Some(7));
        assert_eq!(t3.link().group().expect("group"), Some(7));
    }

    #[tokio::test]
    async fn a_failed_or_dropped_job_breaks_the_chain() {
        let mut p = Pipeline::default();
        let t1 = p.ticket(None);
        let t2 = p.ticket(None);
        drop(t1); // the writer dropped it unrun
        assert!(p.broken());
        assert!(t2.link().group().is_err(), "later jobs fail");
        t2.finish(false);
        p.settle().await;
        assert!(p.idle());
    }

    #[tokio::test]
    async fn pending_transactions_are_forgotten_once_finished() {
        let mut p = Pipeline::default();
        let id = OwnedEventId::try_from("$a:x").expect("id");
        let key: TxnKey = (1, "D".into(), "s".into(), "t".into());
        let t1 = p.ticket(None);
        p.add_txn(key.clone(), id.clone(), p.last());
        assert_eq!(p.pending_txn(&key).map(|(e, _)| e), Some(id));
        let wait = p.finished(1);
        t1.finish(true);
        wait.await;
        let _t2 = p.ticket(None);
        assert!(p.pending_txn(&key).is_none());
    }
}
