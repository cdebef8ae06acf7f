//! TLS for the listeners: loading certificates, generating the self-signed default, and
//! choosing a certificate per ClientHello.
//!
//! Owns every rustls type. When both an ECDSA and an RSA certificate are configured, a client
//! that offers ECDSA signatures gets the ECDSA one (several times cheaper per handshake), and
//! old phones that cannot verify ECDSA get RSA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SignatureScheme};

/// A certificate chain and its private key, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

/// Why TLS could not be set up. Reported at start, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or parsed.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A certificate file without certificates.
    #[error("{path} holds no PEM certificate")]
    NoCertificate {
        /// The file.
        path: String,
    },
    /// The key is of a type rustls cannot sign with.
    #[error("{path}: unsupported private key: {reason}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Generating the self-signed default failed.
    #[error("cannot create the self-signed certificate in {dir}: {reason}")]
    Generate {
        /// Where.
        dir: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Config(String),
}

/// TLS tuning that affects handshake cost.
#[derive(Clone, Debug)]
pub struct TlsTuning {
    /// Session tickets sent after a TLS 1.3 handshake (0 disables resumption by ticket).
    pub tls13_tickets: usize,
    /// Server-side session cache entries (TLS 1.2 session ids, TLS 1.3 stateful resumption).
    pub session_cache: usize,
}

impl Default for TlsTuning {
    fn default() -> Self {
        Self {
            tls13_tickets: 1,
            session_cache: 4096,
        }
    }
}

fn read_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn load(identity: &Identity) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&identity.cert)
        .map_err(|e| read_err(&identity.cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_err(&identity.cert, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: identity.cert.display().to_string(),
        });
    }
    let key =
        PrivateKeyDer::from_pem_file(&identity.key).map_err(|e| read_err(&identity.key, e))?;
    let signer = any_supported_type(&key).map_err(|e| TlsError::Key {
        path: identity.key.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(Arc::new(CertifiedKey::new(certs, signer)))
}

/// Picks the first configured certificate whose signature the client can verify.
#[derive(Debug)]
struct PerClientHello {
    keys: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for PerClientHello {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offered = hello.signature_schemes();
        self.keys
            .iter()
            .find(|k| k.key.choose_scheme(offered).is_some())
            .or_else(|| self.keys.first())
            .cloned()
    }
}

/// Builds a server configuration from one or more identities, ECDSA ones preferred.
pub fn server_config(
    identities: &[Identity],
    alpn: &[&[u8]],
    tuning: &TlsTuning,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut keys = identities.iter().map(load).collect::<Result<Vec<_>, _>>()?;
    // ECDSA first: cheaper handshakes for every client that can verify it.
    keys.sort_by_key(|k| {
        let ecdsa = k
            .key
            .choose_scheme(&[
                SignatureScheme::ECDSA_NISTP256_SHA256,
                SignatureScheme::ECDSA_NISTP384_SHA384,
            ])
            .is_some();
        !ecdsa
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(PerClientHello { keys }));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.send_tls13_tickets = tuning.tls13_tickets;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(tuning.session_cache);
    if tuning.tls13_tickets > 0 {
        config.ticketer =
            rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError::Config(e.to_string()))?;
    }
    Ok(Arc::new(config))
}

/// The self-signed ECDSA P-256 identity in `dir` (`tls/cert.pem`, `tls/key.pem`), generated on
/// first use so the server starts with no set-up. Meant for trying zerotouch out: phones that
/// check certificates need one from a CA they trust.
pub fn self_signed(dir: &Path, names: &[String]) -> Result<Identity, TlsError> {
    let tls_dir = dir.join("tls");
    let identity = Identity {
        cert: tls_dir.join("cert.pem"),
        key: tls_dir.join("key.pem"),
    };
    if identity.cert.exists() && identity.key.exists() {
        return Ok(identity);
    }
    let gen_err = |e: &dyn std::fmt::Display| TlsError::Generate {
        dir: tls_dir.display().to_string(),
        reason: e.to_string(),
    };
    // The data directory may not exist yet: like the store, create it (and `tls/`) private.
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(&tls_dir).map_err(|e| gen_err(&e))?;
    let certified = rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| gen_err(&e))?;
    write_private(&identity.key, certified.key_pair.serialize_pem().as_bytes())
        .map_err(|e| gen_err(&e))?;
    std::fs::write(&identity.cert, certified.cert.pem()).map_err(|e| gen_err(&e))?;
    tracing::info!(cert = %identity.cert.display(), "generated a self-signed ECDSA certificate");
    Ok(identity)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_identity_is_generated_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_owned()];
        let id = self_signed(dir.path(), &names).unwrap();
        let first = std::fs::read(&id.cert).unwrap();
        let again = self_signed(dir.path(), &names).unwrap();
        assert_eq!(
            std::fs::read(&again.cert).unwrap(),
            first,
            "kept, not regenerated"
        );
        server_config(&[id], &[b"http/1.1"], &TlsTuning::default()).unwrap();
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = server_config(
            &[Identity {
                cert: "/nonexistent/cert.pem".into(),
                key: "/nonexistent/key.pem".into(),
            }],
            &[],
            &TlsTuning::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }
}
