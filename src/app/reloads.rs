//! What the running server reloads, and when: the hook list (today the TLS certificates), run
//! at every reload request (SIGHUP, a test's handle), and the poll that reloads the
//! certificates when their files change. Every hook's outcome is one log line and one count in
//! `zerotouch_reloads_total{hook,result}`.
//!
//! More reloads (log level, throttle settings, template overrides) are one `reload::Hook` each,
//! added to the list in [`hooks`].

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::reload::{self, Change, Hook, Hooks, Outcome, Requests};
use crate::server::certificates::{Certificates, Reloaded};

/// The TLS certificate and key files: read again, checked, and put in use for new handshakes.
pub(super) struct CertificateFiles {
    certificates: Arc<Certificates>,
    metrics: Arc<Metrics>,
    /// The listeners presenting them (the expiry gauge's labels).
    listeners: Vec<&'static str>,
}

impl CertificateFiles {
    /// The hook for `certificates`, presented on `listeners`; publishes their expiry now.
    pub(super) fn new(
        certificates: Arc<Certificates>,
        metrics: Arc<Metrics>,
        listeners: Vec<&'static str>,
    ) -> Self {
        let files = Self {
            certificates,
            metrics,
            listeners,
        };
        files.publish_expiry(files.certificates.current().not_after);
        files
    }

    fn publish_expiry(&self, not_after: i64) {
        for listener in &self.listeners {
            self.metrics
                .tls_certificate_expiry
                .with_label_values(&[listener])
                .set(not_after);
        }
    }

    /// Whether the files changed since they were last read (blocking work off the runtime).
    async fn changed(&self) -> bool {
        let certificates = self.certificates.clone();
        tokio::task::spawn_blocking(move || certificates.changed_on_disk())
            .await
            .unwrap_or(false)
    }
}

#[async_trait::async_trait]
impl Hook for CertificateFiles {
    fn name(&self) -> &'static str {
        "tls_certificates"
    }

    async fn reload(&self) -> Result<Change, reload::Error> {
        let certificates = self.certificates.clone();
        let reloaded = tokio::task::spawn_blocking(move || certificates.reload())
            .await
            .map_err(|e| reload::Error::Kept(format!("the reload task failed: {e}")))?;
        match reloaded {
            Ok(Reloaded::Unchanged) => Ok(Change::Unchanged),
            Ok(Reloaded::Replaced { not_after }) => {
                self.publish_expiry(not_after);
                let files: Vec<String> = self
                    .certificates
                    .identities()
                    .iter()
                    .map(|id| id.cert.display().to_string())
                    .collect();
                let expires = u64::try_from(not_after)
                    .map(|s| humantime::format_rfc3339(UNIX_EPOCH + Duration::from_secs(s)))
                    .map_or_else(|_| not_after.to_string(), |t| t.to_string());
                Ok(Change::Changed(format!(
                    "new TLS certificates from {} in use for new connections; the first expires {expires}",
                    files.join(", ")
                )))
            }
            Err(e) => Err(reload::Error::Kept(e.to_string())),
        }
    }
}

/// The hooks a reload runs, in order.
pub(super) fn hooks(certificates: Option<&Arc<CertificateFiles>>) -> Hooks {
    let mut hooks = Hooks::default();
    if let Some(c) = certificates {
        hooks.add(c.clone());
    }
    hooks
}

/// Runs the hooks at every request, and the certificate hook whenever a poll every `poll`
/// (zero: never) finds the files changed, until `stop`.
pub(super) fn spawn(
    hooks: Hooks,
    certificates: Option<Arc<CertificateFiles>>,
    poll: Duration,
    mut requests: Requests,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let count = |outcome: &Outcome| {
            metrics
                .reloads
                .with_label_values(&[outcome.hook, outcome.label()])
                .inc();
        };
        let polled = certificates.filter(|_| !poll.is_zero());
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + poll,
            poll.max(Duration::from_millis(1)),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                batch = requests.next(), if open => match batch {
                    Some(batch) => batch.answer(&hooks.run(&count).await),
                    None => open = false,
                },
                _ = tick.tick(), if polled.is_some() => {
                    if let Some(files) = &polled {
                        if files.changed().await {
                            count(&reload::run_one(files.as_ref()).await);
                        }
                    }
                }
            }
        }
    })
}
