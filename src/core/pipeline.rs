//! One message in, metrics out: parse, classify, detect flapping, count.
//!
//! [`Pipeline::handle`] is synchronous and takes the arrival time as data, so
//! the MQTT shell, `analyze` and the benchmarks drive the same code. It never
//! panics on input: every rejected message increments exactly one
//! `mqtt_exporter_event_errors_total{error}` series and changes nothing else.

use std::collections::HashSet;
use std::sync::Arc;

use crate::core::event::{self, mosquitto_log, Event, EventError, EventKind, Format, RawReason};
use crate::core::flapping::{Detector, FlapKind, Settings};
use crate::core::label::{label_value, MAX_LABEL_CHARS};
use crate::core::label_set::By;
use crate::core::lifetime::Lifetimes;
use crate::core::metrics::Metrics;
use crate::core::network::{self, Prefixes};
use crate::core::reasons::{self, Aliases, Reason};
use crate::core::snapshot::Snapshot;
use crate::core::top::{TopClients, TopNetwork, TopNode, TopReason, TopReport, TopSettings};

/// Pipeline settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSettings {
    /// Operator-given reason spellings (`--reason.alias`).
    pub aliases: Aliases,
    /// Payloads larger than this are rejected as `too_large`.
    pub max_payload_bytes: usize,
    /// How many flapping clients get a `mqtt_client_flapping` series.
    pub top_flapping: usize,
    pub flapping: Settings,
    /// How many clients per reason get a `mqtt_client_top_disconnects`
    /// series (`--top.clients`).
    pub top_clients: usize,
    pub top: TopSettings,
    /// How many networks per reason get a `mqtt_network_top_disconnects`
    /// series (`--top.networks`).
    pub top_networks: usize,
    /// Where a peer's source network is cut (`--top.network-prefix-*`).
    pub prefixes: Prefixes,
    /// Connections whose start is remembered (`--clients.max-connected`).
    pub max_connected: usize,
    /// Broker nodes counted by name (`--node.max-nodes`); later ones count
    /// as `other`.
    pub max_nodes: usize,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            aliases: Aliases::default(),
            max_payload_bytes: 64 * 1024,
            top_flapping: 20,
            flapping: Settings::default(),
            top_clients: 5,
            top: TopSettings::default(),
            top_networks: 5,
            prefixes: Prefixes::default(),
            max_connected: 1_000_000,
            max_nodes: 32,
        }
    }
}

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; a disconnect (or refused CONNACK) carries its reason, and
    /// `time_ms` is the event's own time when the payload has one.
    Accepted {
        kind: EventKind,
        reason: Option<Reason>,
        time_ms: Option<i64>,
    },
    Rejected(EventError),
    /// Well formed but not a connection event (most of Mosquitto's log):
    /// counted in `mqtt_exporter_events_ignored_total`, nothing else.
    Ignored,
}

/// Distinct unknown raw reasons logged; beyond this they are only counted.
const MAX_LOGGED_UNKNOWN: usize = 1000;

pub struct Pipeline {
    metrics: Metrics,
    detector: Detector,
    settings: PipelineSettings,
    unknown_reasons: HashSet<Box<str>>,
    errors_logged: By<EventError, bool>,
    evicted_reported: u64,
    expired_reported: u64,
    overflowed_reported: u64,
    untracked_reported: u64,
    top: TopClients,
    /// The source networks per reason, as `top` keeps devices: keyed by
    /// network, with client IDs for peers.
    networks: TopClients,
    /// The broker nodes per reason in the window (few: at most
    /// `max_nodes` and `other`, so counts are exact).
    nodes: TopClients,
    /// The address of the Mosquitto log line just handled, when it was a
    /// `New connection from ADDR` line.
    connection_peer: String,
    connection_peer_set: bool,
    /// The network of the event at hand, written without allocating.
    network_buf: String,
    /// When each connected client connected, for how long it lived.
    lifetimes: Lifetimes,
    /// What the last tick published.
    snapshot: Arc<Snapshot>,
}

impl Pipeline {
    pub fn new(metrics: Metrics, settings: PipelineSettings) -> Self {
        let top = TopClients::new(settings.top.clone());
        let networks = TopClients::new(TopSettings {
            capacity: TopSettings::capacity_for(settings.top_networks),
            ..settings.top.clone()
        });
        let lifetimes = Lifetimes::new(settings.max_connected);
        let nodes = TopClients::new(TopSettings {
            capacity: TopSettings::capacity_for(settings.max_nodes + 1),
            ..settings.top.clone()
        });
        Pipeline {
            metrics,
            detector: Detector::new(settings.flapping.clone()),
            settings,
            unknown_reasons: HashSet::new(),
            errors_logged: By::default(),
            evicted_reported: 0,
            expired_reported: 0,
            overflowed_reported: 0,
            untracked_reported: 0,
            top,
            networks,
            nodes,
            connection_peer: String::new(),
            connection_peer_set: false,
            network_buf: String::new(),
            lifetimes,
            snapshot: Arc::default(),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The lists as of the last [`Pipeline::tick`].
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot)
    }

