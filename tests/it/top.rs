//! Top clients per reason through a real Mosquitto: the metric series, the
//! `/api/v1/top` JSON and the landing page name the devices that stand out
//! behind a spike, and only those; a reason where none stands out says so.

use crate::common;

use common::{disconnect, get, series, Broker, Exporter};
use mqtt_disconnect_exporter::core::clock::now_ms;
use serde_json::Value;

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn the_devices_behind_a_spike_are_named_three_ways() {
    let broker = Broker::start();
    let exporter = Exporter::start(&[
        "--mqtt.url",
        &broker.url(),
        "--mqtt.client-id",
        "it-top",
        "--mqtt.topic",
        "$events/#",
        "--top.clients",
        "3",
    ]);
    exporter.wait_ready();
    let t = now_ms();
    let mut lines = Vec::new();
    for (id, n, peer) in [
        ("gw-a", 9, "198.51.100.7:5000"),
        ("gw-b", 6, "198.51.100.8:5000"),
        ("gw-c", 4, "198.51.100.9:5000"),
    ] {
        for _ in 0..n {
            lines.push(disconnect(id, "keepalive_timeout").peer(peer).at(t).json());
        }
    }
    for i in 0..30 {
        lines.push(
            disconnect(&format!("dev-{i}"), "keepalive_timeout")
                .at(t)
                .json(),
        );
    }
    lines.push(disconnect("gw-a", "tcp_closed").at(t).json());
    broker.publish_lines("$events/client_disconnected", &lines, 1);
    exporter.wait_value(
        "mqtt_client_top_disconnects{clientid=\"gw-a\",reason=\"keepalive_timeout\"}",
        9.0,
    );

    let text = exporter.metrics();
    let mut top = series(&text, "mqtt_client_top_disconnects");
    top.sort();
    assert_eq!(
        top,
        [
            "mqtt_client_top_disconnects{clientid=\"gw-a\",reason=\"keepalive_timeout\"} 9",
            "mqtt_client_top_disconnects{clientid=\"gw-b\",reason=\"keepalive_timeout\"} 6",
            "mqtt_client_top_disconnects{clientid=\"gw-c\",reason=\"keepalive_timeout\"} 4",
        ]
    );
    let mut devices = series(&text, "mqtt_client_disconnecting_clients");
    devices.retain(|s| !s.ends_with(" 0"));
    devices.sort();
    assert_eq!(
        devices,
        [
            "mqtt_client_disconnecting_clients{reason=\"keepalive_timeout\"} 33",
            "mqtt_client_disconnecting_clients{reason=\"tcp_closed\"} 1",
        ]
    );

    let (code, body) = get(exporter.web_port, "/api/v1/top?reason=keepalive_timeout").unwrap();
    assert_eq!(code, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["window_seconds"], 300.0);
    let reasons = json["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0]["reason"], "keepalive_timeout");
    assert_eq!(reasons[0]["devices"], 33);
    let clients = reasons[0]["clients"].as_array().unwrap();
    // the three that stand out; the 30 one-off devices never are listed
    assert_eq!(clients.len(), 3);
    assert_eq!(clients[0]["clientid"], "gw-a");
    assert_eq!(clients[0]["count"], 9);
    assert_eq!(clients[0]["error"], 0);
    assert_eq!(clients[0]["peers"], serde_json::json!(["198.51.100.7"]));
    assert_eq!(clients[0]["last_seen"].as_i64().map(|s| s >= t), Some(true));
    assert_eq!(clients[2]["clientid"], "gw-c");
    assert_eq!(clients[2]["count"], 4);

    let (_, all) = get(exporter.web_port, "/api/v1/top").unwrap();
    let all: Value = serde_json::from_str(&all).unwrap();
    let names: Vec<&str> = all["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["reason"].as_str())
        .collect();
    assert_eq!(names, ["keepalive_timeout", "tcp_closed"]);

    let (code, body) = get(exporter.web_port, "/api/v1/top?reason=kicked").unwrap();
    assert_eq!(
        (code, body.as_str()),
        (
            200,
            r#"{"window_seconds":300.0,"reasons":[{"reason":"kicked","devices":0,"saturated":false,"clients":[],"networks":[],"nodes":[]}]}"#
        )
    );
    let (code, _) = get(exporter.web_port, "/api/v1/top?reason=no_such").unwrap();
    assert_eq!(code, 400);

    // the three gateways share one source network: one line, with some of
    // its devices; the 30 devices with no address have no network
    let networks = json["reasons"][0]["networks"].as_array().unwrap();
    assert_eq!(networks.len(), 1, "{body}");
    assert_eq!(networks[0]["network"], "198.51.100.0/24");
    assert_eq!(networks[0]["count"], 19);
    assert_eq!(networks[0]["error"], 0);
    assert_eq!(
        networks[0]["clients"],
        serde_json::json!(["gw-a", "gw-b", "gw-c"])
    );
    assert_eq!(
        series(&text, "mqtt_network_top_disconnects"),
        ["mqtt_network_top_disconnects{network=\"198.51.100.0/24\",reason=\"keepalive_timeout\"} 19"]
    );

    let (_, page) = get(exporter.web_port, "/").unwrap();
    assert!(
        page.contains("<td>198.51.100.0/24</td><td>19</td><td>gw-a, gw-b, gw-c</td></tr>"),
        "{page}"
    );
    assert!(
        page.contains("<tr><td><a href=\"/api/v1/top?reason=keepalive_timeout\">keepalive_timeout</a></td><td>gw-a</td><td>9</td><td>198.51.100.7</td></tr>"),
        "{page}"
    );
    assert!(
        page.contains("<tr><td><a href=\"/api/v1/top?reason=tcp_closed\">tcp_closed</a></td><td colspan=\"3\">no single device stands out: 1 device, at most 2 disconnects each</td></tr>"),
        "{page}"
    );
}
