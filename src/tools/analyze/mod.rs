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
use crate::core::top::TopReport;

use input::read_line_bounded;

pub mod input;

/// Longest line read whole; longer lines count as `too_large`.
const MAX_LINE: usize = 1024 * 1024;
/// Rejected lines quoted in the report.
const SHOWN_ERRORS: usize = 5;
/// Devices and networks that stood out, listed in the report.
const SHOWN_STANDOUTS: usize = 20;

/// One flapping client as reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlapReport {
    pub clientid: String,
    pub kind: &'static str,
    /// Most events seen in one window.
    pub count: usize,
    pub peers: Vec<String>,
}

/// A device or network that stood out in one reason: the most
/// disconnects it had within one `--top.window` of the capture.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Standout {
    pub reason: Reason,
    /// The client ID, or the network (`203.0.113.0/24`).
    pub key: String,
    /// Most disconnects in one window (never more than the true count).
    pub count: u64,
}

/// How long the connections that ended for one reason had lived.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Lifetimes {
    /// Connections whose lifetime is known (their connect was seen, or the
    /// disconnect carried `connected_at`).
    pub count: u64,
    /// The bucket the median falls in, as its upper bound in seconds
    /// (`None` past the last bucket).
    pub median_le: Option<f64>,
    /// `(upper bound in seconds, connections)` per bucket with any.
    pub buckets: Vec<(f64, u64)>,
}

/// A rejected line, quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: u64,
    pub error: &'static str,
    pub text: String,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub events: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    pub disconnects: BTreeMap<Reason, u64>,
    pub flapping: Vec<FlapReport>,
    /// Disconnects per broker node and reason, where events name a node.
    pub nodes: BTreeMap<String, BTreeMap<Reason, u64>>,
    /// Source networks that stood out, most first.
    pub networks: Vec<Standout>,
    /// Devices that stood out, most first.
    pub devices: Vec<Standout>,
    pub lifetimes: BTreeMap<Reason, Lifetimes>,
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
    let mut stood_out = StoodOut::default();
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
        if clock == i64::MIN && !truncated {
            // the capture's clock starts at its first event's own time, so
            // the first event arrives when it happened, not in 1970
            if let Some(t) = event_time(line) {
                clock = t;
            }
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
            let snapshot = pipeline.tick(clock, usize::MAX);
            merge(&mut flaps, &snapshot.flapping, max_peers);
            stood_out.merge(&snapshot.top);
        }
    }
    if progress.is_some() {
        eprintln!("\ranalyze: 100.0%                              ");
    }
    let snapshot = pipeline.tick(clock.max(0), usize::MAX);
    merge(&mut flaps, &snapshot.flapping, max_peers);
    stood_out.merge(&snapshot.top);
    (report.devices, report.networks) = stood_out.lists();

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
    for (node, reason, n) in m.nodes() {
        report.nodes.entry(node).or_default().insert(reason, n);
    }
    for reason in Reason::all() {
        if let Some(lived) = lifetimes(m.lifetimes(reason)) {
            report.lifetimes.insert(reason, lived);
        }
    }
    Ok(report)
}

/// The devices and networks that stood out at some tick, each with the
/// most it had in one window.
#[derive(Default)]
struct StoodOut {
    devices: BTreeMap<(Reason, String), u64>,
    networks: BTreeMap<(Reason, String), u64>,
}

impl StoodOut {
    fn merge(&mut self, top: &TopReport) {
        for entry in &top.reasons {
            for c in &entry.clients {
                let n = self
                    .devices
                    .entry((entry.reason, c.clientid.clone()))
                    .or_default();
                *n = (*n).max(c.count);
            }
            for net in &entry.networks {
                let n = self
                    .networks
                    .entry((entry.reason, net.network.clone()))
                    .or_default();
                *n = (*n).max(net.count);
            }
        }
    }

    /// Most first, then by reason and key; at most [`SHOWN_STANDOUTS`] each.
    fn lists(self) -> (Vec<Standout>, Vec<Standout>) {
        let list = |map: BTreeMap<(Reason, String), u64>| {
            let mut list: Vec<Standout> = map
                .into_iter()
                .map(|((reason, key), count)| Standout { reason, key, count })
                .collect();
            list.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then(a.reason.cmp(&b.reason))
                    .then_with(|| a.key.cmp(&b.key))
            });
            list.truncate(SHOWN_STANDOUTS);
            list
        };
        (list(self.devices), list(self.networks))
    }
}