    /// Handles one MQTT message that arrived at `arrival_ms` (ms since the
    /// epoch), its format named by its topic ([`Format::of_topic`]).
    pub fn handle(&mut self, topic: &[u8], payload: &[u8], arrival_ms: i64) -> Outcome {
        self.handle_as(Format::of_topic(topic), topic, payload, arrival_ms)
    }

    /// Handles one delivery whose source names its `format`.
    pub fn handle_as(
        &mut self,
        format: Format,
        topic: &[u8],
        payload: &[u8],
        arrival_ms: i64,
    ) -> Outcome {
        if payload.len() > self.settings.max_payload_bytes {
            return self.reject(EventError::TooLarge, topic, payload.len());
        }
        let parsed = match format {
            Format::MosquittoLog => {
                let parsed = mosquitto_log::parse(payload).transpose();
                self.carry_connection_peer(payload, parsed)
            }
            Format::Event => Some(event::parse(topic, payload)),
        };
        let Some(parsed) = parsed else {
            self.metrics.ignored_log_line();
            return Outcome::Ignored;
        };
        match parsed {
            Ok(event) => self.record(event, arrival_ms),
            Err(error) => self.reject(error, topic, payload.len()),
        }
    }

    /// Mosquitto names a client refused before it had an ID only as
    /// `<unknown>`, with no address; the address is on the `New connection
    /// from ADDR` line it printed just before, where it printed one. Only
    /// the line immediately before counts, so an interleaved connection's
    /// address is never taken for it.
    fn carry_connection_peer<'a>(
        &mut self,
        payload: &[u8],
        parsed: Option<Result<Event<'a>, EventError>>,
    ) -> Option<Result<Event<'a>, EventError>> {
        // one buffer, reused: a connect storm allocates nothing here
        let pending = std::mem::replace(&mut self.connection_peer_set, false);
        match parsed {
            Some(Ok(mut event)) => {
                if pending
                    && event.clientid == mosquitto_log::UNKNOWN_CLIENT
                    && event.peer.is_none()
                {
                    event.peer = Some(std::borrow::Cow::Owned(self.connection_peer.clone()));
                }
                Some(Ok(event))
            }
            None => {
                if let Some(addr) = mosquitto_log::new_connection(payload) {
                    self.connection_peer.clear();
                    self.connection_peer.push_str(addr);
                    self.connection_peer_set = true;
                }
                None
            }
            other => other,
        }
    }

    /// Handles one line of a log or capture, in whichever format
    /// [`event::lines::split`] finds it (Mosquitto's log, JSON lines, an
    /// EMQX file-sink record, `mosquitto_sub -v`), as [`Pipeline::handle`]
    /// handles a message.
    pub fn handle_line(&mut self, line: &[u8], arrival_ms: i64) -> Outcome {
        let (format, topic, payload) = event::lines::read(line);
        let payload = match &payload {
            event::lines::Payload::Borrowed(p) => p,
            event::lines::Payload::Owned(p) => p.as_bytes(),
        };
        self.handle_as(format, topic.as_bytes(), payload, arrival_ms)
    }

    /// Handles one event already read (by a source that reads its own
    /// format, as Event Grid's deliveries are), as [`Pipeline::handle`]
    /// does once it has parsed a payload.
    pub fn record(&mut self, event: Event<'_>, arrival_ms: i64) -> Outcome {
        let delay = event
            .time_ms
            .map(|t| arrival_ms.saturating_sub(t).max(0) as f64 / 1000.0);
        self.metrics.arrived(event.kind, arrival_ms, delay);
        let time = match event.time_ms {
            Some(t) => self.clamp(t, arrival_ms),
            None => arrival_ms,
        };

        // a client refused before it had an ID is counted, never tracked
        let tracked = event.clientid != mosquitto_log::UNKNOWN_CLIENT;
        let reason = match event.kind {
            EventKind::Connected => {
                self.metrics.connected();
                if tracked {
                    self.lifetimes.connected(&event.clientid, time);
                }
                if let Some((address, _)) = event.peer.as_deref().and_then(network::address) {
                    self.detector.observe_connect(&event.clientid, address);
                }
                None
            }
            EventKind::Subscribed => {
                self.metrics.subscribed();
                None
            }
            EventKind::Disconnected => event.reason.as_ref().map(|r| self.classify(r)),
            EventKind::Connack if event.is_refused_connack() => {
                event.reason.as_ref().map(|r| self.classify(r))
            }
            EventKind::Connack | EventKind::Unsubscribed | EventKind::Other => None,
        };
        if let Some(reason) = reason {
            let node =
                self.metrics
                    .disconnected(reason, event.node.as_deref(), self.settings.max_nodes);
            if let Some(node) = node {
                // as its label value, so the list and the series agree (a
                // short name is its own, without allocating)
                if node.len() <= MAX_LABEL_CHARS {
                    self.nodes.observe(reason, node, None, arrival_ms);
                } else {
                    self.nodes
                        .observe(reason, &label_value(node), None, arrival_ms);
                }
            }
            if tracked && event.kind == EventKind::Disconnected {
                // the event's own two times are one clock: their difference
                // is the lifetime, whatever the skew to ours
                let (end, started) = match (event.connected_at, event.time_ms) {
                    (Some(start), Some(end)) => (end, Some(start)),
                    _ => (time, None),
                };
                if let Some(lived) = self.lifetimes.disconnected(&event.clientid, end, started) {
                    self.metrics.lived(reason, lived);
                }
            }
        }
        // peers are kept per address: a NAT'd device's ports are one peer
        let peer = event.peer.as_deref().and_then(network::address);
        if let (Some(reason), Some((_, ip))) = (reason, peer) {
            // every disconnect from an address counts for its network, a
            // client refused before it had an ID too
            network::network(ip, self.settings.prefixes, &mut self.network_buf);
            self.networks
                .observe(reason, &self.network_buf, Some(&event.clientid), arrival_ms);
        }
        let address = peer.map(|(address, _)| address);
        if let Some(reason) = reason.filter(|_| tracked) {
            self.top
                .observe(reason, &event.clientid, address, arrival_ms);
            let entered = self.detector.observe_disconnect(
                &event.clientid,
                reason == Reason::Takeovered,
                address,
                time,
            );
            for (kind, hit) in [
                (FlapKind::Takeover, entered.takeover),
                (FlapKind::Reconnect, entered.reconnect),
            ] {
                if hit {
                    self.metrics
                        .flapping_entered(kind, self.detector.flapping(kind));
                    tracing::warn!(
                        clientid = %event.clientid,
                        kind = kind.as_str(),
                        peer = address.unwrap_or(""),
                        "client is flapping"
                    );
                }
            }
        }
        Outcome::Accepted {
            kind: event.kind,
            reason,
            time_ms: event.time_ms,
        }
    }

    /// Clamps an event time to within the allowed skew of its arrival, so a
    /// wrong clock cannot put one client's events outside every window or
    /// keep it flapping for years.
    fn clamp(&self, t: i64, arrival_ms: i64) -> i64 {
        let skew = self.settings.flapping.max_skew_ms;
        let clamped = t.clamp(
            arrival_ms.saturating_sub(skew),
            arrival_ms.saturating_add(skew),
        );
        if clamped != t {
            self.metrics.clamped();
        }
        clamped
    }

    /// Moves flapping windows and the top lists to `now_ms`, refreshes the
    /// gauges that depend on them, and returns the lists as one
    /// [`Snapshot`]: the `listed` clients with the most flapping events
    /// (most first), and the devices and networks that stand out per
    /// reason. The work is bounded by `listed`, the top lists' sizes and
    /// what changed since the last tick, not by how many clients there are.
    pub fn tick(&mut self, now_ms: i64, listed: usize) -> Arc<Snapshot> {
        self.detector.advance(now_ms);
        for kind in FlapKind::ALL {
            self.metrics
                .flapping_now(kind, self.detector.flapping(kind));
        }
        let (evicted, expired) = (self.detector.evicted(), self.detector.expired());
        self.metrics.tracked(
            self.detector.tracked(),
            evicted - self.evicted_reported,
            expired - self.expired_reported,
        );
        (self.evicted_reported, self.expired_reported) = (evicted, expired);
        let (untracked, overflowed) = (self.lifetimes.untracked(), self.top.overflowed());
        self.metrics.overflowed(
            untracked - self.untracked_reported,
            overflowed - self.overflowed_reported,
        );
        (self.untracked_reported, self.overflowed_reported) = (untracked, overflowed);

        let top = self.settings.top_flapping;
        let mut flapping = self.detector.top(listed.max(top));
        self.metrics
            .set_top_flapping(&flapping[..top.min(flapping.len())]);
        flapping.truncate(listed);

        let api = crate::core::listed::TOP_API;
        let mut reasons = self.top.top(now_ms, self.settings.top_clients.max(api));
        let networks = self
            .networks
            .top(now_ms, self.settings.top_networks.max(api));
        // a reason whose disconnects name no client ID (clients refused
        // before they had one) still lists its networks and nodes
        fn entry_of(reasons: &mut Vec<TopReason>, reason: Reason) -> &mut TopReason {
            let at = match reasons.iter().position(|r| r.reason == reason) {
                Some(at) => at,
                None => {
                    reasons.push(TopReason::empty(reason));
                    reasons.len() - 1
                }
            };
            &mut reasons[at]
        }
        for entry in networks {
            entry_of(&mut reasons, entry.reason).networks =
                entry.clients.into_iter().map(TopNetwork::from).collect();
        }
        for entry in self.nodes.top(now_ms, self.settings.max_nodes + 1) {
            entry_of(&mut reasons, entry.reason).nodes = entry
                .clients
                .into_iter()
                .map(|c| TopNode {
                    node: c.clientid,
                    count: c.count,
                })
                .collect();
        }
        reasons.sort_by_key(|r| r.reason);
        self.metrics.set_top(
            &reasons,
            self.settings.top_clients,
            self.settings.top_networks,
        );
        self.snapshot = Arc::new(Snapshot {
            flapping,
            top: TopReport {
                window_seconds: self.settings.top.window_ms as f64 / 1000.0,
                reasons,
            },
        });
        Arc::clone(&self.snapshot)
    }

    fn classify(&mut self, raw: &RawReason<'_>) -> Reason {
        let reason = match raw {
            RawReason::Name(name) => self.settings.aliases.classify(name),
            RawReason::Code(code) => reasons::classify_code(*code),
        };
        if reason == Reason::Other && self.unknown_reasons.len() < MAX_LOGGED_UNKNOWN {
            // looked up without allocating: the same unknown reason may come
            // with every event of a storm
            let code;
            let key: &str = match raw {
                RawReason::Name(name) => {
                    let end = name.char_indices().nth(128).map_or(name.len(), |(i, _)| i);
                    &name[..end]
                }
                RawReason::Code(c) => {
                    code = format!("0x{c:02x}");
                    &code
                }
            };
            if !self.unknown_reasons.contains(key) {
                tracing::warn!(raw_reason = %key.escape_debug(), "unknown disconnect reason, counted as other");
                self.unknown_reasons.insert(key.into());
                if self.unknown_reasons.len() == MAX_LOGGED_UNKNOWN {
                    tracing::warn!(
                        logged = MAX_LOGGED_UNKNOWN,
                        "logged the most distinct unknown disconnect reasons allowed; further new ones are counted as other without a log line"
                    );
                }
            }
        }
        reason
    }

    /// Counts one delivery of `len` bytes on `topic` as `error` (and logs
    /// the first of each kind at warn): the only series it changes is
    /// `mqtt_exporter_event_errors_total{error}`. Sources call it for what
    /// they cannot read themselves.
    pub fn reject(&mut self, error: EventError, topic: &[u8], len: usize) -> Outcome {
        self.metrics.rejected(error);
        // fields are only built when the level is enabled: a garbage storm
        // costs no allocation per event at the default level
        let topic = &topic[..topic.len().min(256)];
        if !std::mem::replace(&mut self.errors_logged[error], true) {
            tracing::warn!(error = error.label(), topic = %String::from_utf8_lossy(topic), bytes = len, "event rejected: {error} (further rejections of this kind are logged at debug)");
        } else {
            tracing::debug!(error = error.label(), topic = %String::from_utf8_lossy(topic), bytes = len, "event rejected");
        }
        Outcome::Rejected(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Registry;

    fn pipeline() -> Pipeline {
        let registry = Registry::new();
        let metrics = Metrics::new(&registry).unwrap();
        Pipeline::new(metrics, PipelineSettings::default())
    }

    fn disconnect(id: &str, reason: &str, peer: &str, t: i64) -> String {
        format!(
            r#"{{"event":"client.disconnected","clientid":"{id}","reason":"{reason}","peername":"{peer}","disconnected_at":{t}}}"#
        )
    }

    #[test]
    fn counts_by_canonical_reason() {
        let mut p = pipeline();
        let t = 1_700_000_000_000;
        for (i, reason) in [
            "keepalive_timeout",
            "takenover",
            "discarded",
            "weird",
            "sock_closed",
        ]
        .iter()
        .enumerate()
        {
            let payload = disconnect(&format!("c{i}"), reason, "1.2.3.4:5", t);
            p.handle(b"$events/client_disconnected", payload.as_bytes(), t + 1500);
        }
        let m = p.metrics();
        assert_eq!(m.disconnects(Reason::KeepaliveTimeout), 1);
        assert_eq!(m.disconnects(Reason::Takeovered), 2);
        assert_eq!(m.disconnects(Reason::TcpClosed), 1);
        assert_eq!(m.disconnects(Reason::Other), 1);
        assert_eq!(m.disconnects(Reason::Normal), 0);
        assert_eq!(m.received(EventKind::Disconnected), 5);
        assert_eq!(m.delays().0, 5);
        assert!((m.delays().1 - 7.5).abs() < 1e-9);
    }

    #[test]
    fn unknown_reasons_are_remembered_once_each_and_bounded() {
        let mut p = pipeline();
        let long = "x".repeat(500);
        for reason in [
            "protocol_error",
            "protocol_error",
            long.as_str(),
            long.as_str(),
        ] {
            let payload = disconnect("c", reason, "1.2.3.4:5", 1);
            p.handle(b"t/disconnected", payload.as_bytes(), 1);
        }
        p.handle(
            b"t/disconnected",
            br#"{"clientid":"c","reason_code":129}"#,
            1,
        );
        assert_eq!(p.metrics().disconnects(Reason::Other), 5);
        assert_eq!(p.unknown_reasons.len(), 3);
        assert!(p.unknown_reasons.contains("0x81"));
        assert!(p.unknown_reasons.contains(&long[..128]));
        for i in 0..2 * MAX_LOGGED_UNKNOWN {
            let payload = disconnect("c", &format!("new-{i}"), "1.2.3.4:5", 1);
            p.handle(b"t/disconnected", payload.as_bytes(), 1);
        }
        assert_eq!(p.unknown_reasons.len(), MAX_LOGGED_UNKNOWN);
    }

    #[test]
    fn rejected_input_changes_only_the_error_counter() {
        let mut p = pipeline();
        let big = vec![b' '; 64 * 1024 + 1];
        assert_eq!(
            p.handle(b"t/disconnected", &big, 0),
            Outcome::Rejected(EventError::TooLarge)
        );
        assert_eq!(
            p.handle(b"t/disconnected", b"{", 0),
            Outcome::Rejected(EventError::InvalidJson)
        );
        let m = p.metrics();
        assert_eq!(m.errors(EventError::TooLarge), 1);
        assert_eq!(m.errors(EventError::InvalidJson), 1);
        assert_eq!(m.errors(EventError::MissingField), 0);
        assert!(Reason::all().all(|r| m.disconnects(r) == 0));
        assert_eq!(m.received(EventKind::Disconnected), 0);
    }

    #[test]
    fn refused_connack_counts_as_disconnect() {
        let mut p = pipeline();
        let payload = br#"{"event":"client.connack","clientid":"c","reason_code":"client_identifier_not_valid"}"#;
        let out = p.handle(b"emqx/events/connack", payload, 5);
        assert_eq!(
            out,
            Outcome::Accepted {
                kind: EventKind::Connack,
                reason: Some(Reason::ClientIdInvalid),
                time_ms: None,
            }
        );
        let ok = br#"{"event":"client.connack","clientid":"c","reason_code":"success"}"#;
        p.handle(b"emqx/events/connack", ok, 6);
        let m = p.metrics();
        assert_eq!(m.disconnects(Reason::ClientIdInvalid), 1);
        assert_eq!(m.received(EventKind::Other), 2);
    }

    #[test]
    fn takeover_flapping_sets_gauges_and_top_series() {
        let mut p = pipeline();
        let t = 1_700_000_000_000;
        for i in 0..3 {
            let peer = if i % 2 == 0 {
                "10.0.0.1:1"
            } else {
                "10.0.0.2:2"
            };
            let payload = disconnect("shared-id", "takenover", peer, t + i * 1000);
            p.handle(
                b"$events/client_disconnected",
                payload.as_bytes(),
                t + i * 1000,
            );
        }
        assert_eq!(p.metrics().flapping(FlapKind::Takeover).1, 1);
        assert_eq!(p.metrics().flapping(FlapKind::Takeover).0, 1);
        let list = p.tick(t + 3000, 1000).flapping.clone();
        assert_eq!(list.len(), 1);
        // kept per address, without the port
        assert_eq!(list[0].peers, vec!["10.0.0.1", "10.0.0.2"]);
        assert_eq!(
            p.metrics().listed("mqtt_client_flapping"),
            [("clientid=shared-id kind=takeover".to_string(), 3)]
        );
        // five minutes after the first takeover the state clears
        let list = p.tick(t + 300_000, 1000).flapping.clone();
        assert!(list.is_empty());
        assert_eq!(p.metrics().flapping(FlapKind::Takeover).0, 0);
        assert_eq!(p.metrics().flapping(FlapKind::Takeover).1, 1);
    }

    #[test]
    fn top_clients_per_reason_become_series_and_leave_with_the_window() {
        let mut p = pipeline();
        let t = 1_700_000_000_000;
        for (id, n) in [("gw-1", 7), ("gw-2", 4), ("gw-3", 4)] {
            for i in 0..n {
                let payload = disconnect(id, "keepalive_timeout", "10.1.1.1:9", t + i);
                p.handle(b"$events/client_disconnected", payload.as_bytes(), t + i);
            }
        }
        for i in 0..20 {
            let payload = disconnect(&format!("dev-{i}"), "keepalive_timeout", "10.0.0.1:1", t);
            p.handle(b"$events/client_disconnected", payload.as_bytes(), t);
        }
        let payload = disconnect("gw-1", "tcp_closed", "10.1.1.1:9", t);
        p.handle(b"$events/client_disconnected", payload.as_bytes(), t);
        p.tick(t + 1000, 10);
        // only devices that stand out: one-off devices and gw-1's single
        // tcp_closed are counted among the devices, never listed
        let series = |p: &Pipeline, family| p.metrics().listed(family);
        assert_eq!(
            series(&p, "mqtt_client_top_disconnects"),
            [
                ("clientid=gw-1 reason=keepalive_timeout".to_string(), 7),
                ("clientid=gw-2 reason=keepalive_timeout".to_string(), 4),
                ("clientid=gw-3 reason=keepalive_timeout".to_string(), 4),
            ]
        );
        let devices = |p: &Pipeline, reason: Reason| p.metrics().disconnecting_clients(reason);
        assert_eq!(devices(&p, Reason::KeepaliveTimeout), 23);
        assert_eq!(devices(&p, Reason::TcpClosed), 1);
        assert_eq!(devices(&p, Reason::Normal), 0);
        let report = p.snapshot().top.clone();
        assert_eq!(report.window_seconds, 300.0);
        assert_eq!(report.reasons[0].reason, Reason::KeepaliveTimeout);
        assert_eq!(report.reasons[0].devices, 23);
        assert_eq!(report.reasons[0].clients.len(), 3);
        assert_eq!(report.reasons[0].clients[0].peers, ["10.1.1.1"]);
        assert_eq!(report.reasons[1].reason, Reason::TcpClosed);
        assert!(report.reasons[1].clients.is_empty());
        // the networks: 15 from 10.1.1.0/24, 20 from 10.0.0.0/24, each
        // with some of its devices
        let nets: Vec<(&str, u64, u64)> = report.reasons[0]
            .networks
            .iter()
            .map(|n| (n.network.as_str(), n.count, n.error))
            .collect();
        assert_eq!(nets, [("10.0.0.0/24", 20, 0), ("10.1.1.0/24", 15, 0)]);
        assert_eq!(
            report.reasons[0].networks[1].clients,
            ["gw-1", "gw-2", "gw-3"]
        );
        assert!(report.reasons[1].networks.is_empty());
        assert_eq!(
            series(&p, "mqtt_network_top_disconnects"),
            [
                (
                    "network=10.0.0.0/24 reason=keepalive_timeout".to_string(),
                    20
                ),
                (
                    "network=10.1.1.0/24 reason=keepalive_timeout".to_string(),
                    15
                ),
            ]
        );
        p.tick(t + 400_000, 10);
        assert_eq!(series(&p, "mqtt_client_top_disconnects"), []);
        assert_eq!(series(&p, "mqtt_network_top_disconnects"), []);
        assert!(p.snapshot().top.reasons.is_empty());
        assert_eq!(devices(&p, Reason::KeepaliveTimeout), 0);
    }

    #[test]
    fn disconnects_count_by_broker_node_bounded() {
        let registry = Registry::new();
        let mut p = Pipeline::new(
            Metrics::new(&registry).unwrap(),
            PipelineSettings {
                max_nodes: 2,
                ..PipelineSettings::default()
            },
        );
        for (node, n) in [
            ("emqx@10.0.0.1", 3),
            ("emqx@10.0.0.2", 1),
            ("emqx@10.0.0.3", 2),
            ("emqx@10.0.0.4", 1),
        ] {
            for i in 0..n {
                let payload = format!(
                    r#"{{"event":"client.disconnected","clientid":"c{i}","reason":"keepalive_timeout","node":"{node}"}}"#
                );
                p.handle(b"emqx/disconnected", payload.as_bytes(), 1);
            }
        }
        // the node from EMQX's $SYS topic; no node: not counted by node
        p.handle(
            b"$SYS/brokers/emqx@10.0.0.1/clients/d/disconnected",
            br#"{"clientid":"d","reason":"takenover"}"#,
            1,
        );
        p.handle(
            b"$events/client_disconnected",
            disconnect("e", "normal", "1.2.3.4:5", 1).as_bytes(),
            1,
        );
        let count = |node: &str, reason: &str| {
            registry
                .gather()
                .iter()
                .filter(|f| f.name() == "mqtt_node_disconnects_total")
                .flat_map(|f| f.get_metric().iter())
                .filter(|m| {
                    let l = m.get_label();
                    l.iter().any(|l| l.name() == "node" && l.value() == node)
                        && l.iter()
                            .any(|l| l.name() == "reason" && l.value() == reason)
                })
                .map(|m| m.get_counter().get_value() as u64)
                .sum::<u64>()
        };
        assert_eq!(count("emqx@10.0.0.1", "keepalive_timeout"), 3);
        assert_eq!(count("emqx@10.0.0.1", "takeovered"), 1);
        assert_eq!(count("emqx@10.0.0.2", "keepalive_timeout"), 1);
        assert_eq!(count("other", "keepalive_timeout"), 3);
        let series = registry
            .gather()
            .iter()
            .filter(|f| f.name() == "mqtt_node_disconnects_total")
            .map(|f| f.get_metric().len())
            .sum::<usize>();
        // three node values, every reason of each
        assert_eq!(series, 3 * Reason::all().count());
        // the window's split by node, in /api/v1/top: the nodes with 3 or
        // more, exact, "other" holding the nodes past the cap
        let top = p.tick(1000, 10).top.clone();
        let keepalive = top
            .reasons
            .iter()
            .find(|r| r.reason == Reason::KeepaliveTimeout)
            .unwrap();
        let nodes: Vec<(&str, u64)> = keepalive
            .nodes
            .iter()
            .map(|n| (n.node.as_str(), n.count))
            .collect();
        assert_eq!(nodes, [("emqx@10.0.0.1", 3), ("other", 3)]);
        assert!(top
            .reasons
            .iter()
            .all(|r| r.reason == Reason::KeepaliveTimeout || r.nodes.is_empty()));
    }

    #[test]
    fn how_long_connections_lived_from_the_event_or_the_connect() {
        let mut p = pipeline();
        let t = 1_700_000_000_000;
        // EMQX 5.8.6: both times in the disconnect event; a load
        // balancer's 350 s idle timeout
        for i in 0..3 {
            let payload = format!(
                r#"{{"event":"client.disconnected","clientid":"lb-{i}","reason":"sock_closed","connected_at":{},"disconnected_at":{}}}"#,
                t - 350_000,
                t
            );
            p.handle(b"emqx/disconnected", payload.as_bytes(), t);
        }
        // Mosquitto's log: the connect line joined with the disconnect line
        p.handle(
            b"$SYS/broker/log/N",
            b"1700000000: New client connected from 10.0.0.9:4000 as gw (p2, c1, k60).",
            t,
        );
        p.handle(
            b"$SYS/broker/log/N",
            b"1700000003: Client gw has exceeded timeout, disconnecting.",
            t + 3_000,
        );
        // a disconnect whose start is unknown is not observed
        let payload = disconnect("unknown-start", "keepalive_timeout", "10.0.0.1:1", t);
        p.handle(b"$events/client_disconnected", payload.as_bytes(), t);
        let lived = |r: Reason| {
            let h = p.metrics().lifetimes(r);
            (h.get_sample_count(), h.get_sample_sum())
        };
        assert_eq!(lived(Reason::TcpClosed), (3, 1050.0));
        assert_eq!(lived(Reason::KeepaliveTimeout), (1, 3.0));
        let tcp = prometheus::core::Metric::metric(p.metrics().lifetimes(Reason::TcpClosed));
        let buckets: Vec<(f64, u64)> = tcp
            .get_histogram()
            .get_bucket()
            .iter()
            .map(|b| (b.upper_bound(), b.cumulative_count()))
            .filter(|(le, _)| [300.0, 360.0].contains(le))
            .collect();
        assert_eq!(buckets, [(300.0, 0), (360.0, 3)]);
    }

    #[test]
    fn a_future_dated_event_does_not_blind_detection_for_others() {
        let mut p = pipeline();
        let t = 1_700_000_000_000;
        // one client an hour ahead: clamped to arrival + 60 s and counted
        let ahead = disconnect("clock-ahead", "takenover", "10.0.0.9:1", t + 3_600_000);
        p.handle(b"$events/client_disconnected", ahead.as_bytes(), t);
        assert_eq!(p.metrics().clamped_and_expired().0, 1);
        // four real takeovers of another client within one second are flagged
        for i in 0..4 {
            let payload = disconnect("victim", "takenover", "10.0.0.1:1", t + 250 * i);
            p.handle(
                b"$events/client_disconnected",
                payload.as_bytes(),
                t + 250 * i,
            );
        }
        assert_eq!(p.metrics().flapping(FlapKind::Takeover).1, 1);
        let list = p.tick(t + 1000, 1000).flapping.clone();
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].clientid.as_str(), list[0].count), ("victim", 4));
        assert_eq!(p.metrics().clamped_and_expired().0, 1);
    }

    #[test]
    fn events_dated_2100_flap_only_until_the_window_passes() {
        let mut p = pipeline();
        let t = 1_700_000_000_000;
        let y2100 = 4_102_444_800_000i64;
        for i in 0..3 {
            let payload = disconnect("from-2100", "takenover", "10.0.0.1:1", y2100 + i);
            p.handle(b"$events/client_disconnected", payload.as_bytes(), t + i);
        }
        assert_eq!(p.metrics().clamped_and_expired().0, 3);
        assert_eq!(p.tick(t + 10, 1000).flapping[0].last_seen, t + 2 + 60_000);
        // clamped to arrival + 60 s, so gone 60 s after a normal flap would be
        assert_eq!(p.tick(t + 60_000 + 299_999, 1000).flapping.len(), 1);
        assert!(p.tick(t + 60_000 + 300_000, 1000).flapping.is_empty());
        assert_eq!(p.metrics().flapping(FlapKind::Takeover).0, 0);
        // and dated 1970: clamped the other way, also counted
        let old = disconnect("from-1970", "normal", "10.0.0.1:1", 5);
        p.handle(b"$events/client_disconnected", old.as_bytes(), t);
        assert_eq!(p.metrics().clamped_and_expired().0, 4);
    }

    #[test]
    fn a_mass_flapping_storm_is_listed_in_bounded_ticks_and_released_after() {
        let mut p = pipeline();
        let t = 1_700_000_000_000;
        let clients: i64 = 20_000;
        for round in 0..3 {
            for c in 0..clients {
                let at = t + round * 1000 + c / 100;
                let payload = disconnect(&format!("dev-{c:05}"), "takenover", "10.0.0.1:1", at);
                p.handle(b"$events/client_disconnected", payload.as_bytes(), at);
            }
        }
        let m = p.metrics();
        assert_eq!(m.disconnects(Reason::Takeovered), 3 * clients as u64);
        assert_eq!(m.flapping(FlapKind::Takeover).1, clients as u64);
        let list = p.tick(t + 3000, 1000).flapping.clone();
        assert_eq!(list.len(), 1000);
        assert!(list.iter().all(|c| c.count == 3));
        assert_eq!(list[0].clientid, "dev-00000");
        assert_eq!(p.metrics().flapping(FlapKind::Takeover).0, clients);
        assert_eq!(p.detector().tracked(), clients as usize);
        // the series set is exactly the top 20, with no reset in between
        assert_eq!(p.metrics().listed("mqtt_client_flapping").len(), 20);
        // after the window and the skew margin, every state is given back
        let mut now = t + 3000 + 300_000 + 60_000 + 1000;
        for _ in 0..3 {
            p.tick(now, 1000);
            now += 1000;
        }
        assert_eq!(p.metrics().flapping(FlapKind::Takeover).0, 0);
        assert_eq!(p.detector().tracked(), 0);
        assert_eq!(p.metrics().clamped_and_expired().1, clients as u64);
        assert_eq!(p.metrics().listed("mqtt_client_flapping"), []);
    }

    #[test]
    fn a_huge_client_id_gets_a_bounded_label_value() {
        let mut p = pipeline();
        let huge = "d".repeat(60_000);
        let other = format!("{}e", "d".repeat(59_999));
        for id in [&huge, &other] {
            for i in 0..3 {
                let payload = disconnect(id, "takenover", "10.0.0.1:1", 1_000 + i);
                p.handle(
                    b"$events/client_disconnected",
                    payload.as_bytes(),
                    1_000 + i,
                );
            }
        }
        p.tick(2_000, 1000);
        let ids = |family| -> Vec<String> {
            p.metrics()
                .listed(family)
                .iter()
                .filter_map(|(labels, _)| labels.strip_prefix("clientid="))
                .filter_map(|rest| rest.split(' ').next())
                .map(str::to_string)
                .collect()
        };
        let labels = ids("mqtt_client_flapping");
        assert_eq!(labels.len(), 2, "two IDs with one prefix stay apart");
        for label in &labels {
            assert_eq!(label.chars().count(), 128 + 1 + 16, "{label}");
            assert!(label.starts_with(&huge[..128]));
        }
        assert_ne!(labels[0], labels[1]);
        // the top-devices series label each device exactly the same way
        assert_eq!(ids("mqtt_client_top_disconnects"), labels);
        // a short ID is its own label value
        assert_eq!(crate::core::label::label_value("dev-1"), "dev-1");
        assert_eq!(
            crate::core::label::label_value(&"x".repeat(128)),
            "x".repeat(128)
        );
    }

    #[test]
    fn an_aws_connect_that_failed_is_a_refused_connection_from_its_network() {
        let mut p = pipeline();
        let t = 1_717_651_190_811;
        let failed =
            include_bytes!("../../tests/fixtures/aws/connect_failed_authorization_failed.json");
        for i in 0..3 {
            let topic = format!("$aws/events/presence/connect_failed/sensor-{i}");
            let outcome = p.handle(topic.as_bytes(), failed, t);
            assert_eq!(
                outcome,
                Outcome::Accepted {
                    kind: EventKind::Connack,
                    reason: Some(Reason::NotAuthorized),
                    time_ms: Some(t),
                }
            );
        }
        assert_eq!(p.metrics().disconnects(Reason::NotAuthorized), 3);
        assert_eq!(p.metrics().connects(), 0);
        let top = p.tick(t + 1000, 10).top.clone();
        let nets: Vec<(&str, u64)> = top.reasons[0]
            .networks
            .iter()
            .map(|n| (n.network.as_str(), n.count))
            .collect();
        assert_eq!(nets, [("192.0.2.0/24", 3)]);
    }

    #[test]
    fn a_refused_mosquitto_client_gets_the_address_of_the_line_before() {
        let mut p = pipeline();
        let t = 1_795_837_151_000;
        let log = |p: &mut Pipeline, line: &str| p.handle(b"$SYS/broker/log/N", line.as_bytes(), t);
        // a wrong-password storm from one site: each refusal right after
        // its connection's line
        for i in 0..5 {
            log(
                &mut p,
                &format!("1795837151: New connection from 203.0.113.{i}:4100{i} on port 1883."),
            );
            log(
                &mut p,
                "1795837151: Client <unknown> disconnected, not authorised.",
            );
        }
        // another line in between: the address is not carried over
        log(
            &mut p,
            "1795837151: New connection from 198.51.100.9:1 on port 1883.",
        );
        log(&mut p, "1795837151: Client gw-1 closed its connection.");
        log(
            &mut p,
            "1795837151: Client <unknown> disconnected, not authorised.",
        );
        assert_eq!(p.metrics().disconnects(Reason::NotAuthenticated), 6);
        let top = p.tick(t + 1000, 10).top.clone();
        let refused = top
            .reasons
            .iter()
            .find(|r| r.reason == Reason::NotAuthenticated)
            .unwrap();
        let nets: Vec<(&str, u64)> = refused
            .networks
            .iter()
            .map(|n| (n.network.as_str(), n.count))
            .collect();
        assert_eq!(nets, [("203.0.113.0/24", 5)]);
    }

    #[test]
    fn operator_aliases_count_under_their_reason() {
        let registry = Registry::new();
        let settings = PipelineSettings {
            aliases: Aliases::new([("Session Kicked".to_string(), Reason::Kicked)])
                .unwrap_or_default(),
            ..PipelineSettings::default()
        };
        let mut p = Pipeline::new(Metrics::new(&registry).unwrap(), settings);
        for reason in [
            "session kicked",
            "SESSION-KICKED",
            "takenover",
            "unheard of",
        ] {
            let payload = disconnect("c", reason, "1.2.3.4:5", 1);
            p.handle(b"t/disconnected", payload.as_bytes(), 1);
        }
        let m = p.metrics();
        assert_eq!(m.disconnects(Reason::Kicked), 2);
        assert_eq!(m.disconnects(Reason::Takeovered), 1);
        assert_eq!(m.disconnects(Reason::Other), 1);
    }
}
