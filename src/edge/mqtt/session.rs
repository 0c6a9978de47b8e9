//! The MQTT session as logic with no I/O and no clock, as quinn-proto keeps
//! its connection: the driver ([`super::run`]) turns what rumqttc reports
//! into an [`Input`], passes it with the time, and carries out the
//! [`Action`]s it gets back. Publishes do not pass through here: the driver
//! hands them to the pipeline directly, as nothing about the session depends
//! on them.
//!
//! What the session decides:
//! - subscribe on every CONNACK (a reconnect that does not resubscribe
//!   leaves a "zombie" exporter serving stale numbers while `broker_up`
//!   says 1);
//! - ready once a SUBACK grants at least one filter, not ready when the
//!   connection is lost;
//! - the backoff, which grows across connections dropped soon after
//!   CONNACK and is reset only after a minute up ([`Reconnects`]);
//! - takeovers of the exporter's own client ID, said once at error;
//! - with `--mqtt.protocol auto`, falling back to MQTT 3.1.1 when the
//!   broker refuses MQTT 5 ([`Protocol`]).

use std::time::Duration;

/// First reconnect delay; doubles per failure up to [`BACKOFF_MAX`].
pub const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection that stays up this long ends a streak of drops and resets
/// the backoff. It is longer than [`BACKOFF_MAX`]: two replicas sharing one
/// client ID each stay connected until the other's next attempt.
pub const STABLE_AFTER_MS: i64 = 60_000;
/// Drops in a row, each right after a reconnect that succeeded at once,
/// after which another client holding our client ID is the likely cause.
const SUSPECT_AFTER_DROPS: u32 = 3;

/// The MQTT version a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V5,
    V311,
}

impl Protocol {
    /// As `--mqtt.protocol` and the `version` label spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::V5 => "5",
            Protocol::V311 => "3.1.1",
        }
    }

    pub const ALL: [Protocol; 2] = [Protocol::V5, Protocol::V311];
}

/// `--mqtt.protocol`: one version, or `auto` (MQTT 5, falling back to
/// 3.1.1 when the broker refuses 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolChoice {
    V5,
    V311,
    #[default]
    Auto,
}

impl std::str::FromStr for ProtocolChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "5" | "5.0" => Ok(ProtocolChoice::V5),
            "3.1.1" | "4" => Ok(ProtocolChoice::V311),
            "auto" => Ok(ProtocolChoice::Auto),
            _ => Err(format!("{s:?} is not 5, 3.1.1 or auto")),
        }
    }
}

impl std::fmt::Display for ProtocolChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProtocolChoice::V5 => "5",
            ProtocolChoice::V311 => "3.1.1",
            ProtocolChoice::Auto => "auto",
        })
    }
}

/// What a failed connection or attempt was, as far as the session cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The broker said another client took the session over (0x8E).
    TakenOver,
    /// The broker answered CONNECT with "unsupported protocol version" (in
    /// either version's CONNACK).
    ProtocolRefused,
    /// The broker closed the connection after CONNECT without a CONNACK:
    /// what a broker that does not know the version may do (rumqttd does).
    ClosedBeforeConnAck,
    /// The broker refused the credentials.
    CredentialsRefused,
    /// Anything else: unreachable, TLS, lost.
    Other,
}

/// One thing that happened to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// A CONNACK that accepted the connection.
    Connected { session_present: bool },
    /// A SUBACK: whether each subscribed filter was granted, in order (a
    /// missing code is a refusal).
    SubAck { granted: &'a [bool] },
    /// The connection or an attempt failed; `error` is rumqttc's text.
    Failed { kind: FailureKind, error: &'a str },
    /// A second passed.
    Tick,
}

/// How loud a [`Action::Log`] line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

/// What the driver does in answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send SUBSCRIBE for every filter.
    Subscribe,
    /// `mqtt_exporter_broker_up`.
    Up(bool),
    /// `mqtt_exporter_broker_reconnects_total` + 1.
    CountReconnect,
    /// `mqtt_exporter_session_takeovers_total` + 1.
    CountTakeover,
    /// `mqtt_exporter_subscription_granted{topic}` for filter `index`.
    Granted { index: usize, granted: bool },
    /// `/-/ready`: `granted` of `topics` filters (ready if any).
    Subscriptions { granted: usize, topics: usize },
    /// `/-/ready` is 503.
    NotReady,
    /// What `/-/ready` says while not ready (`None` once connected).
    LastError(Option<String>),
    /// The version the next connection speaks changed:
    /// `mqtt_exporter_broker_protocol`, and a new client.
    Speak(Protocol),
    /// A log line.
    Log { level: Level, message: String },
    /// Wait before the next attempt: a delay in `[ceiling/2, ceiling]`,
    /// re-reading the secrets after it. `error` is what failed;
    /// `credentials` when the broker refused them (said at error).
    Retry {
        ceiling: Duration,
        attempt: u32,
        error: String,
        credentials: bool,
    },
}

