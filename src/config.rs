//! Validated configuration: every flag checked before any port is bound.
//!
//! [`Config::from_args`] turns the raw [`ServeArgs`] into typed values
//! (durations, a parsed broker URL, a socket address, non-zero caps) or one
//! [`ConfigError`] that names the flag. It reads the password and certificate
//! files, so a missing or unreadable file fails at start, not at the first
//! reconnect; apart from those reads it is pure.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::ServeArgs;
use crate::core::flapping::Settings;
use crate::core::pipeline::PipelineSettings;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {flag}: {why}")]
    Invalid {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("cannot read {flag} file {path}: {why}")]
    File {
        flag: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("invalid {flag} file {path}: {why}")]
    Content {
        flag: &'static str,
        path: PathBuf,
        why: String,
    },
}

fn invalid(flag: &'static str, value: impl ToString, why: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        flag,
        value: value.to_string(),
        why: why.to_string(),
    }
}

/// Broker transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls {
        ca: Vec<u8>,
        client_auth: Option<(Vec<u8>, Vec<u8>)>,
    },
}

/// A password: its `Debug` output is redacted, so logging a config cannot
/// leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

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

/// Everything the MQTT edge needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    pub topics: Vec<String>,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub qos: u8,
    pub clean_session: bool,
    pub session_expiry: Duration,
    pub keepalive: Duration,
    pub max_packet_size: u32,
}

/// Everything the HTTP edge needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    pub listen: SocketAddr,
    pub telemetry_path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// The validated configuration of `serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub mqtt: MqttConfig,
    pub web: WebConfig,
    pub pipeline: PipelineSettings,
    pub log_level: String,
    pub log_format: LogFormat,
}

