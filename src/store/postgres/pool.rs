//! The PostgreSQL connection pool: how to reach the database, opening the pool, taking a
//! connection from it, and the boundary every operation passes (timed, its failure mapped to
//! [`Error`], the store marked up or down).
//!
//! Must not know operations, SQL beyond `SELECT 1`, or the `LISTEN` connection.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::Row;

use super::failure::Failure;
use super::tls;
use super::transaction::{Conn, Param};
use super::{Inner, PostgresStore};
use crate::store::Error;

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
    /// The home directory whose `.postgresql/root.crt`, when it exists, libpq takes as the
    /// root certificate if the URL names none (`None`: no default root).
    pub home: Option<PathBuf>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(2),
            wait_timeout: Duration::from_secs(2),
            statement_timeout: Some(Duration::from_secs(30)),
            home: None,
        }
    }
}

/// `host:port/dbname`, never the password: for error messages and logs.
pub(super) fn describe_target(config: &tokio_postgres::Config) -> String {
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
    /// Opens a pool on `url` (`postgres://user[:password]@host[:port]/dbname[?options]`) and
    /// checks that the database answers. TLS follows the URL's `sslmode` and `sslrootcert`
    /// as in libpq (default `prefer`; see `tls.rs`). Does not migrate: call
    /// [`PostgresStore::migrate`].
    pub async fn connect(url: &str, opts: PostgresOptions) -> Result<Self, Error> {
        let tls::Target {
            mut config,
            tls,
            mode,
        } = tls::target(url, opts.home.as_deref())?;
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
            tls.clone(),
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
                tls,
                ssl_mode: mode,
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

    /// A pooled connection.
    pub(super) async fn client(&self) -> Result<Object, Failure> {
        Ok(self.inner.pool.get().await?)
    }

    /// Runs one operation: times it, maps its failure to [`Error`] and keeps `is_up` current.
    pub(super) async fn observe<T>(
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

    /// Operation `op`, one read on a pooled connection: every row `sql` returns, decoded.
    pub(super) async fn read_all<T>(
        &self,
        op: &'static str,
        sql: &str,
        params: &[Param<'_>],
        decode: fn(&Row) -> Result<T, Failure>,
    ) -> Result<Vec<T>, Error> {
        self.observe(op, async {
            let client = self.client().await?;
            let rows = Conn::Client(&client).query(sql, params).await?;
            rows.iter().map(decode).collect()
        })
        .await
    }

    /// Operation `op`, one read on a pooled connection: the row `sql` returns, if any, decoded.
    pub(super) async fn read_one<T>(
        &self,
        op: &'static str,
        sql: &str,
        params: &[Param<'_>],
        decode: fn(&Row) -> Result<T, Failure>,
    ) -> Result<Option<T>, Error> {
        self.observe(op, async {
            let client = self.client().await?;
            let row = Conn::Client(&client).query_opt(sql, params).await?;
            row.as_ref().map(decode).transpose()
        })
        .await
    }
}
