//! Azure Event Grid's MQTT broker client lifecycle events, as its webhook
//! delivers them, in either schema: the Event Grid schema (`eventType`,
//! `eventTime`, `data`) and CloudEvents 1.0 (`type`, `time`, `data`), as an
//! array or (CloudEvents' `application/cloudevents+json`) one object.
//!
//! [`read`] turns a body into [`Item`]s: the subscription's validation
//! event, a client's session connected or disconnected, or something else.
//! A session event is read into the pipeline's [`Event`], so Event Grid
//! events feed the same table and flapping detection: the client ID is `clientAuthenticationName`
//! (the name a takeover fights over), and `disconnectionReason`
//! (`ClientInitiatedDisconnect`, ...) is written in snake case
//! (`client_initiated_disconnect`), which the reference table maps
//! ([`REASONS`] lists all eleven with their rows, for the README).
//! Pure: no I/O, no clock.

use std::borrow::Cow;

use serde::Deserialize;

use super::{Event, EventKind, RawReason};
use serde_json::value::RawValue;

/// `Microsoft.EventGrid.MQTTClientSessionConnected`.
const CONNECTED: &str = "Microsoft.EventGrid.MQTTClientSessionConnected";
/// `Microsoft.EventGrid.MQTTClientSessionDisconnected`.
const DISCONNECTED: &str = "Microsoft.EventGrid.MQTTClientSessionDisconnected";
/// The subscription's handshake in the Event Grid schema.
const VALIDATION: &str = "Microsoft.EventGrid.SubscriptionValidationEvent";

/// Every documented `disconnectionReason`, as Event Grid writes it
/// (azure-docs `mqtt-client-life-cycle-events.md`; the SDK enum
/// `KnownEventGridMqttClientDisconnectionReason` has the same eleven).
pub const REASONS: [&str; 11] = [
    "ClientAuthenticationError",
    "ClientAuthorizationError",
    "ClientError",
    "ClientInitiatedDisconnect",
    "ConnectionLost",
    "IpForbidden",
    "QuotaExceeded",
    "ServerError",
    "ServerInitiatedDisconnect",
    "SessionOverflow",
    "SessionTakenOver",
];

/// One event of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    /// The subscription's validation: answer `{"validationResponse": code}`.
    Validation { code: Cow<'a, str> },
    /// A client's session event, with the event's `id` (for dropping
    /// repeats), read into the pipeline's [`Event`].
    Session {
        id: Option<Cow<'a, str>>,
        event: Event<'a>,
    },
    /// Any other event type (client created, deleted, ...): not counted.
    Other,
    /// Not an event: counted as an error by the pipeline.
    Invalid,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "eventType", default, borrow)]
    event_type: Option<&'a str>,
    #[serde(rename = "type", default, borrow)]
    cloud_type: Option<&'a str>,
    #[serde(rename = "eventTime", default, borrow)]
    event_time: Option<&'a str>,
    #[serde(default, borrow)]
    time: Option<&'a str>,
    #[serde(default, borrow)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "clientAuthenticationName", default, borrow)]
    client: Option<Cow<'a, str>>,
    #[serde(rename = "disconnectionReason", default, borrow)]
    reason: Option<Cow<'a, str>>,
    #[serde(rename = "validationCode", default, borrow)]
    validation_code: Option<Cow<'a, str>>,
}

/// The events of a body, or `None` when it is not JSON at all.
pub fn read(body: &[u8]) -> Option<Vec<Item<'_>>> {
    let body = body.trim_ascii();
    // one pass when every element is an envelope (nearly always); element
    // by element otherwise, so one bad element does not lose the others
    if body.first() == Some(&b'[') {
        let mut de = serde_json::Deserializer::from_slice(body);
        if let Ok(items) = serde::Deserializer::deserialize_seq(&mut de, Items) {
            if de.end().is_ok() {
                return Some(items);
            }
        }
    }
    let elements: Vec<&RawValue> = match body.first() {
        Some(b'[') => serde_json::from_slice(body).ok()?,
        Some(b'{') => vec![serde_json::from_slice(body).ok()?],
        _ => return None,
    };
    Some(elements.into_iter().map(|e| item(e.get())).collect())
}

