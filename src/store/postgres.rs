//! The multi-node store: PostgreSQL, shared by every node as equal peers.
//!
//! Owns the PostgreSQL schema and its migrations, the transactions that decide claims, the audit
//! log, the change sequence and its `LISTEN/NOTIFY` wake-ups, and the mapping of database
//! failures to [`Error`]. Knows nothing of HTTP, the registry or templates: the registry learns of
//! changes through [`Store::changes_since`], and this module only wakes it up.
//!
//! Driver: tokio-postgres with a deadpool-postgres pool. tokio-postgres exposes the raw
//! connection, which the `LISTEN` task needs to read asynchronous notifications and to notice a
//! lost connection at once; deadpool is a small pool over exactly that client with a per-connection
//! prepared-statement cache, wait/create timeouts that fail fast during an outage, and no macros
//! or compile-time database. sqlx would bring its own pool and query layer for no gain here.
//!
//! Concurrency control (every statement runs under READ COMMITTED):
//! - A claim is decided by the device's primary key: `INSERT … ON CONFLICT (mac) DO NOTHING`, then
//!   the row that won is read under a row lock. Two nodes claiming one MAC at once produce exactly
//!   one inserted row; the loser waits for the winner's commit and then sees its row.
//! - Tenant rows are locked `FOR KEY SHARE` by whatever claims or moves a device to them and
//!   `FOR UPDATE` by a delete, so a tenant is never deleted under a device that was just claimed.
//! - Audit entries and change-sequence rows are appended at the very end of each transaction,
//!   under a transaction-level advisory lock ([`LOCK_LOG`]) held until commit: see [`Tx::commit`].
//! - Deadlocks and serialization failures are retried a few times with the whole transaction.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{AsyncMessage, NoTls, Row, Statement};
use tokio_util::sync::CancellationToken;

use super::{
    now_millis, Actor, AuditEntry, AuditQuery, Change, ChangeEntry, ClaimOutcome, ClaimRequest,
    CredentialChange, CustomerRecord, DeviceQuery, DeviceRecord, DeviceStatus, DeviceUpdate,
    DeviceView, Error, ImportBatch, ImportResult, Millis, PartnerRecord, RotationOutcome,
    RowOutcome, Sighting, Store, TenantChanged, TenantCreated, TenantId, TenantRecord, TokenRecord,
    UpdateOutcome,
};
use crate::domain::{
    ClaimCode, ClaimSecret, CustomerFields, CustomerId, Mac, PartnerId, TenantName, TenantSettings,
    Vendor,
};

/// Schema migrations, in order; `zerotouch_schema.version` records how many have been applied.
/// The logical schema is SQLite's (`sqlite.rs`); text keys that are ordered or range-scanned
/// (MACs, names) use the "C" collation so that order is byte order whatever the database's
/// locale, exactly as in SQLite and as `Mac` orders.
const MIGRATIONS: &[Migration] = &[
    // 1: tenants, devices, last-seen status, change feed, audit.
    Migration::Sql(
        r#"
    CREATE TABLE tenants (
        id          BIGSERIAL PRIMARY KEY,
        name        TEXT COLLATE "C" NOT NULL UNIQUE,
        settings    TEXT NOT NULL,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL
    );
    CREATE TABLE devices (
        mac         TEXT COLLATE "C" PRIMARY KEY,
        vendor      TEXT NOT NULL,
        tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
        claim_code  TEXT,
        settings    TEXT NOT NULL,
        claimed_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL
    );
    CREATE INDEX devices_by_tenant ON devices(tenant_id);
    CREATE TABLE device_status (
        mac          TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(mac) ON DELETE CASCADE,
        last_seen    BIGINT NOT NULL,
        source_ip    TEXT NOT NULL,
        user_agent   TEXT NOT NULL,
        model        TEXT,
        firmware     TEXT,
        last_file    TEXT NOT NULL,
        last_outcome TEXT NOT NULL
    );
    CREATE TABLE changes (
        seq     BIGSERIAL PRIMARY KEY,
        entity  TEXT NOT NULL,
        key     TEXT NOT NULL,
        at      BIGINT NOT NULL
    );
    CREATE TABLE audit (
        id      BIGSERIAL PRIMARY KEY,
        at      BIGINT NOT NULL,
        actor   TEXT NOT NULL,
        source  TEXT,
        action  TEXT NOT NULL,
        mac     TEXT COLLATE "C",
        tenant  TEXT,
        detail  TEXT
    );
    CREATE INDEX audit_by_time ON audit(at);
    "#,
    ),
    // 2: partners, their API tokens and customers; tenants owned by partners.
    Migration::Sql(
        r#"
    CREATE TABLE partners (
        id          BIGSERIAL PRIMARY KEY,
        name        TEXT COLLATE "C" NOT NULL UNIQUE,
        created_at  BIGINT NOT NULL
    );
    CREATE TABLE api_tokens (
        id          BIGSERIAL PRIMARY KEY,
        partner_id  BIGINT NOT NULL REFERENCES partners(id),
        key_id      TEXT COLLATE "C" NOT NULL UNIQUE,
        secret_hash BYTEA NOT NULL,
        created_at  BIGINT NOT NULL,
        revoked_at  BIGINT
    );
    CREATE INDEX api_tokens_by_partner ON api_tokens(partner_id);
    CREATE TABLE customers (
        id          BIGSERIAL PRIMARY KEY,
        partner_id  BIGINT NOT NULL REFERENCES partners(id),
        fields      TEXT NOT NULL,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL
    );
    CREATE INDEX customers_by_partner ON customers(partner_id);
    ALTER TABLE tenants ADD COLUMN partner_id BIGINT REFERENCES partners(id);
    ALTER TABLE tenants ADD COLUMN customer_id BIGINT REFERENCES customers(id);
    CREATE INDEX tenants_by_partner ON tenants(partner_id);
    CREATE INDEX device_status_by_seen ON device_status(last_seen);
    CREATE INDEX audit_by_mac ON audit(mac);
    "#,
    ),
    // 3: phone authentication. Gigaset label codes are replaced by the HA1s of the MAC-ID;
    // devices get provisioning credentials (HA1s) and an enrolment window; a table of
    // server-wide secrets (the Digest nonce key).
    Migration::SqlThen(
        r#"
    ALTER TABLE devices ADD COLUMN claim_secret TEXT;
    ALTER TABLE devices ADD COLUMN credentials TEXT;
    ALTER TABLE devices ADD COLUMN enrol_until BIGINT;
    CREATE TABLE server_secrets (
        name   TEXT PRIMARY KEY,
        value  BYTEA NOT NULL
    );
    "#,
        DataStep::HashClaimCodes,
    ),
];

/// One schema migration: SQL, or SQL followed by a data conversion written in Rust.
enum Migration {
    Sql(&'static str),
    SqlThen(&'static str, DataStep),
}

/// Data conversions that SQL alone cannot do.
#[derive(Clone, Copy)]
enum DataStep {
    /// Migration 3: hash stored label codes, drop the plain codes, and give devices claimed
    /// before phone authentication existed a fresh enrolment window, so they can enrol.
    HashClaimCodes,
}

/// Enrolment window given to devices that predate phone authentication: 7 days.
const DEFAULT_ENROLMENT_MS: i64 = 7 * 24 * 3600 * 1000;

async fn run_data_step(
    tx: &deadpool_postgres::Transaction<'_>,
    step: DataStep,
) -> Result<(), Failure> {
    match step {
        DataStep::HashClaimCodes => {
            let rows = tx
                .query(
                    "SELECT mac, claim_code FROM devices WHERE claim_code IS NOT NULL",
                    &[],
                )
                .await?;
            for row in &rows {
                let mac: &str = get(row, 0)?;
                let code: &str = get(row, 1)?;
                let parsed = Mac::parse(mac).map_err(|e| corrupt("device mac", e))?;
                let code = ClaimCode::parse(code).map_err(|e| corrupt("claim code", e))?;
                let secret = json("claim secret", &ClaimSecret::new(parsed, &code))?;
                tx.execute(
                    "UPDATE devices SET claim_secret = $2 WHERE mac = $1",
                    &[&mac, &secret],
                )
                .await?;
            }
            tx.batch_execute("ALTER TABLE devices DROP COLUMN claim_code")
                .await?;
            tx.execute(
                "UPDATE devices SET enrol_until = $1 WHERE credentials IS NULL",
                &[&(now_millis() + DEFAULT_ENROLMENT_MS)],
            )
            .await?;
            Ok(())
        }
    }
}

/// Advisory lock key held while migrating (`pg_advisory_xact_lock`): "ztmi".
const LOCK_MIGRATE: i64 = 0x7a74_6d69;
/// Advisory lock key held from appending to `audit`/`changes` until commit: "ztlo".
const LOCK_LOG: i64 = 0x7a74_6c6f;

/// The notification channel every change-producing commit notifies (payload: its last seq,
/// a space and the commit time in milliseconds since the epoch).
pub const CHANNEL: &str = "zerotouch_changes";

/// How many times a transaction that lost a deadlock or a serialization race is run again.
const MAX_ATTEMPTS: u32 = 5;

/// Reconnect backoff of the `LISTEN` task: doubles from the first to the last.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A per-operation latency hook: operation name (`claim`, `import`, `devices_page`, …) and how
/// long it took, failures included.
pub type Observer = Arc<dyn Fn(&'static str, Duration) + Send + Sync>;

/// A notification-lag hook: how long after its commit began (by the committing node's clock)
/// a change notification reached this node.
pub type LagObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// How to reach and use the database.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Connections in the pool (each operation holds one for its duration).
    pub max_connections: usize,
    /// Time to open one connection (TCP and start-up) before giving up.
    pub connect_timeout: Duration,
    /// Time an operation waits for a free pooled connection before failing with
    /// [`Error::Unavailable`].
    pub wait_timeout: Duration,
    /// Server-side limit for one statement (`statement_timeout`); `None` leaves the server's.
    pub statement_timeout: Option<Duration>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(2),
            wait_timeout: Duration::from_secs(2),
            statement_timeout: Some(Duration::from_secs(30)),
        }
    }
}

pub use super::MigrateReport;

/// The PostgreSQL store. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
    observer: Option<Observer>,
    lag_observer: Option<LagObserver>,
}

struct Inner {
    pool: Pool,
    config: tokio_postgres::Config,
    /// Whether the database answered the last operation (or the `LISTEN` connection is up).
    up: AtomicBool,
    reconnects: AtomicU64,
    notifications: AtomicU64,
    /// Whether a `LISTEN` session was ever established (the next one is a reconnect).
    listened: AtomicBool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &describe_target(&self.inner.config))
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

