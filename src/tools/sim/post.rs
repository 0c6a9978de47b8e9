//! `simulate --ingest URL`: the same fleet as `simulate`, posted over HTTP
//! to the exporter's ingest routes (or anything that speaks them), in the
//! body each sender uses ([`Format`]), on `--ingest.connections` keep-alive
//! connections. The summary says what was sent, by kind and by the reason
//! the exporter will count, and what was answered, by status code.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, Mutex};

use crate::core::event::eventgrid::snake_case;
use crate::core::reasons::{self, Reason};
use crate::edge::process::{LogFormat, LogLevel};
use crate::edge::shutdown::Shutdown;
use crate::tools::sim::fleet::SimEvent;
use crate::tools::sim::pace::{Paced, Plan};
use crate::tools::sim::publish::{simulate, write_counts, Summary};
use std::io::Write;
use std::process::ExitCode;

/// The body a sender posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `/api/v1/ingest/json`: NDJSON batches of EMQX 5 event payloads.
    Json,
    /// `/api/v1/ingest/emqx`: one EMQX 5 HTTP action body a request.
    Emqx,
    /// `/api/v1/ingest/eventgrid`: CloudEvents batches, as Event Grid
    /// delivers its MQTT broker's events.
    Eventgrid,
    /// `/api/v1/ingest/aws-iot`: arrays of AWS IoT lifecycle events.
    AwsIot,
}

impl Format {
    /// Events a request carries at most: Event Grid batches reach 5,000,
    /// AWS IoT's batching 10, EMQX sends one.
    pub fn batch(self) -> usize {
        match self {
            Format::Json | Format::Eventgrid => 1000,
            Format::AwsIot => 10,
            Format::Emqx => 1,
        }
    }

    fn route(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Emqx => "emqx",
            Format::Eventgrid => "eventgrid",
            Format::AwsIot => "aws-iot",
        }
    }
}

/// Where and how to post.
#[derive(Debug, Clone)]
pub struct PostConfig {
    /// `http://host:port` of the exporter (the route is added).
    pub host: String,
    pub port: u16,
    pub token: Option<String>,
    pub format: Format,
    pub connections: usize,
}

/// What was sent and answered.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PostSummary {
    pub sent: Summary,
    pub requests: u64,
    /// Answers by status code (0: no answer).
    pub answers: BTreeMap<u16, u64>,
}

/// The `simulate --ingest` subcommand: posts, prints the summary (as JSON
/// with `json`); exit 1 unless every request was answered 200.
pub fn main(
    plan: Plan,
    hook: PostConfig,
    json: bool,
    log_level: LogLevel,
    log_format: LogFormat,
) -> ExitCode {
    simulate(
        (log_level, log_format, json),
        |shutdown| run(plan, hook, shutdown),
        write_summary,
        |s: &PostSummary| s.answers.get(&200).copied().unwrap_or(0) == s.requests,
    )
}

fn write_summary(s: &PostSummary, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "posted {} events in {} requests",
        s.sent.published, s.requests
    )?;
    write_counts(&s.sent, out)?;
    writeln!(out, "answers by status code:")?;
    for (code, n) in &s.answers {
        writeln!(out, "  {code:<22} {n}")?;
    }
    Ok(())
}

