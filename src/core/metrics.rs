//! The domain metrics (what the pipeline counts), and the helpers every
//! part uses to declare a metric once: the edges keep their own metrics
//! (`edge/mqtt/metrics.rs`, `edge/http/metrics.rs`).
//!
//! [`Metrics`] registers the domain metrics and the exporter's self-metrics on
//! a [`Registry`] passed in (never the global one) and keeps pre-resolved
//! handles, so the hot path is an atomic add with no label lookup. Label values
//! come only from closed sets: the reason table, the event kinds, the error
//! kinds and the flapping kinds, all created at start so every series exists
//! from the first scrape.

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

use std::collections::HashMap;

use crate::core::event::{EventError, EventKind};
use crate::core::flapping::{ByKind, FlapKind, FlappingClient};
use crate::core::label::label_value;
use crate::core::label_set::{By, Label};
use crate::core::reasons::{ByReason, Reason, TABLE};
use crate::core::top::TopReason;

/// Registers `metric` on `registry` and returns it: a metric is declared
/// and registered in one expression, so none is created and forgotten.
pub fn registered<M>(registry: &Registry, metric: M) -> prometheus::Result<M>
where
    M: prometheus::core::Collector + Clone + 'static,
{
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// A counter, registered.
pub fn counter(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    registered(r, IntCounter::new(name, help)?)
}

/// A gauge, registered.
pub fn gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    registered(r, IntGauge::new(name, help)?)
}

/// A counter family with one `label`, registered, and a series for each of
/// `values` (a closed set), in order: every series exists from the first
/// scrape, and the hot path indexes a handle instead of looking a label up.
pub fn counters<'a>(
    r: &Registry,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = &'a str>,
) -> prometheus::Result<Vec<IntCounter>> {
    let family = registered(r, IntCounterVec::new(Opts::new(name, help), &[label])?)?;
    Ok(values.map(|v| family.with_label_values(&[v])).collect())
}

/// `mqtt_disconnect_reason_info`: the reference table, one series a row.
fn reason_info(r: &Registry) -> prometheus::Result<()> {
    let info = registered(
        r,
        GaugeVec::new(
            Opts::new(
                "mqtt_disconnect_reason_info",
                "The reference table of disconnect reasons: meaning and recommended action (value is always 1).",
            ),
            &["reason", "category", "severity", "meaning", "action"],
        )?,
    )?;
    for row in &TABLE {
        info.with_label_values(&[
            row.id,
            row.category,
            row.severity.as_str(),
            row.meaning,
            row.action,
        ])
        .set(1.0);
    }
    Ok(())
}

/// `mqtt_exporter_build_info`: version, commit and compiler.
fn build_info(r: &Registry) -> prometheus::Result<()> {
    let build = registered(
        r,
        IntGaugeVec::new(
            Opts::new(
                "mqtt_exporter_build_info",
                "Build information (value is always 1).",
            ),
            &["version", "revision", "rustversion"],
        )?,
    )?;
    build
        .with_label_values(&[
            env!("CARGO_PKG_VERSION"),
            env!("MDE_REVISION"),
            env!("MDE_RUST_VERSION"),
        ])
        .set(1);
    Ok(())
}

