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

use prometheus::Registry;

use crate::config::Config;
use crate::core::metrics::Metrics;
use crate::core::pipeline::Pipeline;
use crate::core::status::Status;
use crate::edge::shutdown::Shutdown;

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

/// Serves `/metrics` and subscribes to the broker until `shutdown` fires.
pub async fn run(config: Config, shutdown: Shutdown) -> Result<(), RunError> {
    serve(config, Arc::new(Status::new(Registry::new())), shutdown).await
}

/// [`run`] with the [`Status`] (and its registry) made by the caller, who can
/// then watch readiness.
pub async fn serve(
    config: Config,
    status: Arc<Status>,
    shutdown: Shutdown,
) -> Result<(), RunError> {
    let registry = status.registry();
    crate::core::metrics::register_process_collector(registry)?;
    let metrics = Metrics::new(registry)?;
    let web = crate::core::metrics::WebMetrics::new(registry)?;
    let pipeline = Pipeline::new(metrics, config.pipeline.clone());

    let addr = config.web.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|why| RunError::Bind { addr, why })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(address = %local, path = %config.web.telemetry_path, "serving metrics");

    let http = tokio::spawn(crate::edge::http::serve(
        listener,
        Arc::clone(&status),
        config.web.telemetry_path.clone(),
        web,
        shutdown.clone(),
    ));
    crate::edge::mqtt::run(config.mqtt, pipeline, status, shutdown).await;
    if let Err(e) = http.await {
        tracing::error!(error = %e, "http server task failed");
    }
    Ok(())
}
