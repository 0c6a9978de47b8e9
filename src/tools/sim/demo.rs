//! `demo`: the whole exporter with nothing installed.
//!
//! Starts an embedded MQTT broker (rumqttd) on a free 127.0.0.1 port, the
//! simulated fleet of [`crate::tools::sim::fleet`] publishing through it, and the real
//! exporter ([`crate::run`]) subscribed to it, serving `/metrics` and the
//! landing page as usual. rumqttd refuses subscriptions to `$`-prefixed
//! topics, so the demo fleet publishes on `demo/events/<kind>`.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use std::process::ExitCode;

use crate::config::Config;
use crate::core::pipeline::PipelineSettings;
use crate::core::status::Status;
use crate::edge::mqtt::session::{Protocol, ProtocolChoice};
use crate::edge::mqtt::settings::{BrokerConfig, Settings as MqttSettings, Transport};
use crate::edge::process::{exit_code, init_tracing, run_until_signal};
use crate::edge::process::{LogFormat, LogLevel};
use crate::edge::shutdown::Shutdown;
use crate::edge::source::SourceSettings;
use crate::tools::sim::fleet::Scenario;
use crate::tools::sim::pace::Plan;
use crate::tools::sim::publish::{self, Target};

/// Topic prefix the demo fleet publishes on.
pub const TOPIC_PREFIX: &str = "demo/events";

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot find a free port for the embedded broker: {0}")]
    Port(std::io::Error),
    #[error("the embedded broker did not start listening on {0}")]
    BrokerStart(SocketAddr),
    #[error(transparent)]
    Run(#[from] crate::RunError),
    #[error(transparent)]
    Bind(#[from] crate::edge::listen::BindError),
    #[error("the exporter task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Starts rumqttd on a thread of its own, with one listener speaking
/// `version` on a free 127.0.0.1 port; returns its address once it
/// listens. With [`Protocol::V311`] it is a broker that speaks only MQTT
/// 3.1.1, as the tests use it.
pub fn start_broker(version: Protocol) -> Result<SocketAddr, DemoError> {
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(DemoError::Port)?;
    let server = rumqttd::ServerSettings {
        name: format!("demo-{}", version.as_str()),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 1024 * 1024,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 64,
            max_outgoing_packet_count: 500,
            max_segment_size: 16 * 1024 * 1024,
            max_segment_count: 4,
            ..Default::default()
        },
        v4: (version == Protocol::V311)
            .then(|| HashMap::from([("demo".to_string(), server.clone())])),
        v5: (version == Protocol::V5).then(|| HashMap::from([("demo".to_string(), server)])),
        ..Default::default()
    };
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(DemoError::Port)?;
    for _ in 0..200 {
        if TcpStream::connect(addr).is_ok() {
            return Ok(addr);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(DemoError::BrokerStart(addr))
}

/// The `demo` subcommand: the exporter's configuration from `args` (no
/// broker flags: the broker is embedded), then [`run`] until a signal.
/// What `demo` runs: the fleet's size and rate, and the exporter's event,
/// web and log settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Devices in the simulated fleet.
    pub clients: usize,
    /// Steady disconnects per second.
    pub rate: u32,
    pub web: crate::edge::http::Settings,
    pub pipeline: PipelineSettings,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
}

pub fn main(args: &DemoOptions) -> ExitCode {
    init_tracing(args.log_level, args.log_format);
    exit_code(run_until_signal(|shutdown| run(args, shutdown)))
}

/// The embedded broker at `addr`, as a client called `client_id` reaches it.
fn embedded_broker(addr: SocketAddr, client_id: &str) -> BrokerConfig {
    BrokerConfig {
        host: addr.ip().to_string(),
        port: addr.port(),
        transport: Transport::Tcp,
        client_id: client_id.into(),
        username: None,
        password: None,
        password_file: None,
        keepalive: Duration::from_secs(30),
    }
}

/// Runs broker, fleet and exporter until `shutdown` fires: the exporter
/// takes its event, flapping, web and log settings from `args`, and is
/// subscribed to the embedded broker.
pub async fn run(args: &DemoOptions, shutdown: Shutdown) -> Result<(), DemoError> {
    let broker = start_broker(Protocol::V5)?;
    tracing::info!(address = %broker, topics = %format!("{TOPIC_PREFIX}/#"), "embedded MQTT broker listening");
    let config = Config {
        sources: vec![SourceSettings::Mqtt(Box::new(MqttSettings {
            broker: embedded_broker(broker, "demo-exporter"),
            topics: vec![format!("{TOPIC_PREFIX}/#")],
            qos: 1,
            // the embedded broker is new every run: nothing to resume
            clean_session: true,
            session_expiry: Duration::ZERO,
            max_packet_size: 1024 * 1024,
            protocol: ProtocolChoice::V5,
        }))],
        web: args.web.clone(),
        pipeline: args.pipeline.clone(),
        log_level: args.log_level,
        log_format: args.log_format,
    };
    let target = Target {
        broker: embedded_broker(broker, "demo-fleet"),
        topic_prefix: TOPIC_PREFIX.into(),
    };
    let plan = Plan {
        scenario: Scenario::Demo,
        rate: args.rate,
        clients: args.clients,
        duration: None,
        seed: 1,
    };
    let status = Arc::new(Status::new(prometheus::Registry::new()));
    let listeners = crate::bind(&config.web.listen).await?;
    let exporter = tokio::spawn(crate::run(
        config,
        listeners,
        Arc::clone(&status),
        shutdown.clone(),
    ));
    // The embedded broker keeps nothing for absent subscribers: start the
    // fleet once the exporter has subscribed, so no event is lost.
    let mut waiting = shutdown.clone();
    let (subscribed, ready) = tokio::sync::oneshot::channel();
    status.when_ready(move || {
        let _ = subscribed.send(());
    });
    tokio::select! {
        _ = ready => {}
        _ = waiting.recv() => {}
    }
    let summary = publish::run(plan, target, shutdown).await;
    tracing::info!(published = summary.published, "demo fleet stopped");
    match exporter.await {
        Ok(served) => served.map_err(DemoError::from),
        Err(e) => Err(DemoError::Task(e.to_string())),
    }
}
