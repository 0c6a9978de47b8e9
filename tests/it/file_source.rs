//! The file source (`--file.path`): a real Mosquitto writing its log to a
//! real file (`log_dest file`), rotated as logrotate does while a storm of
//! real clients runs, and counted exactly; and, in process, a file that
//! does not exist yet.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::common::in_process::InProcess;
use crate::common::{get_at, metric, wait_for, Broker, Exporter};
use crate::mosquitto_log::{connect, disconnect};

/// `count` clients `prefix-<i>` connect; the even ones leave cleanly
/// (`normal`), the odd ones drop their socket (`tcp_closed`).
fn storm(port: u16, prefix: &str, count: usize) {
    for i in 0..count {
        storm_one(port, prefix, i);
    }
}

/// As [`storm`], until `stop` is set; returns how many clients it ran.
fn storm_until(port: u16, prefix: &str, stop: &std::sync::atomic::AtomicBool) -> usize {
    let mut count = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        storm_one(port, prefix, count);
        count += 1;
    }
    count
}

fn storm_one(port: u16, prefix: &str, i: usize) {
    let (s, rc) = connect(port, &format!("{prefix}-{i}"), None);
    assert_eq!(rc, 0, "CONNACK of {prefix}-{i}");
    if i % 2 == 0 {
        disconnect(s);
    } else {
        drop(s);
    }
}

/// Lines of `file` that end a client's connection in the storm.
fn ended_in(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.contains("Client storm-")
                && (l.ends_with(" disconnected.") || l.ends_with(" closed its connection."))
        })
        .count()
}

