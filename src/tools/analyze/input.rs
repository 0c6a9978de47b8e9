//! The line formats `analyze` reads, detected per line:
//! - JSON lines: one event object per line (TDMQ / EMQX payloads);
//! - EMQX rule-engine sink output: an object with `payload` (an object, or a
//!   string holding JSON) and optionally `topic`;
//! - `mosquitto_sub -v` output: `<topic> <payload>`;
//! - Mosquitto's own log, as `log_dest file` writes it or as `journalctl -u
//!   mosquitto` prints it (read as if it came on `$SYS/broker/log/N`).
//!
//! Lines are read with a bound on their length, so a multi-gigabyte file or
//! a line without an end is never loaded whole.

use std::io::{self, BufRead};

use crate::core::event::mosquitto_log;

/// One line's event payload: borrowed from the line, or unwrapped from a
/// sink record.
pub enum Payload<'a> {
    Borrowed(&'a [u8]),
    Owned(String),
}

/// Splits one line into (topic, payload) by its format.
pub fn split(line: &[u8]) -> (String, Payload<'_>) {
    if let Some(text) = mosquitto_line(line) {
        return (MOSQUITTO_TOPIC.to_string(), Payload::Borrowed(text));
    }
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
                    let payload = match payload {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    return (topic, Payload::Owned(payload));
                }
            }
        }
        return (String::new(), Payload::Borrowed(line));
    }
    match line.iter().position(|b| *b == b' ') {
        Some(i) => (
            String::from_utf8_lossy(&line[..i]).into_owned(),
            Payload::Borrowed(line[i + 1..].trim_ascii()),
        ),
        None => (String::new(), Payload::Borrowed(line)),
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

/// Reads one line into `buf`, keeping at most `cap` bytes; returns the bytes
/// consumed and whether the line was longer than `cap`.
pub fn read_line_bounded<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut truncated = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok((consumed, truncated));
        }
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = cap.saturating_sub(buf.len());
        if take > room {
            truncated = true;
        }
        buf.extend_from_slice(&chunk[..take.min(room)]);
        r.consume(take);
        consumed += take;
        if done {
            return Ok((consumed, truncated));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines() {
        let data = b"short\nthis line is too long\nok\nend";
        let mut r = io::BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        loop {
            buf.clear();
            let (n, cut) = read_line_bounded(&mut r, &mut buf, 8).unwrap();
            if n == 0 {
                break;
            }
            lines.push((String::from_utf8(buf.clone()).unwrap(), cut));
        }
        assert_eq!(
            lines,
            vec![
                ("short\n".into(), false),
                ("this lin".into(), true),
                ("ok\n".into(), false),
                ("end".into(), false)
            ]
        );
    }

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
