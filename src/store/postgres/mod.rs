//! The multi-node store: PostgreSQL, shared by every node as equal peers.
//!
//! Owns the PostgreSQL schema and its migrations, the transactions that decide claims, the audit
//! log, the change sequence and its `LISTEN/NOTIFY` wake-ups, and the mapping of database
//! failures to [`Error`](super::Error). Knows nothing of HTTP, the registry or templates: the
//! registry learns of changes through [`Store::changes_since`](super::Store::changes_since), and
//! this module only wakes it up.
//!
//! TLS: rustls through tokio-postgres-rustls, with libpq's `sslmode`/`sslrootcert` (`tls.rs`).
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
//!   under a transaction-level advisory lock held until commit: see `transaction.rs`.
//! - Deadlocks and serialization failures are retried a few times with the whole transaction.
//!
//! This file holds the store and its health counters; the operations are implemented through
//! the shared operation map (`store::operations`) by one file per resource (`tenants.rs`,
//! `devices.rs`, `credentials.rs`, `partners.rs`, `import.rs`, `sightings.rs`, `changes.rs`,
//! `audit.rs`), on `pool.rs` (the pool and the operation boundary), `transaction.rs`
//! (statements, write transactions, what they append at commit), `failure.rs` (outage
//! handling), `schema.rs` (advisory-locked migrations), `listen.rs` (`LISTEN/NOTIFY`) and
//! `decode.rs` (rows to records). The rules every backend shares are `store::rules`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;

mod audit;
mod changes;
mod credentials;
mod decode;
mod devices;
mod failure;
mod import;
mod listen;
mod partners;
mod pool;
mod redirect;
mod schema;
mod secrets;
mod sightings;
mod tenants;
#[cfg(test)]
mod tests;
mod tls;
mod transaction;
mod users;

pub use super::MigrateReport;
pub use pool::PostgresOptions;
pub use tls::SslMode;

/// The notification channel every change-producing commit notifies (payload: its last seq,
/// a space and the commit time in milliseconds since the epoch).
pub const CHANNEL: &str = "zerotouch_changes";

/// A per-operation latency hook: operation name (`claim`, `import`, `devices_page`, …) and how
/// long it took, failures included.
pub type Observer = Arc<dyn Fn(&'static str, Duration) + Send + Sync>;

/// A notification-lag hook: how long after its commit began (by the committing node's clock)
/// a change notification reached this node.
pub type LagObserver = Arc<dyn Fn(Duration) + Send + Sync>;

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
    /// TLS for every connection, pooled and `LISTEN` alike.
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    ssl_mode: SslMode,
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
            .field("target", &pool::describe_target(&self.inner.config))
            .field("sslmode", &self.inner.ssl_mode.as_str())
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// The newest schema version this build knows.
    pub const SCHEMA_VERSION: i64 = schema::VERSION;

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
        pool::describe_target(&self.inner.config)
    }

    /// The URL's `sslmode` (or the default, `prefer`): for logs.
    pub fn ssl_mode(&self) -> SslMode {
        self.inner.ssl_mode
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
}

// Credential changes: the trait's default, one transaction per change.
impl_store!(PostgresStore, {});
