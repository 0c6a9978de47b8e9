//! The server: accepts on every listener, admits connections (see
//! [`admission`](super::admission)), serves HTTP/1.1 over plain TCP or TLS,
//! checks basic auth, and adds the web config's headers, around the pages.
//! A connection must send its headers within 10 s, and shutdown drains
//! in-flight requests. With `--web.config.file` every endpoint is served
//! over TLS and/or behind basic auth; the file is re-read for each new
//! connection when it changed (and on SIGHUP). Password checks (bcrypt) run
//! at most half the cores at a time; a request that finds them all busy is
//! answered 429 at once, and good credentials are remembered, so a flood of
//! wrong passwords neither eats the CPU nor delays scrapes.

use std::convert::Infallible;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::admission::{first_request_arrives, Admission, Proof};
use super::metrics::{Close, WebMetrics};
use super::pages::{route, text};
use super::web_config::{self, Authenticator, WebSettings};
use crate::core::status::Status;
use crate::edge::ingest::{self, Ingest};
use crate::edge::listen::ListenAddress;
use crate::edge::shutdown::Shutdown;

/// Time a client has to send a request's headers (also the idle time
/// allowed between keep-alive requests).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time in-flight requests get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The web side's settings (`--web.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where to listen (bound by the caller, before [`run`]).
    pub listen: Vec<ListenAddress>,
    pub telemetry_path: String,
    /// `--web.config.file`, checked at start and re-read by the server.
    pub web_config: Option<PathBuf>,
}

/// What every request of a connection is handled with.
struct Handler {
    status: Arc<Status>,
    path: Arc<str>,
    /// The web config in force when the connection was accepted: its TLS
    /// served the handshake.
    web: Option<Arc<WebSettings>>,
    /// The web config file: every request is checked against the users
    /// and given the headers in force when it arrives.
    source: Option<Arc<web_config::Source>>,
    auth: Arc<Auth>,
    /// Told when a request starts and when it is answered.
    proof: Arc<Proof>,
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

/// Serves on `listeners` until `shutdown` fires, then drains in-flight
/// requests; the HTTP ingest source's routes, if any, under
/// `/api/v1/ingest/`.
pub async fn run(
    listeners: Vec<TcpListener>,
    status: Arc<Status>,
    settings: Settings,
    ingest: Option<Arc<Ingest>>,
    web: WebMetrics,
    mut shutdown: Shutdown,
) {
    let counters = web.reload_counters();
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
        throttled: web.throttled(),
    });
    let admission = Admission::default();
    let handshake_failures = Arc::new(HandshakeFailures::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
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
        let (slot, evicted, proof) = match admission.admit(peer.ip()).await {
            Ok(admitted) => admitted,
            Err(refused) => {
                web.refused(refused);
                tracing::debug!(%peer, ?refused, "connection limit reached, closing");
                continue;
            }
        };
        let handler = Handler {
            status: Arc::clone(&status),
            path: Arc::clone(&path),
            web: source.as_ref().map(|s| s.settings()),
            source: source.clone(),
            auth: Arc::clone(&auth),
            proof,
            ingest: ingest.clone(),
        };
        let watcher = graceful.watcher();
        let idle_closed = web.closes(Close::NoRequest);
        let tls_failed = web.closes(Close::TlsHandshake);
        let evictions = web.closes(Close::Evicted);
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
            let _slot = slot;
            tokio::pin!(work);
            tokio::select! {
                evict = evicted => match evict {
                    Ok(()) => {
                        evictions.inc();
                        tracing::debug!(%peer, "closed while idle to make room");
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

/// Re-reads the web config at once on every SIGHUP, and looks at its files
/// every second, so a change is in force without any request to notice it
/// (a removed user is refused from then on).
async fn reload_on_sighup(source: Arc<web_config::Source>) {
    let mut watch = tokio::time::interval(web_config::STABLE_FOR);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    #[cfg(unix)]
    let mut hangup = {
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::hangup()).ok()
    };
    loop {
        #[cfg(unix)]
        let (now, ended) = match &mut hangup {
            Some(signals) => tokio::select! {
                got = signals.recv() => (got.is_some(), got.is_none()),
                _ = watch.tick() => (false, false),
            },
            None => {
                watch.tick().await;
                (false, false)
            }
        };
        #[cfg(unix)]
        if ended {
            // no more signals: watch the files alone
            hangup = None;
        }
        #[cfg(not(unix))]
        let now = {
            watch.tick().await;
            false
        };
        let source = Arc::clone(&source);
        // reading certificates is file I/O
        let _ = tokio::task::spawn_blocking(move || {
            if now {
                source.reload_now();
            } else {
                source.settings();
            }
        })
        .await;
    }
}

/// One request: the connection is busy (not evictable) until it is
/// answered.
async fn handle(handler: &Handler, req: Request<Incoming>) -> Response<Full<Bytes>> {
    handler.proof.busy();
    let response = answer(handler, req).await;
    handler.proof.idle();
    response
}

/// Basic auth and the configured headers around [`route`].
async fn answer(handler: &Handler, req: Request<Incoming>) -> Response<Full<Bytes>> {
    // the users and headers in force now: a user removed by a reload is
    // refused on a connection opened before it (the watcher reads the
    // files; a request only takes what it read)
    let current = handler.source.as_ref().map(|s| s.current());
    if let (Some(ingest), true) = (&handler.ingest, ingest::is_ingest(req.uri().path())) {
        // an ingest token, never the scrape credentials, lets a sender in
        let mut response = ingest.handle(req).await;
        if let Some(web) = &current {
            add_headers(&mut response, web);
        }
        return response;
    }
    let Some(web) = &current else {
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
