//! Which client IDs stand out among the disconnects of each reason, over a
//! sliding window, in bounded memory.
//!
//! The window slides in fifths; six fifths are kept (the window's five and
//! the one its start falls in), so every disconnect inside the window is
//! counted, and at most one fifth before it. Each fifth has, per reason, a
//! Space-Saving summary (Metwally, Agrawal, El Abbadi, 2005) of `capacity`
//! counters, behind a doorkeeper, as TinyLFU puts one in front of its
//! cache: a table of at most [`DOORKEEPER_CAP`] hashes per fifth that counts
//! each client's disconnects in that fifth exactly. A client is admitted to
//! the summary once its counts over every fifth still in the window reach
//! [`STANDOUT_MIN`], however they are spread over the fifths. A flood of
//! devices that each disconnect once or twice therefore never churns the
//! counters, and a device with hundreds of disconnects inside it is counted
//! exactly. Past a full doorkeeper, a count-min sketch counts
//! the rest; it never undercounts, so a device with [`STANDOUT_MIN`] is
//! still admitted, with the disconnects the sketch saw as its error.
//!
//! In the summary a client already counted adds one to its counter; a new
//! client takes over the smallest counter and inherits its count as its
//! error, so `count - error` never exceeds the true count. What is listed
//! (`/api/v1/top`, `mqtt_client_top_disconnects`, the pages) is that lower
//! bound, summed over the fifths, plus the doorkeeper's exact count for each
//! fifth where the client was not admitted, and only for clients admitted
//! somewhere: a listed count never overstates a device's disconnects, and a
//! device that disconnected once or twice is never listed.
//!
//! Each reason also counts the distinct clients in the window, crediting a
//! client to the newest fifth it was seen in, so a page can say "no single
//! device stands out: N devices". That sentence is only true when no client
//! was admitted in the window; where one was and the list is still empty
//! (counters lost to more candidates than they hold), or a fifth's sketch
//! took more than [`SKETCH_EVENTS`], the reason is [`TopReason::saturated`]
//! and the pages say that there were too many devices to tell.
//!
//! Memory is bounded by reasons × 6 × `capacity` counters, each holding one
//! client ID as its label value (at most 128 characters, or 128 plus `~`
//! and a hash of the whole ID) and [`MAX_PEERS`] peer addresses of at most
//! [`MAX_PEER_BYTES`], plus 6 doorkeepers of at most [`DOORKEEPER_CAP`]
//! 8-byte hashes with a one-byte count (tables of at most 262,144 slots of
//! 17 bytes: under 26 MiB), plus, only for a fifth whose doorkeeper filled,
//! a 4 MiB sketch, however many clients there are. Time is the arrival
//! clock passed in as data, never an event's own time, so one client's clock
//! cannot move another's window.

use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::core::reasons::Reason;

/// Steps of the window: it slides in steps of one fifth.
const FIFTHS: i64 = 5;
/// Fifths kept: the five of the window and the one the window's start falls
/// in, so every disconnect inside the window is counted (and at most one
/// fifth of the window before it).
const BUCKETS: usize = FIFTHS as usize + 1;
/// Distinct peer addresses kept per counter.
pub const MAX_PEERS: usize = 4;
/// Longest peer address kept, in bytes.
pub const MAX_PEER_BYTES: usize = 64;
/// A client stands out, and is listed, with at least this many disconnects
/// of one reason in the window.
pub const STANDOUT_MIN: u64 = 3;
/// Clients a fifth's doorkeeper holds, over all reasons.
pub const DOORKEEPER_CAP: usize = 1 << 17;
/// Counters per reason per fifth, at least: enough that a device standing
/// out among a few hundred repeat offenders keeps its counter.
pub const MIN_CAPACITY: usize = 256;
/// A doorkeeper's mark for a client admitted to the summary; the low bits
/// keep its count in that fifth when it was admitted.
const ADMITTED: u8 = 0x80;
/// The most a doorkeeper counts (the count's bits).
const COUNT_MAX: u8 = ADMITTED - 1;
/// Disconnects a fifth's overflow sketch takes before it is too full to
/// tell a device with [`STANDOUT_MIN`] from noise: past this the fifth is
/// saturated, and no list says that no device stands out.
pub const SKETCH_EVENTS: u64 = 1 << 20;
/// Cells per row of the overflow sketch (2 bits each).
const SKETCH_BITS: u32 = 22;
const SKETCH_ROWS: usize = 4;

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
            capacity: MIN_CAPACITY,
        }
    }
}

impl TopSettings {
    /// Counters needed to list `listed` clients per reason reliably.
    pub fn capacity_for(listed: usize) -> usize {
        (listed * 8).max(MIN_CAPACITY)
    }
}

