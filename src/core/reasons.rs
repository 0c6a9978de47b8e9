//! The reference table of disconnect reasons, defined once.
//!
//! Every row of Tencent Cloud TDMQ for MQTT's "Common Disconnection Reasons
//! Reference Table" lives in [`TABLE`] with its meaning, recommended action,
//! a category and a severity, plus the other spellings brokers use for it
//! (EMQX atoms, MQTT 5 reason-code names) and the MQTT 5 reason codes that
//! mean it. Everything user-facing is derived from this table: the
//! `mqtt_disconnect_reason_info` metric, the `reasons` subcommand, the README
//! table (checked by a test) and the alert annotations.
//!
//! [`classify`] maps a raw reason string onto the closed set; anything it does
//! not recognise becomes [`Reason::Other`], so label cardinality stays fixed.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// A canonical disconnect reason: one row of the reference table, or `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Normal,
    Takeovered,
    Kicked,
    KeepaliveTimeout,
    NotAuthenticated,
    NotAuthorized,
    TcpClosed,
    PingWithoutConnect,
    AuthenticationExpired,
    TooManyConnection,
    GoAway,
    ClientIdTooLong,
    ClientIdRequired,
    ClientIdInvalid,
    BadWillMessage,
    ServerInternalError,
    Other,
}

/// How urgent a reason is for an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Expected behaviour.
    None,
    /// Worth knowing, rarely worth acting on.
    Info,
    /// Something is wrong with some clients.
    Warning,
    /// Clients are being refused or the service is failing.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One row of the reference table.
#[derive(Debug)]
pub struct ReasonInfo {
    pub reason: Reason,
    /// The label value, as the reference table spells it.
    pub id: &'static str,
    pub category: &'static str,
    pub severity: Severity,
    pub meaning: &'static str,
    pub action: &'static str,
    /// Other spellings that mean this reason (matched after normalisation).
    pub aliases: &'static [&'static str],
    /// MQTT 5 reason codes (DISCONNECT or CONNACK) that mean this reason.
    pub mqtt5_codes: &'static [u8],
}

