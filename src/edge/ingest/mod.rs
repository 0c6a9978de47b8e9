//! The HTTP ingest source: events pushed over HTTP by senders that cannot
//! be subscribed to (EMQX's webhook, AWS IoT rule actions, pipelines that
//! POST JSON lines), handed to the same pipeline as the MQTT source's.
//!
//! `POST /api/v1/ingest/<route>`, with a token from `--ingest.token-file`
//! as `Authorization: Bearer TOKEN` or `?token=TOKEN`. The web config's
//! basic-auth users cannot post, and a token cannot read `/metrics`.
//! Answers, so that senders behave:
//! - 200 once the events are in the pipeline; an element of a batch that is
//!   not an event is counted in `mqtt_exporter_event_errors_total` and the
//!   rest are kept, so one bad event cannot make a sender retry a batch
//!   forever;
//! - 400 only for a body that is not JSON at all; 401 without a valid
//!   token; 413 over `--ingest.max-body-size`; 405 for another method;
//! - 503 with `Retry-After` when too many requests already wait for the
//!   pipeline ([`WAITING`]), so a fast sender is pushed back and the MQTT
//!   source is not starved.
//!
//! Routes: `json` (NDJSON or a JSON array of any payload the MQTT path
//! reads, or `{"topic":...,"payload":...}` records as `analyze` reads them),
//! `emqx` (EMQX 5 HTTP action bodies; EMQX 4 and NanoMQ web hook bodies,
//! whose `action` is read as the topic), `aws-iot` (a lifecycle event or an
//! array of them; a destination confirmation is logged with the command
//! that confirms it, and not counted), `eventgrid` (Azure Event Grid's MQTT
//! broker, either delivery schema, as arrays or one CloudEvent; the
//! subscription validation and CloudEvents' OPTIONS handshake are answered;
//! a repeated event `id` within 10 minutes is dropped and counted).

pub mod tokens;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use serde_json::value::RawValue;
use tokio::sync::Semaphore;

use parking_lot::Mutex;

use crate::core::clock::now_ms;
use crate::core::event::eventgrid::{self, Item};
use crate::core::event::EventError;
use crate::core::label_set::{By, Label};
use crate::core::metrics::registered;
use crate::core::recent::Recent;
use crate::edge::feed::Inlet;
use crate::edge::files::FileError;
use tokens::Tokens;

/// Requests that may wait for the pipeline at once; one more is answered
/// 503.
pub const WAITING: usize = 64;
/// Where the ingest routes live.
pub const PREFIX: &str = "/api/v1/ingest/";

/// `--ingest.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub token_file: PathBuf,
    pub max_body_size: usize,
    /// `--ingest.body-grace`: time before a body must come at [`BODY_RATE`].
    pub body_grace: std::time::Duration,
}

/// The routes, a closed set (the `route` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Json,
    Emqx,
    AwsIot,
    Eventgrid,
    Unknown,
}

impl Route {
    const ALL: [Route; 5] = [
        Route::Json,
        Route::Emqx,
        Route::AwsIot,
        Route::Eventgrid,
        Route::Unknown,
    ];

    fn of(path: &str) -> Route {
        match path.strip_prefix(PREFIX) {
            Some("json") => Route::Json,
            Some("emqx") => Route::Emqx,
            Some("aws-iot") => Route::AwsIot,
            Some("eventgrid") => Route::Eventgrid,
            _ => Route::Unknown,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Route::Json => "json",
            Route::Emqx => "emqx",
            Route::AwsIot => "aws-iot",
            Route::Eventgrid => "eventgrid",
            Route::Unknown => "unknown",
        }
    }
}

/// The answers, a closed set (the `code` label).
impl Label for Route {
    const ALL: &'static [Route] = &Route::ALL;

    fn index(self) -> usize {
        self as usize
    }

    fn as_label(self) -> &'static str {
        self.as_str()
    }
}

const CODES: [StatusCode; 8] = [
    StatusCode::OK,
    StatusCode::BAD_REQUEST,
    StatusCode::UNAUTHORIZED,
    StatusCode::NOT_FOUND,
    StatusCode::METHOD_NOT_ALLOWED,
    StatusCode::REQUEST_TIMEOUT,
    StatusCode::PAYLOAD_TOO_LARGE,
    StatusCode::SERVICE_UNAVAILABLE,
];

