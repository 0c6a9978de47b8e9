//! `analyze`: an offline report on a captured event log.
//!
//! Reads the log a line at a time (a multi-gigabyte file is never loaded),
//! feeds each event through the same [`Pipeline`] the exporter runs, and
//! reports events by kind, disconnects by reason with the table's meaning and
//! recommended action, every client that was flapping at some point, and the
//! lines it could not use. Time comes from the events themselves, so a log
//! replays at any speed with the same windows as live.
//!
//! Line formats, detected per line:
//! - JSON lines: one event object per line (TDMQ / EMQX payloads);
//! - EMQX rule-engine sink output: an object with `payload` (an object, or a
//!   string holding JSON) and optionally `topic`;
//! - `mosquitto_sub -v` output: `<topic> <payload>`.

use std::collections::BTreeMap;
use std::io::{self, BufRead, IsTerminal, Write};

use crate::event::{EventError, EventKind};
use crate::flapping::FlappingClient;
use crate::metrics::Metrics;
use crate::pipeline::{Outcome, Pipeline, PipelineSettings};
use crate::reasons::Reason;

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
        let line = trim(&buf);
        if line.is_empty() {
            continue;
        }
        let outcome = if truncated {
            Outcome::Rejected(EventError::TooLarge)
        } else {
            let (topic, payload) = split(line);
            match payload {
                Payload::Borrowed(p) => pipeline.handle(topic.as_bytes(), p, clock.max(0)),
                Payload::Owned(p) => pipeline.handle(topic.as_bytes(), p.as_bytes(), clock.max(0)),
            }
        };
        match outcome {
            Outcome::Accepted { time_ms, .. } => {
                if let Some(t) = time_ms {
                    clock = clock.max(t);
                }
            }
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
            merge(&mut flaps, pipeline.tick(clock, usize::MAX), max_peers);
        }
    }
    if progress.is_some() {
        eprintln!("\ranalyze: 100.0%                              ");
    }
    merge(
        &mut flaps,
        pipeline.tick(clock.max(0), usize::MAX),
        max_peers,
    );

    let m = pipeline.metrics();
    for kind in EventKind::COUNTED {
        let n = m.received(kind).get();
        report.events += n;
        if n > 0 {
            report.by_kind.insert(kind.label(), n);
        }
    }
    for reason in Reason::all() {
        let n = m.disconnect(reason).get();
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
    now: Vec<FlappingClient>,
    max_peers: usize,
) {
    for c in now {
        let entry = into
            .entry((c.clientid.clone(), c.kind))
            .or_insert_with(|| FlapReport {
                clientid: c.clientid.clone(),
                kind: c.kind,
                count: 0,
                peers: Vec::new(),
            });
        entry.count = entry.count.max(c.count);
        for p in c.peers {
            if entry.peers.len() < max_peers && !entry.peers.contains(&p) {
                entry.peers.push(p);
            }
        }
    }
}

enum Payload<'a> {
    Borrowed(&'a [u8]),
    Owned(String),
}

/// Splits one line into (topic, payload) by its format.
fn split(line: &[u8]) -> (String, Payload<'_>) {
    if line.first() == Some(&b'{') {
        // A sink record wrapping the event; cheap test before a full parse.
        if contains(line, b"\"payload\"") {
            if let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice(line) {
                if let Some(payload) = obj.get("payload") {
                    let topic = obj
                        .get("topic")
                        .and_then(|t| t.as_str())
                        .unwrap_or("")
                        .to_string();
                    let payload = match payload {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    return (topic, Payload::Owned(payload));
                }
            }
        }
        return (String::new(), Payload::Borrowed(line));
    }
    match line.iter().position(|b| *b == b' ') {
        Some(i) => (
            String::from_utf8_lossy(&line[..i]).into_owned(),
            Payload::Borrowed(trim(&line[i + 1..])),
        ),
        None => (String::new(), Payload::Borrowed(line)),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Reads one line into `buf`, keeping at most `cap` bytes; returns the bytes
/// consumed and whether the line was longer than `cap`.
fn read_line_bounded<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut truncated = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok((consumed, truncated));
        }
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = cap.saturating_sub(buf.len());
        if take > room {
            truncated = true;
        }
        buf.extend_from_slice(&chunk[..take.min(room)]);
        r.consume(take);
        consumed += take;
        if done {
            return Ok((consumed, truncated));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines() {
        let data = b"short\nthis line is too long\nok\nend";
        let mut r = io::BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        loop {
            buf.clear();
            let (n, cut) = read_line_bounded(&mut r, &mut buf, 8).unwrap();
            if n == 0 {
                break;
            }
            lines.push((String::from_utf8(buf.clone()).unwrap(), cut));
        }
        assert_eq!(
            lines,
            vec![
                ("short\n".into(), false),
                ("this lin".into(), true),
                ("ok\n".into(), false),
                ("end".into(), false)
            ]
        );
    }

    #[test]
    fn splits_each_format() {
        let (t, p) = split(br#"$events/client_disconnected {"a":1}"#);
        assert_eq!(t, "$events/client_disconnected");
        assert!(matches!(p, Payload::Borrowed(b"{\"a\":1}")));
        let (t, p) = split(br#"{"topic":"x/y","payload":"{\"a\":1}"}"#);
        assert_eq!(t, "x/y");
        assert!(matches!(p, Payload::Owned(ref s) if s == "{\"a\":1}"));
        let (t, p) = split(br#"{"payload":{"a":1}}"#);
        assert_eq!(t, "");
        assert!(matches!(p, Payload::Owned(ref s) if s == "{\"a\":1}"));
        let (t, _) = split(br#"{"event":"client.connected"}"#);
        assert_eq!(t, "");
    }
}
