//! Per-event cost of each stage and of the whole pipeline, with realistic
//! EMQX 5 payloads and a million distinct client IDs held in the detector.
//!
//! Run: `cargo bench --bench pipeline` (criterion reports time per event and
//! events per second).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mqtt_disconnect_exporter::event;
use mqtt_disconnect_exporter::flapping::{Detector, Settings};
use mqtt_disconnect_exporter::metrics::Metrics;
use mqtt_disconnect_exporter::pipeline::{Pipeline, PipelineSettings};
use mqtt_disconnect_exporter::reasons;
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
