//! Command-line flags and subcommands: every flag is defined here once.
//!
//! Flags use the Prometheus exporter convention of dotted names, and each has
//! an environment fallback: `MQTT_EXPORTER_` plus the upper-cased name with
//! `.` and `-` read as `_` (e.g. `--mqtt.url` / `MQTT_EXPORTER_MQTT_URL`).
//! clap parses every value into its type here (durations, the broker URL,
//! addresses, bounded numbers), so a bad value is refused with clap's one
//! line naming the flag; `cli/settings.rs` reads files and checks
//! combinations, into the settings types of [`crate::config`]. Flags come
//! in groups, each under its own `--help` heading, and each subcommand takes
//! only the groups it uses. The README's flag table is [`markdown_flags`],
//! checked by a test.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

pub mod settings;

use crate::core::duration::{parse as duration, positive as positive_duration};
use crate::core::reasons::AliasList;
use crate::edge::http::telemetry_path;
pub use crate::edge::listen::ListenAddress;
use crate::edge::mqtt::session::ProtocolChoice;
use crate::edge::mqtt::settings::{
    client_id, keepalive, server_name, session_expiry, topic_filter, BrokerUrl,
};
pub use crate::edge::process::{LogFormat, LogLevel};
pub use crate::tools::analyze::ReportFormat;
pub use crate::tools::dashboards::DashboardsFormat;
use crate::tools::rules::values::{absolute_url, label_text, per_minute, spike_factor};
pub use crate::tools::rules::RulesFormat;

/// `--version`: the version, the commit and the build date.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("MDE_REVISION"),
    ", built ",
    env!("MDE_BUILD_DATE"),
    ", rustc ",
    env!("MDE_RUST_VERSION"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "mqtt-disconnect-exporter",
    version,
    long_version = LONG_VERSION,
    args_conflicts_with_subcommands = true,
    about = "Prometheus exporter for MQTT client disconnect reasons and takeover flapping.",
    long_about = "Prometheus exporter for MQTT client disconnect reasons and takeover flapping.\n\n\
        Subscribes to a broker's client lifecycle events (Tencent Cloud TDMQ for MQTT $events/..., \
        EMQX rule-engine republished events, EMQX $SYS/brokers/+/clients/+/connected|disconnected, \
        AWS IoT Core $aws/events/presence/...), \
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
    /// (--mqtt.url, with credentials and TLS), for trying dashboards and
    /// alerts, and for load tests.
    Simulate(SimulateArgs),
    /// Report on a captured event log (JSON lines, `mosquitto_sub -v` output,
    /// or EMQX rule-engine file-sink output) without a broker.
    Analyze(AnalyzeArgs),
    /// Print the Prometheus alerting and recording rules (or the
    /// PrometheusRule resource, their promtool tests, or the runbook they
    /// link to), for a scrape job and runbook host of your choice.
    Rules(RulesArgs),
    /// Print the Grafana dashboards: a ConfigMap for Grafana's dashboard
    /// sidecar, or one dashboard's JSON.
    Dashboards(DashboardsArgs),
}

/// The exporter itself (no subcommand): every group.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    #[command(flatten)]
    pub subscription: SubscriptionArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub events: EventArgs,
    #[command(flatten)]
    pub web: WebArgs,
    #[command(flatten)]
    pub ingest: IngestArgs,
    #[command(flatten)]
    pub file: FileArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// A broker's log file, followed like `tail -F`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "File")]
pub struct FileArgs {
    /// Follow this log file like `tail -F` (repeatable): Mosquitto's log as
    /// `log_dest file` writes it (any timestamp form), JSON lines (an EMQX
    /// file sink) or `mosquitto_sub -v` output. Read from its end, across
    /// rename-and-create and copytruncate rotations; a file that does not
    /// exist yet is waited for.
    #[arg(
        long = "file.path",
        env = "MQTT_EXPORTER_FILE_PATH",
        value_delimiter = ',',
        value_name = "PATH"
    )]
    pub paths: Vec<PathBuf>,

    /// Read what each --file.path already holds at start too, not only what
    /// follows.
    #[arg(
        long = "file.from-start",
        env = "MQTT_EXPORTER_FILE_FROM_START",
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub from_start: bool,
}

