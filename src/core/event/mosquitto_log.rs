//! Mosquitto's own log as an event source.
//!
//! With `log_dest topic` in mosquitto.conf, Mosquitto publishes each log
//! line (except debug) on `$SYS/broker/log/<level>`, e.g.
//! `1795826347: Client dup already connected, closing old connection.`.
//! [`parse`] reads every line that ends a client's connection in Mosquitto
//! 1.6.15, 2.0.11, 2.0.20 and 2.1 (develop) ([`LINES`]: `src/loop.c`
//! `do_disconnect`, `src/handle_connect.c`; and `src/net.c`'s refusals
//! before MQTT begins, which name an address, not a client) into an [`Event`] whose reason is
//! a raw name the reference table maps, and says `None` for every other
//! line, which the pipeline counts as ignored, never as an error.
//!
//! How a line is read, so that no client ID can spoof one: Mosquitto writes
//! `Client <id><suffix>` (or `Socket error on client <id>, disconnecting.`,
//! `Bad socket read/write on client <id>: <text>`), and a client ID may hold
//! spaces and any text, including another line's suffix. The parser matches
//! the fixed suffix at the *end* of the line, and the ID is everything
//! between the prefix and that suffix. The two lines that end in a variable
//! text (a `strerror` message, a `mosquitto_strerror` message) are tried
//! only after every fixed suffix, and split at the *last* separator, which
//! those messages never contain. `Client connection from <address> ...`
//! is tried last of all, so a client ID that starts with `connection from`
//! is still read as a client's line. A line Mosquitto cut at its 999-character
//! log buffer (a client ID of about 960 bytes or more) has lost its suffix:
//! it is counted as a disconnect with the raw reason `truncated_log_line`
//! (`other`, logged once) rather than dropped without a trace.
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

/// One disconnect line of Mosquitto: `Client <id><suffix>`, the raw reason
/// it is counted under (mapped by the reference table), and where it comes
/// from (file and versions).
pub struct Line {
    pub suffix: &'static str,
    pub raw: &'static str,
    pub source: &'static str,
}

const fn line(suffix: &'static str, raw: &'static str, source: &'static str) -> Line {
    Line {
        suffix,
        raw,
        source,
    }
}

/// Every `Client <id><suffix>` line that ends a connection, longest suffix
/// first where one ends another (` disconnected.` last).
pub const LINES: [Line; 24] = [
    line(" already connected, closing old connection.", "takeovered", "handle_connect.c 1.6.15, 2.0.11, 2.0.20"),
    line(" disconnected, session taken over.", "session_taken_over", "loop.c develop"),
    line(" has exceeded timeout, disconnecting.", "keepalive_timeout", "loop.c, keepalive.c all"),
    line(" disconnected, not authorised.", "not_authenticated", "loop.c 2.0.11, 2.0.20, develop (a refused password)"),
    line(" disconnected, no longer authorised.", "not_authenticated", "loop.c 1.6.15 (MOSQ_ERR_AUTH)"),
    line(" disconnected, bad username or password.", "bad_username_or_password", "loop.c develop"),
    line(" disconnected, bad authentication method.", "bad_authentication_method", "loop.c develop"),
    line(" disconnected, client banned.", "banned", "loop.c develop"),
    line(" disconnected, non-matching http origin.", "http_origin_not_allowed", "loop.c develop"),
    line(" disconnected, client identifier not valid.", "client_identifier_not_valid", "loop.c develop"),
    line(" disconnected, server unavailable.", "server_unavailable", "loop.c develop"),
    line(" disconnected, server busy.", "server_busy", "loop.c develop"),
    line(" disconnected, quota exceeded.", "quota_exceeded", "loop.c develop"),
    line(" disconnected, connection rate exceeded.", "connection_rate_exceeded", "loop.c develop"),
    line(" disconnected, implementation specific error.", "implementation_specific_error", "loop.c develop"),
    line(" been disconnected by administrative action.", "kicked", "loop.c 2.0.11, 2.0.20, develop"),
    line(" closed its connection.", "tcp_closed", "loop.c 2.0.11, 2.0.20, develop (also a bare TCP connect-and-close)"),
    line(" disconnected due to QoS too high or retain not supported.", "qos_not_supported", "loop.c 2.0.11"),
    line(" disconnected due to using not allowed feature (QoS too high, retain not supported, or bad AUTH method).", "qos_not_supported", "loop.c 2.0.20, develop"),
    line(" disconnected due to oversize packet.", "oversize_packet", "loop.c 2.0.11, 2.0.20, develop"),
    line(" disconnected due to oversize payload.", "oversize_payload", "loop.c 2.0.11, 2.0.20, develop"),
    line(" disconnected due to exceeding the receive maximum.", "receive_maximum_exceeded", "loop.c develop"),
    line(" disconnected due to out of memory.", "out_of_memory", "loop.c 2.0.11, 2.0.20, develop"),
    line(" disconnected due to protocol error.", "protocol_error", "loop.c all"),
];