/// Handles to every metric, resolved at start, and the series the lists
/// set last. Private: the pipeline says what happened (`connected`,
/// `disconnected`, `flapping_entered`, ...), and this keeps the counts.
pub struct Metrics {
    connects: IntCounter,
    disconnects: ByReason<IntCounter>,
    subscriptions: IntCounter,
    flapping_clients: ByKind<IntGauge>,
    flapping_detections: ByKind<IntCounter>,
    /// `mqtt_client_flapping{clientid,kind}`, and the series set last.
    client_flapping: IntGaugeVec,
    flapping_series: Vec<Series>,
    /// `mqtt_client_top_disconnects{reason,clientid}`, and the series set last.
    client_top_disconnects: IntGaugeVec,
    top_device_series: Vec<Series>,
    /// `mqtt_network_top_disconnects{reason,network}`, and the series set last.
    network_top_disconnects: IntGaugeVec,
    top_network_series: Vec<Series>,
    /// `mqtt_client_disconnecting_clients{reason}`.
    disconnecting_clients: ByReason<IntGauge>,
    /// `mqtt_exporter_top_saturated{reason}`.
    top_saturated: ByReason<IntGauge>,
    top_overflowed: IntCounter,
    event_delay: Histogram,
    /// `mqtt_client_connection_duration_seconds{reason}`.
    connection_duration: ByReason<Histogram>,
    connections_untracked: IntCounter,
    /// `mqtt_node_disconnects_total{node,reason}`: a node's series are made
    /// when it is first seen, at most `max_nodes` of them, then `other`'s.
    node_disconnects: IntCounterVec,
    nodes: HashMap<Box<str>, ByReason<IntCounter>>,
    other_node: Option<ByReason<IntCounter>>,
    received: By<EventKind, IntCounter>,
    errors: By<EventError, IntCounter>,
    last_event: Gauge,
    tracked_clients: IntGauge,
    tracked_evicted: IntCounter,
    tracked_expired: IntCounter,
    /// `mqtt_exporter_events_ignored_total{source="mosquitto_log"}`.
    ignored_mosquitto_log: IntCounter,
    event_time_clamped: IntCounter,
}

/// A counter family with one label, registered, with a series for each
/// value of the label set `L`.
fn counters_by<L: Label>(
    r: &Registry,
    name: &str,
    help: &str,
    label: &str,
) -> prometheus::Result<By<L, IntCounter>> {
    let family = registered(r, IntCounterVec::new(Opts::new(name, help), &[label])?)?;
    Ok(By::from_fn(|v: L| {
        family.with_label_values(&[v.as_label()])
    }))
}

/// [`counters_by`] for gauges.
fn gauges_by<L: Label>(
    r: &Registry,
    name: &str,
    help: &str,
    label: &str,
) -> prometheus::Result<By<L, IntGauge>> {
    let family = registered(r, IntGaugeVec::new(Opts::new(name, help), &[label])?)?;
    Ok(By::from_fn(|v: L| {
        family.with_label_values(&[v.as_label()])
    }))
}

/// A two-label gauge family whose series are made as a list names them.
fn listed_family(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    registered(r, IntGaugeVec::new(Opts::new(name, help), labels)?)
}