/// True if `path` is an ingest route.
pub fn is_ingest(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// The ingest source: its tokens, its bound, its inlet and its metrics.
pub struct Ingest {
    inlet: Inlet,
    tokens: Tokens,
    max_body: usize,
    body_grace: std::time::Duration,
    waiting: Semaphore,
    metrics: IngestMetrics,
    confirmation_said: AtomicBool,
    /// Event Grid ids seen lately.
    recent: Mutex<Recent>,
    /// Body buffers, reused: a batch body is up to a megabyte, and a fresh
    /// one per request costs page faults.
    buffers: Buffers,
}

/// Reusable body buffers, at most [`WAITING`] kept.
#[derive(Default)]
struct Buffers(Mutex<Vec<Vec<u8>>>);

impl Buffers {
    fn take(&self) -> Vec<u8> {
        self.0.lock().pop().unwrap_or_default()
    }

    fn put(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let mut kept = self.0.lock();
        if kept.len() < WAITING {
            kept.push(buffer);
        }
    }
}

/// Why a body could not be read.
enum BodyError {
    TooLarge,
    Broken,
    /// It came slower than [`BODY_RATE`] after its grace.
    Slow,
}

/// The slowest a body may come, in bytes a second, past its grace
/// (`--ingest.body-grace`, 5 s): a 1 MiB batch has 21 s, and an upload
/// that stalls holds its waiting slot for seconds, not for as long as it
/// stalls.
pub const BODY_RATE: u64 = 64 * 1024;

/// Reads a whole body into `buffer`, refusing more than `max` bytes, and a
/// body slower than [`BODY_RATE`] after `grace`.
async fn read_body(
    mut body: Incoming,
    max: usize,
    grace: std::time::Duration,
    buffer: &mut Vec<u8>,
) -> Result<(), BodyError> {
    let start = tokio::time::Instant::now();
    loop {
        let allowed =
            grace + std::time::Duration::from_millis(buffer.len() as u64 * 1000 / BODY_RATE);
        let Ok(next) = tokio::time::timeout_at(start + allowed, body.frame()).await else {
            return Err(BodyError::Slow);
        };
        let Some(frame) = next else {
            return Ok(());
        };
        let frame = frame.map_err(|_| BodyError::Broken)?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > max {
                return Err(BodyError::TooLarge);
            }
            buffer.extend_from_slice(&data);
        }
    }
}

/// How long an Event Grid event `id` is remembered to drop its repeats.
pub const DEDUP_WINDOW_MS: i64 = 10 * 60 * 1000;
/// Event Grid ids remembered at most.
pub const DEDUP_IDS: usize = 200_000;

/// The ingest source's own metrics.
pub struct IngestMetrics {
    /// `mqtt_exporter_ingest_requests_total{route,code}`, by route, then
    /// code, in the order of [`Route::ALL`] and [`CODES`].
    requests: By<Route, Vec<IntCounter>>,
    /// `mqtt_exporter_ingest_duplicates_total`.
    duplicates: IntCounter,
}

impl IngestMetrics {
    /// Registers the source's metrics on `registry`, every series at 0.
    pub fn new(registry: &Registry) -> prometheus::Result<IngestMetrics> {
        let family = registered(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "mqtt_exporter_ingest_requests_total",
                    "HTTP ingest requests, by route and answer code.",
                ),
                &["route", "code"],
            )?,
        )?;
        let requests = By::from_fn(|r: Route| {
            CODES
                .iter()
                .map(|c| family.with_label_values(&[r.as_str(), c.as_str()]))
                .collect()
        });
        let duplicates = registered(
            registry,
            IntCounter::new(
                "mqtt_exporter_ingest_duplicates_total",
                "Events delivered again (an Event Grid id seen in the last 10 minutes), dropped.",
            )?,
        )?;
        Ok(IngestMetrics {
            requests,
            duplicates,
        })
    }

    fn answered(&self, route: Route, code: StatusCode) {
        let at = CODES.iter().position(|c| *c == code);
        if let Some(counter) = at.and_then(|at| self.requests[route].get(at)) {
            counter.inc();
        }
    }
}

impl Ingest {
    /// Reads the token file now (it must hold a token) and registers the
    /// source's metrics.
    pub fn new(
        settings: &Settings,
        inlet: Inlet,
        registry: &Registry,
    ) -> Result<Ingest, IngestError> {
        Ok(Ingest {
            inlet,
            tokens: Tokens::load(&settings.token_file)?,
            max_body: settings.max_body_size,
            body_grace: settings.body_grace,
            waiting: Semaphore::new(WAITING),
            metrics: IngestMetrics::new(registry)?,
            confirmation_said: AtomicBool::new(false),
            recent: Mutex::new(Recent::new(DEDUP_WINDOW_MS, DEDUP_IDS)),
            buffers: Buffers::default(),
        })
    }