/// Events pushed over HTTP.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTP ingest")]
pub struct IngestArgs {
    /// Turns HTTP ingestion on (POST /api/v1/ingest/json, emqx, aws-iot, eventgrid): a
    /// file of tokens, one a line (16 characters or more), re-read when it
    /// changes. A request carries one as `Authorization: Bearer TOKEN` or
    /// `?token=TOKEN`.
    #[arg(
        long = "ingest.token-file",
        alias = "webhook.token-file",
        env = "MQTT_EXPORTER_INGEST_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub token_file: Option<PathBuf>,

    /// Largest ingest request body; a larger one is answered 413.
    #[arg(
        long = "ingest.max-body-size",
        alias = "webhook.max-body-size",
        env = "MQTT_EXPORTER_INGEST_MAX_BODY_SIZE",
        default_value_t = 1024 * 1024,
        value_name = "BYTES",
        value_parser = at_least_1
    )]
    pub max_body_size: usize,

    /// Time an ingest request body has before it must come at 64 KiB a
    /// second at least; a slower one is answered 408 and its connection
    /// closed, so stalled uploads cannot hold the 64 waiting slots.
    #[arg(
        long = "ingest.body-grace",
        env = "MQTT_EXPORTER_INGEST_BODY_GRACE",
        default_value = "5s",
        value_name = "DURATION",
        value_parser = positive_duration
    )]
    pub body_grace: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Devices in the simulated fleet.
    #[arg(long = "demo.clients", default_value_t = 100_000, value_name = "N")]
    pub clients: usize,
    /// Steady disconnects per second (each followed by a reconnect).
    #[arg(long = "demo.rate", default_value_t = 50, value_name = "N")]
    pub rate: u32,
    #[command(flatten)]
    pub events: EventArgs,
    #[command(flatten)]
    pub web: WebArgs,
    #[command(flatten)]
    pub log: LogArgs,
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
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = positive_duration)]
    pub duration: Option<Duration>,
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
    /// Post the fleet over HTTP to this exporter (http://host:port) instead
    /// of publishing to a broker; the MQTT flags are then unused.
    #[arg(long, alias = "webhook", value_name = "URL")]
    pub ingest: Option<String>,
    /// The body each request carries, as the sender of that kind posts it.
    #[arg(long = "format", value_enum, default_value_t = crate::tools::sim::post::Format::Json)]
    pub body_format: crate::tools::sim::post::Format,
    /// A file holding the ingest token to send (its first token).
    #[arg(
        long = "ingest.token-file",
        alias = "webhook.token-file",
        value_name = "FILE"
    )]
    pub ingest_token_file: Option<PathBuf>,
    /// Keep-alive connections posting at once.
    #[arg(
        long = "ingest.connections",
        alias = "webhook.connections",
        default_value_t = 4,
        value_name = "N",
        value_parser = at_least_1
    )]
    pub ingest_connections: usize,
    #[command(flatten)]
    pub broker: BrokerArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Clone, Args)]
pub struct AnalyzeArgs {
    /// Event log to read, or - for standard input.
    #[arg(value_name = "FILE")]
    pub file: String,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub events: EventArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    /// What to print: the rule file, the prometheus-operator PrometheusRule,
    /// promtool unit tests for the rule file, or the runbook.
    #[arg(long, value_enum, default_value_t = RulesFormat::Prometheus)]
    pub format: RulesFormat,

