//! End to end against a real Mosquitto broker on 127.0.0.1: fixtures in,
//! exact counters out over HTTP; bad input; takeover flapping; broker restart
//! (resubscribe, not a zombie); a persistent session across an exporter restart.

use crate::common;

use common::{disconnect, fixture, get, series, Broker, Exporter, FIXTURES, FIXTURE_FILTERS};
use mqtt_disconnect_exporter::core::clock::now_ms;

fn topic_args(filters: &[&str]) -> Vec<String> {
    filters
        .iter()
        .flat_map(|f| ["--mqtt.topic".to_string(), f.to_string()])
        .collect()
}

fn start_exporter(broker: &Broker, extra: &[&str]) -> Exporter {
    let mut args: Vec<String> = vec!["--mqtt.url".into(), broker.url()];
    args.extend(topic_args(FIXTURE_FILTERS));
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let exporter = Exporter::start(&refs);
    exporter.wait_ready();
    exporter
}

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn fixtures_from_every_source_are_counted_exactly() {
    let broker = Broker::start();
    let exporter = start_exporter(&broker, &["--mqtt.client-id", "it-fixtures"]);
    for f in FIXTURES {
        broker.publish(f.topic, &fixture(f.file), 1);
    }
    exporter.wait_value(
        "mqtt_exporter_events_received_total{kind=\"disconnected\"}",
        11.0,
    );
    exporter.wait_value("mqtt_exporter_events_received_total{kind=\"other\"}", 2.0);
    // every kind has arrived before anything is read (on a busy machine the
    // last fixtures may still be in flight when the disconnects are in)
    exporter.wait_value("mqtt_client_connects_total", 4.0);
    exporter.wait_value("mqtt_session_subscriptions_total", 3.0);
    exporter.wait_value("mqtt_event_delay_seconds_count", 20.0);
    let text = exporter.metrics();
    let v = |s: &str| common::metric(&text, s);
    // every filter granted, one series each
    let granted = common::series(&text, "mqtt_exporter_subscription_granted");
    assert_eq!(granted.len(), FIXTURE_FILTERS.len(), "{granted:?}");
    assert!(granted.iter().all(|l| l.ends_with(" 1")), "{granted:?}");
    assert_eq!(
        common::get(exporter.web_port, "/-/ready").unwrap(),
        (200, "Ready.\n".to_string())
    );
    assert_eq!(
        v("mqtt_client_disconnects_total{reason=\"keepalive_timeout\"}"),
        Some(3.0)
    );
    assert_eq!(
        v("mqtt_client_disconnects_total{reason=\"takeovered\"}"),
        Some(4.0)
    );
    assert_eq!(
        v("mqtt_client_disconnects_total{reason=\"too_many_connection\"}"),
        Some(1.0)
    );
    assert_eq!(
        v("mqtt_client_disconnects_total{reason=\"tcp_closed\"}"),
        Some(2.0)
    );
    assert_eq!(
        v("mqtt_client_disconnects_total{reason=\"go_away\"}"),
        Some(1.0)
    );
    assert_eq!(
        v("mqtt_client_disconnects_total{reason=\"not_authenticated\"}"),
        Some(1.0)
    );
    assert_eq!(
        v("mqtt_client_disconnects_total{reason=\"normal\"}"),
        Some(0.0)
    );
    assert_eq!(
        v("mqtt_client_disconnects_total{reason=\"other\"}"),
        Some(0.0)
    );
    assert_eq!(v("mqtt_client_connects_total"), Some(4.0));
    assert_eq!(v("mqtt_session_subscriptions_total"), Some(3.0));
    assert_eq!(v("mqtt_exporter_broker_up"), Some(1.0));
    assert_eq!(v("mqtt_flapping_clients{kind=\"takeover\"}"), Some(0.0));
    assert_eq!(v("mqtt_event_delay_seconds_count"), Some(20.0));
    // the closed set: 17 reason series from start, one info series per row
    assert_eq!(series(&text, "mqtt_client_disconnects_total").len(), 17);
    assert_eq!(series(&text, "mqtt_disconnect_reason_info").len(), 17);
    // build info: the commit and the compiler, as --version says them
    let info = series(&text, "mqtt_exporter_build_info");
    let version = std::process::Command::new(common::exporter_bin())
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    let field = |key: &str| {
        version
            .split(key)
            .nth(1)
            .and_then(|rest| rest.split([',', ')']).next())
            .unwrap()
            .to_string()
    };
    let (revision, rustc) = (field("revision "), field("rustc "));
    assert_eq!(
        info,
        [format!(
            "mqtt_exporter_build_info{{revision=\"{revision}\",rustversion=\"{rustc}\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )]
    );
    assert!(
        revision.len() == 12 && revision.chars().all(|c| c.is_ascii_hexdigit()),
        "{version}"
    );
    assert!(rustc.starts_with("1."), "{version}");
    let built = field("built ");
    assert_eq!(built.len(), 10, "{version}");
    assert_eq!(&built[..2], "20", "{version}");
    assert!(text.contains("process_resident_memory_bytes"));
}

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn bad_input_is_counted_and_creates_no_series() {
    let broker = Broker::start();
    let exporter = start_exporter(
        &broker,
        &[
            "--mqtt.client-id",
            "it-bad-input",
            "--event.max-payload-size",
            "2048",
        ],
    );
    let t = "$events/client_disconnected";
    broker.publish(t, b"{not json", 1);
    broker.publish(
        t,
        br#"{"event":"client.disconnected","reason":"normal"}"#,
        1,
    );
    broker.publish(t, br#"{"clientid":"c","event":"client.disconnected"}"#, 1);
    broker.publish(t, &[0xff, 0xfe, 0x7b, 0x7d], 1);
    let big = disconnect("c", "normal")
        .field("pad", "x".repeat(4096))
        .json();
    broker.publish(t, big.as_bytes(), 1);
    broker.publish(
        "emqx/events/whatever",
        br#"{"clientid":"c","reason":"normal"}"#,
        1,
    );
    // label-breaking reason strings map to other, never to a new series
    broker.publish(
        t,
        br#"{"clientid":"q\"uote\nnl","event":"client.disconnected","reason":"we\"ird\n{reason=\"x\"}"}"#,
        1,
    );
    exporter.wait_value("mqtt_client_disconnects_total{reason=\"other\"}", 1.0);
    for (error, want) in [
        ("invalid_json", 1.0),
        ("missing_field", 2.0),
        ("invalid_utf8", 1.0),
        ("too_large", 1.0),
        ("unknown_event", 1.0),
    ] {
        exporter.wait_value(
            &format!("mqtt_exporter_event_errors_total{{error=\"{error}\"}}"),
            want,
        );
    }
    let text = exporter.metrics();
    assert_eq!(series(&text, "mqtt_client_disconnects_total").len(), 17);
    assert_eq!(series(&text, "mqtt_exporter_event_errors_total").len(), 5);
    assert_eq!(
        common::metric(&text, "mqtt_client_disconnects_total{reason=\"normal\"}"),
        Some(0.0)
    );
    assert_eq!(common::metric(&text, "mqtt_exporter_broker_up"), Some(1.0));
}

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn takeover_flapping_is_detected_and_a_single_takeover_is_not() {
    let broker = Broker::start();
    let exporter = start_exporter(&broker, &["--mqtt.client-id", "it-flapping"]);
    let t0 = now_ms();
    for i in 0..4i64 {
        let peer = if i % 2 == 0 {
            "198.51.100.1:1111"
        } else {
            "198.51.100.2:2222"
        };
        let payload = disconnect("shared-id", "takenover")
            .peer(peer)
            .at(t0 + i * 1000)
            .json();
        broker.publish("emqx/events/client_disconnected", payload.as_bytes(), 1);
    }
    let solo = disconnect("self-repair", "takeovered")
        .peer("198.51.100.3:3333")
        .at(t0)
        .json();
    broker.publish("$events/client_disconnected", solo.as_bytes(), 1);

    exporter.wait_value("mqtt_client_disconnects_total{reason=\"takeovered\"}", 5.0);
    exporter.wait_value("mqtt_flapping_clients{kind=\"takeover\"}", 1.0);
    exporter.wait_value("mqtt_flapping_detections_total{kind=\"takeover\"}", 1.0);
    exporter.wait_value(
        "mqtt_client_flapping{clientid=\"shared-id\",kind=\"takeover\"}",
        4.0,
    );
    let text = exporter.metrics();
    assert_eq!(series(&text, "mqtt_client_flapping").len(), 1);
    assert_eq!(
        common::metric(&text, "mqtt_flapping_clients{kind=\"reconnect\"}"),
        Some(0.0)
    );

    let (code, body) = get(exporter.web_port, "/api/v1/flapping").unwrap();
    assert_eq!(code, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{body}");
    assert_eq!(list[0]["clientid"], "shared-id");
    assert_eq!(list[0]["kind"], "takeover");
    assert_eq!(list[0]["count"], 4);
    assert_eq!(list[0]["window_seconds"], 300.0);
    assert_eq!(
        list[0]["peers"],
        serde_json::json!(["198.51.100.1", "198.51.100.2"])
    );
    assert_eq!(list[0]["first_seen"], t0);
    assert_eq!(list[0]["last_seen"], t0 + 3000);

    let (code, page) = get(exporter.web_port, "/").unwrap();
    assert_eq!(code, 200);
    assert!(
        page.contains("<td>shared-id</td><td>takeover</td><td>4</td>"),
        "{page}"
    );
    // the single takeover is never a flap, and does not stand out among the
    // top devices either: it is counted among the devices of its reason
    // (its network may stand out, with it among the network's clients)
    let (flapping, top) = page.split_once("<h2>Top clients").unwrap();
    let (devices, _networks) = top.split_once("<h2>Top source networks").unwrap();
    assert!(!flapping.contains("self-repair"), "{page}");
    assert!(!devices.contains("self-repair"), "{page}");
}

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn broker_restart_reconnects_and_resubscribes() {
    let mut broker = Broker::start();
    let exporter = start_exporter(&broker, &["--mqtt.client-id", "it-restart"]);
    exporter.wait_value("mqtt_exporter_broker_up", 1.0);
    broker.stop();
    exporter.wait_value("mqtt_exporter_broker_up", 0.0);
    let (code, _) = get(exporter.web_port, "/-/ready").unwrap();
    assert_eq!(code, 503);
    // a fresh broker with no memory of the session: only a resubscribe delivers
    broker.restart();
    exporter.wait_value("mqtt_exporter_broker_up", 1.0);
    exporter.wait_value("mqtt_exporter_broker_reconnects_total", 1.0);
    exporter.wait_ready();
    broker.publish(
        "$events/client_disconnected",
        &fixture("tdmq/client_disconnected_keepalive_timeout.json"),
        1,
    );
    exporter.wait_value(
        "mqtt_client_disconnects_total{reason=\"keepalive_timeout\"}",
        1.0,
    );
}

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn events_queued_while_the_exporter_is_stopped_are_counted_after_restart() {
    let broker = Broker::start();
    let args = ["--mqtt.client-id", "it-persistent"];
    let mut exporter = start_exporter(&broker, &args);
    let status = exporter.stop();
    assert!(status.success(), "exporter exit: {status:?}");

    let lines: Vec<String> = (0..50)
        .map(|i| disconnect(&format!("queued-{i}"), "keepalive_timeout").json())
        .collect();
    broker.publish_lines("$events/client_disconnected", &lines, 1);

    let exporter = start_exporter(&broker, &args);
    exporter.wait_value(
        "mqtt_client_disconnects_total{reason=\"keepalive_timeout\"}",
        50.0,
    );
    assert_eq!(
        exporter.value("mqtt_exporter_broker_reconnects_total"),
        Some(0.0)
    );
}
