//! Opening the configured store: SQLite in the data directory, or PostgreSQL shared by several
//! nodes (migrated under an advisory lock), and watching a shared database's health.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::postgres::{PostgresOptions, PostgresStore};
use crate::store::sqlite::SqliteStore;
use crate::store::{MigrateReport, Store};

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
                    // libpq's default root certificate (~/.postgresql/root.crt) is looked for
                    // where libpq looks: the one place the store's options come from the
                    // environment rather than from the configuration.
                    home: std::env::var_os("HOME").map(std::path::PathBuf::from),
                    ..PostgresOptions::default()
                },
            )
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {url}"))?;
            let target = format!("postgres {}", store.target());
            tracing::info!(database = %store.target(), sslmode = store.ssl_mode().as_str(), "connected to PostgreSQL");
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
    let shown = super::progress::Activity::on_stderr("migrating the store".into());
    let opened = open(config, None).await?;
    drop(shown);
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

/// The Digest nonce key, shared by every node through the store.
pub(super) async fn nonce_key(store: &dyn Store) -> anyhow::Result<Vec<u8>> {
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

/// How often the database's health is copied into `/readyz` and the metrics.
const HEALTH_EVERY: Duration = Duration::from_millis(100);

/// Copies the PostgreSQL store's health into readiness and metrics until `stop`.
pub(super) async fn watch_database(
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
