//! Which client IDs cause the most disconnects of each reason, over a
//! sliding window, in bounded memory.
//!
//! Each reason keeps a Space-Saving summary (Metwally, Agrawal, El Abbadi,
//! 2005) of `capacity` counters per fifth of the window. A client already
//! counted adds one to its counter; a new client takes over the smallest
//! counter and inherits its count as its error, so a counter is never less
//! than the client's true count and never more than the true count plus its
//! error. Any client with more than `N / capacity` of a fifth's `N` events
//! holds a counter there. Reading merges the five summaries: a client missing
//! from a full summary may have had up to that summary's smallest count
//! there, which is added to its count and its error.
//!
//! Memory is bounded by reasons × 5 × `capacity` counters, each holding at
//! most [`MAX_ID_BYTES`] of client ID and [`MAX_PEERS`] peer addresses of at
//! most [`MAX_PEER_BYTES`]: with the default 64 counters that is at most
//! 17 × 5 × 64 = 5,440 counters of at most about 710 bytes each, under 4 MiB
//! however many clients there are.
//! Time is the arrival clock passed in as data, never an event's own time, so
//! one client's clock cannot move another's window.

use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::core::reasons::Reason;

/// Fifths of the window: the window slides in steps of one fifth.
const BUCKETS: usize = 5;
/// Distinct peer addresses kept per counter.
pub const MAX_PEERS: usize = 4;
/// Longest client ID kept, in bytes (cut at a character boundary).
pub const MAX_ID_BYTES: usize = 256;
/// Longest peer address kept, in bytes.
pub const MAX_PEER_BYTES: usize = 64;

/// Top-devices settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopSettings {
    /// The sliding window, in milliseconds.
    pub window_ms: i64,
    /// Counters per reason per fifth of the window.
    pub capacity: usize,
}

impl Default for TopSettings {
    fn default() -> Self {
        TopSettings {
            window_ms: 300_000,
            capacity: 64,
        }
    }
}

impl TopSettings {
    /// Counters needed to list `listed` clients per reason reliably.
    pub fn capacity_for(listed: usize) -> usize {
        (listed * 8).max(64)
    }
}

/// One client among the top of a reason, as `/api/v1/top` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopClient {
    pub clientid: String,
    /// Disconnects of this reason in the window: an upper bound, exact when
    /// `error` is 0.
    pub count: u64,
    /// How much `count` may exceed the true count.
    pub error: u64,
    /// Distinct peer addresses seen with these disconnects (bounded).
    pub peers: Vec<String>,
    /// Arrival time (ms since the epoch) of the newest of them.
    pub last_seen: i64,
}

/// The top clients of one reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopReason {
    pub reason: &'static str,
    pub clients: Vec<TopClient>,
}

/// The top clients of every reason with disconnects in the window, as
/// `/api/v1/top` serves it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TopReport {
    pub window_seconds: f64,
    pub reasons: Vec<TopReason>,
}

struct Slot {
    key: u64,
    id: String,
    error: u64,
    last_seen: i64,
    peers: Vec<String>,
}

/// One Space-Saving summary. `counts` sits apart from the slots so finding
/// the smallest is a scan over one small array.
#[derive(Default)]
struct Summary {
    counts: Vec<u64>,
    slots: Vec<Slot>,
    index: HashMap<u64, u32, foldhash::fast::FixedState>,
    /// Never above the smallest count (counts only grow), so a slot holding
    /// it is a smallest one.
    floor: u64,
    /// Where the search for a smallest slot resumes: in a storm of new
    /// clients the next one is usually right there.
    cursor: usize,
}

fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn add_peer(peers: &mut Vec<String>, peer: Option<&str>) {
    if let Some(peer) = peer {
        let peer = cut(peer, MAX_PEER_BYTES);
        if peers.len() < MAX_PEERS && !peers.iter().any(|p| p == peer) {
            peers.push(peer.to_string());
        }
    }
}

impl Summary {
    fn clear(&mut self) {
        self.counts.clear();
        self.slots.clear();
        self.index.clear();
        self.floor = 0;
        self.cursor = 0;
    }

