//! Brokers that speak only MQTT 3.1.1 (Mosquitto 1.5, RabbitMQ before 3.13,
//! ActiveMQ Classic): the closest real one here is rumqttd with only a v4
//! listener, which closes a version-5 CONNECT without a CONNACK. The
//! exporter, with the default `--mqtt.protocol auto`, must fall back to
//! 3.1.1, count exactly, say so in the log and in
//! `mqtt_exporter_broker_protocol`, and reconnect in 3.1.1 after the
//! connection is cut (by a proxy between the two that the test controls).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqtt_disconnect_exporter::edge::mqtt::session::Protocol;
use mqtt_disconnect_exporter::tools::sim::demo::start_broker;

use crate::common::in_process::InProcess;
use crate::common::{disconnect, get, metric, wait_for, Exporter};

/// rumqttd with one MQTT 3.1.1 listener on a free port (the demo's
/// embedded broker, in that version), as long as the test binary runs.
fn v4_only_broker() -> SocketAddr {
    start_broker(Protocol::V311).unwrap()
}

/// A TCP proxy in front of `upstream` whose open connections the test can
/// cut, as a broker restart or a network drop does.
struct Proxy {
    port: u16,
    /// Both ends of every connection let through, in order.
    open: Arc<Mutex<Vec<TcpStream>>>,
    /// Bytes forwarded from the exporter to the broker.
    up: Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let kept = Arc::clone(&open);
        let up: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let counted = Arc::clone(&up);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let mut list = kept.lock().unwrap();
                for end in [&client, &server] {
                    list.push(end.try_clone().unwrap());
                }
                drop(list);
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    Some(Arc::clone(&counted)),
                );
                pipe(server, client, None);
            }
        });
        Proxy { port, open, up }
    }

    /// Bytes forwarded from the exporter to the broker so far.
    fn up(&self) -> u64 {
        self.up.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections let through so far.
    fn accepted(&self) -> usize {
        self.open.lock().unwrap().len() / 2
    }

    /// Closes every connection through the proxy; new ones are let through.
    fn cut(&self) {
        for s in self.open.lock().unwrap().iter() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<std::sync::atomic::AtomicU64>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
            if let Some(count) = &count {
                count.fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// Publishes `payloads` on `topic` at QoS 1 with rumqttc's 3.1.1 client,
/// and returns once the broker acknowledged them all.
fn publish_v311(broker: SocketAddr, topic: &str, payloads: &[String]) {
    let mut options =
        rumqttc::MqttOptions::new("publisher-311", broker.ip().to_string(), broker.port());
    options.set_keep_alive(Duration::from_secs(10));
    let (client, mut connection) = rumqttc::Client::new(options, payloads.len() + 10);
    for p in payloads {
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, p.as_bytes())
            .unwrap();
    }
    let mut acked = 0;
    for event in connection.iter() {
        match event {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                acked += 1;
                if acked == payloads.len() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => panic!("publishing to the v4-only broker: {e} ({acked} acked)"),
        }
    }
    let _ = client.disconnect();
}

fn log_of(exporter: &Exporter) -> String {
    std::fs::read_to_string(&exporter.log).unwrap_or_default()
}

#[test]
fn auto_falls_back_to_3_1_1_counts_exactly_and_reconnects() {
    let broker = v4_only_broker();
    let proxy = Proxy::start(broker);
    let url = format!("mqtt://127.0.0.1:{}", proxy.port);
    let exporter = Exporter::start(&[
        "--mqtt.url",
        &url,
        "--mqtt.client-id",
        "exporter-311",
        "--mqtt.topic",
        "fleet/events/#",
    ]);
    exporter.wait_ready();
    assert_eq!(
        exporter.value(r#"mqtt_exporter_broker_protocol{version="3.1.1"}"#),
        Some(1.0)
    );
    assert_eq!(
        exporter.value(r#"mqtt_exporter_broker_protocol{version="5"}"#),
        Some(0.0)
    );
    let log = log_of(&exporter);
    let said = log
        .lines()
        .filter(|l| l.contains("the broker refused MQTT 5; speaking MQTT 3.1.1"))
        .count();
    assert_eq!(said, 1, "{log}");
    assert!(
        log.contains("trying MQTT 3.1.1 (--mqtt.protocol auto)"),
        "{log}"
    );

    let first: Vec<String> = (0..7)
        .map(|i| disconnect(&format!("dev-{i}"), "keepalive_timeout").json())
        .collect();
    let before = proxy.up();
    publish_v311(broker, "fleet/events/client_disconnected", &first);
    exporter.wait_value(
        r#"mqtt_client_disconnects_total{reason="keepalive_timeout"}"#,
        7.0,
    );
    // the cut comes once the 7 PUBACKs (4 bytes each in 3.1.1) have passed
    // the proxy: a cut before them makes the broker resend the 7 on the
    // resumed session, and rumqttd resends without DUP, so they would
    // count again (an MQTT 3.1.1 broker's resend with DUP is counted once:
    // edge/mqtt/redelivery.rs)
    wait_for(
        "the PUBACKs to reach the broker",
        Duration::from_secs(20),
        || (proxy.up() >= before + 7 * 4).then_some(()),
    );

    // cut the connection: the exporter reconnects, in 3.1.1 at once
    // one MQTT 5 attempt, closed by the broker, then one in 3.1.1
    assert_eq!(proxy.accepted(), 2, "connections through the proxy");
    proxy.cut();
    exporter.wait_value("mqtt_exporter_broker_reconnects_total", 1.0);
    exporter.wait_ready();
    let second: Vec<String> = (0..3)
        .map(|i| disconnect(&format!("dev-{i}"), "takeovered").json())
        .collect();
    publish_v311(broker, "fleet/events/client_disconnected", &second);
    exporter.wait_value(r#"mqtt_client_disconnects_total{reason="takeovered"}"#, 3.0);
    assert_eq!(
        exporter.value(r#"mqtt_client_disconnects_total{reason="keepalive_timeout"}"#),
        Some(7.0)
    );
    assert_eq!(
        exporter.value(r#"mqtt_exporter_broker_protocol{version="3.1.1"}"#),
        Some(1.0)
    );
    assert_eq!(
        proxy.accepted(),
        3,
        "the reconnect is one connection, in 3.1.1"
    );
    let log = log_of(&exporter);
    let fallbacks = log.lines().filter(|l| l.contains("trying MQTT")).count();
    assert_eq!(fallbacks, 1, "the reconnect stays in 3.1.1:\n{log}");
}

/// In process: the status the sources report is read directly.
#[test]
fn mqtt_5_only_is_not_ready_against_a_3_1_1_broker_and_says_why() {
    let broker = v4_only_broker();
    let url = format!("mqtt://{broker}");
    let exporter = InProcess::start(&[
        "--mqtt.url",
        &url,
        "--mqtt.client-id",
        "exporter-5-only",
        "--mqtt.topic",
        "fleet/events/#",
        "--mqtt.protocol",
        "5",
        "--web.listen-address",
        "127.0.0.1:0",
    ]);
    let why = wait_for("a connection error", Duration::from_secs(20), || {
        exporter.status.last_error()
    });
    assert!(why.contains("onnection"), "{why}");
    assert!(!exporter.status.is_ready());
    let port = exporter.addresses[0].port();
    let (code, body) = get(port, "/-/ready").unwrap();
    assert_eq!(code, 503, "{body}");
    let (_, metrics) = get(port, "/metrics").unwrap();
    assert_eq!(
        metric(&metrics, r#"mqtt_exporter_broker_protocol{version="5"}"#),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics,
            r#"mqtt_exporter_broker_protocol{version="3.1.1"}"#
        ),
        Some(0.0)
    );
    assert_eq!(metric(&metrics, "mqtt_exporter_broker_up"), Some(0.0));
}
