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
//! [`Source`] re-reads it as the toolkit does, whenever the file or a
//! certificate, key or CA it names has changed, so rotated certificates and
//! changed users apply to the next connection without a restart. A file
//! that turns bad is logged and the last good one stays in force.
//!
//! TLS is rustls: TLS 1.2 and 1.3 with AEAD cipher suites only, so
//! `min_version: TLS10`/`TLS11` serve TLS 1.2 as the least, and a CBC suite
//! in `cipher_suites` is refused. `client_allowed_sans` and `rate_limit` are
//! refused as not supported rather than silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use serde::Deserialize;

/// Why a web config file cannot be used: one line naming the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct WebConfigError(String);

fn error(key: &str, why: impl std::fmt::Display) -> WebConfigError {
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
    rate_limit: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
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
}

/// Reads and checks the web config at `path` and every file it names.
pub fn load(path: &Path) -> Result<WebSettings, WebConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| WebConfigError(format!("cannot read it: {e}")))?;
    let file: File = if text.trim().is_empty() {
        File::default()
    } else {
        serde_yaml::from_str(&text).map_err(|e| WebConfigError(one_line(&e.to_string())))?
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
        settings.tls = tls_config(tls, dir, &mut settings.files)?;
    }
    Ok(settings)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The toolkit's `IsEnabled`: any TLS field set means TLS.
fn enabled(t: &TlsFile) -> bool {
    t.cert_file.is_some()
        || t.key_file.is_some()
        || t.cert.is_some()
        || t.key.is_some()
        || t.client_ca_file.is_some()
        || t.client_ca.is_some()
        || t.client_auth_type.is_some()
}

