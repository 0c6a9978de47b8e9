//! mqtt-disconnect-exporter: a Prometheus exporter for MQTT client
//! disconnect reasons and takeover flapping.
//!
//! A broker publishes a JSON event each time a client connects, disconnects
//! or subscribes. This crate subscribes to those events, maps each raw
//! disconnect reason onto a fixed reference table, detects client-ID
//! takeover flapping, and serves the counts on `/metrics`.
//!
//! Layout (dependencies point one way, downwards: the CLI on top, the
//! core at the bottom):
//! - [`cli`]: the flags (`cli/mod.rs`) and their reading into each part's
//!   settings (`cli/settings.rs`). Nothing below it names it.
//! - [`config`]: the settings of each part, composed into a
//!   [`config::Config`], and [`config::ConfigError`].
//! - [`tools`]: the other subcommands, each taking its own options.
//!   [`tools::analyze`], [`tools::sim`] (fleet, publish, demo),
//!   [`tools::rules`], [`tools::dashboards`].
//! - [`edge`]: the I/O shells. [`edge::mqtt`] (the MQTT source: its
//!   settings, session logic, rumqttc link, TLS files and metrics),
//!   [`edge::http`] (hyper; its web config), [`edge::listen`] (addresses
//!   and sockets), [`edge::files`] (reading the files flags name),
//!   [`edge::shutdown`] (signals), [`edge::process`] (runtime, logs).
//! - [`core`]: the pure core. [`core::reasons`] (the reference table),
//!   [`core::event`] (parse one message; its JSON scanner), [`core::flapping`]
//!   (per-client windows; its client table), [`core::pipeline`] (one message
//!   in, metrics out), [`core::metrics`], [`core::status`] (what the edges
//!   share), [`core::clock`], [`core::duration`]. No tokio, rumqttc or
//!   hyper; time is data.
//!
//! [`run`] is the one entry point of the `serve` mode.

pub mod cli;
pub mod config;
pub mod core;
pub mod edge;
pub mod tools;

use std::sync::Arc;

use tokio::net::TcpListener;

pub use crate::edge::listen::bind;

use crate::config::Config;
use crate::core::metrics::{register_process_collector, Metrics};
use crate::core::pipeline::Pipeline;
use crate::core::status::Status;
use crate::edge::feed::Feed;
use crate::edge::http::metrics::WebMetrics;
use crate::edge::ingest::Ingest;
use crate::edge::shutdown::Shutdown;
use crate::edge::{http, mqtt};

/// Why [`run`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    // the I/O error is part of the message, not a source: a source would be
    // printed a second time by `{:#}`
    #[error("cannot listen on {addr}: {why}")]
    Bind { addr: String, why: std::io::Error },
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot start HTTP ingestion: {0}")]
    Ingest(crate::edge::ingest::IngestError),
}

/// The exporter: serves `/metrics` and the other endpoints on `listeners`,
/// and runs its sources (the MQTT subscription unless `--mqtt.disable`, HTTP
/// ingest with `--webhook.token-file`) into one pipeline, until `shutdown`
/// fires. Its metrics are registered on `status`'s registry, and `status`
/// tells the caller (and `/-/ready`) when it is ready: subscribed, or,
/// without MQTT, listening.
pub async fn run(
    config: Config,
    listeners: Vec<TcpListener>,
    status: Arc<Status>,
    shutdown: Shutdown,
) -> Result<(), RunError> {
    let registry = status.registry();
    register_process_collector(registry)?;
    let metrics = Metrics::new(registry)?;
    let web = WebMetrics::new(registry)?;
    let pipeline = Pipeline::new(metrics, config.pipeline.clone());
    let feed = Feed::new(pipeline, Arc::clone(&status));
    let ingest = match &config.ingest {
        Some(settings) => Some(Arc::new(
            Ingest::new(settings, feed.inlet(), registry).map_err(RunError::Ingest)?,
        )),
        None => None,
    };
    let mqtt_inlet = feed.inlet();
    let feed = tokio::spawn(feed.run(shutdown.clone()));

    for listener in &listeners {
        if let Ok(local) = listener.local_addr() {
            tracing::info!(address = %local, path = %config.web.telemetry_path, "serving metrics");
        }
    }
    let http = tokio::spawn(http::run(
        listeners,
        Arc::clone(&status),
        http::Settings {
            telemetry_path: config.web.telemetry_path.clone(),
            web_config: config.web.config_file.clone(),
            ingest,
        },
        web,
        shutdown.clone(),
    ));
    match config.mqtt {
        Some(mqtt_settings) => {
            let mqtt_metrics = mqtt::metrics::MqttMetrics::new(registry, &mqtt_settings.topics)?;
            mqtt::run(mqtt_settings, mqtt_metrics, mqtt_inlet, status, shutdown).await;
        }
        None => {
            // HTTP is the only source, and it is listening
            tracing::info!("no MQTT source (--mqtt.disable): events come over HTTP only");
            status.set_ready(true);
            let mut shutdown = shutdown;
            shutdown.recv().await;
            status.set_ready(false);
        }
    }
    // the source is done: the feed's last tick includes all it delivered
    if let Err(e) = feed.await {
        tracing::error!(error = %e, "the feed task failed");
    }
    if let Err(e) = http.await {
        tracing::error!(error = %e, "http server task failed");
    }
    Ok(())
}