impl Metrics {
    /// Creates and registers every metric on `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Metrics> {
        let r = registry;
        reason_info(r)?;
        build_info(r)?;
        Ok(Metrics {
            connects: counter(r, "mqtt_client_connects_total", "Client connect events.")?,
            disconnects: counters_by(
                r,
                "mqtt_client_disconnects_total",
                "Client disconnect events (and refused CONNACKs) by canonical reason.",
                "reason",
            )?,
            subscriptions: counter(
                r,
                "mqtt_session_subscriptions_total",
                "Session subscribed events.",
            )?,
            flapping_clients: gauges_by(
                r,
                "mqtt_flapping_clients",
                "Client IDs flapping now, by kind (takeover: client ID conflict; reconnect: connect/disconnect loop).",
                "kind",
            )?,
            flapping_detections: counters_by(
                r,
                "mqtt_flapping_detections_total",
                "Times a client ID entered the flapping state, by kind.",
                "kind",
            )?,
            client_flapping: listed_family(
                r,
                "mqtt_client_flapping",
                "Events in the flapping window, for the top flapping client IDs only.",
                &["clientid", "kind"],
            )?,
            flapping_series: Vec::new(),
            client_top_disconnects: listed_family(
                r,
                "mqtt_client_top_disconnects",
                "Disconnects in the --top.window of the client IDs that stand out per reason (3 or more; the top --top.clients), never more than the true count.",
                &["reason", "clientid"],
            )?,
            top_device_series: Vec::new(),
            network_top_disconnects: listed_family(
                r,
                "mqtt_network_top_disconnects",
                "Disconnects in the --top.window from the source networks (IPv4 /24, IPv6 /48) that stand out per reason (3 or more; the top --top.networks), never more than the true count.",
                &["reason", "network"],
            )?,
            top_network_series: Vec::new(),
            disconnecting_clients: gauges_by(
                r,
                "mqtt_client_disconnecting_clients",
                "Distinct client IDs with a disconnect of this reason in the --top.window.",
                "reason",
            )?,
            top_saturated: gauges_by(
                r,
                "mqtt_exporter_top_saturated",
                "1 while the --top.window holds too many devices to tell whether one stands out in this reason (a flood past the doorkeeper, or more devices with 3 or more than counters): an empty top list then does not mean that none does.",
                "reason",
            )?,
            top_overflowed: counter(
                r,
                "mqtt_exporter_top_overflowed_total",
                "Disconnects the top-devices doorkeeper of a fifth of the window was too full to hold, counted by its overflow sketch instead.",
            )?,
            connection_duration: {
                let family = registered(
                    r,
                    HistogramVec::new(
                        HistogramOpts::new(
                            "mqtt_client_connection_duration_seconds",
                            "How long each connection lived before it ended, by the reason it ended: disconnected_at - connected_at from the event, else joined with the client's connect event.",
                        )
                        .buckets(crate::core::lifetime::BUCKETS.to_vec()),
                        &["reason"],
                    )?,
                )?;
                By::from_fn(|r: Reason| family.with_label_values(&[r.as_str()]))
            },
            node_disconnects: registered(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "mqtt_node_disconnects_total",
                        "Disconnects whose event names a broker node, by node and canonical reason (at most --node.max-nodes nodes; later ones as node=\"other\").",
                    ),
                    &["node", "reason"],
                )?,
            )?,
            nodes: HashMap::new(),
            other_node: None,
            connections_untracked: counter(
                r,
                "mqtt_exporter_connections_untracked_total",
                "Connect events whose start was not remembered because --clients.max-connected connections already were; those connections' lifetimes are not observed.",
            )?,
            event_delay: registered(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "mqtt_event_delay_seconds",
                        "Arrival time minus the event's own time.",
                    )
                    .buckets(vec![
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                        300.0,
                    ]),
                )?,
            )?,
            received: counters_by(
                r,
                "mqtt_exporter_events_received_total",
                "Events accepted, by kind.",
                "kind",
            )?,
            errors: counters_by(
                r,
                "mqtt_exporter_event_errors_total",
                "Events rejected, by error.",
                "error",
            )?,
            last_event: registered(
                r,
                Gauge::new(
                    "mqtt_exporter_last_event_timestamp_seconds",
                    "Arrival time of the last accepted event.",
                )?,
            )?,
            tracked_clients: gauge(
                r,
                "mqtt_exporter_tracked_clients",
                "Client IDs held in flapping state.",
            )?,
            tracked_evicted: counter(
                r,
                "mqtt_exporter_tracked_clients_evicted_total",
                "Client states dropped at the --clients.max-tracked cap.",
            )?,
            tracked_expired: counter(
                r,
                "mqtt_exporter_tracked_clients_expired_total",
                "Client states dropped because all their events left the flapping windows.",
            )?,
            ignored_mosquitto_log: counters(
                r,
                "mqtt_exporter_events_ignored_total",
                "Well-formed messages that are not connection events (e.g. other Mosquitto log lines), by source; never errors.",
                "source",
                ["mosquitto_log"].into_iter(),
            )?
            .remove(0),
            event_time_clamped: counter(
                r,
                "mqtt_exporter_event_time_clamped_total",
                "Events whose time was further than --event.max-clock-skew from their arrival, clamped to it.",
            )?,
        })
    }
}

