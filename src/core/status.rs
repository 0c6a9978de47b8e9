//! What the MQTT edge tells the HTTP edge: readiness, the subscription
//! result, and snapshots of the flapping list and the top clients per
//! reason, beside the Prometheus
//! registry both share. Plain shared state (atomics and a lock held only to
//! swap a pointer), so neither edge waits on the other.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use prometheus::Registry;

use crate::core::flapping::FlappingClient;
use crate::core::top::TopReport;

/// What the MQTT task tells the HTTP server.
pub struct Status {
    registry: Registry,
    ready: AtomicBool,
    /// Topic filters granted in the last SUBACK, and how many were asked for.
    granted: AtomicUsize,
    topics: AtomicUsize,
    flapping: RwLock<Arc<Vec<FlappingClient>>>,
    top: RwLock<Arc<TopReport>>,
    /// Called once, the first time the status turns ready.
    on_ready: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    /// Why the last connection attempt failed, for `/-/ready`.
    last_error: RwLock<Option<String>>,
}

impl Status {
    pub fn new(registry: Registry) -> Self {
        Status {
            registry,
            ready: AtomicBool::new(false),
            granted: AtomicUsize::new(0),
            topics: AtomicUsize::new(0),
            flapping: RwLock::new(Arc::new(Vec::new())),
            top: RwLock::new(Arc::default()),
            on_ready: Mutex::new(Vec::new()),
            last_error: RwLock::new(None),
        }
    }

    /// Records why the last connection attempt failed (`None` once one
    /// succeeds): `/-/ready` says it while not ready.
    pub fn set_last_error(&self, why: Option<String>) {
        if let Ok(mut last) = self.last_error.write() {
            *last = why;
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.read().ok().and_then(|l| l.clone())
    }

    /// Calls `f` once the status is ready: at once if it is, else when it
    /// turns ready (so a waiter needs no polling).
    pub fn when_ready(&self, f: impl FnOnce() + Send + 'static) {
        let Ok(mut waiting) = self.on_ready.lock() else {
            return;
        };
        if self.is_ready() {
            drop(waiting);
            f();
        } else {
            waiting.push(Box::new(f));
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Ready means subscribed to at least one topic on a live session.
    pub fn set_ready(&self, ready: bool) {
        let waiting = match self.on_ready.lock() {
            Ok(mut waiting) => {
                self.ready.store(ready, Ordering::Relaxed);
                if ready {
                    std::mem::take(&mut *waiting)
                } else {
                    Vec::new()
                }
            }
            Err(_) => {
                self.ready.store(ready, Ordering::Relaxed);
                Vec::new()
            }
        };
        waiting.into_iter().for_each(|f| f());
    }

    /// Records a SUBACK: `granted` of `topics` filters; ready if any.
    pub fn set_subscriptions(&self, granted: usize, topics: usize) {
        self.granted.store(granted, Ordering::Relaxed);
        self.topics.store(topics, Ordering::Relaxed);
        self.set_ready(granted > 0);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn set_flapping(&self, clients: Vec<FlappingClient>) {
        if let Ok(mut guard) = self.flapping.write() {
            *guard = Arc::new(clients);
        }
    }

    pub fn flapping(&self) -> Arc<Vec<FlappingClient>> {
        self.flapping
            .read()
            .map(|guard| Arc::clone(&guard))
            .unwrap_or_default()
    }

    pub fn set_top(&self, top: Arc<TopReport>) {
        if let Ok(mut guard) = self.top.write() {
            *guard = top;
        }
    }

    /// The top clients per reason as of the last tick.
    pub fn top(&self) -> Arc<TopReport> {
        self.top
            .read()
            .map(|guard| Arc::clone(&guard))
            .unwrap_or_default()
    }

    /// Topic filters granted in the last SUBACK, and how many were asked for.
    pub fn subscriptions(&self) -> (usize, usize) {
        (
            self.granted.load(Ordering::Relaxed),
            self.topics.load(Ordering::Relaxed),
        )
    }
}
