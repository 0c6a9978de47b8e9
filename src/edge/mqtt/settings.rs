//! What the MQTT source is told: where the broker is, how to reach it
//! (TLS, credentials, keep-alive), what to subscribe to, and in which MQTT
//! version. The value types parse themselves ([`BrokerUrl`],
//! [`topic_filter`], [`keepalive`], ...), so clap calls them and a bad
//! value is refused with one line naming the flag. The source owns its
//! secrets: [`BrokerConfig::current_password`] re-reads the password file
//! before each connect, and [`super::broker_tls`] the TLS files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::broker_tls::BrokerTls;
use super::session::ProtocolChoice;
use crate::edge::files::{self, FileError};

/// A parsed broker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// The URL carried a user name or password: refused when the flags are
    /// read (`cli/settings.rs`), which can say so without echoing them
    /// (clap's own error would quote the whole value).
    pub has_credentials: bool,
}

/// `mqtt://host[:1883]` or `mqtts://host[:8883]`.
impl std::str::FromStr for BrokerUrl {
    type Err = String;

    fn from_str(raw: &str) -> Result<BrokerUrl, String> {
        broker_url(raw)
    }
}

fn broker_url(raw: &str) -> Result<BrokerUrl, String> {
    let url = url::Url::parse(raw).map_err(|e| e.to_string())?;
    let tls = match url.scheme() {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        other => {
            return Err(format!(
                "unsupported scheme {other:?}, use mqtt:// or mqtts://"
            ))
        }
    };
    let host = match url.host() {
        Some(url::Host::Ipv6(addr)) => addr.to_string(),
        Some(host) => host.to_string(),
        None => return Err("no host".into()),
    };
    if !matches!(url.path(), "" | "/") {
        return Err("a broker URL has no path".into());
    }
    let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
    if port == 0 {
        return Err("port 0 is not a broker's port".into());
    }
    Ok(BrokerUrl {
        host,
        port,
        tls,
        has_credentials: !url.username().is_empty() || url.password().is_some(),
    })
}

/// A client ID: any text but blank.
pub fn client_id(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(raw.to_string())
}

/// A topic filter as MQTT allows it (`#` last and whole, `+` whole).
pub fn topic_filter(raw: &str) -> Result<String, String> {
    let filter = raw.trim();
    if filter.is_empty() {
        return Err("empty topic filter".into());
    }
    if filter.len() > 65535 || filter.contains('\0') {
        return Err("not a valid MQTT topic filter".into());
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("# must be a whole level and the last one".into());
        }
        if level.contains('+') && *level != "+" {
            return Err("+ must be a whole level".into());
        }
    }
    if filter.starts_with("$share/") && levels.len() < 3 {
        return Err("a shared subscription is $share/<group>/<filter>".into());
    }
    Ok(filter.to_string())
}

/// An MQTT keep-alive: 5 s to 65,535 s.
pub fn keepalive(raw: &str) -> Result<Duration, String> {
    let d = crate::core::duration::parse(raw)?;
    if d.as_secs() > u64::from(u16::MAX) || d.as_secs() < 5 {
        return Err("must be between 5s and 65535s".into());
    }
    Ok(d)
}

/// An MQTT 5 session expiry interval (at most 2^32-1 s).
pub fn session_expiry(raw: &str) -> Result<Duration, String> {
    let d = crate::core::duration::parse(raw)?;
    if d.as_secs() > u64::from(u32::MAX) {
        return Err("longer than MQTT allows".into());
    }
    Ok(d)
}

/// A DNS name or an IP address a certificate can be issued for.
pub fn server_name(raw: &str) -> Result<String, String> {
    rustls::pki_types::ServerName::try_from(raw)
        .map(|_| raw.to_string())
        .map_err(|e| e.to_string())
}

/// Broker transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls(BrokerTls),
}

/// A password: its `Debug` output is redacted, so logging a config cannot
/// leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to reach the broker: the exporter's and `simulate`'s connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Where `password` came from: re-read before every connect, so a
    /// rotated password is used without a restart.
    pub password_file: Option<PathBuf>,
    pub keepalive: Duration,
}

impl BrokerConfig {
    /// Re-reads the password file now (SIGHUP) and logs whether it is
    /// usable; the next connect reads it again in any case.
    pub fn check_password_file(&self) {
        if let Some(path) = &self.password_file {
            match read_password(path) {
                Ok(_) => {
                    tracing::info!(file = %path.display(), "password file re-read: valid; the next connect uses it")
                }
                Err(e) => {
                    tracing::error!(error = %e, "password file re-read: invalid; the last one read stays in use")
                }
            }
        }
    }

    /// The password to connect with now: the password file as it is now
    /// (the last good one if it cannot be read), or the one given at start.
    pub fn current_password(&self) -> Option<Secret> {
        match &self.password_file {
            Some(path) => match read_password(path) {
                Ok(password) => Some(password),
                Err(e) => {
                    tracing::error!(error = %e, "cannot re-read the password file; using the last one read");
                    self.password.clone()
                }
            },
            None => self.password.clone(),
        }
    }
}

/// Everything the MQTT source needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub broker: BrokerConfig,
    pub topics: Vec<String>,
    pub qos: u8,
    pub clean_session: bool,
    pub session_expiry: Duration,
    pub max_packet_size: u32,
    /// `--mqtt.protocol`.
    pub protocol: ProtocolChoice,
}

/// The password file: UTF-8, trailing newline stripped, not empty, within
/// MQTT's 65,535 bytes.
pub fn read_password(path: &Path) -> Result<Secret, FileError> {
    let flag = "--mqtt.password-file";
    let bytes = files::read(flag, path)?;
    let text = String::from_utf8(bytes).map_err(|_| files::content(flag, path, "not UTF-8"))?;
    let password = text.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(files::content(flag, path, "the file is empty"));
    }
    if password.len() > usize::from(u16::MAX) {
        return Err(files::content(
            flag,
            path,
            "longer than MQTT's 65535-byte password limit",
        ));
    }
    Ok(Secret(password.to_string()))
}

/// The default client ID: stable per host, distinct across replicas.
pub fn default_client_id(hostname: &str) -> String {
    let host: String = hostname
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '.')
        .take(64)
        .collect();
    if host.is_empty() {
        "mqtt-disconnect-exporter".to_string()
    } else {
        format!("mqtt-disconnect-exporter-{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_with_their_default_ports() {
        let broker_url = |s: &str| s.parse::<BrokerUrl>();
        let url = |host: &str, port, tls| BrokerUrl {
            host: host.into(),
            port,
            tls,
            has_credentials: false,
        };
        assert_eq!(broker_url("mqtt://b:1884").unwrap(), url("b", 1884, false));
        assert_eq!(broker_url("mqtts://b").unwrap(), url("b", 8883, true));
        assert_eq!(broker_url("mqtt://[::1]:1").unwrap(), url("::1", 1, false));
        assert!(broker_url("mqtt://b:0").is_err());
    }
}
