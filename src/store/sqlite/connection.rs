//! SQLite connections: how they are configured, and how an operation runs on one of them on
//! the blocking pool, as a read or as a write transaction.
//!
//! Owns the two connections' use (the writer for transactions, the reader for everything that
//! only reads) and the mapping of SQLite failures to [`Error::Unavailable`]. Must not know any
//! table or operation.

use rusqlite::{Connection, OptionalExtension, Params, Row, Transaction};

use super::SqliteStore;
use crate::store::Error;

impl SqliteStore {
    /// Runs `f` on the read connection, off the async runtime.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let conn = inner.reader.lock().map_err(|_| poisoned())?;
            f(&conn)
        })
        .await
    }

    /// Runs `f` in one write transaction, off the async runtime, and commits it.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let mut conn = inner.writer.lock().map_err(|_| poisoned())?;
            // IMMEDIATE takes the write lock up front, so a transaction never fails half-way
            // for lack of it.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let out = f(&tx)?;
            tx.commit().map_err(unavailable)?;
            Ok(out)
        })
        .await
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Unavailable(format!("store task failed: {e}")))?
}

fn poisoned() -> Error {
    Error::Unavailable("a previous store operation panicked".into())
}

/// An SQLite failure: the database's, never the caller's.
pub(super) fn unavailable(e: rusqlite::Error) -> Error {
    Error::Unavailable(e.to_string())
}

/// Busy timeout, WAL, `synchronous=FULL` and foreign keys, on every connection.
pub(super) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// `?` for rusqlite results: every SQL failure is the database's, not the caller's.
pub(super) trait Db<T> {
    /// The result with its failure mapped to [`Error::Unavailable`].
    fn db(self) -> Result<T, Error>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, Error> {
        self.map_err(unavailable)
    }
}

/// Every row `sql` returns, each read by `row`.
pub(super) fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, Error> {
    let mut stmt = conn.prepare_cached(sql).db()?;
    let rows = stmt.query_map(params, row).db()?;
    rows.collect::<Result<Vec<_>, _>>().db()
}

/// The row `sql` returns, if any, read by `row`.
pub(super) fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    row: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, Error> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.query_row(params, row).optional())
        .db()
}
