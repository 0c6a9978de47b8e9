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
//!   combinations into a [`config::Config`]; [`web_config`] reads the
//!   exporter-toolkit web config (TLS, basic auth, headers) and
//!   [`edge::mqtt::broker_tls`] the files of the TLS connection to the
//!   broker.
//!
//! [`run`] is the one entry point of the `serve` mode.

pub mod cli;
pub mod config;
pub mod core;
pub mod edge;
pub mod tools;
pub mod web_config;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::cli::ListenAddress;
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
    Bind { addr: String, why: std::io::Error },
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Binds the HTTP listeners `run` serves on: every address a host name
/// resolves to, and for a bare `:port` one socket for IPv6 and IPv4 both
/// (IPv4 alone where the host has no IPv6).
pub async fn bind(addresses: &[ListenAddress]) -> Result<Vec<TcpListener>, RunError> {
    let mut listeners = Vec::new();
    for address in addresses {
        let fail = |why| RunError::Bind {
            addr: address.to_string(),
            why,
        };
        let resolved: Vec<SocketAddr> = match &address.host {
            None => {
                let any = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), address.port);
                match listen(any, true) {
                    Ok(l) => listeners.push(l),
                    Err(_) => listeners.push(
                        listen(SocketAddr::from(([0, 0, 0, 0], address.port)), false)
                            .map_err(fail)?,
                    ),
                }
                continue;
            }
            Some(host) => tokio::net::lookup_host((host.as_str(), address.port))
                .await
                .map_err(fail)?
                .collect(),
        };
        let mut seen = Vec::new();
        for addr in resolved {
            if !seen.contains(&addr) {
                seen.push(addr);
                listeners.push(listen(addr, false).map_err(fail)?);
            }
        }
    }
    Ok(listeners)
}

/// One listening socket; `dual_stack` accepts IPv4 on an IPv6 socket too.
fn listen(addr: SocketAddr, dual_stack: bool) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(!dual_stack)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// The exporter: serves `/metrics` and the other endpoints on `listeners`
/// and subscribes to the broker, until `shutdown` fires. Its metrics are
/// registered on `status`'s registry, and `status` tells the caller (and
/// `/-/ready`) when the subscription is live.
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
        },
        web,
        shutdown.clone(),
    ));
    let mqtt_metrics = mqtt::metrics::MqttMetrics::new(registry, &config.mqtt.topics)?;
    mqtt::run(config.mqtt, mqtt_metrics, pipeline, status, shutdown).await;
    if let Err(e) = http.await {
        tracing::error!(error = %e, "http server task failed");
    }
    Ok(())
}