    /// PromQL label matchers, without braces, that select the exporter's
    /// series (e.g. 'job="mqtt",env="prod"'; empty selects all). A trailing
    /// comma, __name__ and unknown escapes are refused.
    #[arg(
        long = "rules.selector",
        env = "MQTT_EXPORTER_RULES_SELECTOR",
        default_value = crate::tools::rules::DEFAULT_SELECTOR,
        value_name = "MATCHERS"
    )]
    pub selector: crate::tools::rules::Selector,

    /// Absolute URL of the runbook; each alert's runbook_url is this plus
    /// the anchor of its section.
    #[arg(
        long = "rules.runbook-url",
        env = "MQTT_EXPORTER_RULES_RUNBOOK_URL",
        default_value = crate::tools::rules::DEFAULT_RUNBOOK_URL,
        value_name = "URL",
        value_parser = absolute_url
    )]
    pub runbook_url: String,

    /// Base URL of the "MQTT disconnects" Grafana dashboard (e.g.
    /// `https://grafana.example.com/d/mqtt-disconnects`). Each reason alert
    /// then gets a dashboard_url annotation opening it on that reason over
    /// the last 3 hours. Off when not given.
    #[arg(
        long = "rules.dashboard-url",
        env = "MQTT_EXPORTER_RULES_DASHBOARD_URL",
        value_name = "URL",
        value_parser = absolute_url
    )]
    pub dashboard_url: Option<String>,

    /// How a page links to the exporter instance that saw the storm
    /// (`SCHEME://INSTANCE/api/v1/top?reason=R`): https when its
    /// --web.config.file serves TLS.
    #[arg(
        long = "rules.exporter-scheme",
        env = "MQTT_EXPORTER_RULES_EXPORTER_SCHEME",
        default_value = "http",
        value_parser = ["http", "https"],
        value_name = "SCHEME"
    )]
    pub exporter_scheme: String,

    /// A reason alert fires when its rate is this many times its usual rate
    /// (the same time on the two days before; the hour before in the first
    /// day after install).
    #[arg(
        long = "rules.spike-factor",
        env = "MQTT_EXPORTER_RULES_SPIKE_FACTOR",
        default_value_t = 3.0,
        value_name = "FACTOR",
        value_parser = spike_factor
    )]
    pub spike_factor: f64,

    /// The keepalive_timeout page needs at least this many timeouts a minute
    /// (over 2 minutes), whatever the usual rate.
    #[arg(
        long = "rules.keepalive-timeout-min",
        env = "MQTT_EXPORTER_RULES_KEEPALIVE_TIMEOUT_MIN",
        default_value_t = 12.0,
        value_name = "PER_MINUTE",
        value_parser = per_minute
    )]
    pub keepalive_timeout_min: f64,

    /// The too_many_connection page needs at least this many refusals a
    /// minute (over 2 minutes), whatever the usual rate.
    #[arg(
        long = "rules.too-many-connection-min",
        env = "MQTT_EXPORTER_RULES_TOO_MANY_CONNECTION_MIN",
        default_value_t = 6.0,
        value_name = "PER_MINUTE",
        value_parser = per_minute
    )]
    pub too_many_connection_min: f64,

    /// How long a reason alert keeps firing after its condition last held
    /// (keep_firing_for), so a lull inside an incident does not resolve it.
    #[arg(
        long = "rules.keep-firing-for",
        env = "MQTT_EXPORTER_RULES_KEEP_FIRING_FOR",
        default_value = "3m",
        value_name = "DURATION",
        value_parser = duration
    )]
    pub keep_firing_for: Duration,

    /// The severity label of alerts that page.
    #[arg(
        long = "rules.severity-critical",
        env = "MQTT_EXPORTER_RULES_SEVERITY_CRITICAL",
        default_value = "critical",
        value_name = "NAME",
        value_parser = label_text
    )]
    pub severity_critical: String,

    /// The severity label of alerts that want attention soon.
    #[arg(
        long = "rules.severity-warning",
        env = "MQTT_EXPORTER_RULES_SEVERITY_WARNING",
        default_value = "warning",
        value_name = "NAME",
        value_parser = label_text
    )]
    pub severity_warning: String,

    /// The severity label of informational alerts.
    #[arg(
        long = "rules.severity-info",
        env = "MQTT_EXPORTER_RULES_SEVERITY_INFO",
        default_value = "info",
        value_name = "NAME",
        value_parser = label_text
    )]
    pub severity_info: String,
}

#[derive(Debug, Clone, Args)]
pub struct DashboardsArgs {
    /// What to print.
    #[arg(long, value_enum, default_value_t = DashboardsFormat::Configmap)]
    pub format: DashboardsFormat,
}

