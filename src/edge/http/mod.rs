//! The HTTP edge: `/metrics`, the landing page, health, readiness and the
//! flapping list.
//!
//! The server reads two things: the Prometheus [`Registry`] and a [`Status`]
//! that the MQTT task publishes (readiness, and a snapshot of the flapping
//! clients refreshed every second). It never touches the pipeline, so a scrape
//! cannot slow event handling. Connections are capped in all and per peer
//! address (so one host cannot starve Prometheus); at the overall cap the
//! oldest connection that has not yet sent a complete request is closed to
//! make room, so slow or idle connections from many addresses lose their
//! slots, not the scraper. A new connection must start its request within
//! 2 s and send its headers within 10 s, and shutdown drains in-flight
//! requests. With `--web.config.file` every endpoint is served over TLS
//! and/or behind basic auth, with the file's headers; the file is re-read
//! for each new connection when it changed (and on SIGHUP). Password checks
//! (bcrypt) run at most half the cores at a time; a request that finds them
//! all busy is answered 429 at once, and good credentials are remembered,
//! so a flood of wrong passwords neither eats the CPU nor delays scrapes.

pub mod metrics;
pub mod web_config;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};

use crate::core::reasons::Reason;
use crate::core::snapshot::Snapshot;
use crate::core::status::Status;
use crate::core::top::{TopReason, TopReport};
use crate::edge::ingest::{self, Ingest};
use crate::edge::shutdown::Shutdown;
use metrics::WebMetrics;
use web_config::{Authenticator, ReloadCounters, WebSettings};

/// Concurrent connections served; at the limit the oldest one without a
/// complete request is closed for a new one.
pub const MAX_CONNECTIONS: usize = 2048;
/// Concurrent connections from one peer address (an IPv6 /64 counts as one
/// address); more are closed at once, so one host cannot take every slot and
/// starve Prometheus's scrapes.
pub const MAX_CONNECTIONS_PER_PEER: usize = 64;
/// Time a new connection has to send the first byte of its first request;
/// a scraper sends it at once, so an idle socket is closed early.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Time a client has to send a request's headers (also the idle time
/// allowed between keep-alive requests).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time in-flight requests get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the server is told at start.
pub struct Settings {
    pub telemetry_path: String,
    /// `--web.config.file` (already checked), re-read per connection.
    pub web_config: Option<PathBuf>,
    /// The HTTP ingest source, served under `/api/v1/ingest/`.
    pub ingest: Option<Arc<Ingest>>,
}

/// What every request of a connection is handled with.
struct Handler {
    status: Arc<Status>,
    path: Arc<str>,
    /// The web config in force when the connection was accepted.
    web: Option<Arc<WebSettings>>,
    auth: Arc<Auth>,
    /// This connection among those without a complete request yet.
    unproven: Arc<Unproven>,
    id: u64,
    proven: AtomicBool,
    ingest: Option<Arc<Ingest>>,
}

/// Password checking for every connection: the good-credentials cache and
/// the bound on concurrent bcrypt checks.
struct Auth {
    authenticator: Authenticator,
    checks: Arc<Semaphore>,
    throttled: prometheus::IntCounter,
}

/// bcrypt checks run at once: half the cores, at least one.
fn max_password_checks() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Connections that have not yet sent a complete request, oldest first:
/// the ones closed to make room at the connection limit.
#[derive(Default)]
struct Unproven {
    waiting: Mutex<BTreeMap<u64, oneshot::Sender<()>>>,
    next: AtomicU64,
}

impl Unproven {
    /// Enters a new connection; the receiver fires when it is evicted.
    fn enter(&self) -> (u64, oneshot::Receiver<()>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(id, tx);
        }
        (id, rx)
    }

    /// The connection sent a complete request, or ended.
    fn leave(&self, id: u64) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.remove(&id);
        }
    }

    /// Tells the oldest connection without a complete request to close;
    /// false if there is none.
    fn evict_oldest(&self) -> bool {
        let Ok(mut waiting) = self.waiting.lock() else {
            return false;
        };
        while let Some((_, tx)) = waiting.pop_first() {
            if tx.send(()).is_ok() {
                return true;
            }
        }
        false
    }
}

