//! One connection to the broker in either MQTT version: rumqttc's MQTT 5
//! and MQTT 3.1.1 clients behind one type, so the driver and the
//! [`super::session`] never see which one speaks. Everything rumqttc
//! reports is turned into a [`Polled`] or a [`Failure`] here, and nowhere
//! else.
//!
//! Rules learned from peers' bug trackers:
//! - subscribe with `try_subscribe_many`, never awaiting inside the task that
//!   polls the event loop (bytebeamio/rumqtt#1025);
//! - raise rumqttc's 10 KiB default packet limit, or one large event kills
//!   the connection in a loop.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, DisconnectReasonCode, SubscribeReasonCode};
use rumqttc::v5::{self, StateError};
use rumqttc::{TlsConfiguration, Transport as MqttTransport};

use super::broker_tls::{self, TlsError};
use super::session::{FailureKind, Protocol};
use super::settings::{BrokerConfig, Settings, Transport};

/// Requests queued to rumqttc (SUBSCRIBE and DISCONNECT only).
const REQUESTS: usize = 64;

/// What a poll brought, in either version.
#[derive(Debug)]
pub enum Polled {
    Publish {
        topic: Bytes,
        payload: Bytes,
        /// The packet identifier (0 at QoS 0) and the DUP flag, to count a
        /// resend once.
        pkid: u16,
        dup: bool,
    },
    ConnAck {
        session_present: bool,
    },
    /// Whether each filter was granted, in order.
    SubAck(Vec<bool>),
    /// The broker sent DISCONNECT (MQTT 5 only), with its reason.
    Disconnect(String),
    /// Anything the session does not need (PINGRESP, outgoing packets).
    Other,
}

/// A failed connection or attempt: its kind, for the session, and
/// rumqttc's text, for the log and `/-/ready`.
#[derive(Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub text: String,
}

/// A client and its event loop, in the version the session chose. There is
/// one per process, and it lives as long as the session: its size does not
/// matter.
#[allow(clippy::large_enum_variant)]
pub enum Link {
    V5 {
        client: v5::AsyncClient,
        eventloop: v5::EventLoop,
    },
    V311 {
        client: rumqttc::AsyncClient,
        eventloop: rumqttc::EventLoop,
    },
}

impl Link {
    /// A client for `cfg` speaking `protocol`, with the secrets read now.
    /// Nothing is sent until the first [`Link::poll`].
    pub fn new(cfg: &Settings, protocol: Protocol) -> Result<Link, TlsError> {
        Ok(match protocol {
            Protocol::V5 => {
                let (client, eventloop) = v5::AsyncClient::new(options_v5(cfg)?, REQUESTS);
                Link::V5 { client, eventloop }
            }
            Protocol::V311 => {
                let (client, eventloop) = rumqttc::AsyncClient::new(options_v311(cfg)?, REQUESTS);
                Link::V311 { client, eventloop }
            }
        })
    }

    /// Polls the event loop once; `connected` says whether the session has
    /// seen a CONNACK on this connection (a close before it may mean the
    /// broker does not speak this version).
    pub async fn poll(&mut self, connected: bool) -> Result<Polled, Failure> {
        match self {
            Link::V5 { eventloop, .. } => match eventloop.poll().await {
                Ok(event) => Ok(polled_v5(event)),
                Err(e) => Err(Failure {
                    kind: kind_v5(&e, connected),
                    text: e.to_string(),
                }),
            },
            Link::V311 { eventloop, .. } => match eventloop.poll().await {
                Ok(event) => Ok(polled_v311(event)),
                Err(e) => Err(Failure {
                    kind: kind_v311(&e, connected),
                    text: e.to_string(),
                }),
            },
        }
    }

    /// Queues SUBSCRIBE for every filter at `qos`.
    pub fn subscribe(&self, topics: &[String], qos: u8) -> Result<(), String> {
        match self {
            Link::V5 { client, .. } => client
                .try_subscribe_many(
                    topics
                        .iter()
                        .map(|t| v5::mqttbytes::v5::Filter::new(t.clone(), qos_v5(qos))),
                )
                .map_err(|e| e.to_string()),
            Link::V311 { client, .. } => client
                .try_subscribe_many(
                    topics
                        .iter()
                        .map(|t| rumqttc::SubscribeFilter::new(t.clone(), qos_v311(qos))),
                )
                .map_err(|e| e.to_string()),
        }
    }