/// Reads inline PEM text or a file (relative to `dir`), noting the file.
fn pem(
    key: &str,
    inline: Option<String>,
    file: Option<PathBuf>,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Option<Vec<u8>>, WebConfigError> {
    match (inline, file) {
        (Some(text), _) => Ok(Some(text.into_bytes())),
        (None, Some(file)) => {
            let path = dir.join(file);
            let bytes = std::fs::read(&path)
                .map_err(|e| error(key, format!("cannot read {}: {e}", path.display())))?;
            files.push(path);
            Ok(Some(bytes))
        }
        (None, None) => Ok(None),
    }
}

fn tls_config(
    t: TlsFile,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Option<Arc<ServerConfig>>, WebConfigError> {
    const K: &str = "tls_server_config";
    if !enabled(&t) {
        return Ok(None);
    }
    if t.client_allowed_sans.is_some() {
        return Err(error(
            &format!("{K}.client_allowed_sans"),
            "is not supported by this exporter",
        ));
    }
    let cert = pem(&format!("{K}.cert_file"), t.cert, t.cert_file, dir, files)?
        .ok_or_else(|| error(K, "missing one of cert or cert_file"))?;
    let key = pem(&format!("{K}.key_file"), t.key, t.key_file, dir, files)?
        .ok_or_else(|| error(K, "missing one of key or key_file"))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<_, _>>()
        .map_err(|e| error(&format!("{K}.cert_file"), format!("not PEM: {e:?}")))?;
    if chain.is_empty() {
        return Err(error(&format!("{K}.cert_file"), "holds no certificate"));
    }
    let private = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|e| error(&format!("{K}.key_file"), format!("no private key: {e:?}")))?;

    let mut provider = rustls::crypto::ring::default_provider();
    if !t.cipher_suites.is_empty() {
        let mut chosen = Vec::new();
        for name in &t.cipher_suites {
            let suite = provider
                .cipher_suites
                .iter()
                .find(|s| format!("{:?}", s.suite()) == *name)
                .ok_or_else(|| {
                    error(
                        &format!("{K}.cipher_suites"),
                        format!("{name} is not supported (rustls offers AEAD suites only)"),
                    )
                })?;
            chosen.push(*suite);
        }
        // TLS 1.3 suites are not configurable in the toolkit either
        chosen.extend(
            provider
                .cipher_suites
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS13),
        );
        provider.cipher_suites = chosen;
    }
    if !t.curve_preferences.is_empty() {
        let mut groups = Vec::new();
        for name in &t.curve_preferences {
            let named = match name.as_str() {
                "CurveP256" => rustls::NamedGroup::secp256r1,
                "CurveP384" => rustls::NamedGroup::secp384r1,
                "X25519" => rustls::NamedGroup::X25519,
                _ => {
                    return Err(error(
                        &format!("{K}.curve_preferences"),
                        format!("{name} is not supported (CurveP256, CurveP384, X25519)"),
                    ))
                }
            };
            groups.extend(provider.kx_groups.iter().filter(|g| g.name() == named));
        }
        provider.kx_groups = groups;
    }
    let version = |key: &str, v: &Option<String>, default: u8| match v.as_deref() {
        None => Ok(default),
        Some("TLS10" | "TLS11" | "TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some(other) => Err(error(
            &format!("{K}.{key}"),
            format!("unknown TLS version {other:?} (TLS10, TLS11, TLS12, TLS13)"),
        )),
    };
    let (min, max) = (
        version("min_version", &t.min_version, 12)?,
        version("max_version", &t.max_version, 13)?,
    );
    if min > max {
        return Err(error(&format!("{K}.min_version"), "is above max_version"));
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect();
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| error(K, e))?;

    let client_ca = pem(
        &format!("{K}.client_ca_file"),
        t.client_ca,
        t.client_ca_file,
        dir,
        files,
    )?;
    let auth = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let key_auth = format!("{K}.client_auth_type");
    let verifier = match auth {
        "" | "NoClientCert" => {
            if client_ca.is_some() {
                return Err(error(
                    &key_auth,
                    "client CAs have been configured without a client auth policy",
                ));
            }
            None
        }
        "RequireAndVerifyClientCert" | "VerifyClientCertIfGiven" => {
            let ca = client_ca.ok_or_else(|| {
                error(
                    &format!("{K}.client_ca_file"),
                    format!("is needed by {auth}"),
                )
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&ca) {
                let c = c.map_err(|e| error(&format!("{K}.client_ca_file"), format!("{e:?}")))?;
                roots
                    .add(c)
                    .map_err(|e| error(&format!("{K}.client_ca_file"), e))?;
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let builder = if auth == "VerifyClientCertIfGiven" {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            Some(
                builder
                    .build()
                    .map_err(|e| error(&format!("{K}.client_ca_file"), e))?,
            )
        }
        "RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert" => {
            return Err(error(
                &key_auth,
                format!(
                    "{auth} is not supported: use RequireAndVerifyClientCert with client_ca_file"
                ),
            ))
        }
        other => return Err(error(&key_auth, format!("invalid ClientAuth: {other}"))),
    };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, private).map_err(|e| {
        error(
            &format!("{K}.key_file"),
            format!("does not fit cert_file: {e}"),
        )
    })?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// When each file last changed, as far as `stat` tells.
fn stamps(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

struct Current {
    settings: Arc<WebSettings>,
    stamps: Vec<Option<(SystemTime, u64)>>,
    /// The stamps of a bad version already logged, so it is logged once.
    rejected: Option<Vec<Option<(SystemTime, u64)>>>,
}

/// The web config file, re-read whenever it or a file it names changes.
pub struct Source {
    path: PathBuf,
    current: Mutex<Current>,
}

impl Source {
    /// Loads `path` (refused at start if it is bad).
    pub fn new(path: PathBuf) -> Result<Source, WebConfigError> {
        let settings = load(&path)?;
        let stamps = stamps(&settings.files);
        Ok(Source {
            path,
            current: Mutex::new(Current {
                settings: Arc::new(settings),
                stamps,
                rejected: None,
            }),
        })
    }

    /// The settings for a new connection: re-read first if any file changed.
    pub fn settings(&self) -> Arc<WebSettings> {
        let Ok(mut current) = self.current.lock() else {
            return Arc::new(WebSettings::default());
        };
        let now = stamps(&current.settings.files);
        if now == current.stamps || current.rejected.as_ref() == Some(&now) {
            return Arc::clone(&current.settings);
        }
        match load(&self.path) {
            Ok(settings) => {
                tracing::info!(file = %self.path.display(), tls = settings.tls.is_some(), users = settings.users.len(), "web config reloaded");
                current.stamps = stamps(&settings.files);
                current.settings = Arc::new(settings);
                current.rejected = None;
            }
            Err(e) => {
                tracing::error!(file = %self.path.display(), error = %e, "web config is invalid; the last good one stays in force");
                current.rejected = Some(now);
            }
        }
        Arc::clone(&current.settings)
    }
}

/// Checks Basic credentials against bcrypt hashes, remembering recent
/// answers (bcrypt is slow on purpose; a scrape every few seconds must not
/// pay it each time). The cache key includes the hash, so a changed user
/// is checked afresh.
#[derive(Default)]
pub struct Authenticator {
    cache: Mutex<BTreeMap<(String, String, String), bool>>,
}

/// Most cached answers; the cache starts over when full.
const AUTH_CACHE: usize = 1024;
/// bcrypt of "fakepassword": compared for unknown users too, so a timing
/// difference does not tell which users exist.
const FAKE_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

impl Authenticator {
    /// Whether the `Authorization` header value admits a request.
    pub fn check(&self, users: &BTreeMap<String, String>, authorization: Option<&str>) -> bool {
        use base64::Engine;
        let Some((user, password)) = authorization
            .and_then(|h| h.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| {
                let (u, p) = pair.split_once(':')?;
                Some((u.to_string(), p.to_string()))
            })
        else {
            return false;
        };
        let known = users.get(&user);
        let hash = known.map_or(FAKE_HASH, String::as_str).to_string();
        let key = (user, hash.clone(), password.clone());
        if let Some(&ok) = self.cache.lock().ok().as_ref().and_then(|c| c.get(&key)) {
            return ok;
        }
        let ok = bcrypt::verify(&password, &hash).unwrap_or(false) && known.is_some();
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= AUTH_CACHE {
                cache.clear();
            }
            cache.insert(key, ok);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn an_empty_file_changes_nothing_and_users_need_the_right_password() {
        let d = dir("users");
        let empty = write(&d, "empty.yml", "");
        let s = load(&empty).unwrap();
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
