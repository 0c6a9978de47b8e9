//! The event model and the parser for broker lifecycle events.
//!
//! [`parse`] turns one MQTT message (topic and payload bytes) into an
//! [`Event`] that borrows from the payload where it can. It understands the
//! Tencent Cloud TDMQ for MQTT `$events/...` JSON, EMQX 5 rule-engine event
//! JSON (including `client.connack`), EMQX's `$SYS/brokers/<node>/clients/
//! <clientid>/<event>` messages, AWS IoT Core lifecycle events
//! (`$aws/events/presence/...`, camelCase fields), and NanoMQ's
//! `$SYS/brokers/connected|disconnected` and `$SYS/brokers/client_status/<id>`. Every failure is one of the closed set of
//! [`EventError`] kinds, which are also the `error` label values.

use std::borrow::Cow;

use scanner::Code;

pub mod eventgrid;
pub mod lines;
pub mod mosquitto_log;
pub mod scanner;

/// What happened to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Connected,
    Disconnected,
    Subscribed,
    Unsubscribed,
    /// A CONNACK event (EMQX `client.connack`); refusals count as disconnects.
    Connack,
    /// A well-formed event we do not count (e.g. `client.check_authn_complete`).
    Other,
}

impl EventKind {
    /// The `kind` label of `mqtt_exporter_events_received_total`.
    pub fn label(self) -> &'static str {
        match self {
            EventKind::Connected => "connected",
            EventKind::Disconnected => "disconnected",
            EventKind::Subscribed => "subscribed",
            EventKind::Unsubscribed => "unsubscribed",
            EventKind::Connack | EventKind::Other => "other",
        }
    }

    /// One kind per `kind` label value, in label order (CONNACK events
    /// count as `other`).
    pub const COUNTED: [EventKind; 5] = [
        EventKind::Connected,
        EventKind::Disconnected,
        EventKind::Subscribed,
        EventKind::Unsubscribed,
        EventKind::Other,
    ];

    /// Position of this kind's label in [`EventKind::COUNTED`].
    pub fn label_index(self) -> usize {
        match self {
            EventKind::Connected => 0,
            EventKind::Disconnected => 1,
            EventKind::Subscribed => 2,
            EventKind::Unsubscribed => 3,
            EventKind::Connack | EventKind::Other => 4,
        }
    }
}

/// What a delivery's payload is, named by the source that delivers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON event (TDMQ, EMQX, AWS IoT, NanoMQ), its kind from its own
    /// fields or its topic.
    Event,
    /// One line of Mosquitto's own log.
    MosquittoLog,
}

impl Format {
    /// How an MQTT delivery names its format: by the topic it came on
    /// (Mosquitto publishes its log on `$SYS/broker/log/<level>`).
    pub fn of_topic(topic: &[u8]) -> Format {
        if mosquitto_log::is_log_topic(topic) {
            Format::MosquittoLog
        } else {
            Format::Event
        }
    }
}

/// The reason a payload carries: a name, or a numeric MQTT 5 reason code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawReason<'a> {
    Name(Cow<'a, str>),
    Code(u8),
}

/// One parsed lifecycle event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    pub kind: EventKind,
    pub clientid: Cow<'a, str>,
    /// Disconnect reason, or a CONNACK's reason code.
    pub reason: Option<RawReason<'a>>,
    /// The client's address (`peername`, or `ipaddress` in `$SYS` payloads).
    pub peer: Option<Cow<'a, str>>,
    /// Event time in milliseconds since the epoch, when the payload has one.
    pub time_ms: Option<i64>,
    /// When the connection a disconnect ends began (ms since the epoch),
    /// where the disconnect event says it (EMQX 5.8.6 and later, TDMQ,
    /// EMQX's `$SYS` messages): how long the connection lived.
    pub connected_at: Option<i64>,
    /// The broker node the client was on, where the event names one
    /// (EMQX's and TDMQ's `node`, the `<node>` of `$SYS/brokers/<node>/...`).
    pub node: Option<Cow<'a, str>>,
}

impl Event<'_> {
    /// True for a CONNACK that refused the client.
    pub fn is_refused_connack(&self) -> bool {
        self.kind == EventKind::Connack
            && match &self.reason {
                Some(RawReason::Name(name)) => !name.trim().eq_ignore_ascii_case("success"),
                Some(RawReason::Code(code)) => *code != 0,
                None => false,
            }
    }
}