/// `host:port/dbname`, never the password: for error messages and logs.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

impl PostgresStore {
    /// The newest schema version this build knows.
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// Opens a pool on `url` (`postgres://user[:password]@host[:port]/dbname[?options]`) and
    /// checks that the database answers. Does not migrate: call [`PostgresStore::migrate`].
    pub async fn connect(url: &str, opts: PostgresOptions) -> Result<Self, Error> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| Error::Open {
            path: "the PostgreSQL URL".into(),
            reason: e.to_string(),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(opts.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("zerotouch");
        }
        // Notice a dead peer (a partitioned network sends no RST) within about half a minute,
        // on pooled connections and on the LISTEN connection alike.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        if let Some(limit) = opts.statement_timeout {
            let mut options = config.get_options().unwrap_or_default().to_owned();
            options.push_str(&format!(" -c statement_timeout={}", limit.as_millis()));
            config.options(options.trim());
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.max_connections.max(1))
            .wait_timeout(Some(opts.wait_timeout))
            .create_timeout(Some(opts.connect_timeout))
            .recycle_timeout(Some(opts.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::Open {
                path: describe_target(&config),
                reason: e.to_string(),
            })?;
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                config,
                up: AtomicBool::new(false),
                reconnects: AtomicU64::new(0),
                notifications: AtomicU64::new(0),
                listened: AtomicBool::new(false),
            }),
            observer: None,
            lag_observer: None,
        };
        store
            .observe("connect", async {
                let client = store.client().await?;
                client.simple_query("SELECT 1").await?;
                Ok(())
            })
            .await?;
        Ok(store)
    }

    /// Calls `f` with the name and duration of every store operation (for a latency histogram).
    pub fn set_observer(&mut self, f: Observer) {
        self.observer = Some(f);
    }

    /// Calls `f` with the lag of every change notification the `LISTEN` connection receives
    /// (set before [`PostgresStore::listen`]).
    pub fn set_lag_observer(&mut self, f: LagObserver) {
        self.lag_observer = Some(f);
    }

    /// The target as `host:port/dbname`, without user or password: for logs.
    pub fn target(&self) -> String {
        describe_target(&self.inner.config)
    }

    /// True while the database answers: false after an operation failed for want of the
    /// database or after the `LISTEN` connection was lost, until an operation succeeds again.
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Relaxed)
    }

    /// How many times the `LISTEN` connection was re-established after being lost.
    pub fn reconnects(&self) -> u64 {
        self.inner.reconnects.load(Ordering::Relaxed)
    }

    /// How many change notifications the `LISTEN` connection received.
    pub fn notifications(&self) -> u64 {
        self.inner.notifications.load(Ordering::Relaxed)
    }

    /// The schema version of the database (0 when it was never migrated).
    pub async fn schema_version(&self) -> Result<i64, Error> {
        self.observe("schema_version", async {
            let client = self.client().await?;
            Ok(read_schema_version(&client).await?.unwrap_or(0))
        })
        .await
    }

    /// Applies pending migrations in one transaction holding an advisory lock, so that nodes
    /// starting together migrate exactly once (the others wait, then find nothing to do).
    /// Refuses a database migrated by a newer build with [`Error::SchemaTooNew`].
    pub async fn migrate(&self) -> Result<MigrateReport, Error> {
        self.observe("migrate", async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRATE])
                .await?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS zerotouch_schema (\
                     id INT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)",
            )
            .await?;
            let found = match tx
                .query_opt("SELECT version FROM zerotouch_schema WHERE id = 1", &[])
                .await?
            {
                Some(row) => get::<i64>(&row, 0)?,
                None => {
                    tx.execute(
                        "INSERT INTO zerotouch_schema (id, version) VALUES (1, 0)",
                        &[],
                    )
                    .await?;
                    0
                }
            };
            if found > Self::SCHEMA_VERSION {
                return Err(Failure::Store(Error::SchemaTooNew {
                    found,
                    supported: Self::SCHEMA_VERSION,
                }));
            }
            let mut applied = Vec::new();
            for (i, migration) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
                let version = i as i64 + 1;
                match migration {
                    Migration::Sql(sql) => tx.batch_execute(sql).await?,
                    Migration::SqlThen(sql, step) => {
                        tx.batch_execute(sql).await?;
                        run_data_step(&tx, *step).await?;
                    }
                }
                tx.execute(
                    "UPDATE zerotouch_schema SET version = $1 WHERE id = 1",
                    &[&version],
                )
                .await?;
                applied.push(version);
            }
            tx.commit().await?;
            for version in &applied {
                tracing::info!(version, "applied store migration");
            }
            Ok(MigrateReport {
                found,
                version: applied.last().copied().unwrap_or(found),
                applied,
            })
        })
        .await
    }

    /// Starts the task that follows other nodes' commits: a dedicated connection doing
    /// `LISTEN zerotouch_changes` calls `wake.notify_one()` on every notification. When the
    /// connection is lost it marks the store down and reconnects with exponential backoff
    /// (100 ms doubling to 5 s); every time `LISTEN` is (re-)established it calls
    /// `wake.notify_one()`, so the caller catches up by sequence on whatever it missed. Ends
    /// when `shutdown` is cancelled.
    pub fn listen(&self, wake: Arc<Notify>, shutdown: CancellationToken) -> JoinHandle<()> {
        let inner = Arc::clone(&self.inner);
        let lag = self.lag_observer.clone();
        tokio::spawn(async move {
            let mut backoff = BACKOFF_MIN;
            loop {
                let mut listening = false;
                let ended = tokio::select! {
                    () = shutdown.cancelled() => return,
                    r = listen_session(&inner, &wake, lag.as_ref(), &mut listening) => r,
                };
                if listening {
                    backoff = BACKOFF_MIN;
                }
                inner.up.store(false, Ordering::Relaxed);
                match ended {
                    Ok(()) => tracing::warn!("store notification connection closed; reconnecting"),
                    Err(e) => {
                        tracing::warn!(error = %describe(&e), "store notification connection lost; reconnecting")
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        })
    }

    async fn client(&self) -> Result<Object, Failure> {
        Ok(self.inner.pool.get().await?)
    }

    /// Runs one operation: times it, maps its failure to [`Error`] and keeps `is_up` current.
    async fn observe<T>(
        &self,
        op: &'static str,
        work: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Error> {
        let start = Instant::now();
        let result = work.await;
        let result = match result {
            Ok(v) => {
                self.inner.up.store(true, Ordering::Relaxed);
                Ok(v)
            }
            Err(f) => {
                let (error, lost) = f.into_error();
                if lost {
                    self.inner.up.store(false, Ordering::Relaxed);
                } else {
                    self.inner.up.store(true, Ordering::Relaxed);
                }
                Err(error)
            }
        };
        if let Some(observer) = &self.observer {
            observer(op, start.elapsed());
        }
        result
    }

    /// Runs `body` in one transaction and commits it (appending its audit entries and changes
    /// first); a deadlock or serialization failure runs it again from the start.
    async fn write<T, F>(&self, op: &'static str, mut body: F) -> Result<T, Error>
    where
        T: Send,
        F: for<'t> FnMut(&'t Tx<'t>) -> TxFuture<'t, T> + Send,
    {
        self.observe(op, async {
            let mut attempt = 1;
            loop {
                match self.write_once(&mut body).await {
                    Err(Failure::Db(e)) if attempt < MAX_ATTEMPTS && retryable(&e) => {
                        tracing::debug!(op, attempt, error = %describe(&e), "store transaction retried");
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
        .await
    }

    async fn write_once<T, F>(&self, body: &mut F) -> Result<T, Failure>
    where
        F: for<'t> FnMut(&'t Tx<'t>) -> TxFuture<'t, T>,
    {
        let mut client = self.client().await?;
        let tx = Tx {
            tx: client.transaction().await?,
            pending: Mutex::new(Pending::default()),
        };
        let out = body(&tx).await?;
        tx.commit().await?;
        Ok(out)
    }
}

/// One `LISTEN` session: connects, listens and forwards notifications until the connection
/// ends. Sets `listening` once `LISTEN` succeeded.
async fn listen_session(
    inner: &Inner,
    wake: &Notify,
    lag: Option<&LagObserver>,
    listening: &mut bool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = inner.config.connect(NoTls).await?;
    let listen_sql = format!("LISTEN {CHANNEL}");
    let mut listen = std::pin::pin!(client.batch_execute(&listen_sql));
    // The connection must be polled for LISTEN to complete and, after it, to receive
    // notifications: both are driven from this one loop.
    loop {
        tokio::select! {
            r = &mut listen, if !*listening => {
                r?;
                *listening = true;
                inner.up.store(true, Ordering::Relaxed);
                if inner.listened.swap(true, Ordering::Relaxed) {
                    inner.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                // Whatever was committed while we were not listening is caught up by sequence.
                wake.notify_one();
            }
            message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    inner.notifications.fetch_add(1, Ordering::Relaxed);
                    if let (Some(observe), Some(at)) = (lag, committed_at(n.payload())) {
                        // Clocks of two nodes may disagree slightly: a negative lag is zero.
                        let millis = u64::try_from(now_millis() - at).unwrap_or(0);
                        observe(Duration::from_millis(millis));
                    }
                    wake.notify_one();
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
        }
    }
}

/// The commit time in a notification's payload (`<seq> <millis>`); `None` for a payload
/// without one (written by an older build).
fn committed_at(payload: &str) -> Option<Millis> {
    payload.split_once(' ')?.1.trim().parse().ok()
}

#[cfg(test)]
mod payload_tests {
    #[test]
    fn a_notification_carries_its_commit_time() {
        assert_eq!(
            super::committed_at("42 1700000000123"),
            Some(1_700_000_000_123)
        );
        assert_eq!(super::committed_at("42"), None, "an older build's payload");
        assert_eq!(super::committed_at("42 soon"), None);
    }
}

/// Why an operation failed, before it is mapped to [`Error`] (and to `is_up`) at the boundary.
#[derive(Debug)]
enum Failure {
    /// The database or the connection to it.
    Db(tokio_postgres::Error),
    /// The pool: no connection within the wait timeout, or none could be opened.
    Pool(PoolError),
    /// Already decided (decoding, schema version, …).
    Store(Error),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<PoolError> for Failure {
    fn from(e: PoolError) -> Self {
        Failure::Pool(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Store(e)
    }
}

impl Failure {
    /// The store error, and whether it means the database is out of reach.
    fn into_error(self) -> (Error, bool) {
        match self {
            Failure::Store(e) => (e, false),
            Failure::Pool(PoolError::Timeout(TimeoutType::Wait)) => (
                // Every pooled connection is busy: the database answers, this node is saturated.
                Error::Unavailable("no free database connection within the wait timeout".into()),
                false,
            ),
            Failure::Pool(PoolError::Timeout(_)) => (
                Error::Unavailable("the database did not accept a connection in time".into()),
                true,
            ),
            Failure::Pool(PoolError::Backend(e)) => (
                Error::Unavailable(format!("cannot connect to the database: {}", describe(&e))),
                true,
            ),
            Failure::Pool(e) => (Error::Unavailable(e.to_string()), true),
            Failure::Db(e) => {
                let lost = connection_lost(&e);
                (Error::Unavailable(describe(&e)), lost)
            }
        }
    }
}

/// The server's own message when there is one (tokio-postgres prints only "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

/// Whether an error says the database is out of reach rather than refusing one statement.
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Connection exceptions, shutdown and crash recovery, too many connections.
        Some(code) => {
            let code = code.code();
            code.starts_with("08")
                || code.starts_with("57P")
                || code.starts_with("53")
                || code.starts_with("58")
        }
        // No SQLSTATE: an I/O error, a timeout or a protocol failure on the connection.
        None => true,
    }
}

/// A transaction that lost a race the database resolved by aborting it: run it again.
fn retryable(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            // A sighting for a device released by a concurrent transaction: the retry's
            // `EXISTS` no longer sees it.
            || *c == SqlState::FOREIGN_KEY_VIOLATION
    })
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::Store(Error::Corrupt(format!("{what}: {e}")))
}

/// A column, or [`Error::Corrupt`] when it cannot be decoded as `T`.
fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, Failure> {
    row.try_get(idx).map_err(|e| corrupt("column", e))
}

fn json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| corrupt(what, e))
}

/// A page size as SQL wants it.
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn read_schema_version(client: &Object) -> Result<Option<i64>, Failure> {
    let exists = client
        .query_one("SELECT to_regclass('zerotouch_schema') IS NOT NULL", &[])
        .await?;
    if !get::<bool>(&exists, 0)? {
        return Ok(None);
    }
    match client
        .query_opt("SELECT version FROM zerotouch_schema WHERE id = 1", &[])
        .await?
    {
        Some(row) => Ok(Some(get(&row, 0)?)),
        None => Ok(None),
    }
}

type Param<'a> = &'a (dyn ToSql + Sync);

/// Where statements run: a pooled connection (reads) or a transaction (writes). Statements are
/// prepared once per connection and cached.
#[derive(Clone, Copy)]
enum Conn<'a> {
    Client(&'a Object),
    Tx(&'a deadpool_postgres::Transaction<'a>),
}

impl Conn<'_> {
    async fn statement(&self, sql: &str) -> Result<Statement, Failure> {
        Ok(match self {
            Conn::Client(c) => c.prepare_cached(sql).await?,
            Conn::Tx(t) => t.prepare_cached(sql).await?,
        })
    }

    async fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Failure> {
        let stmt = self.statement(sql).await?;
        Ok(match self {
            Conn::Client(c) => c.query(&stmt, params).await?,
            Conn::Tx(t) => t.query(&stmt, params).await?,
        })
    }

    async fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, Failure> {
        let stmt = self.statement(sql).await?;
        Ok(match self {
            Conn::Client(c) => c.query_opt(&stmt, params).await?,
            Conn::Tx(t) => t.query_opt(&stmt, params).await?,
        })
    }

    async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Failure> {
        let stmt = self.statement(sql).await?;
        Ok(match self {
            Conn::Client(c) => c.execute(&stmt, params).await?,
            Conn::Tx(t) => t.execute(&stmt, params).await?,
        })
    }
}

type TxFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, Failure>> + Send + 't>>;

/// Audit entries and changes a transaction produced, appended at commit.
#[derive(Default)]
struct Pending {
    audit: Vec<AuditRow>,
    changes: Vec<Change>,
}

struct AuditRow {
    at: i64,
    actor: String,
    source: Option<String>,
    action: &'static str,
    mac: Option<String>,
    tenant: Option<String>,
    detail: Option<String>,
}

/// One write transaction.
struct Tx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    pending: Mutex<Pending>,
}

impl<'a> Tx<'a> {
    fn conn(&self) -> Conn<'_> {
        Conn::Tx(&self.tx)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // The lock is never held across an await, so it cannot be poisoned by a panic in
        // another task; if it were, the data is still consistent (plain pushes).
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a change of phone-visible data, appended to `changes` at commit.
    fn change(&self, change: Change) {
        self.pending().changes.push(change);
    }

    /// One audit entry: who (actor), when, what (action on a device or tenant), from where,
    /// and detail as JSON text. Never secrets. Appended to `audit` at commit.
    fn audit(
        &self,
        at: i64,
        actor: &Actor,
        action: &'static str,
        mac: Option<Mac>,
        tenant: Option<&str>,
        detail: Option<serde_json::Value>,
    ) {
        self.pending().audit.push(AuditRow {
            at,
            actor: actor.name.clone(),
            source: actor.source.map(|a| a.to_string()),
            action,
            mac: mac.map(|m| m.to_string()),
            tenant: tenant.map(str::to_owned),
            detail: detail.map(|d| d.to_string()),
        });
    }

    /// Appends the audit entries and changes, notifies, and commits.
    ///
    /// BIGSERIAL values are handed out when rows are inserted, not when transactions commit, so
    /// two transactions can commit their sequence numbers out of order: a reader that saw 11
    /// could later find a 10 that committed after it read, and `changes_since(11)` would skip
    /// it for ever. To rule that out, every transaction takes the `LOCK_LOG` advisory lock
    /// right before it inserts into `changes` (and `audit`, whose ids page the same way) and
    /// holds it until its commit (PostgreSQL releases transaction locks only after the commit
    /// is visible). Sequence numbers are then taken in commit order: whoever sees seq N also
    /// sees every committed seq below N, and nothing can later commit below N.
    ///
    /// This serialises only the tail of writing transactions: after taking the lock a
    /// transaction inserts into two append-only tables and commits, it never waits for a row
    /// lock, so the lock cannot be part of a deadlock. The price is one commit at a time for
    /// phone-visible changes across all nodes (thousands per second), which claims and imports
    /// stay far below. The alternative, returning only rows below the oldest in-progress
    /// writer's sequence, needs every writer to publish its position before inserting, and
    /// a crashed session can hold the feed back until its connection times out.
    async fn commit(self) -> Result<(), Failure> {
        let pending = self
            .pending
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let c = Conn::Tx(&self.tx);
        if !pending.audit.is_empty() || !pending.changes.is_empty() {
            c.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_LOG])
                .await?;
        }
        if !pending.audit.is_empty() {
            let mut cols = AuditColumns::default();
            for row in pending.audit {
                cols.at.push(row.at);
                cols.actor.push(row.actor);
                cols.source.push(row.source);
                cols.action.push(row.action);
                cols.mac.push(row.mac);
                cols.tenant.push(row.tenant);
                cols.detail.push(row.detail);
            }
            c.execute(
                "INSERT INTO audit (at, actor, source, action, mac, tenant, detail) \
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])",
                &[
                    &cols.at,
                    &cols.actor,
                    &cols.source,
                    &cols.action,
                    &cols.mac,
                    &cols.tenant,
                    &cols.detail,
                ],
            )
            .await?;
        }
        if !pending.changes.is_empty() {
            let at = now_millis();
            let mut entity = Vec::with_capacity(pending.changes.len());
            let mut key = Vec::with_capacity(pending.changes.len());
            for change in &pending.changes {
                let (e, k) = match change {
                    Change::Tenant(id) => ("tenant", id.to_string()),
                    Change::Device(mac) => ("device", mac.to_string()),
                };
                entity.push(e);
                key.push(k);
            }
            let ats = vec![at; entity.len()];
            // The notification is delivered to listeners when (and only if) this commits.
            c.execute(
                "WITH appended AS (\
                     INSERT INTO changes (entity, key, at) \
                     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) RETURNING seq) \
                 SELECT pg_notify('zerotouch_changes', max(seq)::text || ' ' || $4::bigint::text) \
                 FROM appended",
                &[&entity, &key, &ats, &at],
            )
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

#[derive(Default)]
struct AuditColumns {
    at: Vec<i64>,
    actor: Vec<String>,
    source: Vec<Option<String>>,
    action: Vec<&'static str>,
    mac: Vec<Option<String>>,
    tenant: Vec<Option<String>>,
    detail: Vec<Option<String>>,
}

const TENANT_COLUMNS: &str = "id, name, partner_id, customer_id, settings";

fn decode_tenant(row: &Row) -> Result<TenantRecord, Failure> {
    let name: &str = get(row, 1)?;
    let settings: &str = get(row, 4)?;
    Ok(TenantRecord {
        id: get(row, 0)?,
        name: TenantName::parse(name).map_err(|e| corrupt("tenant name", e))?,
        partner: get(row, 2)?,
        customer: get(row, 3)?,
        settings: serde_json::from_str(settings).map_err(|e| corrupt("tenant settings", e))?,
    })
}

async fn load_tenant(c: Conn<'_>, id: TenantId) -> Result<Option<TenantRecord>, Failure> {
    const SQL: &str =
        "SELECT id, name, partner_id, customer_id, settings FROM tenants WHERE id = $1";
    c.query_opt(SQL, &[&id])
        .await?
        .as_ref()
        .map(decode_tenant)
        .transpose()
}

/// Row lock a tenant lookup takes inside a write.
#[derive(Clone, Copy)]
enum TenantLock {
    /// Claims and moves: the tenant must not be deleted before we commit.
    KeyShare,
    /// Updates of its settings.
    NoKeyUpdate,
    /// Deletes.
    Update,
}

/// The tenant named `name`, if the actor may use it: the operator may use any, a partner only
/// its own. Returns (id, partner).
async fn visible_tenant(
    c: Conn<'_>,
    name: &str,
    partner: Option<PartnerId>,
    lock: TenantLock,
) -> Result<Option<(i64, Option<i64>)>, Failure> {
    let sql = match lock {
        TenantLock::KeyShare => "SELECT id, partner_id FROM tenants WHERE name = $1 FOR KEY SHARE",
        TenantLock::NoKeyUpdate => {
            "SELECT id, partner_id FROM tenants WHERE name = $1 FOR NO KEY UPDATE"
        }
        TenantLock::Update => "SELECT id, partner_id FROM tenants WHERE name = $1 FOR UPDATE",
    };
    let Some(row) = c.query_opt(sql, &[&name]).await? else {
        return Ok(None);
    };
    let found: (i64, Option<i64>) = (get(&row, 0)?, get(&row, 1)?);
    Ok(Some(found).filter(|(_, owner)| partner.is_none() || *owner == partner))
}

const DEVICE_COLUMNS: &str =
    "mac, vendor, tenant_id, claim_secret, credentials, enrol_until, settings";

fn decode_json<'a, T: serde::Deserialize<'a>>(
    what: &str,
    text: Option<&'a str>,
) -> Result<Option<T>, Failure> {
    text.map(|t| serde_json::from_str(t).map_err(|e| corrupt(what, e)))
        .transpose()
}

/// A device from the first seven columns of `row` (`DEVICE_COLUMNS`).
fn decode_device(row: &Row) -> Result<DeviceRecord, Failure> {
    let mac: &str = get(row, 0)?;
    let vendor: &str = get(row, 1)?;
    let settings: &str = get(row, 6)?;
    Ok(DeviceRecord {
        mac: Mac::parse(mac).map_err(|e| corrupt("device mac", e))?,
        vendor: vendor
            .parse::<Vendor>()
            .map_err(|e| corrupt("device vendor", e))?,
        tenant: get(row, 2)?,
        claim_secret: decode_json("claim secret", get(row, 3)?)?,
        credentials: decode_json("credentials", get(row, 4)?)?,
        enrol_until: get(row, 5)?,
        settings: serde_json::from_str(settings).map_err(|e| corrupt("device settings", e))?,
    })
}

/// The device if claimed by a tenant the actor may see, with that tenant's name, its row
/// locked for the rest of the transaction (`lock`: `FOR NO KEY UPDATE OF d` or `FOR UPDATE OF d`).
async fn visible_device(
    c: Conn<'_>,
    mac: Mac,
    partner: Option<PartnerId>,
    for_delete: bool,
) -> Result<Option<(DeviceRecord, String)>, Failure> {
    let sql = if for_delete {
        "SELECT d.mac, d.vendor, d.tenant_id, d.claim_secret, d.credentials, d.enrol_until, d.settings, \
         t.name, t.partner_id \
         FROM devices d JOIN tenants t ON t.id = d.tenant_id WHERE d.mac = $1 FOR UPDATE OF d"
    } else {
        "SELECT d.mac, d.vendor, d.tenant_id, d.claim_secret, d.credentials, d.enrol_until, d.settings, \
         t.name, t.partner_id \
         FROM devices d JOIN tenants t ON t.id = d.tenant_id WHERE d.mac = $1 FOR NO KEY UPDATE OF d"
    };
    let Some(row) = c.query_opt(sql, &[&mac.to_string()]).await? else {
        return Ok(None);
    };
    let owner: Option<i64> = get(&row, 8)?;
    if partner.is_some() && owner != partner {
        return Ok(None);
    }
    Ok(Some((decode_device(&row)?, get(&row, 7)?)))
}

const VIEW_SELECT: &str = "SELECT d.mac, d.vendor, d.tenant_id, d.claim_secret, d.credentials, d.enrol_until, d.settings, \
     t.name, d.claimed_at, d.updated_at, \
     s.last_seen, s.source_ip, s.user_agent, s.model, s.firmware, s.last_file, s.last_outcome \
     FROM devices d JOIN tenants t ON t.id = d.tenant_id LEFT JOIN device_status s ON s.mac = d.mac";

fn decode_view(row: &Row) -> Result<DeviceView, Failure> {
    let tenant: &str = get(row, 7)?;
    let seen: Option<i64> = get(row, 10)?;
    let status = match seen {
        Some(last_seen) => Some(DeviceStatus {
            last_seen,
            source: get(row, 11)?,
            user_agent: get(row, 12)?,
            model: get(row, 13)?,
            firmware: get(row, 14)?,
            last_file: get(row, 15)?,
            last_outcome: get(row, 16)?,
        }),
        None => None,
    };
    Ok(DeviceView {
        record: decode_device(row)?,
        tenant_name: TenantName::parse(tenant).map_err(|e| corrupt("tenant name", e))?,
        claimed_at: get(row, 8)?,
        updated_at: get(row, 9)?,
        status,
    })
}

const CUSTOMER_COLUMNS: &str = "id, partner_id, fields, created_at";

fn decode_customer(row: &Row) -> Result<CustomerRecord, Failure> {
    let fields: &str = get(row, 2)?;
    Ok(CustomerRecord {
        id: get(row, 0)?,
        partner: get(row, 1)?,
        fields: serde_json::from_str(fields).map_err(|e| corrupt("customer", e))?,
        created_at: get(row, 3)?,
    })
}

async fn customer_is_partners(
    c: Conn<'_>,
    customer: Option<CustomerId>,
    partner: Option<PartnerId>,
) -> Result<bool, Failure> {
    let Some(customer) = customer else {
        return Ok(true);
    };
    let owner: Option<i64> = match c
        .query_opt(
            "SELECT partner_id FROM customers WHERE id = $1 FOR KEY SHARE",
            &[&customer],
        )
        .await?
    {
        Some(row) => Some(get(&row, 0)?),
        None => None,
    };
    Ok(match (owner, partner) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(o), Some(p)) => o == p,
    })
}

const TOKEN_COLUMNS: &str = "id, partner_id, key_id, secret_hash, created_at, revoked_at";

fn decode_token(row: &Row) -> Result<TokenRecord, Failure> {
    Ok(TokenRecord {
        id: get(row, 0)?,
        partner: get(row, 1)?,
        key_id: get(row, 2)?,
        secret_hash: get(row, 3)?,
        created_at: get(row, 4)?,
        revoked_at: get(row, 5)?,
    })
}

fn decode_partner(row: &Row) -> Result<PartnerRecord, Failure> {
    Ok(PartnerRecord {
        id: get(row, 0)?,
        name: get(row, 1)?,
        created_at: get(row, 2)?,
    })
}

/// Applies one claim inside a transaction: the heart of "nobody can steal a phone".
///
/// The MAC is the primary key, so `INSERT … ON CONFLICT DO NOTHING` decides between concurrent
/// claimers on every node: exactly one inserts; the others wait for its commit and then read
/// its row (under a row lock, so the decision holds until this transaction ends). If that row
/// was released in between, the insert is simply tried again.
async fn claim_in(
    tx: &Tx<'_>,
    req: &ClaimRequest,
    actor: &Actor,
    now: i64,
) -> Result<ClaimOutcome, Failure> {
    let c = tx.conn();
    let Some((tenant_id, _)) =
        visible_tenant(c, req.tenant.as_str(), actor.partner, TenantLock::KeyShare).await?
    else {
        return Ok(ClaimOutcome::UnknownTenant);
    };
    let mac = req.mac.to_string();
    let settings = json("device settings", &req.settings)?;
    let claim_secret = req
        .claim_code
        .as_ref()
        .map(|c| ClaimSecret::new(req.mac, c));
    let secret_json = claim_secret
        .as_ref()
        .map(|s| json("claim secret", s))
        .transpose()?;
    for _ in 0..16 {
        let inserted = c
            .execute(
                "INSERT INTO devices (mac, vendor, tenant_id, claim_secret, enrol_until, settings, claimed_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (mac) DO NOTHING",
                &[
                    &mac,
                    &req.vendor.as_str(),
                    &tenant_id,
                    &secret_json,
                    &req.enrol_until,
                    &settings,
                    &now,
                ],
            )
            .await?;
        if inserted == 1 {
            tx.audit(
                now,
                actor,
                "device.claim",
                Some(req.mac),
                Some(req.tenant.as_str()),
                req.enrol_until
                    .map(|u| serde_json::json!({"enrolment_until": u})),
            );
            tx.change(Change::Device(req.mac));
            return Ok(ClaimOutcome::Created(DeviceRecord {
                mac: req.mac,
                vendor: req.vendor,
                tenant: tenant_id,
                claim_secret,
                credentials: None,
                enrol_until: req.enrol_until,
                settings: req.settings.clone(),
            }));
        }
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE mac = $1 FOR NO KEY UPDATE");
        let Some(row) = c.query_opt(&sql, &[&mac]).await? else {
            // Released between our insert and this read: try to insert again.
            continue;
        };
        let owner: i64 = get(&row, 2)?;
        if owner != tenant_id {
            return Ok(ClaimOutcome::AlreadyInUse);
        }
        let device = decode_device(&row)?;
        let same_code = match (&device.claim_secret, &req.claim_code) {
            (None, None) => true,
            (Some(secret), Some(code)) => secret.matches(req.mac, code),
            _ => false,
        };
        return Ok(if same_code {
            ClaimOutcome::Unchanged(device)
        } else {
            ClaimOutcome::ClaimCodeMismatch
        });
    }
    Err(Failure::Store(Error::Unavailable(
        "the claim kept racing with releases of the same device".into(),
    )))
}

/// One tenant row of an import: created, updated, or refused because another partner owns
/// the name.
async fn import_tenant(
    tx: &Tx<'_>,
    name: &TenantName,
    settings: &TenantSettings,
    actor: &Actor,
    now: i64,
    result: &mut ImportResult,
) -> Result<RowOutcome, Failure> {
    let c = tx.conn();
    let settings_json = json("tenant settings", settings)?;
    for _ in 0..16 {
        let existing = visible_tenant(c, name.as_str(), None, TenantLock::NoKeyUpdate).await?;
        match existing {
            Some((_, owner)) if actor.partner.is_some() && owner != actor.partner => {
                return Ok(RowOutcome::NameTaken);
            }
            Some((id, _)) => {
                c.execute(
                    "UPDATE tenants SET settings = $2, updated_at = $3 WHERE id = $1",
                    &[&id, &settings_json, &now],
                )
                .await?;
                tx.change(Change::Tenant(id));
                tx.audit(now, actor, "tenant.update", None, Some(name.as_str()), None);
                result.applied_tenants.extend(load_tenant(c, id).await?);
                return Ok(RowOutcome::Updated);
            }
            None => {
                let row = c
                    .query_opt(
                        "INSERT INTO tenants (name, partner_id, settings, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING RETURNING id",
                        &[&name.as_str(), &actor.partner, &settings_json, &now],
                    )
                    .await?;
                // Created by a concurrent transaction since we looked: look again.
                let Some(row) = row else { continue };
                let id: i64 = get(&row, 0)?;
                tx.change(Change::Tenant(id));
                tx.audit(now, actor, "tenant.create", None, Some(name.as_str()), None);
                result.applied_tenants.extend(load_tenant(c, id).await?);
                return Ok(RowOutcome::Created);
            }
        }
    }
    Err(Failure::Store(Error::Unavailable(
        "the tenant kept being created and deleted concurrently".into(),
    )))
}

async fn import_in(tx: &Tx<'_>, batch: &ImportBatch) -> Result<ImportResult, Failure> {
    let now = now_millis();
    let actor = &batch.actor;
    let c = tx.conn();
    let mut result = ImportResult::default();
    for (row, name, settings) in &batch.tenants {
        let outcome = import_tenant(tx, name, settings, actor, now, &mut result).await?;
        result.tenants.push((*row, outcome));
    }
    for d in &batch.devices {
        let req = ClaimRequest {
            mac: d.mac,
            vendor: d.vendor,
            claim_code: d.claim_code.clone(),
            tenant: d.tenant.clone(),
            settings: d.settings.clone(),
            enrol_until: d.enrol_until,
        };
        let outcome = match claim_in(tx, &req, actor, now).await? {
            ClaimOutcome::Created(record) => {
                result.applied_devices.push(record);
                RowOutcome::Created
            }
            ClaimOutcome::Unchanged(mut record) => {
                // Importing again refreshes per-device settings.
                if record.settings != d.settings {
                    let settings = json("device settings", &d.settings)?;
                    c.execute(
                        "UPDATE devices SET settings = $2, updated_at = $3 WHERE mac = $1",
                        &[&d.mac.to_string(), &settings, &now],
                    )
                    .await?;
                    tx.change(Change::Device(d.mac));
                    record.settings = d.settings.clone();
                }
                result.applied_devices.push(record);
                RowOutcome::Updated
            }
            ClaimOutcome::AlreadyInUse => RowOutcome::AlreadyInUse,
            ClaimOutcome::UnknownTenant => RowOutcome::UnknownTenant,
            ClaimOutcome::ClaimCodeMismatch => RowOutcome::ClaimCodeMismatch,
        };
        result.devices.push((d.row, outcome));
    }
    Ok(result)
}

/// Sightings as columns: the last one per MAC (as if written one after the other), in MAC
/// order so that concurrent batches lock rows in the same order.
fn sighting_columns(batch: &[Sighting]) -> SightingColumns {
    let mut latest: BTreeMap<Mac, &Sighting> = BTreeMap::new();
    for s in batch {
        latest.insert(s.mac, s);
    }
    let mut cols = SightingColumns::default();
    for (mac, s) in latest {
        cols.mac.push(mac.to_string());
        cols.at.push(s.at);
        cols.source.push(s.source.to_string());
        cols.user_agent.push(s.user_agent.clone());
        cols.model.push(s.model.clone());
        cols.firmware.push(s.firmware.clone());
        cols.file.push(s.file);
        cols.outcome.push(s.outcome);
    }
    cols
}

#[derive(Default)]
struct SightingColumns {
    mac: Vec<String>,
    at: Vec<i64>,
    source: Vec<String>,
    user_agent: Vec<String>,
    model: Vec<Option<String>>,
    firmware: Vec<Option<String>>,
    file: Vec<&'static str>,
    outcome: Vec<&'static str>,
}

fn decode_change(row: &Row) -> Result<ChangeEntry, Failure> {
    let seq: i64 = get(row, 0)?;
    let entity: &str = get(row, 1)?;
    let key: &str = get(row, 2)?;
    let change = match entity {
        "tenant" => Change::Tenant(key.parse().map_err(|e| corrupt("change key", e))?),
        "device" => Change::Device(Mac::parse(key).map_err(|e| corrupt("change key", e))?),
        other => return Err(corrupt("change entity", other)),
    };
    Ok(ChangeEntry { seq, change })
}

fn decode_audit(row: &Row) -> Result<AuditEntry, Failure> {
    Ok(AuditEntry {
        id: get(row, 0)?,
        at: get(row, 1)?,
        actor: get(row, 2)?,
        source: get(row, 3)?,
        action: get(row, 4)?,
        mac: get(row, 5)?,
        tenant: get(row, 6)?,
        detail: get(row, 7)?,
    })
}

#[async_trait]
impl Store for PostgresStore {
    async fn tenants(&self) -> Result<Vec<TenantRecord>, Error> {
        self.tenants_of(None).await
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, Error> {
        self.observe("tenant", async {
            let client = self.client().await?;
            load_tenant(Conn::Client(&client), id).await
        })
        .await
    }

    async fn devices_page(
        &self,
        after: Option<Mac>,
        limit_rows: usize,
    ) -> Result<Vec<DeviceRecord>, Error> {
        self.observe("devices_page", async {
            let client = self.client().await?;
            let after = after.map(|m| m.to_string()).unwrap_or_default();
            // A range scan of the primary key in key order: no sort, stops after `limit`.
            let sql = format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE mac > $1 ORDER BY mac LIMIT $2"
            );
            let rows = Conn::Client(&client)
                .query(&sql, &[&after, &limit(limit_rows)])
                .await?;
            rows.iter().map(decode_device).collect()
        })
        .await
    }

    async fn device(&self, mac: Mac) -> Result<Option<DeviceRecord>, Error> {
        self.observe("device", async {
            let client = self.client().await?;
            let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE mac = $1");
            Conn::Client(&client)
                .query_opt(&sql, &[&mac.to_string()])
                .await?
                .as_ref()
                .map(decode_device)
                .transpose()
        })
        .await
    }

    async fn latest_change(&self) -> Result<i64, Error> {
        self.observe("latest_change", async {
            let client = self.client().await?;
            let rows = Conn::Client(&client)
                .query("SELECT COALESCE(MAX(seq), 0)::bigint FROM changes", &[])
                .await?;
            match rows.first() {
                Some(row) => get(row, 0),
                None => Ok(0),
            }
        })
        .await
    }

    async fn changes_since(&self, seq: i64, limit_rows: usize) -> Result<Vec<ChangeEntry>, Error> {
        self.observe("changes_since", async {
            let client = self.client().await?;
            // Safe to page by seq: seqs are taken in commit order (see `Tx::commit`).
            let rows = Conn::Client(&client)
                .query(
                    "SELECT seq, entity, key FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&seq, &limit(limit_rows)],
                )
                .await?;
            rows.iter().map(decode_change).collect()
        })
        .await
    }

    async fn import(&self, batch: ImportBatch) -> Result<ImportResult, Error> {
        let batch = Arc::new(batch);
        self.write("import", move |tx| {
            let batch = Arc::clone(&batch);
            Box::pin(async move { import_in(tx, &batch).await })
        })
        .await
    }

    async fn record_sightings(&self, batch: Vec<Sighting>) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let cols = Arc::new(sighting_columns(&batch));
        self.write("record_sightings", move |tx| {
            let cols = Arc::clone(&cols);
            Box::pin(async move {
                tx.conn()
                    .execute(
                        "INSERT INTO device_status (mac, last_seen, source_ip, user_agent, model, firmware, last_file, last_outcome) \
                         SELECT u.* FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) \
                             AS u(mac, last_seen, source_ip, user_agent, model, firmware, last_file, last_outcome) \
                         WHERE EXISTS (SELECT 1 FROM devices d WHERE d.mac = u.mac) \
                         ON CONFLICT (mac) DO UPDATE SET last_seen = excluded.last_seen, source_ip = excluded.source_ip, \
                         user_agent = excluded.user_agent, model = excluded.model, firmware = excluded.firmware, \
                         last_file = excluded.last_file, last_outcome = excluded.last_outcome",
                        &[
                            &cols.mac,
                            &cols.at,
                            &cols.source,
                            &cols.user_agent,
                            &cols.model,
                            &cols.firmware,
                            &cols.file,
                            &cols.outcome,
                        ],
                    )
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn create_partner(
        &self,
        name: &str,
        actor: &Actor,
    ) -> Result<Option<PartnerRecord>, Error> {
        let (name, actor) = (name.to_owned(), actor.clone());
        self.write("create_partner", move |tx| {
            let (name, actor) = (name.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let Some(row) = tx
                    .conn()
                    .query_opt(
                        "INSERT INTO partners (name, created_at) VALUES ($1, $2) \
                         ON CONFLICT (name) DO NOTHING RETURNING id",
                        &[&name, &now],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let id: i64 = get(&row, 0)?;
                tx.audit(
                    now,
                    &actor,
                    "partner.create",
                    None,
                    None,
                    Some(serde_json::json!({"partner": id, "name": name})),
                );
                Ok(Some(PartnerRecord {
                    id,
                    name,
                    created_at: now,
                }))
            })
        })
        .await
    }

    async fn partners(&self) -> Result<Vec<PartnerRecord>, Error> {
        self.observe("partners", async {
            let client = self.client().await?;
            let rows = Conn::Client(&client)
                .query("SELECT id, name, created_at FROM partners ORDER BY id", &[])
                .await?;
            rows.iter().map(decode_partner).collect()
        })
        .await
    }

    async fn partner(&self, id: PartnerId) -> Result<Option<PartnerRecord>, Error> {
        self.observe("partner", async {
            let client = self.client().await?;
            Conn::Client(&client)
                .query_opt(
                    "SELECT id, name, created_at FROM partners WHERE id = $1",
                    &[&id],
                )
                .await?
                .as_ref()
                .map(decode_partner)
                .transpose()
        })
        .await
    }

    async fn partner_by_name(&self, name: &str) -> Result<Option<PartnerRecord>, Error> {
        self.observe("partner_by_name", async {
            let client = self.client().await?;
            Conn::Client(&client)
                .query_opt(
                    "SELECT id, name, created_at FROM partners WHERE name = $1",
                    &[&name],
                )
                .await?
                .as_ref()
                .map(decode_partner)
                .transpose()
        })
        .await
    }

    async fn create_token(
        &self,
        partner: PartnerId,
        key_id: &str,
        secret_hash: &[u8],
        actor: &Actor,
    ) -> Result<Option<TokenRecord>, Error> {
        let (key_id, secret_hash, actor) = (key_id.to_owned(), secret_hash.to_vec(), actor.clone());
        self.write("create_token", move |tx| {
            let (key_id, secret_hash, actor) = (key_id.clone(), secret_hash.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                if c.query_opt(
                    "SELECT id FROM partners WHERE id = $1 FOR KEY SHARE",
                    &[&partner],
                )
                .await?
                .is_none()
                {
                    return Ok(None);
                }
                let row = c
                    .query_opt(
                        "INSERT INTO api_tokens (partner_id, key_id, secret_hash, created_at) \
                         VALUES ($1, $2, $3, $4) RETURNING id",
                        &[&partner, &key_id, &secret_hash, &now],
                    )
                    .await?;
                let Some(row) = row else {
                    return Err(corrupt("token", "insert returned no id"));
                };
                let id: i64 = get(&row, 0)?;
                tx.audit(
                    now,
                    &actor,
                    "token.create",
                    None,
                    None,
                    Some(serde_json::json!({"partner": partner, "token": id})),
                );
                Ok(Some(TokenRecord {
                    id,
                    partner,
                    key_id,
                    secret_hash,
                    created_at: now,
                    revoked_at: None,
                }))
            })
        })
        .await
    }

    async fn tokens(&self, partner: PartnerId) -> Result<Vec<TokenRecord>, Error> {
        self.observe("tokens", async {
            let client = self.client().await?;
            let sql =
                format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE partner_id = $1 ORDER BY id");
            let rows = Conn::Client(&client).query(&sql, &[&partner]).await?;
            rows.iter().map(decode_token).collect()
        })
        .await
    }

    async fn token_by_key(&self, key_id: &str) -> Result<Option<TokenRecord>, Error> {
        self.observe("token_by_key", async {
            let client = self.client().await?;
            let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE key_id = $1");
            Conn::Client(&client)
                .query_opt(&sql, &[&key_id])
                .await?
                .as_ref()
                .map(decode_token)
                .transpose()
        })
        .await
    }

    async fn revoke_token(
        &self,
        partner: PartnerId,
        token: i64,
        actor: &Actor,
    ) -> Result<bool, Error> {
        let actor = actor.clone();
        self.write("revoke_token", move |tx| {
            let actor = actor.clone();
            Box::pin(async move {
                let now = now_millis();
                let n = tx
                    .conn()
                    .execute(
                        "UPDATE api_tokens SET revoked_at = $3 \
                         WHERE id = $1 AND partner_id = $2 AND revoked_at IS NULL",
                        &[&token, &partner, &now],
                    )
                    .await?;
                if n > 0 {
                    tx.audit(
                        now,
                        &actor,
                        "token.revoke",
                        None,
                        None,
                        Some(serde_json::json!({"partner": partner, "token": token})),
                    );
                }
                Ok(n > 0)
            })
        })
        .await
    }

    async fn create_customer(
        &self,
        partner: PartnerId,
        fields: CustomerFields,
        actor: &Actor,
    ) -> Result<CustomerRecord, Error> {
        let actor = actor.clone();
        self.write("create_customer", move |tx| {
            let (fields, actor) = (fields.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let text = json("customer", &fields)?;
                let row = tx
                    .conn()
                    .query_opt(
                        "INSERT INTO customers (partner_id, fields, created_at, updated_at) \
                         VALUES ($1, $2, $3, $3) RETURNING id",
                        &[&partner, &text, &now],
                    )
                    .await?;
                let Some(row) = row else {
                    return Err(corrupt("customer", "insert returned no id"));
                };
                let id: i64 = get(&row, 0)?;
                tx.audit(
                    now,
                    &actor,
                    "customer.create",
                    None,
                    None,
                    Some(serde_json::json!({"customer": id})),
                );
                Ok(CustomerRecord {
                    id,
                    partner,
                    fields,
                    created_at: now,
                })
            })
        })
        .await
    }

    async fn customers(&self, partner: PartnerId) -> Result<Vec<CustomerRecord>, Error> {
        self.observe("customers", async {
            let client = self.client().await?;
            let sql = format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE partner_id = $1 ORDER BY id"
            );
            let rows = Conn::Client(&client).query(&sql, &[&partner]).await?;
            rows.iter().map(decode_customer).collect()
        })
        .await
    }

    async fn customer(
        &self,
        partner: PartnerId,
        id: CustomerId,
    ) -> Result<Option<CustomerRecord>, Error> {
        self.observe("customer", async {
            let client = self.client().await?;
            let sql = format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1 AND partner_id = $2"
            );
            Conn::Client(&client)
                .query_opt(&sql, &[&id, &partner])
                .await?
                .as_ref()
                .map(decode_customer)
                .transpose()
        })
        .await
    }

    async fn update_customer(
        &self,
        partner: PartnerId,
        id: CustomerId,
        fields: CustomerFields,
        actor: &Actor,
    ) -> Result<Option<CustomerRecord>, Error> {
        let actor = actor.clone();
        self.write("update_customer", move |tx| {
            let (fields, actor) = (fields.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let text = json("customer", &fields)?;
                let sql = format!(
                    "UPDATE customers SET fields = $3, updated_at = $4 \
                     WHERE id = $1 AND partner_id = $2 RETURNING {CUSTOMER_COLUMNS}"
                );
                let Some(row) = tx
                    .conn()
                    .query_opt(&sql, &[&id, &partner, &text, &now])
                    .await?
                else {
                    return Ok(None);
                };
                tx.audit(
                    now,
                    &actor,
                    "customer.update",
                    None,
                    None,
                    Some(serde_json::json!({"customer": id})),
                );
                decode_customer(&row).map(Some)
            })
        })
        .await
    }

    async fn create_tenant(
        &self,
        name: TenantName,
        customer: Option<CustomerId>,
        settings: TenantSettings,
        actor: &Actor,
    ) -> Result<TenantCreated, Error> {
        let actor = actor.clone();
        self.write("create_tenant", move |tx| {
            let (name, settings, actor) = (name.clone(), settings.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                if !customer_is_partners(c, customer, actor.partner).await? {
                    return Ok(TenantCreated::UnknownCustomer);
                }
                let text = json("tenant settings", &settings)?;
                let Some(row) = c
                    .query_opt(
                        "INSERT INTO tenants (name, partner_id, customer_id, settings, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name) DO NOTHING RETURNING id",
                        &[&name.as_str(), &actor.partner, &customer, &text, &now],
                    )
                    .await?
                else {
                    return Ok(TenantCreated::NameTaken);
                };
                let id: i64 = get(&row, 0)?;
                tx.change(Change::Tenant(id));
                tx.audit(now, &actor, "tenant.create", None, Some(name.as_str()), None);
                Ok(TenantCreated::Created(TenantRecord {
                    id,
                    name,
                    partner: actor.partner,
                    customer,
                    settings,
                }))
            })
        })
        .await
    }

    async fn tenants_of(&self, partner: Option<PartnerId>) -> Result<Vec<TenantRecord>, Error> {
        self.observe("tenants_of", async {
            let client = self.client().await?;
            let sql = format!(
                "SELECT {TENANT_COLUMNS} FROM tenants \
                 WHERE $1::bigint IS NULL OR partner_id = $1 ORDER BY name"
            );
            let rows = Conn::Client(&client).query(&sql, &[&partner]).await?;
            rows.iter().map(decode_tenant).collect()
        })
        .await
    }

    async fn tenant_by_name(
        &self,
        partner: Option<PartnerId>,
        name: &TenantName,
    ) -> Result<Option<TenantRecord>, Error> {
        self.observe("tenant_by_name", async {
            let client = self.client().await?;
            let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE name = $1");
            let tenant = Conn::Client(&client)
                .query_opt(&sql, &[&name.as_str()])
                .await?
                .as_ref()
                .map(decode_tenant)
                .transpose()?;
            Ok(tenant.filter(|t| partner.is_none() || t.partner == partner))
        })
        .await
    }

    async fn update_tenant(
        &self,
        name: &TenantName,
        customer: Option<CustomerId>,
        settings: TenantSettings,
        actor: &Actor,
    ) -> Result<TenantChanged, Error> {
        let (name, actor) = (name.clone(), actor.clone());
        self.write("update_tenant", move |tx| {
            let (name, settings, actor) = (name.clone(), settings.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                let Some((id, _)) =
                    visible_tenant(c, name.as_str(), actor.partner, TenantLock::NoKeyUpdate)
                        .await?
                else {
                    return Ok(TenantChanged::NotFound);
                };
                if !customer_is_partners(c, customer, actor.partner).await? {
                    return Ok(TenantChanged::UnknownCustomer);
                }
                let text = json("tenant settings", &settings)?;
                c.execute(
                    "UPDATE tenants SET settings = $2, customer_id = $3, updated_at = $4 WHERE id = $1",
                    &[&id, &text, &customer, &now],
                )
                .await?;
                tx.change(Change::Tenant(id));
                tx.audit(now, &actor, "tenant.update", None, Some(name.as_str()), None);
                Ok(TenantChanged::Done(load_tenant(c, id).await?))
            })
        })
        .await
    }

    async fn delete_tenant(
        &self,
        name: &TenantName,
        actor: &Actor,
    ) -> Result<TenantChanged, Error> {
        let (name, actor) = (name.clone(), actor.clone());
        self.write("delete_tenant", move |tx| {
            let (name, actor) = (name.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                // FOR UPDATE waits for claims that hold the tenant FOR KEY SHARE, so the count
                // below sees every device they committed, and blocks new ones until we end.
                let Some((id, _)) =
                    visible_tenant(c, name.as_str(), actor.partner, TenantLock::Update).await?
                else {
                    return Ok(TenantChanged::NotFound);
                };
                let claimed = c
                    .query_opt("SELECT 1 FROM devices WHERE tenant_id = $1 LIMIT 1", &[&id])
                    .await?;
                if claimed.is_some() {
                    return Ok(TenantChanged::HasDevices);
                }
                c.execute("DELETE FROM tenants WHERE id = $1", &[&id])
                    .await?;
                tx.change(Change::Tenant(id));
                tx.audit(
                    now,
                    &actor,
                    "tenant.delete",
                    None,
                    Some(name.as_str()),
                    None,
                );
                Ok(TenantChanged::Done(None))
            })
        })
        .await
    }

    async fn claim(&self, request: ClaimRequest, actor: &Actor) -> Result<ClaimOutcome, Error> {
        let actor = actor.clone();
        self.write("claim", move |tx| {
            let (request, actor) = (request.clone(), actor.clone());
            Box::pin(async move { claim_in(tx, &request, &actor, now_millis()).await })
        })
        .await
    }

    async fn update_device(
        &self,
        mac: Mac,
        update: DeviceUpdate,
        actor: &Actor,
    ) -> Result<UpdateOutcome, Error> {
        let actor = actor.clone();
        self.write("update_device", move |tx| {
            let (update, actor) = (update.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                let mac_text = mac.to_string();
                let Some((mut device, from)) = visible_device(c, mac, actor.partner, false).await?
                else {
                    return Ok(UpdateOutcome::NotFound);
                };
                if let Some(to) = &update.tenant {
                    let Some((to_id, _)) =
                        visible_tenant(c, to.as_str(), actor.partner, TenantLock::KeyShare).await?
                    else {
                        return Ok(UpdateOutcome::UnknownTenant);
                    };
                    if to_id != device.tenant {
                        c.execute(
                            "UPDATE devices SET tenant_id = $2, updated_at = $3 WHERE mac = $1",
                            &[&mac_text, &to_id, &now],
                        )
                        .await?;
                        tx.audit(
                            now,
                            &actor,
                            "device.move",
                            Some(mac),
                            Some(to.as_str()),
                            Some(serde_json::json!({"from": from, "to": to.as_str()})),
                        );
                        device.tenant = to_id;
                    }
                }
                if let Some(settings) = update.settings {
                    let text = json("device settings", &settings)?;
                    c.execute(
                        "UPDATE devices SET settings = $2, updated_at = $3 WHERE mac = $1",
                        &[&mac_text, &text, &now],
                    )
                    .await?;
                    let tenant = update.tenant.as_ref().map_or(from.as_str(), |t| t.as_str());
                    tx.audit(now, &actor, "device.update", Some(mac), Some(tenant), None);
                    device.settings = settings;
                }
                tx.change(Change::Device(mac));
                Ok(UpdateOutcome::Updated(device))
            })
        })
        .await
    }

    async fn release(&self, mac: Mac, actor: &Actor) -> Result<bool, Error> {
        let actor = actor.clone();
        self.write("release", move |tx| {
            let actor = actor.clone();
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                let Some((_, tenant)) = visible_device(c, mac, actor.partner, true).await? else {
                    return Ok(false);
                };
                c.execute("DELETE FROM devices WHERE mac = $1", &[&mac.to_string()])
                    .await?;
                tx.audit(
                    now,
                    &actor,
                    "device.release",
                    Some(mac),
                    Some(&tenant),
                    None,
                );
                tx.change(Change::Device(mac));
                Ok(true)
            })
        })
        .await
    }

    async fn device_view(
        &self,
        partner: Option<PartnerId>,
        mac: Mac,
    ) -> Result<Option<DeviceView>, Error> {
        self.observe("device_view", async {
            let client = self.client().await?;
            let sql = format!(
                "{VIEW_SELECT} WHERE d.mac = $1 AND ($2::bigint IS NULL OR t.partner_id = $2)"
            );
            Conn::Client(&client)
                .query_opt(&sql, &[&mac.to_string(), &partner])
                .await?
                .as_ref()
                .map(decode_view)
                .transpose()
        })
        .await
    }

    async fn search_devices(
        &self,
        partner: Option<PartnerId>,
        q: DeviceQuery,
    ) -> Result<Vec<DeviceView>, Error> {
        self.observe("search_devices", async {
            let client = self.client().await?;
            let sql = format!(
                "{VIEW_SELECT} WHERE ($1::bigint IS NULL OR t.partner_id = $1) AND d.mac > $2 \
                 AND ($3::text IS NULL OR (d.mac >= $3 AND d.mac < $3 || 'g')) \
                 AND ($4::text IS NULL OR t.name = $4) AND ($5::text IS NULL OR d.vendor = $5) \
                 AND ($6::bigint IS NULL OR s.last_seen >= $6) AND ($7::bigint IS NULL OR s.last_seen < $7) \
                 AND (NOT $8::bool OR s.mac IS NULL) ORDER BY d.mac LIMIT $9"
            );
            let after = q.after.map(|m| m.to_string()).unwrap_or_default();
            let tenant = q.tenant.as_ref().map(TenantName::as_str);
            let vendor = q.vendor.map(Vendor::as_str);
            let rows = Conn::Client(&client)
                .query(
                    &sql,
                    &[
                        &partner,
                        &after,
                        &q.mac_prefix,
                        &tenant,
                        &vendor,
                        &q.seen_since,
                        &q.seen_before,
                        &q.never_seen,
                        &limit(q.limit),
                    ],
                )
                .await?;
            rows.iter().map(decode_view).collect()
        })
        .await
    }

    async fn audit_log(&self, q: AuditQuery) -> Result<Vec<AuditEntry>, Error> {
        self.observe("audit_log", async {
            let client = self.client().await?;
            let mac = q.mac.map(|m| m.to_string());
            let rows = Conn::Client(&client)
                .query(
                    "SELECT id, at, actor, source, action, mac, tenant, detail FROM audit \
                     WHERE id > $1 AND ($2::text IS NULL OR mac = $2) AND ($3::text IS NULL OR tenant = $3) \
                     ORDER BY id LIMIT $4",
                    &[&q.after.unwrap_or(0), &mac, &q.tenant, &limit(q.limit)],
                )
                .await?;
            rows.iter().map(decode_audit).collect()
        })
        .await
    }

    async fn change_credentials(
        &self,
        mac: Mac,
        change: CredentialChange,
        source: Option<std::net::IpAddr>,
    ) -> Result<Option<DeviceRecord>, Error> {
        self.write("change_credentials", move |tx| {
            let change = change.clone();
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                // The row lock makes concurrent fetches through different nodes take turns:
                // of two phones enrolling one MAC at once, exactly one binds it.
                let sql = format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices WHERE mac = $1 FOR NO KEY UPDATE"
                );
                let Some(row) = c.query_opt(&sql, &[&mac.to_string()]).await? else {
                    return Ok(None);
                };
                let mut device = decode_device(&row)?;
                let actor = Actor {
                    name: "phone".into(),
                    partner: None,
                    source,
                };
                let open = device.enrol_until.is_some_and(|u| u > now);
                let Some((credentials, action)) = change.apply(device.credentials.take(), open)
                else {
                    return Ok(None);
                };
                let text = json("credentials", &credentials)?;
                c.execute(
                    "UPDATE devices SET credentials = $2, enrol_until = NULL, updated_at = $3 WHERE mac = $1",
                    &[&mac.to_string(), &text, &now],
                )
                .await?;
                if let Some(action) = action {
                    let tenant = load_tenant(c, device.tenant)
                        .await?
                        .map(|t| t.name.to_string());
                    tx.audit(now, &actor, action, Some(mac), tenant.as_deref(), None);
                }
                tx.change(Change::Device(mac));
                device.credentials = Some(credentials);
                device.enrol_until = None;
                Ok(Some(device))
            })
        })
        .await
    }

    async fn open_enrolment(
        &self,
        mac: Mac,
        until: i64,
        actor: &Actor,
    ) -> Result<Option<DeviceRecord>, Error> {
        let actor = actor.clone();
        self.write("open_enrolment", move |tx| {
            let actor = actor.clone();
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                let Some((mut device, tenant)) =
                    visible_device(c, mac, actor.partner, false).await?
                else {
                    return Ok(None);
                };
                c.execute(
                    "UPDATE devices SET credentials = NULL, enrol_until = $2, updated_at = $3 WHERE mac = $1",
                    &[&mac.to_string(), &until, &now],
                )
                .await?;
                tx.audit(
                    now,
                    &actor,
                    "device.enrolment.open",
                    Some(mac),
                    Some(&tenant),
                    Some(serde_json::json!({"until": until})),
                );
                tx.change(Change::Device(mac));
                device.credentials = None;
                device.enrol_until = Some(until);
                Ok(Some(device))
            })
        })
        .await
    }

    async fn request_rotation(&self, mac: Mac, actor: &Actor) -> Result<RotationOutcome, Error> {
        let actor = actor.clone();
        self.write("request_rotation", move |tx| {
            let actor = actor.clone();
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                let Some((mut device, tenant)) =
                    visible_device(c, mac, actor.partner, false).await?
                else {
                    return Ok(RotationOutcome::NotFound);
                };
                let Some(mut credentials) = device.credentials.take() else {
                    return Ok(RotationOutcome::NotEnrolled);
                };
                credentials.rotate = true;
                let text = json("credentials", &credentials)?;
                c.execute(
                    "UPDATE devices SET credentials = $2, updated_at = $3 WHERE mac = $1",
                    &[&mac.to_string(), &text, &now],
                )
                .await?;
                tx.audit(
                    now,
                    &actor,
                    "device.credentials.rotate",
                    Some(mac),
                    Some(&tenant),
                    None,
                );
                tx.change(Change::Device(mac));
                device.credentials = Some(credentials);
                Ok(RotationOutcome::Requested(device))
            })
        })
        .await
    }

    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, Error> {
        let (name, fresh) = (name.to_owned(), fresh.to_vec());
        self.write("secret", move |tx| {
            let (name, fresh) = (name.clone(), fresh.clone());
            Box::pin(async move {
                let c = tx.conn();
                // A concurrent first writer on another node wins; everyone reads its value.
                c.execute(
                    "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    &[&name, &fresh],
                )
                .await?;
                match c
                    .query_opt("SELECT value FROM server_secrets WHERE name = $1", &[&name])
                    .await?
                {
                    Some(row) => get(&row, 0),
                    None => Err(corrupt("server secret", "vanished inside its transaction")),
                }
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    //! What only PostgreSQL has: migrations shared by nodes, LISTEN/NOTIFY, outages, plans.
    //! The behaviour every backend shares is in `store::contract`.

    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::store::contract::TestDatabase;

    async fn until(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn woken(wake: &Notify, what: &str) {
        tokio::time::timeout(Duration::from_secs(15), wake.notified())
            .await
            .unwrap_or_else(|_| panic!("not woken: {what}"));
    }

    fn claim_request(mac: &str) -> ClaimRequest {
        ClaimRequest {
            mac: Mac::parse(mac).unwrap(),
            vendor: Vendor::Yealink,
            claim_code: None,
            tenant: TenantName::parse("t1").unwrap(),
            settings: Default::default(),
            enrol_until: None,
        }
    }

    async fn with_tenant(store: &PostgresStore) {
        let created = store
            .create_tenant(
                TenantName::parse("t1").unwrap(),
                None,
                TenantSettings::default(),
                &Actor::cli(),
            )
            .await
            .unwrap();
        assert!(matches!(created, TenantCreated::Created(_)));
    }

    async fn connect(db: &TestDatabase) -> PostgresStore {
        PostgresStore::connect(&db.url, PostgresOptions::default())
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn nodes_starting_together_migrate_once() {
        let db = TestDatabase::create().await;
        let mut stores = Vec::new();
        for _ in 0..4 {
            stores.push(connect(&db).await);
        }
        assert_eq!(stores[0].schema_version().await.unwrap(), 0);
        let mut tasks = Vec::new();
        for store in &stores {
            let store = store.clone();
            tasks.push(tokio::spawn(async move { store.migrate().await.unwrap() }));
        }
        let mut reports = Vec::new();
        for t in tasks {
            reports.push(t.await.unwrap());
        }
        let all: Vec<i64> = (1..=PostgresStore::SCHEMA_VERSION).collect();
        assert_eq!(
            reports.iter().filter(|r| !r.applied.is_empty()).count(),
            1,
            "{reports:?}"
        );
        for r in &reports {
            assert_eq!(r.version, PostgresStore::SCHEMA_VERSION);
            assert!(r.applied.is_empty() || r.applied == all);
        }
        assert_eq!(
            stores[1].schema_version().await.unwrap(),
            PostgresStore::SCHEMA_VERSION
        );
        // Again: nothing to do.
        let again = stores[2].migrate().await.unwrap();
        assert_eq!(again.found, PostgresStore::SCHEMA_VERSION);
        assert!(again.applied.is_empty());
        drop(stores);
        db.drop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_newer_schema_is_refused() {
        let db = TestDatabase::create().await;
        let store = db.store().await;
        let client = store.client().await.unwrap();
        client
            .execute("UPDATE zerotouch_schema SET version = 99", &[])
            .await
            .unwrap();
        drop(client);
        match store.migrate().await {
            Err(Error::SchemaTooNew {
                found: 99,
                supported,
            }) => assert_eq!(supported, PostgresStore::SCHEMA_VERSION),
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
        assert_eq!(store.schema_version().await.unwrap(), 99);
        drop(store);
        db.drop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migration_3_hashes_stored_claim_codes() {
        let db = TestDatabase::create().await;
        let store = connect(&db).await;
        // A database left at version 2 with a plain label code.
        {
            let mut client = store.client().await.unwrap();
            let tx = client.transaction().await.unwrap();
            tx.batch_execute(
                "CREATE TABLE zerotouch_schema (id INT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL);
                 INSERT INTO zerotouch_schema VALUES (1, 2);",
            )
            .await
            .unwrap();
            for m in &MIGRATIONS[..2] {
                let Migration::Sql(sql) = m else {
                    panic!("the first migrations are plain SQL")
                };
                tx.batch_execute(sql).await.unwrap();
            }
            tx.batch_execute(
                "INSERT INTO tenants (name, settings, created_at, updated_at) VALUES ('t1', '{}', 1, 1);
                 INSERT INTO devices (mac, vendor, tenant_id, claim_code, settings, claimed_at, updated_at)
                 SELECT '7c2f80e0d605', 'gigaset', id, 'AB12', '{}', 1, 1 FROM tenants;",
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        let report = store.migrate().await.unwrap();
        assert_eq!(report.found, 2);
        assert_eq!(report.applied, vec![3]);
        let mac = Mac::parse("7c2f80e0d605").unwrap();
        let device = store.device(mac).await.unwrap().unwrap();
        assert!(device
            .claim_secret
            .unwrap()
            .matches(mac, &ClaimCode::parse("ab12").unwrap()));
        assert!(device.enrol_until.is_some_and(|u| u > now_millis()));
        drop(store);
        db.drop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn commits_on_one_node_wake_the_others() {
        let db = TestDatabase::create().await;
        let (one, two) = (db.store().await, db.store().await);
        with_tenant(&one).await;
        let wake = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let task = two.listen(wake.clone(), stop.clone());
        woken(&wake, "LISTEN established").await;
        assert_eq!(two.reconnects(), 0);
        one.claim(claim_request("805ec017de13"), &Actor::cli())
            .await
            .unwrap();
        woken(&wake, "a claim on another node").await;
        until("the notification is counted", || two.notifications() >= 1).await;
        // A refused claim commits no change and notifies nobody.
        let before = two.notifications();
        one.claim(claim_request("805ec017de13"), &Actor::cli())
            .await
            .unwrap();
        one.create_partner("p", &Actor::cli()).await.unwrap();
        one.release(Mac::parse("805ec017de13").unwrap(), &Actor::cli())
            .await
            .unwrap();
        woken(&wake, "a release").await;
        until("the release's notification", || {
            two.notifications() > before
        })
        .await;
        assert_eq!(two.notifications(), before + 1);
        stop.cancel();
        task.await.unwrap();
        drop((one, two));
        db.drop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_lost_listen_connection_reconnects_and_wakes() {
        let db = TestDatabase::create().await;
        let store = db.store().await;
        with_tenant(&store).await;
        let wake = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let task = store.listen(wake.clone(), stop.clone());
        woken(&wake, "LISTEN established").await;
        let admin = db.admin().await;
        for round in 1..=2u64 {
            let killed = admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = $1 AND query LIKE 'LISTEN%'",
                    &[&db.name],
                )
                .await
                .unwrap();
            assert_eq!(killed, 1);
            // Woken again once it listens again, to catch up on what it may have missed.
            woken(&wake, "LISTEN re-established").await;
            until("the reconnect is counted", || store.reconnects() == round).await;
            assert!(store.is_up());
        }
        // And it still hears commits.
        store
            .claim(claim_request("805ec017de13"), &Actor::cli())
            .await
            .unwrap();
        woken(&wake, "a claim after reconnecting").await;
        stop.cancel();
        task.await.unwrap();
        drop(store);
        db.drop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_outage_fails_fast_as_unavailable_and_recovers() {
        let db = TestDatabase::create().await;
        let store = db.store().await;
        with_tenant(&store).await;
        assert!(store.is_up());
        let admin = db.admin().await;
        let block = format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", db.name);
        admin.batch_execute(&block).await.unwrap();
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                &[&db.name],
            )
            .await
            .unwrap();
        let started = Instant::now();
        let mut failures = 0;
        // Pooled connections may still look open for a moment: within a few operations every
        // one of them fails, and none hangs.
        for _ in 0..20 {
            match store.tenants().await {
                Err(Error::Unavailable(_)) => failures += 1,
                Ok(_) => panic!("the database refuses connections"),
                Err(other) => panic!("expected Unavailable, got {other:?}"),
            }
        }
        assert_eq!(failures, 20);
        assert!(!store.is_up());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "failing took {:?}",
            started.elapsed()
        );
        match store
            .claim(claim_request("805ec017de13"), &Actor::cli())
            .await
        {
            Err(Error::Unavailable(_)) => {}
            other => panic!("expected Unavailable, got {other:?}"),
        }
        let unblock = format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", db.name);
        admin.batch_execute(&unblock).await.unwrap();
        assert_eq!(store.tenants().await.unwrap().len(), 1);
        assert!(store.is_up());
        drop(store);
        db.drop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_listening_is_unavailable_quickly() {
        let started = Instant::now();
        match PostgresStore::connect(
            "postgres://postgres@127.0.0.1:1/postgres",
            PostgresOptions::default(),
        )
        .await
        {
            Err(Error::Unavailable(_)) => {}
            other => panic!("expected Unavailable, got {:?}", other.map(|_| ())),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        match PostgresStore::connect("not a url", PostgresOptions::default()).await {
            Err(Error::Open { .. }) => {}
            other => panic!("expected Open, got {:?}", other.map(|_| ())),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hydration_pages_scan_the_primary_key() {
        let db = TestDatabase::create().await;
        let store = db.store().await;
        let client = store.client().await.unwrap();
        client
            .batch_execute(
                "INSERT INTO tenants (name, settings, created_at, updated_at) VALUES ('t1', '{}', 1, 1);
                 INSERT INTO devices (mac, vendor, tenant_id, settings, claimed_at, updated_at)
                 SELECT lpad(to_hex(i), 12, '0'), 'yealink', (SELECT id FROM tenants), '{}', 1, 1
                 FROM generate_series(1, 50000) AS i;
                 ANALYZE devices;",
            )
            .await
            .unwrap();
        // Both the plans PostgreSQL picks for a prepared statement: custom and generic.
        for mode in ["force_custom_plan", "force_generic_plan"] {
            client
                .batch_execute(&format!("SET plan_cache_mode = {mode}"))
                .await
                .unwrap();
            let sql = format!(
                "EXPLAIN SELECT {DEVICE_COLUMNS} FROM devices WHERE mac > $1 ORDER BY mac LIMIT $2"
            );
            let plan: Vec<String> = client
                .query(&sql, &[&"", &20_000i64])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            let plan = plan.join("\n");
            assert!(
                plan.contains("Index Scan using devices_pkey"),
                "{mode}:\n{plan}"
            );
            assert!(!plan.contains("Sort"), "{mode}:\n{plan}");
        }
        drop(client);
        let page = store.devices_page(None, 20_000).await.unwrap();
        assert_eq!(page.len(), 20_000);
        let next = store
            .devices_page(Some(page[19_999].mac), 20_000)
            .await
            .unwrap();
        assert_eq!(next[0].mac.to_string(), format!("{:012x}", 20_001));
        drop(store);
        db.drop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_observer_sees_every_operation() {
        let db = TestDatabase::create().await;
        let mut store = db.store().await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let (s, c) = (seen.clone(), calls.clone());
        store.set_observer(Arc::new(move |op, took| {
            assert!(took < Duration::from_secs(30));
            c.fetch_add(1, Ordering::Relaxed);
            s.lock().unwrap().push(op);
        }));
        with_tenant(&store).await;
        store
            .claim(claim_request("805ec017de13"), &Actor::cli())
            .await
            .unwrap();
        store.devices_page(None, 10).await.unwrap();
        store
            .import(ImportBatch {
                tenants: vec![],
                devices: vec![],
                actor: Actor::cli(),
            })
            .await
            .unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            ["create_tenant", "claim", "devices_page", "import"]
        );
        assert_eq!(calls.load(Ordering::Relaxed), 4);
        drop(store);
        db.drop().await;
    }
}
