//! The process edge: exit codes, logging set-up, the host name, and a tokio
//! runtime whose shutdown signal SIGINT and SIGTERM fire. `main` and the
//! subcommands' entry points use these, so each stays a few lines.

use std::future::Future;
use std::process::ExitCode;

use crate::edge::shutdown::{self, Shutdown};
use clap::ValueEnum;

/// `--log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    #[value(alias = "warning")]
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `--log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// Exit code for bad flags or configuration (EX_USAGE).
pub const EXIT_USAGE: u8 = 64;
/// Exit code for an input file that cannot be opened (EX_NOINPUT).
pub const EXIT_NOINPUT: u8 = 66;

/// Prints one line naming what was wrong and returns [`EXIT_USAGE`].
pub fn usage(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("mqtt-disconnect-exporter: {e}");
    ExitCode::from(EXIT_USAGE)
}

/// A clap error as one line (its first, which names the flag) with exit 64;
/// `--help` and `--version` print in full and exit 0.
pub fn clap_error(e: clap::Error) -> ExitCode {
    if !e.use_stderr() {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.render().to_string();
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    usage(line.trim_start_matches("error: "))
}

/// Logs to stderr at `level`, as logfmt or JSON.
pub fn init_tracing(level: LogLevel, format: LogFormat) {
    use tracing_subscriber::prelude::*;
    // The embedded demo broker's own logs are not actionable for a demo user.
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{},rumqttd=off", level.as_str()))
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

/// Runs `f` on a two-thread runtime with SIGINT/SIGTERM wired to its
/// shutdown signal. An error is logged and printed, and gives `None`: the
/// caller exits 1.
pub fn run_until_signal<F, Fut, T, E>(f: F) -> Option<T>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    raise_open_file_limit();
    // bcrypt checks are bounded by the HTTP edge; this bounds every other
    // blocking job too, so no flood can grow the thread count
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mqtt-disconnect-exporter: cannot start the runtime: {e}");
            return None;
        }
    };
    let result = runtime.block_on(async {
        let (trigger, shutdown) = shutdown::channel();
        tokio::spawn(shutdown::log_other_signals());
        tokio::spawn(async move {
            match shutdown::signal().await {
                Ok(name) => tracing::info!(signal = name, "shutting down"),
                Err(e) => tracing::error!(error = %e, "cannot listen for signals"),
            }
            trigger.fire();
        });
        f(shutdown).await
    });
    match result {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::error!("{e}");
            None
        }
    }
}

/// Raises the soft limit of open files to the hard limit, as Go programs
/// (Prometheus, node_exporter) do at start: the HTTP edge holds up to 2,048
/// connections, more than the usual soft limit of 1,024.
fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            let raised = rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::debug!(error = %e, "cannot raise the open-file limit");
            }
        }
    }
}

/// [`ExitCode::SUCCESS`] for `Some`, [`ExitCode::FAILURE`] for `None`.
pub fn exit_code<T>(done: Option<T>) -> ExitCode {
    match done {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}

/// This host's name, for the default client ID.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default()
}
