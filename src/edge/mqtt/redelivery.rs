//! QoS 1 redelivery after a cut, counted once. The exporter counts a
//! publish and then acknowledges it; a connection cut between the two (the
//! PUBACK still in the write buffer) makes the broker resend it on the
//! resumed session, with the DUP flag and the same packet identifier
//! (MQTT 3.1.1 §4.4, MQTT 5 §4.4). This remembers the identifiers of the
//! last [`RECENT`] QoS 1 publishes of a connection; on the next connection
//! of the same session, a publish with DUP set and one of them is one the
//! exporter already counted, and is acknowledged but not counted again.
//! The broker resends the unacknowledged ones before any new one, so the
//! first publish without DUP ends the check.
//!
//! Logic only: no I/O, no clock. Bounded: two rings of [`RECENT`] packet
//! identifiers.

use std::collections::VecDeque;

/// Packet identifiers remembered per connection: more than any broker's
/// default in-flight window (Mosquitto 20, EMQX 32, rumqttd 100).
pub const RECENT: usize = 1024;

/// The packet identifiers handled on this connection and on the last one.
#[derive(Debug, Default)]
pub struct Redelivery {
    handled: VecDeque<u16>,
    /// The last connection's, while its resends may still come.
    before: Vec<u16>,
}

impl Redelivery {
    /// A new connection; `session_present` when the broker resumed the
    /// session (else nothing of the last connection is resent).
    pub fn connected(&mut self, session_present: bool) {
        self.before.clear();
        if session_present {
            self.before.extend(self.handled.drain(..));
        }
        self.handled.clear();
    }

    /// A publish with packet identifier `pkid` (0 for QoS 0) and its DUP
    /// flag: true if it is to be counted, false for a resend of one already
    /// counted.
    pub fn count(&mut self, pkid: u16, dup: bool) -> bool {
        if pkid == 0 {
            return true;
        }
        if !self.before.is_empty() {
            if !dup {
                self.before.clear();
            } else if let Some(at) = self.before.iter().position(|&p| p == pkid) {
                self.before.swap_remove(at);
                self.remember(pkid);
                return false;
            }
        }
        self.remember(pkid);
        true
    }

    fn remember(&mut self, pkid: u16) {
        if self.handled.len() == RECENT {
            self.handled.pop_front();
        }
        self.handled.push_back(pkid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resend_after_a_cut_is_counted_once() {
        let mut r = Redelivery::default();
        r.connected(false);
        let first: Vec<bool> = (1..=7).map(|p| r.count(p, false)).collect();
        assert_eq!(first, [true; 7]);
        // cut before the PUBACKs of 5..7 left: the broker resends them
        r.connected(true);
        assert_eq!(
            [r.count(5, true), r.count(6, true), r.count(7, true)],
            [false; 3]
        );
        // a resend of one never counted (it was not handled) is counted
        assert!(r.count(9, true));
        // new publishes: counted, and the check is over
        assert!(r.count(1, false));
        assert!(
            r.count(2, true),
            "DUP after the resends: a new message's retry"
        );
    }

    #[test]
    fn a_new_session_or_qos_0_is_always_counted() {
        let mut r = Redelivery::default();
        r.connected(false);
        assert!(r.count(3, false));
        // the broker did not resume the session: nothing is resent
        r.connected(false);
        assert!(r.count(3, true));
        assert!((0..10).all(|_| r.count(0, true)));
    }

    #[test]
    fn only_the_recent_identifiers_are_remembered() {
        let mut r = Redelivery::default();
        r.connected(false);
        for i in 0..(RECENT as u16 + 10) {
            assert!(r.count(i % 60_000 + 1, false));
        }
        r.connected(true);
        // the first ten were forgotten: a resend of one counts
        assert!(r.count(1, true));
        assert!(!r.count(RECENT as u16 + 10, true));
    }
}