/// What the pipeline tells the metrics.
impl Metrics {
    /// An event of `kind` arrived at `arrival_ms`, `delay_s` after its own
    /// time when it has one.
    pub fn arrived(&self, kind: EventKind, arrival_ms: i64, delay_s: Option<f64>) {
        self.received[kind].inc();
        self.last_event.set(arrival_ms as f64 / 1000.0);
        if let Some(delay) = delay_s {
            self.event_delay.observe(delay);
        }
    }

    pub fn connected(&self) {
        self.connects.inc();
    }

    pub fn subscribed(&self) {
        self.subscriptions.inc();
    }

    /// A disconnect (or refused CONNACK) of `reason`, on `node` when the
    /// event names one: the node's own series while fewer than `max_nodes`
    /// have been seen, else `node="other"`'s. Returns the node it was
    /// counted on (`node` itself, or `other`).
    pub fn disconnected<'a>(
        &mut self,
        reason: Reason,
        node: Option<&'a str>,
        max_nodes: usize,
    ) -> Option<&'a str> {
        self.disconnects[reason].inc();
        let node = node?;
        if !self.nodes.contains_key(node) && self.nodes.len() < max_nodes {
            let counters = self.node_counters(node);
            self.nodes.insert(node.into(), counters);
        }
        if let Some(counters) = self.nodes.get(node) {
            counters[reason].inc();
            return Some(node);
        }
        if self.other_node.is_none() {
            tracing::warn!(
                node = %node.escape_debug(),
                max_nodes,
                "more broker nodes than --node.max-nodes: this and later ones count as node=\"other\""
            );
            self.other_node = Some(self.node_counters("other"));
        }
        if let Some(other) = &self.other_node {
            other[reason].inc();
        }
        Some("other")
    }

    /// The `mqtt_node_disconnects_total` series of `node`, one per reason,
    /// all at 0.
    fn node_counters(&self, node: &str) -> ByReason<IntCounter> {
        let node = label_value(node);
        By::from_fn(|r: Reason| {
            self.node_disconnects
                .with_label_values(&[&node, r.as_str()])
        })
    }

    /// A connection that ended for `reason` lived `seconds`.
    pub fn lived(&self, reason: Reason, seconds: f64) {
        self.connection_duration[reason].observe(seconds);
    }

    /// A client entered the flapping state of `kind`; `now` are flapping.
    pub fn flapping_entered(&self, kind: FlapKind, now: usize) {
        self.flapping_detections[kind].inc();
        self.flapping_now(kind, now);
    }

    /// `now` clients are flapping by `kind`.
    pub fn flapping_now(&self, kind: FlapKind, now: usize) {
        self.flapping_clients[kind].set(i64::try_from(now).unwrap_or(i64::MAX));
    }

    /// The flapping table holds `clients`; `evicted` and `expired` more
    /// states were dropped since the last call.
    pub fn tracked(&self, clients: usize, evicted: u64, expired: u64) {
        self.tracked_clients
            .set(i64::try_from(clients).unwrap_or(i64::MAX));
        self.tracked_evicted.inc_by(evicted);
        self.tracked_expired.inc_by(expired);
    }

    /// `untracked` more connects found the lifetime table full, and
    /// `overflowed` more disconnects went to the top list's sketch.
    pub fn overflowed(&self, untracked: u64, overflowed: u64) {
        self.connections_untracked.inc_by(untracked);
        self.top_overflowed.inc_by(overflowed);
    }

    /// A Mosquitto log line that is not a connection event.
    pub fn ignored_log_line(&self) {
        self.ignored_mosquitto_log.inc();
    }

    /// An event's time was clamped to the allowed skew.
    pub fn clamped(&self) {
        self.event_time_clamped.inc();
    }

    /// A delivery was rejected as `error`.
    pub fn rejected(&self, error: EventError) {
        self.errors[error].inc();
    }

    /// Makes the `mqtt_client_flapping` series those of `clients`, in
    /// place: a scrape in between never sees the family empty.
    pub fn set_top_flapping(&mut self, clients: &[FlappingClient]) {
        let now = clients
            .iter()
            .map(|c| {
                (
                    [label_value(&c.clientid), c.kind.to_string()],
                    i64::try_from(c.count).unwrap_or(i64::MAX),
                )
            })
            .collect();
        replace_series(&self.client_flapping, &mut self.flapping_series, now);
    }

    /// Makes the `mqtt_client_top_disconnects` and
    /// `mqtt_network_top_disconnects` series those of the first `devices`
    /// clients and `networks` networks of each reason in `top`, in place
    /// (so a scrape in between never sees a family empty), and sets the
    /// per-reason device counts and saturation.
    pub fn set_top(&mut self, top: &[TopReason], devices: usize, networks: usize) {
        // the client ID is already its label value (core::top keeps it so)
        let now = listed_series(top, devices, |entry| {
            entry
                .clients
                .iter()
                .map(|c| (c.clientid.as_str(), c.count))
                .collect()
        });
        replace_series(
            &self.client_top_disconnects,
            &mut self.top_device_series,
            now,
        );
        let now = listed_series(top, networks, |entry| {
            entry
                .networks
                .iter()
                .map(|n| (n.network.as_str(), n.count))
                .collect()
        });
        replace_series(
            &self.network_top_disconnects,
            &mut self.top_network_series,
            now,
        );
        for gauge in self
            .disconnecting_clients
            .values()
            .chain(self.top_saturated.values())
        {
            gauge.set(0);
        }
        for entry in top {
            self.disconnecting_clients[entry.reason]
                .set(i64::try_from(entry.devices).unwrap_or(i64::MAX));
            self.top_saturated[entry.reason].set(i64::from(entry.saturated));
        }
    }
}