/// How to reach the broker: used by the exporter and by `simulate`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "MQTT")]
pub struct BrokerArgs {
    /// Broker URL: mqtt://host:port or mqtts://host:port (TLS).
    #[arg(
        long = "mqtt.url",
        env = "MQTT_EXPORTER_MQTT_URL",
        default_value = "mqtt://127.0.0.1:1883",
        value_name = "URL"
    )]
    pub url: BrokerUrl,

    /// MQTT client ID. Default: mqtt-disconnect-exporter-HOSTNAME, stable per
    /// host and distinct across replicas (two exporters sharing one ID would
    /// take each other over).
    #[arg(
        long = "mqtt.client-id",
        env = "MQTT_EXPORTER_MQTT_CLIENT_ID",
        value_name = "ID",
        value_parser = client_id
    )]
    pub client_id: Option<String>,

    /// Username for the broker.
    #[arg(
        long = "mqtt.username",
        env = "MQTT_EXPORTER_MQTT_USERNAME",
        value_name = "NAME"
    )]
    pub username: Option<String>,

    /// File holding the broker password (trailing newline stripped). The
    /// password can also come from MQTT_EXPORTER_MQTT_PASSWORD; there is no
    /// plain password flag, so it never shows in `ps`.
    #[arg(
        long = "mqtt.password-file",
        env = "MQTT_EXPORTER_MQTT_PASSWORD_FILE",
        value_name = "PATH"
    )]
    pub password_file: Option<PathBuf>,

    /// MQTT keep-alive interval (5s to 65535s).
    #[arg(
        long = "mqtt.keepalive",
        env = "MQTT_EXPORTER_MQTT_KEEPALIVE",
        default_value = "30s",
        value_name = "DURATION",
        allow_hyphen_values = true,
        value_parser = keepalive
    )]
    pub keepalive: Duration,
}

/// TLS to the broker (mqtts://).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// CA certificate (PEM) that signed the broker's certificate. Without it,
    /// mqtts:// trusts the system's CAs (SSL_CERT_FILE and SSL_CERT_DIR are
    /// honoured), as a broker with a public certificate needs.
    #[arg(
        long = "mqtt.ca-file",
        env = "MQTT_EXPORTER_MQTT_CA_FILE",
        value_name = "PATH"
    )]
    pub ca_file: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS; needs --mqtt.key-file.
    #[arg(
        long = "mqtt.cert-file",
        env = "MQTT_EXPORTER_MQTT_CERT_FILE",
        value_name = "PATH"
    )]
    pub cert_file: Option<PathBuf>,

    /// Client private key (PEM) for mutual TLS; needs --mqtt.cert-file.
    #[arg(
        long = "mqtt.key-file",
        env = "MQTT_EXPORTER_MQTT_KEY_FILE",
        value_name = "PATH"
    )]
    pub key_file: Option<PathBuf>,

    /// Verify the broker's certificate for this name instead of the
    /// --mqtt.url host (e.g. when connecting by IP address).
    #[arg(
        long = "mqtt.tls-server-name",
        env = "MQTT_EXPORTER_MQTT_TLS_SERVER_NAME",
        value_name = "NAME",
        value_parser = server_name
    )]
    pub server_name: Option<String>,

    /// Accept any broker certificate (testing only: anyone in the path can
    /// read the events). Logged as a warning at every connect.
    #[arg(
        long = "mqtt.tls-insecure-skip-verify",
        env = "MQTT_EXPORTER_MQTT_TLS_INSECURE_SKIP_VERIFY"
    )]
    pub insecure_skip_verify: bool,
}