    /// Re-reads the password and TLS files, for the next connect: a rotated
    /// secret is used without a restart.
    pub fn reload_secrets(&mut self, broker: &BrokerConfig) -> Result<(), TlsError> {
        let (credentials, transport) = secrets(broker)?;
        match self {
            Link::V5 { eventloop, .. } => {
                if let Some((user, password)) = credentials {
                    eventloop.options.set_credentials(user, password);
                }
                if let Some(transport) = transport {
                    eventloop.options.set_transport(transport);
                }
            }
            Link::V311 { eventloop, .. } => {
                if let Some((user, password)) = credentials {
                    eventloop.mqtt_options.set_credentials(user, password);
                }
                if let Some(transport) = transport {
                    eventloop.mqtt_options.set_transport(transport);
                }
            }
        }
        Ok(())
    }

    /// Sends DISCONNECT (normal, so a persistent session is kept) and polls
    /// until it is written or a short timeout passes.
    pub async fn disconnect(&mut self) {
        let flush = async {
            match self {
                Link::V5 { client, eventloop } => {
                    if client.try_disconnect().is_ok() {
                        while let Ok(event) = eventloop.poll().await {
                            if matches!(event, v5::Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                                break;
                            }
                        }
                    }
                }
                Link::V311 { client, eventloop } => {
                    if client.try_disconnect().is_ok() {
                        while let Ok(event) = eventloop.poll().await {
                            if matches!(
                                event,
                                rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)
                            ) {
                                break;
                            }
                        }
                    }
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
    }
}

fn polled_v5(event: v5::Event) -> Polled {
    use v5::mqttbytes::v5::Packet;
    match event {
        v5::Event::Incoming(Packet::Publish(p)) => Polled::Publish {
            topic: p.topic,
            payload: p.payload,
            pkid: p.pkid,
            dup: p.dup,
        },
        v5::Event::Incoming(Packet::ConnAck(ack)) => Polled::ConnAck {
            session_present: ack.session_present,
        },
        v5::Event::Incoming(Packet::SubAck(ack)) => Polled::SubAck(
            ack.return_codes
                .iter()
                .map(|c| matches!(c, SubscribeReasonCode::Success(_)))
                .collect(),
        ),
        v5::Event::Incoming(Packet::Disconnect(d)) => {
            Polled::Disconnect(format!("{:?}", d.reason_code))
        }
        _ => Polled::Other,
    }
}

fn polled_v311(event: rumqttc::Event) -> Polled {
    use rumqttc::Packet;
    match event {
        rumqttc::Event::Incoming(Packet::Publish(p)) => Polled::Publish {
            topic: Bytes::from(p.topic),
            payload: p.payload,
            pkid: p.pkid,
            dup: p.dup,
        },
        rumqttc::Event::Incoming(Packet::ConnAck(ack)) => Polled::ConnAck {
            session_present: ack.session_present,
        },
        rumqttc::Event::Incoming(Packet::SubAck(ack)) => Polled::SubAck(
            ack.return_codes
                .iter()
                .map(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_)))
                .collect(),
        ),
        _ => Polled::Other,
    }
}