    /// A slot with the smallest count: the first from the cursor holding
    /// the floor, else (all have grown past it) a fresh scan.
    fn smallest(&mut self) -> usize {
        let n = self.counts.len();
        for step in 0..n {
            let i = (self.cursor + step) % n;
            if self.counts[i] == self.floor {
                self.cursor = (i + 1) % n;
                return i;
            }
        }
        let mut min = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            if c < self.counts[min] {
                min = i;
            }
        }
        self.floor = self.counts[min];
        self.cursor = (min + 1) % n;
        min
    }

    fn observe(&mut self, capacity: usize, key: u64, id: &str, peer: Option<&str>, now: i64) {
        if let Some(&i) = self.index.get(&key) {
            let i = i as usize;
            self.counts[i] += 1;
            let slot = &mut self.slots[i];
            slot.last_seen = slot.last_seen.max(now);
            add_peer(&mut slot.peers, peer);
            return;
        }
        if self.slots.len() < capacity {
            let mut peers = Vec::new();
            add_peer(&mut peers, peer);
            self.index.insert(key, self.slots.len() as u32);
            self.counts.push(1);
            self.slots.push(Slot {
                key,
                id: cut(id, MAX_ID_BYTES).to_string(),
                error: 0,
                last_seen: now,
                peers,
            });
            return;
        }
        // the smallest counter goes to the newcomer, which inherits its count
        let min = self.smallest();
        let slot = &mut self.slots[min];
        self.index.remove(&slot.key);
        self.index.insert(key, min as u32);
        slot.key = key;
        slot.error = self.counts[min];
        self.counts[min] += 1;
        // reuses the slot's buffers: no allocation once they are large enough
        slot.id.clear();
        slot.id.push_str(cut(id, MAX_ID_BYTES));
        slot.last_seen = now;
        // the first peer's buffer is reused too
        slot.peers.truncate(1);
        match (peer, slot.peers.first_mut()) {
            (Some(p), Some(first)) => {
                first.clear();
                first.push_str(cut(p, MAX_PEER_BYTES));
            }
            (Some(p), None) => slot.peers.push(cut(p, MAX_PEER_BYTES).to_string()),
            (None, _) => slot.peers.clear(),
        }
    }

    /// What a client absent from this summary may have had here at most.
    fn floor(&self, capacity: usize) -> u64 {
        if self.slots.len() < capacity {
            0
        } else {
            self.counts.iter().copied().min().unwrap_or(0)
        }
    }
}

/// One fifth of the window: a summary per reason.
struct Bucket {
    /// Which fifth since the epoch this bucket holds.
    epoch: i64,
    reasons: Vec<Summary>,
}

/// The top clients per reason over a sliding window.
pub struct TopClients {
    settings: TopSettings,
    step_ms: i64,
    hasher: foldhash::fast::FixedState,
    buckets: Vec<Bucket>,
    /// The newest fifth seen.
    newest: i64,
}

impl TopClients {
    pub fn new(settings: TopSettings) -> Self {
        let step_ms = (settings.window_ms / BUCKETS as i64).max(1);
        let buckets = (0..BUCKETS)
            .map(|_| Bucket {
                epoch: i64::MIN,
                reasons: Reason::all().map(|_| Summary::default()).collect(),
            })
            .collect();
        TopClients {
            settings,
            step_ms,
            hasher: foldhash::fast::FixedState::default(),
            buckets,
            newest: i64::MIN,
        }
    }

    pub fn settings(&self) -> &TopSettings {
        &self.settings
    }

    /// Counts one disconnect of `reason` by `clientid` that arrived at `now`.
    pub fn observe(&mut self, reason: Reason, clientid: &str, peer: Option<&str>, now: i64) {
        // a clock that steps back counts into the oldest fifth still in the
        // window, never into one that was already dropped
        let epoch = now
            .div_euclid(self.step_ms)
            .max(self.newest.saturating_sub(BUCKETS as i64 - 1));
        self.newest = self.newest.max(epoch);
        let bucket = &mut self.buckets[epoch.rem_euclid(BUCKETS as i64) as usize];
        if bucket.epoch != epoch {
            bucket.epoch = epoch;
            bucket.reasons.iter_mut().for_each(Summary::clear);
        }
        let key = self.hasher.hash_one(clientid);
        bucket.reasons[reason.index()].observe(self.settings.capacity, key, clientid, peer, now);
    }

