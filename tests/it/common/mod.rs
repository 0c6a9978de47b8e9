//! Shared test helpers: the fixture table, a real Mosquitto broker on a free
//! 127.0.0.1 port, the exporter binary, and a tiny HTTP scraper.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod in_process;
pub mod tls;

/// One captured event: file under tests/fixtures, the topic it is published
/// on, the `kind` label it counts under, and the reason it maps to.
pub struct Fixture {
    pub file: &'static str,
    pub topic: &'static str,
    pub kind: &'static str,
    pub reason: Option<&'static str>,
}

pub const FIXTURES: &[Fixture] = &[
    Fixture {
        file: "tdmq/client_disconnected_keepalive_timeout.json",
        topic: "$events/client_disconnected",
        kind: "disconnected",
        reason: Some("keepalive_timeout"),
    },
    Fixture {
        file: "tdmq/client_disconnected_takeovered.json",
        topic: "$events/client_disconnected",
        kind: "disconnected",
        reason: Some("takeovered"),
    },
    Fixture {
        file: "tdmq/client_disconnected_too_many_connection.json",
        topic: "$events/client_disconnected",
        kind: "disconnected",
        reason: Some("too_many_connection"),
    },
    Fixture {
        file: "tdmq/client_connected.json",
        topic: "$events/client_connected",
        kind: "connected",
        reason: None,
    },
    Fixture {
        file: "tdmq/session_subscribed.json",
        topic: "$events/session_subscribed",
        kind: "subscribed",
        reason: None,
    },
    Fixture {
        file: "emqx5/client_disconnected_takenover.json",
        topic: "emqx/events/client_disconnected",
        kind: "disconnected",
        reason: Some("takeovered"),
    },
    Fixture {
        file: "emqx5/client_disconnected_discarded.json",
        topic: "emqx/events/client_disconnected",
        kind: "disconnected",
        reason: Some("takeovered"),
    },
    Fixture {
        file: "emqx5/client_disconnected_econnreset.json",
        topic: "emqx/events/client_disconnected",
        kind: "disconnected",
        reason: Some("tcp_closed"),
    },
    Fixture {
        file: "emqx5/client_disconnected_use_another_server.json",
        topic: "emqx/events/client_disconnected",
        kind: "disconnected",
        reason: Some("go_away"),
    },
    Fixture {
        file: "emqx5/client_connected.json",
        topic: "emqx/events/client_connected",
        kind: "connected",
        reason: None,
    },
    Fixture {
        file: "emqx5/client_connack_bad_username_or_password.json",
        topic: "emqx/events/client_connack",
        kind: "other",
        reason: Some("not_authenticated"),
    },
    Fixture {
        file: "emqx5/client_connack_success.json",
        topic: "emqx/events/client_connack",
        kind: "other",
        reason: None,
    },
    Fixture {
        file: "emqx5/session_subscribed.json",
        topic: "emqx/events/session_subscribed",
        kind: "subscribed",
        reason: None,
    },
    Fixture {
        file: "sys/disconnected_keepalive_timeout.json",
        topic: "sys/brokers/emqx@127.0.0.1/clients/emqtt-8348fe27a87976ad4db3/disconnected",
        kind: "disconnected",
        reason: Some("keepalive_timeout"),
    },
    Fixture {
        file: "sys/disconnected_tcp_closed.json",
        topic: "sys/brokers/emqx@127.0.0.1/clients/emqtt-8348fe27a87976ad4db4/disconnected",
        kind: "disconnected",
        reason: Some("tcp_closed"),
    },
    Fixture {
        file: "aws/connected.json",
        topic: "$aws/events/presence/connected/sensor-0042",
        kind: "connected",
        reason: None,
    },
    Fixture {
        file: "aws/disconnected_duplicate_clientid.json",
        topic: "$aws/events/presence/disconnected/sensor-0042",
        kind: "disconnected",
        reason: Some("takeovered"),
    },
    Fixture {
        file: "aws/disconnected_mqtt_keep_alive_timeout.json",
        topic: "$aws/events/presence/disconnected/sensor-0077",
        kind: "disconnected",
        reason: Some("keepalive_timeout"),
    },
    Fixture {
        file: "aws/subscribed.json",
        topic: "$aws/events/subscriptions/subscribed/sensor-0042",
        kind: "subscribed",
        reason: None,
    },
    Fixture {
        file: "sys/connected.json",
        topic: "sys/brokers/emqx@127.0.0.1/clients/emqtt-8348fe27a87976ad4db3/connected",
        kind: "connected",
        reason: None,
    },
];

