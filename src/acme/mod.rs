//! Certificates from an ACME CA (RFC 8555: Let's Encrypt or any other): ordering one for the
//! configured names, proving them with HTTP-01 on the plain listener, renewing it before it
//! expires, and handing every new one to whoever presents it.
//!
//! The account and the certificate (with its key) live in the store's server-wide secrets, so
//! with PostgreSQL every node serves the same certificate: one node at a time orders, under a
//! lease kept in the store (compare-and-swap, expiring if its holder dies), and every node reads
//! the stored certificate again as soon as the change feed reports a changed secret (and every
//! `acme_check_every` in any case, the safety net for a missed notification) and installs a
//! new one when it appears. A failed order keeps the certificate in use and is retried with
//! back-off.
//!
//! Owns when to order (`due`), the lease and back-off (this file), talking to the CA
//! (`order.rs`), the HTTP-01 answers (`challenges.rs`) and what is stored (`stored.rs`). Must
//! not know SQL, rustls or certificate files: a new certificate leaves through [`Install`].

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::{self, now_millis, Store};

mod challenges;
mod order;
mod stored;

pub use challenges::{Challenges, Http01, Http01Future};
pub use stored::{Certificate, Validity};

/// How long one order may take before it counts as failed.
const ORDER_TIMEOUT: Duration = Duration::from_secs(180);

/// How long the ordering node holds the lease: longer than an order may take, so it never
/// expires under a live order, and short enough that a dead node's lease frees up soon.
const LEASE: Duration = Duration::from_secs(240);

/// The longest wait between failed orders.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// What ACME is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The CA's directory URL.
    pub directory: String,
    /// The account's contact URIs (`mailto:`).
    pub contact: Vec<String>,
    /// The names the certificate is for.
    pub domains: Vec<String>,
    /// A PEM root the directory's HTTPS is checked against (None: the system's roots).
    pub ca_root: Option<std::path::PathBuf>,
    /// Renew this long before expiry at most (sooner with a third of the lifetime left).
    pub renew_before: Duration,
    /// How often the stored certificate is read and renewal considered.
    pub check_every: Duration,
}

/// Why ACME could not get or keep a certificate. Logged by the renewal task, which keeps the
/// certificate in use.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CA could not be reached, or answered with an error.
    #[error("ACME CA: {0}")]
    Ca(#[from] instant_acme::Error),
    /// The CA did not accept the order (a challenge failed, no HTTP-01 offered).
    #[error("the ACME CA refused the order: {0}")]
    Refused(String),
    /// The order did not finish in time.
    #[error("the order did not finish within {0:?}")]
    Timeout(Duration),
    /// Generating the certificate's key or request failed.
    #[error("cannot generate the certificate key or request: {0}")]
    Key(String),
    /// The store could not be read or written.
    #[error("store: {0}")]
    Store(#[from] store::Error),
    /// A stored value cannot be read.
    #[error("the stored {what} cannot be read: {reason}")]
    Stored {
        /// Which secret.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// Puts a certificate in use for new handshakes (open connections keep theirs).
#[async_trait::async_trait]
pub trait Install: Send + Sync + 'static {
    /// Installs `certificate`, or says why it was refused (the one in use stays).
    async fn install(&self, certificate: &Certificate) -> Result<(), String>;
}

/// Why a certificate is to be ordered now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// None is stored.
    Missing,
    /// The stored one is for other names than configured.
    OtherNames,
    /// The stored one comes from another CA than configured (e.g. a staging CA).
    OtherCa,
    /// The stored one cannot be read.
    Unreadable,
    /// The stored one is close to expiry.
    Renewal,
}

/// When a certificate valid over `validity` is renewed: `renew_before` before it expires, or
/// with a third of its lifetime left, whichever comes first (short-lived certificates renew
/// at two thirds of their lifetime). Unix seconds.
pub fn renew_at(validity: Validity, renew_before: Duration) -> i64 {
    let lifetime = validity
        .not_after
        .saturating_sub(validity.not_before)
        .max(0);
    let before = i64::try_from(renew_before.as_secs()).unwrap_or(i64::MAX);
    validity.not_after.saturating_sub(before.min(lifetime / 3))
}

/// Whether the stored certificate (its bytes, if any) is to be replaced at `now` (Unix
/// seconds), and why.
pub fn due(stored: Option<&[u8]>, settings: &Settings, now: i64) -> Option<Due> {
    let Some(bytes) = stored else {
        return Some(Due::Missing);
    };
    let Ok(certificate) = Certificate::decode(bytes) else {
        return Some(Due::Unreadable);
    };
    if !certificate.covers(&settings.domains) {
        return Some(Due::OtherNames);
    }
    if certificate.directory != settings.directory {
        return Some(Due::OtherCa);
    }
    match certificate.validity() {
        Ok(validity) if now < renew_at(validity, settings.renew_before) => None,
        Ok(_) => Some(Due::Renewal),
        Err(_) => Some(Due::Unreadable),
    }
}

/// The back-off after `failures` failed orders in a row: `check_every`, doubling, at most 6 h.
pub fn backoff(check_every: Duration, failures: u32) -> Duration {
    let doubled = check_every.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    doubled.min(MAX_BACKOFF)
}

/// The stored certificate, if one is stored and readable (to present from the start).
pub async fn stored_certificate(store: &dyn Store) -> Result<Option<Certificate>, Error> {
    match store.stored_secret(stored::CERTIFICATE).await? {
        Some(bytes) => Certificate::decode(&bytes).map(Some),
        None => Ok(None),
    }
}

/// One node's renewal task.
struct Renewal {
    settings: Settings,
    store: Arc<dyn Store>,
    challenges: Arc<Challenges>,
    install: Arc<dyn Install>,
    metrics: Arc<Metrics>,
    /// This node's name in the lease: random per start.
    node: String,
    /// The stored bytes last installed (or refused), so each stored value is handled once.
    seen: Option<Vec<u8>>,
    failures: u32,
    next_attempt: tokio::time::Instant,
}

/// Starts the renewal task: every `check_every`, and whenever `secret_changes` changes (the
/// change feed saw a secret stored), until `stop`: install a newly stored certificate, and
/// order one when it is due, this node holds the lease and no back-off is pending.
/// `installed` is the stored value already in use (read at start).
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    settings: Settings,
    mut secret_changes: tokio::sync::watch::Receiver<u64>,
    store: Arc<dyn Store>,
    challenges: Arc<Challenges>,
    install: Arc<dyn Install>,
    installed: Option<Certificate>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    for result in ["issued", "failed"] {
        metrics.acme_orders.with_label_values(&[result]);
    }
    let mut renewal = Renewal {
        settings,
        store,
        challenges,
        install,
        metrics,
        node: node_name(),
        seen: installed.map(|c| c.encode()),
        failures: 0,
        next_attempt: tokio::time::Instant::now(),
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = renewal.step() => {}
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(renewal.settings.check_every) => {}
                // A closed channel (the registry dropped at shutdown) leaves the periodic check.
                Ok(()) = secret_changes.changed() => {}
            }
        }
        // Best effort: an order cut short leaves the lease to expire.
        let _ = stored::release_lease(renewal.store.as_ref(), &renewal.node).await;
    })
}