impl Config {
    /// Validates `args`; `password_env` is MQTT_EXPORTER_MQTT_PASSWORD and
    /// `hostname` the default client ID's suffix (both passed in for tests).
    pub fn from_args(
        args: &ServeArgs,
        password_env: Option<String>,
        hostname: &str,
    ) -> Result<Config, ConfigError> {
        let (host, port, tls) = parse_url(&args.mqtt_url)?;
        let transport = if tls {
            let ca = match &args.mqtt_ca_file {
                Some(path) => {
                    let pem = read_file("--mqtt.ca-file", path)?;
                    check_ca(&pem).map_err(|why| file_error("--mqtt.ca-file", path, why))?;
                    pem
                }
                None => {
                    return Err(invalid(
                        "--mqtt.ca-file",
                        "",
                        "mqtts:// needs a CA certificate to verify the broker",
                    ))
                }
            };
            let client_auth = match (&args.mqtt_cert_file, &args.mqtt_key_file) {
                (Some(cert), Some(key)) => {
                    let cert_pem = read_file("--mqtt.cert-file", cert)?;
                    let key_pem = read_file("--mqtt.key-file", key)?;
                    check_client_auth(&cert_pem, &key_pem).map_err(|(flag, why)| {
                        let path = if flag == "--mqtt.cert-file" {
                            cert
                        } else {
                            key
                        };
                        file_error(flag, path, why)
                    })?;
                    Some((cert_pem, key_pem))
                }
                (None, None) => None,
                (Some(_), None) => {
                    return Err(invalid(
                        "--mqtt.key-file",
                        "",
                        "needed with --mqtt.cert-file",
                    ))
                }
                (None, Some(_)) => {
                    return Err(invalid(
                        "--mqtt.cert-file",
                        "",
                        "needed with --mqtt.key-file",
                    ))
                }
            };
            Transport::Tls { ca, client_auth }
        } else {
            if args.mqtt_ca_file.is_some() || args.mqtt_cert_file.is_some() {
                return Err(invalid(
                    "--mqtt.url",
                    &args.mqtt_url,
                    "TLS files were given, use mqtts://",
                ));
            }
            Transport::Tcp
        };

        let topics: Vec<String> = args
            .mqtt_topics
            .iter()
            .map(|t| t.trim().to_string())
            .collect();
        if topics.is_empty() {
            return Err(invalid(
                "--mqtt.topic",
                "",
                "at least one topic filter is needed",
            ));
        }
        for topic in &topics {
            validate_filter(topic).map_err(|why| invalid("--mqtt.topic", topic, why))?;
        }

        let client_id = match &args.mqtt_client_id {
            Some(id) if id.trim().is_empty() => {
                return Err(invalid("--mqtt.client-id", id, "must not be empty"))
            }
            Some(id) => id.clone(),
            None => default_client_id(hostname),
        };

        let password = match &args.mqtt_password_file {
            Some(path) => {
                let bytes = read_file("--mqtt.password-file", path)?;
                let text = String::from_utf8(bytes).map_err(|_| ConfigError::File {
                    flag: "--mqtt.password-file",
                    path: path.clone(),
                    why: "not UTF-8".into(),
                })?;
                let password = text.trim_end_matches(['\r', '\n']);
                if password.is_empty() {
                    return Err(file_error(
                        "--mqtt.password-file",
                        path,
                        "the file is empty",
                    ));
                }
                if password.len() > usize::from(u16::MAX) {
                    return Err(file_error(
                        "--mqtt.password-file",
                        path,
                        "longer than MQTT's 65535-byte password limit",
                    ));
                }
                Some(Secret(password.to_string()))
            }
            None => password_env.map(Secret),
        };
        if password.is_some() && args.mqtt_username.is_none() {
            return Err(invalid(
                "--mqtt.username",
                "",
                "a password was given without a username",
            ));
        }

        if args.mqtt_qos > 2 {
            return Err(invalid("--mqtt.qos", args.mqtt_qos, "must be 0, 1 or 2"));
        }
        let session_expiry = parse_duration(&args.mqtt_session_expiry)
            .map_err(|why| invalid("--mqtt.session-expiry", &args.mqtt_session_expiry, why))?;
        if session_expiry.as_secs() > u64::from(u32::MAX) {
            return Err(invalid(
                "--mqtt.session-expiry",
                &args.mqtt_session_expiry,
                "longer than MQTT allows",
            ));
        }
        let keepalive = nonzero_duration("--mqtt.keepalive", &args.mqtt_keepalive)?;
        if keepalive.as_secs() > u64::from(u16::MAX) || keepalive.as_secs() < 5 {
            return Err(invalid(
                "--mqtt.keepalive",
                &args.mqtt_keepalive,
                "must be between 5s and 65535s",
            ));
        }
        if args.mqtt_max_packet_size < 1024 {
            return Err(invalid(
                "--mqtt.max-packet-size",
                args.mqtt_max_packet_size,
                "must be at least 1024",
            ));
        }
        if args.event_max_payload_size == 0 {
            return Err(invalid("--event.max-payload-size", 0, "must be above 0"));
        }

        let max_skew = nonzero_duration("--event.max-clock-skew", &args.event_max_clock_skew)?;
        let takeover_window = nonzero_duration("--flapping.window", &args.flapping_window)?;
        let reconnect_window = nonzero_duration(
            "--flapping.window-reconnect",
            &args.flapping_window_reconnect,
        )?;
        if args.flapping_takeover_threshold < 2 {
            return Err(invalid(
                "--flapping.takeover-threshold",
                args.flapping_takeover_threshold,
                "must be at least 2 (one takeover is normal self-repair)",
            ));
        }
        if args.flapping_reconnect_threshold < 2 {
            return Err(invalid(
                "--flapping.reconnect-threshold",
                args.flapping_reconnect_threshold,
                "must be at least 2",
            ));
        }
        for (flag, value, max) in [
            (
                "--flapping.takeover-threshold",
                args.flapping_takeover_threshold,
                1000,
            ),
            (
                "--flapping.reconnect-threshold",
                args.flapping_reconnect_threshold,
                1000,
            ),
            ("--flapping.top-clients", args.flapping_top_clients, 1000),
            ("--flapping.max-peers", args.flapping_max_peers, 1000),
        ] {
            if value > max {
                return Err(invalid(flag, value, format!("must be at most {max}")));
            }
        }
        if args.clients_max_tracked == 0 {
            return Err(invalid("--clients.max-tracked", 0, "must be above 0"));
        }

        let listen = parse_listen(&args.web_listen_address)?;
        let path = &args.web_telemetry_path;
        if !path.starts_with('/') || path.contains(char::is_whitespace) {
            return Err(invalid("--web.telemetry-path", path, "must start with /"));
        }
        if matches!(path.as_str(), "/" | "/-/healthy" | "/-/ready")
            || path == "/api"
            || path.starts_with("/api/")
        {
            return Err(invalid(
                "--web.telemetry-path",
                path,
                "taken by the landing page, a health endpoint or the API",
            ));
        }
        let log_format = match args.log_format.as_str() {
            "logfmt" => LogFormat::Logfmt,
            "json" => LogFormat::Json,
            other => return Err(invalid("--log.format", other, "must be logfmt or json")),
        };
        let log_level = match args.log_level.to_ascii_lowercase().as_str() {
            level @ ("error" | "warn" | "info" | "debug" | "trace") => level.to_string(),
            "warning" => "warn".to_string(),
            _ => {
                return Err(invalid(
                    "--log.level",
                    &args.log_level,
                    "must be error, warn, info, debug or trace",
                ))
            }
        };

        Ok(Config {
            mqtt: MqttConfig {
                host,
                port,
                transport,
                topics,
                client_id,
                username: args.mqtt_username.clone(),
                password,
                qos: args.mqtt_qos,
                clean_session: args.mqtt_clean_session,
                session_expiry,
                keepalive,
                max_packet_size: args.mqtt_max_packet_size,
            },
            web: WebConfig {
                listen,
                telemetry_path: path.clone(),
            },
            pipeline: PipelineSettings {
                max_payload_bytes: args.event_max_payload_size,
                top_flapping: args.flapping_top_clients,
                flapping: Settings {
                    takeover_window_ms: millis(takeover_window),
                    takeover_threshold: args.flapping_takeover_threshold,
                    reconnect_window_ms: millis(reconnect_window),
                    reconnect_threshold: args.flapping_reconnect_threshold,
                    max_tracked: args.clients_max_tracked,
                    max_peers: args.flapping_max_peers,
                    max_skew_ms: millis(max_skew),
                },
            },
            log_level,
            log_format,
        })
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `mqtt://host[:1883]` or `mqtts://host[:8883]` → (host, port, tls).
pub fn parse_url(raw: &str) -> Result<(String, u16, bool), ConfigError> {
    let flag = "--mqtt.url";
    let url = url::Url::parse(raw).map_err(|e| invalid(flag, raw, e))?;
    let tls = match url.scheme() {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        other => {
            return Err(invalid(
                flag,
                raw,
                format!("unsupported scheme {other:?}, use mqtt:// or mqtts://"),
            ))
        }
    };
    let host = match url.host() {
        Some(url::Host::Ipv6(addr)) => addr.to_string(),
        Some(host) => host.to_string(),
        None => return Err(invalid(flag, raw, "no host")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            flag,
            "<redacted>",
            "credentials in the URL are not accepted; use --mqtt.username and --mqtt.password-file",
        ));
    }
    if !matches!(url.path(), "" | "/") {
        return Err(invalid(flag, raw, "a broker URL has no path"));
    }
    let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
    if port == 0 {
        return Err(invalid(flag, raw, "port 0 is not a broker's port"));
    }
    Ok((host, port, tls))
}

fn validate_filter(filter: &str) -> Result<(), &'static str> {
    if filter.is_empty() {
        return Err("empty topic filter");
    }
    if filter.len() > 65535 || filter.contains('\0') {
        return Err("not a valid MQTT topic filter");
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("# must be a whole level and the last one");
        }
        if level.contains('+') && *level != "+" {
            return Err("+ must be a whole level");
        }
    }
    if filter.starts_with("$share/") && levels.len() < 3 {
        return Err("a shared subscription is $share/<group>/<filter>");
    }
    Ok(())
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

