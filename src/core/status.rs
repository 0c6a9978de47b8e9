//! What the sources and the feed tell the HTTP edge: one [`Health`] per
//! source (ready or not, in words, and why the last attempt failed), and
//! the last tick's [`Snapshot`] of every list, beside the Prometheus
//! registry they all share. Plain shared state
//! (atomics and locks held only to swap a value), so no edge waits on
//! another.
//!
//! The exporter is ready when it has at least one source and every source
//! is ready: a second source's health never hides the first's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use prometheus::Registry;

use crate::core::snapshot::Snapshot;

/// The shared state: the registry, each source's health, the lists.
pub struct Status {
    registry: Registry,
    sources: Arc<Sources>,
    snapshot: RwLock<Arc<Snapshot>>,
}

/// Every source's health, and who waits for all of them to be ready.
#[derive(Default)]
struct Sources {
    list: RwLock<Vec<Arc<Cell>>>,
    /// Called once, the first time every source is ready.
    on_ready: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

/// One source's state, as `/-/ready` shows it.
struct Cell {
    name: String,
    ready: AtomicBool,
    /// Ready, but with a caveat the operator should read (a partly
    /// refused subscription).
    degraded: AtomicBool,
    /// What the source is doing, in words ("subscribed to 2 topic filters").
    detail: RwLock<String>,
    /// Why the last attempt failed, while it matters.
    last_error: RwLock<Option<String>>,
}

/// A source's handle on its own entry in [`Status`]: it sets its own
/// readiness and words, and nothing of another source's.
#[derive(Clone)]
pub struct Health {
    cell: Arc<Cell>,
    sources: Arc<Sources>,
}

/// One source's state as of now, for `/-/ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceState {
    pub name: String,
    pub ready: bool,
    /// Ready with a caveat, which `detail` says.
    pub degraded: bool,
    pub detail: String,
    pub last_error: Option<String>,
}

impl Health {
    /// Sets whether this source is ready, with what it is doing in words.
    pub fn set(&self, ready: bool, detail: impl Into<String>) {
        self.cell.degraded.store(false, Ordering::Relaxed);
        self.set_words(detail.into());
        self.set_ready(ready);
    }

    /// Ready, with a caveat in words that `/-/ready` shows.
    pub fn set_degraded(&self, detail: impl Into<String>) {
        self.cell.degraded.store(true, Ordering::Relaxed);
        self.set_words(detail.into());
        self.set_ready(true);
    }

    fn set_words(&self, detail: String) {
        if let Ok(mut d) = self.cell.detail.write() {
            *d = detail;
        }
    }

    /// Sets whether this source is ready, keeping its words.
    pub fn set_ready(&self, ready: bool) {
        self.cell.ready.store(ready, Ordering::Relaxed);
        if ready {
            self.sources.changed();
        }
    }

    /// Records why the last attempt failed (`None` once one succeeds):
    /// `/-/ready` says it while the source is not ready.
    pub fn set_last_error(&self, why: Option<String>) {
        if let Ok(mut last) = self.cell.last_error.write() {
            *last = why;
        }
    }

    pub fn is_ready(&self) -> bool {
        self.cell.ready.load(Ordering::Relaxed)
    }
}

impl Sources {
    fn all_ready(&self) -> bool {
        self.list.read().is_ok_and(|list| {
            !list.is_empty() && list.iter().all(|c| c.ready.load(Ordering::Relaxed))
        })
    }

    /// A source turned ready: call the waiters if every source now is.
    fn changed(&self) {
        let waiting = match self.on_ready.lock() {
            Ok(mut waiting) if self.all_ready() => std::mem::take(&mut *waiting),
            _ => Vec::new(),
        };
        waiting.into_iter().for_each(|f| f());
    }
}

impl Status {
    pub fn new(registry: Registry) -> Self {
        Status {
            registry,
            sources: Arc::default(),
            snapshot: RwLock::default(),
        }
    }

    /// A new source's health entry, not ready until the source says so.
    pub fn health(&self, name: impl Into<String>) -> Health {
        let cell = Arc::new(Cell {
            name: name.into(),
            ready: AtomicBool::new(false),
            degraded: AtomicBool::new(false),
            detail: RwLock::new("starting".to_string()),
            last_error: RwLock::new(None),
        });
        if let Ok(mut list) = self.sources.list.write() {
            list.push(Arc::clone(&cell));
        }
        Health {
            cell,
            sources: Arc::clone(&self.sources),
        }
    }

    /// Each source's state, in the order they were started.
    pub fn sources(&self) -> Vec<SourceState> {
        self.sources
            .list
            .read()
            .map(|list| {
                list.iter()
                    .map(|c| SourceState {
                        name: c.name.clone(),
                        ready: c.ready.load(Ordering::Relaxed),
                        degraded: c.degraded.load(Ordering::Relaxed),
                        detail: c.detail.read().map(|d| d.clone()).unwrap_or_default(),
                        last_error: c.last_error.read().ok().and_then(|l| l.clone()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first source's last error, if any has one.
    pub fn last_error(&self) -> Option<String> {
        self.sources().into_iter().find_map(|s| s.last_error)
    }

    /// Calls `f` once every source is ready: at once if they are, else when
    /// the last one turns ready (so a waiter needs no polling).
    pub fn when_ready(&self, f: impl FnOnce() + Send + 'static) {
        let Ok(mut waiting) = self.sources.on_ready.lock() else {
            return;
        };
        if self.sources.all_ready() {
            drop(waiting);
            f();
        } else {
            waiting.push(Box::new(f));
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Ready means: at least one source, and every source ready.
    pub fn is_ready(&self) -> bool {
        self.sources.all_ready()
    }

    /// Publishes the lists of the last tick.
    pub fn set_snapshot(&self, snapshot: Arc<Snapshot>) {
        if let Ok(mut guard) = self.snapshot.write() {
            *guard = snapshot;
        }
    }

    /// The lists as of the last tick.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .map(|guard| Arc::clone(&guard))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn ready_only_when_every_source_is_and_waiters_run_once() {
        let status = Status::new(Registry::new());
        assert!(!status.is_ready(), "no source is not ready");
        let mqtt = status.health("mqtt");
        let file = status.health("file /var/log/mosquitto/mosquitto.log");
        let called = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&called);
        status.when_ready(move || {
            c.fetch_add(1, Ordering::Relaxed);
        });
        mqtt.set(true, "subscribed to 1 topic filter");
        assert!(!status.is_ready());
        assert_eq!(called.load(Ordering::Relaxed), 0);
        file.set_last_error(Some("permission denied".into()));
        file.set(true, "following");
        assert!(status.is_ready());
        mqtt.set_ready(false);
        mqtt.set_ready(true);
        assert_eq!(called.load(Ordering::Relaxed), 1);
        let states = status.sources();
        assert_eq!(states.len(), 2);
        assert_eq!(states[0].detail, "subscribed to 1 topic filter");
        assert_eq!(states[1].last_error.as_deref(), Some("permission denied"));
        assert_eq!(status.last_error().as_deref(), Some("permission denied"));
    }
}
