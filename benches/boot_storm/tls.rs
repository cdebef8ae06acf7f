//! The client's TLS: X25519 only, one protocol version, and the server's certificate pinned,
//! validated, or (`--insecure`) not checked.
//!
//! Must not know HTTP or phones.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::options::{Options, Verify};

/// Accepts exactly one certificate (the server's self-signed one) and checks the handshake
/// signature with it: the trust a phone provisioned with that certificate would have.
#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Checks nothing (`--insecure`).
#[derive(Debug)]
struct Blind(Vec<SignatureScheme>);

impl ServerCertVerifier for Blind {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.clone()
    }
}

/// The client's TLS configuration: X25519 only, the `--tls` version, ALPN `http/1.1`, no
/// resumption (a phone that wants it gets its own session store), and the server checked as
/// `--verify` says.
pub(crate) fn client_config(
    options: &Options,
    cert: Option<&Path>,
) -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(CryptoProvider {
        kx_groups: vec![rustls::crypto::ring::kx_group::X25519],
        ..rustls::crypto::ring::default_provider()
    });
    let versions: &[&rustls::SupportedProtocolVersion] = if options.tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12]
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .context("TLS versions")?;
    let certs = || -> anyhow::Result<Vec<CertificateDer<'static>>> {
        let path = cert.context("no certificate to trust")?;
        let certs = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("read {}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parse {}", path.display()))?;
        if certs.is_empty() {
            bail!("{} holds no certificate", path.display());
        }
        Ok(certs)
    };
    let mut config = match options.verify {
        Verify::WebPki => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs()? {
                roots
                    .add(c)
                    .context("certificate not usable as a trust anchor")?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Verify::Pin => {
            let leaf = certs()?.remove(0);
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    leaf,
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth()
        }
        Verify::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Blind(
                provider
                    .signature_verification_algorithms
                    .supported_schemes(),
            )))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    Ok(config)
}