/// Failed TLS handshakes, told once per peer address and cause at warn (a
/// client certificate the verifier refuses, such as an X.509 v1 one made as
/// mosquitto-tls(7) says, would otherwise fail without a word); repeats,
/// and causes past the bound, at debug.
#[derive(Default)]
struct HandshakeFailures(Mutex<std::collections::HashSet<(IpAddr, String)>>);

/// Distinct (peer, cause) pairs told at warn.
const HANDSHAKE_FAILURES_TOLD: usize = 1024;

impl HandshakeFailures {
    fn report(&self, peer: IpAddr, error: &str) {
        let first = self.0.lock().is_ok_and(|mut told| {
            told.len() < HANDSHAKE_FAILURES_TOLD && told.insert((peer, error.to_string()))
        });
        let hint = if error.contains("UnsupportedCertVersion") {
            "the client certificate is X.509 version 1 (openssl x509 -req without -extfile): \
             re-issue it with -extfile <(printf 'extendedKeyUsage=clientAuth')"
        } else {
            ""
        };
        if first {
            tracing::warn!(%peer, error, hint, "TLS handshake failed (told once per address and cause)");
        } else {
            tracing::debug!(%peer, error, "TLS handshake failed");
        }
    }
}

/// Leaves [`Unproven`] when the connection's task ends, however it ends.
struct Leave(Arc<Unproven>, u64);

impl Drop for Leave {
    fn drop(&mut self) {
        self.0.leave(self.1);
    }
}

/// Serves until `shutdown` fires, then drains in-flight requests.
pub async fn run(
    listeners: Vec<TcpListener>,
    status: Arc<Status>,
    settings: Settings,
    web: WebMetrics,
    mut shutdown: Shutdown,
) {
    let counters = ReloadCounters::of(&web.reloads);
    let source = match settings
        .web_config
        .map(|path| web_config::Source::new(path, counters))
        .transpose()
    {
        Ok(source) => source.map(Arc::new),
        Err(e) => {
            // checked at start; it can only have turned bad since
            tracing::error!(error = %e, "web config is invalid, not serving HTTP");
            return;
        }
    };
    let reloader = source
        .clone()
        .map(|source| tokio::spawn(reload_on_sighup(source)));
    let auth = Arc::new(Auth {
        authenticator: Authenticator::default(),
        checks: Arc::new(Semaphore::new(max_password_checks())),
        throttled: web.auth_throttled.clone(),
    });
    let unproven = Arc::new(Unproven::default());
    let handshake_failures = Arc::new(HandshakeFailures::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let peers = Arc::new(Peers::default());
    let path: Arc<str> = settings.telemetry_path.into();
    // one accept loop per listener, all feeding this loop
    let (tx, mut accepted) = tokio::sync::mpsc::channel(64);
    let acceptors: Vec<_> = listeners
        .into_iter()
        .map(|listener| tokio::spawn(accept(listener, tx.clone())))
        .collect();
    drop(tx);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.recv() => break,
            next = accepted.recv() => match next {
                Some(pair) => pair,
                None => break,
            },
        };
        let Some(peer_slot) = Peers::admit(&peers, peer.ip()) else {
            web.rejected_per_peer.inc();
            tracing::debug!(%peer, "per-peer connection limit reached, closing");
            continue;
        };
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            // at the limit: the oldest connection without a complete request
            // makes room, if there is one
            Err(_) if unproven.evict_oldest() => {
                let wait = Arc::clone(&permits).acquire_owned();
                match tokio::time::timeout(Duration::from_millis(500), wait).await {
                    Ok(Ok(permit)) => permit,
                    _ => {
                        web.rejected_total.inc();
                        continue;
                    }
                }
            }
            Err(_) => {
                web.rejected_total.inc();
                tracing::debug!(%peer, "connection limit reached, closing");
                continue;
            }
        };
        let (id, evicted) = unproven.enter();
        let handler = Handler {
            status: Arc::clone(&status),
            path: Arc::clone(&path),
            web: source.as_ref().map(|s| s.settings()),
            auth: Arc::clone(&auth),
            unproven: Arc::clone(&unproven),
            id,
            proven: AtomicBool::new(false),
            ingest: settings.ingest.clone(),
        };
        let leave = Leave(Arc::clone(&unproven), id);
        let watcher = graceful.watcher();
        let idle_closed = web.idle_closed.clone();
        let tls_failed = web.tls_failed.clone();
        let evictions = web.evicted.clone();
        let handshake_failures = Arc::clone(&handshake_failures);
        let work = async move {
            if !first_request_arrives(&stream).await {
                idle_closed.inc();
                tracing::debug!(%peer, "no request within the first-request timeout, closing");
                return;
            }
            let tls = handler.web.as_ref().and_then(|w| w.tls.clone());
            let Some(tls) = tls else {
                return serve(TokioIo::new(stream), handler, watcher, peer).await;
            };
            let accept = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
            match tokio::time::timeout(HEADER_TIMEOUT, accept).await {
                Ok(Ok(stream)) => serve(TokioIo::new(stream), handler, watcher, peer).await,
                Ok(Err(e)) => {
                    tls_failed.inc();
                    handshake_failures.report(peer.ip(), &e.to_string());
                }
                Err(_) => {
                    idle_closed.inc();
                    tracing::debug!(%peer, "TLS handshake timed out");
                }
            }
        };
        tokio::spawn(async move {
            let _slots = (permit, peer_slot, leave);
            tokio::pin!(work);
            tokio::select! {
                evict = evicted => match evict {
                    Ok(()) => {
                        evictions.inc();
                        tracing::debug!(%peer, "closed without a complete request to make room");
                    }
                    // it sent a complete request: serve on
                    Err(_) => work.await,
                },
                () = &mut work => {}
            }
        });
    }
    acceptors.iter().for_each(tokio::task::JoinHandle::abort);
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("http connections still open after the drain timeout");
    }
}

