//! The MQTT edge's own metrics: the session to the broker, as the
//! [`super::session`] reports it. Each is declared once, as a field, and
//! registered with its declaration; the driver changes them only through
//! methods named for what happened (`set_up`, `reconnected`, `taken_over`).

use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts, Registry};

use super::session::Protocol;
use crate::core::metrics::registered;

/// The MQTT source's self-metrics.
pub struct MqttMetrics {
    /// `mqtt_exporter_broker_up`.
    up: IntGauge,
    /// `mqtt_exporter_broker_reconnects_total`.
    reconnects: IntCounter,
    /// `mqtt_exporter_session_takeovers_total`.
    takeovers: IntCounter,
    /// `mqtt_exporter_broker_resends_total`.
    resends: IntCounter,
    /// `mqtt_exporter_subscription_granted{topic}`, one per filter, in
    /// `--mqtt.topic` order.
    granted: Vec<IntGauge>,
    /// `mqtt_exporter_broker_protocol{version}`, indexed like
    /// [`Protocol::ALL`].
    protocol: [IntGauge; 2],
}

impl MqttMetrics {
    /// Registers the MQTT source's metrics on `registry`, a
    /// `subscription_granted` series for each of `topics`.
    pub fn new(registry: &Registry, topics: &[String]) -> prometheus::Result<MqttMetrics> {
        let up = registered(
            registry,
            IntGauge::new(
                "mqtt_exporter_broker_up",
                "1 while the MQTT session to the broker is up.",
            )?,
        )?;
        let reconnects = registered(
            registry,
            IntCounter::new(
                "mqtt_exporter_broker_reconnects_total",
                "Successful reconnections to the broker after a loss.",
            )?,
        )?;
        let takeovers = registered(
            registry,
            IntCounter::new(
                "mqtt_exporter_session_takeovers_total",
                "Times another client took the exporter's own session (its client ID) over, or very likely did: give every replica its own --mqtt.client-id.",
            )?,
        )?;
        let resends = registered(
            registry,
            IntCounter::new(
                "mqtt_exporter_broker_resends_total",
                "QoS 1 publishes the broker sent again after a cut (DUP set, a packet identifier the exporter had counted just before): acknowledged, not counted twice.",
            )?,
        )?;
        let granted_vec = registered(
            registry,
            IntGaugeVec::new(
                Opts::new(
                    "mqtt_exporter_subscription_granted",
                    "1 if the broker granted the subscription to this --mqtt.topic filter in the last SUBACK, else 0.",
                ),
                &["topic"],
            )?,
        )?;
        let protocol_vec = registered(
            registry,
            IntGaugeVec::new(
                Opts::new(
                    "mqtt_exporter_broker_protocol",
                    "1 for the MQTT version the exporter speaks to the broker (--mqtt.protocol; auto falls back to 3.1.1 when the broker refuses 5), else 0.",
                ),
                &["version"],
            )?,
        )?;
        Ok(MqttMetrics {
            up,
            reconnects,
            takeovers,
            resends,
            granted: topics
                .iter()
                .map(|t| granted_vec.with_label_values(&[t.as_str()]))
                .collect(),
            protocol: Protocol::ALL.map(|p| protocol_vec.with_label_values(&[p.as_str()])),
        })
    }

    pub fn set_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    pub fn reconnected(&self) {
        self.reconnects.inc();
    }

    pub fn taken_over(&self) {
        self.takeovers.inc();
    }

    /// A publish the broker resent after a cut, already counted.
    pub fn resent(&self) {
        self.resends.inc();
    }

    /// Filter `index` (in `--mqtt.topic` order) was granted or refused.
    pub fn set_granted(&self, index: usize, granted: bool) {
        if let Some(gauge) = self.granted.get(index) {
            gauge.set(i64::from(granted));
        }
    }

    /// The session speaks `protocol` from now on.
    pub fn speak(&self, protocol: Protocol) {
        for (p, gauge) in Protocol::ALL.iter().zip(&self.protocol) {
            gauge.set(i64::from(*p == protocol));
        }
    }
}