/// The reference table, in the order of the source document, then `other`.
pub static TABLE: [ReasonInfo; 17] = [
    ReasonInfo {
        reason: Reason::Normal,
        id: "normal",
        category: "normal",
        severity: Severity::None,
        meaning: "The server received the DISCONNECT message and disconnected normally.",
        action: "Normal event. Confirm whether the client-initiated disconnection is expected by business logic (for example, the client actively exits upon task completion).",
        aliases: &["client_initiated_disconnect", "normal_disconnection", "success", "disconnect_with_will_message"],
        mqtt5_codes: &[0x00, 0x04],
    },
    ReasonInfo {
        reason: Reason::Takeovered,
        id: "takeovered",
        category: "client_id_conflict",
        severity: Severity::Warning,
        meaning: "The client was disconnected by a device with the same client ID.",
        action: "Client ID conflict. Check the client ID generation policy to ensure each online device has a unique client ID. (If it is an occasional single occurrence, it may be an automatic recovery after network fluctuation, and no action is required.)",
        aliases: &["duplicate_clientid", "takenover", "taken_over", "discarded", "session_taken_over", "takeover"],
        mqtt5_codes: &[0x8E],
    },
    ReasonInfo {
        reason: Reason::Kicked,
        id: "kicked",
        category: "administrative",
        severity: Severity::Info,
        meaning: "The client was forced to log out by management.",
        action: "Administrative action. Check the management console or API call logs of the MQTT service to confirm which administrator or automated policy performed the force-logout action and why.",
        aliases: &["api_initiated_disconnect", "administrative_action"],
        mqtt5_codes: &[0x98],
    },
    ReasonInfo {
        reason: Reason::KeepaliveTimeout,
        id: "keepalive_timeout",
        category: "network",
        severity: Severity::Critical,
        meaning: "The MQTT Broker node did not receive an interactive message from the client within 1.5 times the keep-alive period.",
        action: "Network or client issue. 1. Check whether the device network connection is stable. 2. Check whether the device CPU/memory load is too high, resulting in failure to send heartbeat packets in time. 3. In a weak network environment, you may appropriately increase the keep-alive value.",
        aliases: &["mqtt_keep_alive_timeout", "keep_alive_timeout", "keepalive_timeout_error"],
        mqtt5_codes: &[0x8D],
    },
    ReasonInfo {
        reason: Reason::NotAuthenticated,
        id: "not_authenticated",
        category: "authentication",
        severity: Severity::Warning,
        meaning: "Unauthenticated, similar to HTTP status code 401.",
        action: "Authentication information error. Check whether the username, password, certificate, or Token configured for the client is correct and whether it matches the server-side configuration.",
        aliases: &["auth_error", 
            "bad_username_or_password",
            "bad_authentication_method",
            "unauthenticated",
            "authentication_failed",
            "tls_handshake_failed",
            "client_authentication_error",
        ],
        mqtt5_codes: &[0x86, 0x8C],
    },
    ReasonInfo {
        reason: Reason::NotAuthorized,
        id: "not_authorized",
        category: "authorization",
        severity: Severity::Warning,
        meaning: "Unauthorized, similar to HTTP status code 403.",
        action: "Insufficient permissions. The client is authenticated but lacks permission to connect or perform operations (such as publishing/subscribing to specific topics). Check the ACL policy configuration and grant necessary permissions to this client.",
        aliases: &["forbidden_access", "authorization_failed", "unauthorized", "banned", "qos_not_supported", "http_origin_not_allowed", "client_authorization_error", "ip_forbidden"],
        mqtt5_codes: &[0x87, 0x8A],
    },
    ReasonInfo {
        reason: Reason::TcpClosed,
        id: "tcp_closed",
        category: "network",
        severity: Severity::Info,
        meaning: "TCP connection closed.",
        action: "Network layer disconnected. Possible causes include device network interruption, NAT Gateway timeout, or firewall policy blocking.",
        aliases: &[
            "ssl_closed",
            "sock_closed",
            "closed",
            "econnreset",
            "etimedout",
            "send_timeout",
            "epipe",
            "einval",
            "enotconn",
            "ehostunreach",
            "enetunreach",
            "econnaborted",
            "sock_error",
            "tcp_error",
            "ssl_error",
            "connection_lost",
        ],
        mqtt5_codes: &[],
    },
    ReasonInfo {
        reason: Reason::PingWithoutConnect,
        id: "ping_without_connect",
        category: "client_bug",
        severity: Severity::Warning,
        meaning: "The client sent a PING before sending the CONNECT packet.",
        action: "Client SDK/firmware Bug. Check and fix the client MQTT protocol implementation code to ensure strict adherence to the connection establishment sequence: CONNECT -> other packets.",
        aliases: &[],
        mqtt5_codes: &[],
    },
    ReasonInfo {
        reason: Reason::AuthenticationExpired,
        id: "authentication_expired",
        category: "authentication",
        severity: Severity::Warning,
        meaning: "Authentication failed. JWT/SAS tokens have expired.",
        action: "Credentials expired. The client program should have the capability to refresh Token.",
        aliases: &["customauth_ttl_expiration", "auth_expired", "token_expired", "credentials_expired", "authentication_expire"],
        mqtt5_codes: &[],
    },
    ReasonInfo {
        reason: Reason::TooManyConnection,
        id: "too_many_connection",
        category: "capacity",
        severity: Severity::Critical,
        meaning: "Exceeding the maximum cluster/node connections.",
        action: "Server-side capacity issue. 1. Upgrade the service specifications or increase the maximum connection limit. 2. Troubleshoot whether client-side exceptions (such as code bugs) are causing the creation of a large number of invalid connections.",
        aliases: &["throttled", 
            "too_many_connections",
            "quota_exceeded",
            "connection_rate_exceeded",
            "server_busy",
            "max_connections",
        ],
        mqtt5_codes: &[0x89, 0x97, 0x9F],
    },
    ReasonInfo {
        reason: Reason::GoAway,
        id: "go_away",
        category: "maintenance",
        severity: Severity::Info,
        meaning: "MQTT Broker node restart, graceful shutdown.",
        action: "Usually caused by server-side upgrades or maintenance. The client should implement an automatic reconnection mechanism to automatically reconnect after the server recovers.",
        aliases: &["server_initiated_disconnect", "websocket_ttl_expiration", 
            "goaway",
            "use_another_server",
            "server_moved",
            "server_shutting_down",
            "server_unavailable",
            "shutdown",
        ],
        mqtt5_codes: &[0x88, 0x8B, 0x9C, 0x9D],
    },
    ReasonInfo {
        reason: Reason::ClientIdTooLong,
        id: "client_id_too_long",
        category: "client_bug",
        severity: Severity::Warning,
        meaning: "Client ID exceeds the maximum limit.",
        action: "Client ID exceeds the maximum length. Check the ID length (the MQTT protocol's inherent limit of 23 characters) and modify the client ID generation logic.",
        aliases: &["clientid_too_long"],
        mqtt5_codes: &[],
    },
    ReasonInfo {
        reason: Reason::ClientIdRequired,
        id: "client_id_required",
        category: "client_bug",
        severity: Severity::Warning,
        meaning: "Persistent session connection lacks the required client ID field.",
        action: "Client protocol error. When CleanSession=false, the client ID cannot be empty. Fix the client logic: either provide an ID or set CleanSession to true.",
        aliases: &["clientid_required", "client_id_empty"],
        mqtt5_codes: &[],
    },
    ReasonInfo {
        reason: Reason::ClientIdInvalid,
        id: "client_id_invalid",
        category: "client_bug",
        severity: Severity::Warning,
        meaning: "Client ID is non-compliant. Client ID can only contain [0-9a-zA-Z] characters.",
        action: "Client protocol error. Modify the client ID generation logic to remove or replace invalid characters.",
        aliases: &["client_identifier_not_valid", "clientid_invalid", "invalid_clientid"],
        mqtt5_codes: &[0x85],
    },
    ReasonInfo {
        reason: Reason::BadWillMessage,
        id: "bad_will_message",
        category: "client_bug",
        severity: Severity::Warning,
        meaning: "Illegal will message.",
        action: "Will message configuration error. Check the will message set by the client, ensure its topic and payload formats are correct, and verify that the client has permission to publish messages to the specified will topic.",
        aliases: &["bad_will", "invalid_will_message"],
        mqtt5_codes: &[],
    },
    ReasonInfo {
        reason: Reason::ServerInternalError,
        id: "server_internal_error",
        category: "server",
        severity: Severity::Warning,
        meaning: "Internal server error.",
        action: "Server issue. Contact the broker's operator or vendor with the timestamp, instance ID and client ID to troubleshoot the server.",
        aliases: &["server_error", "internal_error", "unspecified_error", "implementation_specific_error", "out_of_memory"],
        mqtt5_codes: &[0x80, 0x83],
    },
    ReasonInfo {
        reason: Reason::Other,
        id: "other",
        category: "unknown",
        severity: Severity::Info,
        meaning: "A reason the reference table does not list.",
        action: "Check the exporter's log for the raw reason string (each new one is logged once) and the broker's documentation.",
        aliases: &["client_error", "session_overflow"],
        mqtt5_codes: &[],
    },
];

