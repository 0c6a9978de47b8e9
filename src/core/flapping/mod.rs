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
//! One shared client ID is one problem: a takeover's disconnects are
//! disconnects too, so two devices kicking each other off fast would also
//! loop by reconnect. While a client ID flaps by takeover it is reported by
//! takeover only: it is not counted in [`Detector::flapping`] of reconnect,
//! not listed as reconnect-flapping, and does not enter it; once its
//! takeovers stop, a reconnect loop that goes on is reported again.
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

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::Arc;

use table::{ClientState, Extra, Table};

mod table;

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

/// One `T` per flapping kind.
pub type ByKind<T> = crate::core::label_set::By<FlapKind, T>;

impl crate::core::label_set::Label for FlapKind {
    const ALL: &'static [FlapKind] = &FlapKind::ALL;

    fn index(self) -> usize {
        self as usize
    }

    fn as_label(self) -> &'static str {
        self.as_str()
    }
}

impl serde::Serialize for FlapKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for FlapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    /// How far an event time may be from its arrival time (the pipeline
    /// clamps it): client states are kept this much longer than the windows.
    pub max_skew_ms: i64,
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
            max_skew_ms: 60_000,
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
    pub kind: FlapKind,
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

/// Detail kept for a client while it is flapping.
struct Flap {
    clientid: Arc<str>,
    /// Event times of this kind, sorted (bounded). Times that left the
    /// window are dropped lazily: on the client's next event, when its expiry
    /// falls due, or when it is read for the top list.
    times: VecDeque<i64>,
    peers: Vec<Box<str>>,
    first_seen: i64,
    last_seen: i64,
    /// Tells this flap's own expiry entry from one left by an earlier flap of
    /// the same client and kind.
    id: u64,
}

/// Upper bound on the event times kept per flapping client.
const MAX_FLAP_TIMES: usize = 10_000;

/// Client states looked at per [`Detector::advance`] when dropping states
/// whose times all left the windows (memory is released after a storm).
const EXPIRE_BUDGET: usize = 65_536;

/// The order of the flapping list: most events first, then client ID, then
/// kind; the hash key finds the flap.
type Rank = (Reverse<usize>, Arc<str>, FlapKind, u64);

/// An expiry entry: when the flap `(key, kind)` with id `id` may end.
type Expiry = Reverse<(i64, u64, FlapKind, u64)>;

/// The flapping detector.
pub struct Detector {
    settings: Settings,
    /// Seeded per process, so client IDs cannot be chosen to collide.
    hasher: foldhash::fast::RandomState,
    clients: Table,
    /// Second-chance eviction queue: one `(key, seq)` per tracked client.
    queue: VecDeque<(u64, u64)>,
    flaps: HashMap<(u64, FlapKind), Flap>,
    /// Every flap, in list order, so the top N costs N, not a sort of all.
    ranking: BTreeSet<Rank>,
    /// Earliest possible end of each flap (a min-heap, checked lazily).
    expiries: BinaryHeap<Expiry>,
    flapping: [usize; 2],
    /// Client IDs flapping by both kinds (reported by takeover only).
    both: usize,
    seq: u64,
    next_id: u64,
    /// The clock of [`Detector::advance`] (arrival time); event times never
    /// move it, so no client's timestamp can move another client's window.
    now: i64,
    evicted: u64,
    expired: u64,
}

impl Detector {
    pub fn new(settings: Settings) -> Self {
        Detector {
            settings,
            hasher: foldhash::fast::RandomState::default(),
            clients: Table::new(),
            queue: VecDeque::new(),
            flaps: HashMap::new(),
            ranking: BTreeSet::new(),
            expiries: BinaryHeap::new(),
            flapping: [0; 2],
            both: 0,
            seq: 0,
            next_id: 0,
            now: i64::MIN,
            evicted: 0,
            expired: 0,
        }
    }

    /// Client states held now.
    pub fn tracked(&self) -> usize {
        self.clients.len()
    }

    /// Client states dropped at the cap so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Client states dropped so far because all their times left the windows.
    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// Clients flapping now, of one kind.
    pub fn flapping(&self, kind: FlapKind) -> usize {
        match kind {
            FlapKind::Takeover => self.flapping[kind as usize],
            FlapKind::Reconnect => self.flapping[kind as usize] - self.both,
        }
    }

