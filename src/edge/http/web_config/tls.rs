//! The web config's `tls_server_config`: certificates, keys, the client
//! CA and `client_auth_type`, versions and cipher suites, made into a
//! rustls [`ServerConfig`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;

use super::{error, TlsFile, WebConfigError};

/// The toolkit's `IsEnabled`: any TLS field set means TLS.
pub(super) fn enabled(t: &TlsFile) -> bool {
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

pub(super) fn tls_config(
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