/// Why a message was rejected; the `error` label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("payload is not valid JSON")]
    InvalidJson,
    #[error("payload lacks a required field (clientid, or reason of a disconnect)")]
    MissingField,
    #[error("payload exceeds the size limit")]
    TooLarge,
    #[error("topic or payload is not valid UTF-8")]
    InvalidUtf8,
    #[error("neither the event field nor the topic names a known event")]
    UnknownEvent,
}

impl EventError {
    pub fn label(self) -> &'static str {
        match self {
            EventError::InvalidJson => "invalid_json",
            EventError::MissingField => "missing_field",
            EventError::TooLarge => "too_large",
            EventError::InvalidUtf8 => "invalid_utf8",
            EventError::UnknownEvent => "unknown_event",
        }
    }

    /// In declaration order, so `ALL[e as usize] == e`.
    pub const ALL: [EventError; 5] = [
        EventError::InvalidJson,
        EventError::MissingField,
        EventError::TooLarge,
        EventError::InvalidUtf8,
        EventError::UnknownEvent,
    ];
}

impl crate::core::label_set::Label for EventError {
    const ALL: &'static [EventError] = &EventError::ALL;

    fn index(self) -> usize {
        self as usize
    }

    fn as_label(self) -> &'static str {
        self.label()
    }
}

/// The `kind` label values: a CONNACK event has `other`'s.
impl crate::core::label_set::Label for EventKind {
    const ALL: &'static [EventKind] = &EventKind::COUNTED;

    fn index(self) -> usize {
        self.label_index()
    }

    fn as_label(self) -> &'static str {
        self.label()
    }
}

fn kind_from_event_field(event: &str) -> EventKind {
    match event {
        "client.connected" => EventKind::Connected,
        "client.disconnected" => EventKind::Disconnected,
        "session.subscribed" | "client.subscribed" => EventKind::Subscribed,
        "session.unsubscribed" | "client.unsubscribed" => EventKind::Unsubscribed,
        "client.connack" => EventKind::Connack,
        // AWS IoT Core's eventType; a connect that failed is a refusal
        "connect_failed" => EventKind::Connack,
        "connected" => EventKind::Connected,
        "disconnected" => EventKind::Disconnected,
        "subscribed" => EventKind::Subscribed,
        "unsubscribed" => EventKind::Unsubscribed,
        _ => EventKind::Other,
    }
}

fn kind_from_topic(topic: &str) -> Option<EventKind> {
    // AWS IoT Core: $aws/events/presence/<kind>/<clientId>,
    // $aws/events/subscriptions/<kind>/<clientId>
    if let Some(rest) = topic
        .strip_prefix("$aws/events/presence/")
        .or_else(|| topic.strip_prefix("$aws/events/subscriptions/"))
    {
        return kind_from_topic(rest.split('/').next().unwrap_or(""));
    }
    let last = topic.rsplit('/').next().unwrap_or(topic);
    Some(match last {
        "client_connected" | "connected" => EventKind::Connected,
        "client_disconnected" | "disconnected" => EventKind::Disconnected,
        "session_subscribed" | "client_subscribed" | "subscribed" => EventKind::Subscribed,
        "session_unsubscribed" | "client_unsubscribed" | "unsubscribed" => EventKind::Unsubscribed,
        "client_connack" | "connack" | "connect_failed" => EventKind::Connack,
        _ => return None,
    })
}

fn is_nanomq_status(topic: &str) -> bool {
    topic.starts_with("$SYS/brokers/client_status/")
}

/// The client ID in a `.../clients/<clientid>/<event>` topic, or the last
/// level of an AWS IoT Core lifecycle topic or a NanoMQ status topic.
fn clientid_from_topic(topic: &str) -> Option<&str> {
    if topic.starts_with("$aws/events/") || is_nanomq_status(topic) {
        return topic.rsplit('/').next().filter(|id| !id.is_empty());
    }
    let mut levels = topic.rsplit('/');
    let _event = levels.next()?;
    let id = levels.next()?;
    (levels.next()? == "clients" && !id.is_empty()).then_some(id)
}

/// The `<node>` of EMQX's `$SYS/brokers/<node>/clients/<id>/<event>`.
fn node_from_topic(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix("$SYS/brokers/")?;
    let (node, rest) = rest.split_once('/')?;
    (rest.starts_with("clients/") && !node.is_empty()).then_some(node)
}