/// `Client <id> disconnected due to malformed packet.` (2.0 and develop) and
/// the clean `Client <id> disconnected.` (all): after [`LINES`], since every
/// other suffix would end a client ID that ends with these.
const LAST: [Line; 2] = [
    line(
        " disconnected due to malformed packet.",
        "malformed_packet",
        "loop.c 2.0.11, 2.0.20, develop",
    ),
    line(" disconnected.", "normal", "loop.c all"),
];

/// `Socket error on client <id>, disconnecting.` (1.6.15 `loop.c`: a lost
/// connection or any other error).
const SOCKET_ERROR: (&str, &str) = ("Socket error on client ", ", disconnecting.");
/// `Client <id> disconnected: <strerror>.` (2.0.11, 2.0.20, develop
/// `loop.c`, MOSQ_ERR_ERRNO): a network drop, or with `Protocol error` (the
/// TLS layer's EPROTO) a failed TLS handshake.
const ERRNO: &str = " disconnected: ";
/// `Bad socket read/write on client <id>: <mosquitto_strerror>` (2.0.11,
/// 2.0.20, develop `loop.c`, any other error: 2.0.11 prints it for a
/// PUBLISH above `max_qos`, after `Too high QoS in PUBLISH from <id>`).
const BAD_SOCKET: &str = "Bad socket read/write on client ";

/// `Client connection from <address>...`: a connection refused before
/// MQTT began (`src/net.c` `net__socket_accept`), so the line names an
/// address, never a client ID, and counts under [`UNKNOWN_CLIENT`].
const NET_PREFIX: &str = "Client connection from ";
/// The fixed endings of [`NET_PREFIX`] lines, with their raw reason and
/// source.
const NET_LINES: [Line; 2] = [
    line(
        " denied: max_connections exceeded.",
        "max_connections",
        "net.c, websockets.c all (a listener's max_connections)",
    ),
    line(
        " denied access by tcpd.",
        "forbidden_access",
        "net.c all (built WITH_WRAP: hosts.deny)",
    ),
];
/// `Client connection from <address> failed: <OpenSSL error>.` (1.6.15,
/// 2.0.11, 2.0.20 `net.c`): the TLS handshake failed at once (plain MQTT
/// on a TLS port, say). One line per OpenSSL error queued, nearly always
/// one.
const NET_FAILED: &str = " failed: ";

/// Mosquitto's log buffer: a longer line is cut to this many bytes.
const LOG_LINE_MAX: usize = 999;

/// The raw reason of a `Client <id> disconnected: <text>.` line.
fn errno_reason(text: &str) -> &'static str {
    match text {
        "Protocol error" => "tls_handshake_failed",
        _ => "sock_error",
    }
}

/// The raw reason of a `Bad socket read/write` line's message.
fn bad_socket_reason(text: &str) -> &'static str {
    if text.contains("QoS not supported") || text.contains("Retain not supported") {
        "qos_not_supported"
    } else if text.starts_with("TLS") || text.starts_with("A TLS") {
        "tls_handshake_failed"
    } else {
        "sock_error"
    }
}