/// What a lost connection says about the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// Not a takeover, as far as we can tell.
    No,
    /// The broker said so: DISCONNECT with reason 0x8E.
    Certain,
    /// Dropped again and again though each reconnect succeeded at once: the
    /// pattern of two clients sharing one ID on a broker that closes the old
    /// connection without saying why (Mosquitto 2.0 does).
    Suspected,
}

/// Reconnect bookkeeping, with time as data: the backoff keeps growing
/// across connections that are dropped soon after CONNACK, and is reset only
/// once a connection has stayed up for a minute.
#[derive(Debug, Default)]
pub struct Reconnects {
    failures: u32,
    /// Connections lost in a row, each after a first-try reconnect.
    drops: u32,
    connected_at: Option<i64>,
    /// The connection was made on the first attempt after a drop.
    first_try: bool,
}

impl Reconnects {
    /// A CONNACK arrived at `now_ms`.
    pub fn connected(&mut self, now_ms: i64) {
        self.connected_at = Some(now_ms);
    }

    /// Called while connected: a long enough connection ends the streak.
    pub fn still_connected(&mut self, now_ms: i64) {
        if self
            .connected_at
            .is_some_and(|at| now_ms.saturating_sub(at) >= STABLE_AFTER_MS)
        {
            self.failures = 0;
            self.drops = 0;
        }
    }

    /// The connection or an attempt failed at `now_ms`; `said_taken_over`
    /// when the broker sent DISCONNECT 0x8E. Returns the attempt number for
    /// [`backoff_ceiling`] and what the failure says about a takeover.
    pub fn failed(&mut self, now_ms: i64, said_taken_over: bool) -> (u32, Takeover) {
        self.still_connected(now_ms);
        let was_connected = self.connected_at.take().is_some();
        self.failures = self.failures.saturating_add(1);
        let verdict = if !was_connected {
            // the broker is down or refusing us: not the takeover pattern
            self.drops = 0;
            self.first_try = false;
            Takeover::No
        } else {
            self.drops = if self.first_try || self.drops == 0 {
                self.drops.saturating_add(1)
            } else {
                1
            };
            if said_taken_over {
                Takeover::Certain
            } else if self.drops >= SUSPECT_AFTER_DROPS {
                Takeover::Suspected
            } else {
                Takeover::No
            }
        };
        // the next connection is a first try only if it follows a drop
        self.first_try = was_connected;
        (self.failures, verdict)
    }
}

/// The longest delay before reconnect attempt `failures` (1-based):
/// exponential and capped; the driver waits a random time in
/// `[ceiling/2, ceiling]` so replicas do not reconnect in lockstep.
pub fn backoff_ceiling(failures: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    exp.min(BACKOFF_MAX)
}

/// The session: what is known about the connection, and what to do next.
#[derive(Debug)]
pub struct Session {
    client_id: String,
    topics: usize,
    choice: ProtocolChoice,
    protocol: Protocol,
    /// A connection with `protocol` was accepted at least once.
    protocol_proven: bool,
    connected: bool,
    ever_connected: bool,
    takeover_said: bool,
    reconnects: Reconnects,
}

impl Session {
    /// A session for `client_id` subscribing to `topics` filters.
    pub fn new(client_id: &str, topics: usize, choice: ProtocolChoice) -> Session {
        Session {
            client_id: client_id.to_string(),
            topics,
            choice,
            protocol: match choice {
                ProtocolChoice::V311 => Protocol::V311,
                ProtocolChoice::V5 | ProtocolChoice::Auto => Protocol::V5,
            },
            protocol_proven: false,
            connected: false,
            ever_connected: false,
            takeover_said: false,
            reconnects: Reconnects::default(),
        }
    }

    /// The version the next (or current) connection speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// What to do before the first attempt: every filter not granted yet,
    /// and the version spoken.
    pub fn start(&self) -> Vec<Action> {
        let mut actions: Vec<Action> = (0..self.topics)
            .map(|index| Action::Granted {
                index,
                granted: false,
            })
            .collect();
        actions.push(Action::Speak(self.protocol));
        actions
    }

