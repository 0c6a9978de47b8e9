//! The `mqtt-disconnect-exporter` binary: parse flags, validate, run.

use std::future::Future;
use std::io::{BufReader, Write};
use std::process::ExitCode;

use clap::Parser;
use mqtt_disconnect_exporter::cli::{AnalyzeArgs, Cli, Command, ReportFormat, SimulateArgs};
use mqtt_disconnect_exporter::config::{self, Config, LogFormat};
use mqtt_disconnect_exporter::core::reasons;
use mqtt_disconnect_exporter::edge::shutdown::{self, Shutdown};
use mqtt_disconnect_exporter::tools::analyze;
use mqtt_disconnect_exporter::tools::sim::{demo, publish};

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
            // one line, like every other usage error: clap's first line
            // names the flag; its tips and usage follow on more lines
            let text = e.render().to_string();
            let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            return usage(line.trim_start_matches("error: "));
        }
    };
    if let Some(Command::Reasons) = cli.command {
        print!("{}", reasons::markdown_table());
        return ExitCode::SUCCESS;
    }
    let password = std::env::var("MQTT_EXPORTER_MQTT_PASSWORD").ok();
    let config = match Config::from_args(&cli.serve, password, &hostname()) {
        Ok(config) => config,
        Err(e) => return usage(e),
    };
    match cli.command {
        Some(Command::Analyze(args)) => return run_analyze(&args, config),
        Some(Command::Simulate(args)) => {
            init_tracing(&config.log_level, config.log_format);
            return run_simulate(&args, config);
        }
        _ => {}
    }
    init_tracing(&config.log_level, config.log_format);
    let result = match cli.command {
        Some(Command::Demo(args)) => with_runtime(|shutdown| async move {
            demo::run(config, args.clients, args.rate, shutdown)
                .await
                .map_err(anyhow::Error::from)
        }),
        _ => with_runtime(|shutdown| async move {
            mqtt_disconnect_exporter::run(config, shutdown)
                .await
                .map_err(anyhow::Error::from)
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn usage(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("mqtt-disconnect-exporter: {e}");
    ExitCode::from(EXIT_USAGE)
}

/// Runs `f` on a runtime with SIGINT/SIGTERM wired to its shutdown signal.
fn with_runtime<F, Fut, T>(f: F) -> anyhow::Result<T>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
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
        f(shutdown).await
    })
}

fn run_simulate(args: &SimulateArgs, config: Config) -> ExitCode {
    if !matches!(config.mqtt.transport, config::Transport::Tcp) {
        return usage("simulate supports mqtt:// only");
    }
    let duration = match args.duration.as_deref().map(config::parse_duration) {
        None => None,
        Some(Ok(d)) if !d.is_zero() => Some(d),
        Some(Ok(_)) => return usage("invalid value for --duration: must be above zero"),
        Some(Err(why)) => return usage(format!("invalid value for --duration: {why}")),
    };
    let sim = publish::SimConfig {
        host: config.mqtt.host.clone(),
        port: config.mqtt.port,
        client_id: format!("mqtt-disconnect-exporter-simulator-{}", std::process::id()),
        topic_prefix: args.topic_prefix.trim_end_matches('/').to_string(),
        scenario: args.scenario,
        rate: args.rate,
        clients: args.clients,
        duration,
        seed: args.seed,
    };
    let summary =
        match with_runtime(|shutdown| async move { Ok(publish::run(sim, shutdown).await) }) {
            Ok(summary) => summary,
            Err(e) => {
                eprintln!("mqtt-disconnect-exporter: {e:#}");
                return ExitCode::FAILURE;
            }
        };
    let mut out = std::io::stdout().lock();
    if args.json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string(&summary).unwrap_or_default()
        );
    } else {
        let _ = writeln!(
            out,
            "published {} events ({} acknowledged by the broker)",
            summary.published, summary.acknowledged
        );
        for (kind, n) in &summary.by_kind {
            let _ = writeln!(out, "  {kind:<22} {n}");
        }
        let _ = writeln!(out, "disconnects by reason:");
        for (reason, n) in &summary.disconnects {
            let _ = writeln!(out, "  {reason:<22} {n}");
        }
    }
    if summary.acknowledged < summary.published {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn run_analyze(args: &AnalyzeArgs, config: Config) -> ExitCode {
    let result = if args.file == "-" {
        let stdin = std::io::stdin().lock();
        analyze::analyze(
            BufReader::with_capacity(256 * 1024, stdin),
            config.pipeline,
            None,
        )
    } else {
        match std::fs::File::open(&args.file) {
            Ok(file) => {
                let size = file.metadata().ok().map(|m| m.len());
                analyze::analyze(
                    BufReader::with_capacity(256 * 1024, file),
                    config.pipeline,
                    size,
                )
            }
            Err(e) => {
                eprintln!("mqtt-disconnect-exporter: cannot read {}: {e}", args.file);
                return ExitCode::from(66); // EX_NOINPUT
            }
        }
    };
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("mqtt-disconnect-exporter: reading {}: {e}", args.file);
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        ReportFormat::Json => writeln!(out, "{}", analyze::to_json(&report)),
        ReportFormat::Text => analyze::write_text(&report, &mut out),
    };
    if written.is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn init_tracing(level: &str, format: LogFormat) {
    use tracing_subscriber::prelude::*;
    // The embedded demo broker's own logs are not actionable for a demo user.
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{level},rumqttd=off"))
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