    /// Answers one request to an ingest route.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let route = Route::of(req.uri().path());
        let response = self.answer(route, req).await;
        self.metrics.answered(route, response.status());
        response
    }

    async fn answer(&self, route: Route, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if route == Route::Unknown {
            return text(StatusCode::NOT_FOUND, "No such ingest route.\n");
        }
        if route == Route::Eventgrid && req.method() == Method::OPTIONS {
            return abuse_protection(&req);
        }
        if req.method() != Method::POST {
            let mut response = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "Only POST is served here.\n",
            );
            let allow = if route == Route::Eventgrid {
                "POST, OPTIONS"
            } else {
                "POST"
            };
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            return response;
        }
        if !self.authorized(&req) {
            return text(
                StatusCode::UNAUTHORIZED,
                "A valid ingest token is needed.\n",
            );
        }
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.max_body) {
            return too_large(self.max_body);
        }
        let Ok(_turn) = self.waiting.try_acquire() else {
            let mut response = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many requests wait for the pipeline; retry.\n",
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        };
        let confirmation = route == Route::AwsIot
            && req
                .headers()
                .get("x-amz-rules-engine-message-type")
                .is_some_and(|v| {
                    v.as_bytes()
                        .eq_ignore_ascii_case(b"DestinationConfirmation")
                });
        let mut buffer = self.buffers.take();
        let read = read_body(req.into_body(), self.max_body, self.body_grace, &mut buffer).await;
        let response = match read {
            Ok(()) => self.handle_body(route, confirmation, &buffer),
            Err(BodyError::TooLarge) => too_large(self.max_body),
            Err(BodyError::Broken) => {
                text(StatusCode::BAD_REQUEST, "The body could not be read.\n")
            }
            Err(BodyError::Slow) => {
                tracing::debug!("an ingest body came too slowly; closing");
                let mut response = text(
                    StatusCode::REQUEST_TIMEOUT,
                    "The body came too slowly (under 64 KiB a second after --ingest.body-grace).\n",
                );
                response
                    .headers_mut()
                    .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
                response
            }
        };
        self.buffers.put(buffer);
        response
    }

    /// Answers a request whose body has been read whole.
    fn handle_body(&self, route: Route, confirmation: bool, body: &[u8]) -> Response<Full<Bytes>> {
        if confirmation {
            self.confirm(body);
            return text(StatusCode::OK, "Destination confirmation logged.\n");
        }
        let arrival_ms = now_ms();
        if route == Route::Eventgrid {
            return self.eventgrid(body, arrival_ms);
        }
        let Some(elements) = elements(body) else {
            return text(StatusCode::BAD_REQUEST, "The body is not JSON.\n");
        };
        self.inlet.deliver_all(elements.iter().map(|e| {
            let (topic, payload) = match route {
                Route::Emqx => (action(e), *e),
                _ => unwrap_record(e),
            };
            (topic, payload, arrival_ms)
        }));
        text(StatusCode::OK, "OK\n")
    }

    /// An Event Grid delivery: the subscription's validation is answered
    /// with its code; each session event is handed over once (a repeated
    /// `id` within [`DEDUP_WINDOW_MS`] is dropped and counted).
    fn eventgrid(&self, body: &[u8], arrival_ms: i64) -> Response<Full<Bytes>> {
        let Some(items) = eventgrid::read(body) else {
            return text(StatusCode::BAD_REQUEST, "The body is not JSON.\n");
        };
        let mut events = Vec::with_capacity(items.len());
        let mut invalid = 0;
        {
            let mut recent = self.recent.lock();
            for item in items {
                match item {
                    Item::Validation { code } => {
                        tracing::info!("Event Grid subscription validation answered");
                        return json_response(&serde_json::json!({ "validationResponse": code }));
                    }
                    Item::Session { id, event } => {
                        if id.is_some_and(|id| !recent.first_time(&id, arrival_ms)) {
                            self.metrics.duplicates.inc();
                        } else {
                            events.push(event);
                        }
                    }
                    Item::Invalid => invalid += 1,
                    Item::Other => {}
                }
            }
        }
        self.inlet.record_all(events, arrival_ms);
        // an element that is not an event is counted as one that cannot be
        // read, as on every other route
        for _ in 0..invalid {
            self.inlet.reject(EventError::InvalidJson, 0);
        }
        text(StatusCode::OK, "OK\n")
    }

    /// The token, from `Authorization: Bearer` or `?token=`.
    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let bearer = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let query = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")));
        bearer
            .into_iter()
            .chain(query)
            .any(|token| self.tokens.accepts(token.as_bytes()))
    }

    /// An AWS IoT destination confirmation: logged once, at warn, with
    /// what confirms it; the exporter does not fetch the URL itself.
    fn confirm(&self, body: &[u8]) {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let url = value
            .get("enableUrl")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let token = value
            .get("confirmationToken")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let arn = value.get("arn").and_then(|v| v.as_str()).unwrap_or("");
        if !self.confirmation_said.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                enable_url = %url,
                arn = %arn,
                command = %format!("aws iot confirm-topic-rule-destination --confirmation-token {token}"),
                "AWS IoT asks to confirm this HTTPS destination: open enable_url, or run the command"
            );
        }
    }
}