/// How an event of the fleet is posted in `format`, and the reason the
/// exporter will count for it.
fn element(format: Format, event: &SimEvent, n: u64) -> (String, Option<Reason>) {
    #[derive(serde::Deserialize, Default)]
    struct Fields<'a> {
        #[serde(borrow, default)]
        clientid: &'a str,
        #[serde(default)]
        timestamp: i64,
    }
    let fields: Fields<'_> = serde_json::from_str(&event.payload).unwrap_or_default();
    let client = serde_json::to_string(fields.clientid).unwrap_or_default();
    let t = fields.timestamp;
    let raw = event.reason.unwrap_or("");
    match format {
        Format::Json | Format::Emqx => (event.payload.clone(), event.reason.map(reasons::classify)),
        Format::Eventgrid => {
            let (kind, reason) = match event.kind {
                "client_disconnected" => (
                    "MQTTClientSessionDisconnected",
                    Some(eventgrid_reason(reasons::classify(raw))),
                ),
                "client_connected" => ("MQTTClientSessionConnected", None),
                _ => ("MQTTClientCreatedOrUpdated", None),
            };
            let reason_field = reason
                .map(|r| format!(r#","disconnectionReason":"{r}""#))
                .unwrap_or_default();
            let body = format!(
                r#"{{"specversion":"1.0","id":"sim-{n}","time":"{time}","type":"Microsoft.EventGrid.{kind}","source":"/subscriptions/sim/resourceGroups/sim/providers/Microsoft.EventGrid/namespaces/sim","subject":"clients/sessions/s","data":{{"namespaceName":"sim","clientAuthenticationName":{client},"clientSessionName":"s","sequenceNumber":{n}{reason_field}}}}}"#,
                time = iso(t)
            );
            (body, reason.map(|r| reasons::classify(&snake_case(r))))
        }
        Format::AwsIot => {
            let event_type = match event.kind {
                "client_disconnected" => "disconnected",
                "client_connected" => "connected",
                "session_subscribed" => "subscribed",
                _ => "unsubscribed",
            };
            let disconnect = if event.reason.is_some() {
                format!(
                    r#","clientInitiatedDisconnect":{},"disconnectReason":"{raw}""#,
                    raw == "normal"
                )
            } else {
                String::new()
            };
            let body = format!(
                r#"{{"clientId":{client},"timestamp":{t},"eventType":"{event_type}","sessionIdentifier":"00000000-0000-0000-0000-{n:012}","principalIdentifier":"sim","versionNumber":1{disconnect}}}"#
            );
            (body, event.reason.map(reasons::classify))
        }
    }
}

/// The `disconnectionReason` Event Grid reports for what the fleet did.
fn eventgrid_reason(reason: Reason) -> &'static str {
    match reason {
        Reason::Normal => "ClientInitiatedDisconnect",
        Reason::Takeovered => "SessionTakenOver",
        Reason::TcpClosed | Reason::KeepaliveTimeout => "ConnectionLost",
        Reason::NotAuthenticated | Reason::AuthenticationExpired => "ClientAuthenticationError",
        Reason::NotAuthorized => "ClientAuthorizationError",
        Reason::TooManyConnection => "QuotaExceeded",
        Reason::GoAway | Reason::Kicked => "ServerInitiatedDisconnect",
        Reason::ServerInternalError => "ServerError",
        _ => "ClientError",
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// One request's body from `elements`.
fn body(format: Format, elements: &[String]) -> Vec<u8> {
    match format {
        Format::Json => elements.join("\n").into_bytes(),
        Format::Emqx => elements.concat().into_bytes(),
        Format::Eventgrid | Format::AwsIot => format!("[{}]", elements.join(",")).into_bytes(),
    }
}

/// Posts the fleet until the duration passes or `shutdown` fires, then
/// waits for every answer.
pub async fn run(plan: Plan, hook: PostConfig, mut shutdown: Shutdown) -> PostSummary {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(hook.connections.max(1) * 4);
    let rx = Arc::new(Mutex::new(rx));
    let answers = Arc::new(std::sync::Mutex::new(BTreeMap::<u16, u64>::new()));
    let mut workers = Vec::new();
    for _ in 0..hook.connections.max(1) {
        workers.push(tokio::spawn(worker(
            hook.clone(),
            Arc::clone(&rx),
            Arc::clone(&answers),
        )));
    }
    let mut paced = Paced::new(&plan);
    let mut summary = PostSummary::default();
    let mut buf: Vec<SimEvent> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut n = 0u64;
    'outer: while paced.next(&mut shutdown, &mut buf).await {
        for event in buf.drain(..) {
            n += 1;
            let (element, reason) = element(hook.format, &event, n);
            summary.sent.published += 1;
            *summary.sent.by_kind.entry(event.kind).or_default() += 1;
            if let Some(r) = reason {
                *summary.sent.disconnects.entry(r.as_str()).or_default() += 1;
            }
            pending.push(element);
            if pending.len() >= hook.format.batch() {
                summary.requests += 1;
                if tx.send(body(hook.format, &pending)).await.is_err() {
                    break 'outer;
                }
                pending.clear();
            }
        }
        if !pending.is_empty() {
            summary.requests += 1;
            if tx.send(body(hook.format, &pending)).await.is_err() {
                break;
            }
            pending.clear();
        }
    }
    drop(tx);
    for w in workers {
        let _ = w.await;
    }
    summary.answers = answers.lock().map(|a| a.clone()).unwrap_or_default();
    let ok = summary.answers.get(&200).copied().unwrap_or(0);
    summary.sent.acknowledged = if ok == summary.requests {
        summary.sent.published
    } else {
        0
    };
    summary
}

/// One keep-alive connection: posts bodies until there are no more.
async fn worker(
    hook: PostConfig,
    bodies: Arc<Mutex<mpsc::Receiver<Vec<u8>>>>,
    answers: Arc<std::sync::Mutex<BTreeMap<u16, u64>>>,
) {
    let path = format!("/api/v1/ingest/{}", hook.format.route());
    let content_type = match hook.format {
        Format::Eventgrid => "application/cloudevents-batch+json; charset=utf-8",
        _ => "application/json",
    };
    let mut sender = None;
    loop {
        let Some(body) = bodies.lock().await.recv().await else {
            return;
        };
        let code = post(&hook, &mut sender, &path, content_type, body).await;
        if let Ok(mut a) = answers.lock() {
            *a.entry(code).or_default() += 1;
        }
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Posts one body on the connection (made, or made again, as needed);
/// the status code, 0 when none came.
async fn post(
    hook: &PostConfig,
    sender: &mut Option<Sender>,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> u16 {
    let body = Bytes::from(body);
    for _ in 0..2 {
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            *sender = connect(hook).await;
        }
        let Some(s) = sender.as_mut() else {
            return 0;
        };
        let mut request = Request::post(path)
            .header(HOST, format!("{}:{}", hook.host, hook.port))
            .header(CONTENT_TYPE, content_type);
        if let Some(token) = &hook.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let Ok(request) = request.body(Full::new(body.clone())) else {
            return 0;
        };
        if s.ready().await.is_err() {
            *sender = None;
            continue;
        }
        match s.send_request(request).await {
            Ok(response) => {
                let code = response.status().as_u16();
                let _ = response.into_body().collect().await;
                return code;
            }
            Err(_) => *sender = None,
        }
    }
    0
}

async fn connect(hook: &PostConfig) -> Option<Sender> {
    let stream = tokio::net::TcpStream::connect((hook.host.as_str(), hook.port))
        .await
        .ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    Some(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_event_grid_writes_them() {
        assert_eq!(iso(1_690_594_060_244), "2023-07-29T01:27:40.244Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn each_format_carries_the_reason_the_exporter_counts() {
        let event = SimEvent {
            kind: "client_disconnected",
            payload: r#"{"event":"client.disconnected","clientid":"d-1","reason":"keepalive_timeout","timestamp":1690594060244}"#.into(),
            reason: Some("keepalive_timeout"),
        };
        let (grid, reason) = element(Format::Eventgrid, &event, 7);
        assert_eq!(reason, Some(Reason::TcpClosed));
        let batch = format!("[{grid}]");
        let items = crate::core::event::eventgrid::read(batch.as_bytes()).unwrap_or_default();
        let Some(crate::core::event::eventgrid::Item::Session { id, event: read }) = items.first()
        else {
            panic!("{items:?}")
        };
        assert_eq!(id.as_deref(), Some("sim-7"));
        assert_eq!(read.clientid, "d-1");
        assert_eq!(
            read.reason,
            Some(crate::core::event::RawReason::Name(
                "connection_lost".into()
            ))
        );
        assert_eq!(read.time_ms, Some(1_690_594_060_244));
        let (aws, reason) = element(Format::AwsIot, &event, 7);
        assert_eq!(reason, Some(Reason::KeepaliveTimeout));
        assert!(
            aws.contains(r#""disconnectReason":"keepalive_timeout""#),
            "{aws}"
        );
        assert_eq!(body(Format::Json, &["a".into(), "b".into()]), b"a\nb");
        assert_eq!(body(Format::AwsIot, &["a".into(), "b".into()]), b"[a,b]");
    }
}
