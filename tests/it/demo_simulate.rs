//! `demo` (embedded broker, nothing installed) and `simulate` against a real
//! Mosquitto, through the binary.

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{get, metric, Broker, Exporter};
use mqtt_disconnect_exporter::core::reasons::Reason;
use serde_json::Value;

#[test]
fn demo_shows_every_reason_and_a_takeover_flap_within_15_seconds() {
    let start = Instant::now();
    let demo = Exporter::start(&["demo"]);
    let port = demo.web_port;
    let mut last = String::new();
    loop {
        if let Ok((200, text)) = get(port, "/metrics") {
            let zero: Vec<&str> = Reason::all()
                .filter(|r| *r != Reason::Other)
                .map(|r| r.as_str())
                .filter(|r| {
                    metric(
                        &text,
                        &format!("mqtt_client_disconnects_total{{reason=\"{r}\"}}"),
                    )
                    .unwrap_or(0.0)
                        == 0.0
                })
                .collect();
            let flapping = metric(&text, "mqtt_flapping_clients{kind=\"takeover\"}").unwrap_or(0.0);
            // the landing page's list is refreshed every second
            let (_, page) = get(port, "/").unwrap();
            let listed = page.contains("<td>shared-id-00</td><td>takeover</td>");
            if zero.is_empty() && flapping >= 1.0 && listed {
                assert_eq!(metric(&text, "mqtt_exporter_broker_up"), Some(1.0));
                assert_eq!(
                    metric(&text, "mqtt_client_disconnects_total{reason=\"other\"}"),
                    Some(0.0)
                );
                return;
            }
            last =
                format!("zero: {zero:?}, takeover flapping: {flapping}, on landing page: {listed}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "demo did not reach the condition within 15 s: {last}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn the_exporter_counts_exactly_what_simulate_published() {
    let broker = Broker::start();
    let exporter = Exporter::start(&[
        "--mqtt.url",
        &broker.url(),
        "--mqtt.client-id",
        "it-simulate",
    ]);
    exporter.wait_ready();
    let out = Command::new(common::exporter_bin())
        .args(["simulate", "--mqtt.url", &broker.url()])
        .args([
            "--scenario",
            "conflict",
            "--rate",
            "300",
            "--clients",
            "500",
        ])
        .args(["--duration", "3s", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let published = summary["published"].as_u64().unwrap();
    assert_eq!(summary["acknowledged"].as_u64(), Some(published));
    // 3 s at 300/s with reconnects, plus ten conflicting IDs every 2 s
    assert!(published > 1000, "{summary}");

    let disconnects: BTreeMap<String, u64> =
        serde_json::from_value(summary["disconnects"].clone()).unwrap();
    let total: u64 = disconnects.values().sum();
    exporter.wait_value(
        "mqtt_exporter_events_received_total{kind=\"disconnected\"}",
        total as f64,
    );
    let text = exporter.metrics();
    for reason in Reason::all() {
        let want = disconnects.get(reason.as_str()).copied().unwrap_or(0);
        let series = format!("mqtt_client_disconnects_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&text, &series), Some(want as f64), "{series}");
    }
    let connects = summary["by_kind"]["client_connected"].as_u64().unwrap();
    assert_eq!(
        metric(&text, "mqtt_client_connects_total"),
        Some(connects as f64)
    );
    let subs = summary["by_kind"]["session_subscribed"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        metric(&text, "mqtt_session_subscriptions_total"),
        Some(subs as f64)
    );
    // ten IDs, each taken over every 2 s by two devices, but 3 s only gives
    // two takeovers per ID: below the threshold of 3, so nobody is flapping yet
    assert_eq!(
        metric(&text, "mqtt_flapping_clients{kind=\"takeover\"}"),
        Some(0.0)
    );
}