/// What the metrics hold, read back (for tests and tools that run the
/// pipeline in process).
impl Metrics {
    pub fn connects(&self) -> u64 {
        self.connects.get()
    }

    pub fn subscriptions(&self) -> u64 {
        self.subscriptions.get()
    }

    /// Mosquitto log lines that were not connection events.
    pub fn ignored_log_lines(&self) -> u64 {
        self.ignored_mosquitto_log.get()
    }

    pub fn disconnects(&self, reason: Reason) -> u64 {
        self.disconnects[reason].get()
    }

    pub fn received(&self, kind: EventKind) -> u64 {
        self.received[kind].get()
    }

    pub fn errors(&self, error: EventError) -> u64 {
        self.errors[error].get()
    }

    /// Clients flapping now by `kind`, and times one entered that state.
    pub fn flapping(&self, kind: FlapKind) -> (i64, u64) {
        (
            self.flapping_clients[kind].get(),
            self.flapping_detections[kind].get(),
        )
    }

    /// Distinct clients with a disconnect of `reason` in the top window.
    pub fn disconnecting_clients(&self, reason: Reason) -> i64 {
        self.disconnecting_clients[reason].get()
    }

    /// Event times clamped, and client states expired, so far.
    pub fn clamped_and_expired(&self) -> (u64, u64) {
        (self.event_time_clamped.get(), self.tracked_expired.get())
    }

    /// The event delay histogram: its count and sum.
    pub fn delays(&self) -> (u64, f64) {
        (
            self.event_delay.get_sample_count(),
            self.event_delay.get_sample_sum(),
        )
    }

