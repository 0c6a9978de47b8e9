//! Event ids seen lately, to drop the repeats of senders that deliver at
//! least once (Azure Event Grid): an id seen within the window is a
//! repeat. Memory is bounded: at the cap the oldest id is forgotten first.
//! Time is passed in, as everywhere in the core.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// A hasher for keys that are hashes already.
#[derive(Debug, Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The ids seen in the last `window_ms`, at most `cap` of them.
#[derive(Debug)]
pub struct Recent {
    window_ms: i64,
    cap: usize,
    /// The hash of an id, and when it was seen (the key is a hash
    /// already: it is not hashed again).
    seen: HashMap<u64, i64, BuildHasherDefault<Identity>>,
    /// (when, hash) in the order seen.
    order: VecDeque<(i64, u64)>,
    hasher: foldhash::fast::FixedState,
}

impl Recent {
    pub fn new(window_ms: i64, cap: usize) -> Recent {
        Recent {
            window_ms,
            cap: cap.max(1),
            seen: HashMap::default(),
            order: VecDeque::new(),
            hasher: foldhash::fast::FixedState::with_seed(0x6d71_7474_6964),
        }
    }

    /// True the first time `id` is seen within the window, at `now_ms`;
    /// false for a repeat.
    pub fn first_time(&mut self, id: &str, now_ms: i64) -> bool {
        self.expire(now_ms);
        let key = self.hasher.hash_one(id);
        if self.seen.contains_key(&key) {
            return false;
        }
        if self.seen.len() >= self.cap {
            if let Some((_, oldest)) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(key, now_ms);
        self.order.push_back((now_ms, key));
        true
    }

    /// Ids held now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn expire(&mut self, now_ms: i64) {
        let horizon = now_ms.saturating_sub(self.window_ms);
        while let Some(&(at, key)) = self.order.front() {
            if at > horizon {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_within_the_window_is_dropped_and_the_memory_is_bounded() {
        let mut recent = Recent::new(600_000, 3);
        assert!(recent.first_time("a", 0));
        assert!(!recent.first_time("a", 599_999));
        // after the window it counts again
        assert!(recent.first_time("a", 600_000));
        assert!(recent.first_time("b", 600_001));
        assert!(recent.first_time("c", 600_002));
        // the cap forgets the oldest ("a") to hold "d"
        assert!(recent.first_time("d", 600_003));
        assert_eq!(recent.len(), 3);
        assert!(recent.first_time("a", 600_004));
        assert!(!recent.first_time("d", 600_005));
        // a million ids never hold more than the cap
        let mut recent = Recent::new(600_000, 1000);
        for i in 0..1_000_000 {
            recent.first_time(&i.to_string(), i);
        }
        assert_eq!(recent.len(), 1000);
    }
}
