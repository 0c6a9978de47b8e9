//! HTTP abuse: a thousand idle connections and a slowloris client must not
//! stop a scrape, and the slowloris is cut off by the header timeout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{get, Broker, Exporter};

#[test]
fn idle_connections_and_slowloris_do_not_stop_scrapes() {
    let broker = Broker::start();
    let exporter = Exporter::start(&["--mqtt.url", &broker.url(), "--mqtt.client-id", "it-abuse"]);
    let port = exporter.web_port;

    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();

    // slowloris: a request line, then one header byte every 300 ms
    let cut_off = Arc::new(AtomicBool::new(false));
    let slow = {
        let cut_off = Arc::clone(&cut_off);
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                if s.write_all(b"a").is_err() {
                    break;
                }
                let mut buf = [0u8; 256];
                match s.read(&mut buf) {
                    Ok(0) => break, // closed by the server
                    Ok(_) => break, // answered (e.g. 408): also cut off
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        continue
                    }
                    Err(_) => break,
                }
            }
            cut_off.store(start.elapsed() < Duration::from_secs(30), Ordering::SeqCst);
        })
    };

    for _ in 0..20 {
        let (code, body) = get(port, "/metrics").unwrap();
        assert_eq!(code, 200);
        assert!(body.contains("mqtt_client_disconnects_total{reason=\"normal\"} 0"));
    }
    slow.join().unwrap();
    assert!(
        cut_off.load(Ordering::SeqCst),
        "the slowloris client was never cut off"
    );
    let (code, _) = get(port, "/-/healthy").unwrap();
    assert_eq!(code, 200);
    drop(idle);
}
