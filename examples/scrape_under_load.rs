//! `/metrics` latency over real HTTP while the pipeline handles 100k events/s.
//!
//! Run: `cargo run --release --example scrape_under_load -- [seconds] [events_per_second]`.
//! One thread feeds the pipeline at the given rate (with 25 takeover-flapping
//! clients, so the top-20 series exist); the HTTP server runs on its own
//! runtime; the main thread scrapes every 10 ms and reports p50/p99/max.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqtt_disconnect_exporter::core::metrics::{self, Metrics};
use mqtt_disconnect_exporter::core::pipeline::{Pipeline, PipelineSettings};
use mqtt_disconnect_exporter::core::status::Status;
use mqtt_disconnect_exporter::edge::http;
use mqtt_disconnect_exporter::edge::shutdown;

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let rate: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);

    let registry = prometheus::Registry::new();
    metrics::register_process_collector(&registry).unwrap();
    let status = Arc::new(Status::new(registry.clone()));
    let web = http::metrics::WebMetrics::new(&registry).unwrap();
    let (trigger, stop) = shutdown::channel();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let server_status = Arc::clone(&status);
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            http::run(
                vec![listener],
                server_status,
                http::Settings {
                    listen: Vec::new(),
                    telemetry_path: "/metrics".into(),
                    web_config: None,
                },
                None,
                web,
                stop,
            )
            .await;
        });
    });

    let feeder_status = Arc::clone(&status);
    let feeder = std::thread::spawn(move || {
        let mut p = Pipeline::new(
            Metrics::new(&registry).unwrap(),
            PipelineSettings::default(),
        );
        let start = Instant::now();
        let t0 = 1_717_651_184_811i64;
        let mut sent = 0u64;
        let mut last_tick = Instant::now();
        while start.elapsed() < Duration::from_secs(seconds) {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            while sent < due {
                let t = t0 + (sent / 100) as i64;
                let (id, reason) = if sent % 100 == 0 {
                    (format!("conflict-{:02}", (sent / 100) % 25), "takenover")
                } else {
                    (
                        format!("device-{:07}", sent % 1_000_000),
                        "keepalive_timeout",
                    )
                };
                let payload = format!(
                    r#"{{"event":"client.disconnected","clientid":"{id}","reason":"{reason}","peername":"10.0.{}.{}:1883","disconnected_at":{t},"timestamp":{t}}}"#,
                    (sent >> 8) & 255,
                    sent & 255
                );
                p.handle(
                    b"emqx/events/client_disconnected",
                    payload.as_bytes(),
                    t + 5,
                );
                sent += 1;
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                feeder_status.set_snapshot(p.tick(t0 + (sent / 100) as i64, 1000));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        sent
    });

    std::thread::sleep(Duration::from_millis(1500));
    let mut latencies = Vec::new();
    let mut series = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds.saturating_sub(2).max(1)) {
        let t = Instant::now();
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        latencies.push(t.elapsed());
        series = body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count()
            - 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = feeder.join().unwrap();
    trigger.fire();
    server.join().unwrap();
    latencies.sort();
    let pct = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "events={sent} rate={:.0}/s scrapes={} series={series} p50={:?} p99={:?} max={:?}",
        sent as f64 / seconds as f64,
        latencies.len(),
        pct(0.50),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
}
