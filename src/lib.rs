//! mqtt-disconnect-exporter: a Prometheus exporter for MQTT client
//! disconnect reasons and takeover flapping.
//!
//! A broker publishes a JSON event each time a client connects, disconnects
//! or subscribes. This crate subscribes to those events, maps each raw
//! disconnect reason onto a fixed reference table, detects client-ID
//! takeover flapping, and serves the counts on `/metrics`.
//!
//! Layout (dependencies point one way: tools and edges use the core, never
//! the reverse):
//! - [`core`]: the pure core. [`core::reasons`] (the reference table),
//!   [`core::event`] (parse one message; its JSON scanner), [`core::flapping`]
//!   (per-client windows; its client table), [`core::pipeline`] (one message
//!   in, metrics out), [`core::metrics`], [`core::status`] (what the edges
//!   share), [`core::clock`]. No tokio, rumqttc or hyper; time is data.
//! - [`edge`]: the I/O shells. [`edge::mqtt`] (rumqttc), [`edge::http`]
//!   (hyper), [`edge::shutdown`] (signals).
//! - [`tools`]: the other subcommands on the same pipeline.
//!   [`tools::analyze`] (offline report; its input formats) and
//!   [`tools::sim`] (fleet, publish, demo).
//! - [`cli`] defines the flags, [`config`] reads files and checks
//!   combinations into a [`config::Config`].
//!
//! [`run`] is the one entry point of the `serve` mode.

pub mod cli;
pub mod config;
pub mod core;
pub mod edge;
pub mod tools;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::core::metrics::{register_process_collector, Metrics, WebMetrics};
use crate::core::pipeline::Pipeline;
use crate::core::status::Status;
use crate::edge::shutdown::Shutdown;
use crate::edge::{http, mqtt};

/// Why [`run`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    // the I/O error is part of the message, not a source: a source would be
    // printed a second time by `{:#}`
    #[error("cannot listen on {addr}: {why}")]
    Bind {
        addr: SocketAddr,
        why: std::io::Error,
    },
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Binds the HTTP listener `run` serves on.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|why| RunError::Bind { addr, why })
}

/// The exporter: serves `/metrics` and the other endpoints on `listener`
/// and subscribes to the broker, until `shutdown` fires. Its metrics are
/// registered on `status`'s registry, and `status` tells the caller (and
/// `/-/ready`) when the subscription is live.
pub async fn run(
    config: Config,
    listener: TcpListener,
    status: Arc<Status>,
    shutdown: Shutdown,
) -> Result<(), RunError> {
    let registry = status.registry();
    register_process_collector(registry)?;
    let metrics = Metrics::new(registry)?;
    let web = WebMetrics::new(registry)?;
    let pipeline = Pipeline::new(metrics, config.pipeline.clone());

    if let Ok(local) = listener.local_addr() {
        tracing::info!(address = %local, path = %config.web.telemetry_path, "serving metrics");
    }
    let http = tokio::spawn(http::run(
        listener,
        Arc::clone(&status),
        config.web.telemetry_path.clone(),
        web,
        shutdown.clone(),
    ));
    mqtt::run(config.mqtt, pipeline, status, shutdown).await;
    if let Err(e) = http.await {
        tracing::error!(error = %e, "http server task failed");
    }
    Ok(())
}
