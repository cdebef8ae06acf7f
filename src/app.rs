//! The composition root: builds every component from the configuration, binds the listeners,
//! runs them, and owns the order of startup and shutdown.
//!
//! Start: metrics → admin listener (liveness answers early) → store (+ migrations) → registry
//! hydration → templates (fail fast) → TLS (fail fast) → phone listeners → ready.
//! Stop: not ready → stop accepting and drain within the grace period → stop background tasks
//! → flush status writes → close the store → admin listener.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::admin::{AdminService, Readiness};
use crate::config::Config;
use crate::domain::Mac;
use crate::metrics::Metrics;
use crate::partner_api;
use crate::provisioning::{self, routes::PhoneService, sightings, Provisioner, Renderer};
use crate::registry::{self, Registry};
use crate::server::{self, tls, ConnectionEvents, Limits};
use crate::store::postgres::{PostgresOptions, PostgresStore};
use crate::store::sqlite::SqliteStore;
use crate::store::{MigrateReport, Store};

/// The bound listeners, before anything is served.
pub struct Listeners {
    phones: Option<TcpListener>,
    http: Option<TcpListener>,
    api: Option<TcpListener>,
    metrics: Option<TcpListener>,
}

/// Where each listener is bound (port 0 resolved).
#[derive(Clone, Copy, Debug, Default)]
pub struct Addresses {
    /// Phones over HTTPS.
    pub phones: Option<SocketAddr>,
    /// Phones over plain HTTP.
    pub http: Option<SocketAddr>,
    /// Partner API over HTTPS.
    pub api: Option<SocketAddr>,
    /// Metrics and health.
    pub metrics: Option<SocketAddr>,
}

async fn bind_one(what: &str, addr: Option<SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    match addr {
        Some(a) => server::bind(a)
            .await
            .map(Some)
            .with_context(|| format!("cannot bind the {what} listener to {a}")),
        None => Ok(None),
    }
}

impl Listeners {
    /// Binds every configured listener.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            phones: bind_one("phones (HTTPS)", config.phones_addr).await?,
            http: bind_one("phones (HTTP)", config.http_addr).await?,
            api: bind_one("partner API", config.api_addr).await?,
            metrics: bind_one("metrics", config.metrics_addr).await?,
        })
    }

    /// The bound addresses.
    pub fn addresses(&self) -> Addresses {
        let addr = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
        Addresses {
            phones: addr(&self.phones),
            http: addr(&self.http),
            api: addr(&self.api),
            metrics: addr(&self.metrics),
        }
    }
}

struct ListenerEvents {
    listener: &'static str,
    metrics: Arc<Metrics>,
}

impl ConnectionEvents for ListenerEvents {
    fn handshake_failed(&self, remote: SocketAddr, reason: &str) {
        self.metrics
            .tls_handshake_failures
            .with_label_values(&[self.listener])
            .inc();
        tracing::debug!(listener = self.listener, %remote, reason, "TLS handshake failed");
    }
    fn opened(&self) {
        self.metrics
            .connections_open
            .with_label_values(&[self.listener])
            .inc();
    }
    fn closed(&self) {
        self.metrics
            .connections_open
            .with_label_values(&[self.listener])
            .dec();
    }
    fn refused_over_address_cap(&self, remote: SocketAddr) {
        self.metrics
            .connections_refused
            .with_label_values(&[self.listener])
            .inc();
        tracing::debug!(listener = self.listener, %remote, "connection closed: too many from this address");
    }
}

fn limits(config: &Config) -> Limits {
    Limits {
        max_connections: config.max_connections,
        handshake_timeout: config.handshake_timeout,
        header_read_timeout: config.header_read_timeout,
        max_header_bytes: config.max_header_bytes,
        max_connections_per_address: config.max_connections_per_address,
    }
}

fn throttle_settings(config: &Config) -> provisioning::throttle::Settings {
    provisioning::throttle::Settings {
        budget: config.throttle_budget,
        refill_per_minute: config.throttle_refill_per_minute,
        cooldown: config.throttle_cooldown,
        max_sources: config.throttle_max_sources,
    }
}

/// Remembered Digest nonce-counts at most (bounds the replay memory).
const MAX_REMEMBERED_NONCES: usize = 1_000_000;

/// The Digest nonce key, shared by every node through the store.
async fn nonce_key(store: &dyn Store) -> anyhow::Result<Vec<u8>> {
    use ring::rand::SecureRandom;
    let mut fresh = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut fresh)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    store
        .secret("digest_nonce_key", &fresh)
        .await
        .context("cannot read the Digest nonce key")
}