/// Serves HTTP/1.1 on one connection (plain or TLS) until it ends.
async fn serve<I>(io: I, handler: Handler, watcher: Watcher, peer: std::net::SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let handler = Arc::new(handler);
    let service = service_fn(move |req| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, Infallible>(handle(&handler, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(64 * 1024)
        .serve_connection(io, service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "http connection ended with an error");
    }
}

/// Re-reads the web config at once on every SIGHUP.
async fn reload_on_sighup(source: Arc<web_config::Source>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hangup.recv().await.is_some() {
            let source = Arc::clone(&source);
            // reading certificates is file I/O
            let _ = tokio::task::spawn_blocking(move || source.reload_now()).await;
        }
    }
    #[cfg(not(unix))]
    let _ = source;
}

/// Basic auth and the configured headers around [`route`].
async fn handle(handler: &Handler, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if !handler.proven.swap(true, Ordering::Relaxed) {
        // a complete request: this connection can no longer be evicted
        handler.unproven.leave(handler.id);
    }
    if let (Some(ingest), true) = (&handler.ingest, ingest::is_ingest(req.uri().path())) {
        // a webhook token, never the scrape credentials, lets a sender in
        let mut response = ingest.handle(req).await;
        if let Some(web) = &handler.web {
            add_headers(&mut response, web);
        }
        return response;
    }
    let Some(web) = &handler.web else {
        return route(&req, &handler.status, &handler.path);
    };
    let mut response = if web.users.is_empty() {
        route(&req, &handler.status, &handler.path)
    } else {
        match authenticate(&handler.auth, web, &req).await {
            Some(true) => route(&req, &handler.status, &handler.path),
            Some(false) => {
                let mut response = text(StatusCode::UNAUTHORIZED, "Unauthorized.\n");
                response
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                response
            }
            None => {
                let mut response = text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many password checks at once; retry.\n",
                );
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
        }
    };
    add_headers(&mut response, web);
    response
}

/// The web config's response headers.
fn add_headers(response: &mut Response<Full<Bytes>>, web: &WebSettings) {
    for (name, value) in &web.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
}

/// Whether the request's credentials are good; `None` when they are not
/// remembered and every password check is busy.
async fn authenticate(
    auth: &Arc<Auth>,
    web: &Arc<WebSettings>,
    req: &Request<Incoming>,
) -> Option<bool> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some((user, password)) = web_config::basic_credentials(header) else {
        return Some(false);
    };
    if auth.authenticator.known_good(&web.users, &user, &password) {
        return Some(true);
    }
    let Ok(permit) = Arc::clone(&auth.checks).try_acquire_owned() else {
        auth.throttled.inc();
        return None;
    };
    let (auth, web) = (Arc::clone(auth), Arc::clone(web));
    // bcrypt is slow on purpose: off the async workers, and bounded
    let admitted = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        auth.authenticator.verify(&web.users, &user, &password)
    })
    .await
    .unwrap_or(false);
    Some(admitted)
}

