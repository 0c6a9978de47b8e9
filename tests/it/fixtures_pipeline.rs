//! Every captured fixture through the pure pipeline: no sockets, exact counts.

use crate::common;
use mqtt_disconnect_exporter::core::flapping::FlapKind;

use common::{fixture, FIXTURES};
use mqtt_disconnect_exporter::core::event::EventKind;
use mqtt_disconnect_exporter::core::metrics::Metrics;
use mqtt_disconnect_exporter::core::pipeline::{Outcome, Pipeline, PipelineSettings};
use mqtt_disconnect_exporter::core::reasons::Reason;
use prometheus::Registry;

fn pipeline() -> Pipeline {
    Pipeline::new(
        Metrics::new(&Registry::new()).unwrap(),
        PipelineSettings::default(),
    )
}

#[test]
fn each_fixture_maps_to_its_reason() {
    for f in FIXTURES {
        let mut p = pipeline();
        let out = p.handle(f.topic.as_bytes(), &fixture(f.file), 1_717_651_200_000);
        let Outcome::Accepted { kind, reason, .. } = out else {
            panic!("{}: rejected: {out:?}", f.file);
        };
        assert_eq!(kind.label(), f.kind, "{}", f.file);
        assert_eq!(reason.map(|r| r.as_str()), f.reason, "{}", f.file);
    }
}

#[test]
fn all_fixtures_together_give_exact_totals() {
    let mut p = pipeline();
    for f in FIXTURES {
        p.handle(f.topic.as_bytes(), &fixture(f.file), 1_717_651_200_000);
    }
    let m = p.metrics();
    let want = [
        (Reason::KeepaliveTimeout, 3),
        (Reason::Takeovered, 4),
        (Reason::TooManyConnection, 1),
        (Reason::TcpClosed, 2),
        (Reason::GoAway, 1),
        (Reason::NotAuthenticated, 1),
    ];
    for reason in Reason::all() {
        let expected = want
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n);
        assert_eq!(m.disconnects(reason), expected, "{reason}");
    }
    assert_eq!(m.connects(), 4);
    assert_eq!(m.subscriptions(), 3);
    assert_eq!(m.received(EventKind::Disconnected), 11);
    assert_eq!(m.received(EventKind::Connected), 4);
    assert_eq!(m.received(EventKind::Subscribed), 3);
    assert_eq!(m.received(EventKind::Other), 2);
    // four different client IDs took over once each: nobody is flapping
    assert_eq!(m.flapping(FlapKind::Takeover).0, 0);
}

/// NanoMQ publishes on `$SYS`, which Mosquitto does not let a client publish
/// to, so its captured formats are checked here only.
#[test]
fn nanomq_events_count_under_their_reasons() {
    let mut p = pipeline();
    for (topic, file) in [
        ("$SYS/brokers/connected", "nanomq/connected.json"),
        ("$SYS/brokers/disconnected", "nanomq/disconnected_8b.json"),
        (
            "$SYS/brokers/client_status/nanomq-8a2a5c2e",
            "nanomq/client_status_offline_8e.json",
        ),
    ] {
        let out = p.handle(topic.as_bytes(), &fixture(file), 1_691_225_609_000);
        assert!(matches!(out, Outcome::Accepted { .. }), "{file}: {out:?}");
    }
    let m = p.metrics();
    assert_eq!(m.connects(), 1);
    assert_eq!(m.disconnects(Reason::GoAway), 1); // 0x8B server shutting down
    assert_eq!(m.disconnects(Reason::Takeovered), 1); // 0x8E session taken over
    assert_eq!(m.received(EventKind::Disconnected), 2);
    assert_eq!(m.disconnects(Reason::Other), 0);
}
