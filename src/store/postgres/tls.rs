//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert`, read from the database URL, and the
//! rustls client configuration each mode means.
//!
//! The semantics are libpq's, so a URL that works with `psql` means the same here:
//! - `disable`: never TLS;
//! - `prefer` (the default): TLS when the server offers it, cleartext when it does not;
//! - `require`: TLS or no connection;
//! - `verify-ca`: TLS, and the server's certificate chains to a root in `sslrootcert`;
//! - `verify-full`: as `verify-ca`, and the certificate names the host of the URL.
//!
//! As in libpq, a root certificate that is there (`sslrootcert`, else `~/.postgresql/root.crt`
//! when that file exists) makes `prefer` and `require` check the chain as `verify-ca` does;
//! without one they encrypt without checking who answers. `sslrootcert=system` takes the
//! operating system's roots and, as in libpq, implies `verify-full` (a weaker mode is refused).
//!
//! tokio-postgres understands only `disable`, `prefer` and `require` and rejects `sslrootcert`,
//! so both are taken out of the URL here, and the driver is handed the rest with the mode it
//! knows (`require` for both `verify-*`); verification is the rustls verifier's job.
//!
//! This is the store's only use of rustls (the listeners' TLS is `server`'s). Must not know the
//! pool, operations or SQL.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode as DriverMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::Error;

/// libpq's `sslmode`: whether to use TLS and what to check of the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it (the default).
    Prefer,
    /// TLS or nothing.
    Require,
    /// TLS with a certificate that chains to a trusted root.
    VerifyCa,
    /// TLS with a certificate that chains to a trusted root and names the host.
    VerifyFull,
}

impl SslMode {
    /// The spelling in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// Where trusted roots come from (`sslrootcert`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum RootSource {
    /// A PEM file.
    File(PathBuf),
    /// The operating system's store (`sslrootcert=system`).
    System,
}

/// How to reach the database: the driver's configuration and the TLS connector for it.
pub(super) struct Target {
    /// The driver's configuration, with the mode it understands.
    pub config: tokio_postgres::Config,
    /// Makes the TLS connection with the verifier the mode asks for.
    pub tls: MakeRustlsConnect,
    /// The mode in effect.
    pub mode: SslMode,
}

/// What the URL says about TLS, before any file is read.
#[derive(Debug, PartialEq, Eq)]
struct SslParams {
    /// The URL without `sslmode` and `sslrootcert`.
    rest: String,
    mode: Option<SslMode>,
    root: Option<RootSource>,
}

/// The connection target of `url` (`postgres://…[?sslmode=…&sslrootcert=…]`), its root
/// certificates read. `home` is where libpq's default `~/.postgresql/root.crt` is looked for.
pub(super) fn target(url: &str, home: Option<&Path>) -> Result<Target, Error> {
    let params = split_ssl_params(url)?;
    let mut config = tokio_postgres::Config::from_str(&params.rest).map_err(|e| url_error(&e))?;
    let root = params.root.or_else(|| {
        // libpq's default root file counts only when it exists.
        let default = home?.join(".postgresql/root.crt");
        default.is_file().then_some(RootSource::File(default))
    });
    // A key=value string keeps its sslmode in the driver's configuration: read it back, so
    // the override below never weakens it.
    let given = params.mode.or(match config.get_ssl_mode() {
        DriverMode::Disable => Some(SslMode::Disable),
        DriverMode::Require => Some(SslMode::Require),
        _ => None,
    });
    let mode = match (given, &root) {
        (None, Some(RootSource::System)) => SslMode::VerifyFull,
        (Some(m), Some(RootSource::System)) if m != SslMode::VerifyFull => {
            return Err(url_error(&format!(
                "sslrootcert=system needs sslmode=verify-full, not {}",
                m.as_str()
            )))
        }
        (None, _) => SslMode::Prefer,
        (Some(m), _) => m,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, root) {
        (SslMode::Disable, _) => Arc::new(Unverified(provider.clone())),
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(url_error(&format!(
                "sslmode={} needs the root certificate that signed the server's: \
                 sslrootcert=FILE (PEM) or sslrootcert=system",
                mode.as_str()
            )))
        }
        (SslMode::Prefer | SslMode::Require, None) => Arc::new(Unverified(provider.clone())),
        (_, Some(source)) => {
            let roots = load_roots(&source)?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| Error::Open {
                        path: describe_source(&source),
                        reason: format!("unusable root certificates (sslrootcert): {e}"),
                    })?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                // libpq: a root certificate that is there, given or default, makes every mode
                // below verify-full check the chain, never the name.
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    config.ssl_mode(match mode {
        SslMode::Disable => DriverMode::Disable,
        SslMode::Prefer => DriverMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverMode::Require,
    });
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| url_error(&e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Target {
        config,
        tls: MakeRustlsConnect::new(client),
        mode,
    })
}

fn url_error(reason: &dyn std::fmt::Display) -> Error {
    Error::Open {
        path: "the PostgreSQL URL".into(),
        reason: reason.to_string(),
    }
}

fn describe_source(source: &RootSource) -> String {
    match source {
        RootSource::File(path) => path.display().to_string(),
        RootSource::System => "the system's root certificates".into(),
    }
}

