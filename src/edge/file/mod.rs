//! The file source: a broker's log file followed like `tail -F`
//! (`--file.path`, repeatable), for brokers whose log cannot be published
//! (Mosquitto's `log_dest file`, Debian's default).
//!
//! Each line is read as `analyze` reads it ([`crate::core::event::lines`]):
//! Mosquitto's log in any timestamp form the `$SYS/broker/log/#` source
//! reads, JSON lines (an EMQX file sink), or `mosquitto_sub -v` output.
//! [`follow`] keeps the file across rotations; this driver polls it, hands
//! its lines to the pipeline in turns, counts what it saw, and tells
//! readiness whether the file is open. A line longer than
//! `--event.max-payload-size` is counted as `too_large` and skipped.

pub mod follow;

use std::path::PathBuf;
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::core::clock::now_ms;
use crate::core::event::EventError;
use crate::core::metrics::registered;
use crate::core::status::Health;
use crate::edge::feed::Inlet;
use crate::edge::shutdown::Shutdown;
use follow::{Follower, Line, State};

/// How long the source sleeps when a poll found nothing new.
const IDLE: Duration = Duration::from_millis(200);

/// `--file.*`: one followed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub path: PathBuf,
    /// Read what the file already holds too (`--file.from-start`).
    pub from_start: bool,
    /// Longer lines are counted as `too_large`.
    pub max_line: usize,
}

/// The file source's own metrics, one set per followed file, told apart
/// by a constant `path` label (a closed set: the paths given at start).
pub struct FileMetrics {
    open: IntGauge,
    renamed: IntCounter,
    truncated: IntCounter,
}

impl FileMetrics {
    /// Registers `path`'s series on `registry`.
    pub fn new(registry: &Registry, path: &str) -> prometheus::Result<FileMetrics> {
        let rotations = registered(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "mqtt_exporter_file_rotations_total",
                    "Rotations of a followed file seen, by how (renamed: rename and create; truncated: copytruncate).",
                )
                .const_label("path", path),
                &["how"],
            )?,
        )?;
        Ok(FileMetrics {
            open: registered(
                registry,
                IntGauge::with_opts(
                    Opts::new(
                        "mqtt_exporter_file_open",
                        "1 while the followed file (--file.path) is open and read.",
                    )
                    .const_label("path", path),
                )?,
            )?,
            renamed: rotations.with_label_values(&["renamed"]),
            truncated: rotations.with_label_values(&["truncated"]),
        })
    }
}

/// The state as `/-/ready` says it.
fn words(state: &State, settings: &Settings) -> (bool, String) {
    let path = settings.path.display();
    match state {
        State::Following { offset } => (true, format!("following {path} (from byte {offset})")),
        State::Missing => (false, format!("waiting for {path} to exist")),
        State::Unreadable(why) => (
            false,
            format!("cannot read {path}: {why} (the exporter's user needs read access: the file's group, mosquitto or adm on Debian)"),
        ),
    }
}

/// One poll of the file, its lines handed to the pipeline in one hold.
fn read(follower: &mut Follower, inlet: &Inlet) -> follow::Polled {
    let mut turn = inlet.turn();
    let arrival = now_ms();
    follower.poll(|line| match line {
        Line::Whole(text) => turn.deliver_line(text, arrival),
        Line::TooLong { bytes } => turn.reject(EventError::TooLarge, bytes),
    })
}

/// Follows the file until `shutdown` fires.
pub async fn run(
    settings: Settings,
    metrics: FileMetrics,
    inlet: Inlet,
    health: Health,
    mut shutdown: Shutdown,
) {
    let label = settings.path.display().to_string();
    let FileMetrics {
        open,
        renamed,
        truncated,
    } = metrics;
    let mut follower = Follower::new(
        settings.path.clone(),
        settings.max_line,
        settings.from_start,
    );
    tracing::info!(path = %label, from_start = settings.from_start, "following the log file");
    loop {
        let polled = read(&mut follower, &inlet);
        renamed.inc_by(u64::from(polled.renamed));
        truncated.inc_by(u64::from(polled.truncated));
        if polled.renamed + polled.truncated > 0 {
            tracing::info!(path = %label, renamed = polled.renamed, truncated = polled.truncated, "the log file was rotated");
        }
        if let Some(state) = &polled.changed {
            let (ready, detail) = words(state, &settings);
            open.set(i64::from(ready));
            if ready {
                tracing::info!(path = %label, "{detail}");
            } else {
                tracing::warn!(path = %label, "{detail}");
            }
            health.set(ready, detail);
        }
        if polled.more {
            tokio::task::yield_now().await;
            if shutdown.is_fired() {
                break;
            }
            continue;
        }
        tokio::select! {
            _ = shutdown.recv() => break,
            _ = tokio::time::sleep(IDLE) => {}
        }
    }
    // what was written before the stop is still counted
    read(&mut follower, &inlet);
    open.set(0);
    health.set(false, "stopped");
    tracing::info!(path = %label, "stopped following the log file");
}