    /// The `n` clients with the most disconnects of each reason in the
    /// window ending at `now`, most first (ties by client ID); reasons with
    /// none are left out. Costs at most reasons × 5 × `capacity` steps.
    pub fn top(&mut self, now: i64, n: usize) -> Vec<TopReason> {
        let current = now.div_euclid(self.step_ms).max(self.newest);
        self.newest = current;
        let live: Vec<&Bucket> = self
            .buckets
            .iter()
            .filter(|b| b.epoch > current - BUCKETS as i64 && b.epoch <= current)
            .collect();
        let capacity = self.settings.capacity;
        let mut out = Vec::new();
        for reason in Reason::all() {
            let summaries: Vec<&Summary> = live
                .iter()
                .map(|b| &b.reasons[reason.index()])
                .filter(|s| !s.slots.is_empty())
                .collect();
            if summaries.is_empty() || n == 0 {
                continue;
            }
            // key -> (client, fifths it was counted in, as a bit set)
            let mut merged: HashMap<u64, (TopClient, u8)> = HashMap::new();
            for (bit, summary) in summaries.iter().enumerate() {
                for (slot, &count) in summary.slots.iter().zip(&summary.counts) {
                    let entry = merged.entry(slot.key).or_insert_with(|| {
                        (
                            TopClient {
                                clientid: slot.id.clone(),
                                count: 0,
                                error: 0,
                                peers: Vec::new(),
                                last_seen: slot.last_seen,
                            },
                            0,
                        )
                    });
                    entry.0.count += count;
                    entry.0.error += slot.error;
                    entry.0.last_seen = entry.0.last_seen.max(slot.last_seen);
                    for peer in &slot.peers {
                        add_peer(&mut entry.0.peers, Some(peer));
                    }
                    entry.1 |= 1 << bit;
                }
            }
            let floors: Vec<u64> = summaries.iter().map(|s| s.floor(capacity)).collect();
            let mut clients: Vec<TopClient> = merged
                .into_values()
                .map(|(mut client, seen)| {
                    for (bit, floor) in floors.iter().enumerate() {
                        if seen & (1 << bit) == 0 {
                            client.count += floor;
                            client.error += floor;
                        }
                    }
                    client
                })
                .collect();
            clients.sort_unstable_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then_with(|| a.clientid.cmp(&b.clientid))
            });
            clients.truncate(n);
            out.push(TopReason {
                reason: reason.as_str(),
                clients,
            });
        }
        out
    }

    /// Counters in use, over every reason and fifth (for the memory bound).
    pub fn counters(&self) -> usize {
        self.buckets
            .iter()
            .flat_map(|b| &b.reasons)
            .map(|s| s.slots.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn small(capacity: usize) -> TopClients {
        TopClients::new(TopSettings {
            window_ms: 300_000,
            capacity,
        })
    }

    #[test]
    fn counts_exactly_while_the_summary_has_room() {
        let mut top = small(8);
        for (id, n) in [("a", 5), ("b", 3), ("c", 3), ("d", 1)] {
            for i in 0..n {
                let peer = format!("10.0.0.{}:1", i % 2);
                top.observe(Reason::KeepaliveTimeout, id, Some(&peer), 1_000 + i);
            }
        }
        top.observe(Reason::TcpClosed, "z", None, 2_000);
        let list = top.top(2_000, 3);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].reason, "keepalive_timeout");
        let got: Vec<(&str, u64, u64)> = list[0]
            .clients
            .iter()
            .map(|c| (c.clientid.as_str(), c.count, c.error))
            .collect();
        assert_eq!(got, [("a", 5, 0), ("b", 3, 0), ("c", 3, 0)]);
        assert_eq!(list[0].clients[0].peers, ["10.0.0.0:1", "10.0.0.1:1"]);
        assert_eq!(list[0].clients[0].last_seen, 1_004);
        assert_eq!(list[1].reason, "tcp_closed");
        assert_eq!(list[1].clients[0].peers, Vec::<String>::new());
    }

    #[test]
    fn the_window_slides_in_fifths() {
        let mut top = small(8);
        top.observe(Reason::Kicked, "old", None, 0);
        top.observe(Reason::Kicked, "new", None, 240_000);
        assert_eq!(top.top(299_999, 5)[0].clients.len(), 2);
        // at 300 s the first fifth (0..60 s) has left the window
        let list = top.top(300_000, 5);
        let ids: Vec<&str> = list[0]
            .clients
            .iter()
            .map(|c| c.clientid.as_str())
            .collect();
        assert_eq!(ids, ["new"]);
        assert!(top.top(540_000, 5).is_empty());
        // a clock that steps back lands in the oldest fifth still counted
        top.observe(Reason::Kicked, "late", None, 0);
        assert_eq!(top.top(540_000, 5)[0].clients[0].clientid, "late");
        assert!(top.top(600_000, 5).is_empty());
    }

    #[test]
    fn memory_stays_bounded_under_a_million_distinct_clients() {
        let mut top = small(64);
        for i in 0..1_000_000u64 {
            let id = format!("{}-{i}", "x".repeat(400));
            let reason = Reason::all()
                .nth((i % 17) as usize)
                .unwrap_or(Reason::Other);
            top.observe(reason, &id, Some("203.0.113.9:1883"), (i * 3 / 10) as i64);
        }
        assert_eq!(top.counters(), 17 * 5 * 64);
        let list = top.top(299_999, 5);
        assert!(list
            .iter()
            .flat_map(|r| &r.clients)
            .all(|c| c.clientid.len() <= MAX_ID_BYTES));
    }

    #[test]
    fn long_ids_are_cut_at_a_character_boundary() {
        let mut top = small(4);
        let id = "é".repeat(200);
        top.observe(Reason::Normal, &id, Some(&"p".repeat(100)), 0);
        let c = &top.top(0, 1)[0].clients[0];
        assert_eq!(c.clientid, "é".repeat(128));
        assert_eq!(c.peers[0].len(), MAX_PEER_BYTES);
    }

    /// Exact counts per client within the window, for the stream given.
    fn exact(stream: &[(u16, i64)]) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for (id, _) in stream {
            *counts.entry(format!("c{id}")).or_insert(0) += 1;
        }
        counts
    }

    /// Checks the Space-Saving guarantees against exact counts: every
    /// listed count bounds the true count from above within its error, and
    /// every client with more than total / capacity events in one fifth is
    /// listed ahead of any client with fewer than its lower bound.
    fn check(stream: &[(u16, i64)], capacity: usize) -> Result<(), TestCaseError> {
        let mut top = small(capacity);
        for &(id, t) in stream {
            top.observe(Reason::KeepaliveTimeout, &format!("c{id}"), None, t);
        }
        let now = stream.iter().map(|&(_, t)| t).max().unwrap_or(0);
        let truth = exact(stream);
        let list = top.top(now, usize::MAX);
        let listed = list.first().map(|r| r.clients.clone()).unwrap_or_default();
        for c in &listed {
            let t = truth.get(&c.clientid).copied().unwrap_or(0);
            prop_assert!(
                c.count >= t,
                "{} counted {} < true {}",
                c.clientid,
                c.count,
                t
            );
            prop_assert!(
                c.count - c.error <= t,
                "{} lower bound above {}",
                c.clientid,
                t
            );
        }
        let total = stream.len() as u64;
        for (id, &t) in &truth {
            if t > total / capacity as u64 {
                prop_assert!(
                    listed.iter().any(|c| &c.clientid == id),
                    "heavy hitter {id} ({t} of {total}) missing"
                );
            }
        }
        // the five true heaviest are the five listed first whenever their
        // counts are apart by more than the error bound
        let bound = total / capacity as u64;
        let mut heaviest: Vec<(&String, &u64)> = truth.iter().collect();
        heaviest.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        if let Some((id, &t)) = heaviest.first() {
            let runner_up = heaviest.get(1).map_or(0, |x| *x.1);
            if t > runner_up + 2 * bound {
                prop_assert_eq!(&listed[0].clientid, *id);
            }
        }
        Ok(())
    }

    /// A skewed stream: client k gets about 1/(k+1) of the events (Zipf).
    fn zipf() -> impl Strategy<Value = Vec<(u16, i64)>> {
        proptest::collection::vec((0.0f64..1.0, 0i64..240_000), 1..4000).prop_map(|v| {
            let mut out: Vec<(u16, i64)> = v
                .into_iter()
                .map(|(u, t)| (((1.0 / (u * 0.999 + 0.001)) as u16).min(2000), t))
                .collect();
            out.sort_by_key(|&(_, t)| t);
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn accurate_on_skewed_streams(stream in zipf(), capacity in 8usize..80) {
            check(&stream, capacity)?;
        }

        /// Adversarial: heavy hitters arrive only at the end, after a flood
        /// of distinct clients has churned every counter many times.
        #[test]
        fn accurate_when_heavy_hitters_come_last(
            flood in 100u16..3000,
            heavy in 1u16..6,
            repeats in 20u64..200,
            capacity in 8usize..80,
        ) {
            let mut stream: Vec<(u16, i64)> = (0..flood).map(|i| (1000 + i, 1)).collect();
            for r in 0..repeats {
                for h in 0..heavy {
                    stream.push((h, 2 + r as i64));
                }
            }
            check(&stream, capacity)?;
        }
    }
}