/// What the exporter subscribes to, and its session.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "MQTT")]
pub struct SubscriptionArgs {
    /// Topic filter to subscribe to; repeat for several. Shared subscriptions
    /// ($share/GROUP/FILTER) work. Defaults to TDMQ for MQTT's event topics.
    #[arg(
        long = "mqtt.topic",
        env = "MQTT_EXPORTER_MQTT_TOPIC",
        value_delimiter = ',',
        value_name = "FILTER",
        value_parser = topic_filter,
        default_values = [
            "$events/client_connected",
            "$events/client_disconnected",
            "$events/session_subscribed",
            "$events/session_unsubscribed",
        ]
    )]
    pub topics: Vec<String>,

    /// QoS of the subscription (0, 1 or 2). TDMQ publishes its event topics
    /// at QoS 0, so the broker delivers min(published, subscribed).
    #[arg(
        long = "mqtt.qos",
        env = "MQTT_EXPORTER_MQTT_QOS",
        default_value_t = 1,
        value_name = "QOS",
        value_parser = clap::value_parser!(u8).range(0..=2)
    )]
    pub qos: u8,

    /// Start a clean session on every connect. Default false: a persistent
    /// session, so QoS 1 events queue at the broker while the exporter is away.
    #[arg(
        long = "mqtt.clean-session",
        env = "MQTT_EXPORTER_MQTT_CLEAN_SESSION",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub clean_session: bool,

    /// MQTT 5 session expiry interval: how long the broker keeps the
    /// exporter's session (and queues events for it) after it goes away.
    #[arg(
        long = "mqtt.session-expiry",
        env = "MQTT_EXPORTER_MQTT_SESSION_EXPIRY",
        default_value = "1h",
        value_name = "DURATION",
        allow_hyphen_values = true,
        value_parser = session_expiry
    )]
    pub session_expiry: Duration,

    /// Largest MQTT packet the exporter accepts (told to the broker in CONNECT).
    #[arg(
        long = "mqtt.max-packet-size",
        env = "MQTT_EXPORTER_MQTT_MAX_PACKET_SIZE",
        default_value_t = 1024 * 1024,
        value_name = "BYTES",
        value_parser = clap::value_parser!(u32).range(1024..)
    )]
    pub max_packet_size: u32,

    /// MQTT version spoken to the broker: 5, 3.1.1, or auto (5, falling
    /// back to 3.1.1 when the broker refuses 5, as Mosquitto 1.5,
    /// RabbitMQ before 3.13 and ActiveMQ Classic do). Under 3.1.1 a
    /// persistent session has no expiry.
    #[arg(
        long = "mqtt.protocol",
        env = "MQTT_EXPORTER_MQTT_PROTOCOL",
        default_value = "auto",
        value_name = "VERSION"
    )]
    pub protocol: ProtocolChoice,

    /// Run with no MQTT source: events come only over HTTP
    /// (--ingest.token-file) or from files (--file.path).
    #[arg(
        long = "mqtt.disable",
        env = "MQTT_EXPORTER_MQTT_DISABLE",
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub disable: bool,
}

