//! The feed: the one pipeline, shared by every source. Each source (MQTT,
//! HTTP ingest, a followed log file) gets an [`Inlet`] and hands its deliveries to
//! the pipeline through it, on its own task; the feed's own task ticks
//! every second and publishes the tick's one
//! [`Snapshot`](crate::core::snapshot::Snapshot) of every list to
//! [`Status`]. See ARCHITECTURE.md, "Sources and the one pipeline".
//!
//! Turns keep sources apart: a source holds the pipeline for at most
//! [`TURN`] deliveries at a time (about 0.2 ms), and the lock is fair
//! within half a millisecond, so a flood from one source delays another by
//! at most one turn. A source is pushed back by the pipeline's own pace:
//! it cannot hand over faster than the pipeline handles, and what it does
//! while it waits is its choice (MQTT stops reading, so the broker keeps
//! the rest; HTTP answers 503 when too many requests wait).
//!
//! Measured (`scripts/load.sh`, an A/B on one machine): handing batches to
//! a feed task over a channel cost 1.2 µs more CPU per event than the
//! pipeline alone (thread wake-ups, copies, and allocations freed on the
//! other thread); a shared pipeline handled on the source's own task costs
//! an uncontended lock.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::core::clock::now_ms;
use crate::core::event::{Event, EventError};
use crate::core::listed;
use crate::core::pipeline::Pipeline;
use crate::core::status::Status;
use crate::edge::shutdown::Shutdown;

/// How often flapping windows advance and the snapshots are refreshed.
const TICK: Duration = Duration::from_secs(1);
/// Deliveries handled in one hold of the pipeline.
pub const TURN: usize = 256;

/// The pipeline, shared by the sources and the feed's ticker.
pub struct Feed {
    pipeline: Arc<Mutex<Pipeline>>,
    status: Arc<Status>,
}

/// A source's way into the pipeline.
#[derive(Clone)]
pub struct Inlet {
    pipeline: Arc<Mutex<Pipeline>>,
}

impl Inlet {
    /// Hands one delivery (topic or route, payload, arrival time in ms
    /// since the epoch) to the pipeline.
    pub fn deliver(&self, topic: &[u8], payload: &[u8], arrival_ms: i64) {
        self.pipeline.lock().handle(topic, payload, arrival_ms);
    }

    /// Counts a delivery the source could not read itself (an element of a
    /// batch that is not an event, a line longer than the payload limit) as
    /// `error`, changing nothing else.
    pub fn reject(&self, error: EventError, bytes: usize) {
        self.pipeline.lock().reject(error, b"", bytes);
    }

    /// A hold of the pipeline for many deliveries, yielded fairly to other
    /// sources every [`TURN`] of them.
    pub fn turn(&self) -> Turn<'_> {
        Turn {
            pipeline: self.pipeline.lock(),
            held: 0,
        }
    }

    /// Hands events a source read itself (Event Grid's) to the pipeline in
    /// turns of [`TURN`], all arrived at `arrival_ms`.
    pub fn record_all<'a>(&self, events: impl IntoIterator<Item = Event<'a>>, arrival_ms: i64) {
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let mut pipeline = self.pipeline.lock();
            for event in events.by_ref().take(TURN) {
                pipeline.record(event, arrival_ms);
            }
        }
    }

    /// Hands `deliveries` to the pipeline in turns of [`TURN`], letting
    /// other sources in between.
    pub fn deliver_all<'a>(&self, deliveries: impl IntoIterator<Item = (&'a [u8], &'a [u8], i64)>) {
        let mut deliveries = deliveries.into_iter().peekable();
        while deliveries.peek().is_some() {
            let mut pipeline = self.pipeline.lock();
            for (topic, payload, arrival_ms) in deliveries.by_ref().take(TURN) {
                pipeline.handle(topic, payload, arrival_ms);
            }
        }
    }
}

/// The pipeline held by one source; see [`Inlet::turn`].
pub struct Turn<'a> {
    pipeline: parking_lot::MutexGuard<'a, Pipeline>,
    held: usize,
}

