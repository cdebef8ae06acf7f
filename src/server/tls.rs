//! TLS for the listeners: the server configuration, choosing a certificate per ClientHello,
//! generating the self-signed default, and why a handshake failed.
//!
//! Owns every rustls type. When both an ECDSA and an RSA certificate are configured, a client
//! that offers ECDSA signatures gets the ECDSA one (several times cheaper per handshake), and
//! old phones that cannot verify ECDSA get RSA. The certificates themselves, and replacing them
//! while the server runs, are `certificates`'.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{AlertDescription, PeerIncompatible, ServerConfig};

use super::certificates::Certificates;

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
    /// The key is not the one the certificate was issued for.
    #[error("{key} is not the private key of the certificate in {cert}")]
    Mismatch {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
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

/// Picks the first certificate in use whose signature the client can verify (ECDSA ones come
/// first), else the first.
struct PerClientHello {
    certificates: Arc<Certificates>,
}

impl std::fmt::Debug for PerClientHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerClientHello")
            .field("identities", &self.certificates.identities())
            .finish()
    }
}

impl ResolvesServerCert for PerClientHello {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let loaded = self.certificates.current();
        let offered = hello.signature_schemes();
        loaded
            .keys
            .iter()
            .find(|k| k.key.choose_scheme(offered).is_some())
            .or_else(|| loaded.keys.first())
            .cloned()
    }
}

/// Builds a server configuration presenting `certificates`: the set in use at each handshake,
/// so a reload reaches every handshake that starts after it.
pub fn server_config(
    certificates: Arc<Certificates>,
    alpn: &[&[u8]],
    tuning: &TlsTuning,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(PerClientHello { certificates }));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.send_tls13_tickets = tuning.tls13_tickets;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(tuning.session_cache);
    if tuning.tls13_tickets > 0 {
        config.ticketer =
            rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError::Config(e.to_string()))?;
    }
    Ok(Arc::new(config))
}

/// Why a TLS handshake failed, as far as an operator can act on it. A closed set: also a
/// metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The client offers no protocol version the server speaks (TLS 1.0 or 1.1 only, SSL).
    NoSharedVersion,
    /// No cipher suite, key exchange group or signature scheme in common (an old phone with
    /// only RSA key exchange or CBC suites, or unable to verify any configured certificate).
    NoSharedCipher,
    /// The client refused the server's certificate (an unknown CA, expired, wrong name).
    BadCertificate,
    /// The handshake did not finish within `handshake_timeout`.
    Timeout,
    /// Anything else: not TLS at all, a reset, a malformed message.
    Other,
}

impl HandshakeFailure {
    /// Every reason, in label order.
    pub const ALL: [HandshakeFailure; 5] = [
        HandshakeFailure::NoSharedVersion,
        HandshakeFailure::NoSharedCipher,
        HandshakeFailure::BadCertificate,
        HandshakeFailure::Timeout,
        HandshakeFailure::Other,
    ];

    /// Metric label and log field.
    pub const fn label(self) -> &'static str {
        match self {
            HandshakeFailure::NoSharedVersion => "no_shared_version",
            HandshakeFailure::NoSharedCipher => "no_shared_cipher",
            HandshakeFailure::BadCertificate => "bad_certificate",
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::Other => "other",
        }
    }

    /// The reason behind a failed accept: the rustls error the I/O error carries, if any.
    pub fn of(error: &std::io::Error) -> Self {
        let Some(tls) = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        else {
            return HandshakeFailure::Other;
        };
        match tls {
            rustls::Error::PeerIncompatible(p) => match p {
                // rustls asks for TLS 1.2's signature_algorithms extension before it compares
                // versions: a TLS 1.0 or 1.1 client, which has no such extension, ends there.
                PeerIncompatible::Tls12NotOffered
                | PeerIncompatible::Tls12NotOfferedOrEnabled
                | PeerIncompatible::SupportedVersionsExtensionRequired
                | PeerIncompatible::SignatureAlgorithmsExtensionRequired => {
                    HandshakeFailure::NoSharedVersion
                }
                PeerIncompatible::NoCipherSuitesInCommon
                | PeerIncompatible::NoKxGroupsInCommon
                | PeerIncompatible::NoSignatureSchemesInCommon
                | PeerIncompatible::NoEcPointFormatsInCommon
                | PeerIncompatible::UncompressedEcPointsRequired => {
                    HandshakeFailure::NoSharedCipher
                }
                _ => HandshakeFailure::Other,
            },
            rustls::Error::AlertReceived(alert) => match alert {
                AlertDescription::ProtocolVersion => HandshakeFailure::NoSharedVersion,
                AlertDescription::InsufficientSecurity => HandshakeFailure::NoSharedCipher,
                AlertDescription::BadCertificate
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateRevoked
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnknownCA
                | AlertDescription::AccessDenied
                | AlertDescription::BadCertificateStatusResponse
                | AlertDescription::BadCertificateHashValue
                | AlertDescription::CertificateUnobtainable => HandshakeFailure::BadCertificate,
                _ => HandshakeFailure::Other,
            },
            // A client certificate the server refused (when phones present one).
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                HandshakeFailure::BadCertificate
            }
            _ => HandshakeFailure::Other,
        }
    }
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

/// Writes `bytes` to `path` readable by its owner only (a private key).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
        let certificates = Arc::new(Certificates::load(vec![id]).unwrap());
        server_config(certificates, &[b"http/1.1"], &TlsTuning::default()).unwrap();
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = Certificates::load(vec![Identity {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        }])
        .err()
        .unwrap();
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    }

    #[test]
    fn handshake_failures_are_told_apart_by_the_rustls_error() {
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let cases = [
            (
                rustls::Error::PeerIncompatible(PeerIncompatible::Tls12NotOffered),
                HandshakeFailure::NoSharedVersion,
            ),
            (
                rustls::Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
                HandshakeFailure::NoSharedCipher,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::UnknownCA),
                HandshakeFailure::BadCertificate,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::DecodeError),
                HandshakeFailure::Other,
            ),
        ];
        for (error, reason) in cases {
            assert_eq!(HandshakeFailure::of(&io(error)), reason);
        }
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(HandshakeFailure::of(&reset), HandshakeFailure::Other);
    }
}