/// The opened store: the contract every component uses and, with PostgreSQL, the handle for
/// what only it has (notifications, connection health).
pub struct OpenedStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The same store when it is PostgreSQL.
    pub postgres: Option<PostgresStore>,
    /// What opening it migrated.
    pub migrated: MigrateReport,
    /// Where it is, for logs: a file, or `postgres host:port/db` (never a password).
    pub target: String,
}

/// Opens the configured store and applies pending migrations: PostgreSQL when
/// `database_url` is set (under an advisory lock, so nodes starting together migrate once),
/// else SQLite in the data directory (created if needed). A database migrated by a newer
/// build is refused, saying which version was found and which this build supports.
pub async fn open(config: &Config, metrics: Option<&Arc<Metrics>>) -> anyhow::Result<OpenedStore> {
    match &config.database_url {
        None => {
            let path = config.database_path();
            let target = path.display().to_string();
            let (store, migrated) =
                tokio::task::spawn_blocking(move || SqliteStore::open_migrated(&path))
                    .await
                    .context("store task failed")?
                    .with_context(|| format!("cannot open the store at {target}"))?;
            Ok(OpenedStore {
                store: Arc::new(store),
                postgres: None,
                migrated,
                target,
            })
        }
        Some(url) => {
            let mut store = PostgresStore::connect(
                url.expose(),
                PostgresOptions {
                    max_connections: config.database_pool_size,
                    ..PostgresOptions::default()
                },
            )
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {url}"))?;
            let target = format!("postgres {}", store.target());
            if let Some(metrics) = metrics {
                let latency = metrics.store_duration.clone();
                store.set_observer(Arc::new(move |op, took| {
                    latency.with_label_values(&[op]).observe(took.as_secs_f64());
                }));
                let lag = metrics.notification_lag.clone();
                store.set_lag_observer(Arc::new(move |took| lag.observe(took.as_secs_f64())));
            }
            let migrated = store
                .migrate()
                .await
                .with_context(|| format!("cannot migrate the schema of {target}"))?;
            Ok(OpenedStore {
                store: Arc::new(store.clone()),
                postgres: Some(store),
                migrated,
                target,
            })
        }
    }
}

/// Opens the configured store (see [`open`]), for commands that only use the contract.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(open(config, None).await?.store)
}

/// `zerotouch migrate`: applies pending migrations and says what was done.
pub async fn migrate(config: &Config) -> anyhow::Result<String> {
    let opened = open(config, None).await?;
    let m = &opened.migrated;
    Ok(if m.applied.is_empty() {
        format!(
            "{}: schema is at version {}, nothing to apply\n",
            opened.target, m.version
        )
    } else {
        let applied: Vec<String> = m.applied.iter().map(i64::to_string).collect();
        format!(
            "{}: schema was at version {}, applied {} migration(s) ({}), now at version {}\n",
            opened.target,
            m.found,
            m.applied.len(),
            applied.join(", "),
            m.version
        )
    })
}

/// How often the database's health is copied into `/readyz` and the metrics.
const HEALTH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Copies the PostgreSQL store's health into readiness and metrics until `stop`.
async fn watch_database(
    store: PostgresStore,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut was_up = true;
    let (mut reconnects, mut notifications) = (0, 0);
    loop {
        let up = store.is_up();
        readiness.set_database_up(up);
        metrics.database_up.set(i64::from(up));
        if up != was_up {
            if up {
                tracing::info!(database = %store.target(), "database reachable again");
            } else {
                tracing::warn!(database = %store.target(), "database unreachable: phones are served from memory, partner API answers 503");
            }
            was_up = up;
        }
        let r = store.reconnects();
        metrics
            .database_reconnects
            .inc_by(r.saturating_sub(reconnects));
        reconnects = r;
        let n = store.notifications();
        metrics
            .notifications
            .inc_by(n.saturating_sub(notifications));
        notifications = n;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(HEALTH_EVERY) => {}
        }
    }
}

