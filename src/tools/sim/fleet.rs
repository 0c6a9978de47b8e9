//! A simulated fleet of MQTT devices, as the broker's lifecycle events.
//!
//! [`Fleet::tick`] produces the events due up to a given time as EMQX 5 /
//! TDMQ-style JSON (`event`, `clientid`, `reason`, `peername`,
//! `disconnected_at`, ...). It is pure: time is passed in and the random
//! generator is seeded, so the same seed gives the same fleet. `demo` and
//! `simulate` publish its output through a broker; tests read it directly.
//!
//! The fleet is spread over three broker nodes (`emqx@node-1` to `-3`, by
//! client ID) and every device has its own /24. Every `tcp_closed`
//! connection is cut at 350 s, a cloud load balancer's idle timeout, and
//! says so with `connected_at`.
//!
//! What the traffic contains, by scenario:
//! - **steady**: disconnects at the configured rate, reasons drawn with
//!   realistic weights covering every row of the reference table, each
//!   followed by a reconnect; a few subscriptions.
//! - **storm**: steady, plus a keepalive-timeout storm of a tenth of the
//!   fleet every 30 s, each storm the next tenth (so a device drops once
//!   every 5 minutes, as one among thousands), all on broker node
//!   `emqx@node-2` (the node that loses its network).
//! - **conflict**: steady, plus ten client IDs each shared by two devices
//!   (different peer addresses) that take it over from each other every 2 s.
//! - **auth-expiry**: steady, plus a wave of `authentication_expired` across a
//!   tenth of the fleet every 60 s.
//! - **demo**: all of the above, one of each reason in the first second, one
//!   device that is taken over once and self-repairs, one device in a
//!   reconnect loop, and a flaky site: three gateways whose keepalive
//!   timeouts (one every 40, 55 and 70 s, a weak link's pace) stand out
//!   over the window among the fleet's, as a page would name them.

use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::core::reasons::Reason;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Steady,
    Storm,
    Conflict,
    AuthExpiry,
    Demo,
}

/// Relative weights of the raw reasons a steady fleet reports (EMQX spellings
/// where they differ, so the mapping is exercised too).
const WEIGHTS: &[(&str, u32)] = &[
    ("tcp_closed", 300),
    ("keepalive_timeout", 250),
    ("normal", 200),
    ("sock_closed", 40),
    ("kicked", 10),
    ("not_authenticated", 25),
    ("not_authorized", 15),
    ("takenover", 10),
    ("ping_without_connect", 5),
    ("authentication_expired", 15),
    ("too_many_connection", 5),
    ("go_away", 10),
    ("client_id_too_long", 3),
    ("client_id_required", 3),
    ("client_id_invalid", 3),
    ("bad_will_message", 3),
    ("server_internal_error", 3),
];

/// One event: the last topic level (`client_disconnected`, ...), its payload,
/// and for a disconnect the raw reason it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEvent {
    pub kind: &'static str,
    pub payload: String,
    pub reason: Option<&'static str>,
}

pub struct Fleet {
    scenario: Scenario,
    clients: usize,
    rng: StdRng,
    start_ms: i64,
    last_ms: i64,
    next_conflict_ms: i64,
    conflict_flip: bool,
    next_storm_ms: i64,
    /// Storms so far: each takes the next fifth of the fleet.
    storms: usize,
    next_wave_ms: i64,
    next_loop_ms: i64,
    /// When each of the flaky site's gateways next times out.
    next_flaky_ms: [i64; 3],
    self_repair_done: bool,
    tour_done: bool,
    total_weight: u32,
}

impl Fleet {
    pub fn new(scenario: Scenario, clients: usize, seed: u64, start_ms: i64) -> Fleet {
        Fleet {
            scenario,
            clients: clients.max(1),
            rng: StdRng::seed_from_u64(seed),
            start_ms,
            last_ms: start_ms,
            next_conflict_ms: start_ms + 500,
            conflict_flip: false,
            next_storm_ms: start_ms + 10_000,
            storms: 0,
            next_wave_ms: start_ms + 20_000,
            next_loop_ms: start_ms + 200,
            next_flaky_ms: [start_ms; 3],
            self_repair_done: false,
            tour_done: false,
            total_weight: WEIGHTS.iter().map(|(_, w)| w).sum(),
        }
    }

    fn has(&self, feature: Scenario) -> bool {
        self.scenario == feature || self.scenario == Scenario::Demo
    }

