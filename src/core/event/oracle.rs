//! The serde_json implementation the event parser used before
//! [`super::scanner::scan`]: the oracle the scanner is compared with by a
//! differential property test (test builds only).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::core::event::scanner::{self, Code, Fields};

/// Payload fields we read; everything else is skipped without allocation.
#[derive(Deserialize, Default)]
struct RawEvent<'a> {
    #[serde(borrow, default, alias = "client_id", alias = "clientId")]
    clientid: Option<Str<'a>>,
    #[serde(borrow, default, alias = "eventType")]
    event: Option<Str<'a>>,
    #[serde(borrow, default, alias = "disconnectReason")]
    reason: Option<Str<'a>>,
    #[serde(borrow, default)]
    reason_code: Option<ReasonCodeField<'a>>,
    #[serde(borrow, default)]
    peername: Option<Str<'a>>,
    #[serde(borrow, default, alias = "ipAddress", alias = "IPv4", alias = "IPv6")]
    ipaddress: Option<Str<'a>>,
    #[serde(borrow, default)]
    status: Option<Lenient<'a>>,
    #[serde(borrow, default)]
    node: Option<Lenient<'a>>,
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
        Millis(scanner::millis(v))
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

/// A string, or any other value read as absent (`status`).
struct Lenient<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Lenient<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lenient<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Lenient(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Lenient(None))
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
        ReasonCodeField::Name(name)
    }
}

pub fn scan(text: &str) -> Result<Fields<'_>, ()> {
    let raw: RawEvent<'_> = serde_json::from_str(text).map_err(|_| ())?;
    Ok(Fields {
        clientid: raw.clientid.map(|s| s.0),
        event: raw.event.map(|s| s.0),
        reason: raw.reason.map(|s| s.0),
        reason_code: raw.reason_code.map(|c| match c {
            ReasonCodeField::Name(n) => scanner::code_from_name(n),
            ReasonCodeField::Code(c) => Code::Code(c),
            ReasonCodeField::Invalid => Code::Invalid,
        }),
        peername: raw.peername.map(|s| s.0),
        ipaddress: raw.ipaddress.map(|s| s.0),
        status: raw.status.and_then(|s| s.0),
        node: raw.node.and_then(|s| s.0),
        disconnected_at: raw.disconnected_at.and_then(|m| m.0),
        connected_at: raw.connected_at.and_then(|m| m.0),
        timestamp: raw.timestamp.and_then(|m| m.0),
        ts: raw.ts.and_then(|m| m.0),
    })
}
