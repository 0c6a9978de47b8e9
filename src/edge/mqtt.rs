//! The MQTT edge: connect, subscribe on every CONNACK, feed the pipeline.
//!
//! One task owns both the rumqttc event loop and the [`Pipeline`], so the hot
//! path takes no lock. The session speaks MQTT 5 with a session expiry, so a
//! persistent session queues QoS 1 events while the exporter is away and is
//! dropped by the broker once the exporter is gone for good.
//!
//! Rules learned from peers' bug trackers:
//! - resubscribe on every CONNACK: a reconnect that does not resubscribe leaves
//!   a "zombie" exporter serving stale numbers while `broker_up` says 1;
//! - subscribe with `try_subscribe_many`, never awaiting inside the task that
//!   polls the event loop (bytebeamio/rumqtt#1025);
//! - raise rumqttc's 10 KiB default packet limit, or one large event kills the
//!   connection in a loop.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, DisconnectReasonCode, Filter, Packet, SubscribeReasonCode,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, StateError};
use rumqttc::{TlsConfiguration, Transport as MqttTransport};

use crate::broker_tls::{self, TlsError};
use crate::config::{BrokerConfig, MqttConfig, Transport};
use crate::core::clock::now_ms;
use crate::core::pipeline::Pipeline;
use crate::core::status::Status;
use crate::edge::shutdown::Shutdown;

/// First reconnect delay; doubles per failure up to [`BACKOFF_MAX`].
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often flapping windows advance and the HTTP snapshot is refreshed.
const TICK: Duration = Duration::from_secs(1);
/// Advances the windows and publishes the (bounded) flapping and top lists.
fn tick(pipeline: &mut Pipeline, status: &Status) {
    status.set_flapping(pipeline.tick(now_ms(), crate::core::listed::FLAPPING));
    status.set_top(pipeline.top_report());
}

fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// Builds the rumqttc options from validated configuration, reading the
/// password and TLS files as they are now.
pub fn options(cfg: &MqttConfig) -> Result<MqttOptions, TlsError> {
    let mut options = connect_options(&cfg.broker)?;
    options
        .set_clean_start(cfg.clean_session)
        .set_max_packet_size(Some(cfg.max_packet_size))
        .set_request_channel_capacity(64);
    if !cfg.clean_session {
        let secs = u32::try_from(cfg.session_expiry.as_secs()).unwrap_or(u32::MAX);
        options.set_session_expiry_interval(Some(secs));
    }
    Ok(options)
}

/// The connection part of the options (address, client ID, keep-alive,
/// credentials, TLS): the exporter's subscriber and `simulate` share it.
/// The password file and the TLS files are read now, so calling it before
/// each connect picks up rotated secrets.
pub fn connect_options(b: &BrokerConfig) -> Result<MqttOptions, TlsError> {
    let mut options = MqttOptions::new(b.client_id.clone(), b.host.clone(), b.port);
    options.set_keep_alive(b.keepalive);
    set_secrets(&mut options, b)?;
    Ok(options)
}

/// Sets the credentials and the TLS transport from the files as they are now.
fn set_secrets(options: &mut MqttOptions, b: &BrokerConfig) -> Result<(), TlsError> {
    if let Some(user) = &b.username {
        let password = b.current_password();
        options.set_credentials(user.clone(), password.as_ref().map_or("", |p| p.expose()));
    }
    if let Transport::Tls(tls) = &b.transport {
        if tls.insecure_skip_verify {
            tracing::warn!(broker = %b.host, "--mqtt.tls-insecure-skip-verify: the broker certificate is not verified");
        }
        let config = broker_tls::client_config(tls)?;
        options.set_transport(MqttTransport::tls_with_config(TlsConfiguration::Rustls(
            config,
        )));
    }
    Ok(())
}