    /// True for a reconnect flap of a client that flaps by takeover: the
    /// takeover reports it.
    fn folded(&self, key: u64, kind: FlapKind) -> bool {
        kind == FlapKind::Reconnect && self.flaps.contains_key(&(key, FlapKind::Takeover))
    }

    fn other(kind: FlapKind) -> FlapKind {
        match kind {
            FlapKind::Takeover => FlapKind::Reconnect,
            FlapKind::Reconnect => FlapKind::Takeover,
        }
    }

    /// Records a connect's peer address for a client that already has
    /// repeated disconnects or a takeover (and so a place for peers): on
    /// Mosquitto, only the connect line names the device's address, and two
    /// devices fighting over one ID show up as the connects between the
    /// takeovers. Costs one lookup; tracks no new client.
    pub fn observe_connect(&mut self, clientid: &str, peer: &str) {
        let key = self.hasher.hash_one(clientid).max(1);
        let max = self.settings.max_peers;
        let Some(extra) = self
            .clients
            .get_mut(key)
            .and_then(|s| s.extra.as_deref_mut())
        else {
            return;
        };
        add_peer(&mut extra.peers, peer, max);
        for kind in FlapKind::ALL {
            if let Some(flap) = self.flaps.get_mut(&(key, kind)) {
                add_peer(&mut flap.peers, peer, max);
            }
        }
    }

    /// Records one disconnect at event time `t` (ms).
    ///
    /// Every window decision uses this client's own clock, the newest of `t`
    /// and its earlier events: a far-future time sent by one client ages
    /// only that client's history.
    pub fn observe_disconnect(
        &mut self,
        clientid: &str,
        takeover: bool,
        peer: Option<&str>,
        t: i64,
    ) -> Entered {
        // 0 marks an empty slot
        let key = self.hasher.hash_one(clientid).max(1);
        let Some(local_now) = self.record(key, takeover, peer, t) else {
            self.evict_over_cap();
            return Entered::default();
        };
        let mut entered = Entered::default();
        if takeover {
            entered.takeover =
                self.update_flap(key, FlapKind::Takeover, clientid, peer, t, local_now);
        }
        entered.reconnect =
            self.update_flap(key, FlapKind::Reconnect, clientid, peer, t, local_now);
        self.evict_over_cap();
        entered
    }