/// Reads an array's envelopes into items as it goes: no vector of
/// envelopes is built.
struct Items;

impl<'de> serde::de::Visitor<'de> for Items {
    type Value = Vec<Item<'de>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> Result<Vec<Item<'de>>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(5000));
        while let Some(envelope) = seq.next_element::<Envelope<'de>>()? {
            items.push(item_of(envelope));
        }
        Ok(items)
    }
}

fn item(element: &str) -> Item<'_> {
    match serde_json::from_str::<Envelope<'_>>(element) {
        Ok(envelope) => item_of(envelope),
        Err(_) => Item::Invalid,
    }
}

fn item_of(envelope: Envelope<'_>) -> Item<'_> {
    let Some(kind) = envelope.event_type.or(envelope.cloud_type) else {
        return Item::Invalid;
    };
    let time = envelope.event_time.or(envelope.time).and_then(time_ms);
    match (kind, envelope.data) {
        (
            VALIDATION,
            Some(Data {
                validation_code: Some(code),
                ..
            }),
        ) => Item::Validation { code },
        (
            CONNECTED | DISCONNECTED,
            Some(Data {
                client: Some(client),
                reason,
                ..
            }),
        ) if !client.is_empty() => {
            let (kind, reason) = if kind == CONNECTED {
                (EventKind::Connected, None)
            } else {
                let reason = snake_case(reason.as_deref().unwrap_or(""));
                (
                    EventKind::Disconnected,
                    Some(RawReason::Name(Cow::Owned(reason))),
                )
            };
            Item::Session {
                id: envelope.id,
                event: Event {
                    kind,
                    clientid: client,
                    reason,
                    peer: None,
                    time_ms: time,
                    connected_at: None,
                    node: None,
                },
            }
        }
        (CONNECTED | DISCONNECTED | VALIDATION, _) => Item::Invalid,
        _ => Item::Other,
    }
}

/// `ClientInitiatedDisconnect` as `client_initiated_disconnect`.
pub fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `2023-07-29T01:27:40.2446871Z` as milliseconds since the epoch (UTC;
/// an offset other than `Z` is not read, and the arrival time is used).
fn time_ms(text: &str) -> Option<i64> {
    let seconds = super::mosquitto_log::iso_millis(text.get(..19)?)?;
    let rest = text.get(19..)?;
    let (fraction, zone) = match rest.strip_prefix('.') {
        Some(f) => f.split_at(f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len())),
        None => ("", rest),
    };
    if zone != "Z" {
        return None;
    }
    let ms: i64 = format!("{fraction:0<3}").get(..3)?.parse().ok()?;
    Some(seconds + ms)
}

/// The README's table of Event Grid's reasons and the rows they count
/// under.
pub fn markdown_reasons() -> String {
    let mut out = String::from("| `disconnectionReason` | counted as |\n|---|---|\n");
    for r in REASONS {
        let row = crate::core::reasons::classify(&snake_case(r)).as_str();
        out.push_str(&format!("| `{r}` | `{row}` |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::reasons::{classify, Reason};

    /// The CloudEvents sample of azure-docs
    /// `articles/event-grid/mqtt-client-life-cycle-events.md`.
    const CLOUD: &str = r#"[{"specversion":"1.0","id":"e30e8e0c-b5a8-4c2b-9b4e-6d4b0e1c0a11","time":"2023-07-29T01:27:40.2446871Z","type":"Microsoft.EventGrid.MQTTClientSessionDisconnected","source":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myrg/providers/Microsoft.EventGrid/namespaces/myns","subject":"clients/client1/sessions/session1","data":{"namespaceName":"myns","clientAuthenticationName":"client1","clientSessionName":"session1","sequenceNumber":1,"disconnectionReason":"ClientInitiatedDisconnect"}}]"#;

    #[test]
    fn both_schemas_read_into_the_same_payload() {
        let items = read(CLOUD.as_bytes()).unwrap_or_default();
        let Some(Item::Session { id, event }) = items.first() else {
            panic!("{items:?}")
        };
        assert_eq!(id.as_deref(), Some("e30e8e0c-b5a8-4c2b-9b4e-6d4b0e1c0a11"));
        assert_eq!(
            event,
            &Event {
                kind: EventKind::Disconnected,
                clientid: "client1".into(),
                reason: Some(RawReason::Name("client_initiated_disconnect".into())),
                peer: None,
                time_ms: Some(1_690_594_060_244),
                connected_at: None,
                node: None,
            }
        );
        let grid = r#"[{"id":"1","eventType":"Microsoft.EventGrid.MQTTClientSessionConnected","eventTime":"2023-07-29T01:27:40Z","subject":"clients/c\"2/sessions/s","topic":"/subscriptions/x","dataVersion":"1","metadataVersion":"1","data":{"namespaceName":"myns","clientAuthenticationName":"c\"2","clientSessionName":"s","sequenceNumber":3}}]"#;
        assert_eq!(
            read(grid.as_bytes()),
            Some(vec![Item::Session {
                id: Some("1".into()),
                event: Event {
                    kind: EventKind::Connected,
                    clientid: "c\"2".into(),
                    reason: None,
                    peer: None,
                    time_ms: Some(1_690_594_060_000),
                    connected_at: None,
                    node: None,
                }
            }])
        );
        // one CloudEvent, not in an array
        let one = &CLOUD[1..CLOUD.len() - 1];
        assert_eq!(read(one.as_bytes()).map(|i| i.len()), Some(1));
    }

    #[test]
    fn validation_other_events_and_bad_elements() {
        let body = r#"[{"id":"2d1781af","topic":"/subscriptions/x","subject":"","data":{"validationCode":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6","validationUrl":"https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/myeventsub/validate?id=0000&t=2022-10-28T04:23:35.1981776Z"},"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","eventTime":"2022-10-28T04:23:35.1981776Z","metadataVersion":"1","dataVersion":"2"}]"#;
        assert_eq!(
            read(body.as_bytes()),
            Some(vec![Item::Validation {
                code: "512d38b6-c7b8-40c8-89fe-f46f9e9622b6".into()
            }])
        );
        let mixed = r#"[{"eventType":"Microsoft.EventGrid.MQTTClientDeleted","data":{}}, 7, {"type":"Microsoft.EventGrid.MQTTClientSessionDisconnected","data":{"clientAuthenticationName":""}}]"#;
        assert_eq!(
            read(mixed.as_bytes()),
            Some(vec![Item::Other, Item::Invalid, Item::Invalid])
        );
        assert_eq!(read(b"nope"), None);
    }

    /// Each documented reason has its row, decided from its meaning.
    #[test]
    fn every_documented_reason_has_its_row() {
        let rows: Vec<(&str, Reason)> = REASONS
            .iter()
            .map(|r| (*r, classify(&snake_case(r))))
            .collect();
        assert_eq!(
            rows,
            [
                ("ClientAuthenticationError", Reason::NotAuthenticated),
                ("ClientAuthorizationError", Reason::NotAuthorized),
                ("ClientError", Reason::Other),
                ("ClientInitiatedDisconnect", Reason::Normal),
                ("ConnectionLost", Reason::TcpClosed),
                ("IpForbidden", Reason::NotAuthorized),
                ("QuotaExceeded", Reason::TooManyConnection),
                ("ServerError", Reason::ServerInternalError),
                ("ServerInitiatedDisconnect", Reason::GoAway),
                ("SessionOverflow", Reason::Other),
                ("SessionTakenOver", Reason::Takeovered),
            ]
        );
        assert_eq!(time_ms("2023-07-29T01:27:40.2Z"), Some(1_690_594_060_200));
        assert_eq!(time_ms("2023-07-29T01:27:40+02:00"), None);
    }
}
