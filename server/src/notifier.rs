//! Wakes long-polling `/sync` requests when any stream advances. A counter in a watch
//! channel: waiters subscribe *before* checking for data, so no wake-up is lost between
//! the check and the wait.

use tokio::sync::watch;

use std::sync::atomic::{AtomicI64, Ordering};

pub struct Notifier {
    tx: watch::Sender<u64>,
    /// Position of the in-memory typing stream (typing notifications are not stored).
    typing: AtomicI64,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier { tx: watch::channel(0).0, typing: AtomicI64::new(0) }
    }
}

impl Notifier {
    /// Call after a write that some `/sync` may be waiting for has committed.
    pub fn notify(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
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
