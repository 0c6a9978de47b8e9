//! `--web.config.file`: TLS, basic auth and response headers for every HTTP
//! endpoint, in the Prometheus exporter-toolkit format, so the file an
//! operator already uses for node_exporter works here unchanged.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt            # relative paths are read from the file's folder
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: clients-ca.crt
//!   min_version: TLS12
//! basic_auth_users:
//!   prometheus: $2y$10$...           # bcrypt hashes
//! http_server_config:
//!   headers:
//!     Strict-Transport-Security: max-age=31536000
//! ```
//!
//! Unknown keys are errors, as in the toolkit (which reads the file
//! strictly). [`load`] reads and checks the file and everything it names;
//! an empty file is refused (write `{}` to mean "no TLS and no
//! authentication"). [`Source`] re-reads it as the toolkit does, whenever
//! the file or a certificate, key or CA it names has changed and then stayed
//! unchanged for [`STABLE_FOR`] (an editor or a config tool truncates the
//! file before writing it), or at once on SIGHUP ([`Source::reload_now`]),
//! so rotated certificates and changed users apply to the next connection
//! without a restart. A reload may change certificates, keys, CAs, users and
//! headers; it can never turn TLS off, or authentication off, once the
//! exporter started with them. A file that turns bad, or would do that, is
//! logged at error, counted in `mqtt_exporter_web_config_reloads_total`, and
//! the last good one stays in force.
//!
//! TLS is rustls: TLS 1.2 and 1.3 with AEAD cipher suites only, so
//! `min_version: TLS10`/`TLS11` serve TLS 1.2 as the least, and a CBC suite
//! in `cipher_suites` is refused. `client_allowed_sans` and `rate_limit` are
//! refused as not supported rather than silently ignored.
//!
//! Here: the file's format, [`load`] and the headers; `tls.rs` makes the
//! rustls config; `reload.rs` is [`Source`]; `users.rs` checks passwords.

mod reload;
mod tls;
mod users;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use serde::Deserialize;

pub use reload::{ReloadCounters, Source, STABLE_FOR};
use tls::tls_config;
pub use users::{basic_credentials, Authenticator};

/// Why a web config file cannot be used: one line naming the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct WebConfigError(String);

