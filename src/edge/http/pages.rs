//! The pages: `/metrics`, the landing page, `/-/healthy`, `/-/ready`,
//! `/api/v1/flapping` and `/api/v1/top`, each read from the registry or the
//! last [`Snapshot`] in the [`Status`], never from the pipeline, so a scrape
//! cannot slow event handling. Every text that came from a client is
//! escaped, invisible characters included.

use std::fmt::Write as _;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use prometheus::{Encoder, Registry, TextEncoder};

use crate::core::reasons::Reason;
use crate::core::snapshot::Snapshot;
use crate::core::status::Status;
use crate::core::top::{TopReason, TopReport};

pub(super) fn route(
    req: &Request<Incoming>,
    status: &Status,
    telemetry_path: &str,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only GET and HEAD are served.\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = req.uri().path();
    if path == telemetry_path {
        return metrics(status.registry());
    }
    match path {
        "/" => html(landing_page(telemetry_path, &status.snapshot())),
        "/-/healthy" => text(StatusCode::OK, "Healthy.\n"),
        "/-/ready" => ready(status),
        "/api/v1/flapping" => json(&status.snapshot().flapping),
        "/api/v1/top" => top(req.uri().query(), &status.snapshot().top),
        _ => text(StatusCode::NOT_FOUND, "Not found.\n"),
    }
}

/// Ready means: every source is ready (MQTT: the session is up and the
/// broker granted at least one topic filter in its last SUBACK; a file: it
/// is open; HTTP ingest: listening). The body names each source's state,
/// one line each; a single source that is fully ready reads "Ready.".
fn ready(status: &Status) -> Response<Full<Bytes>> {
    let sources = status.sources();
    let ready = status.is_ready();
    let mut body = String::from(if ready { "Ready.\n" } else { "Not ready:\n" });
    let plain = ready && matches!(&sources[..], [only] if !only.degraded);
    if !plain {
        for source in &sources {
            let _ = write!(body, "- {}: {}", source.name, source.detail);
            match (&source.last_error, source.ready) {
                (Some(error), false) => {
                    let _ = writeln!(body, ". The last attempt failed: {error}");
                }
                _ => body.push_str(".\n"),
            }
        }
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    respond(code, "text/plain; charset=utf-8", body.into_bytes())
}

/// `/api/v1/top`, or with `?reason=R` only reason R (an empty list when R
/// had no disconnects in the window; 400 when R is not a reason).
fn top(query: Option<&str>, report: &TopReport) -> Response<Full<Bytes>> {
    let wanted = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "reason")
        .map(|(_, v)| v.into_owned());
    let Some(wanted) = wanted else {
        return json(report);
    };
    let Some(reason) = Reason::all().find(|r| r.as_str() == wanted) else {
        return text(
            StatusCode::BAD_REQUEST,
            "Unknown reason: use a label value of `mqtt-disconnect-exporter reasons`.\n",
        );
    };
    let reasons = report
        .reasons
        .iter()
        .filter(|r| r.reason == reason)
        .cloned()
        .collect::<Vec<_>>();
    let reasons = if reasons.is_empty() {
        vec![TopReason::empty(reason)]
    } else {
        reasons
    };
    json(&TopReport {
        window_seconds: report.window_seconds,
        reasons,
    })
}

fn metrics(registry: &Registry) -> Response<Full<Bytes>> {
    let encoder = TextEncoder::new();
    let mut body = Vec::with_capacity(16 * 1024);
    if let Err(e) = encoder.encode(&registry.gather(), &mut body) {
        tracing::error!(error = %e, "encoding metrics failed");
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Encoding metrics failed.\n",
        );
    }
    respond(StatusCode::OK, encoder.format_type(), body)
}

fn json<T: serde::Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_string(value) {
        Ok(body) => respond(
            StatusCode::OK,
            "application/json",
            escape_invisible_json(&body).into_bytes(),
        ),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "Encoding failed.\n"),
    }
}

pub(super) fn text(code: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    respond(code, "text/plain; charset=utf-8", body.as_bytes().to_vec())
}

