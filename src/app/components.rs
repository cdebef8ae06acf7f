//! The running server's parts, built in start-up order — store (and migrations) → registry
//! hydration → templates → TLS → the writers a phone's fetch feeds → the provisioner — and
//! stopped in the reverse order, flushing what the writers hold.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::acme::{self, Challenges};
use crate::admin::Readiness;
use crate::config::Config;
use crate::domain::OuiTable;
use crate::metrics::Metrics;
use crate::partner_api;
use crate::provisioning::{self, sightings, Provisioner, Renderer};
use crate::registry::{self, Registry};
use crate::server::certificates::Certificates;
use crate::store::postgres::PostgresStore;
use crate::store::Store;

use super::store::{nonce_key, open, watch_database};

/// How often the throttle and the nonce memory are swept.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The writers a phone's fetch feeds, stopped after the listeners.
struct Writers {
    status_stop: CancellationToken,
    status: JoinHandle<()>,
    retirer: JoinHandle<()>,
    committer: JoinHandle<()>,
}

/// Everything the listeners and background tasks share.
pub(super) struct Components {
    pub(super) store: Arc<dyn Store>,
    postgres: Option<PostgresStore>,
    pub(super) registry: Arc<Registry>,
    pub(super) provisioner: Arc<Provisioner>,
    pub(super) ouis: Arc<OuiTable>,
    pub(super) tls: Option<TlsAcceptor>,
    /// The certificates `tls` presents, replaced by reloads.
    pub(super) certificates: Option<Arc<Certificates>>,
    /// With ACME: the HTTP-01 answers the plain listener gives, and the stored certificate in
    /// use from the start.
    pub(super) acme: Option<(Arc<Challenges>, Option<acme::Certificate>)>,
    /// The vendors' redirect services configured.
    pub(super) redirect: super::redirect::Services,
    writers: Writers,
}

/// The miss throttle's settings from the configuration.
pub(super) fn throttle_settings(config: &Config) -> provisioning::throttle::Settings {
    provisioning::throttle::Settings {
        budget: config.throttle_budget,
        refill_per_minute: config.throttle_refill_per_minute,
        cooldown: config.throttle_cooldown,
        max_sources: config.throttle_max_sources,
    }
}

impl Components {
    /// Builds the parts in start-up order; templates and TLS fail fast, before any phone asks.
    pub(super) async fn build(
        config: &Config,
        metrics: &Arc<Metrics>,
        readiness: &Readiness,
        with_tls: bool,
    ) -> anyhow::Result<Self> {
        let opened = open(config, Some(metrics)).await?;
        if opened.migrated.applied.is_empty() {
            tracing::info!(store = %opened.target, schema = opened.migrated.version, "store opened");
        } else {
            tracing::info!(store = %opened.target, from = opened.migrated.found, to = opened.migrated.version, "store opened and migrated");
        }
        metrics
            .migrations_applied
            .inc_by(opened.migrated.applied.len() as u64);
        let store = opened.store;
        readiness.set_database_up(true);
        metrics.database_up.set(1);

        let registry = Arc::new(Registry::new());
        let started = std::time::Instant::now();
        registry
            .hydrate(store.as_ref())
            .await
            .context("cannot load tenants and devices from the store")?;
        metrics.devices.set(registry.device_count() as i64);
        metrics.tenants.set(registry.tenant_count() as i64);
        tracing::info!(
            devices = registry.device_count(),
            tenants = registry.tenant_count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "registry loaded"
        );

        let renderer =
            Renderer::load(config.templates.as_deref()).context("cannot load templates")?;
        let acme = match super::acme::settings(config) {
            Some(_) => Some((
                Arc::new(Challenges::new(store.clone())),
                super::acme::prepare(config, store.as_ref()).await?,
            )),
            None => None,
        };
        let certificates = if with_tls {
            Some(super::listeners::certificates(config)?)
        } else {
            None
        };
        let tls = certificates
            .clone()
            .map(|c| super::listeners::acceptor(c, config))
            .transpose()?;
        let ouis = Arc::new(config.oui_table());
        let redirect = super::redirect::services(config)?;

        let ledger: Arc<dyn provisioning::ledger::Ledger> = Arc::new(super::ledger::StoreLedger {
            store: store.clone(),
            registry: registry.clone(),
        });
        let status_stop = CancellationToken::new();
        let (queue, status) = sightings::spawn(
            ledger.clone(),
            metrics.clone(),
            sightings::Batching {
                flush_every: config.status_flush,
                ..sightings::Batching::default()
            },
            status_stop.clone(),
        );
        let key = nonce_key(store.as_ref()).await?;
        let (settle_tx, settle_rx) = mpsc::channel(4096);
        let retirer = tokio::spawn(provisioning::settle_credentials(ledger.clone(), settle_rx));
        let (issue_tx, issue_rx) = mpsc::channel(4096);
        let committer = tokio::spawn(provisioning::commit_credentials(ledger, issue_rx));
        let provisioner = Arc::new(Provisioner::new(
            registry.clone(),
            renderer,
            ouis.clone(),
            provisioning::Settings {
                public_url: config.public_url.clone(),
                render_cache_bytes: config.render_cache_bytes,
                dry_run: false,
            },
            metrics.clone(),
            Some(queue),
            provisioning::Admission {
                throttle: provisioning::throttle::Throttle::new(throttle_settings(config)),
                nonces: provisioning::auth::Nonces::new(
                    &key,
                    config.nonce_lifetime,
                    config.nonce_memory,
                ),
                backoff: provisioning::backoff::Backoff::new(),
                unanswered: provisioning::unanswered::Unanswered::new(),
            },
            Some(provisioning::CredentialSink {
                issue: issue_tx,
                settle: settle_tx,
            }),
        ));
        Ok(Self {
            store,
            postgres: opened.postgres,
            registry,
            provisioner,
            ouis,
            tls,
            certificates,
            acme,
            redirect,
            writers: Writers {
                status_stop,
                status,
                retirer,
                committer,
            },
        })
    }

