//! The redirect outbox in PostgreSQL: queueing rows inside a claim's or release's transaction,
//! leasing due rows to one node's worker at a time, settling what the vendor answered, and
//! reading the backlog and each device's redirect state.
//!
//! Which row may be taken and what an outcome does to the state are `store::outbox`'s. Several
//! nodes lease from one table: the lease query locks the rows it takes with `FOR UPDATE SKIP
//! LOCKED` (a node never waits for, nor takes, a row another node is leasing), and a taken row
//! carries its owner and the end of its lease, so no other node takes it while that runs.
//! Must not know vendors' protocols.

use super::decode::get;
use super::failure::Failure;
use super::transaction::{Conn, Tx};
use super::PostgresStore;
use crate::domain::{ClaimCode, Mac, Vendor};
use crate::store::codec::AuditEvent;
use crate::store::{
    now_millis, Actor, Backlog, ClaimRequest, Enqueue, Error, Millis, OutboxRow, RedirectAction,
    RedirectState, RedirectStatus, Settlement,
};

/// Queues a new claim's registration and marks the device `pending`.
pub(super) async fn queue_claim(
    c: Conn<'_>,
    req: &ClaimRequest,
    now: Millis,
) -> Result<(), Failure> {
    let code = req.claim_code.as_ref().map(ClaimCode::as_str);
    insert_row(c, req.mac, req.vendor, RedirectAction::Register, code, now).await?;
    set_pending(c, req.mac, req.vendor, now).await
}

/// Queues a released device's deregistration when it has a redirect state, and forgets the
/// state.
pub(super) async fn queue_release(c: Conn<'_>, mac: Mac, now: Millis) -> Result<(), Failure> {
    let row = c
        .query_opt(
            "DELETE FROM redirect_states WHERE mac = $1 RETURNING vendor",
            &[&mac.to_string()],
        )
        .await?;
    if let Some(row) = row {
        let vendor: String = get(&row, 0)?;
        let vendor = vendor.parse().map_err(corrupt)?;
        insert_row(c, mac, vendor, RedirectAction::Deregister, None, now).await?;
    }
    Ok(())
}

async fn insert_row(
    c: Conn<'_>,
    mac: Mac,
    vendor: Vendor,
    action: RedirectAction,
    code: Option<&str>,
    now: Millis,
) -> Result<(), Failure> {
    c.execute(
        "INSERT INTO redirect_outbox (mac, vendor, action, claim_code, queued_at, next_try_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
        &[
            &mac.to_string(),
            &vendor.as_str(),
            &action.as_str(),
            &code,
            &now,
        ],
    )
    .await?;
    Ok(())
}

async fn set_pending(c: Conn<'_>, mac: Mac, vendor: Vendor, now: Millis) -> Result<(), Failure> {
    c.execute(
        "INSERT INTO redirect_states (mac, vendor, state, reason, next_try_at, updated_at) \
         VALUES ($1, $2, 'pending', NULL, $3, $3) \
         ON CONFLICT (mac) DO UPDATE SET vendor = $2, state = 'pending', reason = NULL, \
         next_try_at = $3, updated_at = $3",
        &[&mac.to_string(), &vendor.as_str(), &now],
    )
    .await?;
    Ok(())
}

fn corrupt(e: impl std::fmt::Display) -> Failure {
    Failure::Store(Error::Corrupt(e.to_string()))
}

fn decode_row(row: &tokio_postgres::Row) -> Result<OutboxRow, Failure> {
    let mac: String = get(row, 1)?;
    let vendor: String = get(row, 2)?;
    let action: String = get(row, 3)?;
    let code: Option<String> = get(row, 4)?;
    let attempts: i32 = get(row, 5)?;
    Ok(OutboxRow {
        id: get(row, 0)?,
        mac: Mac::parse(&mac).map_err(corrupt)?,
        vendor: vendor.parse().map_err(corrupt)?,
        action: action.parse()?,
        claim_code: code
            .map(|c| ClaimCode::parse(&c))
            .transpose()
            .map_err(corrupt)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        queued_at: get(row, 6)?,
    })
}

