//! The MQTT source: connect, subscribe on every CONNACK, feed the pipeline.
//!
//! Three parts, as quinn keeps protocol logic apart from its sockets:
//! - [`session`]: what the session decides (subscribe, readiness, backoff,
//!   takeovers, the MQTT version), with no I/O and no clock;
//! - [`link`]: rumqttc's MQTT 5 and 3.1.1 clients behind one type;
//! - this driver: polls the link, hands publishes to the pipeline through
//!   the source's [`Inlet`] (while the pipeline is busy rumqttc is not
//!   polled, so the broker keeps the rest), passes the rest to the session
//!   with the time, and carries out its actions.
//!
//! The session speaks MQTT 5 with a session expiry, so a persistent session
//! queues QoS 1 events while the exporter is away and is dropped by the
//! broker once the exporter is gone for good. With `--mqtt.protocol auto`
//! (the default) it falls back to MQTT 3.1.1 for a broker that refuses 5.
//! [`broker_tls`] reads the files of the TLS connection and [`metrics`]
//! holds this source's own metrics.

pub mod broker_tls;
pub mod link;
pub mod metrics;
pub mod redelivery;
pub mod session;
pub mod settings;

pub use settings::Settings;

use std::time::Duration;

use rand::Rng;

use crate::core::clock::now_ms;
use crate::core::status::Health;
use crate::edge::feed::Inlet;
use crate::edge::shutdown::Shutdown;

pub use link::connect_options;
use link::{Link, Polled};
use metrics::MqttMetrics;
use redelivery::Redelivery;
use session::{Action, Input, Level, Session};

/// How often the session is told the time while connected.
const TICK: Duration = Duration::from_secs(1);
/// A random delay in `[ceiling/2, ceiling]`, so replicas do not reconnect
/// in lockstep.
pub fn jitter(ceiling: Duration) -> Duration {
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms))
}

/// Re-reads the password file on every SIGHUP, to say whether it is valid.
/// The signal is registered now, when this is called, not when the future
/// first runs: a SIGHUP sent as soon as the exporter serves HTTP is seen.
fn check_password_on_sighup(
    broker: settings::BrokerConfig,
) -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut hangup) = hangup {
            while hangup.recv().await.is_some() {
                broker.check_password_file();
            }
        }
        #[cfg(not(unix))]
        let _ = broker;
    }
}

/// What `/-/ready` says of this source before a SUBACK.
const NOT_SUBSCRIBED: &str = "no live subscription to the broker";

/// What `/-/ready` says of this source after a SUBACK of `granted` of
/// `topics` filters. A partly refused subscription is still ready (some
/// events are counted) and says so; the per-filter truth is
/// `mqtt_exporter_subscription_granted{topic}`.
fn subscribed(granted: usize, topics: usize) -> String {
    if granted == 0 {
        format!(
            "the broker refused all {topics} topic filters: see mqtt_exporter_subscription_granted"
        )
    } else if granted < topics {
        format!(
            "the broker refused {} of {topics} topic filters: see mqtt_exporter_subscription_granted",
            topics - granted
        )
    } else {
        format!(
            "subscribed to {topics} topic filter{}",
            if topics == 1 { "" } else { "s" }
        )
    }
}

/// What the driver does with the session's actions: the link, the metrics
/// and the status, and how long to wait before the next attempt.
struct Effects<'a> {
    cfg: &'a Settings,
    metrics: &'a MqttMetrics,
    health: &'a Health,
}

impl Effects<'_> {
    /// Carries out `actions`; returns the delay of a retry, if one is asked.
    fn apply(&self, actions: Vec<Action>, link: &mut Link, session: &Session) -> Option<Duration> {
        let mut retry = None;
        for action in actions {
            match action {
                Action::Subscribe => {
                    if let Err(e) = link.subscribe(&self.cfg.topics, self.cfg.qos) {
                        tracing::error!(error = %e, "could not queue the subscription");
                    }
                }
                Action::Up(up) => self.metrics.set_up(up),
                Action::CountReconnect => self.metrics.reconnected(),
                Action::CountTakeover => self.metrics.taken_over(),
                Action::Granted { index, granted } => {
                    self.metrics.set_granted(index, granted);
                    if !granted && session.is_connected() {
                        if let Some(topic) = self.cfg.topics.get(index) {
                            tracing::error!(%topic, "the broker refused the subscription (check the exporter user's ACL)");
                        }
                    }
                }
                Action::Subscriptions { granted, topics } => {
                    let words = subscribed(granted, topics);
                    if granted > 0 && granted < topics {
                        self.health.set_degraded(words)
                    } else {
                        self.health.set(granted > 0, words)
                    }
                }
                Action::NotReady => self.health.set(false, NOT_SUBSCRIBED),
                Action::LastError(None) => self.health.set_last_error(None),
                Action::LastError(Some(text)) => {
                    self.health
                        .set_last_error(Some(match broker_tls::explain(&text) {
                            Some(fix) => format!("{text}: {fix}"),
                            None => text,
                        }))
                }
                Action::Speak(protocol) => self.metrics.speak(protocol),
                Action::Log { level, message } => match level {
                    Level::Error => {
                        tracing::error!(client_id = %self.cfg.broker.client_id, "{message}")
                    }
                    Level::Warn => tracing::warn!("{message}"),
                    Level::Info => tracing::info!("{message}"),
                    Level::Debug => tracing::debug!("{message}"),
                },
                Action::Retry {
                    ceiling,
                    attempt,
                    error,
                    credentials,
                } => {
                    let delay = jitter(ceiling);
                    log_failure(&error, credentials, attempt, delay);
                    retry = Some(delay);
                }
            }
        }
        retry
    }
}