/// The README's table of Mosquitto's lines, from [`LINES`].
pub fn markdown_lines() -> String {
    let mut out = String::from(
        "| log line | raw reason | counted as | from (file, versions) |\n|---|---|---|---|\n",
    );
    let row = |out: &mut String, text: &str, raw: &str, source: &str| {
        let reason = crate::core::reasons::classify(raw).as_str();
        out.push_str(&format!("| `{text}` | `{raw}` | `{reason}` | {source} |\n"));
    };
    for l in LINES.iter().chain(LAST.iter()) {
        row(&mut out, &format!("Client X{}", l.suffix), l.raw, l.source);
    }
    row(
        &mut out,
        "Socket error on client X, disconnecting.",
        "sock_error",
        "loop.c 1.6.15",
    );
    row(
        &mut out,
        "Client X disconnected: <strerror>.",
        "sock_error",
        "loop.c 2.0.11, 2.0.20, develop",
    );
    row(
        &mut out,
        "Client <unknown> disconnected: Protocol error.",
        "tls_handshake_failed",
        "loop.c 2.0.11, 2.0.20, develop (a failed TLS handshake)",
    );
    row(
        &mut out,
        "Bad socket read/write on client X: <text>",
        "sock_error",
        "loop.c 2.0.11, 2.0.20, develop",
    );
    row(
        &mut out,
        "Bad socket read/write on client X: Requested QoS not supported on server.",
        "qos_not_supported",
        "loop.c 2.0.11 (a PUBLISH above max_qos)",
    );
    for l in &NET_LINES {
        row(
            &mut out,
            &format!("{NET_PREFIX}ADDRESS{}", l.suffix),
            l.raw,
            l.source,
        );
    }
    row(
        &mut out,
        "Client connection from ADDRESS failed: <OpenSSL error>.",
        "tls_handshake_failed",
        "net.c 1.6.15, 2.0.11, 2.0.20 (a TLS handshake that fails at once)",
    );
    row(
        &mut out,
        "Client X... (cut at 999 characters)",
        "truncated_log_line",
        "logging.c (log_line[1000])",
    );
    out
}

/// True if `topic` is one of Mosquitto's log topics.
pub fn is_log_topic(topic: &[u8]) -> bool {
    topic.starts_with(TOPIC_PREFIX.as_bytes())
}

/// The address of a `New connection from ADDR on port N.` line (as the
/// line writes it, with its port), `None` for any other line.
pub fn new_connection(payload: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(payload).ok()?;
    let (_, line) = split_time(text.trim_end());
    let (addr, _) = line
        .strip_prefix("New connection from ")?
        .rsplit_once(" on port ")?;
    (!addr.is_empty() && !addr.contains(' ')).then_some(addr)
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
            connected_at: None,
            node: None,
        }));
    }
    let Some((id, reason)) = disconnect(line).filter(|(id, _)| !id.is_empty()) else {
        // only now: a client ID may start with "connection from ", and its
        // line then ends in a client line's suffix, matched above
        let Some((peer, raw)) = line.strip_prefix(NET_PREFIX).and_then(refused) else {
            return Ok(None);
        };
        return Ok(Some(Event {
            kind: EventKind::Disconnected,
            clientid: Cow::Borrowed(UNKNOWN_CLIENT),
            reason: Some(RawReason::Name(Cow::Borrowed(raw))),
            peer: Some(Cow::Borrowed(peer)),
            time_ms,
            connected_at: None,
            node: None,
        }));
    };
    Ok(Some(Event {
        kind: EventKind::Disconnected,
        clientid: Cow::Borrowed(id),
        reason: Some(RawReason::Name(Cow::Borrowed(reason))),
        peer: None,
        time_ms,
        connected_at: None,
        node: None,
    }))
}

/// The address and raw reason of a `Client connection from` line that
/// refuses a connection (an address holds no space, so it ends at the
/// first one).
fn refused(rest: &str) -> Option<(&str, &'static str)> {
    if let Some(found) = NET_LINES
        .iter()
        .find_map(|l| Some((rest.strip_suffix(l.suffix)?, l.raw)))
    {
        return Some(found).filter(|(peer, _)| !peer.is_empty() && !peer.contains(' '));
    }
    let (peer, text) = rest.split_once(NET_FAILED)?;
    (!peer.is_empty() && !peer.contains(' ') && !text.is_empty())
        .then_some((peer, "tls_handshake_failed"))
}

