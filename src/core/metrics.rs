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

use crate::core::event::{EventError, EventKind};
use crate::core::flapping::{FlapKind, FlappingClient};
use crate::core::label::label_value;
use crate::core::reasons::{Reason, TABLE};
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

/// [`counters`] for gauges.
pub fn gauges<'a>(
    r: &Registry,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = &'a str>,
) -> prometheus::Result<Vec<IntGauge>> {
    let family = registered(r, IntGaugeVec::new(Opts::new(name, help), &[label])?)?;
    Ok(values.map(|v| family.with_label_values(&[v])).collect())
}

/// A fixed number of series, as an array.
fn array<T, const N: usize>(series: Vec<T>) -> prometheus::Result<[T; N]> {
    series
        .try_into()
        .map_err(|_| prometheus::Error::Msg(format!("expected {N} series")))
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

/// Handles to every metric.
pub struct Metrics {
    pub connects: IntCounter,
    /// Indexed by [`Reason::index`].
    pub disconnects: Vec<IntCounter>,
    pub subscriptions: IntCounter,
    /// Indexed by [`FlapKind`].
    pub flapping_clients: [IntGauge; 2],
    pub flapping_detections: [IntCounter; 2],
    pub client_flapping: IntGaugeVec,
    /// `mqtt_client_top_disconnects{reason,clientid}`.
    pub client_top_disconnects: IntGaugeVec,
    /// `mqtt_network_top_disconnects{reason,network}`.
    pub network_top_disconnects: IntGaugeVec,
    /// `mqtt_client_disconnecting_clients{reason}`, indexed by [`Reason::index`].
    pub disconnecting_clients: Vec<IntGauge>,
    /// `mqtt_exporter_top_saturated{reason}`, indexed by [`Reason::index`].
    top_saturated: Vec<IntGauge>,
    /// `mqtt_exporter_top_overflowed_total`.
    pub top_overflowed: IntCounter,
    pub event_delay: Histogram,
    /// `mqtt_client_connection_duration_seconds{reason}`, indexed by
    /// [`Reason::index`].
    connection_duration: Vec<Histogram>,
    /// `mqtt_exporter_connections_untracked_total`.
    pub connections_untracked: IntCounter,
    /// `mqtt_node_disconnects_total{node,reason}`: a node's series are made
    /// when it is first seen ([`Metrics::node_counters`]).
    node_disconnects: IntCounterVec,
    /// Indexed like [`EventKind::COUNTED`].
    received: Vec<IntCounter>,
    /// Indexed like [`EventError::ALL`].
    errors: Vec<IntCounter>,
    pub last_event: Gauge,
    pub tracked_clients: IntGauge,
    pub tracked_evicted: IntCounter,
    pub tracked_expired: IntCounter,
    /// `mqtt_exporter_events_ignored_total{source="mosquitto_log"}`.
    pub ignored_mosquitto_log: IntCounter,
    pub event_time_clamped: IntCounter,
}

impl Metrics {
    /// Creates and registers every metric on `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Metrics> {
        let r = registry;
        reason_info(r)?;
        build_info(r)?;
        let kinds = || FlapKind::ALL.iter().map(|k| k.as_str());
        let reasons = || Reason::all().map(|r| r.as_str());
        Ok(Metrics {
            connects: counter(r, "mqtt_client_connects_total", "Client connect events.")?,
            disconnects: counters(
                r,
                "mqtt_client_disconnects_total",
                "Client disconnect events (and refused CONNACKs) by canonical reason.",
                "reason",
                reasons(),
            )?,
            subscriptions: counter(
                r,
                "mqtt_session_subscriptions_total",
                "Session subscribed events.",
            )?,
            flapping_clients: array(gauges(
                r,
                "mqtt_flapping_clients",
                "Client IDs flapping now, by kind (takeover: client ID conflict; reconnect: connect/disconnect loop).",
                "kind",
                kinds(),
            )?)?,
            flapping_detections: array(counters(
                r,
                "mqtt_flapping_detections_total",
                "Times a client ID entered the flapping state, by kind.",
                "kind",
                kinds(),
            )?)?,
            client_flapping: registered(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "mqtt_client_flapping",
                        "Events in the flapping window, for the top flapping client IDs only.",
                    ),
                    &["clientid", "kind"],
                )?,
            )?,
            client_top_disconnects: registered(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "mqtt_client_top_disconnects",
                        "Disconnects in the --top.window of the client IDs that stand out per reason (3 or more; the top --top.clients), never more than the true count.",
                    ),
                    &["reason", "clientid"],
                )?,
            )?,
            network_top_disconnects: registered(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "mqtt_network_top_disconnects",
                        "Disconnects in the --top.window from the source networks (IPv4 /24, IPv6 /48) that stand out per reason (3 or more; the top --top.networks), never more than the true count.",
                    ),
                    &["reason", "network"],
                )?,
            )?,
            disconnecting_clients: gauges(
                r,
                "mqtt_client_disconnecting_clients",
                "Distinct client IDs with a disconnect of this reason in the --top.window.",
                "reason",
                reasons(),
            )?,
            top_saturated: gauges(
                r,
                "mqtt_exporter_top_saturated",
                "1 while the --top.window holds too many devices to tell whether one stands out in this reason (a flood past the doorkeeper, or more devices with 3 or more than counters): an empty top list then does not mean that none does.",
                "reason",
                reasons(),
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
                reasons().map(|r| family.with_label_values(&[r])).collect()
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
            received: counters(
                r,
                "mqtt_exporter_events_received_total",
                "Events accepted, by kind.",
                "kind",
                EventKind::COUNTED.iter().map(|k| k.label()),
            )?,
            errors: counters(
                r,
                "mqtt_exporter_event_errors_total",
                "Events rejected, by error.",
                "error",
                EventError::ALL.iter().map(|e| e.label()),
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

    pub fn disconnect(&self, reason: Reason) -> &IntCounter {
        &self.disconnects[reason.index()]
    }

    pub fn received(&self, kind: EventKind) -> &IntCounter {
        &self.received[kind.label_index()]
    }

    pub fn error(&self, error: EventError) -> &IntCounter {
        &self.errors[error as usize]
    }

    /// Makes the `mqtt_client_flapping` series those of `clients`, in
    /// place: a scrape in between never sees the family empty.
    pub fn set_top_flapping(&self, previous: &[Series], clients: &[FlappingClient]) -> Vec<Series> {
        let now = clients
            .iter()
            .map(|c| {
                (
                    [label_value(&c.clientid), c.kind.to_string()],
                    c.count as i64,
                )
            })
            .collect();
        replace_series(&self.client_flapping, previous, now)
    }

    /// Makes the `mqtt_client_top_disconnects` series those of the first
    /// `listed` clients of each reason in `top`, in place (so
    /// a scrape in between never sees the family empty).
    pub fn set_top_disconnects(
        &self,
        previous: &[Series],
        top: &[TopReason],
        listed: usize,
    ) -> Vec<Series> {
        // the client ID is already its label value (core::top keeps it so)
        let now = listed_series(top, listed, |entry| {
            entry
                .clients
                .iter()
                .map(|c| (c.clientid.as_str(), c.count))
                .collect()
        });
        for gauge in self.disconnecting_clients.iter().chain(&self.top_saturated) {
            gauge.set(0);
        }
        for entry in top {
            if let Some(reason) = Reason::all().find(|r| r.as_str() == entry.reason) {
                self.disconnecting_clients[reason.index()]
                    .set(i64::try_from(entry.devices).unwrap_or(i64::MAX));
                self.top_saturated[reason.index()].set(i64::from(entry.saturated));
            }
        }
        replace_series(&self.client_top_disconnects, previous, now)
    }
}

impl Metrics {
    /// The `mqtt_node_disconnects_total` series of `node`, one per reason
    /// (indexed by [`Reason::index`]), all at 0.
    pub fn node_counters(&self, node: &str) -> Vec<IntCounter> {
        let node = label_value(node);
        Reason::all()
            .map(|r| {
                self.node_disconnects
                    .with_label_values(&[&node, r.as_str()])
            })
            .collect()
    }

    /// `mqtt_client_connection_duration_seconds{reason}` for `reason`.
    pub fn lived(&self, reason: Reason) -> &Histogram {
        &self.connection_duration[reason.index()]
    }

    /// Makes the `mqtt_network_top_disconnects` series those of the first
    /// `listed` networks of each reason in `top`, in place.
    pub fn set_top_networks(
        &self,
        previous: &[Series],
        top: &[TopReason],
        listed: usize,
    ) -> Vec<Series> {
        let now = listed_series(top, listed, |entry| {
            entry
                .networks
                .iter()
                .map(|n| (n.network.as_str(), n.count))
                .collect()
        });
        replace_series(&self.network_top_disconnects, previous, now)
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
pub type Series = [String; 2];

/// Sets every series of `now` on `family`, then removes the `previous` ones
/// no longer among them, so a scrape in between never sees the family
/// empty. Returns the series now set.
fn replace_series(
    family: &IntGaugeVec,
    previous: &[Series],
    now: Vec<(Series, i64)>,
) -> Vec<Series> {
    for ([a, b], value) in &now {
        family
            .with_label_values(&[a.as_str(), b.as_str()])
            .set(*value);
    }
    let now: Vec<Series> = now.into_iter().map(|(labels, _)| labels).collect();
    for labels in previous {
        if !now.contains(labels) {
            let _ = family.remove_label_values(&[labels[0].as_str(), labels[1].as_str()]);
        }
    }
    now
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
