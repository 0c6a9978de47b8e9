//! `analyze`: an offline report on a captured event log.
//!
//! Reads the log a line at a time (a multi-gigabyte file is never loaded),
//! feeds each event through the same [`Pipeline`] the exporter runs, and
//! reports events by kind, disconnects by reason with the table's meaning and
//! recommended action, every client that was flapping at some point, and the
//! lines it could not use. Time comes from the events themselves, so a log
//! replays at any speed with the same windows as live.
//!
//! The line formats it reads are in [`input`]; this module is the report.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::process::ExitCode;

use crate::edge::process::EXIT_NOINPUT;

use crate::core::event::{EventError, EventKind};
use crate::core::flapping::FlappingClient;
use crate::core::metrics::Metrics;
use crate::core::pipeline::{Outcome, Pipeline, PipelineSettings};
use crate::core::reasons::Reason;

use input::read_line_bounded;

pub mod input;

/// Longest line read whole; longer lines count as `too_large`.
const MAX_LINE: usize = 1024 * 1024;
/// Rejected lines quoted in the report.
const SHOWN_ERRORS: usize = 5;

/// One flapping client as reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlapReport {
    pub clientid: String,
    pub kind: &'static str,
    /// Most events seen in one window.
    pub count: usize,
    pub peers: Vec<String>,
}

/// A rejected line, quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: u64,
    pub error: &'static str,
    pub text: String,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub events: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    pub disconnects: BTreeMap<Reason, u64>,
    pub flapping: Vec<FlapReport>,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<&'static str, u64>,
    pub first_errors: Vec<BadLine>,
}

/// How `analyze` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

/// The `analyze` subcommand: reads the file (or stdin), prints the report;
/// exit 66 if the file cannot be opened, 1 if reading or writing fails.
pub fn main(file: &str, format: ReportFormat, settings: PipelineSettings) -> ExitCode {
    let result = if file == "-" {
        let stdin = io::stdin().lock();
        analyze(BufReader::with_capacity(256 * 1024, stdin), settings, None)
    } else {
        match std::fs::File::open(file) {
            Ok(file) => {
                let size = file.metadata().ok().map(|m| m.len());
                analyze(BufReader::with_capacity(256 * 1024, file), settings, size)
            }
            Err(e) => {
                eprintln!("mqtt-disconnect-exporter: cannot read {file}: {e}");
                return ExitCode::from(EXIT_NOINPUT);
            }
        }
    };
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("mqtt-disconnect-exporter: reading {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = io::stdout().lock();
    let written = match format {
        ReportFormat::Json => writeln!(out, "{}", to_json(&report)),
        ReportFormat::Text => write_text(&report, &mut out),
    };
    if written.is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Streams `reader` through a fresh pipeline. `total_bytes`, when known,
/// drives a progress line on stderr if stderr is a terminal.
pub fn analyze<R: BufRead>(
    mut reader: R,
    settings: PipelineSettings,
    total_bytes: Option<u64>,
) -> io::Result<Report> {
    let registry = prometheus::Registry::new();
    let metrics = Metrics::new(&registry).map_err(io::Error::other)?;
    let max_peers = settings.flapping.max_peers;
    // a replay has no arrival clock: event times are the only truth
    let mut settings = settings;
    settings.flapping.max_skew_ms = i64::MAX;
    let mut pipeline = Pipeline::new(metrics, settings);
    let mut report = Report::default();
    let mut flaps: BTreeMap<(String, &'static str), FlapReport> = BTreeMap::new();
    let mut buf = Vec::with_capacity(4096);
    let mut clock = i64::MIN;
    let mut last_tick = i64::MIN;
    let mut line_no = 0u64;
    let mut read = 0u64;
    let progress = total_bytes.filter(|_| io::stderr().is_terminal());

    loop {
        buf.clear();
        let (n, truncated) = read_line_bounded(&mut reader, &mut buf, MAX_LINE)?;
        if n == 0 {
            break;
        }
        read += n as u64;
        line_no += 1;
        if let (Some(total), true) = (progress, line_no % 100_000 == 0) {
            eprint!(
                "\ranalyze: {:.1}% of {total} bytes",
                read as f64 * 100.0 / total.max(1) as f64
            );
        }
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let outcome = if truncated {
            Outcome::Rejected(EventError::TooLarge)
        } else {
            pipeline.handle_line(line, clock.max(0))
        };
        match outcome {
            Outcome::Accepted { time_ms, .. } => {
                if let Some(t) = time_ms {
                    clock = clock.max(t);
                }
            }
            Outcome::Ignored => {}
            Outcome::Rejected(error) => {
                report.errors += 1;
                *report.errors_by_kind.entry(error.label()).or_default() += 1;
                if report.first_errors.len() < SHOWN_ERRORS {
                    let text = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
                    report.first_errors.push(BadLine {
                        line: line_no,
                        error: error.label(),
                        text,
                    });
                }
            }
        }
        if clock >= last_tick.saturating_add(1000) {
            last_tick = clock;
            merge(
                &mut flaps,
                &pipeline.tick(clock, usize::MAX).flapping,
                max_peers,
            );
        }
    }
    if progress.is_some() {
        eprintln!("\ranalyze: 100.0%                              ");
    }
    merge(
        &mut flaps,
        &pipeline.tick(clock.max(0), usize::MAX).flapping,
        max_peers,
    );

    let m = pipeline.metrics();
    for kind in EventKind::COUNTED {
        let n = m.received(kind);
        report.events += n;
        if n > 0 {
            report.by_kind.insert(kind.label(), n);
        }
    }
    for reason in Reason::all() {
        let n = m.disconnects(reason);
        if n > 0 {
            report.disconnects.insert(reason, n);
        }
    }
    let mut list: Vec<FlapReport> = flaps.into_values().collect();
    list.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.clientid.cmp(&b.clientid))
    });
    report.flapping = list;
    Ok(report)
}

