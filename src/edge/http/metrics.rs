//! The HTTP edge's own metrics: connections it closed and why, password
//! checks it turned away, and re-reads of the web config. Each is declared
//! once, as a field, registered with its declaration; the causes of a
//! close are a label set ([`Close`]).

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use super::admission::Refused;
use super::web_config::ReloadCounters;
use crate::core::label_set::{By, Label};
use crate::core::metrics::{counter, registered};

/// Why the server closed a connection before serving a request: the
/// `cause` of `mqtt_exporter_http_connections_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// The peer held its most connections.
    PeerLimit,
    /// The server held its most connections.
    ConnectionLimit,
    /// No request started in time.
    NoRequest,
    /// The TLS handshake failed (plain HTTP to the HTTPS port, an
    /// untrusted or missing client certificate, ...).
    TlsHandshake,
    /// The connection idle longest (answered before or not), closed to make
    /// room for a new one at the connection limit.
    Evicted,
}

impl Label for Close {
    const ALL: &'static [Close] = &[
        Close::PeerLimit,
        Close::ConnectionLimit,
        Close::NoRequest,
        Close::TlsHandshake,
        Close::Evicted,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn as_label(self) -> &'static str {
        match self {
            Close::PeerLimit => "peer_limit",
            Close::ConnectionLimit => "connection_limit",
            Close::NoRequest => "no_request",
            Close::TlsHandshake => "tls_handshake",
            Close::Evicted => "evicted",
        }
    }
}

/// The HTTP self-metrics.
pub struct WebMetrics {
    closed: By<Close, IntCounter>,
    /// Requests answered 429 at once: every password check was busy.
    auth_throttled: IntCounter,
    /// `mqtt_exporter_web_config_reloads_total{result}`.
    reloads: IntCounterVec,
}

impl WebMetrics {
    /// Creates the HTTP self-metrics and registers them on `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<WebMetrics> {
        let r = registry;
        let closed = registered(
            r,
            IntCounterVec::new(
                Opts::new(
                    "mqtt_exporter_http_connections_closed_total",
                    "HTTP connections closed by the server before a request was served, by cause.",
                ),
                &["cause"],
            )?,
        )?;
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
            closed: By::from_fn(|c: Close| closed.with_label_values(&[c.as_label()])),
            auth_throttled: counter(
                r,
                "mqtt_exporter_http_auth_throttled_total",
                "Requests answered 429 at once because every bcrypt password check was busy.",
            )?,
            reloads,
        })
    }

    /// A connection was not admitted.
    pub fn refused(&self, refused: Refused) {
        let cause = match refused {
            Refused::PeerLimit => Close::PeerLimit,
            Refused::ConnectionLimit => Close::ConnectionLimit,
        };
        self.closed[cause].inc();
    }

    /// The counter of closes for `cause`, for a connection's task to keep.
    pub fn closes(&self, cause: Close) -> IntCounter {
        self.closed[cause].clone()
    }

    /// The counter of requests answered 429 by the password-check bound.
    pub fn throttled(&self) -> IntCounter {
        self.auth_throttled.clone()
    }

    /// The web config's reload counters.
    pub fn reload_counters(&self) -> ReloadCounters {
        ReloadCounters::of(&self.reloads)
    }
}