/// A connection that stays up this long ends a streak of drops and resets
/// the backoff. It is longer than [`BACKOFF_MAX`]: two replicas sharing one
/// client ID each stay connected until the other's next attempt.
const STABLE_AFTER_MS: i64 = 60_000;
/// Drops in a row, each right after a reconnect that succeeded at once,
/// after which another client holding our client ID is the likely cause.
const SUSPECT_AFTER_DROPS: u32 = 3;

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
    /// [`backoff`] and what the failure says about a takeover.
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

/// Delay before reconnect attempt `failures` (1-based): exponential, capped,
/// with jitter in [d/2, d] so replicas do not reconnect in lockstep.
pub fn backoff(failures: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let capped = exp.min(BACKOFF_MAX);
    let ms = capped.as_millis() as u64;
    Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms))
}

/// Re-reads the password file on every SIGHUP, to say whether it is valid.
async fn check_password_on_sighup(broker: crate::config::BrokerConfig) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hangup.recv().await.is_some() {
            broker.check_password_file();
        }
    }
    #[cfg(not(unix))]
    let _ = broker;
}

/// Runs the subscriber until `shutdown` fires.
pub async fn run(
    cfg: MqttConfig,
    mut pipeline: Pipeline,
    status: Arc<Status>,
    mut shutdown: Shutdown,
) {
    let initial = match options(&cfg) {
        Ok(options) => options,
        Err(e) => {
            // checked at start; a file can only have gone since
            tracing::error!(error = %e, "cannot prepare the broker connection");
            return;
        }
    };
    let (client, mut eventloop) = AsyncClient::new(initial, 64);
    let password_check = tokio::spawn(check_password_on_sighup(cfg.broker.clone()));
    let filters: Vec<Filter> = cfg
        .topics
        .iter()
        .map(|t| Filter::new(t.clone(), qos(cfg.qos)))
        .collect();
    tracing::info!(
        broker = %format!("{}:{}", cfg.broker.host, cfg.broker.port),
        client_id = %cfg.broker.client_id,
        topics = ?cfg.topics,
        qos = cfg.qos,
        clean_session = cfg.clean_session,
        "connecting to the broker"
    );

    let mut connected = false;
    let mut ever_connected = false;
    let mut reconnects = Reconnects::default();
    let mut takeover_logged = false;
    for topic in &cfg.topics {
        pipeline
            .metrics()
            .subscription_granted
            .with_label_values(&[topic.as_str()])
            .set(0);
    }
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next_tick = tokio::time::Instant::now();

    loop {
        // While connecting, the poll future must not be cancelled by the
        // ticker (that would abort a slow TLS handshake), so the windows
        // advance between polls instead.
        let polled = if connected {
            tokio::select! {
                biased;
                _ = shutdown.recv() => break,
                _ = ticker.tick() => {
                    tick(&mut pipeline, &status);
                    reconnects.still_connected(now_ms());
                    continue;
                }
                polled = eventloop.poll() => polled,
            }
        } else {
            if tokio::time::Instant::now() >= next_tick {
                tick(&mut pipeline, &status);
                next_tick = tokio::time::Instant::now() + TICK;
            }
            tokio::select! {
                _ = shutdown.recv() => break,
                polled = eventloop.poll() => polled,
            }
        };

        match polled {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                pipeline.handle(&publish.topic, &publish.payload, now_ms());
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                connected = true;
                status.set_last_error(None);
                reconnects.connected(now_ms());
                pipeline.metrics().broker_up.set(1);
                if ever_connected {
                    pipeline.metrics().broker_reconnects.inc();
                }
                ever_connected = true;
                tracing::info!(
                    session_present = ack.session_present,
                    "connected to the broker; subscribing"
                );
                if let Err(e) = client.try_subscribe_many(filters.clone()) {
                    tracing::error!(error = %e, "could not queue the subscription");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let (granted, refused) = suback(&cfg.topics, &ack.return_codes);
                let granted_gauge = &pipeline.metrics().subscription_granted;
                for topic in &cfg.topics {
                    let ok = !refused.iter().any(|(t, _)| t == topic);
                    granted_gauge
                        .with_label_values(&[topic.as_str()])
                        .set(i64::from(ok));
                }
                for (topic, reason) in &refused {
                    tracing::error!(%topic, reason = ?reason, "the broker refused the subscription (check the exporter user's ACL)");
                }
                status.set_subscriptions(granted, cfg.topics.len());
                if granted > 0 {
                    tracing::info!(granted, topics = cfg.topics.len(), "subscribed");
                }
            }
            Ok(Event::Incoming(Packet::Disconnect(d))) => {
                tracing::warn!(reason = ?d.reason_code, "the broker sent DISCONNECT");
            }
            Ok(_) => {}
            Err(e) => {
                let (failures, takeover) = reconnects.failed(now_ms(), is_taken_over(&e));
                if takeover == Takeover::No {
                    takeover_logged = false;
                    if connected {
                        tracing::warn!(error = %e, "lost the broker connection");
                    }
                } else {
                    // the trap of exporters sharing one client ID: they take
                    // each other over, and count their own takeovers
                    pipeline.metrics().session_takeovers.inc();
                    let how = match takeover {
                        Takeover::Certain => "the broker says another client connected with this exporter's client ID and took its session over",
                        _ => "the broker keeps dropping this session right after accepting it: most likely another client (a second replica?) uses the same client ID",
                    };
                    if !std::mem::replace(&mut takeover_logged, true) {
                        tracing::error!(client_id = %cfg.broker.client_id, error = %e, "{how}; give every replica its own --mqtt.client-id");
                    } else {
                        tracing::debug!(client_id = %cfg.broker.client_id, error = %e, "{how}");
                    }
                }
                connected = false;
                pipeline.metrics().broker_up.set(0);
                status.set_ready(false);
                let text = e.to_string();
                status.set_last_error(Some(match crate::broker_tls::explain(&text) {
                    Some(fix) => format!("{text}: {fix}"),
                    None => text,
                }));
                let delay = backoff(failures);
                log_failure(&e, failures, delay);
                tokio::select! {
                    _ = shutdown.recv() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                // re-read the password and TLS files: a rotated secret is
                // used by this reconnect, without a restart
                if let Err(e) = set_secrets(&mut eventloop.options, &cfg.broker) {
                    tracing::error!(error = %e, "cannot re-read the broker secrets; retrying with the last ones");
                }
            }
        }
    }

    status.set_ready(false);
    password_check.abort();
    if connected {
        disconnect(&client, &mut eventloop).await;
    }
    pipeline.metrics().broker_up.set(0);
    tracing::info!("mqtt subscriber stopped");
}

/// Pairs the subscribed topics with a SUBACK's codes: how many were granted,
/// and each refused topic with its reason (a missing code is a refusal).
pub fn suback<'a>(
    topics: &'a [String],
    codes: &[SubscribeReasonCode],
) -> (usize, Vec<(&'a str, SubscribeReasonCode)>) {
    let mut granted = 0;
    let mut refused = Vec::new();
    for (i, topic) in topics.iter().enumerate() {
        match codes.get(i) {
            Some(SubscribeReasonCode::Success(_)) => granted += 1,
            Some(code) => refused.push((topic.as_str(), *code)),
            None => refused.push((topic.as_str(), SubscribeReasonCode::Unspecified)),
        }
    }
    (granted, refused)
}

/// The broker ended the session because another client took its ID.
fn is_taken_over(e: &ConnectionError) -> bool {
    matches!(
        e,
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::SessionTakenOver,
            ..
        })
    )
}

