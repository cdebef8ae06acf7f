//! ACME in the running server: the settings from the configuration, the certificate files the
//! TLS listeners present (`DATA_DIR/acme/cert.pem` and `key.pem`: the stored certificate, or a
//! self-signed stand-in until the first one is issued), and installing a new certificate by
//! writing them and running the certificate reload hook (one log line, one count, the expiry
//! gauge).
//!
//! Must not know the ACME protocol or how the store keeps the certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use super::reloads::CertificateFiles;
use crate::acme::{self, Certificate};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::reload;
use crate::server::tls::{self, Identity};
use crate::store::Store;

/// The ACME settings, if ACME is configured.
pub(super) fn settings(config: &Config) -> Option<acme::Settings> {
    Some(acme::Settings {
        directory: config.acme_directory.clone()?,
        contact: config.acme_contact.clone(),
        domains: config.acme_domains.clone(),
        ca_root: config.acme_ca_root.clone(),
        renew_before: config.acme_renew_before,
        check_every: config.acme_check_every,
    })
}

/// The files the ACME certificate is presented from.
pub(super) fn identity(data_dir: &Path) -> Identity {
    let dir = data_dir.join("acme");
    Identity {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

/// Before TLS is built: writes the stored certificate to the files, or a self-signed stand-in
/// for the names if there is none yet (phones see it until the first order succeeds). Returns
/// the stored certificate, which is in use from the start.
pub(super) async fn prepare(
    config: &Config,
    store: &dyn Store,
) -> anyhow::Result<Option<Certificate>> {
    let identity = identity(&config.data_dir);
    let stored = match acme::stored_certificate(store).await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(error = %e, "the stored ACME certificate cannot be used; ordering a new one");
            None
        }
    };
    match &stored {
        Some(certificate) => write(&identity, certificate)
            .with_context(|| format!("cannot write {}", identity.cert.display()))?,
        None if !(identity.cert.exists() && identity.key.exists()) => {
            let generated = tls::self_signed(&config.data_dir, &config.acme_domains)?;
            let dir = identity.cert.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::copy(&generated.cert, &identity.cert))
                .and_then(|_| std::fs::read(&generated.key))
                .and_then(|key| tls::write_private(&identity.key, &key))
                .with_context(|| format!("cannot write {}", identity.cert.display()))?;
            tracing::info!("no ACME certificate yet: presenting a self-signed one until the first order succeeds");
        }
        None => {}
    }
    Ok(stored)
}

/// Writes `certificate` over `identity`'s files, each replaced whole (written aside, then
/// renamed), the key first.
fn write(identity: &Identity, certificate: &Certificate) -> std::io::Result<()> {
    if let Some(dir) = identity.cert.parent() {
        std::fs::create_dir_all(dir)?;
    }
    replace(&identity.key, certificate.key_pem.as_bytes())?;
    replace(&identity.cert, certificate.chain_pem.as_bytes())
}

fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut aside = PathBuf::from(path);
    aside.set_extension("pem.new");
    tls::write_private(&aside, bytes)?;
    std::fs::rename(&aside, path)
}

/// Installs certificates from ACME: writes the files, then reloads them as the certificate
/// hook does (counted in `zerotouch_reloads_total`).
pub(super) struct Installer {
    pub(super) identity: Identity,
    pub(super) files: Arc<CertificateFiles>,
    pub(super) metrics: Arc<Metrics>,
}

#[async_trait::async_trait]
impl acme::Install for Installer {
    async fn install(&self, certificate: &Certificate) -> Result<(), String> {
        let identity = self.identity.clone();
        let certificate = certificate.clone();
        tokio::task::spawn_blocking(move || write(&identity, &certificate))
            .await
            .map_err(|e| format!("the writing task failed: {e}"))?
            .map_err(|e| format!("cannot write {}: {e}", self.identity.cert.display()))?;
        let outcome = reload::run_one(self.files.as_ref()).await;
        self.metrics
            .reloads
            .with_label_values(&[outcome.hook, outcome.label()])
            .inc();
        outcome.result.map(|_| ()).map_err(|e| e.to_string())
    }
}