impl Reason {
    /// How many reasons there are: the reference table's 16 plus `other`,
    /// one row of [`TABLE`] each (a test checks `TABLE.len() == COUNT`).
    pub const COUNT: usize = 17;

    /// Position in [`TABLE`], usable as an array index.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn info(self) -> &'static ReasonInfo {
        &TABLE[self.index()]
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        self.info().id
    }

    /// All reasons, in table order.
    pub fn all() -> impl Iterator<Item = Reason> {
        TABLE.iter().map(|row| row.reason)
    }
}

/// One `T` per canonical reason.
pub type ByReason<T> = crate::core::label_set::By<Reason, T>;

impl crate::core::label_set::Label for Reason {
    const ALL: &'static [Reason] = &[
        Reason::Normal,
        Reason::Takeovered,
        Reason::Kicked,
        Reason::KeepaliveTimeout,
        Reason::NotAuthenticated,
        Reason::NotAuthorized,
        Reason::TcpClosed,
        Reason::PingWithoutConnect,
        Reason::AuthenticationExpired,
        Reason::TooManyConnection,
        Reason::GoAway,
        Reason::ClientIdTooLong,
        Reason::ClientIdRequired,
        Reason::ClientIdInvalid,
        Reason::BadWillMessage,
        Reason::ServerInternalError,
        Reason::Other,
    ];

    fn index(self) -> usize {
        Reason::index(self)
    }

    fn as_label(self) -> &'static str {
        self.as_str()
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest raw reason we try to match; longer strings are `Other`.
const MAX_REASON_LEN: usize = 64;

