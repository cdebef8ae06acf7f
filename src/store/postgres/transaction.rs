//! Where PostgreSQL statements run, and write transactions: prepared-statement caching on a
//! pooled connection, the transaction every write runs in (retried after a deadlock or a
//! serialization failure), and what it appends at commit (audit entries, the change sequence,
//! the notification).
//!
//! Owns the ordering of the change sequence across nodes (see [`Tx::commit`]). Must not know
//! operations, tables other than `audit` and `changes`, or how failures are classified.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::failure::{describe, retryable, Failure};
use super::PostgresStore;
use crate::store::codec::{self, AuditEvent, AuditRow};
use crate::store::{now_millis, Actor, Change, Error, Millis};

/// Advisory lock key held from appending to `audit`/`changes` until commit: "ztlo".
const LOCK_LOG: i64 = 0x7a74_6c6f;

/// How many times a transaction that lost a deadlock or a serialization race is run again.
const MAX_ATTEMPTS: u32 = 5;

/// A statement parameter.
pub(super) type Param<'a> = &'a (dyn ToSql + Sync);

/// Where statements run: a pooled connection (reads) or a transaction (writes). Statements are
/// prepared once per connection and cached.
#[derive(Clone, Copy)]
pub(super) enum Conn<'a> {
    /// A pooled connection, outside any transaction.
    Client(&'a Object),
    /// A write transaction.
    Tx(&'a deadpool_postgres::Transaction<'a>),
}

impl Conn<'_> {
    async fn statement(&self, sql: &str) -> Result<Statement, Failure> {
        Ok(match self {
            Conn::Client(c) => c.prepare_cached(sql).await?,
            Conn::Tx(t) => t.prepare_cached(sql).await?,
        })
    }

    /// Every row `sql` returns.
    pub(super) async fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Failure> {
        let stmt = self.statement(sql).await?;
        Ok(match self {
            Conn::Client(c) => c.query(&stmt, params).await?,
            Conn::Tx(t) => t.query(&stmt, params).await?,
        })
    }

    /// The row `sql` returns, if any.
    pub(super) async fn query_opt(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>, Failure> {
        let stmt = self.statement(sql).await?;
        Ok(match self {
            Conn::Client(c) => c.query_opt(&stmt, params).await?,
            Conn::Tx(t) => t.query_opt(&stmt, params).await?,
        })
    }

    /// How many rows `sql` changed.
    pub(super) async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, Failure> {
        let stmt = self.statement(sql).await?;
        Ok(match self {
            Conn::Client(c) => c.execute(&stmt, params).await?,
            Conn::Tx(t) => t.execute(&stmt, params).await?,
        })
    }
}

/// The body of a write transaction.
pub(super) type TxFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, Failure>> + Send + 't>>;

/// Audit entries and changes a transaction produced, appended at commit.
#[derive(Default)]
struct Pending {
    audit: Vec<AuditRow>,
    changes: Vec<Change>,
}

/// One write transaction.
pub(super) struct Tx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    pending: Mutex<Pending>,
}

impl<'a> Tx<'a> {
    /// Where this transaction's statements run.
    pub(super) fn conn(&self) -> Conn<'_> {
        Conn::Tx(&self.tx)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // The lock is never held across an await, so it cannot be poisoned by a panic in
        // another task; if it were, the data is still consistent (plain pushes).
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a change of phone-visible data, appended to `changes` at commit.
    pub(super) fn change(&self, change: Change) {
        self.pending().changes.push(change);
    }

    /// The audit entry `actor` leaves at `at` for `event`, appended to `audit` at commit.
    pub(super) fn audit(&self, at: Millis, actor: &Actor, event: AuditEvent<'_>) {
        self.pending().audit.push(AuditRow::new(at, actor, event));
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
                cols.partner.push(row.partner);
            }
            c.execute(
                "INSERT INTO audit (at, actor, source, action, mac, tenant, detail, partner_id) \
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[])",
                &[
                    &cols.at,
                    &cols.actor,
                    &cols.source,
                    &cols.action,
                    &cols.mac,
                    &cols.tenant,
                    &cols.detail,
                    &cols.partner,
                ],
            )
            .await?;
        }
        if !pending.changes.is_empty() {
            let at = now_millis();
            let (entity, key): (Vec<&str>, Vec<String>) =
                pending.changes.iter().map(codec::change_columns).unzip();
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

/// Audit entries as columns, for one `unnest` insert.
#[derive(Default)]
struct AuditColumns {
    partner: Vec<Option<i64>>,
    at: Vec<i64>,
    actor: Vec<String>,
    source: Vec<Option<String>>,
    action: Vec<&'static str>,
    mac: Vec<Option<String>>,
    tenant: Vec<Option<String>>,
    detail: Vec<Option<String>>,
}

impl PostgresStore {
    /// Runs `body` in one transaction and commits it (appending its audit entries and changes
    /// first); a deadlock or serialization failure runs it again from the start.
    pub(super) async fn write<T, F>(&self, op: &'static str, mut body: F) -> Result<T, Error>
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
