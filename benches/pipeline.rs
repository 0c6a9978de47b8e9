//! Per-event cost of each stage and of the whole pipeline, with realistic
//! EMQX 5 payloads and a million distinct client IDs held in the detector;
//! the cost of a tick with many clients flapping; and a backlog drained with
//! and without a mass-flapping storm in the detector.
//!
//! Every run also measures a same-run baseline, `serde_json` parsing the same
//! payload into a borrowed struct, so figures compare across machines as
//! ratios (`scripts/bench-ratios.sh` prints them).
//!
//! Run: `cargo bench --bench pipeline` (criterion reports time per event and
//! events per second).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mqtt_disconnect_exporter::core::event;
use mqtt_disconnect_exporter::core::flapping::{Detector, FlapKind, Settings};
use mqtt_disconnect_exporter::core::metrics::Metrics;
use mqtt_disconnect_exporter::core::pipeline::{Pipeline, PipelineSettings};
use mqtt_disconnect_exporter::core::reasons::{self, Reason};
use mqtt_disconnect_exporter::core::top::{TopClients, TopSettings};
use prometheus::Registry;

const CLIENTS: usize = 1_000_000;
const TOPIC: &[u8] = b"emqx/events/client_disconnected";
/// A storm's mix: mostly network drops, some clean exits, 2% takeovers.
const REASONS: [&str; 50] = {
    let mut r = ["tcp_closed"; 50];
    let mut i = 0;
    while i < 20 {
        r[i] = "keepalive_timeout";
        i += 1;
    }
    r[20] = "takenover";
    r[21] = "normal";
    r[22] = "normal";
    r[23] = "sock_closed";
    r[24] = "kicked";
    r
};
/// The baseline: what a plain serde_json user would write to read the same
/// fields, borrowing from the payload.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Baseline<'a> {
    event: &'a str,
    clientid: &'a str,
    reason: &'a str,
    peername: &'a str,
    disconnected_at: i64,
}

/// Placeholder replaced with the event time before each handle.
const T_DIGITS: &str = "1717651184811";

/// Payload buffers cycled through: a few MB, so a payload is in cache when
/// parsed, as it is right after the network read; the client ID written into
/// it still ranges over a million.
const TEMPLATES: usize = 4096;

/// One realistic EMQX 5 `client.disconnected` payload and the offsets of its
/// two 13-digit timestamps.
fn payload(i: usize) -> (Vec<u8>, [usize; 2]) {
    let text = format!(
        r#"{{"event":"client.disconnected","clientid":"device-{i:08}","username":"fleet-user","peername":"10.{}.{}.{}:{}","sockname":"0.0.0.0:1883","proto_name":"MQTT","proto_ver":5,"reason":"{}","disconnected_at":{T_DIGITS},"disconn_props":{{"User-Property":{{}}}},"timestamp":{T_DIGITS},"node":"emqx@10.0.0.1","client_attrs":{{}}}}"#,
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255,
        1024 + i % 60000,
        REASONS[i % REASONS.len()]
    );
    let first = text.find(T_DIGITS).unwrap();
    let second = first + 1 + text[first + 1..].find(T_DIGITS).unwrap();
    (text.into_bytes(), [first, second])
}

/// Writes client `id` (8 digits) into a payload made by `payload`.
fn stamp_id(buf: &mut [u8], mut id: usize) {
    let at = 50; // after `{"event":"client.disconnected","clientid":"device-`
    for d in buf[at..at + 8].iter_mut().rev() {
        *d = b'0' + (id % 10) as u8;
        id /= 10;
    }
}

/// Writes `t` (13 digits) at both offsets: the broker's next event.
fn stamp(buf: &mut [u8], at: [usize; 2], mut t: i64) {
    let mut digits = [0u8; 13];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (t % 10) as u8;
        t /= 10;
    }
    for start in at {
        buf[start..start + 13].copy_from_slice(&digits);
    }
}

