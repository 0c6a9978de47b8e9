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
//!   [`tools::analyze`], [`tools::sim`] (fleet, its pace and plan,
//!   publish to a broker, post to the ingest routes, demo),
//!   [`tools::rules`], [`tools::dashboards`].
//! - [`edge`]: the I/O shells. [`edge::source`] (what a source is, and the
//!   list `run` starts), the sources [`edge::mqtt`] (settings, session
//!   logic, rumqttc link, TLS files, metrics), [`edge::ingest`] (events
//!   pushed over HTTP) and [`edge::file`] (a log file followed like
//!   `tail -F`); [`edge::feed`] (the one pipeline, shared by the sources),
//!   [`edge::http`] (hyper: admission, the server, the pages, its web
//!   config, its metrics), [`edge::listen`] (addresses and sockets),
//!   [`edge::files`] (reading the files flags name), [`edge::shutdown`]
//!   (signals), [`edge::process`] (runtime, logs).
//! - [`core`]: the pure core. [`core::reasons`] (the reference table),
//!   [`core::event`] (parse one message or line; its JSON scanner),
//!   [`core::flapping`] (per-client windows; its client table),
//!   [`core::top`] (the devices and networks that stand out),
//!   [`core::network`], [`core::lifetime`], [`core::pipeline`] (one message
//!   in, metrics out, one [`core::snapshot::Snapshot`] a tick),
//!   [`core::metrics`] (with [`core::label_set`], label sets as types),
//!   [`core::status`] (each source's health and the last snapshot),
//!   [`core::clock`], [`core::duration`]. No tokio, rumqttc or hyper; time
//!   is data.
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
use crate::edge::http;
use crate::edge::http::metrics::WebMetrics;
use crate::edge::listen::BindError;
use crate::edge::shutdown::Shutdown;
use crate::edge::source::{Context, StartError};

/// Why [`run`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Source(#[from] StartError),
}

/// The exporter: serves `/metrics` and the other endpoints on `listeners`,
/// and runs every source of `config.sources` into one pipeline, until
/// `shutdown` fires. Its metrics are registered on `status`'s registry; each
/// source has its own health entry in `status`, which tells the caller (and
/// `/-/ready`) when every source is ready.
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
    let mut tasks = Vec::new();
    let mut routes = None;
    for source in config.sources {
        let name = source.name();
        let started = source.start(Context {
            inlet: feed.inlet(),
            health: status.health(name),
            registry,
            shutdown: shutdown.clone(),
        })?;
        tasks.push(tokio::spawn(started.task));
        routes = routes.or(started.routes);
    }
    let feed = tokio::spawn(feed.run(shutdown.clone()));

    for listener in &listeners {
        if let Ok(local) = listener.local_addr() {
            tracing::info!(address = %local, path = %config.web.telemetry_path, "serving metrics");
        }
    }
    let http = tokio::spawn(http::run(
        listeners,
        Arc::clone(&status),
        config.web,
        routes,
        web,
        shutdown,
    ));
    for task in tasks {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "a source's task failed");
        }
    }
    // the sources are done: the feed's last tick includes all they delivered
    if let Err(e) = feed.await {
        tracing::error!(error = %e, "the feed task failed");
    }
    if let Err(e) = http.await {
        tracing::error!(error = %e, "http server task failed");
    }
    Ok(())
}
