//! Outage handling: why a PostgreSQL operation failed, and what that means for the caller
//! ([`Error`]) and for the node (is the database out of reach?).
//!
//! Owns the classification of driver and pool failures: lost connections and refused
//! connections mark the store down, a saturated pool does not, deadlocks and serialization
//! failures are retried. Must not know operations or SQL.

use deadpool_postgres::{PoolError, TimeoutType};
use tokio_postgres::error::SqlState;

use crate::store::Error;

/// Why an operation failed, before it is mapped to [`Error`] (and to `is_up`) at the boundary.
#[derive(Debug)]
pub(super) enum Failure {
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
    pub(super) fn into_error(self) -> (Error, bool) {
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
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
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
pub(super) fn retryable(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            // A sighting for a device released by a concurrent transaction: the retry's
            // `EXISTS` no longer sees it.
            || *c == SqlState::FOREIGN_KEY_VIOLATION
    })
}

/// A stored value that could not be read back, as a failure.
pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::Store(crate::store::codec::corrupt(what, e))
}