    /// Appends the events due at `now_ms`, including `steady` random
    /// disconnects (each with its reconnect).
    pub fn tick(&mut self, now_ms: i64, steady: usize, out: &mut Vec<SimEvent>) {
        let now = now_ms.max(self.last_ms);
        self.last_ms = now;
        if self.scenario == Scenario::Demo && !self.tour_done {
            self.tour_done = true;
            for (i, row) in Reason::all().filter(|r| *r != Reason::Other).enumerate() {
                let id = format!("tour-{i:02}");
                out.push(disconnect(&id, row.info().id, &peer(i as u32), now));
            }
        }
        for _ in 0..steady {
            let i = self.rng.gen_range(0..self.clients);
            let id = device(i);
            let reason = self.pick_reason();
            let p = peer(i as u32);
            let lived = matches!(reason, "tcp_closed" | "sock_closed").then_some(IDLE_TIMEOUT_MS);
            out.push(disconnect_on(&id, reason, &p, now, node_of(&id), lived));
            out.push(connected(&id, &p, now + 1));
            if self.rng.gen_ratio(1, 10) {
                out.push(subscribed(&id, now + 2));
            }
        }
        if self.has(Scenario::Conflict) {
            while self.next_conflict_ms <= now {
                let t = self.next_conflict_ms;
                self.conflict_flip = !self.conflict_flip;
                let pairs = if self.scenario == Scenario::Demo {
                    1
                } else {
                    10
                };
                for pair in 0..pairs {
                    let id = format!("shared-id-{pair:02}");
                    let a = format!("198.51.100.{}:{}", 10 + pair, 40000 + pair);
                    let b = format!("203.0.113.{}:{}", 10 + pair, 50000 + pair);
                    let (old, new) = if self.conflict_flip {
                        (&a, &b)
                    } else {
                        (&b, &a)
                    };
                    out.push(disconnect(&id, "takenover", old, t));
                    out.push(connected(&id, new, t + 1));
                }
                self.next_conflict_ms += 2000;
            }
        }
        if self.has(Scenario::Storm) {
            while self.next_storm_ms <= now {
                let t = self.next_storm_ms;
                let size = (self.clients / 10).max(1);
                let first = (self.storms % 10) * size;
                // a storm is one node's: node-2 loses its network, and
                // its clients time out
                for i in (first..first + size).map(|i| i % self.clients) {
                    out.push(disconnect_on(
                        &device(i),
                        "keepalive_timeout",
                        &peer(i as u32),
                        t,
                        NODES[1],
                        None,
                    ));
                }
                self.storms += 1;
                self.next_storm_ms += 30_000;
            }
        }
        if self.has(Scenario::AuthExpiry) {
            while self.next_wave_ms <= now {
                let t = self.next_wave_ms;
                let n = (self.clients / 10).max(1);
                for i in 0..n {
                    let id = device(self.clients - 1 - i);
                    out.push(disconnect(
                        &id,
                        "authentication_expired",
                        &peer(i as u32),
                        t,
                    ));
                }
                self.next_wave_ms += 60_000;
            }
        }
        if self.scenario == Scenario::Demo {
            if !self.self_repair_done && now >= self.start_ms + 3000 {
                self.self_repair_done = true;
                out.push(disconnect(
                    "self-repair-01",
                    "takeovered",
                    "192.0.2.7:41000",
                    now,
                ));
                out.push(connected("self-repair-01", "192.0.2.7:41001", now + 1));
            }
            while self.next_loop_ms <= now {
                let t = self.next_loop_ms;
                out.push(disconnect(
                    "reconnect-loop-01",
                    "tcp_closed",
                    "192.0.2.99:1883",
                    t,
                ));
                out.push(connected("reconnect-loop-01", "192.0.2.99:1883", t + 1));
                self.next_loop_ms += 500;
            }
            for (g, every_ms) in FLAKY_SITE.iter().enumerate() {
                while self.next_flaky_ms[g] <= now {
                    let t = self.next_flaky_ms[g];
                    let id = format!("site-7-gw-{:02}", g + 1);
                    let p = format!("198.51.100.{}:{}", 70 + g, 30000 + g);
                    out.push(disconnect(&id, "keepalive_timeout", &p, t));
                    out.push(connected(&id, &p, t + 1));
                    self.next_flaky_ms[g] += every_ms;
                }
            }
        }
    }

    fn pick_reason(&mut self) -> &'static str {
        let mut x = self.rng.gen_range(0..self.total_weight);
        for (reason, w) in WEIGHTS {
            if x < *w {
                return reason;
            }
            x -= w;
        }
        "tcp_closed"
    }
}

/// The demo's flaky site: how often each of its three gateways times out,
/// at the pace of a real weak link (once every 40 to 90 s), so that the
/// demo shows devices that stand out only over the whole window.
const FLAKY_SITE: [i64; 3] = [40_000, 55_000, 70_000];

fn device(i: usize) -> String {
    format!("device-{i:06}")
}

/// A device's address: each device on its own /24 (two past 65,536
/// devices), as a fleet spread over homes and carriers is, so no
/// background network stands out.
fn peer(i: u32) -> String {
    format!(
        "10.{}.{}.{}:{}",
        (i >> 8) & 255,
        i & 255,
        ((i >> 16) & 255) + 1,
        1024 + i % 60000
    )
}

