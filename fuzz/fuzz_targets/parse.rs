//! Fuzz the event parser and the whole pipeline with arbitrary topics and
//! payloads: no panic, and every rejected input counted exactly once.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run parse` from the repository root
//! (see BENCHMARKS.md).
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use mqtt_disconnect_exporter::core::event::{self, mosquitto_log, EventError};
use mqtt_disconnect_exporter::core::metrics::Metrics;
use mqtt_disconnect_exporter::core::pipeline::{Outcome, Pipeline, PipelineSettings};

thread_local! {
    static PIPELINE: RefCell<Pipeline> = RefCell::new(Pipeline::new(
        Metrics::new(&prometheus::Registry::new()).expect("metrics"),
        PipelineSettings::default(),
    ));
}

fuzz_target!(|data: &[u8]| {
    // first byte: topic length; then the topic; the rest is the payload
    let (topic, payload) = match data.split_first() {
        Some((n, rest)) => rest.split_at((*n as usize).min(rest.len())),
        None => (&b""[..], &b""[..]),
    };
    let log = mosquitto_log::is_log_topic(topic);
    let parsed = if log {
        mosquitto_log::parse(payload).map(|_| ())
    } else {
        event::parse(topic, payload).map(|_| ())
    };
    PIPELINE.with(|p| {
        let mut p = p.borrow_mut();
        let errors = |p: &Pipeline| -> u64 {
            EventError::ALL.iter().map(|e| p.metrics().errors(*e)).sum()
        };
        let before = errors(&p);
        let outcome = p.handle(topic, payload, 0);
        let after = errors(&p);
        match outcome {
            Outcome::Rejected(EventError::TooLarge) => assert_eq!(after, before + 1),
            Outcome::Rejected(e) => {
                assert_eq!(after, before + 1);
                assert_eq!(parsed.err(), Some(e));
            }
            Outcome::Accepted { .. } => {
                assert_eq!(after, before);
                assert!(parsed.is_ok());
            }
            Outcome::Ignored => {
                assert_eq!(after, before);
                assert!(log && parsed.is_ok());
            }
        }
    });
});
