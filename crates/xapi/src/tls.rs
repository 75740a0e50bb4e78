//! TLS: certificate pinning by SHA-256 fingerprint (XAPI's `AB:CD:...` form) or a CA bundle.

use std::fmt;
use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// SHA-256 of a certificate's DER bytes. Shown as XAPI shows it: upper-case hex pairs
/// joined by colons. Parsed from that form, with or without colons, in any case.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of_der(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let trimmed = text.trim();
        // XAPI's thumbprint header may carry an algorithm prefix.
        let body = trimmed
            .strip_prefix("sha-256:")
            .or_else(|| trimmed.strip_prefix("SHA-256:"))
            .unwrap_or(trimmed);
        let hex_digits: String = body.chars().filter(|c| *c != ':').collect();
        let bytes =
            hex::decode(&hex_digits).map_err(|_| Error::BadFingerprint(text.to_string()))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::BadFingerprint(text.to_string()))?;
        Ok(Fingerprint(array))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How the client decides to trust the server.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Accept only a certificate with this SHA-256 fingerprint (host names are not checked:
    /// XAPI's self-signed certificates rarely name the address used).
    Pinned(Fingerprint),
    /// Accept certificates issued by a CA in this PEM bundle, for the host name connected to.
    CaBundle(PathBuf),
}

/// The fingerprints a pinned client accepts. Grows when XAPI itself (over a pinned
/// connection) tells us the certificate of another pool host we are sent to.
#[derive(Debug, Default)]
pub(crate) struct PinSet {
    pins: RwLock<Vec<Fingerprint>>,
    /// The last certificate refused, so the error can show what was seen.
    refused: Mutex<Option<Fingerprint>>,
}

impl PinSet {
    pub(crate) fn new(first: Fingerprint) -> Self {
        PinSet {
            pins: RwLock::new(vec![first]),
            refused: Mutex::new(None),
        }
    }

    pub(crate) fn add(&self, pin: Fingerprint) {
        let mut pins = self.pins.write().unwrap_or_else(|p| p.into_inner());
        if !pins.contains(&pin) {
            pins.push(pin);
        }
    }

    pub(crate) fn contains(&self, pin: &Fingerprint) -> bool {
        self.pins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(pin)
    }

    fn is_empty(&self) -> bool {
        self.pins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    pub(crate) fn describe(&self) -> String {
        let pins = self.pins.read().unwrap_or_else(|p| p.into_inner());
        pins.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// The certificate refused since the last call, if any.
    pub(crate) fn take_refused(&self) -> Option<Fingerprint> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts the server when its end-entity certificate is in the pin set;
/// records any other.
#[derive(Debug)]
struct PinVerifier {
    pins: Arc<PinSet>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let seen = Fingerprint::of_der(end_entity);
        if self.pins.contains(&seen) {
            return Ok(ServerCertVerified::assertion());
        }
        *self.pins.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen);
        if !self.pins.is_empty() {
            tracing::warn!(%seen, expected = %self.pins.describe(), "server certificate does not match the pin");
        }
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn base_config(verifier: Arc<dyn ServerCertVerifier>, host: &str) -> Result<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            host: host.to_string(),
            detail: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

/// The rustls configuration for pinned connections sharing `pins`.
pub(crate) fn pinned_config(pins: Arc<PinSet>, host: &str) -> Result<ClientConfig> {
    base_config(
        Arc::new(PinVerifier {
            pins,
            provider: provider(),
        }),
        host,
    )
}

/// The rustls configuration that trusts the CAs of a PEM bundle.
pub(crate) fn ca_config(path: &Path, host: &str) -> Result<ClientConfig> {
    let bundle_error = |detail: String| Error::CaBundle {
        path: path.display().to_string(),
        detail,
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bundle_error(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bundle_error(e.to_string()))?;
        roots.add(cert).map_err(|e| bundle_error(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bundle_error("no certificate in the file".into()));
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| bundle_error(e.to_string()))?;
    base_config(verifier, host)
}

/// Connects to `host:port`, reads the server certificate during the TLS handshake and
/// aborts it: nothing is trusted and no request is sent. For "confirm this fingerprint".
pub fn fetch_fingerprint(host: &str, port: u16, timeout: Duration) -> Result<Fingerprint> {
    let tls_error = |detail: String| Error::Tls {
        host: format!("{host}:{port}"),
        detail,
    };
    // An empty pin set refuses every certificate and records it.
    let pins = Arc::new(PinSet::default());
    let config = Arc::new(pinned_config(pins.clone(), host)?);
    let name = ServerName::try_from(host.to_string()).map_err(|e| tls_error(e.to_string()))?;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| tls_error(format!("resolving: {e}")))?
        .next()
        .ok_or_else(|| tls_error("the name has no address".into()))?;
    let mut socket = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| tls_error(format!("connecting: {e}")))?;
    socket
        .set_read_timeout(Some(timeout))
        .map_err(|e| tls_error(e.to_string()))?;
    socket
        .set_write_timeout(Some(timeout))
        .map_err(|e| tls_error(e.to_string()))?;
    let mut conn =
        rustls::ClientConnection::new(config, name).map_err(|e| tls_error(e.to_string()))?;
    // The verifier refuses the certificate, so the handshake ends in an error once it was seen.
    while conn.is_handshaking() {
        match conn.complete_io(&mut socket) {
            Ok((0, 0)) => break,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    pins.take_refused()
        .ok_or_else(|| tls_error("the server sent no certificate (is this a TLS port?)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_every_accepted_form() {
        let plain: Fingerprint = HEX.parse().unwrap();
        let shown = plain.to_string();
        assert_eq!(shown.len(), 32 * 3 - 1);
        assert!(shown.starts_with("01:23:45:67:89:AB:CD:EF"), "{shown}");
        for form in [
            HEX.to_uppercase(),
            shown.clone(),
            shown.to_lowercase(),
            format!("sha-256:{shown}"),
        ] {
            assert_eq!(form.parse::<Fingerprint>().unwrap(), plain, "{form}");
        }
    }

    #[test]
    fn rejects_wrong_lengths_and_digits() {
        for bad in [
            "",
            "AB:CD",
            &HEX[2..],
            &format!("{HEX}00"),
            &HEX.replace('a', "g"),
        ] {
            assert!(
                matches!(bad.parse::<Fingerprint>(), Err(Error::BadFingerprint(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn of_der_is_sha256() {
        let fp = Fingerprint::of_der(b"abc");
        assert!(fp.to_string().starts_with("BA:78:16:BF"), "{fp}");
    }

    #[test]
    fn pin_set_grows_and_reports_refusals() {
        let a = Fingerprint::of_der(b"a");
        let b = Fingerprint::of_der(b"b");
        let pins = PinSet::new(a);
        assert!(pins.contains(&a) && !pins.contains(&b));
        pins.add(b);
        pins.add(b);
        assert!(pins.contains(&b));
        assert_eq!(pins.describe().matches(" or ").count(), 1);
        assert_eq!(pins.take_refused(), None);
    }

    #[test]
    fn ca_bundle_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        assert!(matches!(ca_config(&path, "h"), Err(Error::CaBundle { .. })));
        assert!(matches!(
            ca_config(&dir.path().join("missing.pem"), "h"),
            Err(Error::CaBundle { .. })
        ));
    }
}