fn merge(
    into: &mut BTreeMap<(String, &'static str), FlapReport>,
    now: &[FlappingClient],
    max_peers: usize,
) {
    for c in now {
        let entry = into
            .entry((c.clientid.clone(), c.kind.as_str()))
            .or_insert_with(|| FlapReport {
                clientid: c.clientid.clone(),
                kind: c.kind.as_str(),
                count: 0,
                peers: Vec::new(),
            });
        entry.count = entry.count.max(c.count);
        for p in &c.peers {
            if entry.peers.len() < max_peers && !entry.peers.contains(p) {
                entry.peers.push(p.clone());
            }
        }
    }
}

/// The report as text, with the table's meaning and action per reason.
pub fn write_text(report: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "Events: {}", report.events)?;
    for (kind, n) in &report.by_kind {
        writeln!(out, "  {kind:<14} {n}")?;
    }
    let total: u64 = report.disconnects.values().sum();
    writeln!(out, "\nDisconnects by reason: {total}")?;
    let mut rows: Vec<(&Reason, &u64)> = report.disconnects.iter().collect();
    rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (reason, n) in rows {
        let info = reason.info();
        writeln!(
            out,
            "  {:<24} {n:>10} {:>6.1}%  {}\n  {:<24} {:>10} {:>7}  action: {}",
            reason.as_str(),
            *n as f64 * 100.0 / total.max(1) as f64,
            info.meaning,
            "",
            "",
            "",
            info.action
        )?;
    }
    writeln!(out, "\nFlapping clients: {}", report.flapping.len())?;
    for f in &report.flapping {
        writeln!(
            out,
            "  {:<9} {}  events in window: {}  peers: {}",
            f.kind,
            printable(&f.clientid),
            f.count,
            f.peers.join(", ")
        )?;
    }
    writeln!(out, "\nLines not understood: {}", report.errors)?;
    for (kind, n) in &report.errors_by_kind {
        writeln!(out, "  {kind:<14} {n}")?;
    }
    for bad in &report.first_errors {
        writeln!(
            out,
            "  line {}: {}: {}",
            bad.line,
            bad.error,
            printable(&bad.text)
        )?;
    }
    Ok(())
}

/// Text safe for a terminal: control characters escaped, the rest as is.
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// The report as JSON: `{"events", "disconnects", "flapping", "errors"}`.
pub fn to_json(report: &Report) -> serde_json::Value {
    let disconnects: serde_json::Map<String, serde_json::Value> = report
        .disconnects
        .iter()
        .map(|(r, n)| (r.as_str().to_string(), (*n).into()))
        .collect();
    serde_json::json!({
        "events": report.events,
        "disconnects": disconnects,
        "flapping": report.flapping,
        "errors": report.errors,
    })
}