/// Topic filters that cover every fixture topic.
pub const FIXTURE_FILTERS: &[&str] = &[
    "$events/#",
    "$aws/events/#",
    "emqx/events/#",
    "sys/brokers/+/clients/+/connected",
    "sys/brokers/+/clients/+/disconnected",
];

pub fn fixture_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file)
}

pub fn fixture(file: &str) -> Vec<u8> {
    std::fs::read(fixture_path(file)).unwrap_or_else(|e| panic!("fixture {file}: {e}"))
}

/// A child process killed (and reaped) on drop.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a wait's check returns: done with a value, or not yet, with the
/// figure it reached (an `Err` carries it; `None` has none to tell).
pub trait Waited<T> {
    fn done(self) -> Result<T, String>;
}

impl<T> Waited<T> for Option<T> {
    fn done(self) -> Result<T, String> {
        self.ok_or_else(|| "not yet".to_string())
    }
}

impl<T, E: std::fmt::Debug> Waited<T> for Result<T, E> {
    fn done(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Waits until `check` is done, polling; after `limit` panics with `what`
/// and the last figure the check reached, so a failure tells loss from
/// slowness.
pub fn wait_for<T, W: Waited<T>>(what: &str, limit: Duration, mut check: impl FnMut() -> W) -> T {
    let start = Instant::now();
    loop {
        let last = match check().done() {
            Ok(v) => return v,
            Err(last) => last,
        };
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}; last reached: {last}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn require(bin: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {bin}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "{bin} is not installed: run scripts/test.sh, which installs the test dependencies"
    );
}

fn mosquitto_bin() -> String {
    for candidate in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"] {
        if Path::new(candidate).exists() {
            return candidate.to_string();
        }
    }
    require("mosquitto");
    "mosquitto".to_string()
}

/// A real Mosquitto broker on 127.0.0.1, killed on drop.
pub struct Broker {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    persistent: bool,
    /// Lines added to the listener's configuration (TLS, ACL files).
    extra: String,
}

/// Mosquitto's in-flight window per client in these tests: the most QoS 1
/// messages that can be delivered twice after a restart.
pub const MAX_INFLIGHT: u64 = 100;

impl Broker {
    pub fn start() -> Broker {
        Broker::start_with(false)
    }

    /// With `persistent`, sessions and their queues survive a restart.
    pub fn start_with(persistent: bool) -> Broker {
        let mut broker = Broker::prepare();
        broker.persistent = persistent;
        broker.restart();
        broker
    }

    /// A broker not started yet, so files can be put in its `dir` first;
    /// `extra` configuration lines may name them.
    pub fn prepare() -> Broker {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("mde-broker-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Broker {
            port,
            dir,
            child: None,
            persistent: false,
            extra: String::new(),
        }
    }

    /// Starts a prepared broker with extra listener configuration.
    pub fn start_prepared(mut self, extra: &str) -> Broker {
        self.extra = extra.to_string();
        self.restart();
        self
    }

