//! Re-reading the web config: whenever the file or a file it names has
//! changed and then stayed unchanged for [`STABLE_FOR`], or at once on
//! SIGHUP, keeping the last good one when the new one is bad or would turn
//! TLS or authentication off.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::{load, WebConfigError, WebSettings};

/// When each file last changed, as far as `stat` tells.
fn stamps(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

/// How long the files must stay unchanged before a change is read: a file
/// truncated and rewritten in place is read once it is whole.
pub const STABLE_FOR: Duration = Duration::from_secs(1);

/// How reloads went: `mqtt_exporter_web_config_reloads_total{result}`.
#[derive(Clone)]
pub struct ReloadCounters {
    /// Read and in force.
    pub success: prometheus::IntCounter,
    /// Not a valid config (unreadable, empty, bad YAML, bad certificate...).
    pub invalid: prometheus::IntCounter,
    /// Valid, but it would turn TLS or authentication off.
    pub refused: prometheus::IntCounter,
}

impl ReloadCounters {
    /// The three series of `family` (a counter vector labelled `result`).
    pub fn of(family: &prometheus::IntCounterVec) -> ReloadCounters {
        ReloadCounters {
            success: family.with_label_values(&["success"]),
            invalid: family.with_label_values(&["invalid"]),
            refused: family.with_label_values(&["refused"]),
        }
    }
}

/// When each file last changed and its length, as far as `stat` tells.
type Stamps = Vec<Option<(SystemTime, u64)>>;

struct Current {
    settings: Arc<WebSettings>,
    stamps: Stamps,
    /// The stamps of a bad version already logged, so it is logged once.
    rejected: Option<Stamps>,
    /// Stamps seen changed, and since when they have stayed so.
    changing: Option<(Stamps, Instant)>,
}

/// The web config file, re-read whenever it or a file it names changes.
pub struct Source {
    path: PathBuf,
    /// What the exporter started with: a reload may not drop them.
    started_with_tls: bool,
    started_with_auth: bool,
    counters: ReloadCounters,
    current: Mutex<Current>,
}

impl Source {
    /// Loads `path` (refused at start if it is bad).
    pub fn new(path: PathBuf, counters: ReloadCounters) -> Result<Source, WebConfigError> {
        let settings = load(&path)?;
        let stamps = stamps(&settings.files);
        Ok(Source {
            path,
            started_with_tls: settings.tls.is_some(),
            started_with_auth: !settings.users.is_empty(),
            counters,
            current: Mutex::new(Current {
                settings: Arc::new(settings),
                stamps,
                rejected: None,
                changing: None,
            }),
        })
    }

    /// The settings for a new connection: re-read first if any file changed
    /// and has stayed unchanged for [`STABLE_FOR`].
    pub fn settings(&self) -> Arc<WebSettings> {
        let Ok(mut current) = self.current.lock() else {
            // a poisoned lock cannot happen (nothing panics under it); if it
            // did, serving nothing is the safe answer
            return Arc::new(WebSettings::closed());
        };
        let now = stamps(&current.settings.files);
        if now == current.stamps || current.rejected.as_ref() == Some(&now) {
            current.changing = None;
            return Arc::clone(&current.settings);
        }
        match &current.changing {
            Some((seen, since)) if *seen == now && since.elapsed() >= STABLE_FOR => {}
            Some((seen, _)) if *seen == now => return Arc::clone(&current.settings),
            _ => {
                current.changing = Some((now, Instant::now()));
                return Arc::clone(&current.settings);
            }
        }
        current.changing = None;
        self.reload(&mut current, now, "changed");
        Arc::clone(&current.settings)
    }

    /// The settings in force, without looking at the files: for each
    /// request, since the watcher looks at them every second.
    pub fn current(&self) -> Arc<WebSettings> {
        match self.current.lock() {
            Ok(current) => Arc::clone(&current.settings),
            Err(_) => Arc::new(WebSettings::closed()),
        }
    }

    /// Re-reads the file now (SIGHUP), whatever its stamps say; logs what
    /// was read and whether it is in force.
    pub fn reload_now(&self) {
        if let Ok(mut current) = self.current.lock() {
            let now = stamps(&current.settings.files);
            current.changing = None;
            current.rejected = None;
            self.reload(&mut current, now, "SIGHUP");
        }
    }

    fn reload(&self, current: &mut Current, now: Stamps, why: &str) {
        let file = self.path.display();
        match load(&self.path) {
            Ok(settings) if self.started_with_tls && settings.tls.is_none() => {
                tracing::error!(%file, trigger = why, "web config refused: it would turn TLS off, which needs a restart; the last good one stays in force");
                self.counters.refused.inc();
                current.rejected = Some(now);
            }
            Ok(settings) if self.started_with_auth && settings.users.is_empty() => {
                tracing::error!(%file, trigger = why, "web config refused: it would turn authentication off (no basic_auth_users), which needs a restart; the last good one stays in force");
                self.counters.refused.inc();
                current.rejected = Some(now);
            }
            Ok(settings)
                if current
                    .settings
                    .strength
                    .lowered_by(&settings.strength)
                    .is_some() =>
            {
                let what = current
                    .settings
                    .strength
                    .lowered_by(&settings.strength)
                    .unwrap_or_default();
                tracing::error!(%file, trigger = why, "web config refused: {what}, which needs a restart; the last good one stays in force");
                self.counters.refused.inc();
                current.rejected = Some(now);
            }
            Ok(settings) => {
                tracing::info!(%file, trigger = why, tls = settings.tls.is_some(), users = settings.users.len(), "web config reloaded");
                self.counters.success.inc();
                current.stamps = stamps(&settings.files);
                current.settings = Arc::new(settings);
                current.rejected = None;
            }
            Err(e) => {
                tracing::error!(%file, trigger = why, error = %e, "web config is invalid; the last good one stays in force");
                self.counters.invalid.inc();
                current.rejected = Some(now);
            }
        }
    }
}

impl WebSettings {
    /// Settings that admit nobody: every request is refused.
    fn closed() -> WebSettings {
        WebSettings {
            users: BTreeMap::from([(String::new(), String::new())]),
            ..WebSettings::default()
        }
    }
}
