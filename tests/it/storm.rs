//! The storm an incident brings: 200,000 client IDs each taken over three
//! times, through a real Mosquitto whose queue is large enough to drop
//! nothing. Every event must be counted, the exporter must go quiet once the
//! storm is over, and a later burst must be counted whole too.

use crate::common;

use std::time::Duration;

use common::{disconnect, get, series, wait_for, Broker, Exporter};

const CLIENTS: usize = 200_000;
/// Clients per `mosquitto_pub -l` run: three events each, about 10k lines.
const CHUNK: usize = 3_334;

fn takeover(c: usize, round: usize) -> String {
    let peer = format!("10.{round}.{}.{}:1883", c / 256 % 256, c % 256);
    disconnect(&format!("storm-{c:06}"), "takenover")
        .peer(&peer)
        .json()
}

/// CPU seconds (user + system) the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // fields after the parenthesised command name; utime and stime are 14 and 15
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    ticks as f64 / hz
}

/// Resident memory of the process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn takeovers(e: &Exporter) -> f64 {
    e.value(r#"mqtt_client_disconnects_total{reason="takeovered"}"#)
        .unwrap_or(0.0)
}

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn a_mass_takeover_storm_is_counted_exactly_and_leaves_the_exporter_idle() {
    let broker = Broker::start();
    let exporter = Exporter::subscribed(&broker, "storm-exporter", "$events/#");

    let topic = "$events/client_disconnected";
    let started = std::time::Instant::now();
    for start in (0..CLIENTS).step_by(CHUNK) {
        let end = (start + CHUNK).min(CLIENTS);
        let lines: Vec<String> = (0..3)
            .flat_map(|round| (start..end).map(move |c| takeover(c, round)))
            .collect();
        broker.publish_lines(topic, &lines, 1);
    }
    let published = 3.0 * CLIENTS as f64;
    wait_for("every storm event", Duration::from_secs(180), || {
        (takeovers(&exporter) >= published).then_some(())
    });

    eprintln!(
        "storm: {published} events published and counted in {:.1} s; exporter RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        rss_mib(exporter.pid())
    );
    let text = exporter.metrics();
    let value = |s: &str| common::metric(&text, s);
    assert_eq!(
        value(r#"mqtt_client_disconnects_total{reason="takeovered"}"#),
        Some(published)
    );
    assert_eq!(
        value(r#"mqtt_exporter_events_received_total{kind="disconnected"}"#),
        Some(published)
    );
    assert_eq!(
        value(r#"mqtt_flapping_detections_total{kind="takeover"}"#),
        Some(CLIENTS as f64)
    );
    for error in ["invalid_json", "missing_field", "too_large", "invalid_utf8"] {
        let s = format!(r#"mqtt_exporter_event_errors_total{{error="{error}"}}"#);
        assert_eq!(value(&s), Some(0.0), "{s}");
    }
    // the gauges and lists follow within a tick
    wait_for("the flapping gauge", Duration::from_secs(10), || {
        (exporter.value(r#"mqtt_flapping_clients{kind="takeover"}"#) == Some(CLIENTS as f64))
            .then_some(())
    });
    assert_eq!(
        series(&exporter.metrics(), "mqtt_client_flapping").len(),
        20
    );
    let (code, body) = get(exporter.web_port, "/api/v1/flapping").unwrap();
    assert_eq!(code, 200);
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.len(), 1000);
    assert_eq!(list[0]["clientid"], "storm-000000");
    assert_eq!(list[0]["count"], 3);
    assert_eq!(list[0]["peers"].as_array().map(Vec::len), Some(3));

    // with 200,000 clients flapping and no traffic, the exporter idles
    std::thread::sleep(Duration::from_secs(3));
    let pid = exporter.pid();
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(6));
    let used = cpu_seconds(pid) - before;
    eprintln!(
        "idle CPU after the storm: {used:.3} s in 6 s; RSS {:.0} MiB",
        rss_mib(pid)
    );
    assert!(
        used < 0.05 * 6.0,
        "the idle exporter used {used:.2} CPU seconds in 6 s with {CLIENTS} clients flapping"
    );

    // a later burst, while they are all still flapping, is counted whole
    let burst = 100_000;
    for start in (0..burst).step_by(10_000) {
        let lines: Vec<String> = (start..start + 10_000)
            .map(|i| disconnect(&format!("burst-{i}"), "keepalive_timeout").json())
            .collect();
        broker.publish_lines(topic, &lines, 1);
    }
    let series = r#"mqtt_client_disconnects_total{reason="keepalive_timeout"}"#;
    exporter.wait_value(series, burst as f64);
    assert_eq!(takeovers(&exporter), published);
}
