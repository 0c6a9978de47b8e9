//! The simulator's clock: the fleet advanced every 50 ms with as many
//! steady disconnects as `--rate` owes by then, until `--duration` passes
//! or shutdown fires. `simulate` (to a broker) and `simulate --ingest`
//! (over HTTP) share it.

use std::time::Duration;

use crate::core::clock::now_ms;
use crate::edge::shutdown::Shutdown;
use crate::tools::sim::fleet::{Fleet, Scenario, SimEvent};

/// What the fleet does, whatever it is sent to: a broker (`simulate`), an
/// HTTP route (`simulate --ingest`) or the demo's embedded broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub scenario: Scenario,
    /// Steady disconnects per second (each with a reconnect).
    pub rate: u32,
    pub clients: usize,
    /// Stop after this long; `None` runs until shutdown.
    pub duration: Option<Duration>,
    pub seed: u64,
}

/// Step between two fleet ticks.
const STEP: Duration = Duration::from_millis(50);

/// A fleet on a ticker.
pub struct Paced {
    fleet: Fleet,
    rate: u32,
    duration: Option<Duration>,
    owed: f64,
    start: tokio::time::Instant,
    ticker: tokio::time::Interval,
}

impl Paced {
    pub fn new(cfg: &Plan) -> Paced {
        Paced {
            fleet: Fleet::new(cfg.scenario, cfg.clients, cfg.seed, now_ms()),
            rate: cfg.rate,
            duration: cfg.duration,
            owed: 0.0,
            start: tokio::time::Instant::now(),
            ticker: tokio::time::interval(STEP),
        }
    }

    /// Waits for the next step and fills `events` with its events; false
    /// once the duration has passed or `shutdown` fired.
    pub async fn next(&mut self, shutdown: &mut Shutdown, events: &mut Vec<SimEvent>) -> bool {
        tokio::select! {
            _ = shutdown.recv() => return false,
            _ = self.ticker.tick() => {}
        }
        if self.duration.is_some_and(|d| self.start.elapsed() >= d) {
            return false;
        }
        self.owed += f64::from(self.rate) * STEP.as_secs_f64();
        let steady = self.owed as usize;
        self.owed -= steady as f64;
        events.clear();
        self.fleet.tick(now_ms(), steady, events);
        true
    }
}
