//! Mosquitto's own log as an event source.
//!
//! With `log_dest topic` in mosquitto.conf, Mosquitto publishes each log
//! line (except debug) on `$SYS/broker/log/<level>`, e.g.
//! `1795826347: Client dup already connected, closing old connection.`.
//! [`parse`] reads the connection lines of Mosquitto 2.0 (`src/loop.c`
//! `do_disconnect`, `src/handle_connect.c`; each checked against Debian's
//! mosquitto 2.0.11) into an [`Event`] whose reason is a canonical name, and
//! says `None` for every other line, which the pipeline counts as ignored,
//! never as an error.
//!
//! A line may start with the default epoch-seconds prefix, an ISO time
//! (`log_timestamp_format %Y-%m-%dT%H:%M:%S`, read as UTC), or no time at
//! all (the arrival time is used).

use std::borrow::Cow;

use super::{Event, EventError, EventKind, RawReason};

/// Topics Mosquitto publishes its log on.
pub const TOPIC_PREFIX: &str = "$SYS/broker/log/";

/// The client ID Mosquitto logs for a connection refused before it had one
/// (bad credentials): counted under its reason, never tracked for flapping.
pub const UNKNOWN_CLIENT: &str = "<unknown>";

/// Disconnect lines: `Client <id><suffix>` and the reason each means.
const DISCONNECTS: [(&str, &str); 9] = [
    (" already connected, closing old connection.", "takeovered"),
    (" has exceeded timeout, disconnecting.", "keepalive_timeout"),
    (" disconnected, not authorised.", "not_authenticated"),
    (" been disconnected by administrative action.", "kicked"),
    (" closed its connection.", "tcp_closed"),
    // no row of the table fits: counted as `other`, each logged once
    (" disconnected due to protocol error.", "protocol_error"),
    (" disconnected due to malformed packet.", "malformed_packet"),
    (" disconnected due to out of memory.", "out_of_memory"),
    (" disconnected.", "normal"),
];

/// True if `topic` is one of Mosquitto's log topics.
pub fn is_log_topic(topic: &[u8]) -> bool {
    topic.starts_with(TOPIC_PREFIX.as_bytes())
}

/// Reads one log line: `Ok(Some(event))` for a connection event,
/// `Ok(None)` for any other line.
pub fn parse(payload: &[u8]) -> Result<Option<Event<'_>>, EventError> {
    let text = std::str::from_utf8(payload).map_err(|_| EventError::InvalidUtf8)?;
    let (time_ms, line) = split_time(text.trim_end());
    if let Some(rest) = line.strip_prefix("New client connected from ") {
        // New client connected from ADDR as ID (p2, c1, k60[, u'user']).
        let Some((peer, rest)) = rest.split_once(" as ") else {
            return Ok(None);
        };
        let Some((id, _)) = rest.rsplit_once(" (p") else {
            return Ok(None);
        };
        return Ok(Some(Event {
            kind: EventKind::Connected,
            clientid: Cow::Borrowed(id),
            reason: None,
            peer: Some(Cow::Borrowed(peer)),
            time_ms,
        }));
    }
    let client = line
        .strip_prefix("Socket error on client ")
        .and_then(|rest| rest.strip_suffix(", disconnecting."))
        .map(|id| (id, "tcp_closed"))
        .or_else(|| {
            let rest = line.strip_prefix("Client ")?;
            DISCONNECTS
                .iter()
                .find_map(|(suffix, reason)| Some((rest.strip_suffix(suffix)?, *reason)))
        });
    let Some((id, reason)) = client.filter(|(id, _)| !id.is_empty()) else {
        return Ok(None);
    };
    Ok(Some(Event {
        kind: EventKind::Disconnected,
        clientid: Cow::Borrowed(id),
        reason: Some(RawReason::Name(Cow::Borrowed(reason))),
        peer: None,
        time_ms,
    }))
}

/// True if `line` starts with Mosquitto's time prefix (epoch seconds or an
/// ISO date-time, then `: `): how `analyze` tells a log file's lines.
pub fn has_time_prefix(line: &str) -> bool {
    split_time(line).0.is_some()
}