/// Runs the subscriber until `shutdown` fires.
pub async fn run(
    cfg: Settings,
    metrics: MqttMetrics,
    inlet: Inlet,
    health: Health,
    mut shutdown: Shutdown,
) {
    health.set(false, NOT_SUBSCRIBED);
    let password_check = tokio::spawn(check_password_on_sighup(cfg.broker.clone()));
    let session = Session::new(&cfg.broker.client_id, cfg.topics.len(), cfg.protocol);
    let link = match Link::new(&cfg, session.protocol()) {
        Ok(link) => link,
        Err(e) => {
            // checked at start; a file can only have gone since
            tracing::error!(error = %e, "cannot prepare the broker connection");
            password_check.abort();
            return;
        }
    };
    tracing::info!(
        broker = %format!("{}:{}", cfg.broker.host, cfg.broker.port),
        client_id = %cfg.broker.client_id,
        topics = ?cfg.topics,
        qos = cfg.qos,
        clean_session = cfg.clean_session,
        protocol = %cfg.protocol,
        "connecting to the broker"
    );
    let mut driver = Driver {
        effects: Effects {
            cfg: &cfg,
            metrics: &metrics,
            health: &health,
        },
        session,
        link,
        redelivery: Redelivery::default(),
    };
    driver.apply(driver.session.start());
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    loop {
        let connected = driver.session.is_connected();
        // While connecting, the poll future must not be cancelled by the
        // ticker (that would abort a slow TLS handshake): the session needs
        // the time only while connected.
        let polled = if connected {
            tokio::select! {
                biased;
                _ = shutdown.recv() => break,
                _ = ticker.tick() => {
                    driver.handle(Input::Tick);
                    continue;
                }
                polled = driver.link.poll(connected) => polled,
            }
        } else {
            tokio::select! {
                _ = shutdown.recv() => break,
                polled = driver.link.poll(connected) => polled,
            }
        };
        match polled {
            // handled on this task: while the pipeline is busy rumqttc is
            // not polled, so the broker keeps what follows
            Ok(Polled::Publish {
                topic,
                payload,
                pkid,
                dup,
            }) => {
                if driver.redelivery.count(pkid, dup) {
                    inlet.deliver(&topic, &payload, now_ms());
                } else {
                    metrics.resent();
                }
            }
            Ok(other) => driver.other(other),
            Err(failure) => {
                if !driver.failed(failure, &mut shutdown).await {
                    break;
                }
            }
        }
    }

    health.set(false, "stopped");
    password_check.abort();
    if driver.session.is_connected() {
        driver.link.disconnect().await;
    }
    metrics.set_up(false);
    tracing::info!("mqtt subscriber stopped");
}

/// What the driver holds: the session and the link.
struct Driver<'a> {
    effects: Effects<'a>,
    session: Session,
    link: Link,
    redelivery: Redelivery,
}

impl Driver<'_> {
    /// Carries out `actions`; returns the delay of a retry, if one is asked.
    fn apply(&mut self, actions: Vec<Action>) -> Option<Duration> {
        self.effects.apply(actions, &mut self.link, &self.session)
    }

    /// Feeds `input` to the session now and carries out what it says.
    fn handle(&mut self, input: Input<'_>) -> Option<Duration> {
        let actions = self.session.handle(input, now_ms());
        self.apply(actions)
    }

    /// Anything the link reported but a publish or a failure.
    fn other(&mut self, polled: Polled) {
        match polled {
            Polled::ConnAck { session_present } => {
                self.redelivery.connected(session_present);
                self.handle(Input::Connected { session_present });
            }
            Polled::SubAck(granted) => {
                self.handle(Input::SubAck { granted: &granted });
            }
            Polled::Disconnect(reason) => {
                tracing::warn!(%reason, "the broker sent DISCONNECT");
            }
            Polled::Publish { .. } | Polled::Other => {}
        }
    }

    /// The connection or an attempt failed: the session says how long to
    /// wait; then the next attempt re-reads the secrets (a rotated one is
    /// used without a restart), in another MQTT version if the session
    /// chose one. False if shutdown fired meanwhile.
    async fn failed(&mut self, failure: link::Failure, shutdown: &mut Shutdown) -> bool {
        let before = self.session.protocol();
        let delay = self.handle(Input::Failed {
            kind: failure.kind,
            error: &failure.text,
        });
        if let Some(delay) = delay {
            tokio::select! {
                _ = shutdown.recv() => return false,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        let reread = if self.session.protocol() != before {
            Link::new(self.effects.cfg, self.session.protocol()).map(|next| self.link = next)
        } else {
            self.link.reload_secrets(&self.effects.cfg.broker)
        };
        if let Err(e) = reread {
            tracing::error!(error = %e, "cannot re-read the broker secrets; retrying with the last ones");
        }
        true
    }
}

fn log_failure(text: &str, credentials: bool, attempt: u32, delay: Duration) {
    if let Some(fix) = broker_tls::explain(text) {
        // said once at error with the fix; the retries stay at warn
        static SAID: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
        let first = SAID.lock().is_ok_and(|mut said| {
            let first = !said.contains(&fix);
            if first {
                said.push(fix);
            }
            first
        });
        if first {
            tracing::error!(error = %text, fix, "the broker's certificate cannot be verified");
        }
    }
    if credentials {
        tracing::error!(error = %text, attempt, retry_in = ?delay, "the broker refused the credentials");
    } else {
        tracing::warn!(error = %text, attempt, retry_in = ?delay, "cannot reach the broker; retrying");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_whole_the_ceiling() {
        for ceiling in [session::BACKOFF_BASE, session::BACKOFF_MAX] {
            for _ in 0..100 {
                let d = jitter(ceiling);
                assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} for {ceiling:?}");
            }
        }
    }
}
