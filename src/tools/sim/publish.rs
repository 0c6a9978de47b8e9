//! `simulate`: publish a [`Fleet`]'s events to a broker.
//!
//! The publisher runs rumqttc's event loop in its own task and counts PUBACKs,
//! so the summary it prints (events published, by kind and by canonical
//! reason) is what the broker accepted. `demo` uses the same publisher against
//! its embedded broker.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

use crate::core::clock::now_ms;
use crate::core::reasons;
use crate::edge::shutdown::Shutdown;
use crate::tools::sim::fleet::{Fleet, Scenario, SimEvent};

/// What to publish, where.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// Topic prefix; events go to `<prefix>/<kind>` (`$events` for TDMQ style).
    pub topic_prefix: String,
    pub scenario: Scenario,
    /// Steady disconnects per second (each with a reconnect).
    pub rate: u32,
    pub clients: usize,
    /// Stop after this long; `None` runs until shutdown.
    pub duration: Option<Duration>,
    pub seed: u64,
}

/// What was published and acknowledged.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub published: u64,
    pub acknowledged: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Disconnects by canonical reason label.
    pub disconnects: BTreeMap<&'static str, u64>,
}

/// Step between two fleet ticks.
const STEP: Duration = Duration::from_millis(50);

/// Publishes until the duration passes or `shutdown` fires, then waits (up to
/// 30 s) for every PUBACK and disconnects.
pub async fn run(cfg: SimConfig, mut shutdown: Shutdown) -> Summary {
    let mut options = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(Some(1024 * 1024))
        .set_clean_start(true);
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    let acked = Arc::new(AtomicU64::new(0));
    let acks = Arc::clone(&acked);
    let poller = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acks.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "simulator connection failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });

    let mut fleet = Fleet::new(cfg.scenario, cfg.clients, cfg.seed, now_ms());
    let mut summary = Summary::default();
    let mut buf: Vec<SimEvent> = Vec::new();
    let mut owed = 0.0f64;
    let start = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval(STEP);
    'outer: loop {
        tokio::select! {
            _ = shutdown.recv() => break,
            _ = ticker.tick() => {}
        }
        if cfg.duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
        owed += f64::from(cfg.rate) * STEP.as_secs_f64();
        let steady = owed as usize;
        owed -= steady as f64;
        buf.clear();
        fleet.tick(now_ms(), steady, &mut buf);
        for event in buf.drain(..) {
            let topic = format!("{}/{}", cfg.topic_prefix, event.kind);
            let sent = tokio::select! {
                _ = shutdown.recv() => break 'outer,
                sent = client.publish(topic, QoS::AtLeastOnce, false, event.payload) => sent,
            };
            if sent.is_err() {
                break 'outer;
            }
            summary.published += 1;
            *summary.by_kind.entry(event.kind).or_default() += 1;
            if let Some(raw) = event.reason {
                *summary
                    .disconnects
                    .entry(reasons::classify(raw).as_str())
                    .or_default() += 1;
            }
        }
    }

    let drained = async {
        while acked.load(Ordering::Relaxed) < summary.published {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), drained)
        .await
        .is_err()
    {
        tracing::warn!("not every event was acknowledged within 30 s");
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), poller).await;
    summary.acknowledged = acked.load(Ordering::Relaxed);
    summary
}