/// What an MQTT 5 failure means to the session. An MQTT 3.1.1 broker
/// answers a version-5 CONNECT with a 3.1.1 CONNACK refusing the version
/// (code 1, which MQTT 5 does not define, so rumqttc cannot decode it), or
/// closes the connection without a CONNACK.
fn kind_v5(e: &v5::ConnectionError, connected: bool) -> FailureKind {
    use rumqttc::v5::mqttbytes::Error as Decode;
    use v5::ConnectionError as E;
    match e {
        E::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::SessionTakenOver,
            ..
        }) => FailureKind::TakenOver,
        E::ConnectionRefused(ConnectReturnCode::UnsupportedProtocolVersion)
        | E::MqttState(StateError::Deserialization(Decode::InvalidConnectReturnCode(1))) => {
            FailureKind::ProtocolRefused
        }
        E::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => FailureKind::CredentialsRefused,
        E::MqttState(StateError::ConnectionAborted) if !connected => {
            FailureKind::ClosedBeforeConnAck
        }
        E::MqttState(StateError::Io(io)) | E::Io(io) if !connected && closed(io) => {
            FailureKind::ClosedBeforeConnAck
        }
        _ => FailureKind::Other,
    }
}

/// What an MQTT 3.1.1 failure means to the session.
fn kind_v311(e: &rumqttc::ConnectionError, connected: bool) -> FailureKind {
    use rumqttc::{ConnectReturnCode as Code, ConnectionError as E, StateError as S};
    match e {
        E::ConnectionRefused(Code::RefusedProtocolVersion) => FailureKind::ProtocolRefused,
        E::ConnectionRefused(Code::BadUserNamePassword | Code::NotAuthorized) => {
            FailureKind::CredentialsRefused
        }
        E::MqttState(S::ConnectionAborted) if !connected => FailureKind::ClosedBeforeConnAck,
        E::MqttState(S::Io(io)) | E::Io(io) if !connected && closed(io) => {
            FailureKind::ClosedBeforeConnAck
        }
        _ => FailureKind::Other,
    }
}

/// The peer closed or reset an open connection (not: refused it).
fn closed(io: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, UnexpectedEof};
    matches!(
        io.kind(),
        ConnectionAborted | ConnectionReset | UnexpectedEof
    )
}