/// Parses one message. `payload` must already be within the size limit.
pub fn parse<'a>(topic: &'a [u8], payload: &'a [u8]) -> Result<Event<'a>, EventError> {
    let topic = std::str::from_utf8(topic).map_err(|_| EventError::InvalidUtf8)?;
    let text = std::str::from_utf8(payload).map_err(|_| EventError::InvalidUtf8)?;
    let raw = scanner::scan(text).map_err(|_| EventError::InvalidJson)?;
    build(topic, raw)
}

/// Turns the payload's fields into an event, with the topic as fallback.
fn build<'a>(topic: &'a str, raw: scanner::Fields<'a>) -> Result<Event<'a>, EventError> {
    let kind = match (&raw.event, &raw.status) {
        (Some(event), _) => kind_from_event_field(event),
        // NanoMQ: $SYS/brokers/client_status/<clientid> with a status
        (None, Some(status)) if is_nanomq_status(topic) => match status.as_ref() {
            "online" => EventKind::Connected,
            "offline" => EventKind::Disconnected,
            _ => EventKind::Other,
        },
        (None, _) => kind_from_topic(topic).ok_or(EventError::UnknownEvent)?,
    };

    let clientid = match raw.clientid {
        Some(id) if !id.is_empty() => id,
        _ => Cow::Borrowed(clientid_from_topic(topic).ok_or(EventError::MissingField)?),
    };

    let reason = match (raw.reason, raw.reason_code) {
        (Some(name), _) if !name.trim().is_empty() => Some(RawReason::Name(name)),
        (_, Some(Code::Name(name))) if !name.trim().is_empty() => Some(RawReason::Name(name)),
        (_, Some(Code::Code(code))) => Some(RawReason::Code(code)),
        _ => None,
    };
    if matches!(kind, EventKind::Disconnected | EventKind::Connack) && reason.is_none() {
        return Err(EventError::MissingField);
    }

    let specific = match kind {
        EventKind::Disconnected => raw.disconnected_at,
        EventKind::Connected => raw.connected_at,
        _ => None,
    };
    let time_ms = specific.or(raw.timestamp).or(raw.ts);
    let node = raw
        .node
        .filter(|n| !n.trim().is_empty())
        .or_else(|| node_from_topic(topic).map(Cow::Borrowed));
    let connected_at = match kind {
        EventKind::Disconnected => raw.connected_at,
        _ => None,
    };

    // an address field holds no port: a bare IPv6 one is bracketed, so
    // that its last group is never read as a port
    let peer = raw.peername.filter(|p| !p.is_empty()).or_else(|| {
        raw.ipaddress.filter(|p| !p.is_empty()).map(|ip| {
            if ip.contains(':') && !ip.starts_with('[') {
                Cow::Owned(format!("[{ip}]"))
            } else {
                ip
            }
        })
    });

    Ok(Event {
        kind,
        clientid,
        reason,
        peer,
        time_ms,
        connected_at,
        node,
    })
}