/// A histogram's connections, its median's bucket and its nonzero buckets;
/// `None` when it observed none.
fn lifetimes(h: &prometheus::Histogram) -> Option<Lifetimes> {
    let m = prometheus::core::Metric::metric(h);
    let h = m.get_histogram();
    let count = h.get_sample_count();
    if count == 0 {
        return None;
    }
    let mut buckets = Vec::new();
    let mut below = 0;
    let mut median_le = None;
    for b in h.get_bucket() {
        let cumulative = b.cumulative_count();
        if median_le.is_none() && cumulative * 2 >= count {
            median_le = Some(b.upper_bound());
        }
        if cumulative > below {
            buckets.push((b.upper_bound(), cumulative - below));
        }
        below = cumulative;
    }
    if count > below {
        buckets.push((f64::INFINITY, count - below));
    }
    Some(Lifetimes {
        count,
        median_le,
        buckets,
    })
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
    writeln!(out, "\nBroker nodes: {}", report.nodes.len())?;
    for (node, reasons) in &report.nodes {
        let total: u64 = reasons.values().sum();
        let mut by: Vec<(&Reason, &u64)> = reasons.iter().collect();
        by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let by: Vec<String> = by.iter().map(|(r, n)| format!("{r} {n}")).collect();
        writeln!(
            out,
            "  {:<24} {total:>10}  {}",
            printable(node),
            by.join(", ")
        )?;
    }
    for (title, list) in [
        ("Source networks that stood out", &report.networks),
        ("Devices that stood out", &report.devices),
    ] {
        writeln!(
            out,
            "\n{title} (3 or more of one reason in one --top.window): {}",
            list.len()
        )?;
        for s in list {
            writeln!(
                out,
                "  {:<24} {:<22} {}",
                printable(&s.key),
                s.reason.as_str(),
                s.count
            )?;
        }
    }
    writeln!(
        out,
        "\nConnection lifetimes by reason: {}",
        report.lifetimes.len()
    )?;
    for (reason, l) in &report.lifetimes {
        let median = match l.median_le {
            Some(le) => format!("median at most {}", human_seconds(le)),
            None => "median past the last bucket".to_string(),
        };
        let buckets: Vec<String> = l
            .buckets
            .iter()
            .map(|(le, n)| format!("≤{} {n}", human_seconds(*le)))
            .collect();
        writeln!(
            out,
            "  {:<24} {:>10}  {median}; {}",
            reason.as_str(),
            l.count,
            buckets.join(", ")
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

/// The time a line's event says it happened, if it reads as one.
fn event_time(line: &[u8]) -> Option<i64> {
    use crate::core::event::{self, lines, mosquitto_log, Format};
    let (format, topic, payload) = lines::read(line);
    let payload = match &payload {
        lines::Payload::Borrowed(p) => p,
        lines::Payload::Owned(p) => p.as_bytes(),
    };
    match format {
        Format::MosquittoLog => mosquitto_log::parse(payload).ok()??.time_ms,
        Format::Event => event::parse(topic.as_bytes(), payload).ok()?.time_ms,
    }
}

/// `350s`, `5m`, `1h`, `+Inf` for a bucket bound in seconds.
fn human_seconds(s: f64) -> String {
    if s.is_infinite() {
        "+Inf".to_string()
    } else if s >= 3600.0 && s % 3600.0 == 0.0 {
        format!("{}h", s / 3600.0)
    } else if s >= 60.0 && s % 60.0 == 0.0 {
        format!("{}m", s / 60.0)
    } else {
        format!("{s}s")
    }
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

/// The report as JSON: `{"events", "disconnects", "flapping", "nodes",
/// "networks", "devices", "lifetimes", "errors"}`. A lifetime bucket's
/// bound is a number, `"+Inf"` past the last one.
pub fn to_json(report: &Report) -> serde_json::Value {
    let by_reason = |m: &BTreeMap<Reason, u64>| -> serde_json::Map<String, serde_json::Value> {
        m.iter()
            .map(|(r, n)| (r.as_str().to_string(), (*n).into()))
            .collect()
    };
    let nodes: serde_json::Map<String, serde_json::Value> = report
        .nodes
        .iter()
        .map(|(node, reasons)| (node.clone(), by_reason(reasons).into()))
        .collect();
    let bound = |le: f64| -> serde_json::Value {
        if le.is_finite() {
            le.into()
        } else {
            "+Inf".into()
        }
    };
    let lifetimes: serde_json::Map<String, serde_json::Value> = report
        .lifetimes
        .iter()
        .map(|(r, l)| {
            let buckets: Vec<serde_json::Value> = l
                .buckets
                .iter()
                .map(|(le, n)| serde_json::json!({"le": bound(*le), "count": n}))
                .collect();
            (
                r.as_str().to_string(),
                serde_json::json!({
                    "count": l.count,
                    "median_le": l.median_le.map(bound),
                    "buckets": buckets,
                }),
            )
        })
        .collect();
    serde_json::json!({
        "events": report.events,
        "disconnects": by_reason(&report.disconnects),
        "flapping": report.flapping,
        "nodes": nodes,
        "networks": report.networks,
        "devices": report.devices,
        "lifetimes": lifetimes,
        "errors": report.errors,
    })
}
