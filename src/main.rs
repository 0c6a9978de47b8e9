//! The `mqtt-disconnect-exporter` binary: parse flags, hand each subcommand
//! to the library, exit (64 on a bad flag or file).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use mqtt_disconnect_exporter::cli::{Cli, Command, ServeArgs};
use mqtt_disconnect_exporter::core::{reasons, status::Status};
use mqtt_disconnect_exporter::edge::process::{self, exit_code, usage};
use mqtt_disconnect_exporter::tools::{analyze, dashboards, rules, sim};

/// mimalloc gives memory freed after a storm back to the system (glibc's
/// allocator kept most of it: 171 MiB of 206 MiB after 200,000 flapping
/// clients expired, measured with scripts/storm.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return process::clap_error(e),
    };
    let password = std::env::var("MQTT_EXPORTER_MQTT_PASSWORD").ok();
    match cli.command {
        Some(Command::Reasons) => {
            print!("{}", reasons::markdown_table());
            ExitCode::SUCCESS
        }
        Some(Command::Analyze(args)) => match args.settings() {
            Ok(settings) => analyze::main(&args.file, args.format, settings),
            Err(e) => usage(e),
        },
        Some(Command::Simulate(args)) => match args.post() {
            Ok(Some(hook)) => sim::post::main(
                args.plan(),
                hook,
                args.json,
                args.log.level,
                args.log.format,
            ),
            Ok(None) => match args.target(password) {
                Ok(target) => sim::publish::main(
                    args.plan(),
                    target,
                    args.json,
                    args.log.level,
                    args.log.format,
                ),
                Err(e) => usage(e),
            },
            Err(e) => usage(e),
        },
        Some(Command::Demo(args)) => match args.options() {
            Ok(options) => sim::demo::main(&options),
            Err(e) => usage(e),
        },
        Some(Command::Rules(args)) => rules::main(&args.options(), args.format),
        Some(Command::Dashboards(args)) => dashboards::main(args.format),
        None => serve(&cli.serve, password),
    }
}

/// The exporter: validate everything, then bind and run until a signal.
fn serve(args: &ServeArgs, password: Option<String>) -> ExitCode {
    let config = match args.config(password, &process::hostname()) {
        Ok(config) => config,
        Err(e) => return usage(e),
    };
    process::init_tracing(config.log_level, config.log_format);
    exit_code(process::run_until_signal(|shutdown| async move {
        let listeners = mqtt_disconnect_exporter::bind(&config.web.listen).await?;
        let status = Arc::new(Status::new(prometheus::Registry::new()));
        mqtt_disconnect_exporter::run(config, listeners, status, shutdown).await
    }))
}