fn html(body: String) -> Response<Full<Bytes>> {
    respond(
        StatusCode::OK,
        "text/html; charset=utf-8",
        body.into_bytes(),
    )
}

fn respond(code: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

/// Characters that would hide or reorder text on a page or in a terminal:
/// control characters (NUL, ESC, ...), C1 controls, and the bidirectional
/// overrides, embeddings, isolates and marks.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Escapes text for HTML element content and attribute values; invisible
/// characters show as `\u{..}`, so a client ID cannot disguise itself.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if is_invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// serde_json escapes the C0 controls; this escapes the other invisible
/// characters too (as `\uXXXX`, which JSON readers decode to the same text).
/// They can only occur inside strings, so the document stays valid.
fn escape_invisible_json(json: &str) -> String {
    if !json.chars().any(is_invisible) {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_invisible(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// One row of a top list on the landing page: the reason (linking to its
/// `/api/v1/top`), who stands out, its count, and the others it was seen
/// with (a device's peers, a network's devices), all escaped.
fn listed_row(out: &mut String, reason: Reason, key: &str, count: u64, with: &[String]) {
    let _ = write!(
        out,
        "<tr><td><a href=\"/api/v1/top?reason={reason}\">{reason}</a></td><td>{}</td><td>{count}</td><td>{}</td></tr>",
        escape(key),
        escape(&with.join(", ")),
    );
}

/// "1 device", "2 devices".
fn devices(n: u64) -> String {
    if n == 1 {
        "1 device".to_string()
    } else {
        format!("{n} devices")
    }
}

fn landing_page(telemetry_path: &str, snapshot: &Snapshot) -> String {
    let (flapping, top) = (&snapshot.flapping, &snapshot.top);
    let mut top_rows = String::new();
    for entry in &top.reasons {
        if entry.clients.is_empty() && entry.saturated {
            let _ = write!(
                top_rows,
                "<tr><td><a href=\"/api/v1/top?reason={reason}\">{reason}</a></td><td colspan=\"3\">\
                 too many devices at once to single one out: {} in the window</td></tr>",
                devices(entry.devices),
                reason = entry.reason,
            );
        } else if entry.clients.is_empty() {
            let _ = write!(
                top_rows,
                "<tr><td><a href=\"/api/v1/top?reason={reason}\">{reason}</a></td><td colspan=\"3\">\
                 no single device stands out: {}, at most {} disconnects each</td></tr>",
                devices(entry.devices),
                crate::core::top::STANDOUT_MIN - 1,
                reason = entry.reason,
            );
        }
        for c in entry.clients.iter().take(crate::core::listed::TOP_LANDING) {
            listed_row(&mut top_rows, entry.reason, &c.clientid, c.count, &c.peers);
        }
    }
    if top_rows.is_empty() {
        top_rows.push_str("<tr><td colspan=\"4\">No disconnects in the window.</td></tr>");
    }
    let mut network_rows = String::new();
    for entry in &top.reasons {
        for n in entry.networks.iter().take(crate::core::listed::TOP_LANDING) {
            listed_row(
                &mut network_rows,
                entry.reason,
                &n.network,
                n.count,
                &n.clients,
            );
        }
    }
    if network_rows.is_empty() {
        network_rows.push_str(
            "<tr><td colspan=\"4\">No source network with 3 or more disconnects of one reason in the window.</td></tr>",
        );
    }
    let mut node_rows = String::new();
    for entry in &top.reasons {
        for n in &entry.nodes {
            listed_row(&mut node_rows, entry.reason, &n.node, n.count, &[]);
        }
    }
    if node_rows.is_empty() {
        node_rows.push_str(
            "<tr><td colspan=\"4\">No event in the window names a broker node (EMQX, TDMQ and EMQX's $SYS topics do).</td></tr>",
        );
    }
    let mut rows = String::new();
    for c in flapping.iter().take(100) {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.clientid),
            c.kind,
            c.count,
            escape(&c.peers.join(", "))
        );
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"4\">No client is flapping now.</td></tr>");
    }
    let path = escape(telemetry_path);
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>MQTT Disconnect Exporter</title></head>\n\
<body><h1>MQTT Disconnect Exporter</h1>\n<p>Version {version}</p>\n<ul>\n\
<li><a href=\"{path}\">Metrics</a></li>\n\
<li><a href=\"/api/v1/flapping\">Flapping clients (JSON)</a></li>\n\
<li><a href=\"/api/v1/top\">Top clients per disconnect reason (JSON)</a></li>\n\
<li><a href=\"/-/healthy\">Health</a> and <a href=\"/-/ready\">readiness</a></li>\n</ul>\n\
<h2>Flapping clients now</h2>\n<table border=\"1\"><tr><th>client ID</th><th>kind</th><th>events in window</th><th>peers</th></tr>\n\
{rows}\n</table>\n\
<h2>Top clients per disconnect reason, last {window}s</h2>\n<table border=\"1\"><tr><th>reason</th><th>client ID</th><th>disconnects</th><th>peers</th></tr>\n\
{top_rows}\n</table>\n\
<h2>Top source networks per disconnect reason, last {window}s</h2>\n<table border=\"1\"><tr><th>reason</th><th>network</th><th>disconnects</th><th>some of its clients</th></tr>\n\
{network_rows}\n</table>\n\
<h2>Broker nodes per disconnect reason, last {window}s</h2>\n<table border=\"1\"><tr><th>reason</th><th>node</th><th>disconnects</th><th></th></tr>\n\
{node_rows}\n</table>\n</body></html>\n",
        version = env!("CARGO_PKG_VERSION"),
        window = top.window_seconds,
    )
}