fn bench(c: &mut Criterion) {
    let t0 = 1_717_651_184_811i64;
    let mut msgs: Vec<(Vec<u8>, [usize; 2])> = (0..TEMPLATES).map(payload).collect();
    // the client ID digits sit where stamp_id writes them
    stamp_id(&mut msgs[0].0, 12_345_678);
    let text = std::str::from_utf8(&msgs[0].0).unwrap();
    assert!(text.contains(r#""clientid":"device-12345678","#), "{text}");

    let mut g = c.benchmark_group("per_event");
    g.throughput(Throughput::Elements(1));

    let mut i = 0;
    g.bench_function("baseline_serde_json_borrowed", |b| {
        b.iter(|| {
            i = (i + 1) % TEMPLATES;
            black_box(serde_json::from_slice::<Baseline>(&msgs[i].0).unwrap());
        })
    });

    let mut i = 0;
    g.bench_function("parse", |b| {
        b.iter(|| {
            i = (i + 1) % TEMPLATES;
            black_box(event::parse(TOPIC, &msgs[i].0).unwrap());
        })
    });

    let raw = [
        "keepalive_timeout",
        "Taken Over",
        "sock_closed",
        "0x8E",
        "no-such-reason",
    ];
    let mut j = 0;
    g.bench_function("classify", |b| {
        b.iter(|| {
            j = (j + 1) % raw.len();
            black_box(reasons::classify(raw[j]));
        })
    });

    // One event per millisecond over a million clients: each client comes back
    // every 1,000 s, outside every window, as in a long storm.
    let ids: Vec<String> = (0..CLIENTS).map(|k| format!("device-{k:08}")).collect();
    let mut detector = Detector::new(Settings::default());
    let mut t = t0;
    for id in &ids {
        t += 1;
        detector.observe_disconnect(id, false, None, t);
    }
    let mut k = 0;
    g.bench_function("flapping_update_1M_clients", |b| {
        b.iter(|| {
            k = (k + 1) % CLIENTS;
            t += 1;
            black_box(detector.observe_disconnect(&ids[k], k % 50 == 20, Some("10.0.0.1:1024"), t));
        })
    });
    drop(detector);

    // Top clients per reason: a storm of distinct clients (every event takes
    // over the smallest counter) and a skewed one (a few clients repeat).
    let mut top = TopClients::new(TopSettings::default());
    let mut k = 0;
    g.bench_function("top_clients_distinct", |b| {
        b.iter(|| {
            k = (k + 1) % CLIENTS;
            t += 1;
            top.observe(Reason::KeepaliveTimeout, &ids[k], Some("10.0.0.1:1024"), t);
        })
    });
    let mut top = TopClients::new(TopSettings::default());
    let mut k = 0;
    g.bench_function("top_clients_skewed", |b| {
        b.iter(|| {
            k = (k + 1) % CLIENTS;
            t += 1;
            // half the events from 10 clients, the rest from a million
            let id = if k % 2 == 0 { &ids[k % 10] } else { &ids[k] };
            top.observe(Reason::KeepaliveTimeout, id, Some("10.0.0.1:1024"), t);
        })
    });
    black_box(top.top(t, 20));

    let registry = Registry::new();
    let mut pipeline = Pipeline::new(
        Metrics::new(&registry).unwrap(),
        PipelineSettings::default(),
    );
    let mut t = t0;
    for n in 0..CLIENTS {
        t += 1;
        let (buf, at) = &mut msgs[n % TEMPLATES];
        stamp_id(buf, n);
        stamp(buf, *at, t);
        pipeline.handle(TOPIC, buf, t);
    }
    let mut n = 0;
    g.bench_function("pipeline_handle_1M_clients", |b| {
        b.iter(|| {
            n = (n + 1) % CLIENTS;
            t += 1;
            let (buf, at) = &mut msgs[n % TEMPLATES];
            stamp_id(buf, n);
            stamp(buf, *at, t);
            black_box(pipeline.handle(TOPIC, buf, t + 20));
        })
    });
    g.finish();
    assert_eq!(pipeline.detector().tracked(), CLIENTS);

    c.bench_function("metrics_encode", |b| {
        b.iter_batched(
            || (),
            |_| {
                use prometheus::Encoder;
                let mut out = Vec::with_capacity(16 * 1024);
                prometheus::TextEncoder::new()
                    .encode(&registry.gather(), &mut out)
                    .unwrap();
                black_box(out)
            },
            BatchSize::SmallInput,
        )
    });
}

/// A pipeline in which `flapping` clients are takeover-flapping now (three
/// takeovers each, one second apart), with the clock at `t0 + 3 s`.
fn storm_pipeline(flapping: usize, t0: i64) -> Pipeline {
    let registry = Registry::new();
    let mut p = Pipeline::new(
        Metrics::new(&registry).unwrap(),
        PipelineSettings::default(),
    );
    for round in 0..3i64 {
        let t = t0 + round * 1000;
        for c in 0..flapping {
            let payload = format!(
                r#"{{"event":"client.disconnected","clientid":"storm-{c:07}","reason":"takenover","peername":"10.0.{round}.1:1883","disconnected_at":{t}}}"#
            );
            p.handle(TOPIC, payload.as_bytes(), t);
        }
    }
    p.tick(t0 + 3000, 1000);
    assert_eq!(p.detector().flapping(FlapKind::Takeover), flapping);
    p
}

/// The cost of one tick (advance the windows, refresh the gauges and the
/// 20 series, list the top 1,000) with 0, 10k and 200k clients flapping.
fn tick(c: &mut Criterion) {
    let t0 = 1_717_651_184_811i64;
    let mut g = c.benchmark_group("tick");
    for flapping in [0, 10_000, 200_000] {
        let mut p = storm_pipeline(flapping, t0);
        let mut now = t0 + 3000;
        g.bench_function(format!("{flapping}_flapping"), |b| {
            b.iter(|| {
                now += 1;
                black_box(p.tick(now, 1000).flapping.len())
            })
        });
    }
    g.finish();
}

/// Drains a backlog of 100,000 events into a quiet pipeline and into one
/// with 100,000 clients flapping, with a tick (listing the top 1,000) every
/// 25,000 events: the MQTT task ticks once a second, and the exporter drains
/// about 300,000 events a second, so this ticks ten times more often than
/// the real drain. The storm drain should cost at most 1.25x the quiet one.
fn drain(c: &mut Criterion) {
    const BACKLOG: usize = 100_000;
    let t0 = 1_717_651_184_811i64;
    let mut msgs: Vec<(Vec<u8>, [usize; 2])> = (0..TEMPLATES).map(payload).collect();
    let mut g = c.benchmark_group("drain_100k");
    g.throughput(Throughput::Elements(BACKLOG as u64));
    g.sample_size(20);
    for (name, flapping) in [("quiet", 0), ("storm_100k_flapping", 100_000)] {
        let mut p = storm_pipeline(flapping, t0);
        let mut t = t0 + 3000;
        let mut next_id = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                for n in 0..BACKLOG {
                    let (buf, at) = &mut msgs[n % TEMPLATES];
                    stamp_id(buf, next_id % CLIENTS);
                    next_id += 1;
                    if n % 1000 == 0 {
                        t += 1;
                    }
                    stamp(buf, *at, t);
                    black_box(p.handle(TOPIC, buf, t));
                    if n % 25_000 == 0 {
                        black_box(p.tick(t, 1000).flapping.len());
                    }
                }
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = bench, tick, drain
}
criterion_main!(benches);
