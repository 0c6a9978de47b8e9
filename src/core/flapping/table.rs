//! The client table: every tracked client's compact state, by the 64-bit
//! hash of its ID, in an open-addressing table (key and state in one slot,
//! so a lookup among a million clients usually costs one cache miss).

/// Client states by the 64-bit hash of their ID: open addressing with
/// linear probing, key and state in one 32-byte slot, so a lookup in a table
/// of a million clients usually costs one cache miss (a general hash map
/// costs two: control bytes, then the entry). Key 0 marks an empty slot.
pub(super) struct Table {
    slots: Vec<(u64, ClientState)>,
    len: usize,
}

/// Most of the table in use before it doubles.
const MAX_LOAD: f64 = 0.75;

impl Table {
    pub(super) fn new() -> Self {
        Table {
            slots: (0..1024).map(|_| (0, ClientState::EMPTY)).collect(),
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Where `key` is, or the empty slot where it would go.
    fn find(&self, key: u64) -> usize {
        let mask = self.mask();
        let mut i = key as usize & mask;
        loop {
            let k = self.slots[i].0;
            if k == key || k == 0 {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    pub(super) fn get_mut(&mut self, key: u64) -> Option<&mut ClientState> {
        let i = self.find(key);
        (self.slots[i].0 == key).then(|| &mut self.slots[i].1)
    }

    pub(super) fn get(&self, key: u64) -> Option<&ClientState> {
        let i = self.find(key);
        (self.slots[i].0 == key).then(|| &self.slots[i].1)
    }

    /// The state of `key`, inserted as `fresh` if absent; true if inserted.
    pub(super) fn get_or_insert(
        &mut self,
        key: u64,
        fresh: ClientState,
    ) -> (&mut ClientState, bool) {
        if (self.len + 1) as f64 > self.slots.len() as f64 * MAX_LOAD {
            self.grow();
        }
        let i = self.find(key);
        let inserted = self.slots[i].0 == 0;
        if inserted {
            self.slots[i] = (key, fresh);
            self.len += 1;
        }
        (&mut self.slots[i].1, inserted)
    }

    pub(super) fn remove(&mut self, key: u64) {
        let mask = self.mask();
        let mut hole = self.find(key);
        if self.slots[hole].0 != key {
            return;
        }
        self.len -= 1;
        // backward-shift deletion: pull later members of the run into the
        // hole when the hole lies on their probe path
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let k = self.slots[j].0;
            if k == 0 {
                break;
            }
            let home = k as usize & mask;
            if (hole.wrapping_sub(home) & mask) < (j.wrapping_sub(home) & mask) {
                self.slots.swap(hole, j);
                hole = j;
            }
        }
        self.slots[hole] = (0, ClientState::EMPTY);
    }

    /// Halves the table while it is less than an eighth full, so memory
    /// taken during a storm is given back once its clients expire.
    pub(super) fn shrink(&mut self) {
        let mut size = self.slots.len();
        while size > 1024 && self.len * 8 < size {
            size /= 2;
        }
        if size < self.slots.len() {
            self.rebuild(size);
        }
    }

    fn grow(&mut self) {
        self.rebuild(self.slots.len() * 2);
    }

    fn rebuild(&mut self, size: usize) {
        let old = std::mem::replace(
            &mut self.slots,
            (0..size).map(|_| (0, ClientState::EMPTY)).collect(),
        );
        for (key, state) in old {
            if key != 0 {
                let i = self.find(key);
                self.slots[i] = (key, state);
            }
        }
    }
}

/// The compact state every tracked client has.
pub(super) struct ClientState {
    /// Last-seen sequence number, for eviction.
    pub(super) seq: u64,
    /// Newest disconnect time while `extra` is `None`; `i64::MIN` if none.
    pub(super) last: i64,
    pub(super) extra: Option<Box<Extra>>,
}

impl ClientState {
    pub(super) const EMPTY: ClientState = ClientState {
        seq: 0,
        last: i64::MIN,
        extra: None,
    };

    /// The newest disconnect time held (`i64::MIN` if none).
    pub(super) fn newest(&self) -> i64 {
        match &self.extra {
            None => self.last,
            // every takeover is in `disconnects` too, which keeps the newest
            Some(extra) => extra.disconnects.last().copied().unwrap_or(i64::MIN),
        }
    }

    /// True when no time it holds is inside either window's floor.
    pub(super) fn is_stale(&self, reconnect_floor: i64, takeover_floor: i64) -> bool {
        match &self.extra {
            None => self.last <= reconnect_floor,
            Some(extra) => {
                extra
                    .disconnects
                    .last()
                    .is_none_or(|&x| x <= reconnect_floor)
                    && extra.takeovers.last().is_none_or(|&x| x <= takeover_floor)
            }
        }
    }
}

/// Rings and peers for clients with repeated disconnects or a takeover.
pub(super) struct Extra {
    /// Newest disconnect times, sorted, at most `reconnect_threshold`.
    pub(super) disconnects: Vec<i64>,
    /// Newest takeover times, sorted, at most `takeover_threshold`.
    pub(super) takeovers: Vec<i64>,
    pub(super) peers: Vec<Box<str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_insert_find_remove_with_collisions_and_growth() {
        let mut t = Table::new();
        // keys that share home slots (same low bits) exercise probing and
        // backward-shift deletion; 5,000 of them force growth
        let keys: Vec<u64> = (1..=5000u64).map(|i| (i << 20) | (i % 7)).collect();
        for (n, k) in keys.iter().enumerate() {
            let fresh = ClientState {
                seq: n as u64,
                ..ClientState::EMPTY
            };
            let (_, inserted) = t.get_or_insert(*k, fresh);
            assert!(inserted);
        }
        assert_eq!(t.len(), keys.len());
        for (n, k) in keys.iter().enumerate() {
            assert_eq!(t.get(*k).map(|s| s.seq), Some(n as u64));
        }
        for k in keys.iter().step_by(2) {
            t.remove(*k);
        }
        t.remove(12345); // absent: no change
        assert_eq!(t.len(), keys.len() / 2);
        for (n, k) in keys.iter().enumerate() {
            let want = (n % 2 == 1).then_some(n as u64);
            assert_eq!(t.get(*k).map(|s| s.seq), want, "key {k}");
        }
        let (_, inserted) = t.get_or_insert(keys[1], ClientState::EMPTY);
        assert!(!inserted);
    }

    proptest::proptest! {
        /// The table behaves as a map under any mix of inserts and removes,
        /// with keys crowded onto few home slots.
        #[test]
        fn table_agrees_with_a_map(ops in proptest::collection::vec((proptest::bool::ANY, 0u64..64, 0u64..4), 0..600)) {
            let mut table = Table::new();
            let mut model = std::collections::HashMap::new();
            for (n, (insert, id, home)) in ops.into_iter().enumerate() {
                let key = (id + 1) << 32 | home; // four home slots
                if insert {
                    let fresh = ClientState { seq: n as u64, ..ClientState::EMPTY };
                    let (_, inserted) = table.get_or_insert(key, fresh);
                    proptest::prop_assert_eq!(inserted, !model.contains_key(&key));
                    model.entry(key).or_insert(n as u64);
                } else {
                    table.remove(key);
                    model.remove(&key);
                }
                proptest::prop_assert_eq!(table.len(), model.len());
                for (k, seq) in &model {
                    proptest::prop_assert_eq!(table.get(*k).map(|s| s.seq), Some(*seq));
                }
            }
        }
    }
}