/// `--web.telemetry-path`: absolute, and not a path the other endpoints
/// take.
pub fn telemetry_path(raw: &str) -> Result<String, String> {
    if !raw.starts_with('/') || raw.contains(char::is_whitespace) {
        return Err("must start with / and contain no spaces".into());
    }
    if matches!(raw, "/" | "/-/healthy" | "/-/ready" | "/api") || raw.starts_with("/api/") {
        return Err("taken by the landing page, a health endpoint or the API".into());
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flapping::{FlapKind, FlappingClient};

    #[test]
    fn landing_page_escapes_client_ids() {
        let page = landing_page(
            "/metrics",
            &Snapshot {
                flapping: vec![FlappingClient {
                    clientid: "<script>x</script>".into(),
                    kind: FlapKind::Takeover,
                    count: 3,
                    window_seconds: 300.0,
                    peers: vec!["1.2.3.4:5".into()],
                    first_seen: 0,
                    last_seen: 1,
                }],
                top: TopReport::default(),
            },
        );
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("<td>takeover</td><td>3</td><td>1.2.3.4:5</td>"));
    }

    #[test]
    fn invisible_characters_are_escaped_in_the_page_and_the_json() {
        let sneaky = "dev\u{0}\u{1b}[31m\u{202e}lanigiro\u{2066}";
        let page = landing_page(
            "/metrics",
            &Snapshot {
                flapping: vec![FlappingClient {
                    clientid: sneaky.into(),
                    kind: FlapKind::Takeover,
                    count: 3,
                    window_seconds: 300.0,
                    peers: vec![],
                    first_seen: 0,
                    last_seen: 1,
                }],
                top: TopReport::default(),
            },
        );
        assert!(
            page.contains("<td>dev\\u{0}\\u{1b}[31m\\u{202e}lanigiro\\u{2066}</td>"),
            "{page}"
        );
        assert!(!page.chars().any(is_invisible_but_newline));
        let json = escape_invisible_json(&serde_json::to_string(&[sneaky]).unwrap());
        assert_eq!(json, r#"["dev\u0000\u001b[31m\u202elanigiro\u2066"]"#);
        let back: Vec<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vec![sneaky.to_string()]);
    }

    fn is_invisible_but_newline(c: char) -> bool {
        c != '\n' && is_invisible(c)
    }
}
