//! The server certificate: a self-signed RSA-2048 certificate like the one
//! XAPI makes at install, kept in `STATE/tls` so restarts keep the same
//! fingerprint, and its fingerprints in XAPI's uppercase colon-separated form.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const CERT_FILE: &str = "xapi-sim.pem";
const KEY_FILE: &str = "xapi-sim.key";

/// The certificate and key the server presents.
pub struct Identity {
    pub cert_der: Vec<u8>,
    key_der: Vec<u8>,
    /// PEM file of the certificate, for `curl --cacert` and Python's `ssl`.
    pub cert_path: PathBuf,
    pub fingerprint_sha256: String,
    pub fingerprint_sha1: String,
    /// When the certificate was made (this start, or an earlier one).
    pub made_now: bool,
}

/// Loads the certificate kept in `dir`, or makes and keeps a new one.
pub fn load_or_create(dir: &Path, host_name: &str) -> Result<Identity> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let made_now = !(cert_path.exists() && key_path.exists());
    if made_now {
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        create(&cert_path, &key_path, host_name)?;
    }
    let cert = CertificateDer::from_pem_file(&cert_path)
        .map_err(|e| Error::Tls(format!("reading {}: {e}", cert_path.display())))?;
    let key = PrivatePkcs8KeyDer::from_pem_file(&key_path)
        .map_err(|e| Error::Tls(format!("reading {}: {e}", key_path.display())))?;
    let cert_der = cert.as_ref().to_vec();
    Ok(Identity {
        fingerprint_sha256: fingerprint(&Sha256::digest(&cert_der)),
        fingerprint_sha1: fingerprint(
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert_der).as_ref(),
        ),
        cert_der,
        key_der: key.secret_pkcs8_der().to_vec(),
        cert_path,
        made_now,
    })
}

fn create(cert_path: &Path, key_path: &Path, host_name: &str) -> Result<()> {
    let tls = |what: &str, e: &dyn std::fmt::Display| Error::Tls(format!("{what}: {e}"));
    let mut rng = rsa::rand_core::OsRng;
    let key = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| tls("making an RSA key", &e))?;
    let key_der = key
        .to_pkcs8_der()
        .map_err(|e| tls("encoding the key", &e))?;
    let key_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| tls("encoding the key", &e))?;
    let pkcs8 = PrivatePkcs8KeyDer::from(key_der.as_bytes());
    let key_pair = KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| tls("loading the key", &e))?;

    let mut params = CertificateParams::new(vec![host_name.to_owned(), "localhost".to_owned()])
        .map_err(|e| tls("certificate names", &e))?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, host_name);
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::from(SystemTime::now());
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| tls("signing the certificate", &e))?;

    // The key first: a certificate without its key would be unusable.
    write_private(key_path, key_pem.as_bytes())?;
    write_private(cert_path, cert.pem().as_bytes())?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let io = |e| Error::io(format!("writing {}", tmp.display()), e);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(|e| Error::io(format!("renaming to {}", path.display()), e))
}

/// XAPI's fingerprint form: uppercase hex pairs joined by colons.
pub fn fingerprint(digest: &[u8]) -> String {
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The rustls configuration serving this identity.
pub fn server_config(id: &Identity) -> Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(id.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone())),
        )
        .map_err(|e| Error::Tls(e.to_string()))?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_form() {
        assert_eq!(fingerprint(&[0x0a, 0xff, 0x10]), "0A:FF:10");
    }

    #[test]
    fn certificate_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), "xapi-sim").unwrap();
        assert!(first.made_now);
        assert_eq!(first.fingerprint_sha256.len(), 32 * 3 - 1);
        let again = load_or_create(dir.path(), "xapi-sim").unwrap();
        assert!(!again.made_now);
        assert_eq!(first.fingerprint_sha256, again.fingerprint_sha256);
        server_config(&again).unwrap();
    }
}
