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
//!
//! Certificates made as mosquitto-tls(7) says (`openssl x509 -req` without
//! `-extfile`) are X.509 version 1, with only a CN. Mosquitto and OpenSSL
//! accept them; rustls's verifier (webpki) does not, and this module does
//! not verify certificates itself. So: a v1 *client* certificate is used as
//! it is (only what must hold is checked at start: both files parse and the
//! key belongs to the certificate, by comparing public keys); with
//! `--mqtt.tls-insecure-skip-verify` a v1 broker certificate is accepted;
//! and a broker certificate that cannot be verified for its shape (v1, or
//! no subjectAltName for the host) is explained by [`explain`], with the
//! command that re-issues it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::edge::files::{self, FileError};

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
    #[error(transparent)]
    File(#[from] FileError),
    #[error("invalid value for {flag}: {why}")]
    Setting { flag: &'static str, why: String },
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    Ok(files::read(flag, path)?)
}

fn content(flag: &'static str, path: &Path, why: impl ToString) -> TlsError {
    TlsError::File(files::content(flag, path, why))
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

/// One DER element: its tag, its contents, its whole encoding, and what
/// follows it.
type Element<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// The DER element at the start of `der`.
fn der_element(der: &[u8]) -> Option<Element<'_>> {
    let tag = *der.first()?;
    let first = *der.get(1)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = der
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |l, b| (l << 8) | usize::from(*b));
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    Some((tag, der.get(head..end)?, der.get(..end)?, der.get(end..)?))
}

/// What a certificate's DER says of itself: its version (1 when the field
/// is absent) and its SubjectPublicKeyInfo, whole. Enough to check that a
/// key belongs to it, for any version, without verifying anything.
pub fn certificate_facts(cert: &[u8]) -> Option<(u8, &[u8])> {
    let (_, certificate, _, _) = der_element(cert)?;
    let (_, mut tbs, _, _) = der_element(certificate)?;
    let mut version = 1;
    if tbs.first() == Some(&0xA0) {
        let (_, explicit, _, rest) = der_element(tbs)?;
        let (_, v, _, _) = der_element(explicit)?;
        version = v.last().map_or(1, |v| v + 1);
        tbs = rest;
    }
    // serial, signature algorithm, issuer, validity, subject, then the key
    for _ in 0..5 {
        tbs = der_element(tbs)?.3;
    }
    let (tag, _, spki, _) = der_element(tbs)?;
    (tag == 0x30).then_some((version, spki))
}

/// The client certificate chain and signing key: both must parse and the
/// key must belong to the certificate (public keys compared); the error
/// names the file to fix. Any X.509 version is accepted, as brokers do.
fn client_identity(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    const CERT: &str = "--mqtt.cert-file";
    const KEY: &str = "--mqtt.key-file";
    let cert_pem = read(CERT, cert)?;
    let key_pem = read(KEY, key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(CERT, cert, format!("not PEM: {e}")))?;
    let Some(first) = chain.first() else {
        return Err(content(CERT, cert, "no PEM certificate in it"));
    };
    let Some((_, spki)) = certificate_facts(first) else {
        return Err(content(CERT, cert, "not an X.509 certificate"));
    };
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| content(KEY, key, format!("no PEM private key in it: {e}")))?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| content(KEY, key, format!("cannot be used: {e}")))?;
    if let Some(public) = signing.public_key() {
        if public.as_ref() != spki {
            return Err(content(
                KEY,
                key,
                format!("does not belong to the certificate in {}", cert.display()),
            ));
        }
    }
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

/// Shows the one client certificate, whatever the broker asks for.
#[derive(Debug)]
struct ClientIdentity(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The fix for a broker certificate rustls cannot verify for its shape, to
/// log with the error: `None` for other errors.
pub fn explain(error: &str) -> Option<&'static str> {
    if error.contains("UnsupportedCertVersion") {
        Some(
            "the broker's certificate is X.509 version 1 (as `openssl x509 -req` without \
             -extfile makes it), which rustls does not verify; re-issue it with a \
             subjectAltName: openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key \
             -CAcreateserial -out server.crt -days 365 -extfile <(printf \
             'subjectAltName=DNS:broker.example.com,IP:192.0.2.10') (see the README's \
             \"TLS with Mosquitto\")",
        )
    } else if error.contains("NotValidForName") || error.contains("not valid for any names") {
        Some(
            "the broker's certificate has no subjectAltName for this host (a CN is not \
             checked): re-issue it with -extfile <(printf 'subjectAltName=DNS:HOST,IP:ADDRESS') \
             for the host in --mqtt.url, or verify another name with --mqtt.tls-server-name \
             (see the README's \"TLS with Mosquitto\")",
        )
    } else {
        None
    }
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
        // rustls's own with_client_auth_cert would refuse a v1 certificate
        Some(identity) => builder.with_client_cert_resolver(Arc::new(ClientIdentity(identity))),
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
/// handshake signatures are still checked where rustls can read the
/// certificate, so the session is encrypted to whoever holds its key; a v1
/// certificate, which it cannot read, is taken as it is).
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
        match verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        ) {
            Err(_) if is_v1(cert) => Ok(HandshakeSignatureValid::assertion()),
            checked => checked,
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        ) {
            Err(_) if is_v1(cert) => Ok(HandshakeSignatureValid::assertion()),
            checked => checked,
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Whether a certificate is X.509 version 1.
fn is_v1(cert: &[u8]) -> bool {
    certificate_facts(cert).is_some_and(|(version, _)| version == 1)
}