    /// Feeds one input at `now_ms`; returns what to do, in order.
    pub fn handle(&mut self, input: Input<'_>, now_ms: i64) -> Vec<Action> {
        match input {
            Input::Connected { session_present } => self.connected(session_present, now_ms),
            Input::SubAck { granted } => self.suback(granted),
            Input::Failed { kind, error } => self.failed(kind, error, now_ms),
            Input::Tick => {
                if self.connected {
                    self.reconnects.still_connected(now_ms);
                }
                Vec::new()
            }
        }
    }

    fn connected(&mut self, session_present: bool, now_ms: i64) -> Vec<Action> {
        self.connected = true;
        self.reconnects.connected(now_ms);
        let mut actions = vec![Action::LastError(None), Action::Up(true)];
        if self.ever_connected {
            actions.push(Action::CountReconnect);
        }
        self.ever_connected = true;
        if !self.protocol_proven && self.protocol == Protocol::V311 {
            let why = match self.choice {
                ProtocolChoice::Auto => "the broker refused MQTT 5; ",
                _ => "",
            };
            actions.push(log(
                Level::Warn,
                format!("{why}speaking MQTT 3.1.1: a persistent session has no expiry there, so the broker keeps the exporter's session and its queue until it is removed (see the README)"),
            ));
        }
        self.protocol_proven = true;
        actions.push(log(
            Level::Info,
            format!(
                "connected to the broker (MQTT {}, session present: {session_present}); subscribing",
                self.protocol.as_str()
            ),
        ));
        actions.push(Action::Subscribe);
        actions
    }

    fn suback(&mut self, granted: &[bool]) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut count = 0;
        for index in 0..self.topics {
            let ok = granted.get(index).copied().unwrap_or(false);
            count += usize::from(ok);
            actions.push(Action::Granted { index, granted: ok });
        }
        actions.push(Action::Subscriptions {
            granted: count,
            topics: self.topics,
        });
        if count > 0 {
            actions.push(log(
                Level::Info,
                format!("subscribed to {count} of {} topic filters", self.topics),
            ));
        }
        actions
    }

    fn failed(&mut self, kind: FailureKind, error: &str, now_ms: i64) -> Vec<Action> {
        let was_connected = std::mem::replace(&mut self.connected, false);
        let (attempt, takeover) = self
            .reconnects
            .failed(now_ms, kind == FailureKind::TakenOver);
        let mut actions = Vec::new();
        match takeover {
            Takeover::No => {
                self.takeover_said = false;
                if was_connected {
                    actions.push(log(
                        Level::Warn,
                        format!("lost the broker connection: {error}"),
                    ));
                }
            }
            Takeover::Certain | Takeover::Suspected => {
                // the trap of exporters sharing one client ID: they take
                // each other over, and count their own takeovers
                actions.push(Action::CountTakeover);
                let how = if takeover == Takeover::Certain {
                    "the broker says another client connected with this exporter's client ID and took its session over"
                } else {
                    "the broker keeps dropping this session right after accepting it: most likely another client (a second replica?) uses the same client ID"
                };
                let level = if std::mem::replace(&mut self.takeover_said, true) {
                    Level::Debug
                } else {
                    Level::Error
                };
                actions.push(log(
                    level,
                    format!(
                        "{how}; give every replica its own --mqtt.client-id (client ID {:?}: {error})",
                        self.client_id
                    ),
                ));
            }
        }
        actions.push(Action::Up(false));
        actions.push(Action::NotReady);
        actions.push(Action::LastError(Some(error.to_string())));
        if let Some(next) = self.fallback(kind, was_connected) {
            actions.push(log(
                Level::Info,
                format!(
                    "the broker did not accept MQTT {} ({error}); trying MQTT {} (--mqtt.protocol auto)",
                    self.protocol.as_str(),
                    next.as_str()
                ),
            ));
            self.protocol = next;
            actions.push(Action::Speak(next));
        }
        actions.push(Action::Retry {
            ceiling: backoff_ceiling(attempt),
            attempt,
            error: error.to_string(),
            credentials: kind == FailureKind::CredentialsRefused,
        });
        actions
    }

    /// With `auto`, the version to try next after a failure that may mean
    /// the broker does not speak this one: an explicit refusal, or a close
    /// before any CONNACK from a broker never reached with this version.
    /// Once a version is proven it stays.
    fn fallback(&self, kind: FailureKind, was_connected: bool) -> Option<Protocol> {
        if self.choice != ProtocolChoice::Auto || was_connected || self.protocol_proven {
            return None;
        }
        let maybe_version = matches!(
            kind,
            FailureKind::ProtocolRefused | FailureKind::ClosedBeforeConnAck
        );
        maybe_version.then_some(match self.protocol {
            Protocol::V5 => Protocol::V311,
            Protocol::V311 => Protocol::V5,
        })
    }
}