fn lookup_table() -> &'static foldhash::HashMap<&'static str, Reason> {
    static MAP: OnceLock<foldhash::HashMap<&'static str, Reason>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map = foldhash::HashMap::default();
        for row in &TABLE {
            if row.reason == Reason::Other {
                continue;
            }
            map.insert(row.id, row.reason);
            for alias in row.aliases {
                map.insert(*alias, row.reason);
            }
        }
        map
    })
}

/// Maps a raw reason onto the closed set.
///
/// Matching is case-insensitive after trimming, with spaces and `-` read as
/// `_`; a `0x..` hexadecimal string is read as an MQTT 5 reason code.
pub fn classify(raw: &str) -> Reason {
    classify_in(raw, None)
}

/// Spellings an operator adds (`--reason.alias RAW=CANONICAL`), so a broker
/// the table has not met counts right without a release. They are matched
/// like the table's own aliases, and before them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aliases(HashMap<String, Reason>);

impl Aliases {
    /// The aliases of `pairs` (raw spelling, canonical reason); spellings
    /// longer than any reason we match are left out. Two spellings that
    /// match alike (`foo` and `FOO`) given different reasons are refused,
    /// naming the spelling: the last one must not win silently.
    pub fn new(pairs: impl IntoIterator<Item = (String, Reason)>) -> Result<Aliases, String> {
        let mut map: HashMap<String, Reason> = HashMap::new();
        for (raw, reason) in pairs {
            let Some(key) = normalize(&raw) else { continue };
            match map.insert(key, reason) {
                Some(before) if before != reason => {
                    return Err(format!(
                        "{raw:?} is given as {} and as {}",
                        before.as_str(),
                        reason.as_str()
                    ))
                }
                _ => {}
            }
        }
        Ok(Aliases(map))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// [`classify`], with these spellings first.
    pub fn classify(&self, raw: &str) -> Reason {
        classify_in(raw, (!self.0.is_empty()).then_some(&self.0))
    }
}

/// The reason whose label value is `id` (`kicked`, `go_away`, ...).
pub fn by_id(id: &str) -> Option<Reason> {
    TABLE.iter().find(|row| row.id == id).map(|row| row.reason)
}

/// A raw reason as matched: trimmed, lower case, spaces and `-` as `_`.
fn normalize(raw: &str) -> Option<String> {
    let raw = raw.trim();
    (!raw.is_empty() && raw.len() <= MAX_REASON_LEN).then(|| {
        raw.chars()
            .map(|c| match c {
                ' ' | '-' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect()
    })
}

fn classify_in(raw: &str, extra: Option<&HashMap<String, Reason>>) -> Reason {
    let raw = raw.trim();
    if raw.len() > MAX_REASON_LEN {
        return Reason::Other;
    }
    // normalised on the stack: the same reason comes with every event of a storm
    let mut buf = [0u8; MAX_REASON_LEN];
    for (dst, src) in buf.iter_mut().zip(raw.bytes()) {
        *dst = match src {
            b' ' | b'-' => b'_',
            other => other.to_ascii_lowercase(),
        };
    }
    let Ok(norm) = std::str::from_utf8(&buf[..raw.len()]) else {
        return Reason::Other;
    };
    if let Some(reason) = extra.and_then(|extra| extra.get(norm)) {
        return *reason;
    }
    if let Some(reason) = lookup_table().get(norm) {
        return *reason;
    }
    if let Some(hex) = norm.strip_prefix("0x") {
        if let Ok(code) = u8::from_str_radix(hex, 16) {
            return classify_code(code);
        }
    }
    Reason::Other
}

/// Maps an MQTT 5 reason code (DISCONNECT or CONNACK) onto the closed set.
pub fn classify_code(code: u8) -> Reason {
    TABLE
        .iter()
        .find(|row| row.mqtt5_codes.contains(&code))
        .map_or(Reason::Other, |row| row.reason)
}

/// The reference table as markdown: what `reasons` prints and the README shows.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| reason | category | severity | meaning | recommended action | also matches |\n\
         |---|---|---|---|---|---|\n",
    );
    for row in &TABLE {
        let mut matches: Vec<String> = row.aliases.iter().map(|a| format!("`{a}`")).collect();
        matches.extend(row.mqtt5_codes.iter().map(|c| format!("0x{c:02X}")));
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            row.id,
            row.category,
            row.severity.as_str(),
            row.meaning,
            row.action,
            matches.join(", ")
        ));
    }
    out
}

