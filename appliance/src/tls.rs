//! The appliance's TLS identity for HTTPS: the certificate chain and key the
//! config names, or a self-signed certificate made at the first start and
//! kept in the data directory (the image's default, so the fingerprint an
//! operator checks once stays the same across restarts and upgrades).
//! rustls with the ring provider; ALPN offers HTTP/2 first, then HTTP/1.1.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Where the self-signed certificate lives, under the data directory.
const SELF_SIGNED_DIR: &str = "tls";
const SELF_SIGNED_CERT: &str = "self-signed.crt";
const SELF_SIGNED_KEY: &str = "self-signed.key";
/// The fingerprint of the certificate in use, as text, beside them.
const FINGERPRINT: &str = "https-fingerprint";

/// Why TLS could not be set up (the process stops before binding anything).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {source}")]
    ReadCert { path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("cannot read the TLS key {path}: {source}")]
    ReadKey { path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("the TLS certificate file {0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("the TLS certificate and key do not fit together: {0}")]
    Rejected(#[from] rustls::Error),
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write the self-signed certificate to {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateSource {
    /// PEM files named by the config.
    Files { cert: PathBuf, key: PathBuf },
    /// Made at the first start for these names, kept in the data directory.
    SelfSigned { names: Vec<String> },
}

/// A loaded identity, ready for the HTTPS listener.
#[derive(Clone)]
pub struct TlsIdentity {
    pub server_config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate, as browsers show it (`AB:CD:...`).
    pub fingerprint: String,
    /// Whether it is our own self-signed certificate (browsers warn once).
    pub self_signed: bool,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Loads (or, for a self-signed source without files yet, makes) the identity.
    pub fn load(source: &CertificateSource, data_dir: &Path) -> Result<TlsIdentity, TlsError> {
        let (cert_path, key_path, self_signed) = match source {
            CertificateSource::Files { cert, key } => (cert.clone(), key.clone(), false),
            CertificateSource::SelfSigned { names } => {
                let dir = data_dir.join(SELF_SIGNED_DIR);
                let (cert, key) = (dir.join(SELF_SIGNED_CERT), dir.join(SELF_SIGNED_KEY));
                if !cert.exists() || !key.exists() {
                    make_self_signed(names, &dir, &cert, &key)?;
                }
                (cert, key, true)
            }
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
            .and_then(|certs| certs.collect())
            .map_err(|source| TlsError::ReadCert { path: cert_path.clone(), source })?;
        let leaf = chain.first().ok_or_else(|| TlsError::NoCertificate(cert_path.clone()))?;
        let fingerprint = fingerprint(leaf);
        let key = PrivateKeyDer::from_pem_file(&key_path)
            .map_err(|source| TlsError::ReadKey { path: key_path.clone(), source })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // For the image's console banner, whichever certificate is in use.
        let dir = data_dir.join(SELF_SIGNED_DIR);
        let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(FINGERPRINT), &fingerprint));
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write the HTTPS certificate's fingerprint for the console banner");
        }
        Ok(TlsIdentity { server_config: Arc::new(config), fingerprint, self_signed })
    }
}

/// A certificate for `names` (host names or addresses), valid for ten years,
/// written with the key readable by the owner only.
fn make_self_signed(names: &[String], dir: &Path, cert: &Path, key: &Path) -> Result<(), TlsError> {
    let made = rcgen::generate_simple_self_signed(names.to_vec())?;
    fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
        move |source| TlsError::Write { path: path.to_path_buf(), source }
    }
    std::fs::create_dir_all(dir).map_err(write_error(dir))?;
    write_private(key, made.key_pair.serialize_pem().as_bytes()).map_err(write_error(key))?;
    std::fs::write(cert, made.cert.pem()).map_err(write_error(cert))?;
    tracing::info!(path = %cert.display(), ?names, "made a self-signed TLS certificate");
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// SHA-256 of a DER certificate as colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_identity_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let source = CertificateSource::SelfSigned { names: vec!["appliance.local".into(), "127.0.0.1".into()] };
        let first = TlsIdentity::load(&source, dir.path()).unwrap();
        let again = TlsIdentity::load(&source, dir.path()).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint, "the same certificate at the next start");
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        assert!(first.self_signed);
        assert_eq!(first.server_config.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        let key = dir.path().join("tls/self-signed.key");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(key).unwrap().permissions());
        assert_eq!(mode & 0o077, 0, "the key is the owner's only");
    }

    #[test]
    fn configured_files_that_do_not_exist_or_do_not_fit_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = CertificateSource::Files { cert: dir.path().join("none.crt"), key: dir.path().join("none.key") };
        let error = TlsIdentity::load(&missing, dir.path()).unwrap_err().to_string();
        assert!(error.contains("none.crt"), "{error}");
        // A key of another certificate.
        let a = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b".into()]).unwrap();
        std::fs::write(dir.path().join("a.crt"), a.cert.pem()).unwrap();
        std::fs::write(dir.path().join("b.key"), b.key_pair.serialize_pem()).unwrap();
        let mismatched = CertificateSource::Files { cert: dir.path().join("a.crt"), key: dir.path().join("b.key") };
        assert!(matches!(TlsIdentity::load(&mismatched, dir.path()), Err(TlsError::Rejected(_))));
    }
}