/// Splits the time prefix off a line: epoch seconds or an ISO date-time,
/// followed by `: `.
fn split_time(line: &str) -> (Option<i64>, &str) {
    let Some((head, rest)) = line.split_once(": ") else {
        return (None, line);
    };
    if !head.is_empty() && head.len() <= 12 && head.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(secs) = head.parse::<i64>() {
            return (Some(secs.saturating_mul(1000)), rest);
        }
    }
    match iso_millis(head) {
        Some(ms) => (Some(ms), rest),
        None => (None, line),
    }
}

/// `YYYY-MM-DDTHH:MM:SS` (or with a space for `T`) as UTC milliseconds.
fn iso_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // days from the civil date (Howard Hinnant's algorithm)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(line: &str) -> Option<(String, String)> {
        let e = parse(line.as_bytes()).unwrap()?;
        let r = match e.reason {
            Some(RawReason::Name(n)) => n.into_owned(),
            _ => String::new(),
        };
        Some((e.clientid.into_owned(), r))
    }

    #[test]
    fn every_mosquitto_2_connection_line() {
        let cases = [
            (
                "1795837147: Client normal-1 disconnected.",
                "normal-1",
                "normal",
            ),
            (
                "1795837148: Client dup already connected, closing old connection.",
                "dup",
                "takeovered",
            ),
            (
                "1795837151: Client silent has exceeded timeout, disconnecting.",
                "silent",
                "keepalive_timeout",
            ),
            (
                "1795837151: Client closer closed its connection.",
                "closer",
                "tcp_closed",
            ),
            (
                "1795837151: Socket error on client sock-1, disconnecting.",
                "sock-1",
                "tcp_closed",
            ),
            (
                "1795837151: Client <unknown> disconnected, not authorised.",
                "<unknown>",
                "not_authenticated",
            ),
            (
                "1795837151: Client adm been disconnected by administrative action.",
                "adm",
                "kicked",
            ),
            (
                "1795837151: Client <unknown> disconnected due to protocol error.",
                "<unknown>",
                "protocol_error",
            ),
            // a client ID with spaces and a word that looks like a suffix
            (
                "Client my disconnected. dev disconnected.",
                "my disconnected. dev",
                "normal",
            ),
        ];
        for (line, id, want) in cases {
            assert_eq!(
                reason(line),
                Some((id.to_string(), want.to_string())),
                "{line}"
            );
        }
    }

    #[test]
    fn connect_lines_carry_the_peer_and_other_lines_are_ignored() {
        let e = parse(b"1795837147: New client connected from 127.0.0.1:60580 as normal-1 (p2, c1, k60, u'fleet').\n")
            .unwrap()
            .unwrap();
        assert_eq!(e.kind, EventKind::Connected);
        assert_eq!(e.clientid, "normal-1");
        assert_eq!(e.peer.as_deref(), Some("127.0.0.1:60580"));
        assert_eq!(e.time_ms, Some(1_795_837_147_000));
        for other in [
            "1795837147: New connection from 127.0.0.1:60580 on port 18830.",
            "1795837147: Opening ipv4 listen socket on port 1883.",
            "1795837147: Config loaded from /etc/mosquitto/mosquitto.conf.",
            "1795837147: Client  disconnected.",
            "",
        ] {
            assert_eq!(parse(other.as_bytes()), Ok(None), "{other}");
        }
        assert_eq!(parse(b"\xff\xfe"), Err(EventError::InvalidUtf8));
    }

    #[test]
    fn times_in_each_format() {
        assert_eq!(split_time("1795837147: x").0, Some(1_795_837_147_000));
        assert_eq!(
            split_time("2026-11-28T01:02:03: x"),
            (Some(1_795_827_723_000), "x")
        );
        assert_eq!(split_time("1970-01-01 00:00:01: x").0, Some(1000));
        assert_eq!(
            split_time("Client a disconnected."),
            (None, "Client a disconnected.")
        );
        assert_eq!(split_time("2026-13-01T00:00:00: x").0, None);
    }
}