fn qos_v5(level: u8) -> v5::mqttbytes::QoS {
    use v5::mqttbytes::QoS;
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn qos_v311(level: u8) -> rumqttc::QoS {
    use rumqttc::QoS;
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// The MQTT 5 options of the exporter's session: a persistent session gets
/// `--mqtt.session-expiry`, so it cannot leak a queue forever.
pub fn options_v5(cfg: &Settings) -> Result<v5::MqttOptions, TlsError> {
    let mut options = connect_options(&cfg.broker)?;
    options
        .set_clean_start(cfg.clean_session)
        .set_max_packet_size(Some(cfg.max_packet_size))
        .set_request_channel_capacity(REQUESTS);
    if !cfg.clean_session {
        let secs = u32::try_from(cfg.session_expiry.as_secs()).unwrap_or(u32::MAX);
        options.set_session_expiry_interval(Some(secs));
    }
    Ok(options)
}

/// The MQTT 3.1.1 options: the same connection; a persistent session has
/// no expiry in this version.
fn options_v311(cfg: &Settings) -> Result<rumqttc::MqttOptions, TlsError> {
    let b = &cfg.broker;
    let mut options = rumqttc::MqttOptions::new(b.client_id.clone(), b.host.clone(), b.port);
    let max = usize::try_from(cfg.max_packet_size).unwrap_or(usize::MAX);
    options
        .set_keep_alive(b.keepalive)
        .set_clean_session(cfg.clean_session)
        .set_max_packet_size(max, max)
        .set_request_channel_capacity(REQUESTS);
    let (credentials, transport) = secrets(b)?;
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    if let Some(transport) = transport {
        options.set_transport(transport);
    }
    Ok(options)
}

/// The connection part of the MQTT 5 options (address, client ID,
/// keep-alive, credentials, TLS): the exporter's subscriber and `simulate`
/// share it. The password file and the TLS files are read now.
pub fn connect_options(b: &BrokerConfig) -> Result<v5::MqttOptions, TlsError> {
    let mut options = v5::MqttOptions::new(b.client_id.clone(), b.host.clone(), b.port);
    options.set_keep_alive(b.keepalive);
    let (credentials, transport) = secrets(b)?;
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    if let Some(transport) = transport {
        options.set_transport(transport);
    }
    Ok(options)
}

/// A user name and its password.
type Credentials = (String, String);

/// The credentials and the TLS transport, from the files as they are now.
fn secrets(b: &BrokerConfig) -> Result<(Option<Credentials>, Option<MqttTransport>), TlsError> {
    let credentials = b.username.as_ref().map(|user| {
        let password = b.current_password();
        (
            user.clone(),
            password.as_ref().map_or("", |p| p.expose()).to_string(),
        )
    });
    let transport = match &b.transport {
        Transport::Tls(tls) => {
            if tls.insecure_skip_verify {
                tracing::warn!(broker = %b.host, "--mqtt.tls-insecure-skip-verify: the broker certificate is not verified");
            }
            let config = broker_tls::client_config(tls)?;
            Some(MqttTransport::tls_with_config(TlsConfiguration::Rustls(
                config,
            )))
        }
        Transport::Tcp => None,
    };
    Ok((credentials, transport))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_apart_in_both_versions() {
        use v5::ConnectionError as E5;
        let taken = E5::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::SessionTakenOver,
            reason_string: None,
        });
        assert_eq!(kind_v5(&taken, true), FailureKind::TakenOver);
        let shutting = E5::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::ServerShuttingDown,
            reason_string: None,
        });
        assert_eq!(kind_v5(&shutting, true), FailureKind::Other);
        // a 3.1.1 broker's CONNACK 0x01, as rumqttc's MQTT 5 decoder sees it
        let v3_connack = E5::MqttState(StateError::Deserialization(
            rumqttc::v5::mqttbytes::Error::InvalidConnectReturnCode(1),
        ));
        assert_eq!(kind_v5(&v3_connack, false), FailureKind::ProtocolRefused);
        assert_eq!(
            kind_v5(
                &E5::ConnectionRefused(ConnectReturnCode::UnsupportedProtocolVersion),
                false
            ),
            FailureKind::ProtocolRefused
        );
        let aborted = E5::MqttState(StateError::ConnectionAborted);
        assert_eq!(kind_v5(&aborted, false), FailureKind::ClosedBeforeConnAck);
        assert_eq!(kind_v5(&aborted, true), FailureKind::Other);
        let refused = E5::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(kind_v5(&refused, false), FailureKind::Other);
        assert_eq!(
            kind_v5(
                &E5::ConnectionRefused(ConnectReturnCode::BadUserNamePassword),
                false
            ),
            FailureKind::CredentialsRefused
        );

        use rumqttc::ConnectionError as E4;
        assert_eq!(
            kind_v311(
                &E4::ConnectionRefused(rumqttc::ConnectReturnCode::RefusedProtocolVersion),
                false
            ),
            FailureKind::ProtocolRefused
        );
        assert_eq!(
            kind_v311(
                &E4::ConnectionRefused(rumqttc::ConnectReturnCode::NotAuthorized),
                false
            ),
            FailureKind::CredentialsRefused
        );
        let reset = E4::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(kind_v311(&reset, false), FailureKind::ClosedBeforeConnAck);
        assert_eq!(kind_v311(&reset, true), FailureKind::Other);
    }

    #[test]
    fn subacks_read_the_same_in_both_versions() {
        use rumqttc::v5::mqttbytes::v5::{Packet, SubAck};
        let v5_ack = v5::Event::Incoming(Packet::SubAck(SubAck {
            pkid: 1,
            return_codes: vec![
                SubscribeReasonCode::Success(v5::mqttbytes::QoS::AtLeastOnce),
                SubscribeReasonCode::NotAuthorized,
            ],
            properties: None,
        }));
        assert!(matches!(polled_v5(v5_ack), Polled::SubAck(g) if g == [true, false]));
        let v4_ack = rumqttc::Event::Incoming(rumqttc::Packet::SubAck(rumqttc::SubAck {
            pkid: 1,
            return_codes: vec![
                rumqttc::SubscribeReasonCode::Failure,
                rumqttc::SubscribeReasonCode::Success(rumqttc::QoS::AtMostOnce),
            ],
        }));
        assert!(matches!(polled_v311(v4_ack), Polled::SubAck(g) if g == [false, true]));
    }
}
