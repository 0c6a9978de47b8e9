//! How long each connection lived before it ended: the answer that tells a
//! load balancer's or NAT's idle timeout (every connection cut at 350 s on
//! AWS, 4 min on Azure, 10 min on Google Cloud) from a client bug
//! (connections that end within seconds) or a token lifetime (3,600 s).
//!
//! A disconnect event that carries the connection's start (EMQX 5.8.6 and
//! later, TDMQ, EMQX's `$SYS` messages: `connected_at`) says it itself.
//! For the other sources (Mosquitto's log, AWS IoT, NanoMQ, older EMQX) the
//! client's connect event is remembered, in a table of at most `cap`
//! clients, and joined with its disconnect. A connect that finds the table
//! full is not remembered (and counted), so memory stays bounded whatever
//! the fleet; a connection whose start is unknown is not observed.
//!
//! Times are event times in milliseconds, passed in as data.

use std::collections::HashMap;
use std::hash::BuildHasher;

/// The bucket bounds of `mqtt_client_connection_duration_seconds`: the
/// cloud idle timeouts (240, 300, 360, 600 s) and the usual token
/// lifetimes (3,600 s and multiples) fall on a bound.
pub const BUCKETS: [f64; 17] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 240.0, 300.0, 360.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
    14400.0, 28800.0, 86400.0,
];

/// When each connected client's connection began.
pub struct Lifetimes {
    started: HashMap<u64, i64, foldhash::fast::FixedState>,
    hasher: foldhash::fast::FixedState,
    cap: usize,
    /// Connects not remembered because the table was full.
    untracked: u64,
}

impl Lifetimes {
    /// Remembers at most `cap` connections at once.
    pub fn new(cap: usize) -> Lifetimes {
        Lifetimes {
            started: HashMap::default(),
            hasher: foldhash::fast::FixedState::default(),
            cap,
            untracked: 0,
        }
    }

    /// `clientid` connected at `t`; a newer connect replaces an older one.
    pub fn connected(&mut self, clientid: &str, t: i64) {
        let key = self.hasher.hash_one(clientid);
        let len = self.started.len();
        match self.started.get_mut(&key) {
            Some(start) => *start = t,
            None if len < self.cap => {
                self.started.insert(key, t);
            }
            None => self.untracked += 1,
        }
    }

    /// `clientid` disconnected at `t`: how long its connection lived, in
    /// seconds, from `connected_at` when the event says it, else from its
    /// remembered connect; `None` when neither is known or the start is
    /// after the end (a wrong clock).
    pub fn disconnected(
        &mut self,
        clientid: &str,
        t: i64,
        connected_at: Option<i64>,
    ) -> Option<f64> {
        let key = self.hasher.hash_one(clientid);
        let remembered = self.started.remove(&key);
        let start = connected_at.or(remembered)?;
        (t >= start).then(|| (t - start) as f64 / 1000.0)
    }

    /// Connections remembered now.
    pub fn len(&self) -> usize {
        self.started.len()
    }

    pub fn is_empty(&self) -> bool {
        self.started.is_empty()
    }

    /// Connects not remembered since start, because the table was full.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_a_connect_with_its_disconnect_or_reads_the_event() {
        let mut l = Lifetimes::new(2);
        l.connected("a", 1_000);
        l.connected("b", 2_000);
        // full: c's start is not remembered
        l.connected("c", 3_000);
        assert_eq!(l.untracked(), 1);
        // a reconnect replaces the start
        l.connected("a", 5_000);
        assert_eq!(l.disconnected("a", 355_000, None), Some(350.0));
        assert_eq!(
            l.disconnected("a", 360_000, None),
            None,
            "forgotten once ended"
        );
        assert_eq!(l.disconnected("c", 9_000, None), None);
        // the event's own connected_at wins over the table
        assert_eq!(l.disconnected("b", 3_602_000, Some(2_000)), Some(3_600.0));
        assert_eq!(l.disconnected("x", 10_000, Some(9_500)), Some(0.5));
        // a start after the end is a wrong clock: not a lifetime
        assert_eq!(l.disconnected("y", 10_000, Some(20_000)), None);
        assert!(l.is_empty());
        l.connected("c", 3_000);
        assert_eq!(l.len(), 1);
    }
}