/// The client ID and raw reason of a line that ends a connection.
fn disconnect(line: &str) -> Option<(&str, &'static str)> {
    if let Some(rest) = line.strip_prefix("Client ") {
        if let Some(found) = LINES
            .iter()
            .chain(LAST.iter())
            .find_map(|l| Some((rest.strip_suffix(l.suffix)?, l.raw)))
        {
            return Some(found);
        }
        if let Some((id, text)) = rest.strip_suffix('.').and_then(|r| r.rsplit_once(ERRNO)) {
            if !text.is_empty() && !text.contains(':') {
                return Some((id, errno_reason(text)));
            }
        }
        if line.len() >= LOG_LINE_MAX - 20 {
            return Some((rest, "truncated_log_line"));
        }
        return None;
    }
    if let Some(rest) = line.strip_prefix(SOCKET_ERROR.0) {
        if let Some(id) = rest.strip_suffix(SOCKET_ERROR.1) {
            return Some((id, "sock_error"));
        }
        return (line.len() >= LOG_LINE_MAX - 20).then_some((rest, "truncated_log_line"));
    }
    if let Some(rest) = line.strip_prefix(BAD_SOCKET) {
        return match rest.rsplit_once(": ") {
            Some((id, text)) if !text.is_empty() => Some((id, bad_socket_reason(text))),
            _ => (line.len() >= LOG_LINE_MAX - 20).then_some((rest, "truncated_log_line")),
        };
    }
    None
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
pub(crate) fn iso_millis(s: &str) -> Option<i64> {
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

    /// The client ID and the reason a line is counted under (the raw name
    /// for `truncated_log_line`, the table's reason otherwise).
    fn reason(line: &str) -> Option<(String, String)> {
        let e = parse(line.as_bytes()).unwrap()?;
        let r = match e.reason {
            Some(RawReason::Name(n)) if n == "truncated_log_line" => n.into_owned(),
            Some(RawReason::Name(n)) => crate::core::reasons::classify(&n).as_str().to_string(),
            _ => String::new(),
        };
        Some((e.clientid.into_owned(), r))
    }

    /// Every connection-ending line of Mosquitto 1.6.15, 2.0.11, 2.0.20 and
    /// develop, as its source writes it (file, tag and format string in
    /// each comment), with the reason the table gives it.
    #[test]
    fn every_connection_line_of_every_mosquitto_in_service() {
        let cases = [
            // loop.c all: "Client %s disconnected."
            ("1795837147: Client normal-1 disconnected.", "normal-1", "normal"),
            // handle_connect.c v1.6.15/v2.0.x: "Client %s already connected, closing old connection."
            ("1795837148: Client dup already connected, closing old connection.", "dup", "takeovered"),
            // loop.c develop: "Client %s disconnected, session taken over."
            ("Client dup disconnected, session taken over.", "dup", "takeovered"),
            // loop.c all: "Client %s has exceeded timeout, disconnecting."
            ("1795837151: Client silent has exceeded timeout, disconnecting.", "silent", "keepalive_timeout"),
            // loop.c v2.0.x/develop: "Client %s closed its connection."
            ("1795837151: Client closer closed its connection.", "closer", "tcp_closed"),
            // loop.c v1.6.15: "Socket error on client %s, disconnecting."
            ("1795837151: Socket error on client sock-1, disconnecting.", "sock-1", "tcp_closed"),
            // loop.c v2.0.x/develop: "Client %s disconnected: %s." (strerror)
            ("Client rst disconnected: Connection reset by peer.", "rst", "tcp_closed"),
            ("Client far disconnected: No route to host.", "far", "tcp_closed"),
            ("Client gone disconnected: Connection timed out.", "gone", "tcp_closed"),
            ("Client pipe disconnected: Broken pipe.", "pipe", "tcp_closed"),
            // the same line for a failed TLS handshake (EPROTO)
            ("Client <unknown> disconnected: Protocol error.", "<unknown>", "not_authenticated"),
            // net.c v1.6.15/v2.0.x/develop, websockets.c: "Client connection from %s denied: max_connections exceeded."
            ("1795837151: Client connection from 10.0.0.7 denied: max_connections exceeded.", "<unknown>", "too_many_connection"),
            // net.c all (WITH_WRAP): "Client connection from %s denied access by tcpd."
            ("1795837151: Client connection from 10.0.0.8 denied access by tcpd.", "<unknown>", "not_authorized"),
            // net.c v1.6.15/v2.0.x: "Client connection from %s failed: %s." (ERR_error_string)
            ("1796011940: Client connection from 127.0.0.1 failed: error:0A00010B:SSL routines::wrong version number.", "<unknown>", "not_authenticated"),
            // loop.c v2.0.x/develop: "Bad socket read/write on client %s: %s"
            ("Bad socket read/write on client q2: Requested QoS not supported on server.", "q2", "not_authorized"),
            ("Bad socket read/write on client io: The connection was lost.", "io", "tcp_closed"),
            // loop.c v2.0.x/develop: "Client %s disconnected, not authorised."
            ("1795837151: Client <unknown> disconnected, not authorised.", "<unknown>", "not_authenticated"),
            // loop.c v1.6.15: "Client %s disconnected, no longer authorised."
            ("Client old disconnected, no longer authorised.", "old", "not_authenticated"),
            // loop.c v2.0.x/develop: "Client %s been disconnected by administrative action."
            ("1795837151: Client adm been disconnected by administrative action.", "adm", "kicked"),
            // loop.c v2.0.11: "... disconnected due to QoS too high or retain not supported."
            ("Client q disconnected due to QoS too high or retain not supported.", "q", "not_authorized"),
            // loop.c v2.0.20/develop: "... disconnected due to using not allowed feature (...)."
            (
                "Client q disconnected due to using not allowed feature (QoS too high, retain not supported, or bad AUTH method).",
                "q",
                "not_authorized",
            ),
            // loop.c v2.0.x/develop: oversize packet, oversize payload, malformed packet
            ("Client big disconnected due to oversize packet.", "big", "other"),
            ("Client big disconnected due to oversize payload.", "big", "other"),
            ("Client bad disconnected due to malformed packet.", "bad", "other"),
            // loop.c all: protocol error; v2.0.x/develop: out of memory
            ("1795837151: Client <unknown> disconnected due to protocol error.", "<unknown>", "other"),
            ("Client m disconnected due to out of memory.", "m", "server_internal_error"),
            // loop.c develop: the explicit reasons
            ("Client r disconnected due to exceeding the receive maximum.", "r", "other"),
            ("Client i disconnected, implementation specific error.", "i", "server_internal_error"),
            ("Client c disconnected, client identifier not valid.", "c", "client_id_invalid"),
            ("Client u disconnected, bad username or password.", "u", "not_authenticated"),
            ("Client s disconnected, server unavailable.", "s", "go_away"),
            ("Client s disconnected, server busy.", "s", "too_many_connection"),
            ("Client b disconnected, client banned.", "b", "not_authorized"),
            ("Client a disconnected, bad authentication method.", "a", "not_authenticated"),
            ("Client q disconnected, quota exceeded.", "q", "too_many_connection"),
            ("Client r disconnected, connection rate exceeded.", "r", "too_many_connection"),
            ("Client w disconnected, non-matching http origin.", "w", "not_authorized"),
        ];
        for (line, id, want) in cases {
            assert_eq!(
                reason(line),
                Some((id.to_string(), want.to_string())),
                "{line}"
            );
        }
    }

    /// Client IDs that hold another line's suffix, or the separator of a
    /// line with a variable end: the suffix at the end of the line decides.
    #[test]
    fn no_client_id_can_spoof_a_line() {
        let cases = [
            ("Client my disconnected. dev disconnected.", "my disconnected. dev", "normal"),
            ("Client a disconnected: Broken pipe disconnected.", "a disconnected: Broken pipe", "normal"),
            (
                "Client x has exceeded timeout, disconnecting. disconnected: Connection reset by peer.",
                "x has exceeded timeout, disconnecting.",
                "tcp_closed",
            ),
            (
                "Client a: b disconnected: Connection reset by peer.",
                "a: b",
                "tcp_closed",
            ),
            (
                "Client y already connected, closing old connection. closed its connection.",
                "y already connected, closing old connection.",
                "tcp_closed",
            ),
            (
                "Bad socket read/write on client id: with: colons: Requested QoS not supported on server.",
                "id: with: colons",
                "not_authorized",
            ),
            // client IDs that start like net.c's refusals stay clients
            (
                "Client connection from 1.2.3.4 failed: error:x. disconnected.",
                "connection from 1.2.3.4 failed: error:x.",
                "normal",
            ),
            (
                "Client connection from 1.2.3.4 denied: max_connections exceeded. has exceeded timeout, disconnecting.",
                "connection from 1.2.3.4 denied: max_connections exceeded.",
                "keepalive_timeout",
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
    fn a_line_cut_at_mosquittos_buffer_is_counted_not_dropped() {
        // log_line[1000]: the time prefix and 987 more bytes, suffix lost
        let line = format!("1795837151: Client {}", "x".repeat(980));
        let line = &line[..999];
        let (id, raw) = reason(line).unwrap();
        assert_eq!(raw, "truncated_log_line");
        assert_eq!(
            crate::core::reasons::classify(&raw),
            crate::core::reasons::Reason::Other
        );
        assert!(id.starts_with("xxx"));
        // a short line without a known suffix is no disconnect
        assert_eq!(reason("Client x did something else."), None);
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
