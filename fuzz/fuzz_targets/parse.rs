//! Fuzz the event parser and the whole pipeline with arbitrary topics and
//! payloads: no panic, and every rejected input counted exactly once.
//!
//! Run: `cargo fuzz run parse` from the repository root (see BENCHMARKS.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_disconnect_exporter::event::{self, EventError};
use mqtt_disconnect_exporter::metrics::Metrics;
use mqtt_disconnect_exporter::pipeline::{Outcome, Pipeline, PipelineSettings};

fuzz_target!(|data: &[u8]| {
    // first byte: topic length; then topic; the rest is the payload
    let (topic, payload) = match data.split_first() {
        Some((n, rest)) => rest.split_at((*n as usize).min(rest.len())),
        None => (&b""[..], &b""[..]),
    };
    let _ = event::parse(topic, payload);
    let registry = prometheus::Registry::new();
    let mut p = Pipeline::new(
        Metrics::new(&registry).expect("metrics"),
        PipelineSettings::default(),
    );
    let outcome = p.handle(topic, payload, 0);
    let errors: u64 = EventError::ALL.iter().map(|e| p.metrics().error(*e).get()).sum();
    match outcome {
        Outcome::Rejected(_) => assert_eq!(errors, 1),
        Outcome::Accepted { .. } => assert_eq!(errors, 0),
    }
});
