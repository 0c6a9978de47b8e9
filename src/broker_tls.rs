//! TLS to the broker: whom to trust, what name to verify, which client
//! certificate to show. Files are read each time a connection is made, so a
//! rotated client certificate or CA is used at the next reconnect without a
//! restart.
//!
//! Trust is the `--mqtt.ca-file` when given, else the system trust store
//! (which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`), so a broker with a
//! public certificate (EMQX Cloud, TDMQ's default certificate) needs no CA
//! file. `--mqtt.tls-server-name` verifies the broker's certificate against
//! another name than the URL's host (an IP address, say).
//! `--mqtt.tls-insecure-skip-verify` accepts any certificate; it is logged
//! as a warning at every connect.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How to talk TLS to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerTls {
    /// None: the system trust store.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key, for mutual TLS.
    pub client_files: Option<(PathBuf, PathBuf)>,
    /// Verify the certificate for this name instead of the URL's host.
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
}

/// Why the TLS files cannot be used, naming the flag (and the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {flag} file {}: {why}", path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("invalid {flag} file {}: {why}", path.display())]
    Content {
        flag: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("invalid value for {flag}: {why}")]
    Setting { flag: &'static str, why: String },
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        flag,
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

fn content(flag: &'static str, path: &Path, why: impl ToString) -> TlsError {
    TlsError::Content {
        flag,
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// The trust anchors: every certificate of the CA file (each must be a
/// usable trust anchor), or the system's.
pub fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    const FLAG: &str = "--mqtt.ca-file";
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = read(FLAG, path)?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| content(FLAG, path, format!("not PEM: {e}")))?;
                roots.add(cert).map_err(|e| {
                    content(FLAG, path, format!("not a usable CA certificate: {e}"))
                })?;
            }
            if roots.is_empty() {
                return Err(content(FLAG, path, "no PEM certificate in it"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(TlsError::Setting {
                    flag: FLAG,
                    why: "mqtts:// without it trusts the system's CAs, and the system trust store has none: give --mqtt.ca-file, or set SSL_CERT_FILE or SSL_CERT_DIR".into(),
                });
            }
        }
    }
    Ok(roots)
}

/// The client certificate chain and key: they must parse and belong
/// together; the error names the file to fix.
fn client_identity(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    const CERT: &str = "--mqtt.cert-file";
    const KEY: &str = "--mqtt.key-file";
    let cert_pem = read(CERT, cert)?;
    let key_pem = read(KEY, key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(CERT, cert, format!("not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(content(CERT, cert, "no PEM certificate in it"));
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| content(KEY, key, format!("no PEM private key in it: {e}")))?;
    rustls::sign::CertifiedKey::from_der(chain.clone(), private.clone_key(), provider).map_err(
        |e| {
            content(
                KEY,
                key,
                format!("does not match --mqtt.cert-file or cannot be used: {e}"),
            )
        },
    )?;
    Ok((chain, private))
}

/// Builds the rustls configuration, reading every file now: at start, to
/// refuse unusable files, and before each connect, to use rotated ones.
pub fn client_config(tls: &BrokerTls) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(AcceptAny(Arc::clone(&provider)))
    } else {
        let roots = roots(tls.ca_file.as_deref())?;
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsError::Setting {
                    flag: "--mqtt.ca-file",
                    why: e.to_string(),
                })?;
        match &tls.server_name {
            Some(name) => Arc::new(Renamed {
                inner: webpki,
                name: ServerName::try_from(name.clone()).map_err(|e| TlsError::Setting {
                    flag: "--mqtt.tls-server-name",
                    why: e.to_string(),
                })?,
            }),
            None => webpki,
        }
    };
    let identity = match &tls.client_files {
        Some((cert, key)) => Some(client_identity(cert, key, &provider)?),
        None => None,
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setting {
            flag: "--mqtt.url",
            why: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match identity {
        Some((chain, key)) => {
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Setting {
                    flag: "--mqtt.key-file",
                    why: e.to_string(),
                })?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Verifies the broker's certificate for a configured name.
#[derive(Debug)]
struct Renamed {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for Renamed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `--mqtt.tls-insecure-skip-verify`: any certificate is accepted (the
/// handshake signatures are still checked, so the session is encrypted to
/// whoever holds the certificate's key).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