/// TLS identities from the configuration, or the self-signed default.
fn identities(config: &Config) -> anyhow::Result<Vec<tls::Identity>> {
    let mut ids = Vec::new();
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => ids.push(tls::Identity {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => {
            let mut names = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            if let Some(host) = config
                .public_url
                .as_deref()
                .and_then(|u| u.split_once("://"))
                .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or(rest))
            {
                names.push(host.to_owned());
            }
            ids.push(tls::self_signed(&config.data_dir, &names)?);
        }
    }
    if let (Some(cert), Some(key)) = (&config.tls_rsa_cert, &config.tls_rsa_key) {
        ids.push(tls::Identity {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    Ok(ids)
}

/// Runs the server until `shutdown` is cancelled, then drains and stops in order.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new(
        provisioning::METRIC_SLOTS,
        provisioning::VENDOR_METRIC_SLOTS,
    ));
    for vendor in crate::domain::Vendor::ALL {
        metrics
            .render_errors
            .touch(vendor.index(), &[vendor.as_str()]);
    }
    let readiness = Arc::new(Readiness::default());
    let limits = limits(&config);

    // The admin listener outlives everything else, so /metrics and /healthz answer while
    // starting and draining.
    let admin_stop = CancellationToken::new();
    let mut listeners = listeners;
    let admin = listeners.metrics.take().map(|listener| {
        let service = AdminService::new(metrics.clone(), readiness.clone());
        tokio::spawn(server::serve(
            listener,
            None,
            move |_| service.clone(),
            Limits {
                max_connections: 64,
                ..limits.clone()
            },
            Arc::new(server::NoEvents),
            admin_stop.clone(),
            config.shutdown_grace,
        ))
    });

    let result = serve(&config, listeners, &metrics, &readiness, &limits, shutdown).await;

    admin_stop.cancel();
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    result
}

async fn serve(
    config: &Config,
    listeners: Listeners,
    metrics: &Arc<Metrics>,
    readiness: &Arc<Readiness>,
    limits: &Limits,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let opened = open(config, Some(metrics)).await?;
    if opened.migrated.applied.is_empty() {
        tracing::info!(store = %opened.target, schema = opened.migrated.version, "store opened");
    } else {
        tracing::info!(store = %opened.target, from = opened.migrated.found, to = opened.migrated.version, "store opened and migrated");
    }
    let store = opened.store;
    let postgres = opened.postgres;
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
    let renderer = Renderer::load(config.templates.as_deref()).context("cannot load templates")?;
    let tls = if listeners.phones.is_some() || listeners.api.is_some() {
        Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
            &identities(config)?,
            &[b"http/1.1"],
            &tls::TlsTuning {
                tls13_tickets: config.tls_tickets,
                ..tls::TlsTuning::default()
            },
        )?))
    } else {
        None
    };
    let ouis = Arc::new(config.oui_table());

    let background = CancellationToken::new();
    let status_stop = CancellationToken::new();
    let (queue, status_writer) = sightings::spawn(
        store.clone(),
        metrics.clone(),
        sightings::Batching {
            flush_every: config.status_flush,
            ..sightings::Batching::default()
        },
        status_stop.clone(),
    );
    let key = nonce_key(store.as_ref()).await?;
    let (retire_tx, retire_rx) = tokio::sync::mpsc::channel(4096);
    let retirer = tokio::spawn(provisioning::retire_previous_credentials(
        store.clone(),
        registry.clone(),
        retire_rx,
    ));
    let (issue_tx, issue_rx) = tokio::sync::mpsc::channel(4096);
    let committer = tokio::spawn(provisioning::commit_credentials(
        store.clone(),
        registry.clone(),
        issue_rx,
    ));
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
                MAX_REMEMBERED_NONCES,
            ),
        },
        Some(provisioning::CredentialSink {
            issue: issue_tx,
            retire: retire_tx,
        }),
    ));
    let sweeper = tokio::spawn(provisioning::sweep_admission(
        provisioner.clone(),
        std::time::Duration::from_secs(10),
        metrics.clone(),
        background.clone(),
    ));
    // With PostgreSQL, other nodes' commits wake the follower through LISTEN/NOTIFY; the poll
    // by change sequence stays as the safety net for notifications lost while reconnecting.
    let wake = Arc::new(Notify::new());
    let (listener, health) = match &postgres {
        Some(pg) => (
            Some(pg.listen(wake.clone(), background.clone())),
            Some(tokio::spawn(watch_database(
                pg.clone(),
                readiness.clone(),
                metrics.clone(),
                background.clone(),
            ))),
        ),
        None => (None, None),
    };
    let follower = {
        let metrics = metrics.clone();
        let gauges = registry.clone();
        tokio::spawn(registry::sync::follow(
            registry.clone(),
            store.clone(),
            config.change_poll,
            wake,
            background.clone(),
            move |n, trigger| {
                metrics
                    .catch_ups
                    .with_label_values(&[trigger.as_str()])
                    .inc();
                metrics.changes_applied.inc_by(n as u64);
                metrics.devices.set(gauges.device_count() as i64);
                metrics.tenants.set(gauges.tenant_count() as i64);
            },
        ))
    };

    let listener_stop = CancellationToken::new();
    let mut servers = Vec::new();
    for (listener, tls, name) in [
        (listeners.phones, tls.clone(), "phones"),
        (listeners.http, None, "phones_http"),
    ] {
        let Some(listener) = listener else { continue };
        // Series exist from the start, so dashboards and alerts see zeros, not gaps.
        metrics.tls_handshake_failures.with_label_values(&[name]);
        metrics.connections_open.with_label_values(&[name]);
        let provisioner = provisioner.clone();
        servers.push(tokio::spawn(server::serve(
            listener,
            tls,
            move |conn| PhoneService::new(provisioner.clone(), conn),
            limits.clone(),
            Arc::new(ListenerEvents {
                listener: name,
                metrics: metrics.clone(),
            }),
            listener_stop.clone(),
            config.shutdown_grace,
        )));
    }

    if let Some(listener) = listeners.api {
        metrics.tls_handshake_failures.with_label_values(&["api"]);
        metrics.connections_open.with_label_values(&["api"]);
        let router = partner_api::router(partner_api::ApiState {
            store: store.clone(),
            registry: registry.clone(),
            ouis: ouis.clone(),
            admin_token: config
                .admin_token
                .as_ref()
                .map(|t| partner_api::auth::AdminToken::new(t.expose())),
            metrics: metrics.clone(),
        });
        servers.push(tokio::spawn(server::serve(
            listener,
            tls.clone(),
            move |conn| {
                hyper_util::service::TowerToHyperService::new(
                    tower::ServiceBuilder::new()
                        .layer(tower_http::add_extension::AddExtensionLayer::new(conn))
                        .service(router.clone()),
                )
            },
            limits.clone(),
            Arc::new(ListenerEvents {
                listener: "api",
                metrics: metrics.clone(),
            }),
            listener_stop.clone(),
            config.shutdown_grace,
        )));
    }

    readiness.set_ready();
    metrics.ready.set(1);
    tracing::info!("ready");
    shutdown.cancelled().await;

    readiness.set_draining();
    metrics.ready.set(0);
    tracing::info!(grace = ?config.shutdown_grace, "draining");
    listener_stop.cancel();
    for s in servers {
        let _ = s.await;
    }
    background.cancel();
    let _ = follower.await;
    for task in [listener, health].into_iter().flatten() {
        let _ = task.await;
    }
    let _ = sweeper.await;
    drop(provisioner);
    let _ = retirer.await;
    let _ = committer.await;
    status_stop.cancel();
    let _ = status_writer.await;
    drop(store);
    drop(postgres);
    tracing::info!("stopped");
    Ok(())
}

