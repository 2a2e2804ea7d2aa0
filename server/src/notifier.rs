//! Wakes long-polling `/sync` requests when any stream advances. A counter in a watch
//! channel: waiters subscribe *before* checking for data, so no wake-up is lost between
//! the check and the wait.

use tokio::sync::watch;

pub struct Notifier {
    tx: watch::Sender<u64>,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier { tx: watch::channel(0).0 }
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
}