fn log(level: Level, message: String) -> Action {
    Action::Log { level, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(kind: FailureKind) -> Input<'static> {
        Input::Failed {
            kind,
            error: "boom",
        }
    }

    fn has(actions: &[Action], wanted: &Action) -> bool {
        actions.contains(wanted)
    }

    fn logs(actions: &[Action], level: Level) -> Vec<&str> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Log { level: l, message } if *l == level => Some(message.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_connack_subscribes_and_a_reconnect_is_counted() {
        let mut s = Session::new("exp", 2, ProtocolChoice::Auto);
        let first = s.handle(
            Input::Connected {
                session_present: false,
            },
            0,
        );
        assert!(has(&first, &Action::Subscribe));
        assert!(has(&first, &Action::Up(true)));
        assert!(!has(&first, &Action::CountReconnect));
        let lost = s.handle(failed(FailureKind::Other), 10_000);
        assert!(has(&lost, &Action::NotReady) && has(&lost, &Action::Up(false)));
        assert_eq!(
            logs(&lost, Level::Warn),
            ["lost the broker connection: boom"]
        );
        let again = s.handle(
            Input::Connected {
                session_present: true,
            },
            11_000,
        );
        assert!(has(&again, &Action::Subscribe));
        assert!(has(&again, &Action::CountReconnect));
        assert!(has(&again, &Action::LastError(None)));
    }

    #[test]
    fn a_partial_suback_is_ready_and_names_each_filter() {
        let mut s = Session::new("exp", 3, ProtocolChoice::V5);
        s.handle(
            Input::Connected {
                session_present: false,
            },
            0,
        );
        // two codes for three filters: the missing one is a refusal
        let actions = s.handle(
            Input::SubAck {
                granted: &[true, false],
            },
            1,
        );
        assert_eq!(
            actions[..4],
            [
                Action::Granted {
                    index: 0,
                    granted: true
                },
                Action::Granted {
                    index: 1,
                    granted: false
                },
                Action::Granted {
                    index: 2,
                    granted: false
                },
                Action::Subscriptions {
                    granted: 1,
                    topics: 3
                },
            ]
        );
        let none = s.handle(Input::SubAck { granted: &[] }, 2);
        assert!(has(
            &none,
            &Action::Subscriptions {
                granted: 0,
                topics: 3
            }
        ));
    }

    #[test]
    fn a_takeover_is_said_once_at_error_and_counted_each_time() {
        let mut s = Session::new("exp", 1, ProtocolChoice::V5);
        let mut t = 0;
        let mut errors = 0;
        let mut counted = 0;
        for _ in 0..4 {
            s.handle(
                Input::Connected {
                    session_present: true,
                },
                t,
            );
            t += 1_000;
            let a = s.handle(failed(FailureKind::TakenOver), t);
            errors += logs(&a, Level::Error).len();
            counted += a.iter().filter(|a| **a == Action::CountTakeover).count();
            t += 500;
        }
        assert_eq!((errors, counted), (1, 4));
    }

    #[test]
    fn drops_right_after_first_try_reconnects_are_a_suspected_takeover() {
        let mut s = Session::new("exp", 1, ProtocolChoice::V5);
        let mut t = 0;
        let mut counted = Vec::new();
        for _ in 0..5 {
            s.handle(
                Input::Connected {
                    session_present: true,
                },
                t,
            );
            t += 2_000;
            let a = s.handle(failed(FailureKind::Other), t);
            counted.push(has(&a, &Action::CountTakeover));
            t += 500;
        }
        assert_eq!(counted, [false, false, true, true, true]);
    }

    #[test]
    fn the_backoff_grows_across_quick_drops_and_resets_after_a_minute_up() {
        let mut s = Session::new("exp", 1, ProtocolChoice::V5);
        let retry = |a: &[Action]| {
            a.iter().find_map(|a| match a {
                Action::Retry {
                    ceiling, attempt, ..
                } => Some((*attempt, *ceiling)),
                _ => None,
            })
        };
        let mut t = 0;
        let mut seen = Vec::new();
        for _ in 0..4 {
            s.handle(
                Input::Connected {
                    session_present: true,
                },
                t,
            );
            t += 5_000;
            seen.push(retry(&s.handle(failed(FailureKind::Other), t)));
        }
        assert_eq!(
            seen,
            [
                Some((1, Duration::from_millis(250))),
                Some((2, Duration::from_millis(500))),
                Some((3, Duration::from_millis(1000))),
                Some((4, Duration::from_millis(2000))),
            ]
        );
        // up for a minute (told by ticks): the next loss starts over
        s.handle(
            Input::Connected {
                session_present: true,
            },
            t,
        );
        s.handle(Input::Tick, t + STABLE_AFTER_MS);
        let a = s.handle(failed(FailureKind::Other), t + STABLE_AFTER_MS + 1);
        assert_eq!(retry(&a), Some((1, Duration::from_millis(250))));
        assert_eq!(backoff_ceiling(40), BACKOFF_MAX);
    }

    #[test]
    fn auto_falls_back_to_3_1_1_and_keeps_it_once_proven() {
        let mut s = Session::new("exp", 1, ProtocolChoice::Auto);
        assert_eq!(s.start().last(), Some(&Action::Speak(Protocol::V5)));
        // a broker that is down is not a version refusal
        let down = s.handle(failed(FailureKind::Other), 0);
        assert!(!down.iter().any(|a| matches!(a, Action::Speak(_))));
        let refused = s.handle(failed(FailureKind::ProtocolRefused), 1_000);
        assert!(has(&refused, &Action::Speak(Protocol::V311)));
        assert_eq!(s.protocol(), Protocol::V311);
        let up = s.handle(
            Input::Connected {
                session_present: false,
            },
            2_000,
        );
        assert_eq!(logs(&up, Level::Warn).len(), 1, "{up:?}");
        assert!(logs(&up, Level::Warn)[0].contains("no expiry"));
        // proven: a later close before CONNACK does not switch back
        s.handle(failed(FailureKind::Other), 3_000);
        let closed = s.handle(failed(FailureKind::ClosedBeforeConnAck), 4_000);
        assert!(!closed.iter().any(|a| matches!(a, Action::Speak(_))));
        assert_eq!(s.protocol(), Protocol::V311);
    }

    #[test]
    fn auto_alternates_while_no_version_is_proven_and_fixed_choices_never_switch() {
        let mut s = Session::new("exp", 1, ProtocolChoice::Auto);
        s.handle(failed(FailureKind::ClosedBeforeConnAck), 0);
        assert_eq!(s.protocol(), Protocol::V311);
        s.handle(failed(FailureKind::ClosedBeforeConnAck), 1);
        assert_eq!(s.protocol(), Protocol::V5);
        // MQTT 5 proven: a close after it never switches
        s.handle(
            Input::Connected {
                session_present: false,
            },
            2,
        );
        s.handle(failed(FailureKind::ClosedBeforeConnAck), 3);
        s.handle(failed(FailureKind::ProtocolRefused), 4);
        assert_eq!(s.protocol(), Protocol::V5);
        for choice in [ProtocolChoice::V5, ProtocolChoice::V311] {
            let mut s = Session::new("exp", 1, choice);
            let before = s.protocol();
            s.handle(failed(FailureKind::ProtocolRefused), 0);
            assert_eq!(s.protocol(), before, "{choice}");
        }
        assert_eq!("3.1.1".parse(), Ok(ProtocolChoice::V311));
        assert_eq!("auto".parse(), Ok(ProtocolChoice::Auto));
        assert!("3".parse::<ProtocolChoice>().is_err());
    }

    #[test]
    fn a_refused_password_is_an_error_and_a_refusal_is_not_a_takeover() {
        let mut s = Session::new("exp", 1, ProtocolChoice::Auto);
        let a = s.handle(failed(FailureKind::CredentialsRefused), 0);
        assert_eq!(
            a.last(),
            Some(&Action::Retry {
                ceiling: BACKOFF_BASE,
                attempt: 1,
                error: "boom".into(),
                credentials: true
            })
        );
        assert!(!has(&a, &Action::CountTakeover));
        assert_eq!(s.protocol(), Protocol::V5);
    }
}
