//! The event model and the parser for broker lifecycle events.
//!
//! [`parse`] turns one MQTT message (topic and payload bytes) into an
//! [`Event`] that borrows from the payload where it can. It understands the
//! Tencent Cloud TDMQ for MQTT `$events/...` JSON, EMQX 5 rule-engine event
//! JSON (including `client.connack`), and EMQX's `$SYS/brokers/<node>/clients/
//! <clientid>/<event>` messages. Every failure is one of the closed set of
//! [`EventError`] kinds, which are also the `error` label values.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

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

    /// Position of [`EventKind::label`] in [`EventKind::LABELS`].
    pub fn label_index(self) -> usize {
        match self {
            EventKind::Connected => 0,
            EventKind::Disconnected => 1,
            EventKind::Subscribed => 2,
            EventKind::Unsubscribed => 3,
            EventKind::Connack | EventKind::Other => 4,
        }
    }

    pub const LABELS: [&'static str; 5] = [
        "connected",
        "disconnected",
        "subscribed",
        "unsubscribed",
        "other",
    ];
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

/// Payload fields we read; everything else is skipped without allocation.
#[derive(Deserialize, Default)]
struct RawEvent<'a> {
    #[serde(borrow, default, alias = "client_id")]
    clientid: Option<Str<'a>>,
    #[serde(borrow, default)]
    event: Option<Str<'a>>,
    #[serde(borrow, default)]
    reason: Option<Str<'a>>,
    #[serde(borrow, default)]
    reason_code: Option<ReasonCodeField<'a>>,
    #[serde(borrow, default)]
    peername: Option<Str<'a>>,
    #[serde(borrow, default)]
    ipaddress: Option<Str<'a>>,
    #[serde(default)]
    disconnected_at: Option<Millis>,
    #[serde(default)]
    connected_at: Option<Millis>,
    #[serde(default)]
    timestamp: Option<Millis>,
    #[serde(default)]
    ts: Option<Millis>,
}

/// A string that borrows from the payload unless it has escapes (serde's own
/// `Option<Cow<str>>` always allocates).
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A timestamp: integer or float, milliseconds, or seconds when below 10^11.
struct Millis(Option<i64>);

impl Millis {
    fn from_f64(v: f64) -> Self {
        if !v.is_finite() || v <= 0.0 {
            return Millis(None);
        }
        let ms = if v < 1e11 { v * 1000.0 } else { v };
        // Anything past year 9999 is garbage, not a time.
        if ms > 253_402_300_799_000.0 {
            return Millis(None);
        }
        Millis(Some(ms as i64))
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
                Ok(Millis::from_f64(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
                Ok(Millis::from_f64(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Millis, E> {
                Ok(Millis::from_f64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Millis, E> {
                Ok(v.trim()
                    .parse::<f64>()
                    .map_or(Millis(None), Millis::from_f64))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Millis, E> {
                Ok(Millis(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Millis, E> {
                Ok(Millis(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `reason_code`: a name (`"success"`, `"bad_username_or_password"`), a hex
/// string (`"8b"`, as NanoMQ writes it) or a number.
enum ReasonCodeField<'a> {
    Name(Cow<'a, str>),
    Code(u8),
    Invalid,
}

impl<'de: 'a, 'a> Deserialize<'de> for ReasonCodeField<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ReasonCodeField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a reason code")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(u8::try_from(v).map_or(ReasonCodeField::Invalid, ReasonCodeField::Code))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(u8::try_from(v).map_or(ReasonCodeField::Invalid, ReasonCodeField::Code))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ReasonCodeField::Invalid)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ReasonCodeField::from_name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ReasonCodeField::from_name(Cow::Owned(v.to_owned())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ReasonCodeField::Invalid)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ReasonCodeField::Invalid)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'a> ReasonCodeField<'a> {
    fn from_name(name: Cow<'a, str>) -> Self {
        let trimmed = name.trim();
        let hex = trimmed.strip_prefix("0x").unwrap_or(trimmed);
        if !hex.is_empty() && hex.len() <= 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Ok(code) = u8::from_str_radix(hex, 16) {
                return ReasonCodeField::Code(code);
            }
        }
        ReasonCodeField::Name(name)
    }
}

fn kind_from_event_field(event: &str) -> EventKind {
    match event {
        "client.connected" => EventKind::Connected,
        "client.disconnected" => EventKind::Disconnected,
        "session.subscribed" | "client.subscribed" => EventKind::Subscribed,
        "session.unsubscribed" | "client.unsubscribed" => EventKind::Unsubscribed,
        "client.connack" => EventKind::Connack,
        _ => EventKind::Other,
    }
}

fn kind_from_topic(topic: &str) -> Option<EventKind> {
    let last = topic.rsplit('/').next().unwrap_or(topic);
    Some(match last {
        "client_connected" | "connected" => EventKind::Connected,
        "client_disconnected" | "disconnected" => EventKind::Disconnected,
        "session_subscribed" | "client_subscribed" | "subscribed" => EventKind::Subscribed,
        "session_unsubscribed" | "client_unsubscribed" | "unsubscribed" => EventKind::Unsubscribed,
        "client_connack" | "connack" => EventKind::Connack,
        _ => return None,
    })
}

/// The client ID in a `.../clients/<clientid>/<event>` topic.
fn clientid_from_topic(topic: &str) -> Option<&str> {
    let mut levels = topic.rsplit('/');
    let _event = levels.next()?;
    let id = levels.next()?;
    (levels.next()? == "clients" && !id.is_empty()).then_some(id)
}

/// Parses one message. `payload` must already be within the size limit.
pub fn parse<'a>(topic: &'a [u8], payload: &'a [u8]) -> Result<Event<'a>, EventError> {
    let topic = std::str::from_utf8(topic).map_err(|_| EventError::InvalidUtf8)?;
    let text = std::str::from_utf8(payload).map_err(|_| EventError::InvalidUtf8)?;
    let raw: RawEvent<'a> = serde_json::from_str(text).map_err(|_| EventError::InvalidJson)?;

    let kind = match &raw.event {
        Some(event) => kind_from_event_field(&event.0),
        None => kind_from_topic(topic).ok_or(EventError::UnknownEvent)?,
    };

    let clientid = match raw.clientid {
        Some(Str(id)) if !id.is_empty() => id,
        _ => Cow::Borrowed(clientid_from_topic(topic).ok_or(EventError::MissingField)?),
    };

    let reason = match (raw.reason, raw.reason_code) {
        (Some(Str(name)), _) if !name.trim().is_empty() => Some(RawReason::Name(name)),
        (_, Some(ReasonCodeField::Name(name))) if !name.trim().is_empty() => {
            Some(RawReason::Name(name))
        }
        (_, Some(ReasonCodeField::Code(code))) => Some(RawReason::Code(code)),
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
    let time_ms = [specific, raw.timestamp, raw.ts]
        .into_iter()
        .flatten()
        .find_map(|m| m.0);

    let peer = raw
        .peername
        .filter(|p| !p.0.is_empty())
        .or(raw.ipaddress.filter(|p| !p.0.is_empty()))
        .map(|p| p.0);

    Ok(Event {
        kind,
        clientid,
        reason,
        peer,
        time_ms,
    })
}

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
}
