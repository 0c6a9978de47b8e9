//! Hostile input: a million distinct random reasons and client IDs, label
//! values built to break the exposition format, garbage topics and payloads.
//! None may add a series beyond the closed sets, and the exposition must stay
//! valid for a real Prometheus parser (`promtool check metrics`).

use mqtt_disconnect_exporter::core::flapping::FlapKind;
use std::io::Write;
use std::process::{Command, Stdio};

use mqtt_disconnect_exporter::core::event::EventError;
use mqtt_disconnect_exporter::core::flapping::Settings;
use mqtt_disconnect_exporter::core::metrics::Metrics;
use mqtt_disconnect_exporter::core::pipeline::{Outcome, Pipeline, PipelineSettings};
use mqtt_disconnect_exporter::core::reasons::Reason;
use prometheus::{Encoder, Registry, TextEncoder};

use crate::common::disconnect;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn pipeline(max_tracked: usize) -> (Registry, Pipeline) {
    let registry = Registry::new();
    let settings = PipelineSettings {
        flapping: Settings {
            max_tracked,
            ..Settings::default()
        },
        ..PipelineSettings::default()
    };
    let p = Pipeline::new(Metrics::new(&registry).unwrap(), settings);
    (registry, p)
}

fn exposition(registry: &Registry) -> String {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn series(text: &str, family: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) || l.starts_with(&format!("{family} ")))
        .count()
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (run scripts/test.sh to install it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool rejected the exposition: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Random text (never blank), with quotes, backslashes and newlines.
fn random_text(rng: &mut StdRng) -> String {
    let len = rng.gen_range(1..40);
    let s: String = std::iter::once('r')
        .chain((0..len).map(|_| match rng.gen_range(0..10) {
            0 => '"',
            1 => '\\',
            2 => '\n',
            3 => '{',
            4 => '日',
            _ => rng.gen_range(' '..='~'),
        }))
        .collect();
    s
}

#[test]
#[ignore = "needs promtool; scripts/test.sh runs it"]
fn a_million_random_reasons_and_client_ids_add_no_series() {
    let (registry, mut p) = pipeline(100_000);
    let mut rng = StdRng::seed_from_u64(42);
    let t0 = 1_700_000_000_000i64;
    let n = 1_000_000;
    let mut conflicts = 0u64;
    let mut distinct = std::collections::HashSet::new();
    for i in 0..n {
        let reason = random_text(&mut rng);
        let id = random_text(&mut rng);
        distinct.insert(id.clone());
        let payload = disconnect(&id, &reason).at(t0 + i as i64).json();
        // each event arrives when it happened (a second per 1,000 events)
        let arrival = t0 + i as i64;
        let out = p.handle(
            b"emqx/events/client_disconnected",
            payload.as_bytes(),
            arrival,
        );
        assert!(
            matches!(
                out,
                Outcome::Accepted {
                    reason: Some(Reason::Other),
                    ..
                }
            ),
            "{payload}"
        );
        // fifty IDs fight over themselves, enough to exceed the top-N cap
        if i % 10 == 0 {
            let shared = format!("conflict-{}", i % 500 / 10);
            let payload = disconnect(&shared, "takenover").at(t0 + i as i64).json();
            p.handle(
                b"emqx/events/client_disconnected",
                payload.as_bytes(),
                arrival,
            );
            conflicts += 1;
        }
    }
    p.tick(t0 + n as i64, 1000);
    let m = p.metrics();
    assert_eq!(m.disconnects(Reason::Other), n);
    assert_eq!(m.disconnects(Reason::Takeovered), conflicts);
    assert_eq!(m.clamped_and_expired().0, 0);
    assert_eq!(m.flapping(FlapKind::Takeover).0, 50);
    assert!(distinct.len() > 900_000, "{} distinct IDs", distinct.len());
    assert_eq!(p.detector().tracked(), 100_000);
    assert!(p.detector().evicted() >= (distinct.len() - 100_000) as u64);
    let text = exposition(&registry);
    assert_eq!(series(&text, "mqtt_client_disconnects_total"), 17);
    assert_eq!(series(&text, "mqtt_client_flapping"), 20);
    assert_eq!(series(&text, "mqtt_exporter_event_errors_total"), 5);
    promtool_check(&text);
}

#[test]
#[ignore = "needs promtool; scripts/test.sh runs it"]
fn hostile_label_values_keep_the_exposition_valid() {
    let (registry, mut p) = pipeline(1000);
    let hostile = [
        r#""quote\"inside""#,
        r#""new\nline""#,
        r#""back\\slash\\""#,
        r#""brace} x=\"1\" {""#,
        r#""nul\u0000byte""#,
        r#""cr\rreturn""#,
        r#""tab\tand 日本語""#,
        r##""# HELP fake\nmqtt_fake 1""##,
    ];
    let t0 = 1_700_000_000_000i64;
    for (k, literal) in hostile.iter().enumerate() {
        let id: String = serde_json::from_str(literal).unwrap();
        for i in 0..3 {
            let payload = disconnect(&id, "takenover")
                .peer(&id)
                .at(t0 + (k * 10 + i) as i64)
                .json();
            let out = p.handle(b"$events/client_disconnected", payload.as_bytes(), t0);
            assert!(matches!(out, Outcome::Accepted { .. }), "{payload}");
        }
    }
    // invalid UTF-8 never reaches a label
    let bad =
        b"{\"event\":\"client.disconnected\",\"clientid\":\"\xff\xfe\",\"reason\":\"takenover\"}";
    assert_eq!(
        p.handle(b"t", bad, t0),
        Outcome::Rejected(EventError::InvalidUtf8)
    );
    assert_eq!(
        p.handle(b"\xc3\x28/disconnected", b"{}", t0),
        Outcome::Rejected(EventError::InvalidUtf8)
    );
    p.tick(t0 + 100, 1000);
    let text = exposition(&registry);
    assert_eq!(series(&text, "mqtt_client_flapping"), hostile.len());
    assert_eq!(
        p.metrics().flapping(FlapKind::Takeover).0,
        hostile.len() as i64
    );
    assert!(!text.contains("\nmqtt_fake 1"), "injected a sample");
    assert!(text.contains(r#"clientid="quote\"inside""#), "{text}");
    assert!(text.contains(r#"clientid="new\nline""#));
    promtool_check(&text);
}

#[test]
#[ignore = "needs promtool; scripts/test.sh runs it"]
fn random_bytes_never_panic_and_every_rejection_is_counted() {
    let (registry, mut p) = pipeline(1000);
    let mut rng = StdRng::seed_from_u64(7);
    let mut rejected = 0u64;
    let mut accepted = 0u64;
    let mut ignored = 0u64;
    let fragments: [&[u8]; 12] = [
        b"{",
        b"}",
        b"\"clientid\":",
        b"\"reason\":",
        b"\"event\":\"client.disconnected\"",
        b",",
        b"\"x\"",
        b"1e999",
        b"[",
        b"\\u00",
        b"\xff",
        b"null",
    ];
    for _ in 0..50_000 {
        let mut payload = Vec::new();
        for _ in 0..rng.gen_range(0..12) {
            if rng.gen_bool(0.7) {
                payload.extend_from_slice(fragments[rng.gen_range(0..fragments.len())]);
            } else {
                payload.push(rng.gen());
            }
        }
        let topic: Vec<u8> = match rng.gen_range(0..4) {
            0 => b"$events/client_disconnected".to_vec(),
            1 => b"sys/brokers/n/clients/c/disconnected".to_vec(),
            2 => b"$SYS/broker/log/N".to_vec(),
            _ => (0..rng.gen_range(0..20)).map(|_| rng.gen()).collect(),
        };
        match p.handle(&topic, &payload, 0) {
            Outcome::Accepted { .. } => accepted += 1,
            Outcome::Rejected(_) => rejected += 1,
            Outcome::Ignored => ignored += 1,
        }
    }
    let m = p.metrics();
    let errors: u64 = EventError::ALL.iter().map(|e| m.errors(*e)).sum();
    assert_eq!(errors, rejected);
    let received: u64 = mqtt_disconnect_exporter::core::event::EventKind::COUNTED
        .iter()
        .map(|k| m.received(*k))
        .sum();
    assert_eq!(received, accepted);
    assert_eq!(m.ignored_log_lines(), ignored);
    assert!(ignored > 1_000, "{ignored} random log lines ignored");
    assert_eq!(accepted + rejected + ignored, 50_000);
    let text = exposition(&registry);
    assert_eq!(series(&text, "mqtt_client_disconnects_total"), 17);
    promtool_check(&text);
}