/// One client among the top of a reason, as `/api/v1/top` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopClient {
    pub clientid: String,
    /// Disconnects of this reason in the window: never more than the true
    /// count, exact when `error` is 0.
    pub count: u64,
    /// How much the true count may exceed `count`.
    pub error: u64,
    /// Distinct peer addresses seen with these disconnects (bounded).
    pub peers: Vec<String>,
    /// Arrival time (ms since the epoch) of the newest of them.
    pub last_seen: i64,
}

/// The top clients of one reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopReason {
    pub reason: Reason,
    /// Distinct client IDs with a disconnect of this reason in the window
    /// (an estimate once a doorkeeper or summary has overflowed).
    pub devices: u64,
    /// Too many devices in the window to tell whether one stands out: more
    /// than [`SKETCH_EVENTS`] past a full doorkeeper in a fifth, or devices
    /// with [`STANDOUT_MIN`] that lost their counters to others. An empty
    /// list then does not mean that none stands out.
    pub saturated: bool,
    /// The clients that stand out (at least [`STANDOUT_MIN`]), most first.
    pub clients: Vec<TopClient>,
    /// The source networks that stand out, most first (filled in by the
    /// pipeline from a second summary keyed by network).
    pub networks: Vec<TopNetwork>,
    /// The broker nodes with 3 or more of these disconnects in the window,
    /// most first (filled in by the pipeline; empty when no event names a
    /// node). Nodes past `--node.max-nodes` are `other`.
    pub nodes: Vec<TopNode>,
}

impl TopReason {
    /// A reason with nothing listed: no device, network or node.
    pub fn empty(reason: Reason) -> TopReason {
        TopReason {
            reason,
            devices: 0,
            saturated: false,
            clients: Vec::new(),
            networks: Vec::new(),
            nodes: Vec::new(),
        }
    }
}

/// One broker node's share of a reason's disconnects in the window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopNode {
    pub node: String,
    /// Disconnects of this reason on it in the window (exact: the nodes
    /// are few).
    pub count: u64,
}

/// One source network among the top of a reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopNetwork {
    /// `203.0.113.0/24`, `2001:db8:1234::/48`.
    pub network: String,
    /// Disconnects of this reason from it in the window: never more than
    /// the true count, exact when `error` is 0.
    pub count: u64,
    pub error: u64,
    /// Some of the client IDs that disconnected from it (bounded).
    pub clients: Vec<String>,
    pub last_seen: i64,
}

impl From<TopClient> for TopNetwork {
    /// A network as a summary keyed by network keeps it: the key is the
    /// network, the "peers" are client IDs seen from it.
    fn from(c: TopClient) -> TopNetwork {
        TopNetwork {
            network: c.clientid,
            count: c.count,
            error: c.error,
            clients: c.peers,
            last_seen: c.last_seen,
        }
    }
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
    /// Clients admitted here: some client reached [`STANDOUT_MIN`] (or, by
    /// the sketch, may have).
    admitted: u64,
}

/// A client ID as kept and listed: its label value, the one function every
/// series and list uses, so a long ID is one device everywhere (the hash is
/// of the whole ID).
fn stored_id(id: &str) -> std::borrow::Cow<'_, str> {
    if id.len() <= crate::core::label::MAX_LABEL_CHARS {
        std::borrow::Cow::Borrowed(id)
    } else {
        std::borrow::Cow::Owned(crate::core::label::label_value(id))
    }
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

/// A count-min sketch with conservative update and 2-bit saturating cells
/// (4 rows of 2^22: 4 MiB), counting each client's disconnects in a fifth
/// once its doorkeeper is full. It never undercounts; with at most
/// [`SKETCH_EVENTS`] events, a one-off device reads 3 in every row (and is
/// admitted by mistake) about once in five million.
struct Sketch {
    words: Vec<u64>,
}

impl Sketch {
    fn new() -> Sketch {
        Sketch {
            words: vec![0; (SKETCH_ROWS << SKETCH_BITS) / 32],
        }
    }

    fn cells(key: u64) -> [usize; SKETCH_ROWS] {
        std::array::from_fn(|row| {
            let h = key
                .rotate_left(16 * row as u32)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
            (row << SKETCH_BITS) | (h >> (64 - SKETCH_BITS)) as usize
        })
    }

    fn get(&self, cell: usize) -> u64 {
        (self.words[cell / 32] >> ((cell % 32) * 2)) & 3
    }

    fn estimate(&self, key: u64) -> u64 {
        Sketch::cells(key)
            .iter()
            .map(|&c| self.get(c))
            .min()
            .unwrap_or(0)
    }

    /// Counts one more for `key`; returns (estimate before, after).
    fn add(&mut self, key: u64) -> (u64, u64) {
        let cells = Sketch::cells(key);
        let min = cells.iter().map(|&c| self.get(c)).min().unwrap_or(0);
        if min < 3 {
            for c in cells {
                if self.get(c) == min {
                    self.words[c / 32] += 1 << ((c % 32) * 2);
                }
            }
        }
        (min, (min + 1).min(3))
    }
}