/// Parses `[::1]:9883`, `127.0.0.1:9883`, or `:9883` (all interfaces).
pub fn parse_listen(raw: &str) -> Result<SocketAddr, ConfigError> {
    let flag = "--web.listen-address";
    let full = if raw.starts_with(':') {
        format!("0.0.0.0{raw}")
    } else if raw == "localhost" || raw.starts_with("localhost:") {
        raw.replacen("localhost", "127.0.0.1", 1)
    } else {
        raw.to_string()
    };
    full.parse().map_err(|_| {
        invalid(
            flag,
            raw,
            "expected host:port, e.g. 127.0.0.1:9883 or :9883",
        )
    })
}

/// Parses durations such as `500ms`, `30s`, `5m`, `1h`, `1d`, `1h30m`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err("must not be negative".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err("expected a number followed by a unit (ms, s, m, h, d), e.g. 5m".into());
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| "number too large".to_string())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms_per = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err("missing unit (ms, s, m, h, d)".into()),
            other => return Err(format!("unknown unit {other:?} (use ms, s, m, h, d)")),
        };
        let ms = n.checked_mul(ms_per).ok_or("duration too large")?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or("duration too large")?;
    }
    Ok(total)
}

fn nonzero_duration(flag: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    let d = parse_duration(raw).map_err(|why| invalid(flag, raw, why))?;
    if d.is_zero() {
        return Err(invalid(flag, raw, "must be above zero"));
    }
    Ok(d)
}

fn file_error(flag: &'static str, path: &Path, why: impl ToString) -> ConfigError {
    ConfigError::Content {
        flag,
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// The CA file must hold at least one certificate, and every certificate
/// in it must parse as a trust anchor.
fn check_ca(pem: &[u8]) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(())
}

/// The client certificate and key must parse and belong together; the
/// error names the file to fix.
fn check_client_auth(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), (&'static str, String)> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ("--mqtt.cert-file", format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(("--mqtt.cert-file", "no PEM certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| ("--mqtt.key-file", format!("no PEM private key in it: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(certs, key, &provider).map_err(|e| {
        (
            "--mqtt.key-file",
            format!("does not match --mqtt.cert-file or cannot be used: {e}"),
        )
    })?;
    Ok(())
}

