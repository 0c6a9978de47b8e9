//! Per-client flapping detection on event time.
//!
//! Two kinds of flapping are tracked per client ID:
//! - **takeover**: disconnects with reason `takeovered` reach a threshold
//!   (default 3) within a window (default 5m). Two devices sharing one client
//!   ID kick each other off again and again; one takeover after a network blip
//!   is normal self-repair and never flags (thresholds are at least 2).
//! - **reconnect**: disconnects of any reason reach a threshold (default 15)
//!   within a window (default 1m), EMQX's flapping-detect default.
//!
//! Time is plain data: every call takes event time in milliseconds, and the
//! detector's clock is the newest time it has been shown ([`Detector::advance`]
//! moves it forward when no events arrive). Nothing here reads a clock or does
//! I/O, so tests and `analyze` drive it with numbers.
//!
//! Memory is bounded: at most `max_tracked` client states, kept in an
//! open-addressing table keyed by a seeded 64-bit hash of the client ID, and
//! evicted least recently seen first (a second-chance queue, 16 bytes a
//! client). Two IDs whose hashes collide would share a state; with 64 bits
//! and a per-process seed that is negligible even at millions of clients. A client
//! seen with one disconnect in the window costs one timestamp; only clients
//! with repeated disconnects or a takeover get the heap-allocated rings and
//! the distinct peer addresses (at most `max_peers`) that make a flapping
//! report actionable.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

/// Which flapping pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlapKind {
    /// Repeated `takeovered` disconnects: a client ID conflict.
    Takeover = 0,
    /// Repeated disconnects of any reason: a connect/disconnect loop.
    Reconnect = 1,
}

impl FlapKind {
    pub const ALL: [FlapKind; 2] = [FlapKind::Takeover, FlapKind::Reconnect];

    pub fn as_str(self) -> &'static str {
        match self {
            FlapKind::Takeover => "takeover",
            FlapKind::Reconnect => "reconnect",
        }
    }
}

/// Detector settings; validated by the caller (thresholds >= 2, windows > 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub takeover_window_ms: i64,
    pub takeover_threshold: usize,
    pub reconnect_window_ms: i64,
    pub reconnect_threshold: usize,
    pub max_tracked: usize,
    pub max_peers: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            takeover_window_ms: 5 * 60 * 1000,
            takeover_threshold: 3,
            reconnect_window_ms: 60 * 1000,
            reconnect_threshold: 15,
            max_tracked: 1_000_000,
            max_peers: 8,
        }
    }
}

impl Settings {
    fn window(&self, kind: FlapKind) -> i64 {
        match kind {
            FlapKind::Takeover => self.takeover_window_ms,
            FlapKind::Reconnect => self.reconnect_window_ms,
        }
    }

    fn threshold(&self, kind: FlapKind) -> usize {
        match kind {
            FlapKind::Takeover => self.takeover_threshold,
            FlapKind::Reconnect => self.reconnect_threshold,
        }
    }
}

/// A client that is flapping now, as reported on `/api/v1/flapping`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FlappingClient {
    pub clientid: String,
    pub kind: &'static str,
    /// Events of this kind in the window.
    pub count: usize,
    pub window_seconds: f64,
    /// Distinct peer addresses seen (bounded).
    pub peers: Vec<String>,
    /// Event time (ms) of the oldest event in the window when it was detected.
    pub first_seen: i64,
    /// Event time (ms) of the newest event.
    pub last_seen: i64,
}

/// What one observation changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Entered {
    pub takeover: bool,
    pub reconnect: bool,
}

/// Client states by the 64-bit hash of their ID: open addressing with
/// linear probing, key and state in one 32-byte slot, so a lookup in a table
/// of a million clients usually costs one cache miss (a general hash map
/// costs two: control bytes, then the entry). Key 0 marks an empty slot.
struct Table {
    slots: Vec<(u64, ClientState)>,
    len: usize,
}

/// Most of the table in use before it doubles.
const MAX_LOAD: f64 = 0.75;

impl Table {
    fn new() -> Self {
        Table {
            slots: (0..1024).map(|_| (0, ClientState::EMPTY)).collect(),
            len: 0,
        }
    }