#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn mosquittos_log_file_is_followed_across_rotations_exactly() {
    let broker = Broker::prepare();
    let log = broker.dir.join("mosquitto-file.log");
    // `user root`: Mosquitto started as root would drop to the mosquitto
    // user, who cannot write to the test's directory
    let broker = broker.start_prepared(&format!(
        "user root\nlog_dest file {}\nlog_type notice\nlog_type information\n",
        log.display()
    ));
    // lines from before the exporter started are not counted: it reads
    // from the end
    storm(broker.port, "before", 4);
    wait_for(
        "the broker to log the first clients",
        Duration::from_secs(10),
        || {
            (std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("Client before-")
                .count()
                == 4)
                .then_some(())
        },
    );
    let path = log.to_str().unwrap();
    let exporter = Exporter::start(&["--mqtt.disable", "--file.path", path]);
    exporter.wait_ready();
    let (code, body) = crate::common::get(exporter.web_port, "/-/ready").unwrap();
    assert_eq!((code, body.starts_with("Ready.")), (200, true), "{body}");
    assert_eq!(exporter.value("mqtt_client_connects_total"), Some(0.0));

    // a storm, rotated by rename and create while it runs
    let port = broker.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = std::sync::Arc::clone(&stop);
    let first = std::thread::spawn(move || storm_until(port, "storm-a", &stopped));
    wait_for("the storm to be under way", Duration::from_secs(30), || {
        exporter
            .value("mqtt_client_connects_total")
            .filter(|n| *n >= 1000.0)
    });
    let rotated = broker.dir.join("mosquitto-file.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    std::fs::File::create(&log).unwrap();
    // the broker writes on to the renamed file until its SIGHUP
    wait_for(
        "the broker to write on to the renamed file",
        Duration::from_secs(30),
        || {
            let before = ended_in(&rotated);
            std::thread::sleep(Duration::from_millis(100));
            (ended_in(&rotated) > before).then_some(())
        },
    );
    broker.signal("HUP");
    wait_for(
        "the broker to write to the new file",
        Duration::from_secs(30),
        || (ended_in(&log) >= 1000).then_some(()),
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let first = first.join().unwrap();
    let a_old = ended_in(&rotated);
    let a_new = ended_in(&log);
    assert_eq!(a_old + a_new, first, "the broker logged {a_old} + {a_new}");
    const SECOND: usize = 1000;
    let total = (first + SECOND) as f64;
    let normal = r#"mqtt_client_disconnects_total{reason="normal"}"#;
    let closed = r#"mqtt_client_disconnects_total{reason="tcp_closed"}"#;
    // the even clients leave cleanly, the odd ones drop
    let (clean, dropped) = (first.div_ceil(2), first / 2);
    exporter.wait_value(normal, clean as f64);
    exporter.wait_value(closed, dropped as f64);

    // copytruncate, between two storms: logrotate's copy, then truncation
    std::fs::copy(&log, broker.dir.join("mosquitto-file.log.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    storm(broker.port, "storm-b", SECOND);
    let (clean, dropped) = ((clean + SECOND / 2) as f64, (dropped + SECOND / 2) as f64);
    exporter.wait_value(normal, clean);
    exporter.wait_value(closed, dropped);
    // settled: nothing read twice
    std::thread::sleep(Duration::from_secs(1));
    let text = exporter.metrics();
    let v = |s: &str| metric(&text, s);
    assert_eq!(v(normal), Some(clean), "{text}");
    assert_eq!(v(closed), Some(dropped));
    assert_eq!(v("mqtt_client_connects_total"), Some(total));
    // each connection's connect line is joined with its disconnect line:
    // every one lived under a second (Mosquitto logs whole seconds)
    assert_eq!(
        v(r#"mqtt_client_connection_duration_seconds_count{reason="normal"}"#),
        Some(clean)
    );
    assert_eq!(
        v(r#"mqtt_client_connection_duration_seconds_bucket{reason="normal",le="1"}"#),
        Some(clean)
    );
    assert_eq!(
        v(&format!(
            r#"mqtt_exporter_file_rotations_total{{how="renamed",path="{path}"}}"#
        )),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        v(&format!(
            r#"mqtt_exporter_file_rotations_total{{how="truncated",path="{path}"}}"#
        )),
        Some(1.0)
    );
    assert_eq!(
        v(&format!(r#"mqtt_exporter_file_open{{path="{path}"}}"#)),
        Some(1.0)
    );
    assert_eq!(
        v(r#"mqtt_exporter_event_errors_total{error="invalid_json"}"#),
        Some(0.0)
    );
}

#[test]
fn a_file_that_does_not_exist_yet_is_waited_for_and_long_lines_are_counted() {
    let dir = std::env::temp_dir().join(format!("mde-file-source-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("later.log");
    let path = log.to_str().unwrap();
    let exporter = InProcess::start(&[
        "--mqtt.disable",
        "--file.path",
        path,
        "--event.max-payload-size",
        "200",
        "--web.listen-address",
        "127.0.0.1:0",
    ]);
    let at = exporter.addresses[0];
    let (code, body) = wait_for(
        "the file source to say it waits",
        Duration::from_secs(20),
        || {
            get_at(at, "/-/ready")
                .ok()
                .filter(|(_, b)| b.contains("waiting"))
        },
    );
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        body,
        format!("Not ready:\n- file {path}: waiting for {path} to exist.\n")
    );
    let mut f = std::fs::File::create(&log).unwrap();
    writeln!(
        f,
        "1795837147: New client connected from 10.0.0.7:51234 as gw-1 (p2, c1, k60)."
    )
    .unwrap();
    writeln!(
        f,
        "1795837148: Client gw-1 has exceeded timeout, disconnecting."
    )
    .unwrap();
    writeln!(f, "1795837149: Client {} disconnected.", "x".repeat(300)).unwrap();
    writeln!(
        f,
        r#"{{"event":"client.disconnected","clientid":"gw-2","reason":"takenover"}}"#
    )
    .unwrap();
    write!(f, "1795837150: Client gw-3 closed its conn").unwrap();
    f.flush().unwrap();
    let scrape = || get_at(at, "/metrics").map(|(_, b)| b).unwrap_or_default();
    let text = wait_for("the lines to be counted", Duration::from_secs(20), || {
        let text = scrape();
        (metric(
            &text,
            r#"mqtt_client_disconnects_total{reason="takeovered"}"#,
        ) == Some(1.0))
        .then_some(text)
    });
    let v = |s: &str| metric(&text, s);
    assert_eq!(
        v(r#"mqtt_client_disconnects_total{reason="keepalive_timeout"}"#),
        Some(1.0)
    );
    assert_eq!(
        v(r#"mqtt_exporter_event_errors_total{error="too_large"}"#),
        Some(1.0)
    );
    assert_eq!(v("mqtt_client_connects_total"), Some(1.0));
    // the last line has no newline yet: not read until it has
    assert_eq!(
        v(r#"mqtt_client_disconnects_total{reason="tcp_closed"}"#),
        Some(0.0)
    );
    writeln!(f, "ection.").unwrap();
    wait_for("the finished line", Duration::from_secs(20), || {
        (metric(
            &scrape(),
            r#"mqtt_client_disconnects_total{reason="tcp_closed"}"#,
        ) == Some(1.0))
        .then_some(())
    });
    let (code, body) = get_at(at, "/-/ready").unwrap();
    assert_eq!((code, body.as_str()), (200, "Ready.\n"));
    drop(exporter);
    let _ = std::fs::remove_dir_all(&dir);
}
