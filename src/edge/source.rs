//! What a source is, and the list of them: the one seam through which
//! events enter the exporter.
//!
//! A source turns what a broker or a sender gives it into deliveries for
//! the one pipeline, through the [`Inlet`] the feed gives it, and says how
//! it is doing through its own [`Health`] entry in the status (so a second
//! source's health never overwrites the first's). It registers its own
//! metrics. `run` starts every entry of [`Config::sources`], in order, with
//! [`SourceSettings::start`], then awaits them all; nothing else names a
//! source. Adding one is its own folder under `edge/`, one arm here, and
//! its flag group. A source built outside the crate (a test's, an
//! embedder's) implements [`Source`] and is listed as
//! [`SourceSettings::Plugged`]: one file, and that one arm.
//!
//! [`Config::sources`]: crate::config::Config::sources

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use prometheus::Registry;

use crate::core::status::Health;
use crate::edge::feed::Inlet;
use crate::edge::ingest::{self, Ingest, IngestError};
use crate::edge::shutdown::Shutdown;
use crate::edge::{file, mqtt};

/// One enabled source, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSettings {
    /// Subscribed to a broker's event topics (`--mqtt.*`).
    Mqtt(Box<mqtt::Settings>),
    /// Events pushed over HTTP (`--ingest.token-file`).
    Ingest(ingest::Settings),
    /// A log file followed like `tail -F` (`--file.path`).
    File(file::Settings),
    /// A source given as a value: no flag names it.
    Plugged(Plugged),
}

/// A source, as one value: what the built-in arms do, for a source that
/// lives outside the crate.
pub trait Source: Send + Sync {
    /// The name `/-/ready` and the log give it.
    fn name(&self) -> String;
    /// Registers its metrics and returns its task (not yet running) and
    /// routes, as [`SourceSettings::start`] does.
    fn start(&self, cx: Context<'_>) -> Result<Started, StartError>;
}

/// A [`Source`] in the list; two are equal when they are the same value.
#[derive(Clone)]
pub struct Plugged(pub Arc<dyn Source>);

impl std::fmt::Debug for Plugged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Plugged").field(&self.0.name()).finish()
    }
}

impl PartialEq for Plugged {
    fn eq(&self, other: &Plugged) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Plugged {}

/// What a source is handed at start.
pub struct Context<'a> {
    pub inlet: Inlet,
    pub health: Health,
    pub registry: &'a Registry,
    pub shutdown: Shutdown,
}

/// A source's work until shutdown.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A started source: its task, and the HTTP routes it serves (the HTTP
/// edge mounts them under `/api/v1/ingest/`).
pub struct Started {
    pub task: Task,
    pub routes: Option<Arc<Ingest>>,
}

/// Why a source could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot register the {kind} source's metrics: {error}")]
    Metrics {
        kind: &'static str,
        error: prometheus::Error,
    },
    #[error("cannot start HTTP ingestion: {0}")]
    Ingest(#[from] IngestError),
    #[error("cannot start the {name} source: {why}")]
    Plugged { name: String, why: String },
}

impl SourceSettings {
    /// The name `/-/ready` and the log give this source.
    pub fn name(&self) -> String {
        match self {
            SourceSettings::Mqtt(s) => format!("mqtt {}:{}", s.broker.host, s.broker.port),
            SourceSettings::Ingest(_) => "http ingest".to_string(),
            SourceSettings::File(s) => format!("file {}", s.path.display()),
            SourceSettings::Plugged(s) => s.0.name(),
        }
    }

    /// Registers the source's metrics and returns its task (not yet
    /// running) and routes.
    pub fn start(self, cx: Context<'_>) -> Result<Started, StartError> {
        let metrics_error = |kind| move |error| StartError::Metrics { kind, error };
        match self {
            SourceSettings::Mqtt(settings) => {
                let metrics = mqtt::metrics::MqttMetrics::new(cx.registry, &settings.topics)
                    .map_err(metrics_error("mqtt"))?;
                let task = mqtt::run(*settings, metrics, cx.inlet, cx.health, cx.shutdown);
                Ok(Started {
                    task: Box::pin(task),
                    routes: None,
                })
            }
            SourceSettings::Ingest(settings) => {
                let routes = Arc::new(Ingest::new(&settings, cx.inlet, cx.registry)?);
                // ready once the HTTP edge serves its routes, which it does
                // from the start: the listeners are bound before `run`
                cx.health
                    .set(true, format!("listening on {}<route>", ingest::PREFIX));
                let (health, mut shutdown) = (cx.health, cx.shutdown);
                Ok(Started {
                    task: Box::pin(async move {
                        shutdown.recv().await;
                        health.set(false, "stopped");
                    }),
                    routes: Some(routes),
                })
            }
            SourceSettings::File(settings) => {
                let path = settings.path.display().to_string();
                let metrics =
                    file::FileMetrics::new(cx.registry, &path).map_err(metrics_error("file"))?;
                let task = file::run(settings, metrics, cx.inlet, cx.health, cx.shutdown);
                Ok(Started {
                    task: Box::pin(task),
                    routes: None,
                })
            }
            SourceSettings::Plugged(source) => source.0.start(cx),
        }
    }
}