#[cfg(test)]
mod oracle;

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Option<RawReason<'_>> {
        Some(RawReason::Name(Cow::Borrowed(s)))
    }

    #[test]
    fn tdmq_disconnect() {
        let p = br#"{"clientid":"dev-1","username":"u","event":"client.disconnected","reason":"keepalive_timeout","node":"n1","peername":"10.0.0.1:5000","disconnected_at":1717651184811,"timestamp":1717651184812}"#;
        let e = parse(b"$events/client_disconnected", p).unwrap();
        assert_eq!(e.kind, EventKind::Disconnected);
        assert_eq!(e.clientid, "dev-1");
        assert_eq!(e.reason, name("keepalive_timeout"));
        assert_eq!(e.peer.as_deref(), Some("10.0.0.1:5000"));
        assert_eq!(e.time_ms, Some(1717651184811));
        assert!(matches!(e.clientid, Cow::Borrowed(_)));
    }

    #[test]
    fn sys_topic_without_event_field() {
        let p = br#"{"username":"foo","ts":1625572213873,"sockport":1883,"reason":"tcp_closed","proto_ver":4,"proto_name":"MQTT","ipaddress":"127.0.0.1","disconnected_at":1625572213,"clientid":"emqtt-8348"}"#;
        let e = parse(b"$SYS/brokers/emqx@n1/clients/emqtt-8348/disconnected", p).unwrap();
        assert_eq!(e.kind, EventKind::Disconnected);
        assert_eq!(e.peer.as_deref(), Some("127.0.0.1"));
        // seconds are read as seconds
        assert_eq!(e.time_ms, Some(1625572213000));
    }

    #[test]
    fn clientid_falls_back_to_topic() {
        let p = br#"{"reason":"normal"}"#;
        let e = parse(b"$SYS/brokers/n/clients/abc/disconnected", p).unwrap();
        assert_eq!(e.clientid, "abc");
        assert_eq!(
            parse(b"$events/client_disconnected", p),
            Err(EventError::MissingField)
        );
    }

    #[test]
    fn connack_refusal_and_success() {
        let p = br#"{"event":"client.connack","clientid":"c","reason_code":"bad_username_or_password","peername":"1.2.3.4:1"}"#;
        let e = parse(b"evt/connack", p).unwrap();
        assert_eq!(e.kind, EventKind::Connack);
        assert!(e.is_refused_connack());
        let ok = br#"{"event":"client.connack","clientid":"c","reason_code":"success"}"#;
        assert!(!parse(b"evt/connack", ok).unwrap().is_refused_connack());
        let hex = br#"{"client_id":"c","reason_code":"8b","ts":1691225608391}"#;
        let e = parse(b"$SYS/brokers/disconnected", hex).unwrap();
        assert_eq!(e.reason, Some(RawReason::Code(0x8b)));
    }

    #[test]
    fn errors_are_classified() {
        assert_eq!(
            parse(b"t/disconnected", b"{nope"),
            Err(EventError::InvalidJson)
        );
        assert_eq!(
            parse(b"t/disconnected", b"[1,2]"),
            Err(EventError::InvalidJson)
        );
        assert_eq!(
            parse(b"t/disconnected", b"\xff\xfe"),
            Err(EventError::InvalidUtf8)
        );
        assert_eq!(parse(b"t/\xff", b"{}"), Err(EventError::InvalidUtf8));
        assert_eq!(
            parse(b"t/whatever", br#"{"clientid":"c"}"#),
            Err(EventError::UnknownEvent)
        );
        assert_eq!(
            parse(b"t/disconnected", br#"{"clientid":"c"}"#),
            Err(EventError::MissingField)
        );
        assert_eq!(
            parse(b"t/disconnected", br#"{"clientid":"c","reason":"  "}"#),
            Err(EventError::MissingField)
        );
        assert_eq!(
            parse(b"t/disconnected", br#"{"clientid":7,"reason":"normal"}"#),
            Err(EventError::InvalidJson)
        );
    }

    #[test]
    fn unknown_event_field_is_other_not_error() {
        let p =
            br#"{"event":"client.check_authn_complete","clientid":"c","reason_code":"success"}"#;
        assert_eq!(parse(b"x", p).unwrap().kind, EventKind::Other);
    }

    #[test]
    fn escaped_strings_are_owned_and_correct() {
        let p =
            br#"{"event":"client.disconnected","clientid":"a\"b\n","reason":"taken\u0020over"}"#;
        let e = parse(b"x", p).unwrap();
        assert_eq!(e.clientid, "a\"b\n");
        assert_eq!(e.reason, name("taken over"));
    }

    #[test]
    fn odd_timestamps_do_not_fail_the_event() {
        for ts in ["null", "true", "\"soon\"", "-5", "1e300", "1717651184.5"] {
            let p = format!(r#"{{"event":"client.connected","clientid":"c","timestamp":{ts}}}"#);
            let e = parse(b"x", p.as_bytes()).unwrap();
            let want = (ts == "1717651184.5").then_some(1717651184500);
            assert_eq!(e.time_ms, want, "{ts}");
        }
    }

    #[test]
    fn aws_iot_core_lifecycle_events() {
        let topic = b"$aws/events/presence/disconnected/sensor-1";
        let payload = br#"{"clientId":"sensor-1","timestamp":1717651190811,"eventType":"disconnected","clientInitiatedDisconnect":false,"disconnectReason":"DUPLICATE_CLIENTID","versionNumber":3}"#;
        let e = parse(topic, payload).unwrap();
        assert_eq!(e.kind, EventKind::Disconnected);
        assert_eq!(e.clientid, "sensor-1");
        assert_eq!(e.time_ms, Some(1_717_651_190_811));
        assert_eq!(
            e.reason,
            Some(RawReason::Name(Cow::Borrowed("DUPLICATE_CLIENTID")))
        );
        // the kind and the client ID also come from the topic alone
        let bare = br#"{"disconnectReason":"CONNECTION_LOST"}"#;
        let e = parse(topic, bare).unwrap();
        assert_eq!(
            (e.kind, &*e.clientid),
            (EventKind::Disconnected, "sensor-1")
        );
        let e = parse(
            b"$aws/events/presence/connected/sensor-1",
            br#"{"clientId":"sensor-1","eventType":"connected","ipAddress":"192.0.2.10"}"#,
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::Connected);
        assert_eq!(e.peer.as_deref(), Some("192.0.2.10"));
        let e = parse(b"$aws/events/subscriptions/unsubscribed/sensor-1", b"{}").unwrap();
        assert_eq!(e.kind, EventKind::Unsubscribed);
        // a connect attempt that failed: a refused connection, with its
        // address (AWS IoT developer guide, "Connect attempt failure event")
        let e = parse(
            b"$aws/events/presence/connect_failed/sensor-1",
            include_bytes!("../../../tests/fixtures/aws/connect_failed_authorization_failed.json"),
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::Connack);
        assert!(e.is_refused_connack());
        assert_eq!(
            e.reason,
            Some(RawReason::Name(Cow::Borrowed("AUTHORIZATION_FAILED")))
        );
        assert_eq!(e.peer.as_deref(), Some("192.0.2.10"));
        assert_eq!(
            crate::core::reasons::classify("AUTHORIZATION_FAILED"),
            crate::core::reasons::Reason::NotAuthorized
        );
    }

    #[test]
    fn every_documented_aws_disconnect_reason_maps() {
        use crate::core::reasons::{classify, Reason};
        for (raw, want) in [
            ("AUTH_ERROR", Reason::NotAuthenticated),
            ("CLIENT_INITIATED_DISCONNECT", Reason::Normal),
            ("CLIENT_ERROR", Reason::Other),
            ("CONNECTION_LOST", Reason::TcpClosed),
            ("DUPLICATE_CLIENTID", Reason::Takeovered),
            ("FORBIDDEN_ACCESS", Reason::NotAuthorized),
            ("MQTT_KEEP_ALIVE_TIMEOUT", Reason::KeepaliveTimeout),
            ("SERVER_ERROR", Reason::ServerInternalError),
            ("SERVER_INITIATED_DISCONNECT", Reason::GoAway),
            ("THROTTLED", Reason::TooManyConnection),
            ("WEBSOCKET_TTL_EXPIRATION", Reason::GoAway),
            ("CUSTOMAUTH_TTL_EXPIRATION", Reason::AuthenticationExpired),
            ("API_INITIATED_DISCONNECT", Reason::Kicked),
            ("UNKNOWN", Reason::Other),
        ] {
            assert_eq!(classify(raw), want, "{raw}");
        }
    }

    #[test]
    fn nanomq_events() {
        let e = parse(
            b"$SYS/brokers/disconnected",
            br#"{"username":"hello","ts":1691225608391,"reason_code":"8b","client_id":"nanomq-8a2a5c2e","IPv4":"127.0.0.1"}"#,
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::Disconnected);
        assert_eq!(e.clientid, "nanomq-8a2a5c2e");
        assert_eq!(e.reason, Some(RawReason::Code(0x8b)));
        assert_eq!(e.peer.as_deref(), Some("127.0.0.1"));
        assert_eq!(e.time_ms, Some(1_691_225_608_391));
        let e = parse(
            b"$SYS/brokers/connected",
            br#"{"username":"hello","ts":1691225605933,"proto_name":"MQTT","keepalive":60,"return_code":"0","proto_ver":4,"client_id":"nanomq-8a2a5c2e","clean_start":1,"IPv4":"127.0.0.1"}"#,
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::Connected);
        // the newer per-client status topic
        let topic = b"$SYS/brokers/client_status/dev-9";
        let e = parse(topic, br#"{"status":"offline","reason_code":"8d"}"#).unwrap();
        assert_eq!((e.kind, &*e.clientid), (EventKind::Disconnected, "dev-9"));
        assert_eq!(e.reason, Some(RawReason::Code(0x8d)));
        let e = parse(topic, br#"{"status":"online"}"#).unwrap();
        assert_eq!(e.kind, EventKind::Connected);
        assert_eq!(
            parse(topic, br#"{"status":"offline"}"#),
            Err(EventError::MissingField)
        );
        // elsewhere `status` is just a field, of any type
        let other = br#"{"event":"client.disconnected","clientid":"c","reason":"normal","status":{"a":[1]}}"#;
        assert_eq!(
            parse(b"$events/client_disconnected", other).unwrap().kind,
            EventKind::Disconnected
        );
    }

    mod differential {
        use super::super::oracle;
        use crate::core::event::scanner;
        use proptest::prelude::*;

        /// JSON-ish text: mostly objects with the fields we read (of any
        /// type), plus noise that is often invalid.
        fn value() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                Just("null".to_string()),
                Just("true".to_string()),
                Just("false".to_string()),
                any::<i64>().prop_map(|v| v.to_string()),
                any::<u64>().prop_map(|v| v.to_string()),
                (0u64..3_000_000_000_000u64).prop_map(|v| v.to_string()),
                (0u64..3_000_000_000u64, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
                Just("1e3".to_string()),
                Just("-0".to_string()),
                Just("01".to_string()),
                Just("1.".to_string()),
                "[a-z0-9 _.:-]{0,12}".prop_map(|s| format!("\"{s}\"")),
                Just(r#""esc\"aped\\ \u00e9 \ud83d\ude00""#.to_string()),
                Just(r#""lone \ud800""#.to_string()),
                Just("\"ctrl\u{1}char\"".to_string()),
                Just(r#""bad \x escape""#.to_string()),
                Just("\"  1717651184811 \"".to_string()),
                Just(r#""8b""#.to_string()),
                Just(r#""0x8E""#.to_string()),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4)
                        .prop_map(|v| format!("[{}]", v.join(","))),
                    prop::collection::vec(("[a-z]{1,4}", inner), 0..4).prop_map(|kv| {
                        let body: Vec<String> = kv
                            .into_iter()
                            .map(|(k, v)| format!("\"{k}\":{v}"))
                            .collect();
                        format!("{{{}}}", body.join(","))
                    }),
                ]
            })
        }

        fn object() -> impl Strategy<Value = String> {
            let key = prop_oneof![
                Just("clientid"),
                Just("client_id"),
                Just("clientId"),
                Just("event"),
                Just("eventType"),
                Just("reason"),
                Just("disconnectReason"),
                Just("ipAddress"),
                Just("IPv4"),
                Just("status"),
                Just("reason_code"),
                Just("peername"),
                Just("ipaddress"),
                Just("disconnected_at"),
                Just("connected_at"),
                Just("timestamp"),
                Just("ts"),
                Just("other"),
                Just("nested"),
                Just("cl\\u0069entid"),
            ];
            let ws = prop_oneof![Just(""), Just(" "), Just("\n\t"), Just("\r ")];
            (
                prop::collection::vec((key, value(), ws.clone()), 0..8),
                ws,
                any::<u8>(),
            )
                .prop_map(|(fields, pad, noise)| {
                    let body: Vec<String> = fields
                        .into_iter()
                        .map(|(k, v, w)| format!("{w}\"{k}\"{w}:{w}{v}{w}"))
                        .collect();
                    let mut text = format!("{pad}{{{}}}{pad}", body.join(","));
                    // sometimes break it
                    match noise % 16 {
                        0 => {
                            text.pop();
                        }
                        1 => text.push_str(" x"),
                        2 => text.insert(0, '['),
                        3 => text = text.replace(':', ""),
                        _ => {}
                    }
                    text
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]
            /// The scanner accepts what serde_json accepted and reads the same fields.
            #[test]
            fn scanner_agrees_with_serde_json(text in object()) {
                let ours = scanner::scan(&text).ok();
                let theirs = oracle::scan(&text).ok();
                prop_assert_eq!(ours, theirs, "{}", text);
            }

            /// Arbitrary strings never panic the scanner.
            #[test]
            fn scanner_never_panics(text in ".{0,64}") {
                let _ = scanner::scan(&text);
            }
        }
    }
}