fn node_name() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 12];
    // Without randomness two nodes could share a name; the time keeps them apart then.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        bytes[..8].copy_from_slice(&now_millis().to_be_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Renewal {
    async fn step(&mut self) {
        let stored = match self.store.stored_secret(stored::CERTIFICATE).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the ACME certificate from the store");
                return;
            }
        };
        if let Some(bytes) = stored.as_ref().filter(|_| stored != self.seen) {
            // A certificate that could not be installed (a full disk) is tried again at the
            // next check; one that can never be (unreadable) is not.
            if self.put_in_use(bytes, "stored by another node").await {
                self.seen = stored.clone();
            }
        }
        let now = now_millis() / 1000;
        let Some(why) = due(stored.as_deref(), &self.settings, now) else {
            self.failures = 0;
            return;
        };
        if tokio::time::Instant::now() < self.next_attempt {
            return;
        }
        let store = self.store.clone();
        let store = store.as_ref();
        let lease_until = now_millis().saturating_add(LEASE.as_millis() as i64);
        match stored::take_lease(store, &self.node, now_millis(), lease_until).await {
            Ok(true) => {}
            // Another node orders: its certificate arrives through the store.
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the ACME ordering lease");
                return;
            }
        }
        // Another node may have stored a certificate between the read and the lease.
        match store.stored_secret(stored::CERTIFICATE).await {
            Ok(again) if again == stored => {
                self.order(why, stored).await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the ACME certificate from the store"),
        }
        if let Err(e) = stored::release_lease(store, &self.node).await {
            tracing::warn!(error = %e, "cannot release the ACME ordering lease; it expires by itself");
        }
    }

    async fn order(&mut self, why: Due, stored: Option<Vec<u8>>) {
        tracing::info!(domains = ?self.settings.domains, reason = ?why, "ordering a certificate from the ACME CA");
        let placed = tokio::time::timeout(
            ORDER_TIMEOUT,
            order::order(&self.settings, self.store.as_ref(), &self.challenges),
        )
        .await
        .unwrap_or(Err(Error::Timeout(ORDER_TIMEOUT)));
        let saved = match placed {
            Ok(certificate) => {
                let bytes = certificate.encode();
                self.store
                    .swap_secret(stored::CERTIFICATE, stored.as_deref(), Some(&bytes))
                    .await
                    .map_err(Error::from)
                    .map(|swapped| (swapped, bytes))
            }
            Err(e) => Err(e),
        };
        match saved {
            Ok((swapped, bytes)) => {
                self.failures = 0;
                self.metrics
                    .acme_orders
                    .with_label_values(&["issued"])
                    .inc();
                if swapped && self.put_in_use(&bytes, "issued").await {
                    self.seen = Some(bytes);
                }
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                let wait = backoff(self.settings.check_every, self.failures);
                self.next_attempt = tokio::time::Instant::now() + wait;
                self.metrics
                    .acme_orders
                    .with_label_values(&["failed"])
                    .inc();
                tracing::warn!(error = %e, failures = self.failures, retry_in = ?wait, "ACME order failed; the certificate in use is kept");
            }
        }
    }

    /// Installs the stored `bytes`; whether they are dealt with (installed, or unreadable for
    /// good) rather than worth another try.
    async fn put_in_use(&self, bytes: &[u8], how: &str) -> bool {
        let certificate = match Certificate::decode(bytes) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "the stored ACME certificate is unreadable; the one in use is kept");
                return true;
            }
        };
        match self.install.install(&certificate).await {
            Ok(()) => {
                let expires = certificate.validity().map(|v| v.not_after).unwrap_or(0);
                tracing::info!(domains = ?certificate.domains, not_after = expires, how, "ACME certificate in use for new connections");
                true
            }
            Err(reason) => {
                tracing::warn!(
                    reason,
                    "the ACME certificate was refused; the one in use is kept"
                );
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn renewal_is_thirty_days_before_expiry_or_at_a_third_of_the_lifetime_left() {
        let month = Duration::from_secs(30 * DAY as u64);
        let ninety_days = Validity {
            not_before: 0,
            not_after: 90 * DAY,
        };
        assert_eq!(renew_at(ninety_days, month), 60 * DAY);
        let year = Validity {
            not_before: 0,
            not_after: 365 * DAY,
        };
        assert_eq!(renew_at(year, month), 335 * DAY);
        let short = Validity {
            not_before: 1000,
            not_after: 1030,
        };
        assert_eq!(renew_at(short, month), 1020);
        let broken = Validity {
            not_before: 2000,
            not_after: 1000,
        };
        assert_eq!(renew_at(broken, month), 1000);
    }

    fn settings() -> Settings {
        Settings {
            directory: "https://ca.example/dir".to_owned(),
            contact: Vec::new(),
            domains: vec!["a.example".to_owned()],
            ca_root: None,
            renew_before: Duration::from_secs(30 * DAY as u64),
            check_every: Duration::from_secs(60),
        }
    }

    fn certificate(directory: &str, domain: &str, days: u64) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2030, 1, 1);
        params.not_after = params.not_before + Duration::from_secs(days * DAY as u64);
        let key = rcgen::KeyPair::generate().unwrap();
        Certificate {
            directory: directory.to_owned(),
            domains: vec![domain.to_owned()],
            chain_pem: params.self_signed(&key).unwrap().pem(),
            key_pem: key.serialize_pem(),
        }
        .encode()
    }

    #[test]
    fn a_certificate_is_due_when_missing_for_other_names_or_ca_or_near_expiry() {
        let s = settings();
        // 2030-01-01 in Unix seconds.
        let start = 1_893_456_000;
        let good = certificate(&s.directory, "a.example", 90);
        assert_eq!(due(None, &s, start), Some(Due::Missing));
        assert_eq!(due(Some(b"junk"), &s, start), Some(Due::Unreadable));
        assert_eq!(due(Some(&good), &s, start), None);
        assert_eq!(due(Some(&good), &s, start + 59 * DAY), None);
        assert_eq!(due(Some(&good), &s, start + 60 * DAY), Some(Due::Renewal));
        let other_name = certificate(&s.directory, "b.example", 90);
        assert_eq!(due(Some(&other_name), &s, start), Some(Due::OtherNames));
        let staging = certificate("https://staging.example/dir", "a.example", 90);
        assert_eq!(due(Some(&staging), &s, start), Some(Due::OtherCa));
    }

    #[test]
    fn backoff_doubles_from_the_check_interval_up_to_six_hours() {
        let minute = Duration::from_secs(60);
        assert_eq!(backoff(minute, 1), minute);
        assert_eq!(backoff(minute, 2), minute * 2);
        assert_eq!(backoff(minute, 4), minute * 8);
        assert_eq!(backoff(minute, 30), MAX_BACKOFF);
        assert_eq!(backoff(minute, u32::MAX), MAX_BACKOFF);
    }
}