/// The broker nodes of the simulated cluster.
const NODES: [&str; 3] = ["emqx@node-1", "emqx@node-2", "emqx@node-3"];

/// The node a client is on: spread evenly by its ID.
fn node_of(id: &str) -> &'static str {
    let h = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    NODES[h as usize % NODES.len()]
}

/// How long a `tcp_closed` connection lived: an AWS NLB's or NAT gateway's
/// idle timeout cuts every quiet connection at 350 s.
const IDLE_TIMEOUT_MS: i64 = 350_000;

fn disconnect(id: &str, reason: &'static str, peer: &str, t: i64) -> SimEvent {
    disconnect_on(id, reason, peer, t, node_of(id), None)
}

/// A disconnect on `node`; with `lived_ms`, it carries `connected_at` as
/// EMQX 5.8.6 and later do.
fn disconnect_on(
    id: &str,
    reason: &'static str,
    peer: &str,
    t: i64,
    node: &str,
    lived_ms: Option<i64>,
) -> SimEvent {
    let mut p = String::with_capacity(256);
    let _ = write!(
        p,
        r#"{{"event":"client.disconnected","clientid":"{id}","username":"fleet","peername":"{peer}","proto_name":"MQTT","proto_ver":5,"reason":"{reason}""#
    );
    if let Some(lived) = lived_ms {
        let _ = write!(p, r#","connected_at":{}"#, t - lived);
    }
    let _ = write!(
        p,
        r#","disconnected_at":{t},"timestamp":{t},"node":"{node}"}}"#
    );
    SimEvent {
        kind: "client_disconnected",
        payload: p,
        reason: Some(reason),
    }
}

fn connected(id: &str, peer: &str, t: i64) -> SimEvent {
    SimEvent {
        kind: "client_connected",
        payload: format!(
            r#"{{"event":"client.connected","clientid":"{id}","username":"fleet","peername":"{peer}","proto_ver":5,"keepalive":60,"clean_start":true,"connected_at":{t},"timestamp":{t},"node":"{}"}}"#,
            node_of(id)
        ),
        reason: None,
    }
}

fn subscribed(id: &str, t: i64) -> SimEvent {
    SimEvent {
        kind: "session_subscribed",
        payload: format!(
            r#"{{"event":"session.subscribed","clientid":"{id}","username":"fleet","topic":"fleet/{id}/cmd","qos":1,"timestamp":{t},"node":"{}"}}"#,
            node_of(id)
        ),
        reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::Metrics;
    use crate::core::pipeline::{Pipeline, PipelineSettings};
    use std::collections::HashMap;

    #[test]
    fn demo_covers_every_reason_and_flaps_within_seconds() {
        let t0 = 1_700_000_000_000;
        let mut fleet = Fleet::new(Scenario::Demo, 1000, 7, t0);
        let mut p = Pipeline::new(
            Metrics::new(&prometheus::Registry::new()).unwrap(),
            PipelineSettings::default(),
        );
        let mut out = Vec::new();
        for step in 0..=100 {
            let now = t0 + step * 100;
            out.clear();
            fleet.tick(now, 20, &mut out);
            for e in &out {
                let topic = format!("demo/events/{}", e.kind);
                p.handle(topic.as_bytes(), e.payload.as_bytes(), now);
            }
            p.tick(now, 1000);
        }
        let m = p.metrics();
        for reason in Reason::all().filter(|r| *r != Reason::Other) {
            assert!(m.disconnects(reason) > 0, "{reason} is zero");
        }
        assert_eq!(m.disconnects(Reason::Other), 0);
        assert_eq!(
            m.flapping(crate::core::flapping::FlapKind::Takeover).0,
            1,
            "one takeover-flapping ID"
        );
        assert_eq!(
            m.flapping(crate::core::flapping::FlapKind::Reconnect).0,
            1,
            "one reconnect loop"
        );
        let list = p.detector().flapping_clients();
        let takeover = list
            .iter()
            .find(|c| c.kind == crate::core::flapping::FlapKind::Takeover)
            .unwrap();
        assert_eq!(takeover.clientid, "shared-id-00");
        assert_eq!(takeover.peers.len(), 2);
        assert!(!list.iter().any(|c| c.clientid == "self-repair-01"));
    }

    #[test]
    fn the_demo_shows_the_node_the_network_and_the_lifetime_within_a_minute() {
        let t0 = 1_700_000_000_000;
        let mut fleet = Fleet::new(Scenario::Demo, 100_000, 7, t0);
        let registry = prometheus::Registry::new();
        let mut p = Pipeline::new(
            Metrics::new(&registry).unwrap(),
            PipelineSettings::default(),
        );
        let mut out = Vec::new();
        for step in 0..60 {
            let now = t0 + step * 1000;
            out.clear();
            fleet.tick(now, 20, &mut out);
            for e in &out {
                let topic = format!("demo/events/{}", e.kind);
                p.handle(topic.as_bytes(), e.payload.as_bytes(), now);
            }
        }
        let top = p.tick(t0 + 60_000, 1000).top.clone();
        let keepalive = top
            .reasons
            .iter()
            .find(|r| r.reason == Reason::KeepaliveTimeout)
            .unwrap();
        // the flaky site's /24 is the one network that stands out: the
        // storms' devices each have their own
        let nets: Vec<&str> = keepalive
            .networks
            .iter()
            .map(|n| n.network.as_str())
            .collect();
        assert_eq!(nets, ["198.51.100.0/24"]);
        // node-2 holds the storms: far more than a third
        let on = |node: &str| {
            keepalive
                .nodes
                .iter()
                .find(|n| n.node == node)
                .map_or(0, |n| n.count)
        };
        let all: u64 = keepalive.nodes.iter().map(|n| n.count).sum();
        assert!(on("emqx@node-2") * 10 > all * 9, "{:?}", keepalive.nodes);
        // tcp_closed connections were cut at 350 s: the 300-360 s bucket
        // holds most of them (the reconnect loop's half-second ones the rest)
        let h = prometheus::core::Metric::metric(p.metrics().lifetimes(Reason::TcpClosed));
        let h = h.get_histogram();
        let count = |le: f64| {
            h.get_bucket()
                .iter()
                .find(|b| b.upper_bound() == le)
                .map_or(0, |b| b.cumulative_count())
        };
        let in_bucket = count(360.0) - count(300.0);
        assert!(
            in_bucket * 2 > h.get_sample_count(),
            "{in_bucket} of {}",
            h.get_sample_count()
        );
        assert_eq!(
            count(300.0) - count(1.0),
            0,
            "nothing between 1 s and 300 s"
        );
    }

    #[test]
    fn the_demos_flaky_site_stands_out_in_the_top_devices() {
        let t0 = 1_700_000_000_000;
        let mut fleet = Fleet::new(Scenario::Demo, 100_000, 7, t0);
        let mut p = Pipeline::new(
            Metrics::new(&prometheus::Registry::new()).unwrap(),
            PipelineSettings::default(),
        );
        let mut out = Vec::new();
        // exact keepalive timeouts per device, to check the list against
        let mut truth: HashMap<String, u64> = HashMap::new();
        // five minutes of the demo's fleet at 50 disconnects a second
        for step in 0..300 {
            let now = t0 + step * 1000;
            out.clear();
            fleet.tick(now, 50, &mut out);
            for e in &out {
                let topic = format!("demo/events/{}", e.kind);
                p.handle(topic.as_bytes(), e.payload.as_bytes(), now);
                if e.kind == "client_disconnected" && e.payload.contains("\"keepalive_timeout\"") {
                    let id = e
                        .payload
                        .split("\"clientid\":\"")
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                        .unwrap();
                    *truth.entry(id.to_string()).or_default() += 1;
                }
            }
        }
        p.tick(t0 + 299_999, 1000);
        let report = p.snapshot().top.clone();
        let keepalive = report
            .reasons
            .iter()
            .find(|r| r.reason == crate::core::reasons::Reason::KeepaliveTimeout)
            .unwrap();
        // every listed count is the device's exact count
        for c in &keepalive.clients {
            assert_eq!(
                (c.count, c.error),
                (truth[&c.clientid], 0),
                "{}",
                c.clientid
            );
        }
        // the weak links time out once every 40, 55 and 70 s: 8, 6 and 5
        // times in five minutes, more than any device of the storms
        let top: Vec<(&str, u64)> = keepalive
            .clients
            .iter()
            .take(3)
            .map(|c| (c.clientid.as_str(), c.count))
            .collect();
        assert_eq!(
            top,
            [
                ("site-7-gw-01", 8),
                ("site-7-gw-02", 6),
                ("site-7-gw-03", 5)
            ]
        );
        let mut counts: Vec<u64> = truth.values().copied().collect();
        counts.sort_unstable();
        assert!(
            counts[counts.len() - 4] < 5,
            "{:?}",
            &counts[counts.len() - 10..]
        );
    }

    #[test]
    fn same_seed_same_fleet() {
        let run = |seed| {
            let mut f = Fleet::new(Scenario::Storm, 50, seed, 0);
            let mut out = Vec::new();
            f.tick(31_000, 10, &mut out);
            out
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        // one storm so far, at 10 s, of a tenth of the 50 devices
        let out = run(1);
        let storms = out
            .iter()
            .filter(|e| e.payload.contains("keepalive_timeout") && e.payload.contains(":10000,"))
            .count();
        assert_eq!(storms, 5);
    }
}