/// The trusted roots `source` names.
fn load_roots(source: &RootSource) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    match source {
        RootSource::File(path) => {
            let unreadable = |reason: String| Error::Open {
                path: path.display().to_string(),
                reason: format!("cannot read the root certificate (sslrootcert): {reason}"),
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| unreadable(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unreadable(e.to_string()))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| unreadable(format!("not a usable certificate: {e}")))?;
            }
        }
        RootSource::System => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err(Error::Open {
            path: describe_source(source),
            reason: "no root certificate found (sslrootcert)".into(),
        });
    }
    Ok(roots)
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL's query (the last of each
/// wins, as in libpq). A `key=value` connection string is passed on untouched: the driver
/// reads `disable`, `prefer` and `require` from it itself.
fn split_ssl_params(url: &str) -> Result<SslParams, Error> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !is_url {
        if url.contains("sslrootcert") || url.contains("sslmode=verify") {
            return Err(url_error(
                &"write the database URL as postgres://…?sslmode=…&sslrootcert=… to verify the server",
            ));
        }
        return Ok(SslParams {
            rest: url.to_owned(),
            mode: None,
            root: None,
        });
    }
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let (mut mode, mut root) = (None, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                let value = percent_decode(value);
                mode = Some(SslMode::parse(&value).ok_or_else(|| {
                    url_error(&format!(
                        "sslmode={value:?} is not one of disable, prefer, require, verify-ca, verify-full"
                    ))
                })?);
            }
            "sslrootcert" => {
                let value = percent_decode(value);
                root = Some(if value == "system" {
                    RootSource::System
                } else {
                    RootSource::File(PathBuf::from(value))
                });
            }
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(SslParams { rest, mode, root })
}

/// `%XX` escapes decoded; anything malformed is kept as written.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                // Two hex digits make one byte below 256.
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `prefer` and `require` without a root certificate: encrypted, nobody's identity checked
/// (libpq's meaning). The handshake's signatures are still checked against the presented key.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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

/// `verify-ca`: the chain must lead to a trusted root; the name is not checked. webpki checks
/// the chain before the name, so a name mismatch is the only failure forgiven.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(url: &str) -> SslParams {
        split_ssl_params(url).unwrap()
    }

    #[test]
    fn ssl_parameters_leave_the_url_and_the_rest_stays() {
        let p = params(
            "postgres://u:p@db.example:5432/zt?sslmode=verify-full&application_name=a&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(
            p.rest,
            "postgres://u:p@db.example:5432/zt?application_name=a"
        );
        assert_eq!(p.mode, Some(SslMode::VerifyFull));
        assert_eq!(p.root, Some(RootSource::File("/etc/ca.pem".into())));

        let p = params("postgresql://db/zt?sslmode=require");
        assert_eq!(p.rest, "postgresql://db/zt");
        assert_eq!(p.mode, Some(SslMode::Require));
        assert_eq!(p.root, None);

        let p = params("postgres://db/zt?sslmode=disable&sslmode=verify-ca&sslrootcert=system");
        assert_eq!(p.mode, Some(SslMode::VerifyCa), "the last one wins");
        assert_eq!(p.root, Some(RootSource::System));
    }

    #[test]
    fn an_unknown_mode_is_refused_naming_the_modes() {
        let Err(e) = split_ssl_params("postgres://db/zt?sslmode=verify") else {
            panic!("accepted")
        };
        assert!(e.to_string().contains("verify-full"), "{e}");
    }

    #[test]
    fn the_default_is_prefer_without_verification() {
        let t = target("postgres://db/zt", None).unwrap();
        assert_eq!(t.mode, SslMode::Prefer);
        assert_eq!(t.config.get_ssl_mode(), DriverMode::Prefer);
    }

    #[test]
    fn verification_needs_a_root_certificate() {
        for mode in ["verify-ca", "verify-full"] {
            let Err(e) = target(&format!("postgres://db/zt?sslmode={mode}"), None) else {
                panic!("{mode} accepted without a root")
            };
            assert!(e.to_string().contains("sslrootcert"), "{e}");
        }
        let Err(e) = target(
            "postgres://db/zt?sslmode=verify-full&sslrootcert=/nonexistent/root.pem",
            None,
        ) else {
            panic!("a missing root file accepted")
        };
        assert!(e.to_string().contains("/nonexistent/root.pem"), "{e}");
    }

    #[test]
    fn the_driver_is_asked_for_tls_whenever_the_mode_needs_it() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["ca.example".into()]).unwrap();
        let root = dir.path().join("root.pem");
        std::fs::write(&root, ca.cert.pem()).unwrap();
        for (mode, driver) in [
            ("disable", DriverMode::Disable),
            ("prefer", DriverMode::Prefer),
            ("require", DriverMode::Require),
            ("verify-ca", DriverMode::Require),
            ("verify-full", DriverMode::Require),
        ] {
            let url = format!(
                "postgres://db/zt?sslmode={mode}&sslrootcert={}",
                root.display()
            );
            let t = target(&url, None).unwrap();
            assert_eq!(t.mode.as_str(), mode);
            assert_eq!(t.config.get_ssl_mode(), driver, "{mode}");
        }
    }

    #[test]
    fn the_system_roots_mean_verify_full() {
        let Err(e) = target("postgres://db/zt?sslmode=require&sslrootcert=system", None) else {
            panic!("a weaker mode with the system's roots accepted")
        };
        assert!(e.to_string().contains("verify-full"), "{e}");
    }

    #[test]
    fn a_key_value_string_passes_through() {
        let p = params("host=db dbname=zt sslmode=require");
        assert_eq!(p.rest, "host=db dbname=zt sslmode=require");
        let t = target("host=db dbname=zt sslmode=require", None).unwrap();
        assert_eq!(t.mode, SslMode::Require, "its sslmode is kept");
        assert_eq!(t.config.get_ssl_mode(), DriverMode::Require);
        assert!(split_ssl_params("host=db sslmode=verify-full").is_err());
    }

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("%2Ftmp%2Fa%20b.pem"), "/tmp/a b.pem");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
