//! mqtt-disconnect-exporter: a Prometheus exporter for MQTT client
//! disconnect reasons and takeover flapping.
//!
//! A broker publishes a JSON event each time a client connects, disconnects
//! or subscribes. This crate subscribes to those events, maps each raw
//! disconnect reason onto a fixed reference table, detects client-ID
//! takeover flapping, and serves the counts on `/metrics`.
//!
//! Layout (dependencies point down; the core never does I/O or reads a clock):
//! - [`cli`], [`config`]: flags, and their validation into a [`config::Config`].
//! - [`mqtt`], [`http`], [`shutdown`]: the edges (rumqttc, hyper, signals).
//! - [`demo`], [`simulate`], [`analyze`]: the other subcommands, on the same
//!   pipeline; [`fleet`] is the pure simulated fleet they publish.
//! - [`pipeline`]: one message in, metrics out; synchronous.
//! - [`event`], [`reasons`], [`flapping`], [`metrics`]: the pure core.
//!
//! [`run`] is the one entry point of the `serve` mode.

pub mod analyze;
pub mod cli;
pub mod config;
pub mod demo;
pub mod event;
pub mod flapping;
pub mod fleet;
pub mod http;
pub mod json;
pub mod metrics;
pub mod mqtt;
pub mod pipeline;
pub mod reasons;
pub mod shutdown;
pub mod simulate;

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus::Registry;

use crate::config::Config;
use crate::http::Status;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::shutdown::Shutdown;

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
    metrics::register_process_collector(registry)?;
    let metrics = Metrics::new(registry)?;
    let web = metrics::WebMetrics::new(registry)?;
    let pipeline = Pipeline::new(metrics, config.pipeline.clone());

    let addr = config.web.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|why| RunError::Bind { addr, why })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(address = %local, path = %config.web.telemetry_path, "serving metrics");

    let http = tokio::spawn(http::serve(
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
