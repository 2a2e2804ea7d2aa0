//! Wakes long-polling `/sync` requests when any stream advances. A counter in a watch
//! channel: waiters subscribe *before* checking for data, so no wake-up is lost between
//! the check and the wait.

use tokio::sync::watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

pub struct Notifier {
    tx: Arc<watch::Sender<u64>>,
    /// Position of the in-memory typing stream (typing notifications are not stored).
    typing: AtomicI64,
    /// `/sync` long-polls of this server parked until something happens.
    pub waiting: Waiting,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier {
            tx: Arc::new(watch::channel(0).0),
            typing: AtomicI64::new(0),
            waiting: Waiting::default(),
        }
    }
}

/// How many requests are parked waiting for an event right now: lets a test (and an
/// operator) see that a long-poll is waiting before it makes the event happen.
#[derive(Default)]
pub struct Waiting(AtomicUsize);

impl Waiting {
    /// Counts one waiter while the guard lives.
    pub fn guard(&self) -> WaitingGuard<'_> {
        self.0.fetch_add(1, Ordering::AcqRel);
        WaitingGuard(&self.0)
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

pub struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Notifier {
    /// Call after a write that some `/sync` may be waiting for has committed.
    pub fn notify(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A handle that wakes waiters from anywhere (the writer thread calls it right after
    /// a commit, so a long-poll need not wait for the sending task to be scheduled).
    pub fn waker(&self) -> Waker {
        Waker(self.tx.clone())
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    pub fn typing_position(&self) -> i64 {
        self.typing.load(Ordering::Acquire)
    }

    /// Advance the typing stream and wake waiters.
    pub fn advance_typing(&self) -> i64 {
        let p = self.typing.fetch_add(1, Ordering::AcqRel) + 1;
        self.notify();
        p
    }
}

/// See [`Notifier::waker`].
#[derive(Clone)]
pub struct Waker(Arc<watch::Sender<u64>>);

impl Waker {
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }
}
