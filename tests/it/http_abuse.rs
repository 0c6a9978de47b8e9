//! HTTP abuse: one host that holds and re-opens thousands of idle and
//! slowloris connections must not starve Prometheus's scrapes from another
//! address, and a connection that never sends a request is closed early.

use crate::common;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{metric, Broker, Exporter};
use tokio::io::AsyncReadExt;

const IDLE: usize = 2_000;
const SLOWLORIS: usize = 1_000;
const ATTACK: Duration = Duration::from_secs(20);

/// Connects from 127.0.0.2, so the attacker is one peer apart from the scraper.
async fn connect(port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind("127.0.0.2:0".parse().unwrap())?;
    socket.connect(([127, 0, 0, 1], port).into()).await
}

/// Holds a connection open without a request; re-opens it when closed.
async fn idle(port: u16, until: Instant) {
    while Instant::now() < until {
        if let Ok(mut s) = connect(port).await {
            let mut buf = [0u8; 64];
            let left = until.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(left, s.read(&mut buf)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn one_host_holding_thousands_of_connections_cannot_starve_scrapes() {
    let broker = Broker::start();
    let exporter = Exporter::start(&["--mqtt.url", &broker.url(), "--mqtt.client-id", "it-abuse"]);
    let port = exporter.web_port;

    let until = Instant::now() + ATTACK;
    let attack = common::Attack::start(move || {
        let mut tasks: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> =
            Vec::new();
        for _ in 0..IDLE {
            tasks.push(Box::pin(idle(port, until)));
        }
        for _ in 0..SLOWLORIS {
            tasks.push(Box::pin(common::slowloris([127, 0, 0, 2], port, until)));
        }
        tasks
    });

    // give the attacker a head start, then scrape as Prometheus would
    std::thread::sleep(Duration::from_secs(2));
    let scrapes = 30;
    let ok = common::scrapes_served(port, scrapes, Duration::from_millis(500));
    attack.join();
    assert!(
        ok * 100 >= scrapes * 95,
        "only {ok} of {scrapes} scrapes succeeded"
    );

    // the attack did reach the limits it claims to test
    let text = exporter.metrics();
    let closed = |cause: &str| {
        metric(
            &text,
            &format!(r#"mqtt_exporter_http_connections_closed_total{{cause="{cause}"}}"#),
        )
        .unwrap()
    };
    assert!(
        closed("peer_limit") >= (IDLE + SLOWLORIS - 64) as f64,
        "{text}"
    );
    assert!(closed("no_request") >= 1.0);
    assert_eq!(closed("connection_limit"), 0.0);
}

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn a_connection_that_sends_nothing_is_closed_before_the_header_timeout() {
    let broker = Broker::start();
    let exporter = Exporter::start(&["--mqtt.url", &broker.url(), "--mqtt.client-id", "it-idle"]);
    let mut s = TcpStream::connect(("127.0.0.1", exporter.web_port)).unwrap();
    // the old behaviour held it for the 10 s header timeout
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap(), 0, "closed without a response");
    let text = exporter.metrics();
    assert_eq!(
        metric(
            &text,
            r#"mqtt_exporter_http_connections_closed_total{cause="no_request"}"#
        ),
        Some(1.0)
    );
}

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn a_method_other_than_get_is_refused_with_allow() {
    use std::io::Write;
    let broker = Broker::start();
    let exporter = Exporter::start(&["--mqtt.url", &broker.url(), "--mqtt.client-id", "it-405"]);
    let mut s = TcpStream::connect(("127.0.0.1", exporter.web_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /metrics HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let head = raw.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.0 405"), "{raw}");
    assert!(head.contains("\r\nallow: get, head"), "{raw}");
}