fn read_file(flag: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::File {
        flag,
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["mqtt-disconnect-exporter"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().serve
    }

    fn err(extra: &[&str]) -> String {
        Config::from_args(&args(extra), None, "host")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let c = Config::from_args(&args(&[]), None, "node-7").unwrap();
        assert_eq!(c.mqtt.host, "127.0.0.1");
        assert_eq!(c.mqtt.port, 1883);
        assert_eq!(c.mqtt.transport, Transport::Tcp);
        assert_eq!(c.mqtt.client_id, "mqtt-disconnect-exporter-node-7");
        assert_eq!(c.mqtt.qos, 1);
        assert!(!c.mqtt.clean_session);
        assert_eq!(c.mqtt.session_expiry, Duration::from_secs(3600));
        assert_eq!(c.mqtt.max_packet_size, 1024 * 1024);
        assert_eq!(c.mqtt.topics.len(), 4);
        assert_eq!(c.web.listen, "127.0.0.1:9883".parse().unwrap());
        assert_eq!(c.web.telemetry_path, "/metrics");
        assert_eq!(c.pipeline.flapping, Settings::default());
        assert_eq!(c.pipeline.top_flapping, 20);
    }

    #[test]
    fn bad_values_name_the_flag() {
        assert!(err(&["--mqtt.url", "http://x"]).contains("--mqtt.url"));
        assert!(err(&["--mqtt.url", "not a url"]).contains("--mqtt.url"));
        assert!(err(&["--mqtt.url", "mqtts://x"]).contains("--mqtt.ca-file"));
        assert!(err(&["--flapping.window", "0s"]).contains("must be above zero"));
        assert!(err(&["--flapping.window", "5 minutes"]).contains("--flapping.window"));
        assert!(err(&["--flapping.takeover-threshold", "1"]).contains("self-repair"));
        assert!(err(&["--mqtt.qos", "3"]).contains("--mqtt.qos"));
        assert!(err(&["--mqtt.topic", "a/#/b"]).contains("--mqtt.topic"));
        assert!(err(&["--web.listen-address", "nowhere"]).contains("--web.listen-address"));
        assert!(err(&["--log.format", "xml"]).contains("--log.format"));
        assert!(err(&["--clients.max-tracked", "0"]).contains("--clients.max-tracked"));
        let e = err(&[
            "--mqtt.url",
            "mqtts://x",
            "--mqtt.ca-file",
            "/nonexistent/ca.pem",
        ]);
        assert!(
            e.starts_with("cannot read --mqtt.ca-file file /nonexistent/ca.pem"),
            "{e}"
        );
        let e = err(&["--mqtt.url", "mqtt://user:secret@x"]);
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn urls_and_addresses() {
        assert_eq!(
            parse_url("mqtt://b:1884").unwrap(),
            ("b".into(), 1884, false)
        );
        assert_eq!(parse_url("mqtts://b").unwrap(), ("b".into(), 8883, true));
        assert_eq!(
            parse_url("mqtt://[::1]:1").unwrap(),
            ("::1".into(), 1, false)
        );
        assert_eq!(
            parse_listen(":9883").unwrap(),
            "0.0.0.0:9883".parse().unwrap()
        );
        assert_eq!(parse_listen("[::1]:1").unwrap(), "[::1]:1".parse().unwrap());
    }

    #[test]
    fn log_levels() {
        let level =
            |l: &str| Config::from_args(&args(&["--log.level", l]), None, "h").map(|c| c.log_level);
        assert_eq!(level("warning").unwrap(), "warn");
        assert_eq!(level("WARN").unwrap(), "warn");
        assert_eq!(level("debug").unwrap(), "debug");
        assert!(err(&["--log.level", "bogus"]).contains("--log.level"));
        assert!(err(&["--log.level", "info,rumqttc=off"]).contains("--log.level"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
    }

    #[test]
    fn password_file_and_env() {
        let dir = std::env::temp_dir().join(format!("mde-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let a = args(&[
            "--mqtt.username",
            "u",
            "--mqtt.password-file",
            file.to_str().unwrap(),
        ]);
        let c = Config::from_args(&a, Some("env".into()), "h").unwrap();
        assert_eq!(c.mqtt.password.as_ref().map(Secret::expose), Some("s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
        let c =
            Config::from_args(&args(&["--mqtt.username", "u"]), Some("env".into()), "h").unwrap();
        assert_eq!(c.mqtt.password.as_ref().map(Secret::expose), Some("env"));
        assert!(Config::from_args(&args(&[]), Some("env".into()), "h").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn client_id_from_hostname() {
        assert_eq!(
            default_client_id("pod-abc\n"),
            "mqtt-disconnect-exporter-pod-abc"
        );
        assert_eq!(default_client_id(""), "mqtt-disconnect-exporter");
        assert_eq!(default_client_id("a b/c"), "mqtt-disconnect-exporter-abc");
    }
}