fn log_failure(e: &ConnectionError, failures: u32, delay: Duration) {
    let text = e.to_string();
    if let Some(fix) = crate::broker_tls::explain(&text) {
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
            tracing::error!(error = %e, fix, "the broker's certificate cannot be verified");
        }
    }
    match e {
        ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword)
        | ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized) => {
            tracing::error!(error = %e, attempt = failures, retry_in = ?delay, "the broker refused the credentials");
        }
        _ => {
            tracing::warn!(error = %e, attempt = failures, retry_in = ?delay, "cannot reach the broker; retrying");
        }
    }
}

/// Sends DISCONNECT (normal, so a persistent session is kept) and polls until
/// it is written or a short timeout passes.
async fn disconnect(client: &AsyncClient, eventloop: &mut EventLoop) {
    if client.try_disconnect().is_err() {
        return;
    }
    let flush = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suback_names_each_refused_topic() {
        let topics: Vec<String> = ["a/#", "$SYS/brokers/+/clients/+/disconnected", "c"]
            .map(String::from)
            .to_vec();
        let codes = [
            SubscribeReasonCode::Success(QoS::AtLeastOnce),
            SubscribeReasonCode::NotAuthorized,
        ];
        let (granted, refused) = suback(&topics, &codes);
        assert_eq!(granted, 1);
        assert_eq!(
            refused,
            vec![
                (
                    "$SYS/brokers/+/clients/+/disconnected",
                    SubscribeReasonCode::NotAuthorized
                ),
                ("c", SubscribeReasonCode::Unspecified),
            ]
        );
        let (granted, refused) = suback(&topics[..1], &[SubscribeReasonCode::Failure]);
        assert_eq!((granted, refused.len()), (0, 1));
    }

    #[test]
    fn a_session_taken_over_is_recognised() {
        let taken = ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::SessionTakenOver,
            reason_string: None,
        });
        assert!(is_taken_over(&taken));
        let other = ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::ServerShuttingDown,
            reason_string: None,
        });
        assert!(!is_taken_over(&other));
        assert!(!is_taken_over(&ConnectionError::RequestsDone));
    }

    #[test]
    fn repeated_drops_after_first_try_reconnects_are_a_suspected_takeover() {
        let mut r = Reconnects::default();
        let mut t = 0;
        // connected, then dropped again and again, each reconnect at once
        let mut verdicts = Vec::new();
        for _ in 0..5 {
            r.connected(t);
            t += 2_000;
            verdicts.push(r.failed(t, false));
            t += 500;
        }
        assert_eq!(
            verdicts,
            vec![
                (1, Takeover::No),
                (2, Takeover::No),
                (3, Takeover::Suspected),
                (4, Takeover::Suspected),
                (5, Takeover::Suspected),
            ]
        );
        // the backoff was not reset by the CONNACKs in between
        assert!(backoff(5) >= BACKOFF_BASE * 8);
        // a connection that stays up a minute ends the streak and the backoff
        r.connected(t);
        r.still_connected(t + STABLE_AFTER_MS);
        assert_eq!(r.failed(t + STABLE_AFTER_MS + 1, false), (1, Takeover::No));
    }

    #[test]
    fn a_broker_restart_is_not_a_takeover_and_0x8e_always_is() {
        let mut r = Reconnects::default();
        r.connected(0);
        assert_eq!(r.failed(1_000, false), (1, Takeover::No));
        // the broker is down: attempts fail before any CONNACK
        assert_eq!(r.failed(1_300, false), (2, Takeover::No));
        assert_eq!(r.failed(1_900, false), (3, Takeover::No));
        r.connected(3_000);
        assert_eq!(r.failed(4_000, false), (4, Takeover::No));
        r.connected(4_300);
        assert_eq!(r.failed(5_000, false), (5, Takeover::No));
        r.connected(5_500);
        assert_eq!(r.failed(6_000, true), (6, Takeover::Certain));
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        for _ in 0..100 {
            let first = backoff(1);
            assert!(
                first >= BACKOFF_BASE / 2 && first <= BACKOFF_BASE,
                "{first:?}"
            );
            let late = backoff(40);
            assert!(late >= BACKOFF_MAX / 2 && late <= BACKOFF_MAX, "{late:?}");
        }
        assert!(backoff(4) <= BACKOFF_BASE * 8);
    }
}
