//! Events written one a line, as log files and captures hold them; each
//! line's format is detected by itself:
//! - JSON lines: one event object per line (TDMQ / EMQX payloads);
//! - EMQX rule-engine file-sink records: an object with `payload` (an
//!   object, or a string holding JSON) and optionally `topic`;
//! - `mosquitto_sub -v` output: `<topic> <payload>`;
//! - Mosquitto's own log, as `log_dest file` writes it or as `journalctl -u
//!   mosquitto` prints it (read as if it came on `$SYS/broker/log/N`).
//!
//! `analyze` and the file source both read lines through [`split`], so a
//! line means the same to both.

use std::borrow::Cow;

use super::{mosquitto_log, Format};

/// One line's event payload: borrowed from the line, or unwrapped from a
/// sink record.
pub enum Payload<'a> {
    Borrowed(&'a [u8]),
    Owned(String),
}

/// Reads one line as (its format, the topic, the payload).
pub fn read(line: &[u8]) -> (Format, Cow<'_, str>, Payload<'_>) {
    if let Some(text) = mosquitto_line(line) {
        return (
            Format::MosquittoLog,
            Cow::Borrowed(MOSQUITTO_TOPIC),
            Payload::Borrowed(text),
        );
    }
    let (topic, payload) = split_event(line);
    (Format::of_topic(topic.as_bytes()), topic, payload)
}

/// Splits one line into (topic, payload) by its format.
pub fn split(line: &[u8]) -> (Cow<'_, str>, Payload<'_>) {
    let (_, topic, payload) = read(line);
    (topic, payload)
}

/// A line that is not Mosquitto's own log: (topic, payload).
fn split_event(line: &[u8]) -> (Cow<'_, str>, Payload<'_>) {
    if line.first() == Some(&b'{') {
        // A sink record wrapping the event; cheap test before a full parse.
        if contains(line, b"\"payload\"") {
            if let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice(line) {
                if let Some(payload) = obj.get("payload") {
                    let topic = obj
                        .get("topic")
                        .and_then(|t| t.as_str())
                        .unwrap_or("")
                        .to_string();
                    let topic = Cow::Owned(topic);
                    let payload = match payload {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    return (topic, Payload::Owned(payload));
                }
            }
        }
        return (Cow::Borrowed(""), Payload::Borrowed(line));
    }
    match line.iter().position(|b| *b == b' ') {
        Some(i) => (
            String::from_utf8_lossy(&line[..i]),
            Payload::Borrowed(line[i + 1..].trim_ascii()),
        ),
        None => (Cow::Borrowed(""), Payload::Borrowed(line)),
    }
}

/// The topic a Mosquitto log line from a file is read as.
const MOSQUITTO_TOPIC: &str = "$SYS/broker/log/N";

/// A line of Mosquitto's own log, as `log_dest file` writes it
/// (`1795837147: Client x disconnected.`) or as `journalctl -u mosquitto`
/// prints it (`Nov 28 01:02:03 host mosquitto[812]: ...`, with or without
/// Mosquitto's own time): the log text, else `None`.
fn mosquitto_line(line: &[u8]) -> Option<&[u8]> {
    let text = std::str::from_utf8(line).ok()?;
    if let Some(at) = text.find(" mosquitto[") {
        let rest = &text[at..];
        let body = rest.find("]: ").map(|i| &rest[i + 3..])?;
        return Some(body.as_bytes());
    }
    mosquitto_log::has_time_prefix(text).then_some(line)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_each_format() {
        let (t, p) = split(br#"$events/client_disconnected {"a":1}"#);
        assert_eq!(t, "$events/client_disconnected");
        assert!(matches!(p, Payload::Borrowed(b"{\"a\":1}")));
        let (t, p) = split(br#"{"topic":"x/y","payload":"{\"a\":1}"}"#);
        assert_eq!(t, "x/y");
        assert!(matches!(p, Payload::Owned(ref s) if s == "{\"a\":1}"));
        let (t, p) = split(br#"{"payload":{"a":1}}"#);
        assert_eq!(t, "");
        assert!(matches!(p, Payload::Owned(ref s) if s == "{\"a\":1}"));
        let (t, _) = split(br#"{"event":"client.connected"}"#);
        assert_eq!(t, "");
    }
}