/// The elements of a body: a JSON array's elements, or NDJSON's lines
/// (blank ones skipped). `None` when the body is not JSON at all.
fn elements(body: &[u8]) -> Option<Vec<&[u8]>> {
    let trimmed = body.trim_ascii();
    match trimmed.first() {
        Some(b'[') => {
            let raw: Vec<&RawValue> = serde_json::from_slice(trimmed).ok()?;
            Some(raw.iter().map(|v| v.get().as_bytes()).collect())
        }
        Some(b'{') => Some(
            trimmed
                .split(|b| *b == b'\n')
                .map(<[u8]>::trim_ascii)
                .filter(|l| !l.is_empty())
                .collect(),
        ),
        _ => None,
    }
}

/// A `{"topic":...,"payload":...}` record's topic and payload (the payload
/// an object, as `analyze`'s sink format allows); anything else is a bare
/// payload.
fn unwrap_record(element: &[u8]) -> (&[u8], &[u8]) {
    #[derive(serde::Deserialize)]
    struct Record<'a> {
        #[serde(borrow, default)]
        topic: Option<&'a str>,
        #[serde(borrow)]
        payload: &'a RawValue,
    }
    if !contains(element, b"\"payload\"") {
        return (b"", element);
    }
    match serde_json::from_slice::<Record<'_>>(element) {
        Ok(record) if record.payload.get().starts_with('{') => (
            record.topic.unwrap_or("").as_bytes(),
            record.payload.get().as_bytes(),
        ),
        _ => (b"", element),
    }
}

/// An EMQX 4 or NanoMQ web hook body's `action` (`client_disconnected`),
/// read as the topic the event kind comes from.
fn action(element: &[u8]) -> &[u8] {
    #[derive(serde::Deserialize)]
    struct Hook<'a> {
        #[serde(borrow)]
        action: &'a str,
    }
    if !contains(element, b"\"action\"") {
        return b"";
    }
    serde_json::from_slice::<Hook<'_>>(element)
        .map(|h| h.action.as_bytes())
        .unwrap_or(b"")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// CloudEvents' abuse protection (HTTP webhook spec §4), which Event Grid
/// sends before delivering: the origin is allowed, at any rate. No token is
/// needed to answer it: it counts nothing and tells nothing.
fn abuse_protection(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::OK, "");
    let headers = response.headers_mut();
    if let Some(origin) = req.headers().get("webhook-request-origin") {
        headers.insert("webhook-allowed-origin", origin.clone());
    }
    headers.insert("webhook-allowed-rate", HeaderValue::from_static("*"));
    headers.insert(ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    response
}

fn json_response(value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn too_large(max: usize) -> Response<Full<Bytes>> {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("The body is over --ingest.max-body-size ({max} bytes).\n"),
    )
}

fn text(code: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = code;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Why the ingest source cannot start.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_split_into_elements_and_records_unwrap() {
        let array = br#" [{"a":1}, {"b":[2,3]}] "#;
        assert_eq!(
            elements(array),
            Some(vec![&br#"{"a":1}"#[..], &br#"{"b":[2,3]}"#[..]])
        );
        let lines = b"{\"a\":1}\n\n  {\"b\":2}\r\n";
        assert_eq!(
            elements(lines),
            Some(vec![&b"{\"a\":1}"[..], &b"{\"b\":2}"[..]])
        );
        assert_eq!(elements(b"garbage"), None);
        assert_eq!(elements(b"[1,"), None);
        assert_eq!(elements(b""), None);
        let record = br#"{"topic":"$events/client_disconnected","payload":{"clientid":"c"}}"#;
        assert_eq!(
            unwrap_record(record),
            (
                &b"$events/client_disconnected"[..],
                &br#"{"clientid":"c"}"#[..]
            )
        );
        let bare = br#"{"clientid":"c","reason":"payload"}"#;
        assert_eq!(unwrap_record(bare), (&b""[..], &bare[..]));
        assert_eq!(
            action(br#"{"action":"client_disconnected","clientid":"c"}"#),
            b"client_disconnected"
        );
        assert_eq!(action(br#"{"event":"client.disconnected"}"#), b"");
    }
}
