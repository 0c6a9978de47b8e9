//! The HTTP edge's own metrics: connections it closed and why, password
//! checks it turned away, and re-reads of the web config. Each is declared
//! once, as a field, registered with its declaration.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::core::metrics::{counter, counters, registered};

/// The HTTP edge's self-metrics.
pub struct WebMetrics {
    /// Connections closed at once: the peer held its most connections.
    pub rejected_per_peer: IntCounter,
    /// Connections closed at once: the server held its most connections.
    pub rejected_total: IntCounter,
    /// Connections closed because no request started in time.
    pub idle_closed: IntCounter,
    /// Connections whose TLS handshake failed (plain HTTP to the HTTPS
    /// port, an untrusted or missing client certificate, ...).
    pub tls_failed: IntCounter,
    /// The oldest connection without a complete request, closed to make
    /// room for a new one at the connection limit.
    pub evicted: IntCounter,
    /// Requests answered 429 at once: every password check was busy.
    pub auth_throttled: IntCounter,
    /// `mqtt_exporter_web_config_reloads_total{result}`.
    pub reloads: IntCounterVec,
}

/// The causes of `mqtt_exporter_http_connections_closed_total`, in the
/// order of [`WebMetrics`]' fields.
const CLOSE_CAUSES: [&str; 5] = [
    "peer_limit",
    "connection_limit",
    "no_request",
    "tls_handshake",
    "evicted",
];

impl WebMetrics {
    /// Creates the HTTP self-metrics and registers them on `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<WebMetrics> {
        let r = registry;
        let [rejected_per_peer, rejected_total, idle_closed, tls_failed, evicted]: [IntCounter; 5] =
            counters(
                r,
                "mqtt_exporter_http_connections_closed_total",
                "HTTP connections closed by the server before a request was served, by cause.",
                "cause",
                CLOSE_CAUSES.into_iter(),
            )?
            .try_into()
            .map_err(|_| prometheus::Error::Msg("five close causes".into()))?;
        let reloads = registered(
            r,
            IntCounterVec::new(
                Opts::new(
                    "mqtt_exporter_web_config_reloads_total",
                    "Re-reads of --web.config.file: success, invalid (not a valid config) or refused (it would turn TLS or authentication off).",
                ),
                &["result"],
            )?,
        )?;
        for result in ["success", "invalid", "refused"] {
            reloads.with_label_values(&[result]);
        }
        Ok(WebMetrics {
            rejected_per_peer,
            rejected_total,
            idle_closed,
            tls_failed,
            evicted,
            auth_throttled: counter(
                r,
                "mqtt_exporter_http_auth_throttled_total",
                "Requests answered 429 at once because every bcrypt password check was busy.",
            )?,
            reloads,
        })
    }
}
