//! Mosquitto's own log (`log_dest topic`) as the event source, with real
//! clients on a real Mosquitto: a clean disconnect, connections sharing a
//! client ID, a dropped socket, a silent device, and a refused password.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::common::{metric, Broker, Exporter};

/// A minimal MQTT 3.1.1 client: CONNECT (clean session, keep-alive 60 s,
/// optional credentials), then the CONNACK's return code.
pub fn connect(port: u16, id: &str, login: Option<(&str, &str)>) -> (TcpStream, u8) {
    connect_with_keepalive(port, id, login, 60)
}

fn connect_with_keepalive(
    port: u16,
    id: &str,
    login: Option<(&str, &str)>,
    keepalive: u8,
) -> (TcpStream, u8) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let field = |v: &str| {
        let mut f = (v.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(v.as_bytes());
        f
    };
    let flags = if login.is_some() { 0xC2 } else { 0x02 };
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, keepalive];
    body.extend(field(id));
    if let Some((user, password)) = login {
        body.extend(field(user));
        body.extend(field(password));
    }
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    s.write_all(&packet).unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    (s, ack[3])
}

pub fn disconnect(mut s: TcpStream) {
    s.write_all(&[0xE0, 0x00]).unwrap();
}

#[test]
#[ignore = "needs mosquitto and openssl; scripts/test.sh runs it"]
fn real_clients_are_counted_from_mosquittos_log() {
    let broker = Broker::prepare();
    let passwords = broker.dir.join("passwords");
    std::fs::write(&passwords, "").unwrap();
    let status = Command::new("mosquitto_passwd")
        .args(["-b", passwords.to_str().unwrap(), "device", "right"])
        .status()
        .expect("mosquitto_passwd");
    assert!(status.success());
    for user in ["exporter", "other"] {
        let status = Command::new("mosquitto_passwd")
            .args(["-b", passwords.to_str().unwrap(), user, "pw"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let broker = broker.start_prepared(&format!(
        "allow_anonymous false\npassword_file {}\nlog_dest topic\nlog_type notice\nlog_type information\n",
        passwords.display()
    ));
    let pw = broker.dir.join("exporter-password");
    std::fs::write(&pw, "pw\n").unwrap();
    let exporter = Exporter::start(&[
        "--mqtt.url",
        &broker.url(),
        "--mqtt.client-id",
        "it-mosquitto-log",
        "--mqtt.username",
        "exporter",
        "--mqtt.password-file",
        pw.to_str().unwrap(),
        "--mqtt.topic",
        "$SYS/broker/log/#",
    ]);
    exporter.wait_ready();
    let login = Some(("device", "right"));

    // a clean disconnect
    let (s, rc) = connect(broker.port, "log-normal", login);
    assert_eq!(rc, 0);
    disconnect(s);
    // devices sharing one client ID take it over three times, then the last
    // leaves cleanly
    let mut dup: Vec<TcpStream> = (0..4)
        .map(|_| connect(broker.port, "log-dup", login).0)
        .collect();
    let addresses: Vec<String> = dup
        .iter()
        .map(|s| s.local_addr().unwrap().to_string())
        .collect();
    disconnect(dup.pop().unwrap());
    // a socket dropped without DISCONNECT
    let (s, _) = connect(broker.port, "log-drop", login);
    drop(s);
    // a device that goes silent: Mosquitto drops it after 1.5 x keep-alive
    let (_silent, _) = connect_with_keepalive(broker.port, "log-silent", login, 2);
    // a wrong password: refused before the client had an ID
    let (_s, rc) = connect(broker.port, "log-refused", Some(("device", "wrong")));
    assert_eq!(rc, 5, "not authorised");

    exporter.wait_value(
        r#"mqtt_client_disconnects_total{reason="not_authenticated"}"#,
        1.0,
    );
    exporter.wait_value(r#"mqtt_client_disconnects_total{reason="tcp_closed"}"#, 1.0);
    exporter.wait_value(
        r#"mqtt_client_disconnects_total{reason="keepalive_timeout"}"#,
        1.0,
    );
    let text = exporter.metrics();
    let v = |s: &str| metric(&text, s);
    assert_eq!(
        v(r#"mqtt_client_disconnects_total{reason="normal"}"#),
        Some(2.0)
    );
    assert_eq!(
        v(r#"mqtt_client_disconnects_total{reason="takeovered"}"#),
        Some(3.0)
    );
    assert_eq!(
        v(r#"mqtt_client_disconnects_total{reason="other"}"#),
        Some(0.0)
    );
    // log-normal, log-dup four times, log-drop, log-silent (the refused one
    // never connected)
    assert_eq!(v("mqtt_client_connects_total"), Some(7.0));
    // one "New connection from" line per socket, and nothing is an error
    assert_eq!(
        v(r#"mqtt_exporter_events_ignored_total{source="mosquitto_log"}"#),
        Some(8.0),
        "{text}"
    );
    let errors = crate::common::error_sum(&text);
    assert_eq!(errors, 0.0);
    // <unknown> is counted but never tracked: four client IDs are
    exporter.wait_value("mqtt_exporter_tracked_clients", 4.0);
    // log-dup is flapping, listed with the addresses its connect lines named
    // after the first takeover (the devices fighting over the ID)
    exporter.wait_value(r#"mqtt_flapping_clients{kind="takeover"}"#, 1.0);
    let list = crate::common::wait_for("the flapping list", Duration::from_secs(5), || {
        let (_, body) = crate::common::get(exporter.web_port, "/api/v1/flapping").ok()?;
        let list: Vec<serde_json::Value> = serde_json::from_str(&body).ok()?;
        (!list.is_empty()).then_some(list)
    });
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["clientid"], "log-dup");
    assert_eq!(list[0]["count"], 3);
    let peers: Vec<&str> = list[0]["peers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    // kept per address: every device here connects from 127.0.0.1, so its
    // ports are one peer
    assert!(
        addresses.iter().all(|a| a.starts_with("127.0.0.1:")),
        "{addresses:?}"
    );
    assert_eq!(peers, ["127.0.0.1"], "{list:?}");
}

/// MQTT's variable-length remaining length.
fn remaining(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n % 128) as u8;
        n /= 128;
        out.push(if n > 0 { byte | 0x80 } else { byte });
        if n == 0 {
            return out;
        }
    }
}

/// CONNECT (3.1.1, clean session) with any client ID; the CONNACK's code.
fn connect_long(port: u16, id: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
    body.extend((id.len() as u16).to_be_bytes());
    body.extend(id.as_bytes());
    let mut packet = vec![0x10];
    packet.extend(remaining(body.len()));
    packet.extend(body);
    s.write_all(&packet).unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack[3], 0, "CONNACK for {id}");
    s
}

/// PUBLISH to `a/b` with `qos` (packet ID 1 when above 0).
fn publish(s: &mut TcpStream, qos: u8, payload: &[u8]) {
    let mut body = vec![0, 3, b'a', b'/', b'b'];
    if qos > 0 {
        body.extend([0, 1]);
    }
    body.extend(payload);
    let mut packet = vec![0x30 | (qos << 1)];
    packet.extend(remaining(body.len()));
    packet.extend(body);
    let _ = s.write_all(&packet);
}

/// What real clients make Mosquitto 2.0.11 print, beyond the everyday
/// lines: a TCP reset (SO_LINGER 0), a packet over `max_packet_size`, a
/// PUBLISH above `max_qos`, client IDs that hold other lines' suffixes, and
/// a client ID long enough that Mosquitto cuts its line.
#[test]
#[ignore = "needs mosquitto; scripts/test.sh runs it"]
fn mosquitto_2_0_11s_other_lines_from_real_clients() {
    let broker = Broker::prepare().start_prepared(
        "max_packet_size 2000\nmessage_size_limit 100\nmax_qos 1\nlog_dest topic\nlog_type notice\nlog_type information\n",
    );
    let exporter = Exporter::start(&[
        "--mqtt.url",
        &broker.url(),
        "--mqtt.client-id",
        "it-mosquitto-lines",
        "--mqtt.topic",
        "$SYS/broker/log/#",
    ]);
    exporter.wait_ready();
    let port = broker.port;
    // a reset: "Client rst closed its connection." (tcp_closed)
    let s = connect_long(port, "rst");
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    // "Client big disconnected due to oversize packet." (other)
    let mut s = connect_long(port, "big");
    publish(&mut s, 0, &[b'x'; 3000]);
    let mut buf = [0u8; 16];
    let _ = s.read(&mut buf);
    // "Too high QoS in PUBLISH from q2, disconnecting." then "Bad socket
    // read/write on client q2: Requested QoS not supported on server."
    // (not_authorized, counted once)
    let mut s = connect_long(port, "q2");
    publish(&mut s, 2, b"hi");
    let _ = s.read(&mut buf);
    // a payload over message_size_limit is dropped (2.0.11 handle_publish.c,
    // a debug line) but the client stays: its clean leave is one "normal"
    let mut s = connect_long(port, "sizey");
    publish(&mut s, 1, &[b'y'; 500]);
    s.write_all(&[0xE0, 0x00]).unwrap();
    let _ = s.read(&mut buf);
    // client IDs ending in other lines' suffixes leave cleanly (normal)
    for id in [
        "liar disconnected.",
        "liar has exceeded timeout, disconnecting.",
        "liar disconnected: Connection reset by peer",
        "liar already connected, closing old connection.",
    ] {
        let mut s = connect_long(port, id);
        s.write_all(&[0xE0, 0x00]).unwrap();
        let _ = s.read(&mut buf);
    }
    // a 1,000-byte client ID: its line loses the suffix (other, counted)
    let s = connect_long(port, &"x".repeat(1000));
    drop(s);

    exporter.wait_value(r#"mqtt_client_disconnects_total{reason="normal"}"#, 5.0);
    exporter.wait_value(r#"mqtt_client_disconnects_total{reason="other"}"#, 2.0);
    let text = exporter.metrics();
    let v = |reason: &str| crate::common::disconnects_of(&text, reason);
    assert_eq!(v("tcp_closed"), Some(1.0), "{text}");
    assert_eq!(v("not_authorized"), Some(1.0), "{text}");
    assert_eq!(v("keepalive_timeout"), Some(0.0), "{text}");
    assert_eq!(v("takeovered"), Some(0.0), "{text}");
    // each cause that has no row is logged once
    let log = std::fs::read_to_string(&exporter.log).unwrap();
    assert_eq!(log.matches("oversize_packet").count(), 1, "{log}");
    assert_eq!(log.matches("truncated_log_line").count(), 1, "{log}");
}

#[test]
fn the_readme_lists_every_mosquitto_line() {
    crate::common::readme_section_is(
        "mosquitto",
        &mqtt_disconnect_exporter::core::event::mosquitto_log::markdown_lines(),
        "run `UPDATE_GENERATED=1 cargo test --test it mosquitto_log`",
    );
}

/// Connections Mosquitto 2.0.11 refuses before any MQTT: a TLS handshake
/// that fails at once (plain MQTT on the TLS port: `Client connection from
/// ADDRESS failed: ...`), a TLS client without the certificate the
/// listener requires (`Client <unknown> disconnected: Protocol error.`),
/// and a listener's `max_connections` (`Client connection from ADDRESS
/// denied: max_connections exceeded.`). Operators see each, counted under
/// its row, with the address it came from.
#[test]
#[ignore = "needs mosquitto and openssl; scripts/test.sh runs it"]
fn connections_refused_before_mqtt_are_counted_from_the_real_log() {
    use crate::common::{free_port, tls};
    let broker = Broker::prepare();
    let dir = broker.dir.clone();
    tls::ca(&dir, "ca");
    tls::issue(&dir, "ca", "server", tls::SERVER);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let _ = Command::new("chmod").arg("0644").arg(&path).status();
    }
    let (tls_port, limited_port) = (free_port(), free_port());
    let d = dir.display();
    let broker = broker.start_prepared(&format!(
        "log_dest topic\nlog_type notice\nlog_type information\n\
         listener {tls_port} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\nrequire_certificate true\n\
         listener {limited_port} 127.0.0.1\nmax_connections 1\n"
    ));
    let exporter = Exporter::start(&[
        "--mqtt.url",
        &broker.url(),
        "--mqtt.client-id",
        "it-refusals",
        "--mqtt.topic",
        "$SYS/broker/log/#",
    ]);
    exporter.wait_ready();

    // plain MQTT on the TLS port
    let mut plain = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = plain.write_all(&[0x10, 0x0c, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0]);
    let _ = plain.read(&mut [0u8; 16]);
    // TLS without the client certificate the listener requires
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{tls_port}")])
        .arg("-CAfile")
        .arg(dir.join("ca.pem"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("CONNACK"),
        "{out:?}"
    );
    // the second connection to a listener that takes one
    let held = TcpStream::connect(("127.0.0.1", limited_port)).unwrap();
    let mut second = TcpStream::connect(("127.0.0.1", limited_port)).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = second.read(&mut [0u8; 16]);

    exporter.wait_value(
        r#"mqtt_client_disconnects_total{reason="not_authenticated"}"#,
        2.0,
    );
    exporter.wait_value(
        r#"mqtt_client_disconnects_total{reason="too_many_connection"}"#,
        1.0,
    );
    let text = exporter.metrics();
    let others: f64 = text
        .lines()
        .filter(|l| l.starts_with("mqtt_client_disconnects_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(others, 3.0, "only the three refusals:\n{text}");
    // never tracked: they have no client ID
    assert_eq!(
        metric(&text, "mqtt_exporter_tracked_clients"),
        Some(0.0),
        "{text}"
    );
    drop(held);
}