/// What a phone would receive, for `zerotouch render`: the same pipeline as a real fetch,
/// against the store's current data for that one device.
pub async fn render_once(
    config: &Config,
    mac: Mac,
    path: Option<&str>,
    user_agent: Option<&str>,
) -> anyhow::Result<provisioning::Answer> {
    let store = open_store(config).await?;
    let registry = Arc::new(Registry::new());
    let device = store.device(mac).await?;
    if let Some(d) = &device {
        if let Some(t) = store.tenant(d.tenant).await? {
            registry.put_tenant(t);
        }
    }
    let vendor = device
        .as_ref()
        .map(|d| d.vendor)
        .or_else(|| config.oui_table().vendor_of(mac));
    if let Some(d) = device {
        registry.put_device(d);
    }
    let default_path = match vendor {
        Some(crate::domain::Vendor::Yealink) => format!("/{}.cfg", mac.to_lower_hex()),
        _ => format!("/{}.xml", mac.to_upper_hex()),
    };
    let path = path.map_or(default_path, |p| {
        if p.starts_with('/') {
            p.to_owned()
        } else {
            format!("/{p}")
        }
    });
    let renderer = Renderer::load(config.templates.as_deref()).context("cannot load templates")?;
    let provisioner = Provisioner::new(
        registry,
        renderer,
        Arc::new(config.oui_table()),
        provisioning::Settings {
            public_url: config.public_url.clone(),
            render_cache_bytes: 1 << 20,
            // The operator sees what the phone gets once authenticated; nothing is bound.
            dry_run: true,
        },
        Arc::new(Metrics::new(
            provisioning::METRIC_SLOTS,
            provisioning::VENDOR_METRIC_SLOTS,
        )),
        None,
        provisioning::Admission {
            throttle: provisioning::throttle::Throttle::new(throttle_settings(config)),
            nonces: provisioning::auth::Nonces::new(b"dry run", config.nonce_lifetime, 16),
        },
        None,
    );
    let local = config
        .phones_addr
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443)));
    let fetch = provisioning::Fetch {
        method: "GET",
        path_and_query: &path,
        user_agent,
        host: None,
        authorization: None,
        source: std::net::IpAddr::from([127, 0, 0, 1]),
        local,
        tls: config.phones_addr.is_some(),
    };
    Ok(match provisioner.handle(&fetch) {
        provisioning::Handled::Done(answer) => answer,
        provisioning::Handled::Issue(ticket) => provisioner.issue(*ticket).await,
    })
}