impl Turn<'_> {
    /// Lets a waiting source in (fairly) once [`TURN`] deliveries were
    /// handled in this hold.
    fn next(&mut self) {
        self.held += 1;
        if self.held >= TURN {
            parking_lot::MutexGuard::bump(&mut self.pipeline);
            self.held = 0;
        }
    }

    /// As [`Inlet::deliver`], within the hold.
    pub fn deliver(&mut self, topic: &[u8], payload: &[u8], arrival_ms: i64) {
        self.next();
        self.pipeline.handle(topic, payload, arrival_ms);
    }

    /// One line of a log file, in whichever format it is
    /// ([`Pipeline::handle_line`]).
    pub fn deliver_line(&mut self, line: &[u8], arrival_ms: i64) {
        self.next();
        self.pipeline.handle_line(line, arrival_ms);
    }

    /// As [`Inlet::reject`], within the hold.
    pub fn reject(&mut self, error: EventError, bytes: usize) {
        self.next();
        self.pipeline.reject(error, b"", bytes);
    }
}

impl Feed {
    pub fn new(pipeline: Pipeline, status: Arc<Status>) -> Feed {
        Feed {
            pipeline: Arc::new(Mutex::new(pipeline)),
            status,
        }
    }

    /// A new source's inlet.
    pub fn inlet(&self) -> Inlet {
        Inlet {
            pipeline: Arc::clone(&self.pipeline),
        }
    }

    /// Ticks every second until `shutdown` fires, and once more after, so
    /// the last snapshots include everything delivered.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = shutdown.recv() => break,
                _ = ticker.tick() => self.tick(),
            }
        }
        self.tick();
    }

    /// Advances the windows and publishes the (bounded) flapping and top
    /// lists.
    fn tick(&self) {
        let snapshot = self.pipeline.lock().tick(now_ms(), listed::FLAPPING);
        self.status.set_snapshot(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::Metrics;

    fn disconnect(client: &str) -> Vec<u8> {
        format!(
            r#"{{"clientid":"{client}","event":"client.disconnected","reason":"keepalive_timeout"}}"#
        )
        .into_bytes()
    }

    fn feed() -> (Feed, prometheus::Registry, Arc<Status>) {
        let registry = prometheus::Registry::new();
        let metrics = Metrics::new(&registry).unwrap_or_else(|e| panic!("{e}"));
        let status = Arc::new(Status::new(registry.clone()));
        (
            Feed::new(
                Pipeline::new(metrics, Default::default()),
                Arc::clone(&status),
            ),
            registry,
            status,
        )
    }

    fn keepalive_timeouts(registry: &prometheus::Registry) -> u64 {
        registry
            .gather()
            .iter()
            .filter(|f| f.name() == "mqtt_client_disconnects_total")
            .flat_map(|f| f.get_metric().iter())
            .filter(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.value() == "keepalive_timeout")
            })
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    /// Two sources on two threads at once: a flood of batches and single
    /// deliveries; every one is counted, and each source finishes.
    #[test]
    fn two_sources_at_once_are_both_counted_exactly() {
        let (feed, registry, _) = feed();
        let (batches, singles) = (feed.inlet(), feed.inlet());
        let payloads: Vec<Vec<u8>> = (0..1000).map(|i| disconnect(&format!("h{i}"))).collect();
        let http = std::thread::spawn(move || {
            for _ in 0..20 {
                batches.deliver_all(payloads.iter().map(|p| (&b"route"[..], &p[..], 1)));
            }
        });
        let mqtt = std::thread::spawn(move || {
            for i in 0..5000 {
                singles.deliver(
                    b"$events/client_disconnected",
                    &disconnect(&format!("m{i}")),
                    1,
                );
            }
        });
        http.join().unwrap_or_else(|_| panic!("the batch source"));
        mqtt.join().unwrap_or_else(|_| panic!("the single source"));
        assert_eq!(keepalive_timeouts(&registry), 20 * 1000 + 5000);
    }

    #[tokio::test]
    async fn the_feed_ticks_and_ticks_once_more_at_shutdown() {
        let (feed, _registry, status) = feed();
        let inlet = feed.inlet();
        let (trigger, shutdown) = crate::edge::shutdown::channel();
        let task = tokio::spawn(feed.run(shutdown));
        // three takeovers of one client: flapping once the feed has ticked
        let takeover = br#"{"clientid":"dup","event":"client.disconnected","reason":"takeovered"}"#;
        for _ in 0..3 {
            inlet.deliver(b"$events/client_disconnected", takeover, now_ms());
        }
        trigger.fire();
        task.await.unwrap_or_else(|e| panic!("{e}"));
        let listed: Vec<String> = status
            .snapshot()
            .flapping
            .iter()
            .map(|c| c.clientid.to_string())
            .collect();
        assert_eq!(listed, ["dup"]);
    }
}