/// How events are read and flapping detected: the exporter, `demo` and
/// `analyze` share these.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Events and flapping")]
pub struct EventArgs {
    /// Largest event payload parsed; larger ones count as error="too_large".
    #[arg(
        long = "event.max-payload-size",
        env = "MQTT_EXPORTER_EVENT_MAX_PAYLOAD_SIZE",
        default_value_t = 64 * 1024,
        value_name = "BYTES",
        value_parser = at_least_1
    )]
    pub max_payload_size: usize,

    /// Event times further than this from their arrival time are clamped to
    /// it (and counted in mqtt_exporter_event_time_clamped_total), so a device
    /// or broker with a wrong clock cannot hide or prolong flapping.
    #[arg(
        long = "event.max-clock-skew",
        env = "MQTT_EXPORTER_EVENT_MAX_CLOCK_SKEW",
        default_value = "60s",
        value_name = "DURATION",
        allow_hyphen_values = true,
        value_parser = positive_duration
    )]
    pub max_clock_skew: Duration,

    /// Window for takeover flapping (event time).
    #[arg(
        long = "flapping.window",
        env = "MQTT_EXPORTER_FLAPPING_WINDOW",
        default_value = "5m",
        value_name = "DURATION",
        allow_hyphen_values = true,
        value_parser = positive_duration
    )]
    pub takeover_window: Duration,

    /// Takeovers of one client ID within --flapping.window that make it
    /// flapping (2 to 1000: one takeover is normal self-repair).
    #[arg(
        long = "flapping.takeover-threshold",
        env = "MQTT_EXPORTER_FLAPPING_TAKEOVER_THRESHOLD",
        default_value_t = 3,
        value_name = "N",
        value_parser = threshold
    )]
    pub takeover_threshold: usize,

    /// Window for reconnect flapping (event time); EMQX's flapping_detect default.
    #[arg(
        long = "flapping.window-reconnect",
        env = "MQTT_EXPORTER_FLAPPING_WINDOW_RECONNECT",
        default_value = "1m",
        value_name = "DURATION",
        allow_hyphen_values = true,
        value_parser = positive_duration
    )]
    pub reconnect_window: Duration,

    /// Disconnects of one client ID (any reason) within
    /// --flapping.window-reconnect that make it flapping (2 to 1000).
    #[arg(
        long = "flapping.reconnect-threshold",
        env = "MQTT_EXPORTER_FLAPPING_RECONNECT_THRESHOLD",
        default_value_t = 15,
        value_name = "N",
        value_parser = threshold
    )]
    pub reconnect_threshold: usize,

    /// Flapping clients exported as mqtt_client_flapping{clientid} series (at most 1000).
    #[arg(
        long = "flapping.top-clients",
        env = "MQTT_EXPORTER_FLAPPING_TOP_CLIENTS",
        default_value_t = 20,
        value_name = "N",
        value_parser = at_most_1000
    )]
    pub top_flapping: usize,

    /// Distinct peer addresses kept per flapping client (at most 1000).
    #[arg(
        long = "flapping.max-peers",
        env = "MQTT_EXPORTER_FLAPPING_MAX_PEERS",
        default_value_t = 8,
        value_name = "N",
        value_parser = at_most_1000
    )]
    pub max_peers: usize,

    /// An extra spelling of a reason, RAW=CANONICAL (e.g. "Session Kicked=kicked"),
    /// matched like the table's own aliases and before them; repeat, or separate
    /// with commas, for several (write a comma inside RAW as \,). CANONICAL is a
    /// label value of `mqtt-disconnect-exporter reasons`. A spelling given two
    /// reasons, and a numeric RAW (codes map through the MQTT 5 table), are refused.
    #[arg(
        long = "reason.alias",
        env = "MQTT_EXPORTER_REASON_ALIAS",
        value_name = "RAW=CANONICAL"
    )]
    pub reason_aliases: Vec<AliasList>,

    /// Client IDs per reason exported as mqtt_client_top_disconnects{reason,clientid}
    /// series: those with the most disconnects in --top.window, among the ones
    /// that stand out (3 or more; at most 100; 0 exports none). /api/v1/top lists
    /// up to 20.
    #[arg(
        long = "top.clients",
        env = "MQTT_EXPORTER_TOP_CLIENTS",
        default_value_t = 5,
        value_name = "N",
        value_parser = at_most_100
    )]
    pub top_clients: usize,

    /// Broker nodes counted by name in mqtt_node_disconnects_total{node,reason};
    /// disconnects from later nodes count as node="other".
    #[arg(
        long = "node.max-nodes",
        env = "MQTT_EXPORTER_NODE_MAX_NODES",
        default_value_t = 32,
        value_name = "N",
        value_parser = at_most_1000
    )]
    pub max_nodes: usize,

    /// Source networks per reason exported as
    /// mqtt_network_top_disconnects{reason,network} series: those with the
    /// most disconnects in --top.window, among the ones that stand out (3 or
    /// more; at most 100; 0 exports none). /api/v1/top lists up to 20.
    #[arg(
        long = "top.networks",
        env = "MQTT_EXPORTER_TOP_NETWORKS",
        default_value_t = 5,
        value_name = "N",
        value_parser = at_most_100
    )]
    pub top_networks: usize,

    /// Prefix length an IPv4 peer's source network is cut at.
    #[arg(
        long = "top.network-prefix-v4",
        env = "MQTT_EXPORTER_TOP_NETWORK_PREFIX_V4",
        default_value_t = 24,
        value_name = "BITS",
        value_parser = clap::value_parser!(u8).range(8..=32)
    )]
    pub network_prefix_v4: u8,

    /// Prefix length an IPv6 peer's source network is cut at.
    #[arg(
        long = "top.network-prefix-v6",
        env = "MQTT_EXPORTER_TOP_NETWORK_PREFIX_V6",
        default_value_t = 48,
        value_name = "BITS",
        value_parser = clap::value_parser!(u8).range(16..=128)
    )]
    pub network_prefix_v6: u8,

    /// Window of the top clients per reason; it slides in fifths.
    #[arg(
        long = "top.window",
        env = "MQTT_EXPORTER_TOP_WINDOW",
        default_value = "5m",
        value_name = "DURATION",
        allow_hyphen_values = true,
        value_parser = positive_duration
    )]
    pub top_window: Duration,

    /// Cap on client IDs held in flapping state; least recently seen are evicted.
    #[arg(
        long = "clients.max-tracked",
        env = "MQTT_EXPORTER_CLIENTS_MAX_TRACKED",
        default_value_t = 1_000_000,
        value_name = "N",
        value_parser = at_least_1
    )]
    pub max_tracked: usize,

    /// Cap on connections whose start is remembered, to tell how long each
    /// lived when its disconnect event does not say (mqtt_client_connection_duration_seconds);
    /// connects beyond it are not remembered (mqtt_exporter_connections_untracked_total).
    #[arg(
        long = "clients.max-connected",
        env = "MQTT_EXPORTER_CLIENTS_MAX_CONNECTED",
        default_value_t = 1_000_000,
        value_name = "N"
    )]
    pub max_connected: usize,
}

