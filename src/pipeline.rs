//! One message in, metrics out: parse, classify, detect flapping, count.
//!
//! [`Pipeline::handle`] is synchronous and takes the arrival time as data, so
//! the MQTT shell, `analyze` and the benchmarks drive the same code. It never
//! panics on input: every rejected message increments exactly one
//! `mqtt_exporter_event_errors_total{error}` series and changes nothing else.

use std::collections::HashSet;

use crate::event::{self, EventError, EventKind, RawReason};
use crate::flapping::{Detector, FlapKind, FlappingClient, Settings};
use crate::metrics::Metrics;
use crate::reasons::{self, Reason};

/// Pipeline settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSettings {
    /// Payloads larger than this are rejected as `too_large`.
    pub max_payload_bytes: usize,
    /// How many flapping clients get a `mqtt_client_flapping` series.
    pub top_flapping: usize,
    pub flapping: Settings,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            max_payload_bytes: 64 * 1024,
            top_flapping: 20,
            flapping: Settings::default(),
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
}

/// Distinct unknown raw reasons logged; beyond this they are only counted.
const MAX_LOGGED_UNKNOWN: usize = 1000;

pub struct Pipeline {
    metrics: Metrics,
    detector: Detector,
    settings: PipelineSettings,
    unknown_reasons: HashSet<Box<str>>,
    errors_logged: [bool; 5],
    evicted_reported: u64,
}

impl Pipeline {
    pub fn new(metrics: Metrics, settings: PipelineSettings) -> Self {
        Pipeline {
            metrics,
            detector: Detector::new(settings.flapping.clone()),
            settings,
            unknown_reasons: HashSet::new(),
            errors_logged: [false; 5],
            evicted_reported: 0,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Handles one message that arrived at `arrival_ms` (ms since the epoch).
    pub fn handle(&mut self, topic: &[u8], payload: &[u8], arrival_ms: i64) -> Outcome {
        if payload.len() > self.settings.max_payload_bytes {
            return self.reject(EventError::TooLarge, topic, payload.len());
        }
        let event = match event::parse(topic, payload) {
            Ok(event) => event,
            Err(error) => return self.reject(error, topic, payload.len()),
        };
        let m = &self.metrics;
        m.received(event.kind).inc();
        m.last_event.set(arrival_ms as f64 / 1000.0);
        if let Some(t) = event.time_ms {
            m.event_delay
                .observe(arrival_ms.saturating_sub(t).max(0) as f64 / 1000.0);
        }
        let time = event.time_ms.unwrap_or(arrival_ms);

        let reason = match event.kind {
            EventKind::Connected => {
                m.connects.inc();
                None
            }
            EventKind::Subscribed => {
                m.subscriptions.inc();
                None
            }
            EventKind::Disconnected => event.reason.as_ref().map(|r| self.classify(r)),
            EventKind::Connack if event.is_refused_connack() => {
                event.reason.as_ref().map(|r| self.classify(r))
            }
            EventKind::Connack | EventKind::Unsubscribed | EventKind::Other => None,
        };
        if let Some(reason) = reason {
            self.metrics.disconnect(reason).inc();
            let entered = self.detector.observe_disconnect(
                &event.clientid,
                reason == Reason::Takeovered,
                event.peer.as_deref(),
                time,
            );
            for (kind, hit) in [
                (FlapKind::Takeover, entered.takeover),
                (FlapKind::Reconnect, entered.reconnect),
            ] {
                if hit {
                    self.metrics.flapping_detections[kind as usize].inc();
                    self.metrics.flapping_clients[kind as usize]
                        .set(self.detector.flapping(kind) as i64);
                    tracing::warn!(
                        clientid = %event.clientid,
                        kind = kind.as_str(),
                        peer = event.peer.as_deref().unwrap_or(""),
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

    /// Moves flapping windows to `now_ms` and refreshes the gauges that
    /// depend on them. Returns the clients flapping now, most events first.
    pub fn tick(&mut self, now_ms: i64) -> Vec<FlappingClient> {
        self.detector.advance(now_ms);
        for kind in FlapKind::ALL {
            self.metrics.flapping_clients[kind as usize].set(self.detector.flapping(kind) as i64);
        }
        self.metrics
            .tracked_clients
            .set(self.detector.tracked() as i64);
        let evicted = self.detector.evicted();
        self.metrics
            .tracked_evicted
            .inc_by(evicted - self.evicted_reported);
        self.evicted_reported = evicted;
        let clients = self.detector.flapping_clients();
        self.metrics
            .set_top_flapping(&clients, self.settings.top_flapping);
        clients
    }

    fn classify(&mut self, raw: &RawReason<'_>) -> Reason {
        let reason = match raw {
            RawReason::Name(name) => reasons::classify(name),
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
            }
        }
        reason
    }

    fn reject(&mut self, error: EventError, topic: &[u8], len: usize) -> Outcome {
        self.metrics.error(error).inc();
        // fields are only built when the level is enabled: a garbage storm
        // costs no allocation per event at the default level
        let topic = &topic[..topic.len().min(256)];
        if !std::mem::replace(&mut self.errors_logged[error as usize], true) {
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
        assert_eq!(m.disconnect(Reason::KeepaliveTimeout).get(), 1);
        assert_eq!(m.disconnect(Reason::Takeovered).get(), 2);
        assert_eq!(m.disconnect(Reason::TcpClosed).get(), 1);
        assert_eq!(m.disconnect(Reason::Other).get(), 1);
        assert_eq!(m.disconnect(Reason::Normal).get(), 0);
        assert_eq!(m.received(EventKind::Disconnected).get(), 5);
        assert_eq!(m.event_delay.get_sample_count(), 5);
        assert!((m.event_delay.get_sample_sum() - 7.5).abs() < 1e-9);
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
        assert_eq!(p.metrics().disconnect(Reason::Other).get(), 5);
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
        assert_eq!(m.error(EventError::TooLarge).get(), 1);
        assert_eq!(m.error(EventError::InvalidJson).get(), 1);
        assert_eq!(m.error(EventError::MissingField).get(), 0);
        assert!(Reason::all().all(|r| m.disconnect(r).get() == 0));
        assert_eq!(m.received(EventKind::Disconnected).get(), 0);
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
        assert_eq!(m.disconnect(Reason::ClientIdInvalid).get(), 1);
        assert_eq!(m.received(EventKind::Other).get(), 2);
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
        assert_eq!(p.metrics().flapping_detections[0].get(), 1);
        assert_eq!(p.metrics().flapping_clients[0].get(), 1);
        let list = p.tick(t + 3000);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].peers, vec!["10.0.0.1:1", "10.0.0.2:2"]);
        let g = p
            .metrics()
            .client_flapping
            .get_metric_with_label_values(&["shared-id", "takeover"])
            .unwrap();
        assert_eq!(g.get(), 3);
        // five minutes after the first takeover the state clears
        let list = p.tick(t + 300_000);
        assert!(list.is_empty());
        assert_eq!(p.metrics().flapping_clients[0].get(), 0);
        assert_eq!(p.metrics().flapping_detections[0].get(), 1);
    }
}
