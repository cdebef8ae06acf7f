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
    set_pending(c, req.mac, req.vendor, code, now).await
}

/// Queues a released device's deregistration when it has a redirect state, and forgets the
/// state. A Gigaset's label code moves to the deregistration row: its vendor keys devices by
/// MAC-ID.
pub(super) async fn queue_release(c: Conn<'_>, mac: Mac, now: Millis) -> Result<(), Failure> {
    let row = c
        .query_opt(
            "DELETE FROM redirect_states WHERE mac = $1 RETURNING vendor, claim_code",
            &[&mac.to_string()],
        )
        .await?;
    if let Some(row) = row {
        let vendor: String = get(&row, 0)?;
        let code: Option<String> = get(&row, 1)?;
        let vendor = vendor.parse().map_err(corrupt)?;
        insert_row(
            c,
            mac,
            vendor,
            RedirectAction::Deregister,
            code.as_deref(),
            now,
        )
        .await?;
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

/// Marks a device `pending`, keeping the label code it had when none is given.
async fn set_pending(
    c: Conn<'_>,
    mac: Mac,
    vendor: Vendor,
    code: Option<&str>,
    now: Millis,
) -> Result<(), Failure> {
    c.execute(
        "INSERT INTO redirect_states (mac, vendor, state, claim_code, reason, next_try_at, updated_at) \
         VALUES ($1, $2, 'pending', $3, NULL, $4, $4) \
         ON CONFLICT (mac) DO UPDATE SET vendor = $2, state = 'pending', \
         claim_code = COALESCE($3, redirect_states.claim_code), reason = NULL, \
         next_try_at = $4, updated_at = $4",
        &[&mac.to_string(), &vendor.as_str(), &code, &now],
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

/// Settles set-wise: one statement each for the finished rows, the retried rows, the states
/// and the tenants of the audited rows, however many rows a round delivered.
async fn settle_in(
    tx: &Tx<'_>,
    owner: &str,
    settled: &[(OutboxRow, Settlement)],
) -> Result<(), Failure> {
    let now = now_millis();
    let c = tx.conn();
    let (finished, retried): (Vec<_>, Vec<_>) =
        settled.iter().partition(|(_, o)| o.next_try().is_none());
    let finished_ids: Vec<i64> = finished.iter().map(|(r, _)| r.id).collect();
    let mut ours: std::collections::HashSet<i64> = c
        .query(
            "DELETE FROM redirect_outbox WHERE id = ANY($1) AND lease_owner = $2 RETURNING id",
            &[&finished_ids, &owner],
        )
        .await?
        .iter()
        .map(|r| get::<i64>(r, 0))
        .collect::<Result<_, _>>()?;
    let (ids, ats, reasons): (Vec<i64>, Vec<i64>, Vec<Option<String>>) = retried
        .iter()
        .map(|(r, o)| (r.id, o.next_try().unwrap_or(now), o.reason()))
        .fold(
            (Vec::new(), Vec::new(), Vec::new()),
            |mut acc, (i, a, r)| {
                acc.0.push(i);
                acc.1.push(a);
                acc.2.push(r);
                acc
            },
        );
    for row in c
        .query(
            "UPDATE redirect_outbox o SET attempts = o.attempts + 1, next_try_at = u.at, \
             lease_owner = NULL, leased_until = NULL, last_error = u.reason \
             FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(id, at, reason) \
             WHERE o.id = u.id AND o.lease_owner = $4 RETURNING o.id",
            &[&ids, &ats, &reasons, &owner],
        )
        .await?
    {
        ours.insert(get(&row, 0)?);
    }
    let settled: Vec<&(OutboxRow, Settlement)> = settled
        .iter()
        .filter(|(r, _)| ours.contains(&r.id))
        .collect();

    // A register row's outcome becomes its device's state, unless a newer row is queued.
    let registers: Vec<&&(OutboxRow, Settlement)> = settled
        .iter()
        .filter(|(r, _)| r.action == RedirectAction::Register)
        .collect();
    if !registers.is_empty() {
        let macs: Vec<String> = registers.iter().map(|(r, _)| r.mac.to_string()).collect();
        let states: Vec<&str> = registers
            .iter()
            .map(|(_, o)| o.state_after_register().as_str())
            .collect();
        let reasons: Vec<Option<String>> = registers.iter().map(|(_, o)| o.reason()).collect();
        let nexts: Vec<Option<i64>> = registers.iter().map(|(_, o)| o.next_try()).collect();
        let ids: Vec<i64> = registers.iter().map(|(r, _)| r.id).collect();
        c.execute(
            "UPDATE redirect_states s SET state = u.state, reason = u.reason, \
             next_try_at = u.next_try, updated_at = $6 \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) \
               AS u(mac, state, reason, next_try, id) \
             WHERE s.mac = u.mac AND NOT EXISTS \
               (SELECT 1 FROM redirect_outbox o WHERE o.mac = u.mac AND o.id > u.id)",
            &[&macs, &states, &reasons, &nexts, &ids, &now],
        )
        .await?;
    }

    // First failures and final outcomes are audited, with the device's tenant while claimed.
    let audited: Vec<&&(OutboxRow, Settlement)> = settled
        .iter()
        .filter(|(r, o)| o.next_try().is_none() || r.attempts == 0)
        .collect();
    if audited.is_empty() {
        return Ok(());
    }
    let macs: Vec<String> = audited.iter().map(|(r, _)| r.mac.to_string()).collect();
    let mut tenants = std::collections::HashMap::new();
    for row in c
        .query(
            "SELECT d.mac, t.name FROM devices d JOIN tenants t ON t.id = d.tenant_id \
             WHERE d.mac = ANY($1)",
            &[&macs],
        )
        .await?
    {
        tenants.insert(get::<String>(&row, 0)?, get::<String>(&row, 1)?);
    }
    let actor = Actor::redirect();
    for ((row, outcome), mac) in audited.iter().map(|p| &***p).zip(&macs) {
        let reason = outcome.reason();
        tx.audit(
            now,
            &actor,
            AuditEvent::Redirect {
                action: row.action,
                mac: row.mac,
                tenant: tenants.get(mac).map(String::as_str),
                result: outcome.result(),
                reason: reason.as_deref(),
            },
        );
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
                    let code: Option<String> = c
                        .query_opt(
                            "SELECT claim_code FROM redirect_states WHERE mac = $1",
                            &[&row.mac.to_string()],
                        )
                        .await?
                        .map(|r| get::<Option<String>>(&r, 0))
                        .transpose()?
                        .flatten();
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
                        set_pending(c, row.mac, row.vendor, None, now).await?;
                    }
                    insert_row(c, row.mac, row.vendor, row.action, code.as_deref(), now).await?;
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