/// The HTTP endpoints.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Web")]
pub struct WebArgs {
    /// Address for /metrics and the other endpoints: host:port, `[v6]:port`, or
    /// a bare :port for every interface, IPv6 and IPv4. A host name listens on
    /// every address it resolves to. Repeat it (or separate with commas in the
    /// environment variable) to listen on several.
    #[arg(
        long = "web.listen-address",
        env = "MQTT_EXPORTER_WEB_LISTEN_ADDRESS",
        default_value = "127.0.0.1:9883",
        value_name = "ADDR",
        value_delimiter = ',',
        action = clap::ArgAction::Append
    )]
    pub listen_addresses: Vec<ListenAddress>,

    /// A web config file (Prometheus exporter-toolkit format): TLS, client
    /// certificates, basic auth users with bcrypt hashes and response headers,
    /// for every endpoint. Re-read when it or a file it names changes.
    #[arg(
        long = "web.config.file",
        env = "MQTT_EXPORTER_WEB_CONFIG_FILE",
        value_name = "FILE"
    )]
    pub config_file: Option<PathBuf>,

    /// Path under which metrics are served (not /, /-/healthy, /-/ready or /api/...).
    #[arg(
        long = "web.telemetry-path",
        env = "MQTT_EXPORTER_WEB_TELEMETRY_PATH",
        default_value = "/metrics",
        value_name = "PATH",
        value_parser = telemetry_path
    )]
    pub telemetry_path: String,
}

/// Logging, on stderr.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Log")]
pub struct LogArgs {
    /// Log level (`warning` is read as `warn`).
    #[arg(
        long = "log.level",
        env = "MQTT_EXPORTER_LOG_LEVEL",
        default_value = "info",
        value_name = "LEVEL",
        value_enum,
        ignore_case = true
    )]
    pub level: LogLevel,

    /// Log format.
    #[arg(
        long = "log.format",
        env = "MQTT_EXPORTER_LOG_FORMAT",
        default_value = "logfmt",
        value_name = "FORMAT",
        value_enum
    )]
    pub format: LogFormat,
}

fn bounded(raw: &str, min: usize, max: usize) -> Result<usize, String> {
    let n: usize = raw
        .trim()
        .parse()
        .map_err(|_| "expected a whole number".to_string())?;
    if n < min || n > max {
        return Err(format!("must be between {min} and {max}"));
    }
    Ok(n)
}

fn threshold(raw: &str) -> Result<usize, String> {
    bounded(raw, 2, 1000).map_err(|e| format!("{e} (one takeover is normal self-repair)"))
}

fn at_most_1000(raw: &str) -> Result<usize, String> {
    bounded(raw, 0, 1000)
}

fn at_most_100(raw: &str) -> Result<usize, String> {
    bounded(raw, 0, 100)
}

fn at_least_1(raw: &str) -> Result<usize, String> {
    bounded(raw, 1, usize::MAX)
}

/// The README's flag table: every flag of the exporter, by help heading,
/// with its environment variable, default and help, from the definitions
/// above (a test keeps the README's copy equal to it).
pub fn markdown_flags() -> String {
    let command = Cli::command();
    let mut out = String::new();
    let mut heading = None;
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        if matches!(long, "help" | "version") {
            continue;
        }
        if arg.get_help_heading() != heading {
            heading = arg.get_help_heading();
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!(
                "**{}**\n\n| flag | env | default | meaning |\n|---|---|---|---|\n",
                heading.unwrap_or("Other")
            ));
        }
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect();
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|h| h.to_string().replace('\n', " ").replace('|', "\\|"))
            .unwrap_or_default();
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        let mut help = help.trim_end_matches('.').to_string();
        help.push('.');
        if !values.is_empty() && values != ["`true`", "`false`"] {
            help.push_str(&format!(" One of {}.", values.join(", ")));
        }
        out.push_str(&format!(
            "| `--{long}` | {env} | {} | {help} |\n",
            if defaults.is_empty() {
                "—".to_string()
            } else {
                defaults.join(", ")
            }
        ));
    }
    out
}