pub(super) fn error(key: &str, why: impl std::fmt::Display) -> WebConfigError {
    WebConfigError(format!("{key}: {why}"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    rate_limit: Option<serde_yaml_ng::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    cert: Option<String>,
    key: Option<String>,
    client_ca_file: Option<PathBuf>,
    client_ca: Option<String>,
    client_auth_type: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    #[serde(default)]
    cipher_suites: Vec<String>,
    #[serde(default)]
    curve_preferences: Vec<String>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// Accepted for compatibility: this server speaks HTTP/1.1 only.
    #[serde(default, rename = "http2")]
    _http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The headers an operator may set, and their allowed values where the
/// toolkit restricts them (the same list, for the same reason: consistency
/// across Prometheus exporters).
const HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// A usable web config: what every connection and request is checked with.
#[derive(Debug, Default)]
pub struct WebSettings {
    /// Some: serve HTTPS only.
    pub tls: Option<Arc<ServerConfig>>,
    /// user -> bcrypt hash; empty: no authentication.
    pub users: BTreeMap<String, String>,
    /// Added to every response.
    pub headers: Vec<(String, String)>,
    /// Files the settings were read from (the config itself first), to
    /// notice a change.
    files: Vec<PathBuf>,
    /// How strongly clients are checked: a reload may not lower it.
    pub strength: Strength,
}

/// What a reload may not lower: the client-certificate requirement and the
/// least TLS version. Ordered, weakest first.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Strength {
    /// 0: no client certificate; 1: verified if given
    /// (`VerifyClientCertIfGiven`); 2: required and verified
    /// (`RequireAndVerifyClientCert`).
    pub client_cert: u8,
    /// The least TLS version served (12 or 13), 0 without TLS.
    pub min_tls: u8,
}

impl Strength {
    /// What of `self` `new` would lower, in words; `None` if nothing.
    pub fn lowered_by(&self, new: &Strength) -> Option<&'static str> {
        if new.client_cert < self.client_cert {
            Some("it would lower the client-certificate requirement (client_auth_type)")
        } else if new.min_tls < self.min_tls {
            Some("it would lower the least TLS version (min_version)")
        } else {
            None
        }
    }
}

/// Reads and checks the web config at `path` and every file it names. An
/// empty file (or one of comments only) is not a config: `{}` says plainly
/// that no TLS and no authentication are meant.
pub fn load(path: &Path) -> Result<WebSettings, WebConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| WebConfigError(format!("cannot read it: {e}")))?;
    let blank = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        return Err(WebConfigError(
            "the file is empty: write `{}` to serve without TLS and authentication".into(),
        ));
    }
    let file: File = match serde_yaml_ng::from_str::<Option<File>>(&text) {
        Ok(file) => file.unwrap_or_default(),
        Err(e) => return Err(WebConfigError(one_line(&e.to_string()))),
    };
    if file.rate_limit.is_some() {
        return Err(error("rate_limit", "is not supported by this exporter"));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut settings = WebSettings {
        files: vec![path.to_path_buf()],
        ..WebSettings::default()
    };
    for (user, hash) in file.basic_auth_users.unwrap_or_default() {
        hash.parse::<bcrypt::HashParts>().map_err(|e| {
            error(
                &format!("basic_auth_users.{user}"),
                format!("not a bcrypt hash ({e})"),
            )
        })?;
        settings.users.insert(user, hash);
    }
    let http = file.http_server_config.unwrap_or_default();
    for (name, value) in http.headers {
        let key = format!("http_server_config.headers.{name}");
        let Some((_, allowed)) = HEADERS.iter().find(|(h, _)| *h == name) else {
            return Err(error(&key, "this header can not be configured"));
        };
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(error(&key, format!("expected one of {allowed:?}")));
        }
        if hyper::header::HeaderValue::from_str(&value).is_err() {
            return Err(error(&key, "not a valid header value"));
        }
        settings.headers.push((name, value));
    }
    if let Some(tls) = file.tls_server_config {
        let client_cert = match tls.client_auth_type.as_deref() {
            Some("RequireAndVerifyClientCert") => 2,
            Some("VerifyClientCertIfGiven") => 1,
            _ => 0,
        };
        let min_tls = match tls.min_version.as_deref() {
            Some("TLS13") => 13,
            _ => 12,
        };
        settings.tls = tls_config(tls, dir, &mut settings.files)?;
        if settings.tls.is_some() {
            settings.strength = Strength {
                client_cert,
                min_tls,
            };
        }
    }
    Ok(settings)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mde-webcfg-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn err(text: &str) -> String {
        let d = dir("err");
        let path = write(&d, "web.yml", text);
        load(&path).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn a_reload_never_drops_authentication_and_waits_for_a_whole_file() {
        let d = dir("reload");
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let good = format!("basic_auth_users:\n  prom: '{hash}'\n");
        let path = write(&d, "web.yml", &good);
        let family = prometheus::IntCounterVec::new(
            prometheus::Opts::new("reloads_total", "test"),
            &["result"],
        )
        .unwrap();
        let counters = ReloadCounters::of(&family);
        let source = Source::new(path.clone(), counters.clone()).unwrap();
        assert_eq!(source.settings().users.len(), 1);
        // emptied: not a config, refused after it stays so
        write(&d, "web.yml", "");
        assert_eq!(
            source.settings().users.len(),
            1,
            "read before it was stable"
        );
        std::thread::sleep(STABLE_FOR + Duration::from_millis(100));
        assert_eq!(source.settings().users.len(), 1);
        assert_eq!(counters.invalid.get(), 1);
        // valid YAML without users: refused, not applied
        write(&d, "web.yml", "{}\n");
        source.reload_now();
        assert_eq!(source.settings().users.len(), 1);
        assert_eq!(counters.refused.get(), 1);
        // a new user list is fine
        let hash2 = bcrypt::hash("other", 4).unwrap();
        write(
            &d,
            "web.yml",
            &format!("basic_auth_users:\n  p2: '{hash2}'\n  prom: '{hash}'\n"),
        );
        source.reload_now();
        assert_eq!(source.settings().users.len(), 2);
        assert_eq!(
            (
                counters.success.get(),
                counters.invalid.get(),
                counters.refused.get()
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn bad_files_name_the_key() {
        assert!(err("tls_server_config:\n  cert_fil: x\n").contains("unknown field `cert_fil`"));
        assert!(err("basic_auth_users:\n  bob: plain\n")
            .starts_with("basic_auth_users.bob: not a bcrypt hash"));
        assert!(
            err("http_server_config:\n  headers:\n    X-Powered-By: me\n").starts_with(
                "http_server_config.headers.X-Powered-By: this header can not be configured"
            )
        );
        assert!(
            err("http_server_config:\n  headers:\n    X-Frame-Options: allow\n")
                .contains("expected one of")
        );
        assert!(err("tls_server_config:\n  client_auth_type: Sometimes\n")
            .starts_with("tls_server_config: missing one of cert or cert_file"));
        assert!(
            err("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: k\n")
                .starts_with("tls_server_config.cert_file: cannot read /nonexistent.crt")
        );
        assert!(err("rate_limit:\n  burst: 1\n").starts_with("rate_limit: is not supported"));
        assert!(!err("basic_auth_users: [\n").contains('\n'));
    }

    #[test]
    fn an_empty_file_is_refused_and_users_need_the_right_password() {
        let d = dir("users");
        for text in ["", "\n  \n", "# nothing yet\n"] {
            let empty = write(&d, "empty.yml", text);
            assert_eq!(
                load(&empty).map(|_| ()).unwrap_err().to_string(),
                "the file is empty: write `{}` to serve without TLS and authentication"
            );
        }
        let plain = write(&d, "plain.yml", "{}\n");
        let s = load(&plain).unwrap();
        assert!(s.tls.is_none() && s.users.is_empty() && s.headers.is_empty());
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let path = write(&d, "users.yml", &format!("basic_auth_users:\n  prom: '{hash}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"));
        let s = load(&path).unwrap();
        assert_eq!(
            s.headers,
            [("X-Frame-Options".to_string(), "deny".to_string())]
        );
        let auth = Authenticator::default();
        let basic = |u: &str, p: &str| {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert!(auth.check(&s.users, Some(&basic("prom", "s3cret"))));
        assert!(auth.check(&s.users, Some(&basic("prom", "s3cret"))));
        assert!(!auth.check(&s.users, Some(&basic("prom", "wrong"))));
        assert!(!auth.check(&s.users, Some(&basic("eve", "s3cret"))));
        assert!(!auth.check(&s.users, Some("Bearer x")));
        assert!(!auth.check(&s.users, None));
    }
}
