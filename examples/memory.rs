//! Resident memory of the pipeline holding N distinct client IDs.
//!
//! Run: `cargo run --release --example memory -- 1000000 [max-tracked]`.
//! Prints the RSS before and after feeding one disconnect per client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mqtt_disconnect_exporter::core::flapping::Settings;
use mqtt_disconnect_exporter::core::metrics::Metrics;
use mqtt_disconnect_exporter::core::pipeline::{Pipeline, PipelineSettings};
use prometheus::Registry;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let cap: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let settings = PipelineSettings {
        flapping: Settings {
            max_tracked: cap,
            ..Settings::default()
        },
        ..PipelineSettings::default()
    };
    let mut pipeline = Pipeline::new(Metrics::new(&Registry::new()).unwrap(), settings);
    let before = rss_kib();
    let t0 = 1_717_651_184_811i64;
    let start = std::time::Instant::now();
    // a storm: a thousand events per millisecond, so every client is still
    // inside its window (and none expires) when memory is measured
    let at = |i: usize| t0 + (i / 1000) as i64;
    for i in 0..n {
        let reason = if i % 50 == 0 {
            "takenover"
        } else {
            "keepalive_timeout"
        };
        let payload = format!(
            r#"{{"event":"client.disconnected","clientid":"device-{i:08}","reason":"{reason}","peername":"10.0.{}.{}:1883","disconnected_at":{}}}"#,
            (i >> 8) & 255,
            i & 255,
            at(i)
        );
        pipeline.handle(
            b"emqx/events/client_disconnected",
            payload.as_bytes(),
            at(i),
        );
    }
    pipeline.tick(at(n), 1000);
    let after = rss_kib();
    let tracked = pipeline.detector().tracked();
    println!(
        "clients={n} cap={cap} tracked={tracked} evicted={} rss_before_mib={:.1} rss_after_mib={:.1} bytes_per_tracked={:.0} elapsed_s={:.2}",
        pipeline.detector().evicted(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before) * 1024) as f64 / tracked.max(1) as f64,
        start.elapsed().as_secs_f64()
    );
}