/// [`Store::redirect_lease`](crate::store::Store::redirect_lease).
pub(super) async fn lease(
    store: &PostgresStore,
    owner: &str,
    now: Millis,
    lease_until: Millis,
    limit: usize,
) -> Result<Vec<OutboxRow>, Error> {
    let owner = owner.to_owned();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    store
        .write("redirect_lease", move |tx| {
            let owner = owner.clone();
            Box::pin(async move {
                // A row is due, unleased (or its lease ran out), and the oldest of its MAC
                // still queued; rows another node is leasing right now are skipped, not
                // waited for. The lease columns keep it from every other node after commit.
                let rows = tx
                    .conn()
                    .query(
                        "WITH due AS ( \
                           SELECT id FROM redirect_outbox o \
                           WHERE next_try_at <= $1 AND (leased_until IS NULL OR leased_until <= $1) \
                           AND NOT EXISTS (SELECT 1 FROM redirect_outbox p WHERE p.mac = o.mac AND p.id < o.id) \
                           ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                         UPDATE redirect_outbox r SET lease_owner = $2, leased_until = $3 \
                         FROM due WHERE r.id = due.id \
                         RETURNING r.id, r.mac, r.vendor, r.action, r.claim_code, r.attempts, r.queued_at",
                        &[&now, &owner, &lease_until, &limit],
                    )
                    .await?;
                let mut out = rows.iter().map(decode_row).collect::<Result<Vec<_>, _>>()?;
                out.sort_by_key(|r| r.id);
                Ok(out)
            })
        })
        .await
}

/// [`Store::redirect_settle`](crate::store::Store::redirect_settle).
pub(super) async fn settle(
    store: &PostgresStore,
    owner: &str,
    settled: Vec<(OutboxRow, Settlement)>,
) -> Result<(), Error> {
    let owner = owner.to_owned();
    store
        .write("redirect_settle", move |tx| {
            let (owner, settled) = (owner.clone(), settled.clone());
            Box::pin(async move { settle_in(tx, &owner, &settled).await })
        })
        .await
}

async fn settle_in(
    tx: &Tx<'_>,
    owner: &str,
    settled: &[(OutboxRow, Settlement)],
) -> Result<(), Failure> {
    let now = now_millis();
    let actor = Actor::redirect();
    let c = tx.conn();
    for (row, outcome) in settled {
        let still_ours = c
            .query_opt(
                "SELECT id FROM redirect_outbox WHERE id = $1 AND lease_owner = $2 FOR UPDATE",
                &[&row.id, &owner],
            )
            .await?;
        if still_ours.is_none() {
            continue;
        }
        let reason = outcome.reason();
        match outcome.next_try() {
            Some(at) => {
                c.execute(
                    "UPDATE redirect_outbox SET attempts = attempts + 1, next_try_at = $2, \
                     lease_owner = NULL, leased_until = NULL, last_error = $3 WHERE id = $1",
                    &[&row.id, &at, &reason],
                )
                .await?
            }
            None => {
                c.execute("DELETE FROM redirect_outbox WHERE id = $1", &[&row.id])
                    .await?
            }
        };
        let mac = row.mac.to_string();
        if row.action == RedirectAction::Register {
            c.execute(
                "UPDATE redirect_states SET state = $2, reason = $3, next_try_at = $4, updated_at = $5 \
                 WHERE mac = $1 AND NOT EXISTS \
                 (SELECT 1 FROM redirect_outbox WHERE mac = $1 AND id > $6)",
                &[
                    &mac,
                    &outcome.state_after_register().as_str(),
                    &reason,
                    &outcome.next_try(),
                    &now,
                    &row.id,
                ],
            )
            .await?;
        }
        if outcome.next_try().is_none() || row.attempts == 0 {
            let tenant = c
                .query_opt(
                    "SELECT t.name FROM devices d JOIN tenants t ON t.id = d.tenant_id WHERE d.mac = $1",
                    &[&mac],
                )
                .await?
                .map(|r| get::<String>(&r, 0))
                .transpose()?;
            tx.audit(
                now,
                &actor,
                AuditEvent::Redirect {
                    action: row.action,
                    mac: row.mac,
                    tenant: tenant.as_deref(),
                    result: outcome.result(),
                    reason: reason.as_deref(),
                },
            );
        }
    }
    Ok(())
}

