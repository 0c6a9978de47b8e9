//! The feed: the one task that owns the [`Pipeline`]. Every source (MQTT
//! today, HTTP ingest next) gets its own bounded [`Inlet`] and sends its
//! deliveries through it; the feed takes them from the inlets in turn,
//! ticks every second, and publishes the flapping and top-clients
//! snapshots to [`Status`]. See ARCHITECTURE.md, "Sources and the one
//! pipeline".
//!
//! Turns keep sources apart: after a batch from one inlet the feed serves
//! the next inlet that has any, so a flood on one delays another by at most
//! one batch. Each inlet is bounded, and how a full inlet pushes back is
//! the source's choice: [`Inlet::send`] waits for room (MQTT: the broker
//! keeps the rest), [`Inlet::try_send`] refuses at once (HTTP: 503).

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::core::clock::now_ms;
use crate::core::listed;
use crate::core::pipeline::Pipeline;
use crate::core::status::Status;

/// How often flapping windows advance and the snapshots are refreshed.
const TICK: Duration = Duration::from_secs(1);
/// Items taken from one inlet in one turn.
const TURN: usize = 256;

/// One message a source received: its topic (or route), its payload, and
/// when it arrived (ms since the epoch).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub topic: Bytes,
    pub payload: Bytes,
    pub arrival_ms: i64,
}

/// Deliveries copied into one buffer: a source fills it on its own thread
/// and the feed reads it on its own, and the client library's read buffers
/// are given back at once.
#[derive(Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    /// Per delivery: where its topic ends, where its payload ends, and
    /// when it arrived.
    spans: Vec<(usize, usize, i64)>,
}

impl Batch {
    /// An empty batch with room for about `deliveries` of `bytes` in all.
    pub fn with_capacity(deliveries: usize, bytes: usize) -> Batch {
        Batch {
            data: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(deliveries),
        }
    }

    pub fn push(&mut self, topic: &[u8], payload: &[u8], arrival_ms: i64) {
        self.data.extend_from_slice(topic);
        let topic_end = self.data.len();
        self.data.extend_from_slice(payload);
        self.spans.push((topic_end, self.data.len(), arrival_ms));
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Each delivery's topic, payload and arrival time, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], i64)> + '_ {
        let mut start = 0;
        self.spans.iter().map(move |&(topic_end, end, arrival_ms)| {
            let topic = &self.data[start..topic_end];
            let payload = &self.data[topic_end..end];
            start = end;
            (topic, payload, arrival_ms)
        })
    }
}

/// What a source sends: one delivery, or a batch taken whole.
#[derive(Debug)]
pub enum Item {
    One(Delivery),
    Batch(Batch),
}

/// The inlet is full (its source is faster than the pipeline), or the feed
/// is gone (shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Full,
    Closed,
}

/// A source's way into the pipeline. Dropping every clone of it tells the
/// feed the source is done.
#[derive(Debug, Clone)]
pub struct Inlet {
    tx: mpsc::Sender<Item>,
}

impl Inlet {
    /// Sends `item`, waiting while the inlet is full.
    pub async fn send(&self, item: Item) -> Result<(), Refused> {
        self.tx.send(item).await.map_err(|_| Refused::Closed)
    }

    /// Sends `item` if there is room now.
    pub fn try_send(&self, item: Item) -> Result<(), Refused> {
        self.tx.try_send(item).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Refused::Full,
            mpsc::error::TrySendError::Closed(_) => Refused::Closed,
        })
    }
}

/// The pipeline's owner, and the receiving ends of the sources' inlets.
pub struct Feed {
    pipeline: Pipeline,
    status: Arc<Status>,
    inlets: Vec<mpsc::Receiver<Item>>,
    /// The inlet served first in the next turn.
    next: usize,
}

impl Feed {
    pub fn new(pipeline: Pipeline, status: Arc<Status>) -> Feed {
        Feed {
            pipeline,
            status,
            inlets: Vec::new(),
            next: 0,
        }
    }

    /// A new source's inlet, holding at most `capacity` items.
    pub fn inlet(&mut self, capacity: usize) -> Inlet {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.inlets.push(rx);
        Inlet { tx }
    }