    /// Disconnects counted per broker node and reason, each nonzero one
    /// (the nodes past `--node.max-nodes` as `other`), by node.
    pub fn nodes(&self) -> Vec<(String, Reason, u64)> {
        let mut out: Vec<(String, Reason, u64)> = self
            .nodes
            .iter()
            .map(|(node, counters)| (node.to_string(), counters))
            .chain(self.other_node.iter().map(|c| ("other".to_string(), c)))
            .flat_map(|(node, counters)| {
                counters
                    .iter()
                    .filter(|(_, c)| c.get() > 0)
                    .map(move |(reason, c)| (node.clone(), reason, c.get()))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    }

    /// The lifetime histogram of `reason`.
    pub fn lifetimes(&self, reason: Reason) -> &Histogram {
        &self.connection_duration[reason]
    }

    /// The series of a listed family: `mqtt_client_flapping`,
    /// `mqtt_client_top_disconnects` or `mqtt_network_top_disconnects`,
    /// each as its labels (`name=value`, by name, space-separated) and
    /// value, sorted.
    pub fn listed(&self, family: &str) -> Vec<(String, i64)> {
        let vec = match family {
            "mqtt_client_flapping" => &self.client_flapping,
            "mqtt_client_top_disconnects" => &self.client_top_disconnects,
            "mqtt_network_top_disconnects" => &self.network_top_disconnects,
            _ => return Vec::new(),
        };
        let mut series: Vec<(String, i64)> = prometheus::core::Collector::collect(vec)
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|m| {
                let mut labels: Vec<String> = m
                    .get_label()
                    .iter()
                    .map(|l| format!("{}={}", l.name(), l.value()))
                    .collect();
                labels.sort();
                (labels.join(" "), m.get_gauge().get_value() as i64)
            })
            .collect();
        series.sort();
        series
    }
}

/// The `[reason, key]` series and values of the first `listed` entries
/// `pick` gives for each reason of `top`: one list of a top report as a
/// two-label family's series.
fn listed_series<'a>(
    top: &'a [TopReason],
    listed: usize,
    pick: impl Fn(&'a TopReason) -> Vec<(&'a str, u64)>,
) -> Vec<(Series, i64)> {
    top.iter()
        .flat_map(|entry| {
            pick(entry).into_iter().take(listed).map(|(key, count)| {
                (
                    [entry.reason.to_string(), key.to_string()],
                    i64::try_from(count).unwrap_or(i64::MAX),
                )
            })
        })
        .collect()
}

/// The label values of one series of a two-label family, in its order.
type Series = [String; 2];

/// Sets every series of `now` on `family`, then removes the `previous` ones
/// no longer among them, so a scrape in between never sees the family
/// empty; `previous` becomes the series now set.
fn replace_series(family: &IntGaugeVec, previous: &mut Vec<Series>, now: Vec<(Series, i64)>) {
    for ([a, b], value) in &now {
        family
            .with_label_values(&[a.as_str(), b.as_str()])
            .set(*value);
    }
    let now: Vec<Series> = now.into_iter().map(|(labels, _)| labels).collect();
    for labels in previous.iter() {
        if !now.contains(labels) {
            let _ = family.remove_label_values(&[labels[0].as_str(), labels[1].as_str()]);
        }
    }
    *previous = now;
}

/// Registers the process collector (CPU, memory, file descriptors) on Linux.
pub fn register_process_collector(registry: &Registry) -> prometheus::Result<()> {
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    #[cfg(not(target_os = "linux"))]
    let _ = registry;
    Ok(())
}

#[cfg(test)]
mod label_set_tests {
    use super::*;
    use crate::core::label_set::By;
    use std::fmt;

    /// `ALL[v.index()]` is `v` (or has its label), for every label set.
    fn indexes_agree<L: Label + PartialEq + fmt::Debug>() {
        for (i, v) in L::ALL.iter().enumerate() {
            assert_eq!(v.index(), i, "{v:?}");
        }
        let by: By<L, usize> = By::from_fn(L::index);
        for v in L::ALL {
            assert_eq!(by[*v], v.index());
        }
    }

    #[test]
    fn every_label_set_indexes_its_own_values() {
        indexes_agree::<Reason>();
        indexes_agree::<FlapKind>();
        indexes_agree::<EventError>();
        indexes_agree::<EventKind>();
        assert_eq!(Reason::ALL.len(), 17);
        assert_eq!(EventKind::Connack.index(), EventKind::Other.index());
        let mut by: ByKind<u32> = By::default();
        by[FlapKind::Reconnect] += 2;
        assert_eq!(format!("{by:?}"), r#"{"takeover": 0, "reconnect": 2}"#);
    }
}