/// [`Store::redirect_backlog`](crate::store::Store::redirect_backlog).
pub(super) async fn backlog(store: &PostgresStore) -> Result<Vec<Backlog>, Error> {
    store
        .read_all(
            "redirect_backlog",
            "SELECT vendor, COUNT(*), MIN(queued_at) FROM redirect_outbox GROUP BY vendor ORDER BY vendor",
            &[],
            |row| {
                let vendor: String = get(row, 0)?;
                let rows: i64 = get(row, 1)?;
                Ok(Backlog {
                    vendor: vendor.parse().map_err(corrupt)?,
                    rows: u64::try_from(rows).unwrap_or(0),
                    oldest: get(row, 2)?,
                })
            },
        )
        .await
}

/// [`Store::redirect_wake`](crate::store::Store::redirect_wake).
pub(super) async fn wake(store: &PostgresStore, vendor: Vendor, now: Millis) -> Result<u64, Error> {
    store
        .write("redirect_wake", move |tx| {
            Box::pin(async move {
                tx.conn()
                    .execute(
                        "UPDATE redirect_outbox SET next_try_at = $2 \
                         WHERE vendor = $1 AND attempts > 0 AND next_try_at > $2",
                        &[&vendor.as_str(), &now],
                    )
                    .await
            })
        })
        .await
}

/// [`Store::redirect_states`](crate::store::Store::redirect_states).
pub(super) async fn states(
    store: &PostgresStore,
    macs: Vec<Mac>,
) -> Result<Vec<RedirectStatus>, Error> {
    let keys: Vec<String> = macs.iter().map(Mac::to_string).collect();
    store
        .read_all(
            "redirect_states",
            "SELECT mac, vendor, state, reason, next_try_at, updated_at FROM redirect_states \
             WHERE mac = ANY($1) ORDER BY mac",
            &[&keys],
            |row| {
                let mac: String = get(row, 0)?;
                let vendor: String = get(row, 1)?;
                let state: String = get(row, 2)?;
                Ok(RedirectStatus {
                    mac: Mac::parse(&mac).map_err(corrupt)?,
                    vendor: vendor.parse().map_err(corrupt)?,
                    state: state.parse::<RedirectState>()?,
                    reason: get(row, 3)?,
                    next_try_at: get(row, 4)?,
                    updated_at: get(row, 5)?,
                })
            },
        )
        .await
}

/// [`Store::redirect_enqueue`](crate::store::Store::redirect_enqueue).
pub(super) async fn enqueue(
    store: &PostgresStore,
    rows: Vec<Enqueue>,
    actor: &Actor,
) -> Result<usize, Error> {
    let actor = actor.clone();
    store
        .write("redirect_enqueue", move |tx| {
            let (rows, actor) = (rows.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                let mut queued = 0;
                for row in rows {
                    if row.action == RedirectAction::Register {
                        let claimed = c
                            .query_opt(
                                "SELECT 1 FROM devices WHERE mac = $1 FOR KEY SHARE",
                                &[&row.mac.to_string()],
                            )
                            .await?;
                        if claimed.is_none() {
                            continue;
                        }
                        set_pending(c, row.mac, row.vendor, now).await?;
                    }
                    insert_row(c, row.mac, row.vendor, row.action, None, now).await?;
                    tx.audit(
                        now,
                        &actor,
                        AuditEvent::Redirect {
                            action: row.action,
                            mac: row.mac,
                            tenant: None,
                            result: "queued",
                            reason: None,
                        },
                    );
                    queued += 1;
                }
                Ok(queued)
            })
        })
        .await
}