    /// Runs until every inlet is closed and drained: sources stop first,
    /// and what they delivered is still counted.
    pub async fn run(mut self) {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut items = Vec::with_capacity(TURN);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.tick(),
                more = poll_fn(|cx| self.poll_turn(cx, &mut items)) => {
                    if !more {
                        break;
                    }
                    for item in items.drain(..) {
                        self.handle(item);
                    }
                }
            }
        }
        self.tick();
    }

    /// Takes up to [`TURN`] items from the first inlet, starting at
    /// `next`, that has any. `Ready(false)` once every inlet is closed and
    /// empty.
    fn poll_turn(&mut self, cx: &mut Context<'_>, items: &mut Vec<Item>) -> Poll<bool> {
        // every open inlet is polled before Pending, so each has our waker
        let mut k = 0;
        while k < self.inlets.len() {
            let at = (self.next + k) % self.inlets.len();
            match self.inlets[at].poll_recv_many(cx, items, TURN) {
                Poll::Ready(0) => {
                    // closed and empty: this source is done; start over
                    self.inlets.remove(at);
                    if self.inlets.is_empty() {
                        return Poll::Ready(false);
                    }
                    self.next %= self.inlets.len();
                    k = 0;
                }
                Poll::Ready(_) => {
                    self.next = (at + 1) % self.inlets.len();
                    return Poll::Ready(true);
                }
                Poll::Pending => k += 1,
            }
        }
        if self.inlets.is_empty() {
            Poll::Ready(false)
        } else {
            Poll::Pending
        }
    }

    fn handle(&mut self, item: Item) {
        match item {
            Item::One(d) => {
                self.pipeline.handle(&d.topic, &d.payload, d.arrival_ms);
            }
            Item::Batch(batch) => {
                for (topic, payload, arrival_ms) in batch.iter() {
                    self.pipeline.handle(topic, payload, arrival_ms);
                }
            }
        }
    }

    /// Advances the windows and publishes the (bounded) flapping and top
    /// lists.
    fn tick(&mut self) {
        let (flapping, top) = self.pipeline.tick_report(now_ms(), listed::FLAPPING);
        self.status.set_flapping(flapping);
        self.status.set_top(top);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::metrics::Metrics;

    fn delivery(client: &str) -> Delivery {
        Delivery {
            topic: Bytes::from_static(b"$events/client_disconnected"),
            payload: Bytes::from(format!(
                r#"{{"clientid":"{client}","event":"client.disconnected","reason":"keepalive_timeout"}}"#
            )),
            arrival_ms: 1_700_000_000_000,
        }
    }

    fn batch_of(clients: &[&str]) -> Batch {
        let mut batch = Batch::default();
        for c in clients {
            let d = delivery(c);
            batch.push(&d.topic, &d.payload, d.arrival_ms);
        }
        batch
    }

    #[test]
    fn a_batch_gives_back_what_was_pushed_in_order() {
        let mut batch = Batch::with_capacity(2, 64);
        batch.push(b"t/1", b"{}", 5);
        batch.push(b"", b"payload", 7);
        assert_eq!(
            batch.iter().collect::<Vec<_>>(),
            [(&b"t/1"[..], &b"{}"[..], 5), (&b""[..], &b"payload"[..], 7)]
        );
        assert_eq!(batch.len(), 2);
    }

    fn feed() -> (Feed, prometheus::Registry) {
        let registry = prometheus::Registry::new();
        let metrics = Metrics::new(&registry).unwrap_or_else(|e| panic!("{e}"));
        let status = Arc::new(Status::new(registry.clone()));
        (
            Feed::new(Pipeline::new(metrics, Default::default()), status),
            registry,
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

    #[tokio::test]
    async fn a_full_inlet_refuses_at_once_and_the_other_inlet_still_flows() {
        let (mut feed, registry) = feed();
        let http = feed.inlet(1);
        let mqtt = feed.inlet(4);
        // the feed is not running yet: HTTP's one slot fills, the next is refused
        assert_eq!(http.try_send(Item::Batch(batch_of(&["a"]))), Ok(()));
        assert_eq!(
            http.try_send(Item::Batch(batch_of(&["b"]))),
            Err(Refused::Full)
        );
        for i in 0..4 {
            mqtt.send(Item::One(delivery(&format!("m{i}"))))
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
        }
        let task = tokio::spawn(feed.run());
        // a batch of 1,000 from HTTP while MQTT keeps sending
        let names: Vec<String> = (0..1000).map(|i| format!("h{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut sent = false;
        for _ in 0..1000 {
            if http.try_send(Item::Batch(batch_of(&names))).is_ok() {
                sent = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(sent, "the HTTP inlet never had room");
        for i in 4..104 {
            mqtt.send(Item::One(delivery(&format!("m{i}"))))
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
        }
        drop(http);
        drop(mqtt);
        task.await.unwrap_or_else(|e| panic!("{e}"));
        // everything delivered before the inlets closed is counted
        assert_eq!(keepalive_timeouts(&registry), 1 + 1000 + 104);
    }

    #[tokio::test]
    async fn turns_alternate_between_busy_inlets() {
        let (mut feed, _registry) = feed();
        let a = feed.inlet(8);
        let b = feed.inlet(8);
        for _ in 0..3 {
            a.send(Item::One(delivery("a")))
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
            b.send(Item::One(delivery("b")))
                .await
                .unwrap_or_else(|e| panic!("{e:?}"));
        }
        let mut items = Vec::new();
        let mut order = Vec::new();
        for _ in 0..2 {
            let more = poll_fn(|cx| feed.poll_turn(cx, &mut items)).await;
            assert!(more);
            order.push(items.len());
            let first = match &items[0] {
                Item::One(d) => d.payload.clone(),
                Item::Batch(_) => Bytes::new(),
            };
            assert!(first
                .windows(3)
                .any(|w| w == [b'"', if order.len() == 1 { b'a' } else { b'b' }, b'"']));
            items.clear();
        }
        // each turn took all three of one inlet, then the other's
        assert_eq!(order, [3, 3]);
    }
}