    fn len(&self) -> usize {
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

    fn get(&self, key: u64) -> Option<&ClientState> {
        let i = self.find(key);
        (self.slots[i].0 == key).then(|| &self.slots[i].1)
    }

    /// The state of `key`, inserted as `fresh` if absent; true if inserted.
    fn get_or_insert(&mut self, key: u64, fresh: ClientState) -> (&mut ClientState, bool) {
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

    fn remove(&mut self, key: u64) {
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

    fn grow(&mut self) {
        let doubled = self.slots.len() * 2;
        let old = std::mem::replace(
            &mut self.slots,
            (0..doubled).map(|_| (0, ClientState::EMPTY)).collect(),
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
struct ClientState {
    /// Last-seen sequence number, for eviction.
    seq: u64,
    /// Newest disconnect time while `extra` is `None`; `i64::MIN` if none.
    last: i64,
    extra: Option<Box<Extra>>,
}

impl ClientState {
    const EMPTY: ClientState = ClientState {
        seq: 0,
        last: i64::MIN,
        extra: None,
    };
}

/// Rings and peers for clients with repeated disconnects or a takeover.
struct Extra {
    /// Newest disconnect times, sorted, at most `reconnect_threshold`.
    disconnects: Vec<i64>,
    /// Newest takeover times, sorted, at most `takeover_threshold`.
    takeovers: Vec<i64>,
    peers: Vec<Box<str>>,
}

/// Detail kept for a client while it is flapping.
struct Flap {
    clientid: Box<str>,
    /// Event times of this kind in the window, sorted (bounded).
    times: VecDeque<i64>,
    peers: Vec<Box<str>>,
    first_seen: i64,
    last_seen: i64,
}

/// Upper bound on the event times kept per flapping client.
const MAX_FLAP_TIMES: usize = 10_000;

/// The flapping detector.
pub struct Detector {
    settings: Settings,
    /// Seeded per process, so client IDs cannot be chosen to collide.
    hasher: foldhash::fast::RandomState,
    clients: Table,
    /// Second-chance eviction queue: one `(key, seq)` per tracked client.
    queue: VecDeque<(u64, u64)>,
    flaps: HashMap<(u64, FlapKind), Flap>,
    flapping: [usize; 2],
    seq: u64,
    now: i64,
    evicted: u64,
}

impl Detector {
    pub fn new(settings: Settings) -> Self {
        Detector {
            settings,
            hasher: foldhash::fast::RandomState::default(),
            clients: Table::new(),
            queue: VecDeque::new(),
            flaps: HashMap::new(),
            flapping: [0; 2],
            seq: 0,
            now: i64::MIN,
            evicted: 0,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Client states held now.
    pub fn tracked(&self) -> usize {
        self.clients.len()
    }

    /// Client states dropped at the cap so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Clients flapping now, of one kind.
    pub fn flapping(&self, kind: FlapKind) -> usize {
        self.flapping[kind as usize]
    }

    /// Records one disconnect at event time `t` (ms).
    pub fn observe_disconnect(
        &mut self,
        clientid: &str,
        takeover: bool,
        peer: Option<&str>,
        t: i64,
    ) -> Entered {
        self.now = self.now.max(t);
        let now = self.now;
        // 0 marks an empty slot
        let key = self.hasher.hash_one(clientid).max(1);
        self.seq += 1;
        let seq = self.seq;
        let s = &self.settings;

        let fresh = ClientState {
            seq,
            ..ClientState::EMPTY
        };
        let (state, inserted) = self.clients.get_or_insert(key, fresh);
        if inserted {
            self.queue.push_back((key, seq));
        } else {
            state.seq = seq;
        }

        let reconnect_floor = now.saturating_sub(s.reconnect_window_ms);
        if let Some(extra) = &state.extra {
            let takeover_floor = now.saturating_sub(s.takeover_window_ms);
            let stale = extra
                .disconnects
                .last()
                .is_none_or(|&x| x <= reconnect_floor)
                && extra.takeovers.last().is_none_or(|&x| x <= takeover_floor);
            if stale {
                state.extra = None;
                state.last = i64::MIN;
            }
        }
        if state.extra.is_none() {
            if !takeover && state.last <= reconnect_floor {
                state.last = state.last.max(t);
                self.evict_over_cap();
                return Entered::default();
            }
            let mut disconnects = Vec::with_capacity(2);
            if state.last > reconnect_floor {
                disconnects.push(state.last);
            }
            state.extra = Some(Box::new(Extra {
                disconnects,
                takeovers: Vec::new(),
                peers: Vec::new(),
            }));
        }
        let Some(extra) = state.extra.as_deref_mut() else {
            return Entered::default();
        };

        push_bounded(&mut extra.disconnects, t, s.reconnect_threshold);
        if takeover {
            push_bounded(&mut extra.takeovers, t, s.takeover_threshold);
        }
        if let Some(peer) = peer {
            add_peer(&mut extra.peers, peer, s.max_peers);
        }

        let mut entered = Entered::default();
        for kind in FlapKind::ALL {
            let (ring, applies) = match kind {
                FlapKind::Takeover => (&extra.takeovers, takeover),
                FlapKind::Reconnect => (&extra.disconnects, true),
            };
            if !applies {
                continue;
            }
            let floor = now.saturating_sub(s.window(kind));
            if t <= floor {
                continue; // too late to count in any window
            }
            if let Some(flap) = self.flaps.get_mut(&(key, kind)) {
                insert_sorted(&mut flap.times, t);
                if let Some(peer) = peer {
                    add_peer(&mut flap.peers, peer, s.max_peers);
                }
                flap.last_seen = flap.last_seen.max(t);
                continue;
            }
            let threshold = s.threshold(kind);
            let in_window = ring.iter().filter(|&&x| x > floor).count();
            if in_window >= threshold && self.flaps.len() < s.max_tracked {
                let times: VecDeque<i64> = ring.iter().copied().filter(|&x| x > floor).collect();
                let first_seen = times.front().copied().unwrap_or(t);
                let last_seen = times.back().copied().unwrap_or(t);
                self.flaps.insert(
                    (key, kind),
                    Flap {
                        clientid: clientid.into(),
                        times,
                        peers: extra.peers.clone(),
                        first_seen,
                        last_seen,
                    },
                );
                self.flapping[kind as usize] += 1;
                match kind {
                    FlapKind::Takeover => entered.takeover = true,
                    FlapKind::Reconnect => entered.reconnect = true,
                }
            }
        }
        self.evict_over_cap();
        entered
    }

    /// Moves the clock to `now` (ms) if it is ahead, and ends flapping states
    /// whose count in the window fell below the threshold.
    pub fn advance(&mut self, now: i64) {
        self.now = self.now.max(now);
        let now = self.now;
        let settings = &self.settings;
        let flapping = &mut self.flapping;
        self.flaps.retain(|(_, kind), flap| {
            let floor = now.saturating_sub(settings.window(*kind));
            while flap.times.front().is_some_and(|&x| x <= floor) {
                flap.times.pop_front();
            }
            let keep = flap.times.len() >= settings.threshold(*kind);
            if !keep {
                flapping[*kind as usize] -= 1;
            }
            keep
        });
    }

    /// The clients flapping now, most events first, then by client ID.
    pub fn flapping_clients(&self) -> Vec<FlappingClient> {
        let mut list: Vec<FlappingClient> = self
            .flaps
            .iter()
            .map(|((_, kind), flap)| FlappingClient {
                clientid: flap.clientid.to_string(),
                kind: kind.as_str(),
                count: flap.times.len(),
                window_seconds: self.settings.window(*kind) as f64 / 1000.0,
                peers: flap.peers.iter().map(|p| p.to_string()).collect(),
                first_seen: flap.first_seen,
                last_seen: flap.last_seen,
            })
            .collect();
        list.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.clientid.cmp(&b.clientid))
                .then_with(|| a.kind.cmp(b.kind))
        });
        list
    }

    fn evict_over_cap(&mut self) {
        while self.clients.len() > self.settings.max_tracked {
            let Some((key, seq)) = self.queue.pop_front() else {
                return;
            };
            match self.clients.get(key) {
                Some(state) if state.seq == seq => {
                    self.clients.remove(key);
                    self.evicted += 1;
                }
                // Seen since it was queued: give it a second chance.
                Some(state) => self.queue.push_back((key, state.seq)),
                None => {}
            }
        }
    }
}

/// Inserts `t` into a sorted ring holding the newest `cap` times.
fn push_bounded(ring: &mut Vec<i64>, t: i64, cap: usize) {
    let pos = ring.partition_point(|&x| x <= t);
    if ring.len() < cap {
        ring.insert(pos, t);
    } else if pos > 0 {
        ring.remove(0);
        ring.insert(pos - 1, t);
    }
}

fn insert_sorted(times: &mut VecDeque<i64>, t: i64) {
    if times.len() >= MAX_FLAP_TIMES {
        times.pop_front();
    }
    let pos = times.partition_point(|&x| x <= t);
    times.insert(pos, t);
}

fn add_peer(peers: &mut Vec<Box<str>>, peer: &str, max: usize) {
    if peers.len() < max && !peers.iter().any(|p| &**p == peer) {
        peers.push(peer.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn detector() -> Detector {
        Detector::new(Settings::default())
    }

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

    #[test]
    fn single_takeover_never_flags() {
        let mut d = detector();
        let e = d.observe_disconnect("dev", true, Some("1.1.1.1:1"), 1_000);
        assert_eq!(e, Entered::default());
        assert_eq!(d.flapping(FlapKind::Takeover), 0);
    }

    #[test]
    fn three_takeovers_in_window_flag_and_clear_after_window() {
        let mut d = detector();
        assert!(
            !d.observe_disconnect("dev", true, Some("1.1.1.1:1"), 0)
                .takeover
        );
        assert!(
            !d.observe_disconnect("dev", true, Some("2.2.2.2:2"), MIN)
                .takeover
        );
        let e = d.observe_disconnect("dev", true, Some("1.1.1.1:1"), 2 * MIN);
        assert!(e.takeover);
        assert!(!e.reconnect);
        assert_eq!(d.flapping(FlapKind::Takeover), 1);
        let list = d.flapping_clients();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].clientid, "dev");
        assert_eq!(list[0].count, 3);
        assert_eq!(list[0].peers, vec!["1.1.1.1:1", "2.2.2.2:2"]);
        assert_eq!((list[0].first_seen, list[0].last_seen), (0, 2 * MIN));
        assert_eq!(list[0].window_seconds, 300.0);

        // still three in (now-5m, now] at 4m59.999s
        d.advance(5 * MIN - 1);
        assert_eq!(d.flapping(FlapKind::Takeover), 1);
        // the first one leaves the window at exactly 5m
        d.advance(5 * MIN);
        assert_eq!(d.flapping(FlapKind::Takeover), 0);
        assert!(d.flapping_clients().is_empty());
    }

    #[test]
    fn takeovers_spread_wider_than_the_window_do_not_flag() {
        let mut d = detector();
        for i in 0..10 {
            let e = d.observe_disconnect("dev", true, None, i * 3 * MIN);
            assert!(!e.takeover, "takeover {i}");
        }
        assert_eq!(d.flapping(FlapKind::Takeover), 0);
    }

    #[test]
    fn late_events_count_by_event_time() {
        let mut d = detector();
        d.observe_disconnect("dev", true, None, 10 * MIN);
        // delivered late, but inside the window of event time
        d.observe_disconnect("dev", true, None, 9 * MIN);
        let e = d.observe_disconnect("dev", true, None, 8 * MIN);
        assert!(e.takeover);
        // a replayed event from long ago does not count
        let mut d = detector();
        d.observe_disconnect("dev", true, None, 100 * MIN);
        d.observe_disconnect("dev", true, None, 100 * MIN);
        let e = d.observe_disconnect("dev", true, None, MIN);
        assert!(!e.takeover);
    }

    #[test]
    fn reconnect_loop_flags_at_fifteen_per_minute() {
        let mut d = detector();
        for i in 0..14 {
            let e = d.observe_disconnect("loop", false, Some("9.9.9.9:1"), i * 1000);
            assert_eq!(e, Entered::default(), "event {i}");
        }
        let e = d.observe_disconnect("loop", false, Some("9.9.9.9:1"), 14_000);
        assert!(e.reconnect && !e.takeover);
        assert_eq!(d.flapping(FlapKind::Reconnect), 1);
        // the 16th is counted in the same flap, not a new detection
        assert_eq!(
            d.observe_disconnect("loop", false, None, 15_000),
            Entered::default()
        );
        assert_eq!(d.flapping_clients()[0].count, 16);
        d.advance(14_000 + MIN);
        assert_eq!(d.flapping(FlapKind::Reconnect), 0);
    }

    #[test]
    fn eviction_keeps_the_cap_and_prefers_recently_seen() {
        let mut d = Detector::new(Settings {
            max_tracked: 3,
            ..Settings::default()
        });
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            d.observe_disconnect(id, false, None, i as i64);
        }
        d.observe_disconnect("a", false, None, 10); // a is recent again
        d.observe_disconnect("d", false, None, 11); // evicts b, the least recently seen
        assert_eq!(d.tracked(), 3);
        assert_eq!(d.evicted(), 1);
        // b was dropped: two takeovers of b now are only two, but a keeps its history
        d.observe_disconnect("a", true, None, 12);
        d.observe_disconnect("a", true, None, 13);
        assert!(d.observe_disconnect("a", true, None, 14).takeover);
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