    /// Updates the client's compact state and rings. Returns the client's
    /// own clock when the event may change a flapping verdict, `None` when
    /// the client has only this one recent disconnect (the common case).
    fn record(&mut self, key: u64, takeover: bool, peer: Option<&str>, t: i64) -> Option<i64> {
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

        let local_now = t.max(state.newest());
        let reconnect_floor = local_now.saturating_sub(s.reconnect_window_ms);
        let takeover_floor = local_now.saturating_sub(s.takeover_window_ms);
        if state.is_stale(reconnect_floor, takeover_floor) {
            *state = ClientState {
                seq,
                ..ClientState::EMPTY
            };
        }
        if state.extra.is_none() {
            if !takeover && state.last <= reconnect_floor {
                state.last = state.last.max(t);
                return None;
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
        let extra = state.extra.as_deref_mut()?;
        push_bounded(&mut extra.disconnects, t, s.reconnect_threshold);
        if takeover {
            push_bounded(&mut extra.takeovers, t, s.takeover_threshold);
        }
        if let Some(peer) = peer {
            add_peer(&mut extra.peers, peer, s.max_peers);
        }
        Some(local_now)
    }

    /// Counts `t` in the client's flap of `kind`, or starts one when the
    /// client's ring reaches the threshold. True if the client entered the
    /// flapping state.
    fn update_flap(
        &mut self,
        key: u64,
        kind: FlapKind,
        clientid: &str,
        peer: Option<&str>,
        t: i64,
        local_now: i64,
    ) -> bool {
        let (window, threshold) = (self.settings.window(kind), self.settings.threshold(kind));
        let max_peers = self.settings.max_peers;
        let floor = local_now.saturating_sub(window);
        if t <= floor {
            return false; // too late to count in this client's window
        }
        if let Some(len) = self.prune(key, kind, floor) {
            if len + 1 >= threshold {
                if let Some(flap) = self.flaps.get_mut(&(key, kind)) {
                    insert_sorted(&mut flap.times, t);
                    if let Some(peer) = peer {
                        add_peer(&mut flap.peers, peer, max_peers);
                    }
                    flap.last_seen = flap.last_seen.max(t);
                    let clientid = Arc::clone(&flap.clientid);
                    rerank(
                        &mut self.ranking,
                        len,
                        flap.times.len(),
                        clientid,
                        kind,
                        key,
                    );
                }
                return false;
            }
            // its times left the window before its expiry fell due: it ended
            self.end_flap(key, kind);
        }
        let Some(state) = self.clients.get(key) else {
            return false;
        };
        let Some(extra) = state.extra.as_deref() else {
            return false;
        };
        let ring = match kind {
            FlapKind::Takeover => &extra.takeovers,
            FlapKind::Reconnect => &extra.disconnects,
        };
        let times: VecDeque<i64> = ring.iter().copied().filter(|&x| x > floor).collect();
        if times.len() < threshold || self.flaps.len() >= self.settings.max_tracked {
            return false;
        }
        let peers = extra.peers.clone();
        let first_seen = times.front().copied().unwrap_or(t);
        let last_seen = times.back().copied().unwrap_or(t);
        let exit = exit_time(&times, threshold, window);
        let clientid: Arc<str> = clientid.into();
        self.next_id += 1;
        let id = self.next_id;
        self.ranking
            .insert((Reverse(times.len()), Arc::clone(&clientid), kind, key));
        self.expiries.push(Reverse((exit, key, kind, id)));
        self.flaps.insert(
            (key, kind),
            Flap {
                clientid,
                times,
                peers,
                first_seen,
                last_seen,
                id,
            },
        );
        self.flapping[kind as usize] += 1;
        if self.flaps.contains_key(&(key, Detector::other(kind))) {
            self.both += 1;
        }
        !self.folded(key, kind)
    }

    /// Drops the flap's times at or before `floor` and moves it in the
    /// ranking; returns how many are left, or `None` if it is not flapping.
    fn prune(&mut self, key: u64, kind: FlapKind, floor: i64) -> Option<usize> {
        let flap = self.flaps.get_mut(&(key, kind))?;
        let before = flap.times.len();
        while flap.times.front().is_some_and(|&x| x <= floor) {
            flap.times.pop_front();
        }
        let after = flap.times.len();
        let clientid = Arc::clone(&flap.clientid);
        rerank(&mut self.ranking, before, after, clientid, kind, key);
        Some(after)
    }

    fn end_flap(&mut self, key: u64, kind: FlapKind) {
        if let Some(flap) = self.flaps.remove(&(key, kind)) {
            if self.flaps.contains_key(&(key, Detector::other(kind))) {
                self.both -= 1;
            }
            self.ranking
                .remove(&(Reverse(flap.times.len()), flap.clientid, kind, key));
            self.flapping[kind as usize] -= 1;
        }
    }

    /// Moves the clock to `now` (ms) if it is ahead, and ends flapping states
    /// whose count in the window fell below the threshold.
    ///
    /// The work is proportional to what changed: the flaps whose earliest
    /// possible end has come, plus a bounded walk that drops client states
    /// whose times all left the windows.
    pub fn advance(&mut self, now: i64) {
        self.now = self.now.max(now);
        let now = self.now;
        while let Some(&Reverse((exit, key, kind, id))) = self.expiries.peek() {
            if exit > now {
                break;
            }
            self.expiries.pop();
            let (threshold, window) = (self.settings.threshold(kind), self.settings.window(kind));
            if self.flaps.get(&(key, kind)).is_none_or(|f| f.id != id) {
                continue; // left by a flap that has ended
            }
            match self.prune(key, kind, now.saturating_sub(window)) {
                Some(len) if len >= threshold => {
                    if let Some(flap) = self.flaps.get(&(key, kind)) {
                        let exit = exit_time(&flap.times, threshold, window);
                        self.expiries.push(Reverse((exit, key, kind, id)));
                    }
                }
                _ => self.end_flap(key, kind),
            }
        }
        self.expire_stale(now);
        shrink(&mut self.flaps);
        if self.expiries.capacity() > 64 && self.expiries.len() * 4 < self.expiries.capacity() {
            self.expiries.shrink_to_fit();
        }
    }

    /// Drops client states that can no longer change a verdict, least
    /// recently seen first, looking at most at [`EXPIRE_BUDGET`] of them.
    fn expire_stale(&mut self, now: i64) {
        let s = &self.settings;
        let margin = s.max_skew_ms;
        let reconnect_floor = now
            .saturating_sub(s.reconnect_window_ms)
            .saturating_sub(margin);
        let takeover_floor = now
            .saturating_sub(s.takeover_window_ms)
            .saturating_sub(margin);
        for _ in 0..EXPIRE_BUDGET {
            let Some(&(key, seq)) = self.queue.front() else {
                break;
            };
            match self.clients.get(key) {
                Some(state) if state.seq != seq => {
                    // seen since it was queued: requeue it at its new place
                    let seq = state.seq;
                    self.queue.pop_front();
                    self.queue.push_back((key, seq));
                }
                Some(state) if state.is_stale(reconnect_floor, takeover_floor) => {
                    self.queue.pop_front();
                    self.clients.remove(key);
                    self.expired += 1;
                }
                // live only by a takeover, which the longer takeover window
                // keeps: to the back, so the clients seen after it, stale by
                // the reconnect window, are not held behind it
                Some(state) if state.is_stale(reconnect_floor, i64::MAX) => {
                    self.queue.pop_front();
                    self.queue.push_back((key, seq));
                }
                Some(_) => break, // the least recently seen client is live
                None => {
                    self.queue.pop_front();
                }
            }
        }
        self.clients.shrink();
        if self.queue.capacity() > 1024 && self.queue.len() * 4 < self.queue.capacity() {
            self.queue.shrink_to_fit();
        }
    }

    /// The `n` clients with the most events in the window now (most first,
    /// then by client ID). Costs about `n` steps plus the times that left the
    /// window since the last call, however many clients are flapping.
    pub fn top(&mut self, n: usize) -> Vec<FlappingClient> {
        let mut out = Vec::new();
        let mut cursor: Option<Rank> = None;
        while out.len() < n {
            let next = match &cursor {
                None => self.ranking.iter().next(),
                Some(c) => self
                    .ranking
                    .range((Bound::Excluded(c), Bound::Unbounded))
                    .next(),
            };
            let Some(rank) = next.cloned() else {
                break;
            };
            let (Reverse(count), _, kind, key) = rank;
            let floor = self.now.saturating_sub(self.settings.window(kind));
            match self.prune(key, kind, floor) {
                Some(len) if len == count => {
                    match self.flaps.get(&(key, kind)) {
                        Some(flap) if !self.folded(key, kind) => {
                            out.push(describe(flap, kind, &self.settings));
                        }
                        _ => {}
                    }
                    cursor = Some(rank);
                }
                // its stored count was stale: it moved down and is met again
                Some(len) if len >= self.settings.threshold(kind) => {}
                Some(_) => self.end_flap(key, kind),
                None => {
                    self.ranking.remove(&rank); // cannot happen; heal rather than loop
                }
            }
        }
        out
    }

    /// Every client flapping now, most events first, then by client ID, with
    /// counts in the window of the clock. Costs a sort of all of them: for
    /// tests and offline reports; the live exporter reads [`Detector::top`].
    pub fn flapping_clients(&self) -> Vec<FlappingClient> {
        let mut list: Vec<(FlapKind, FlappingClient)> = self
            .flaps
            .iter()
            .filter(|((key, kind), _)| !self.folded(*key, *kind))
            .map(|((_, kind), flap)| {
                let floor = self.now.saturating_sub(self.settings.window(*kind));
                let mut c = describe(flap, *kind, &self.settings);
                c.count = flap.times.iter().filter(|&&x| x > floor).count();
                (*kind, c)
            })
            .collect();
        // the order of the ranking
        list.sort_by(|(ka, a), (kb, b)| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.clientid.cmp(&b.clientid))
                .then_with(|| ka.cmp(kb))
        });
        list.into_iter().map(|(_, c)| c).collect()
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

fn describe(flap: &Flap, kind: FlapKind, settings: &Settings) -> FlappingClient {
    FlappingClient {
        clientid: flap.clientid.to_string(),
        kind,
        count: flap.times.len(),
        window_seconds: settings.window(kind) as f64 / 1000.0,
        peers: flap.peers.iter().map(|p| p.to_string()).collect(),
        first_seen: flap.first_seen,
        last_seen: flap.last_seen,
    }
}

/// Moves a flap's place in the ranking after its count changed.
fn rerank(
    ranking: &mut BTreeSet<Rank>,
    before: usize,
    after: usize,
    clientid: Arc<str>,
    kind: FlapKind,
    key: u64,
) {
    if before != after {
        ranking.remove(&(Reverse(before), Arc::clone(&clientid), kind, key));
        ranking.insert((Reverse(after), clientid, kind, key));
    }
}

/// When a flap with these sorted `times` ends if no event comes: once the
/// `threshold`-th newest leaves the window.
fn exit_time(times: &VecDeque<i64>, threshold: usize, window: i64) -> i64 {
    let i = times.len().saturating_sub(threshold);
    times
        .get(i)
        .copied()
        .unwrap_or(i64::MIN)
        .saturating_add(window)
}

/// Gives memory back once a map holds far fewer entries than it has room for.
fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 1024 && map.len() * 4 < map.capacity() {
        map.shrink_to_fit();
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
    fn connect_peers_join_a_tracked_client_only() {
        let mut d = detector();
        d.observe_connect("new", "10.0.0.1:1");
        assert_eq!(d.tracked(), 0, "a connect tracks no new client");
        for (t, peer) in [(0, "10.0.0.1:1"), (1000, "10.0.0.2:2")] {
            d.observe_disconnect("dup", true, None, t);
            d.observe_connect("dup", peer);
        }
        assert!(d.observe_disconnect("dup", true, None, 2000).takeover);
        d.observe_connect("dup", "10.0.0.3:3");
        let list = d.flapping_clients();
        assert_eq!(
            list[0].peers,
            vec!["10.0.0.1:1", "10.0.0.2:2", "10.0.0.3:3"]
        );
    }

    #[test]
    fn a_shared_id_is_one_problem_reported_by_takeover_only() {
        let mut d = detector();
        // two devices kicking each other off every second: 20 takeovers
        let mut entered = Vec::new();
        for i in 0..20 {
            let e = d.observe_disconnect("shared", true, None, i * 1000);
            entered.push((e.takeover, e.reconnect));
        }
        // takeover entered at its 3rd; reconnect (15) never entered
        assert_eq!(entered[2], (true, false));
        assert!(entered.iter().all(|&(_, reconnect)| !reconnect));
        assert_eq!(d.flapping(FlapKind::Takeover), 1);
        assert_eq!(d.flapping(FlapKind::Reconnect), 0);
        let listed: Vec<(String, FlapKind)> = d
            .top(10)
            .into_iter()
            .map(|c| (c.clientid, c.kind))
            .collect();
        assert_eq!(listed, [("shared".to_string(), FlapKind::Takeover)]);
        assert_eq!(d.flapping_clients().len(), 1);
        // a loop of another reason on another ID is still a reconnect flap
        for i in 0..15 {
            d.observe_disconnect("looping", false, None, 20_000 + i * 1000);
        }
        assert_eq!(d.flapping(FlapKind::Reconnect), 1);
        // once the takeovers have left their window, the shared ID's
        // reconnect loop, if it goes on, is reported again
        for i in 0..15 {
            d.observe_disconnect("shared", false, None, 400_000 + i * 1000);
        }
        d.advance(415_000);
        assert_eq!(d.flapping(FlapKind::Takeover), 0);
        // ("looping" has left its minute by now)
        assert_eq!(d.flapping(FlapKind::Reconnect), 1);
        let listed: Vec<(String, FlapKind)> = d
            .top(10)
            .into_iter()
            .map(|c| (c.clientid, c.kind))
            .collect();
        assert_eq!(listed, [("shared".to_string(), FlapKind::Reconnect)]);
    }

    #[test]
    fn a_takeover_does_not_hold_back_the_states_seen_after_it() {
        let mut d = detector();
        let skew = Settings::default().max_skew_ms;
        // one takeover first, then 16 clients with a disconnect each
        d.observe_disconnect("taken-over", true, None, 0);
        for i in 0..16 {
            d.observe_disconnect(&format!("dev-{i}"), false, None, 1000 + i);
        }
        assert_eq!(d.tracked(), 17);
        // past the reconnect window and the skew: the 16 are given back,
        // the takeover's state stays for its longer window
        d.advance(MIN + skew + 2000);
        assert_eq!(d.tracked(), 1);
        d.advance(5 * MIN + skew + 2000);
        assert_eq!(d.tracked(), 0);
        assert_eq!(d.expired(), 17);
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
}