/// Accepts connections on `listener` and hands them on, until the receiver
/// is gone.
async fn accept(
    listener: TcpListener,
    to: tokio::sync::mpsc::Sender<(tokio::net::TcpStream, std::net::SocketAddr)>,
) {
    loop {
        match listener.accept().await {
            Ok(pair) => {
                if to.send(pair).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Waits until the connection's first request starts (its first byte
/// arrives) or [`FIRST_REQUEST_TIMEOUT`] passes; false on timeout or EOF.
async fn first_request_arrives(stream: &tokio::net::TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(FIRST_REQUEST_TIMEOUT, stream.peek(&mut byte)).await,
        Ok(Ok(n)) if n > 0
    )
}

/// Connections held now per peer address.
#[derive(Default)]
struct Peers(Mutex<HashMap<IpAddr, usize>>);

/// One admitted connection of a peer; gives its slot back when dropped.
struct PeerSlot {
    peers: Arc<Peers>,
    addr: IpAddr,
}

impl Peers {
    /// Admits one more connection from `ip` unless it holds the most allowed.
    fn admit(peers: &Arc<Peers>, ip: IpAddr) -> Option<PeerSlot> {
        let addr = peer_key(ip);
        let mut held = peers.0.lock().ok()?;
        let n = held.entry(addr).or_insert(0);
        if *n >= MAX_CONNECTIONS_PER_PEER {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: Arc::clone(peers),
            addr,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Ok(mut held) = self.peers.0.lock() {
            if let Some(n) = held.get_mut(&self.addr) {
                *n -= 1;
                if *n == 0 {
                    held.remove(&self.addr);
                }
            }
        }
    }
}

/// The address a peer is limited by: IPv4 as it is, IPv6 by its /64 (one
/// host can use a whole /64), an IPv4-mapped IPv6 address as IPv4.
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

fn route(req: &Request<Incoming>, status: &Status, telemetry_path: &str) -> Response<Full<Bytes>> {
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
        vec![TopReason {
            reason,
            devices: 0,
            saturated: false,
            clients: Vec::new(),
            networks: Vec::new(),
        }]
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

fn text(code: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
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

fn landing_page(telemetry_path: &str, snapshot: &Snapshot) -> String {
    let (flapping, top) = (&snapshot.flapping, &snapshot.top);
    let mut top_rows = String::new();
    for entry in &top.reasons {
        if entry.clients.is_empty() && entry.saturated {
            let _ = write!(
                top_rows,
                "<tr><td><a href=\"/api/v1/top?reason={reason}\">{reason}</a></td><td colspan=\"3\">\
                 too many devices at once to single one out: {} devices in the window</td></tr>",
                entry.devices,
                reason = entry.reason,
            );
        } else if entry.clients.is_empty() {
            let _ = write!(
                top_rows,
                "<tr><td><a href=\"/api/v1/top?reason={reason}\">{reason}</a></td><td colspan=\"3\">\
                 no single device stands out: {} devices, at most {} disconnects each</td></tr>",
                entry.devices,
                crate::core::top::STANDOUT_MIN - 1,
                reason = entry.reason,
            );
        }
        for c in entry.clients.iter().take(crate::core::listed::TOP_LANDING) {
            let _ = write!(
                top_rows,
                "<tr><td><a href=\"/api/v1/top?reason={reason}\">{reason}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&c.clientid),
                c.count,
                escape(&c.peers.join(", ")),
                reason = entry.reason,
            );
        }
    }
    if top_rows.is_empty() {
        top_rows.push_str("<tr><td colspan=\"4\">No disconnects in the window.</td></tr>");
    }
    let mut network_rows = String::new();
    for entry in &top.reasons {
        for n in entry.networks.iter().take(crate::core::listed::TOP_LANDING) {
            let _ = write!(
                network_rows,
                "<tr><td><a href=\"/api/v1/top?reason={reason}\">{reason}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&n.network),
                n.count,
                escape(&n.clients.join(", ")),
                reason = entry.reason,
            );
        }
    }
    if network_rows.is_empty() {
        network_rows.push_str(
            "<tr><td colspan=\"4\">No source network with 3 or more disconnects of one reason in the window.</td></tr>",
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
{network_rows}\n</table>\n</body></html>\n",
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