/// Aliases given in one `--reason.alias` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasList(pub Vec<(String, Reason)>);

/// `RAW=CANONICAL[,RAW=CANONICAL...]`, where `\,` is a comma inside RAW.
impl std::str::FromStr for AliasList {
    type Err = String;

    fn from_str(raw: &str) -> Result<AliasList, String> {
        alias_list(raw)
    }
}

fn alias_list(raw: &str) -> Result<AliasList, String> {
    let mut list = Vec::new();
    let mut item = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                item.push(',');
                chars.next();
            }
            ',' => list.push(reason_alias(&std::mem::take(&mut item))?),
            c => item.push(c),
        }
    }
    list.push(reason_alias(&item)?);
    Ok(AliasList(list))
}

/// `RAW=CANONICAL`: a raw reason spelling and the reason it means.
fn reason_alias(raw: &str) -> Result<(String, Reason), String> {
    let (spelling, canonical) = raw
        .rsplit_once('=')
        .ok_or_else(|| "expected RAW=CANONICAL, e.g. \"Session Kicked=kicked\"".to_string())?;
    if spelling.trim().is_empty() {
        return Err("the raw spelling is empty".into());
    }
    let s = spelling.trim();
    let numeric = s.parse::<u64>().is_ok()
        || s.strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .is_some_and(|h| u64::from_str_radix(h, 16).is_ok());
    if numeric {
        return Err(format!(
            "{s:?} is a reason code: codes map through the MQTT 5 code table, not aliases"
        ));
    }
    let reason = by_id(canonical.trim()).ok_or_else(|| {
        let ids: Vec<&str> = TABLE.iter().map(|row| row.id).collect();
        format!(
            "unknown reason {:?} (one of {})",
            canonical.trim(),
            ids.join(", ")
        )
    })?;
    Ok((spelling.to_string(), reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_order_matches_enum() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.reason.index(), i, "{}", row.id);
        }
        assert_eq!(TABLE.len(), Reason::COUNT);
    }

    #[test]
    fn every_id_classifies_to_itself() {
        for row in &TABLE {
            assert_eq!(classify(row.id), row.reason, "{}", row.id);
        }
    }

    #[test]
    fn aliases_and_spellings() {
        let cases = [
            ("takenover", Reason::Takeovered),
            ("taken over", Reason::Takeovered),
            ("Taken-Over", Reason::Takeovered),
            (" discarded ", Reason::Takeovered),
            ("TAKEOVERED", Reason::Takeovered),
            ("sock_closed", Reason::TcpClosed),
            ("ssl_closed", Reason::TcpClosed),
            ("closed", Reason::TcpClosed),
            ("econnreset", Reason::TcpClosed),
            ("etimedout", Reason::TcpClosed),
            ("internal_error", Reason::ServerInternalError),
            ("use_another_server", Reason::GoAway),
            ("bad_username_or_password", Reason::NotAuthenticated),
            ("client_identifier_not_valid", Reason::ClientIdInvalid),
            ("quota_exceeded", Reason::TooManyConnection),
            ("banned", Reason::NotAuthorized),
            ("0x8E", Reason::Takeovered),
            ("0x8d", Reason::KeepaliveTimeout),
            ("", Reason::Other),
            ("no such reason", Reason::Other),
            ("0xZZ", Reason::Other),
            ("日本語", Reason::Other),
        ];
        for (raw, want) in cases {
            assert_eq!(classify(raw), want, "{raw:?}");
        }
        assert_eq!(classify(&"a".repeat(1000)), Reason::Other);
    }

    #[test]
    fn mqtt5_codes_of_the_contract() {
        let cases = [
            (0x8E, Reason::Takeovered),
            (0x8D, Reason::KeepaliveTimeout),
            (0x87, Reason::NotAuthorized),
            (0x86, Reason::NotAuthenticated),
            (0x98, Reason::Kicked),
            (0x8B, Reason::GoAway),
            (0x9C, Reason::GoAway),
            (0x9D, Reason::GoAway),
            (0x97, Reason::TooManyConnection),
            (0x9F, Reason::TooManyConnection),
            (0x00, Reason::Normal),
            (0x85, Reason::ClientIdInvalid),
            (0x80, Reason::ServerInternalError),
            (0x81, Reason::Other),
        ];
        for (code, want) in cases {
            assert_eq!(classify_code(code), want, "{code:#x}");
        }
    }

    #[test]
    fn no_alias_or_code_is_claimed_twice() {
        let mut seen = std::collections::HashSet::new();
        for row in &TABLE {
            for name in std::iter::once(&row.id).chain(row.aliases) {
                assert!(seen.insert(*name), "{name} appears twice");
                assert_eq!(name.trim(), *name);
                assert!(!name.contains([' ', '-']) && name.to_lowercase() == *name);
            }
        }
        let mut codes = std::collections::HashSet::new();
        for row in &TABLE {
            for code in row.mqtt5_codes {
                assert!(codes.insert(*code), "code {code:#x} appears twice");
            }
        }
    }

    #[test]
    fn operator_aliases_come_first_and_match_like_the_table() {
        let aliases = Aliases::new([
            ("Session Kicked".to_string(), Reason::Kicked),
            ("tcp_closed".to_string(), Reason::KeepaliveTimeout),
            // the same spelling twice for the same reason is fine
            ("SESSION kicked".to_string(), Reason::Kicked),
        ])
        .unwrap_or_default();
        assert_eq!(aliases.classify("session kicked"), Reason::Kicked);
        assert_eq!(aliases.classify(" SESSION-KICKED "), Reason::Kicked);
        // an operator may re-map a built-in spelling
        assert_eq!(aliases.classify("tcp_closed"), Reason::KeepaliveTimeout);
        // everything else as before
        assert_eq!(aliases.classify("takenover"), Reason::Takeovered);
        assert_eq!(aliases.classify("0x8E"), Reason::Takeovered);
        assert_eq!(aliases.classify("session kickd"), Reason::Other);
        assert_eq!(classify("session kicked"), Reason::Other);
        assert_eq!(by_id("go_away"), Some(Reason::GoAway));
        assert_eq!(by_id("Go_Away"), None);
        assert!(Aliases::default().is_empty());
        // one spelling, two reasons: refused, not last-wins
        assert_eq!(
            Aliases::new([
                ("foo".to_string(), Reason::Kicked),
                ("FOO".to_string(), Reason::Normal),
            ])
            .map(|_| ()),
            Err("\"FOO\" is given as kicked and as normal".to_string())
        );
    }
}
