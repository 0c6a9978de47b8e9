//! The `mqtt-disconnect-exporter` binary: parse flags, validate, run.

use std::process::ExitCode;

use clap::Parser;
use mqtt_disconnect_exporter::cli::{Cli, Command};
use mqtt_disconnect_exporter::config::{Config, LogFormat};
use mqtt_disconnect_exporter::{reasons, shutdown};

/// Exit code for bad flags or configuration (EX_USAGE).
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print(); // --help, --version
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(Command::Reasons) = cli.command {
        print!("{}", reasons::markdown_table());
        return ExitCode::SUCCESS;
    }
    let password = std::env::var("MQTT_EXPORTER_MQTT_PASSWORD").ok();
    let config = match Config::from_args(&cli.serve, password, &hostname()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mqtt-disconnect-exporter: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_tracing(&config.log_level, config.log_format);
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (trigger, shutdown) = shutdown::channel();
        tokio::spawn(async move {
            match shutdown::signal().await {
                Ok(name) => tracing::info!(signal = name, "shutting down"),
                Err(e) => tracing::error!(error = %e, "cannot listen for signals"),
            }
            trigger.fire();
        });
        mqtt_disconnect_exporter::run(config, shutdown).await
    })?;
    Ok(())
}

fn init_tracing(level: &str, format: LogFormat) {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default()
}