    /// Starts (again) on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let conf = self.dir.join("mosquitto.conf");
        // extra configuration may switch anonymous access off
        let anonymous = if self.extra.contains("allow_anonymous") {
            ""
        } else {
            "allow_anonymous true\n"
        };
        let persistence = if self.persistent {
            format!(
                "persistence true\npersistence_location {}/\n",
                self.dir.display()
            )
        } else {
            "persistence false\n".to_string()
        };
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\n{anonymous}{persistence}max_queued_messages 1000000\nmax_inflight_messages {MAX_INFLIGHT}\nlog_dest stderr\nlog_type error\nlog_type warning\n{}\n",
                self.port, self.extra
            ),
        )
        .unwrap();
        let log = std::fs::File::create(self.dir.join("mosquitto.log")).unwrap();
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let port = self.port;
        wait_for("mosquitto to listen", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM: Mosquitto disconnects clients and saves its persistence file.
    pub fn stop_graceful(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Sends the running broker `signal` (`HUP`: Mosquitto reopens its log
    /// file and re-reads its configuration).
    pub fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .map(|c| c.id())
            .expect("a running broker");
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Publishes one message with mosquitto_pub and checks it succeeded.
    pub fn publish(&self, topic: &str, payload: &[u8], qos: u8) {
        require("mosquitto_pub");
        let file = self.dir.join(format!("payload-{}", rand_suffix()));
        std::fs::write(&file, payload).unwrap();
        let status = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-q", &qos.to_string(), "-t", topic, "-f"])
            .arg(&file)
            .status()
            .expect("run mosquitto_pub");
        assert!(status.success(), "mosquitto_pub to {topic} failed");
        let _ = std::fs::remove_file(file);
    }

    /// Publishes many payloads on one connection (`mosquitto_pub -l`, one per line).
    pub fn publish_lines(&self, topic: &str, lines: &[String], qos: u8) {
        require("mosquitto_pub");
        let mut child = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-q", &qos.to_string(), "-t", topic, "-l"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run mosquitto_pub");
        {
            let stdin = child.stdin.as_mut().unwrap();
            for line in lines {
                stdin.write_all(line.as_bytes()).unwrap();
                stdin.write_all(b"\n").unwrap();
            }
        }
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        assert!(status.success(), "mosquitto_pub -l to {topic} failed");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The exporter binary under test, stopped with SIGTERM on drop.
pub struct Exporter {
    pub web_port: u16,
    /// Every address it listens on, as it logged them.
    pub addresses: Vec<std::net::SocketAddr>,
    child: Option<Child>,
    pub log: PathBuf,
}

pub fn exporter_bin() -> &'static str {
    env!("CARGO_BIN_EXE_mqtt-disconnect-exporter")
}

/// Runs the binary with `args` to completion (no broker URL from the
/// environment).
pub fn run_exporter(args: &[&str]) -> std::process::Output {
    Command::new(exporter_bin())
        .args(args)
        .env_remove("MQTT_EXPORTER_MQTT_URL")
        .output()
        .unwrap()
}

impl Exporter {
    /// Starts the binary with `args` and `--web.listen-address 127.0.0.1:0`
    /// (so it binds a free port itself), reads the bound address from its
    /// log, and waits until it answers `/-/healthy`. `args` may start with a
    /// subcommand (`demo`).
    pub fn start(args: &[&str]) -> Exporter {
        Exporter::start_listening(args, &["127.0.0.1:0"], 1)
    }

    /// Starts the binary with `args` and a `--web.listen-address` for each of
    /// `listen`, and waits until it logs `sockets` bound addresses (kept in
    /// `addresses`, the first also as `web_port`) and the first answers
    /// `/-/healthy` over plain HTTP (not asked with `--web.config.file`, which
    /// may demand TLS or credentials).
    pub fn start_listening(args: &[&str], listen: &[&str], sockets: usize) -> Exporter {
        Exporter::launch(args, listen, sockets, &[])
    }

    /// [`Exporter::start`] with environment variables set (`SSL_CERT_FILE`
    /// and `SSL_CERT_DIR` are unset unless given).
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Exporter {
        Exporter::launch(args, &["127.0.0.1:0"], 1, env)
    }

    fn launch(args: &[&str], listen: &[&str], sockets: usize, env: &[(&str, &str)]) -> Exporter {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("mde-exporter-{}-{n}.log", std::process::id()));
        let mut command = Command::new(exporter_bin());
        command.args(args);
        for address in listen {
            command.args(["--web.listen-address", address]);
        }
        command
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        command.envs(env.iter().copied());
        let child = command
            .env_remove("MQTT_EXPORTER_MQTT_PASSWORD")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start exporter");
        let mut exporter = Exporter {
            web_port: 0,
            addresses: Vec::new(),
            child: Some(child),
            log,
        };
        let log = exporter.log.clone();
        exporter.addresses = wait_for("exporter to bind", Duration::from_secs(20), || {
            let text = std::fs::read_to_string(&log).ok()?;
            let bound: Vec<std::net::SocketAddr> = text
                .lines()
                .filter(|l| l.contains("serving metrics"))
                .filter_map(|line| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix("address="))?
                        .parse()
                        .ok()
                })
                .collect();
            (bound.len() >= sockets).then_some(bound)
        });
        exporter.web_port = exporter.addresses[0].port();
        let first = exporter.addresses[0];
        if !args.contains(&"--web.config.file") {
            wait_for("exporter to serve HTTP", Duration::from_secs(20), || {
                get_at(reachable(first), "/-/healthy").ok()
            });
        }
        exporter
    }

    /// The exporter subscribed to `topic` on `broker` as `client_id`, once
    /// it is ready (its subscription granted).
    pub fn subscribed(broker: &Broker, client_id: &str, topic: &str) -> Exporter {
        let exporter = Exporter::start(&[
            "--mqtt.url",
            &broker.url(),
            "--mqtt.client-id",
            client_id,
            "--mqtt.topic",
            topic,
        ]);
        exporter.wait_ready();
        exporter
    }

    /// The exporter's process ID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn wait_ready(&self) {
        let port = self.web_port;
        wait_for("exporter to subscribe", Duration::from_secs(20), || {
            get(port, "/-/ready").ok().filter(|(code, _)| *code == 200)
        });
    }

    pub fn metrics(&self) -> String {
        scrape(self.web_port)
    }

    /// Value of one series, e.g. `mqtt_client_disconnects_total{reason="normal"}`.
    pub fn value(&self, series: &str) -> Option<f64> {
        metric(&self.metrics(), series)
    }

    /// Waits until `series` equals `want`, then returns; panics with the
    /// last value and the log.
    pub fn wait_value(&self, series: &str, want: f64) {
        wait_series(self.web_port, series, want, || {
            std::fs::read_to_string(&self.log).unwrap_or_default()
        });
    }

    /// SIGKILL: no goodbye to the broker.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        wait_for("exporter to exit", Duration::from_secs(15), || {
            child.try_wait().ok().flatten()
        })
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The sum of every `mqtt_exporter_event_errors_total` series in `text`.
pub fn error_sum(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("mqtt_exporter_event_errors_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Holds one slowloris connection after another from the address `from`
/// to 127.0.0.1:`port`: a request line, then one header byte every 500 ms,
/// re-opened when the server closes it, until `until`.
pub async fn slowloris(from: [u8; 4], port: u16, until: Instant) {
    use tokio::io::AsyncWriteExt;
    while Instant::now() < until {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if socket.bind((from, 0).into()).is_ok() {
            if let Ok(mut s) = socket.connect(([127, 0, 0, 1], port).into()).await {
                let mut ok = s
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .await
                    .is_ok();
                while ok && Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    ok = s.write_all(b"a").await.is_ok();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An attack: the tasks `attackers` makes, run on a runtime of their own
/// thread; joined by [`Attack::join`].
pub struct Attack(std::thread::JoinHandle<()>);

impl Attack {
    /// Starts `attackers()`'s tasks, each bounded by its own deadline.
    pub fn start<F>(attackers: impl FnOnce() -> Vec<F> + Send + 'static) -> Attack
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        Attack(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let tasks: Vec<_> = attackers().into_iter().map(tokio::spawn).collect();
                for t in tasks {
                    let _ = t.await;
                }
            });
        }))
    }

    pub fn join(self) {
        self.0.join().unwrap();
    }
}

/// Scrapes `/metrics` of the exporter on `port` `scrapes` times, every
/// `every`, as Prometheus would: how many were answered whole.
pub fn scrapes_served(port: u16, scrapes: usize, every: Duration) -> usize {
    let mut ok = 0;
    for _ in 0..scrapes {
        if let Ok((200, body)) = get(port, "/metrics") {
            if body.contains("mqtt_client_disconnects_total{reason=\"normal\"} 0") {
                ok += 1;
            }
        }
        std::thread::sleep(every);
    }
    ok
}

/// `/metrics` of the exporter on `port`, which must answer 200.
pub fn scrape(port: u16) -> String {
    let (code, body) = get(port, "/metrics").expect("scrape");
    assert_eq!(code, 200);
    body
}

/// Waits (up to 20 s) until `series` on the exporter at `port` equals
/// `want`; panics with the last value and `log()`.
pub fn wait_series(port: u16, series: &str, want: f64, log: impl Fn() -> String) {
    let limit = Duration::from_secs(20);
    let start = Instant::now();
    loop {
        let got = metric(&scrape(port), series);
        if got == Some(want) {
            return;
        }
        if start.elapsed() > limit {
            panic!(
                "{series}: want {want}, got {got:?} after {limit:?}\nlog:\n{}",
                log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `client.disconnected` event as TDMQ and EMQX publish it: the one way
/// the tests build a payload. Values are JSON-escaped, so any client ID works.
pub struct Disconnect {
    fields: serde_json::Map<String, serde_json::Value>,
}

/// A disconnect of `clientid` with the raw `reason` (no time: arrival time).
pub fn disconnect(clientid: &str, reason: &str) -> Disconnect {
    let mut fields = serde_json::Map::new();
    fields.insert("event".into(), "client.disconnected".into());
    fields.insert("clientid".into(), clientid.into());
    fields.insert("reason".into(), reason.into());
    Disconnect { fields }
}

impl Disconnect {
    /// The device's address (`peername`).
    pub fn peer(self, peer: &str) -> Self {
        self.field("peername", peer)
    }

    /// The event's own time, ms since the epoch (`disconnected_at`).
    pub fn at(self, ms: i64) -> Self {
        self.field("disconnected_at", ms)
    }

    /// Any other field.
    pub fn field(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// The payload, one line of JSON.
    pub fn json(&self) -> String {
        serde_json::Value::Object(self.fields.clone()).to_string()
    }
}

/// A plain HTTP/1.0 GET on 127.0.0.1 (no chunked bodies); returns (status, body).
pub fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    get_at(std::net::SocketAddr::from(([127, 0, 0, 1], port)), path)
}

/// A listening address as a client reaches it: the unspecified address
/// (every interface) on its own loopback.
pub fn reachable(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    match addr.ip() {
        ip if !ip.is_unspecified() => addr,
        std::net::IpAddr::V6(_) => {
            std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        std::net::IpAddr::V4(_) => std::net::SocketAddr::from(([127, 0, 0, 1], addr.port())),
    }
}

/// GET `path` from `addr` over HTTP/1.0: (status, body).
pub fn get_at(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    Ok((code, body.to_string()))
}

/// Finds one series' value in a text exposition.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// The series lines of one metric family.
pub fn series<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| {
            l.starts_with(family)
                && matches!(l.as_bytes().get(family.len()), Some(b'{') | Some(b' '))
        })
        .collect()
}

/// Checks the README's text between `<!-- NAME:start -->` and
/// `<!-- NAME:end -->` equals `generated`; with UPDATE_GENERATED set, writes
/// it there instead.
pub fn readme_section_is(name: &str, generated: &str, how_to_update: &str) {
    // the tests run in parallel: one read-modify-write of the README at a time
    static README: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = README.lock().unwrap_or_else(|e| e.into_inner());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = format!("<!-- {name}:start -->\n");
    let end = format!("<!-- {name}:end -->");
    let from = readme
        .find(&start)
        .unwrap_or_else(|| panic!("README lacks the {name}:start marker"))
        + start.len();
    let to = readme
        .find(&end)
        .unwrap_or_else(|| panic!("README lacks the {name}:end marker"));
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        let updated = format!("{}{generated}{}", &readme[..from], &readme[to..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert_eq!(
        &readme[from..to],
        generated,
        "README's {name} table is stale: {how_to_update}"
    );
}

/// curl's status code for `args`, run in `dir` (0 when it got no HTTP
/// answer).
pub fn curl_code(dir: &Path, args: &[&str]) -> u16 {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("curl (run scripts/test.sh to install it)");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// `mqtt_client_disconnects_total{reason}` in a scrape's `text`.
pub fn disconnects_of(text: &str, reason: &str) -> Option<f64> {
    metric(
        text,
        &format!(r#"mqtt_client_disconnects_total{{reason="{reason}"}}"#),
    )
}