impl Summary {
    fn clear(&mut self) {
        self.counts.clear();
        self.slots.clear();
        self.index.clear();
        self.floor = 0;
        self.cursor = 0;
        self.admitted = 0;
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

    /// Adds one to a client already counted here; false if it is not.
    fn bump(&mut self, key: u64, peer: Option<&str>, now: i64) -> bool {
        let Some(&i) = self.index.get(&key) else {
            return false;
        };
        let i = i as usize;
        self.counts[i] += 1;
        let slot = &mut self.slots[i];
        slot.last_seen = slot.last_seen.max(now);
        add_peer(&mut slot.peers, peer);
        true
    }

    /// Counts a client not counted here with `count` disconnects, of
    /// which `unsure` may not be its own.
    #[allow(clippy::too_many_arguments)]
    fn admit(
        &mut self,
        capacity: usize,
        key: u64,
        id: &str,
        peer: Option<&str>,
        now: i64,
        count: u64,
        unsure: u64,
    ) {
        self.admitted += 1;
        if self.slots.len() < capacity {
            let mut peers = Vec::new();
            add_peer(&mut peers, peer);
            self.index.insert(key, self.slots.len() as u32);
            self.counts.push(count);
            self.slots.push(Slot {
                key,
                id: stored_id(id).into_owned(),
                error: unsure,
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
        slot.error = self.counts[min] + unsure;
        self.counts[min] += count;
        // reuses the slot's buffers: no allocation once they are large enough
        slot.id.clear();
        slot.id.push_str(&stored_id(id));
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

/// One fifth of the window: a summary per reason, the doorkeeper, and the
/// distinct clients credited to this fifth per reason.
struct Bucket {
    /// Which fifth since the epoch this bucket holds.
    epoch: i64,
    reasons: Vec<Summary>,
    /// Every client (hash mixed with the reason) seen in this fifth, up to
    /// [`DOORKEEPER_CAP`], with its exact count until it is admitted to the
    /// summary ([`ADMITTED`] after).
    seen: HashMap<u64, u8, foldhash::fast::FixedState>,
    /// Per reason: clients whose newest fifth in the window is this one.
    credit: Vec<u64>,
    /// Counts the clients the full doorkeeper cannot hold (made on the
    /// first of them, dropped when the fifth is reused).
    sketch: Option<Box<Sketch>>,
    /// Disconnects the sketch counted.
    overflowed: u64,
}

impl Bucket {
    fn reset(&mut self, epoch: i64) {
        self.epoch = epoch;
        self.reasons.iter_mut().for_each(Summary::clear);
        self.seen.clear();
        self.credit.iter_mut().for_each(|c| *c = 0);
        self.sketch = None;
        self.overflowed = 0;
    }

    /// The client's disconnects of `reason` in this fifth, as well as this
    /// fifth knows them: the summary's lower bound, the doorkeeper's exact
    /// count, or the sketch's estimate (never below the truth). Only used
    /// to decide admission, never listed.
    fn count_of(&self, reason: usize, key: u64, once: u64) -> u64 {
        let summary = &self.reasons[reason];
        if let Some(&i) = summary.index.get(&key) {
            let i = i as usize;
            return summary.counts[i] - summary.slots[i].error;
        }
        match self.seen.get(&once) {
            Some(&v) => u64::from(v & COUNT_MAX),
            None => self.sketch.as_ref().map_or(0, |s| s.estimate(once)),
        }
    }

    /// More distinct devices than the sketch can tell apart.
    fn saturated(&self) -> bool {
        self.overflowed > SKETCH_EVENTS
    }
}

/// The doorkeeper's key: one client's hash for one reason.
fn once_key(key: u64, reason: usize) -> u64 {
    key ^ (reason as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The top clients per reason over a sliding window.
pub struct TopClients {
    settings: TopSettings,
    step_ms: i64,
    hasher: foldhash::fast::FixedState,
    buckets: Vec<Bucket>,
    /// The newest fifth seen.
    newest: i64,
    /// Disconnects counted by an overflow sketch, ever.
    overflowed: u64,
}

impl TopClients {
    pub fn new(settings: TopSettings) -> Self {
        let step_ms = (settings.window_ms / FIFTHS).max(1);
        let buckets = (0..BUCKETS)
            .map(|_| Bucket {
                epoch: i64::MIN,
                reasons: Reason::all().map(|_| Summary::default()).collect(),
                seen: HashMap::default(),
                credit: Reason::all().map(|_| 0).collect(),
                sketch: None,
                overflowed: 0,
            })
            .collect();
        TopClients {
            settings,
            step_ms,
            hasher: foldhash::fast::FixedState::default(),
            buckets,
            newest: i64::MIN,
            overflowed: 0,
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
        let at = epoch.rem_euclid(BUCKETS as i64) as usize;
        if self.buckets[at].epoch != epoch {
            self.buckets[at].reset(epoch);
        }
        let r = reason.index();
        let key = self.hasher.hash_one(clientid);
        let capacity = self.settings.capacity;
        let bucket = &mut self.buckets[at];
        if bucket.reasons[r].bump(key, peer, now) {
            return;
        }
        let once = once_key(key, r);
        // its count in this fifth, whether that count is exact, and whether
        // this is its first disconnect here
        let room = bucket.seen.len() < DOORKEEPER_CAP;
        let (here, exact, first) = match bucket.seen.get_mut(&once) {
            Some(v) if *v & ADMITTED != 0 => {
                // counted here before, then evicted: counted anew
                bucket.reasons[r].admit(capacity, key, clientid, peer, now, 1, 0);
                return;
            }
            Some(v) => {
                *v = (*v + 1).min(COUNT_MAX);
                (u64::from(*v), true, false)
            }
            None if room => {
                bucket.seen.insert(once, 1);
                (1, true, true)
            }
            None => {
                // the doorkeeper is full: the sketch counts the rest
                bucket.overflowed += 1;
                self.overflowed += 1;
                let (before, after) = bucket
                    .sketch
                    .get_or_insert_with(|| Box::new(Sketch::new()))
                    .add(once);
                (after, false, before == 0)
            }
        };
        // what the older fifths still in the window know of it: admitted
        // once it has STANDOUT_MIN anywhere in the window, however they are
        // spread over the fifths
        let mut older = 0;
        let mut newest_seen = None;
        if first || here < STANDOUT_MIN {
            for back in 1..BUCKETS as i64 {
                let i = (epoch - back).rem_euclid(BUCKETS as i64) as usize;
                let b = &self.buckets[i];
                if b.epoch <= epoch - BUCKETS as i64 || b.epoch >= epoch {
                    continue;
                }
                let count = b.count_of(r, key, once);
                if count > 0 {
                    older += count;
                    newest_seen.get_or_insert(i);
                }
            }
        }
        if first {
            // its credit moves from the newest fifth it was seen in to this
            if let Some(i) = newest_seen {
                let credit = &mut self.buckets[i].credit[r];
                *credit = credit.saturating_sub(1);
            }
            self.buckets[at].credit[r] += 1;
        }
        if here + older < STANDOUT_MIN {
            return;
        }
        let bucket = &mut self.buckets[at];
        if exact {
            // it stands out in the window: admitted with all it had here
            bucket.seen.insert(once, ADMITTED | here as u8);
            bucket.reasons[r].admit(capacity, key, clientid, peer, now, here, 0);
        } else {
            // only this disconnect is sure to be its own
            bucket.reasons[r].admit(capacity, key, clientid, peer, now, here, here - 1);
        }
    }

    /// The `n` clients that stand out most among the disconnects of each
    /// reason in the window ending at `now` (at least [`STANDOUT_MIN`], most
    /// first, ties by client ID), and how many clients there were; reasons
    /// with no disconnect in the window are left out. Costs at most
    /// reasons × 5 × `capacity` steps.
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
            let r = reason.index();
            let devices: u64 = live.iter().map(|b| b.credit[r]).sum();
            if devices == 0 {
                continue;
            }
            let saturated = live.iter().any(|b| b.saturated());
            // key -> (client, lower bound, upper bound)
            let mut merged: HashMap<u64, (TopClient, u64, u64)> = HashMap::new();
            for bucket in &live {
                let summary = &bucket.reasons[r];
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
                            0,
                        )
                    });
                    entry.1 += count - slot.error;
                    entry.2 += count;
                    entry.0.last_seen = entry.0.last_seen.max(slot.last_seen);
                    for peer in &slot.peers {
                        add_peer(&mut entry.0.peers, Some(peer));
                    }
                }
            }
            let mut clients: Vec<TopClient> = merged
                .into_iter()
                .filter_map(|(key, (mut client, mut lower, mut upper))| {
                    for bucket in &live {
                        let summary = &bucket.reasons[r];
                        if summary.index.contains_key(&key) {
                            continue;
                        }
                        let once = once_key(key, r);
                        match bucket.seen.get(&once) {
                            Some(&v) if v & ADMITTED != 0 => {
                                // counted here, then evicted
                                let count = u64::from(v & COUNT_MAX);
                                lower += count;
                                upper += summary.floor(capacity).max(count);
                            }
                            Some(&count) => {
                                lower += u64::from(count);
                                upper += u64::from(count);
                            }
                            None => {
                                // it may have been counted by the sketch, or
                                // counted here and evicted after the
                                // doorkeeper filled
                                let sketched =
                                    bucket.sketch.as_ref().map_or(0, |s| s.estimate(once));
                                upper += summary.floor(capacity) + sketched;
                            }
                        }
                    }
                    client.count = lower;
                    client.error = upper - lower;
                    (lower >= STANDOUT_MIN).then_some(client)
                })
                .collect();
            clients.sort_unstable_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then_with(|| a.clientid.cmp(&b.clientid))
            });
            clients.truncate(n);
            // an empty list says that no device has STANDOUT_MIN only if
            // none was ever admitted in the window: one that was, then
            // lost its counter or is known only by the sketch, may have
            let saturated =
                saturated || (clients.is_empty() && live.iter().any(|b| b.reasons[r].admitted > 0));
            out.push(TopReason {
                reason,
                nodes: Vec::new(),
                devices,
                saturated,
                clients,
                networks: Vec::new(),
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

    /// Disconnects counted by an overflow sketch since start, because a
    /// fifth's doorkeeper was full.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Clients held by the doorkeepers (for the memory bound).
    pub fn doorkept(&self) -> usize {
        self.buckets.iter().map(|b| b.seen.len()).sum()
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

    /// (client, count, error) of the first reason listed.
    fn listed(list: &[TopReason]) -> Vec<(&str, u64, u64)> {
        list.first()
            .map(|r| {
                r.clients
                    .iter()
                    .map(|c| (c.clientid.as_str(), c.count, c.error))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn counts_exactly_and_lists_only_clients_that_stand_out() {
        let mut top = small(8);
        for (id, n) in [("a", 5), ("b", 3), ("c", 3), ("d", 2), ("e", 1)] {
            for i in 0..n {
                let peer = format!("10.0.0.{}:1", i % 2);
                top.observe(Reason::KeepaliveTimeout, id, Some(&peer), 1_000 + i);
            }
        }
        top.observe(Reason::TcpClosed, "z", None, 2_000);
        let list = top.top(2_000, 3);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].reason, Reason::KeepaliveTimeout);
        assert_eq!(list[0].devices, 5);
        assert_eq!(listed(&list), [("a", 5, 0), ("b", 3, 0), ("c", 3, 0)]);
        // peers are kept from the disconnect that admitted the client on
        assert_eq!(list[0].clients[0].peers, ["10.0.0.0:1", "10.0.0.1:1"]);
        assert_eq!(list[0].clients[0].last_seen, 1_004);
        // one disconnect: counted among the devices, never listed
        assert_eq!(list[1].reason, Reason::TcpClosed);
        assert_eq!(list[1].devices, 1);
        assert!(list[1].clients.is_empty());
    }

    #[test]
    fn a_listed_client_counts_its_disconnects_in_every_fifth() {
        let mut top = small(8);
        for fifth in 0..5 {
            // "slow" stands out in no fifth, only in the window; "gw" in
            // the last fifth too
            top.observe(Reason::Kicked, "slow", None, fifth * 60_000);
            top.observe(
                Reason::Kicked,
                &format!("once-{fifth}"),
                None,
                fifth * 60_000,
            );
            let n = if fifth == 4 { 3 } else { 2 };
            for _ in 0..n {
                top.observe(Reason::Kicked, "gw", None, fifth * 60_000);
            }
        }
        let list = top.top(299_999, 5);
        assert_eq!(listed(&list), [("gw", 11, 0), ("slow", 5, 0)]);
        assert_eq!(list[0].devices, 7);
        assert!(!list[0].saturated);
        // the window ending at 300 s still starts in the first fifth; at
        // 360 s it has left, and every client keeps its credit in a newer one
        assert_eq!(
            listed(&top.top(300_000, 5)),
            [("gw", 11, 0), ("slow", 5, 0)]
        );
        let list = top.top(360_000, 5);
        assert_eq!(listed(&list), [("gw", 9, 0), ("slow", 4, 0)]);
        assert_eq!(list[0].devices, 6);
    }

    /// The repeat offenders a trial on a real Mosquitto missed: each is
    /// listed with its exact count however its disconnects fall on the
    /// fifths.
    #[test]
    fn weak_link_devices_that_time_out_every_minute_or_two_are_listed() {
        let mut top = small(8);
        // 3 in 72 s
        for t in [0, 36_000, 72_000] {
            top.observe(Reason::KeepaliveTimeout, "gw-flaky-01", None, 1_000_000 + t);
        }
        assert_eq!(listed(&top.top(1_072_000, 5)), [("gw-flaky-01", 3, 0)]);
        // 5 in 258 s, alone in the window; then 4 in 36 s among devices
        // with 2 each
        let mut top = small(8);
        for i in 0..5 {
            top.observe(
                Reason::KeepaliveTimeout,
                "slow-gw-01",
                None,
                2_000_000 + i * 64_500,
            );
        }
        assert_eq!(listed(&top.top(2_258_000, 5)), [("slow-gw-01", 5, 0)]);
        for i in 0..4 {
            top.observe(
                Reason::KeepaliveTimeout,
                "gw-bad-01",
                None,
                2_200_000 + i * 12_000,
            );
        }
        for id in 0..40 {
            for t in [2_200_000, 2_230_000] {
                top.observe(Reason::KeepaliveTimeout, &format!("dev-{id}"), None, t);
            }
        }
        let list = top.top(2_258_000, 5);
        assert_eq!(listed(&list), [("slow-gw-01", 5, 0), ("gw-bad-01", 4, 0)]);
        assert_eq!(list[0].devices, 42);
        // --top.window 50s: 4, 6 and 3 disconnects 12, 7 and 15 s apart
        let mut short = TopClients::new(TopSettings {
            window_ms: 50_000,
            capacity: 8,
        });
        for (id, n, gap) in [("a", 4, 12_000), ("b", 6, 7_000), ("c", 3, 15_000)] {
            for i in 0..n {
                short.observe(Reason::TcpClosed, id, None, 500_000 + i * gap);
            }
        }
        assert_eq!(
            listed(&short.top(545_000, 5)),
            [("b", 6, 0), ("a", 4, 0), ("c", 3, 0)]
        );
    }

    #[test]
    fn the_window_slides_in_fifths() {
        let mut top = small(8);
        for _ in 0..3 {
            top.observe(Reason::Kicked, "old", None, 0);
            top.observe(Reason::Kicked, "new", None, 240_000);
        }
        assert_eq!(top.top(299_999, 5)[0].clients.len(), 2);
        // the window ending at 300 s starts at 0 s: "old" is still in it;
        // at 360 s the first fifth (0..60 s) has left
        assert_eq!(top.top(300_000, 5)[0].clients.len(), 2);
        let list = top.top(360_000, 5);
        assert_eq!(listed(&list), [("new", 3, 0)]);
        assert!(top.top(600_000, 5).is_empty());
        // a clock that steps back lands in the oldest fifth still counted
        for _ in 0..3 {
            top.observe(Reason::Kicked, "late", None, 0);
        }
        assert_eq!(listed(&top.top(600_000, 5)), [("late", 3, 0)]);
        assert!(top.top(660_000, 5).is_empty());
    }

    #[test]
    fn heavy_hitters_are_found_exactly_inside_a_flood_of_one_off_devices() {
        let mut top = small(64);
        let heavy = [("gw-400", 400u64), ("gw-250", 250), ("gw-150", 150)];
        let mut t = 0i64;
        for i in 0..100_000u64 {
            top.observe(Reason::KeepaliveTimeout, &format!("dev-{i}"), None, t);
            for (id, n) in heavy {
                // spread each heavy hitter's disconnects over the flood
                if i % (100_000 / n) == 0 && i / (100_000 / n) < n {
                    top.observe(Reason::KeepaliveTimeout, id, None, t);
                }
            }
            t = (i * 3 / 1000) as i64;
        }
        let list = top.top(t, 5);
        assert_eq!(
            listed(&list),
            [("gw-400", 400, 0), ("gw-250", 250, 0), ("gw-150", 150, 0)]
        );
        assert_eq!(list[0].devices, 100_003);
        assert!(top.doorkept() <= BUCKETS * DOORKEEPER_CAP);
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
        // one-off devices are never admitted: the doorkeepers are full and
        // the sketches count the rest
        assert_eq!(top.counters(), 0);
        assert_eq!(top.doorkept(), 5 * DOORKEEPER_CAP);
        assert_eq!(top.overflowed(), 1_000_000 - 5 * DOORKEEPER_CAP as u64);
        let list = top.top(299_999, 5);
        assert_eq!(list.len(), 17);
        assert!(list.iter().all(|r| r.clients.is_empty() && !r.saturated));
    }

    /// The hostile probe's storm: three devices with 400, 250 and 150
    /// disconnects among 300,000 or 1,000,000 one-off devices within one
    /// fifth are listed exactly; past what a fifth can tell apart the list
    /// says it is saturated instead of claiming that none stands out.
    #[test]
    fn heavy_hitters_are_found_in_a_flood_past_the_doorkeeper() {
        for flood in [300_000u64, 1_000_000] {
            let mut top = small(256);
            let heavy = [("gw-400", 400u64), ("gw-250", 250), ("gw-150", 150)];
            for i in 0..flood {
                top.observe(Reason::KeepaliveTimeout, &format!("dev-{i}"), None, 10_000);
                for (id, n) in heavy {
                    if i % (flood / n) == 0 && i / (flood / n) < n {
                        top.observe(Reason::KeepaliveTimeout, id, None, 10_000);
                    }
                }
            }
            let list = top.top(20_000, 5);
            assert_eq!(
                listed(&list),
                [("gw-400", 400, 0), ("gw-250", 250, 0), ("gw-150", 150, 0)],
                "flood of {flood}"
            );
            assert!(!list[0].saturated, "flood of {flood}");
            // past the doorkeeper the distinct count is an estimate: a
            // device whose sketch cells were all taken is not counted
            let devices = list[0].devices;
            assert!(
                devices <= flood + 3 && flood + 3 - devices <= flood / 1000,
                "flood of {flood}: {devices} devices counted"
            );
        }
        // more than a fifth can tell apart: said so
        let mut top = small(64);
        let past = DOORKEEPER_CAP as u64 + SKETCH_EVENTS + 1;
        for i in 0..past {
            top.observe(Reason::TcpClosed, &format!("dev-{i}"), None, 10_000);
        }
        let list = top.top(20_000, 5);
        assert!(list[0].saturated);
        assert!(list[0].clients.is_empty());
    }

    #[test]
    fn long_ids_are_kept_as_the_same_label_value_the_flapping_series_use() {
        let mut top = small(4);
        let id = "é".repeat(200);
        // two IDs that share their first 300 bytes stay two devices
        let other = format!("{}x", "é".repeat(199));
        for _ in 0..3 {
            top.observe(Reason::Normal, &id, Some(&"p".repeat(100)), 0);
            top.observe(Reason::Normal, &other, None, 0);
        }
        let list = top.top(0, 5);
        let mut ids: Vec<&str> = list[0]
            .clients
            .iter()
            .map(|c| c.clientid.as_str())
            .collect();
        ids.sort();
        let mut want = [
            crate::core::label::label_value(&id),
            crate::core::label::label_value(&other),
        ];
        want.sort();
        assert_eq!(ids, want);
        assert!(want[0].starts_with(&"é".repeat(128)) && want[0].chars().count() == 145);
        let c = list[0]
            .clients
            .iter()
            .find(|c| !c.peers.is_empty())
            .unwrap();
        assert_eq!(c.peers[0].len(), MAX_PEER_BYTES);
    }

    /// Exact counts per client within the window, for the stream given.
    fn exact(stream: &[(u32, i64)]) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for (id, _) in stream {
            *counts.entry(format!("c{id}")).or_insert(0) += 1;
        }
        counts
    }

    /// Checks the guarantees against exact counts: every listed count is
    /// at most the true count and at least the true count less its error,
    /// only clients with at least STANDOUT_MIN are listed, and every client
    /// with more than total / capacity above that is listed.
    fn check(stream: &[(u32, i64)], capacity: usize) -> Result<(), TestCaseError> {
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
                c.count <= t,
                "{} listed with {} > true {}",
                c.clientid,
                c.count,
                t
            );
            prop_assert!(
                c.count + c.error >= t,
                "{} listed with {} + error {} < true {}",
                c.clientid,
                c.count,
                c.error,
                t
            );
            prop_assert!(
                c.count >= STANDOUT_MIN,
                "{} listed with {}",
                c.clientid,
                c.count
            );
        }
        // Space-Saving's guarantee, per fifth: a client with more than
        // that fifth's events / capacity above STANDOUT_MIN is listed
        let mut fifths: BTreeMap<i64, BTreeMap<String, u64>> = BTreeMap::new();
        for &(id, t) in stream {
            *fifths
                .entry(t / 60_000)
                .or_default()
                .entry(format!("c{id}"))
                .or_insert(0) += 1;
        }
        for counts in fifths.values() {
            let total: u64 = counts.values().sum();
            for (id, &t) in counts {
                if t > total / capacity as u64 + STANDOUT_MIN {
                    prop_assert!(
                        listed.iter().any(|c| &c.clientid == id),
                        "heavy hitter {id} ({t} of {total} in a fifth) missing"
                    );
                }
            }
        }
        prop_assert_eq!(
            list.first().map_or(0, |r| r.devices),
            truth.len() as u64,
            "devices in the window"
        );
        Ok(())
    }

    /// A flood of `flood` one-off devices with `heavy` devices hidden in it,
    /// `repeats` disconnects each, at positions drawn by proptest.
    fn flood_with_heavy_hitters(
        flood: u32,
        heavy: u32,
        repeats: u64,
        positions: &[u32],
    ) -> Vec<(u32, i64)> {
        let mut stream: Vec<(u32, i64)> = (0..flood).map(|i| (1000 + i, 0)).collect();
        let mut k = 0;
        for _ in 0..repeats {
            for h in 0..heavy {
                let at = positions[k % positions.len()] as usize % (stream.len() + 1);
                stream.insert(at, (h, 0));
                k += 1;
            }
        }
        // spread over 4 minutes of arrival time, in order
        let n = stream.len() as i64;
        for (i, e) in stream.iter_mut().enumerate() {
            e.1 = i as i64 * 240_000 / n;
        }
        stream
    }

    /// A skewed stream: client k gets about 1/(k+1) of the events (Zipf).
    fn zipf() -> impl Strategy<Value = Vec<(u32, i64)>> {
        proptest::collection::vec((0.0f64..1.0, 0i64..240_000), 1..4000).prop_map(|v| {
            let mut out: Vec<(u32, i64)> = v
                .into_iter()
                .map(|(u, t)| (((1.0 / (u * 0.999 + 0.001)) as u32).min(2000), t))
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
        /// of distinct clients has filled the doorkeeper.
        #[test]
        fn accurate_when_heavy_hitters_come_last(
            flood in 100u32..3000,
            heavy in 1u32..6,
            repeats in 20u64..200,
            capacity in 8usize..80,
        ) {
            let mut stream: Vec<(u32, i64)> = (0..flood).map(|i| (1000 + i, 1)).collect();
            for r in 0..repeats {
                for h in 0..heavy {
                    stream.push((h, 2 + r as i64));
                }
            }
            check(&stream, capacity)?;
        }

        /// Against an exact sliding-window count: repeat offenders spread
        /// evenly over the window, at any phase against the fifths, among
        /// one-off devices. Each with STANDOUT_MIN or more in the window
        /// ending now is listed, with its exact count over the fifths kept
        /// (the window and at most one fifth before its start); no one-off
        /// device is listed.
        #[test]
        fn offenders_spread_over_the_window_are_listed(
            offenders in proptest::collection::vec((3i64..9, 0i64..1_000_000), 1..6),
            window_s in 30i64..600,
            ones in 0i64..2000,
            late in 0i64..1_000,
        ) {
            let window = window_s * 1000;
            let mut top = TopClients::new(TopSettings { window_ms: window, capacity: 64 });
            let base = 10_000_000;
            let mut events: Vec<(String, i64)> = Vec::new();
            for (k, &(count, phase)) in offenders.iter().enumerate() {
                let start = base + phase % window;
                for i in 0..count {
                    events.push((format!("gw-{k}"), start + i * (window / count)));
                }
            }
            for i in 0..ones {
                events.push((format!("one-{i}"), base + (i * 7919) % window));
            }
            events.sort_by_key(|e| e.1);
            let last = events.iter().map(|e| e.1).max().unwrap_or(base);
            let now = last + late * window / 5000;
            for (id, t) in &events {
                top.observe(Reason::KeepaliveTimeout, id, None, *t);
            }
            let step = window / FIFTHS;
            let kept_from = (now.div_euclid(step) - FIFTHS) * step;
            let list = top.top(now, usize::MAX);
            let listed: BTreeMap<String, (u64, u64)> = list
                .first()
                .map(|r| r.clients.iter().map(|c| (c.clientid.clone(), (c.count, c.error))).collect())
                .unwrap_or_default();
            for k in 0..offenders.len() {
                let id = format!("gw-{k}");
                let mine = || events.iter().filter(|e| e.0 == id);
                let in_window = mine().filter(|e| e.1 > now - window).count() as u64;
                let kept = mine().filter(|e| e.1 >= kept_from).count() as u64;
                if in_window >= STANDOUT_MIN {
                    prop_assert_eq!(
                        listed.get(&id).copied(),
                        Some((kept, 0)),
                        "{} has {} in the window ({} kept)", id, in_window, kept
                    );
                } else if let Some(&got) = listed.get(&id) {
                    prop_assert_eq!(got, (kept, 0), "{}", id);
                }
            }
            prop_assert!(listed.keys().all(|id| id.starts_with("gw-")), "{:?}", listed);
        }

        /// Heavy hitters hidden anywhere in a flood of one-off devices are
        /// listed with their exact counts, and no one-off device is.
        #[test]
        fn exact_for_heavy_hitters_hidden_in_a_flood(
            flood in 1_000u32..30_000,
            heavy in 1u32..8,
            repeats in 20u64..300,
            positions in proptest::collection::vec(any::<u32>(), 1..64),
        ) {
            let stream = flood_with_heavy_hitters(flood, heavy, repeats, &positions);
            check(&stream, 64)?;
            let mut top = small(64);
            for &(id, t) in &stream {
                top.observe(Reason::KeepaliveTimeout, &format!("c{id}"), None, t);
            }
            let list = top.top(240_000, usize::MAX);
            let mut got: Vec<(String, u64, u64)> = list[0]
                .clients
                .iter()
                .map(|c| (c.clientid.clone(), c.count, c.error))
                .collect();
            got.sort();
            let want: Vec<(String, u64, u64)> =
                (0..heavy).map(|h| (format!("c{h}"), repeats, 0)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
