//! Command-line flags and subcommands (clap derive only; validation lives in
//! [`crate::config`]).
//!
//! Flags use the Prometheus exporter convention of dotted names, and each has
//! an environment fallback: `MQTT_EXPORTER_` plus the upper-cased name with
//! `.` and `-` read as `_` (e.g. `--mqtt.url` / `MQTT_EXPORTER_MQTT_URL`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mqtt-disconnect-exporter",
    version,
    about = "Prometheus exporter for MQTT client disconnect reasons and takeover flapping.",
    long_about = "Prometheus exporter for MQTT client disconnect reasons and takeover flapping.\n\n\
        Subscribes to a broker's client lifecycle events (Tencent Cloud TDMQ for MQTT $events/..., \
        EMQX rule-engine republished events, EMQX $SYS/brokers/+/clients/+/connected|disconnected), \
        maps every disconnect reason onto a fixed reference table, detects client-ID takeover \
        flapping, and serves the counts on /metrics.\n\n\
        Every flag can also be set through its environment variable, shown as [env: ...].",
    after_help = "Run `mqtt-disconnect-exporter reasons` to print the reference table of disconnect reasons."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the reference table of disconnect reasons (markdown).
    Reasons,
    /// Try it with nothing installed: an embedded MQTT broker, a simulated
    /// fleet publishing through it, and the exporter serving /metrics.
    Demo(DemoArgs),
    /// Publish a simulated fleet's lifecycle events to a real broker
    /// (--mqtt.url), for trying dashboards and alerts, and for load tests.
    Simulate(SimulateArgs),
    /// Report on a captured event log (JSON lines, `mosquitto_sub -v` output,
    /// or EMQX rule-engine file-sink output) without a broker.
    Analyze(AnalyzeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Devices in the simulated fleet.
    #[arg(long = "demo.clients", default_value_t = 1000, value_name = "N")]
    pub clients: usize,
    /// Steady disconnects per second (each followed by a reconnect).
    #[arg(long = "demo.rate", default_value_t = 50, value_name = "N")]
    pub rate: u32,
}

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Steady disconnects per second (each followed by a reconnect).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub rate: u32,
    /// Devices in the simulated fleet.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub clients: usize,
    /// Stop after this long (e.g. 30s, 5m); default: until Ctrl-C.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub duration: Option<String>,
    /// Traffic pattern.
    #[arg(long, value_enum, default_value_t = crate::tools::sim::fleet::Scenario::Steady)]
    pub scenario: crate::tools::sim::fleet::Scenario,
    /// Topic prefix: events go to PREFIX/client_disconnected and so on.
    #[arg(
        long = "topic-prefix",
        default_value = "$events",
        value_name = "PREFIX"
    )]
    pub topic_prefix: String,
    /// Seed of the fleet's random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AnalyzeArgs {
    /// Event log to read, or - for standard input.
    #[arg(value_name = "FILE")]
    pub file: String,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Broker URL: mqtt://host:port or mqtts://host:port (TLS).
    #[arg(
        global = true,
        long = "mqtt.url",
        env = "MQTT_EXPORTER_MQTT_URL",
        default_value = "mqtt://127.0.0.1:1883",
        value_name = "URL"
    )]
    pub mqtt_url: String,

    /// Topic filter to subscribe to; repeat for several. Shared subscriptions
    /// ($share/GROUP/FILTER) work. Defaults to TDMQ for MQTT's event topics.
    #[arg(
        global = true,
        long = "mqtt.topic",
        env = "MQTT_EXPORTER_MQTT_TOPIC",
        value_delimiter = ',',
        value_name = "FILTER",
        default_values_t = [
            "$events/client_connected".to_string(),
            "$events/client_disconnected".to_string(),
            "$events/session_subscribed".to_string(),
            "$events/session_unsubscribed".to_string(),
        ]
    )]
    pub mqtt_topics: Vec<String>,

    /// MQTT client ID. Default: mqtt-disconnect-exporter-HOSTNAME, stable per
    /// host and distinct across replicas (two exporters sharing one ID would
    /// take each other over).
    #[arg(
        global = true,
        long = "mqtt.client-id",
        env = "MQTT_EXPORTER_MQTT_CLIENT_ID",
        value_name = "ID"
    )]
    pub mqtt_client_id: Option<String>,

    /// Username for the broker.
    #[arg(
        global = true,
        long = "mqtt.username",
        env = "MQTT_EXPORTER_MQTT_USERNAME",
        value_name = "NAME"
    )]
    pub mqtt_username: Option<String>,

    /// File holding the broker password (trailing newline stripped). The
    /// password can also come from MQTT_EXPORTER_MQTT_PASSWORD; there is no
    /// plain password flag, so it never shows in `ps`.
    #[arg(
        global = true,
        long = "mqtt.password-file",
        env = "MQTT_EXPORTER_MQTT_PASSWORD_FILE",
        value_name = "PATH"
    )]
    pub mqtt_password_file: Option<PathBuf>,

    /// CA certificate (PEM) that signed the broker's certificate; required
    /// for mqtts://.
    #[arg(
        global = true,
        long = "mqtt.ca-file",
        env = "MQTT_EXPORTER_MQTT_CA_FILE",
        value_name = "PATH"
    )]
    pub mqtt_ca_file: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS; needs --mqtt.key-file.
    #[arg(
        global = true,
        long = "mqtt.cert-file",
        env = "MQTT_EXPORTER_MQTT_CERT_FILE",
        value_name = "PATH"
    )]
    pub mqtt_cert_file: Option<PathBuf>,

    /// Client private key (PEM) for mutual TLS; needs --mqtt.cert-file.
    #[arg(
        global = true,
        long = "mqtt.key-file",
        env = "MQTT_EXPORTER_MQTT_KEY_FILE",
        value_name = "PATH"
    )]
    pub mqtt_key_file: Option<PathBuf>,

    /// QoS of the subscription (0, 1 or 2). TDMQ publishes its event topics
    /// at QoS 0, so the broker delivers min(published, subscribed).
    #[arg(
        global = true,
        long = "mqtt.qos",
        env = "MQTT_EXPORTER_MQTT_QOS",
        default_value_t = 1,
        value_name = "QOS"
    )]
    pub mqtt_qos: u8,

    /// Start a clean session on every connect. Default false: a persistent
    /// session, so QoS 1 events queue at the broker while the exporter is away.
    #[arg(
        global = true,
        long = "mqtt.clean-session",
        env = "MQTT_EXPORTER_MQTT_CLEAN_SESSION",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub mqtt_clean_session: bool,

    /// MQTT 5 session expiry interval: how long the broker keeps the
    /// exporter's session (and queues events for it) after it goes away.
    #[arg(
        global = true,
        long = "mqtt.session-expiry",
        allow_hyphen_values = true,
        env = "MQTT_EXPORTER_MQTT_SESSION_EXPIRY",
        default_value = "1h",
        value_name = "DURATION"
    )]
    pub mqtt_session_expiry: String,

    /// MQTT keep-alive interval.
    #[arg(
        global = true,
        long = "mqtt.keepalive",
        allow_hyphen_values = true,
        env = "MQTT_EXPORTER_MQTT_KEEPALIVE",
        default_value = "30s",
        value_name = "DURATION"
    )]
    pub mqtt_keepalive: String,

    /// Largest MQTT packet the exporter accepts (told to the broker in CONNECT).
    #[arg(
        global = true,
        long = "mqtt.max-packet-size",
        env = "MQTT_EXPORTER_MQTT_MAX_PACKET_SIZE",
        default_value_t = 1024 * 1024,
        value_name = "BYTES"
    )]
    pub mqtt_max_packet_size: u32,

    /// Largest event payload parsed; larger ones count as error="too_large".
    #[arg(
        global = true,
        long = "event.max-payload-size",
        env = "MQTT_EXPORTER_EVENT_MAX_PAYLOAD_SIZE",
        default_value_t = 64 * 1024,
        value_name = "BYTES"
    )]
    pub event_max_payload_size: usize,

    /// Event times further than this from their arrival time are clamped to
    /// it (and counted in mqtt_exporter_event_time_clamped_total), so a device
    /// or broker with a wrong clock cannot hide or prolong flapping.
    #[arg(
        global = true,
        long = "event.max-clock-skew",
        allow_hyphen_values = true,
        env = "MQTT_EXPORTER_EVENT_MAX_CLOCK_SKEW",
        default_value = "60s",
        value_name = "DURATION"
    )]
    pub event_max_clock_skew: String,

    /// Window for takeover flapping (event time).
    #[arg(
        global = true,
        long = "flapping.window",
        allow_hyphen_values = true,
        env = "MQTT_EXPORTER_FLAPPING_WINDOW",
        default_value = "5m",
        value_name = "DURATION"
    )]
    pub flapping_window: String,

    /// Takeovers of one client ID within --flapping.window that make it
    /// flapping (at least 2: one takeover is normal self-repair).
    #[arg(
        global = true,
        long = "flapping.takeover-threshold",
        env = "MQTT_EXPORTER_FLAPPING_TAKEOVER_THRESHOLD",
        default_value_t = 3,
        value_name = "N"
    )]
    pub flapping_takeover_threshold: usize,

    /// Window for reconnect flapping (event time); EMQX's flapping_detect default.
    #[arg(
        global = true,
        long = "flapping.window-reconnect",
        allow_hyphen_values = true,
        env = "MQTT_EXPORTER_FLAPPING_WINDOW_RECONNECT",
        default_value = "1m",
        value_name = "DURATION"
    )]
    pub flapping_window_reconnect: String,

    /// Disconnects of one client ID (any reason) within
    /// --flapping.window-reconnect that make it flapping (at least 2).
    #[arg(
        global = true,
        long = "flapping.reconnect-threshold",
        env = "MQTT_EXPORTER_FLAPPING_RECONNECT_THRESHOLD",
        default_value_t = 15,
        value_name = "N"
    )]
    pub flapping_reconnect_threshold: usize,

    /// Flapping clients exported as mqtt_client_flapping{clientid} series.
    #[arg(
        global = true,
        long = "flapping.top-clients",
        env = "MQTT_EXPORTER_FLAPPING_TOP_CLIENTS",
        default_value_t = 20,
        value_name = "N"
    )]
    pub flapping_top_clients: usize,

    /// Distinct peer addresses kept per flapping client.
    #[arg(
        global = true,
        long = "flapping.max-peers",
        env = "MQTT_EXPORTER_FLAPPING_MAX_PEERS",
        default_value_t = 8,
        value_name = "N"
    )]
    pub flapping_max_peers: usize,

    /// Cap on client IDs held in flapping state; least recently seen are evicted.
    #[arg(
        global = true,
        long = "clients.max-tracked",
        env = "MQTT_EXPORTER_CLIENTS_MAX_TRACKED",
        default_value_t = 1_000_000,
        value_name = "N"
    )]
    pub clients_max_tracked: usize,

    /// Address for /metrics and the other endpoints. A bare `:port` listens on
    /// all interfaces.
    #[arg(
        global = true,
        long = "web.listen-address",
        env = "MQTT_EXPORTER_WEB_LISTEN_ADDRESS",
        default_value = "127.0.0.1:9883",
        value_name = "ADDR"
    )]
    pub web_listen_address: String,

    /// Path under which metrics are served.
    #[arg(
        global = true,
        long = "web.telemetry-path",
        env = "MQTT_EXPORTER_WEB_TELEMETRY_PATH",
        default_value = "/metrics",
        value_name = "PATH"
    )]
    pub web_telemetry_path: String,

    /// Log level: error, warn, info, debug or trace (or a tracing filter).
    #[arg(
        global = true,
        long = "log.level",
        env = "MQTT_EXPORTER_LOG_LEVEL",
        default_value = "info",
        value_name = "LEVEL"
    )]
    pub log_level: String,

    /// Log format: logfmt or json.
    #[arg(
        global = true,
        long = "log.format",
        env = "MQTT_EXPORTER_LOG_FORMAT",
        default_value = "logfmt",
        value_name = "FORMAT"
    )]
    pub log_format: String,
}
