//! What the running server reloads, and when: the hook list (the configuration's reloadable
//! knobs — log level, throttle settings, template overrides — and the TLS certificates), run
//! at every reload request (SIGHUP, a test's handle), and the poll that reloads the
//! certificates when their files change. Every hook's outcome is one log line and one count in
//! `zerotouch_reloads_total{hook,result}`.
//!
//! A new reload is one `reload::Hook`, added to the list in [`hooks`].

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::provisioning::{Provisioner, Renderer};
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

/// The knobs that change safely while serving: the configuration file is read again (under
/// the same flags and environment), checked whole, and only then put in use — the log level,
/// the miss throttle's settings, the template overrides. Other changed knobs are named in the
/// log line as needing a restart.
pub(super) struct Settings {
    running: std::sync::Mutex<Config>,
    provisioner: Arc<Provisioner>,
}

/// The knobs [`Settings`] puts in use.
const RELOADABLE: [&str; 6] = [
    "log_level",
    "throttle_budget",
    "throttle_refill_per_minute",
    "throttle_cooldown",
    "throttle_max_sources",
    "templates",
];

impl Settings {
    pub(super) fn new(config: &Config, provisioner: Arc<Provisioner>) -> Self {
        Self {
            running: std::sync::Mutex::new(config.clone()),
            provisioner,
        }
    }
}

/// The knobs whose values differ between two configurations, by their written names.
fn differing(old: &Config, new: &Config) -> Vec<String> {
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut keys: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[async_trait::async_trait]
impl Hook for Settings {
    fn name(&self) -> &'static str {
        "settings"
    }

    async fn reload(&self) -> Result<Change, reload::Error> {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(read) = running.reloaded() else {
            return Ok(Change::Unchanged);
        };
        let new = read.map_err(|e| reload::Error::Kept(format!("configuration: {e}")))?;
        // Check everything before changing anything.
        let filter = (new.log_level != running.log_level)
            .then(|| crate::telemetry::parse_filter(&new.log_level))
            .transpose()
            .map_err(|e| reload::Error::Kept(e.to_string()))?;
        let templates_dir = new.templates.clone();
        let renderer =
            tokio::task::spawn_blocking(move || Renderer::load(templates_dir.as_deref()))
                .await
                .map_err(|e| reload::Error::Kept(format!("the template task failed: {e}")))?
                .map_err(|e| reload::Error::Kept(format!("templates: {e}")))?;

        let mut changed = Vec::new();
        if let Some(filter) = filter {
            crate::telemetry::set_filter(filter).map_err(|e| reload::Error::Kept(e.to_string()))?;
            changed.push(format!(
                "log level {:?} → {:?}",
                running.log_level, new.log_level
            ));
        }
        let throttle = super::components::throttle_settings(&new);
        if throttle != super::components::throttle_settings(&running) {
            self.provisioner.admission().throttle.set_settings(throttle);
            changed.push(format!(
                "throttle budget {}, refill {}/min, cool-down {:?}, at most {} networks",
                throttle.budget,
                throttle.refill_per_minute,
                throttle.cooldown,
                throttle.max_sources
            ));
        }
        // Override files may have changed under the same path: templates are always put in
        // use again when there are overrides, or when the path changed.
        if new.templates.is_some() || new.templates != running.templates {
            self.provisioner.replace_templates(renderer);
            changed.push(match &new.templates {
                Some(dir) => format!("templates with overrides from {}", dir.display()),
                None => "templates without overrides".to_owned(),
            });
        }
        let restart: Vec<String> = differing(&running, &new)
            .into_iter()
            .filter(|k| !RELOADABLE.contains(&k.as_str()))
            .collect();
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = new;
        if !restart.is_empty() {
            changed.push(format!(
                "changed but in use only after a restart: {}",
                restart.join(", ")
            ));
        }
        Ok(if changed.is_empty() {
            Change::Unchanged
        } else {
            Change::Changed(changed.join("; "))
        })
    }
}

/// The hooks a reload runs, in order.
pub(super) fn hooks(
    settings: Arc<Settings>,
    certificates: Option<&Arc<CertificateFiles>>,
) -> Hooks {
    let mut hooks = Hooks::default();
    hooks.add(settings);
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
