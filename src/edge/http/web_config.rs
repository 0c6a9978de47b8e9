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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

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
    rate_limit: Option<serde_yaml_ng::Value>,
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
    let provider = Arc::new(crypto_provider(&t)?);
    let versions = protocol_versions(&t)?;
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
    let verifier = client_verifier(t.client_auth_type.as_deref(), client_ca, &provider)?;
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

/// The crypto provider with the file's cipher suites and curves (TLS 1.3
/// suites always, as in the exporter toolkit).
fn crypto_provider(t: &TlsFile) -> Result<rustls::crypto::CryptoProvider, WebConfigError> {
    const K: &str = "tls_server_config";
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
    Ok(provider)
}

/// The TLS versions between the file's `min_version` and `max_version`
/// (TLS 1.2 and 1.3; older ones are read as 1.2).
fn protocol_versions(
    t: &TlsFile,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, WebConfigError> {
    const K: &str = "tls_server_config";
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
    Ok(
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect(),
    )
}

/// The client-certificate check of `client_auth_type`, with the client
/// CAs read from the file (`None`: no client certificate asked).
fn client_verifier(
    client_auth_type: Option<&str>,
    client_ca: Option<Vec<u8>>,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, WebConfigError> {
    const K: &str = "tls_server_config";
    let auth = client_auth_type.unwrap_or("NoClientCert");
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
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
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
    Ok(verifier)
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

/// How long the files must stay unchanged before a change is read: a file
/// truncated and rewritten in place is read once it is whole.
pub const STABLE_FOR: Duration = Duration::from_secs(1);

/// How reloads went: `mqtt_exporter_web_config_reloads_total{result}`.
#[derive(Clone)]
pub struct ReloadCounters {
    /// Read and in force.
    pub success: prometheus::IntCounter,
    /// Not a valid config (unreadable, empty, bad YAML, bad certificate...).
    pub invalid: prometheus::IntCounter,
    /// Valid, but it would turn TLS or authentication off.
    pub refused: prometheus::IntCounter,
}

impl ReloadCounters {
    /// The three series of `family` (a counter vector labelled `result`).
    pub fn of(family: &prometheus::IntCounterVec) -> ReloadCounters {
        ReloadCounters {
            success: family.with_label_values(&["success"]),
            invalid: family.with_label_values(&["invalid"]),
            refused: family.with_label_values(&["refused"]),
        }
    }
}

/// When each file last changed and its length, as far as `stat` tells.
type Stamps = Vec<Option<(SystemTime, u64)>>;

struct Current {
    settings: Arc<WebSettings>,
    stamps: Stamps,
    /// The stamps of a bad version already logged, so it is logged once.
    rejected: Option<Stamps>,
    /// Stamps seen changed, and since when they have stayed so.
    changing: Option<(Stamps, Instant)>,
}

/// The web config file, re-read whenever it or a file it names changes.
pub struct Source {
    path: PathBuf,
    /// What the exporter started with: a reload may not drop them.
    started_with_tls: bool,
    started_with_auth: bool,
    counters: ReloadCounters,
    current: Mutex<Current>,
}

impl Source {
    /// Loads `path` (refused at start if it is bad).
    pub fn new(path: PathBuf, counters: ReloadCounters) -> Result<Source, WebConfigError> {
        let settings = load(&path)?;
        let stamps = stamps(&settings.files);
        Ok(Source {
            path,
            started_with_tls: settings.tls.is_some(),
            started_with_auth: !settings.users.is_empty(),
            counters,
            current: Mutex::new(Current {
                settings: Arc::new(settings),
                stamps,
                rejected: None,
                changing: None,
            }),
        })
    }

    /// The settings for a new connection: re-read first if any file changed
    /// and has stayed unchanged for [`STABLE_FOR`].
    pub fn settings(&self) -> Arc<WebSettings> {
        let Ok(mut current) = self.current.lock() else {
            // a poisoned lock cannot happen (nothing panics under it); if it
            // did, serving nothing is the safe answer
            return Arc::new(WebSettings::closed());
        };
        let now = stamps(&current.settings.files);
        if now == current.stamps || current.rejected.as_ref() == Some(&now) {
            current.changing = None;
            return Arc::clone(&current.settings);
        }
        match &current.changing {
            Some((seen, since)) if *seen == now && since.elapsed() >= STABLE_FOR => {}
            Some((seen, _)) if *seen == now => return Arc::clone(&current.settings),
            _ => {
                current.changing = Some((now, Instant::now()));
                return Arc::clone(&current.settings);
            }
        }
        current.changing = None;
        self.reload(&mut current, now, "changed");
        Arc::clone(&current.settings)
    }

    /// Re-reads the file now (SIGHUP), whatever its stamps say; logs what
    /// was read and whether it is in force.
    pub fn reload_now(&self) {
        if let Ok(mut current) = self.current.lock() {
            let now = stamps(&current.settings.files);
            current.changing = None;
            current.rejected = None;
            self.reload(&mut current, now, "SIGHUP");
        }
    }

    fn reload(&self, current: &mut Current, now: Stamps, why: &str) {
        let file = self.path.display();
        match load(&self.path) {
            Ok(settings) if self.started_with_tls && settings.tls.is_none() => {
                tracing::error!(%file, trigger = why, "web config refused: it would turn TLS off, which needs a restart; the last good one stays in force");
                self.counters.refused.inc();
                current.rejected = Some(now);
            }
            Ok(settings) if self.started_with_auth && settings.users.is_empty() => {
                tracing::error!(%file, trigger = why, "web config refused: it would turn authentication off (no basic_auth_users), which needs a restart; the last good one stays in force");
                self.counters.refused.inc();
                current.rejected = Some(now);
            }
            Ok(settings) => {
                tracing::info!(%file, trigger = why, tls = settings.tls.is_some(), users = settings.users.len(), "web config reloaded");
                self.counters.success.inc();
                current.stamps = stamps(&settings.files);
                current.settings = Arc::new(settings);
                current.rejected = None;
            }
            Err(e) => {
                tracing::error!(%file, trigger = why, error = %e, "web config is invalid; the last good one stays in force");
                self.counters.invalid.inc();
                current.rejected = Some(now);
            }
        }
    }
}

impl WebSettings {
    /// Settings that admit nobody: every request is refused.
    fn closed() -> WebSettings {
        WebSettings {
            users: BTreeMap::from([(String::new(), String::new())]),
            ..WebSettings::default()
        }
    }
}

/// Checks Basic credentials against bcrypt hashes. bcrypt is slow on
/// purpose (about 90 ms at cost 10), so good credentials are remembered and
/// a scrape every few seconds pays it once; only good ones are, so a flood
/// of wrong passwords cannot push Prometheus's out. The cache key includes
/// the hash, so a changed user is checked afresh.
#[derive(Default)]
pub struct Authenticator {
    good: Mutex<BTreeMap<(String, String), String>>,
}

/// Most good credentials remembered; the cache starts over when full.
const AUTH_CACHE: usize = 64;
/// bcrypt of "fakepassword": compared for unknown users too, so a timing
/// difference does not tell which users exist.
const FAKE_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// The user and password of a `Basic` `Authorization` header value.
pub fn basic_credentials(authorization: Option<&str>) -> Option<(String, String)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(authorization?.strip_prefix("Basic ")?.trim())
        .ok()?;
    let pair = String::from_utf8(raw).ok()?;
    let (user, password) = pair.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Compares in time that depends on the lengths only.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl Authenticator {
    /// Whether these credentials were admitted before with the user's
    /// current hash: the answer without bcrypt.
    pub fn known_good(&self, users: &BTreeMap<String, String>, user: &str, password: &str) -> bool {
        let Some(hash) = users.get(user) else {
            return false;
        };
        self.good
            .lock()
            .ok()
            .and_then(|good| {
                good.get(&(user.to_string(), hash.clone()))
                    .map(|p| same(p, password))
            })
            .unwrap_or(false)
    }

    /// Checks the credentials with bcrypt (slow: call it off the async
    /// workers, and bounded), remembering them if good.
    pub fn verify(&self, users: &BTreeMap<String, String>, user: &str, password: &str) -> bool {
        let known = users.get(user);
        let hash = known.map_or(FAKE_HASH, String::as_str);
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known.is_some();
        if ok {
            if let Ok(mut good) = self.good.lock() {
                if good.len() >= AUTH_CACHE {
                    good.clear();
                }
                good.insert((user.to_string(), hash.to_string()), password.to_string());
            }
        }
        ok
    }

    /// Whether the `Authorization` header value admits a request: the cache,
    /// else bcrypt (blocking).
    pub fn check(&self, users: &BTreeMap<String, String>, authorization: Option<&str>) -> bool {
        let Some((user, password)) = basic_credentials(authorization) else {
            return false;
        };
        self.known_good(users, &user, &password) || self.verify(users, &user, &password)
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