    /// What the partner API's handlers share.
    /// `phones_origin`: where this node's phones reach it (`None`: it serves none, and the
    /// API has no config to preview).
    pub(super) fn api_state(
        &self,
        config: &Config,
        metrics: &Arc<Metrics>,
        phones_origin: Option<String>,
    ) -> partner_api::ApiState {
        partner_api::ApiState {
            store: self.store.clone(),
            registry: self.registry.clone(),
            ouis: self.ouis.clone(),
            admin_token: config
                .admin_token
                .as_ref()
                .map(|t| partner_api::auth::AdminToken::new(t.expose())),
            metrics: metrics.clone(),
            preview: phones_origin.map(|origin| {
                Arc::new(PhonePreview {
                    provisioner: self.provisioner.clone(),
                    phones_origin: origin,
                }) as Arc<dyn partner_api::preview::ConfigPreview>
            }),
            portal_url: config.portal_url.clone(),
            redirects: partner_api::redirect::Redirects {
                vendors: config.redirect.vendors(),
                check: config.redirect.check_before_claim.then(|| {
                    Arc::new(super::redirect::BoundedCheck {
                        services: self.redirect.clone(),
                        timeout: config.redirect.check_timeout,
                    }) as Arc<dyn partner_api::redirect::ElsewhereCheck>
                }),
            },
        }
    }

    /// Starts the background tasks, which run until `stop`: the sweep of the throttle and
    /// nonces, the change follower, and with PostgreSQL the listener for other nodes' commits
    /// and the health watch.
    pub(super) fn spawn_background(
        &self,
        config: &Config,
        metrics: &Arc<Metrics>,
        readiness: &Arc<Readiness>,
        stop: &CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(provisioning::sweep_admission(
            self.provisioner.clone(),
            SWEEP_EVERY,
            metrics.clone(),
            stop.clone(),
        ))];
        // With PostgreSQL, other nodes' commits wake the follower through LISTEN/NOTIFY; the
        // poll by change sequence stays as the safety net for notifications lost while
        // reconnecting.
        let wake = Arc::new(Notify::new());
        if let Some(pg) = &self.postgres {
            tasks.push(pg.listen(wake.clone(), stop.clone()));
            tasks.push(tokio::spawn(watch_database(
                pg.clone(),
                readiness.clone(),
                metrics.clone(),
                stop.clone(),
            )));
        }
        let metrics = metrics.clone();
        let gauges = self.registry.clone();
        tasks.push(tokio::spawn(registry::sync::follow(
            self.registry.clone(),
            self.store.clone(),
            config.change_poll,
            wake,
            stop.clone(),
            move |n, trigger| {
                metrics
                    .catch_ups
                    .with_label_values(&[trigger.as_str()])
                    .inc();
                metrics.changes_applied.inc_by(n as u64);
                metrics.devices.set(gauges.device_count() as i64);
                metrics.tenants.set(gauges.tenant_count() as i64);
            },
        )));
        tasks
    }

    /// Stops the writers once nothing feeds them (the listeners and background tasks are
    /// stopped), flushing pending status writes, then closes the store.
    pub(super) async fn stop(self) {
        let Self {
            store,
            postgres,
            provisioner,
            writers,
            ..
        } = self;
        // The provisioner holds the writers' senders: dropping it lets them finish.
        drop(provisioner);
        let _ = writers.retirer.await;
        let _ = writers.committer.await;
        writers.status_stop.cancel();
        let _ = writers.status.await;
        drop(store);
        drop(postgres);
    }
}

/// The partner API's config preview, rendered by this node's provisioner with the templates
/// it serves phones.
struct PhonePreview {
    provisioner: Arc<Provisioner>,
    phones_origin: String,
}

impl partner_api::preview::ConfigPreview for PhonePreview {
    fn preview(
        &self,
        mac: crate::domain::Mac,
        path: Option<&str>,
        user_agent: Option<&str>,
    ) -> provisioning::Preview {
        self.provisioner
            .preview(mac, path, user_agent, &self.phones_origin)
    }
}
