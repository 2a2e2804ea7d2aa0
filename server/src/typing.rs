//! Typing notifications: in memory only (they are worthless after a restart), with a
//! stream position per change so `/sync` can tell what a client has already seen.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::notifier::Notifier;

/// Longest a client may ask to be shown as typing.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Default)]
pub struct Typing {
    rooms: Mutex<HashMap<String, RoomTyping>>,
}

#[derive(Default)]
struct RoomTyping {
    users: HashMap<String, Instant>,
    changed_at: i64,
}

impl Typing {
    /// Start or stop typing. Returns the deadline to expire at, when typing.
    pub fn set(
        &self,
        notifier: &Notifier,
        room_id: &str,
        user_id: &str,
        typing: Option<Duration>,
    ) -> Option<Instant> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let room = rooms.entry(room_id.to_string()).or_default();
        let deadline = typing.map(|t| Instant::now() + t.min(MAX_TIMEOUT));
        let changed = match deadline {
            Some(d) => room.users.insert(user_id.to_string(), d).is_none(),
            None => room.users.remove(user_id).is_some(),
        };
        if changed {
            room.changed_at = notifier.advance_typing();
        }
        deadline
    }

    /// Called when a deadline passes: stop the user typing unless they renewed it.
    pub fn expire(&self, notifier: &Notifier, room_id: &str, user_id: &str, deadline: Instant) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(room) = rooms.get_mut(room_id)
            && room.users.get(user_id) == Some(&deadline)
        {
            room.users.remove(user_id);
            room.changed_at = notifier.advance_typing();
        }
    }

    /// Every room with typing state: room -> (who is typing, position of the last change).
    pub fn snapshot(&self) -> HashMap<String, (Vec<String>, i64)> {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        rooms
            .iter()
            .map(|(room, r)| {
                let mut users: Vec<String> =
                    r.users.iter().filter(|(_, d)| **d > now).map(|(u, _)| u.clone()).collect();
                users.sort();
                (room.clone(), (users, r.changed_at))
            })
            .collect()
    }

    /// Who is typing in a room, and the typing position of the last change.
    pub fn current(&self, room_id: &str) -> (Vec<String>, i64) {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        match rooms.get(room_id) {
            Some(r) => {
                let now = Instant::now();
                let mut users: Vec<String> =
                    r.users.iter().filter(|(_, d)| **d > now).map(|(u, _)| u.clone()).collect();
                users.sort();
                (users, r.changed_at)
            }
            None => (vec![], 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_changes_advance_the_stream_once() {
        let n = Notifier::default();
        let t = Typing::default();
        let d = t.set(&n, "!r:x", "@a:x", Some(Duration::from_secs(10))).expect("deadline");
        let (users, pos) = t.current("!r:x");
        assert_eq!((users, pos), (vec!["@a:x".to_string()], 1));
        // Renewing does not count as a change; a stale expiry does nothing.
        let d2 = t.set(&n, "!r:x", "@a:x", Some(Duration::from_secs(20))).expect("deadline");
        t.expire(&n, "!r:x", "@a:x", d);
        assert_eq!(t.current("!r:x").1, 1);
        t.expire(&n, "!r:x", "@a:x", d2);
        assert_eq!(t.current("!r:x"), (vec![], 2));
        t.set(&n, "!r:x", "@a:x", None);
        assert_eq!(t.current("!r:x").1, 2, "stopping twice is one change");
    }
}
