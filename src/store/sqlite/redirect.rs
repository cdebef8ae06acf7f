//! The redirect outbox in SQLite: queueing rows inside a claim's or release's transaction,
//! leasing due rows to the worker, settling what the vendor answered, and reading the backlog
//! and each device's redirect state.
//!
//! Which row may be taken and what an outcome does to the state are `store::outbox`'s; SQLite
//! has one writer, so a lease is a plain read then update inside one transaction. Must not
//! know vendors' protocols.

use rusqlite::{params, Transaction};

use super::connection::{all, one, Db};
use super::{audit, SqliteStore};
use crate::domain::{ClaimCode, Mac, Vendor};
use crate::store::codec::AuditEvent;
use crate::store::{
    now_millis, Actor, Backlog, ClaimRequest, Enqueue, Error, Millis, OutboxRow, RedirectAction,
    RedirectState, RedirectStatus, Settlement,
};

/// Queues a new claim's registration and marks the device `pending`.
pub(super) fn queue_claim(
    tx: &Transaction<'_>,
    req: &ClaimRequest,
    now: Millis,
) -> Result<(), Error> {
    let code = req.claim_code.as_ref().map(ClaimCode::as_str);
    insert_row(tx, req.mac, req.vendor, RedirectAction::Register, code, now)?;
    set_pending(tx, req.mac, req.vendor, now)
}

/// Queues a released device's deregistration when it has a redirect state (it was queued for
/// registration, whatever came of it), and forgets the state.
pub(super) fn queue_release(tx: &Transaction<'_>, mac: Mac, now: Millis) -> Result<(), Error> {
    let vendor: Option<String> = one(
        tx,
        "DELETE FROM redirect_states WHERE mac = ?1 RETURNING vendor",
        [mac.to_string()],
        |r| r.get(0),
    )?;
    if let Some(vendor) = vendor {
        let vendor = vendor.parse().map_err(corrupt)?;
        insert_row(tx, mac, vendor, RedirectAction::Deregister, None, now)?;
    }
    Ok(())
}

fn insert_row(
    tx: &Transaction<'_>,
    mac: Mac,
    vendor: Vendor,
    action: RedirectAction,
    code: Option<&str>,
    now: Millis,
) -> Result<(), Error> {
    tx.prepare_cached(
        "INSERT INTO redirect_outbox (mac, vendor, action, claim_code, queued_at, next_try_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            mac.to_string(),
            vendor.as_str(),
            action.as_str(),
            code,
            now
        ])
    })
    .db()?;
    Ok(())
}

fn set_pending(tx: &Transaction<'_>, mac: Mac, vendor: Vendor, now: Millis) -> Result<(), Error> {
    tx.prepare_cached(
        "INSERT INTO redirect_states (mac, vendor, state, reason, next_try_at, updated_at) \
         VALUES (?1, ?2, 'pending', NULL, ?3, ?3) \
         ON CONFLICT (mac) DO UPDATE SET vendor = ?2, state = 'pending', reason = NULL, \
         next_try_at = ?3, updated_at = ?3",
    )
    .and_then(|mut s| s.execute(params![mac.to_string(), vendor.as_str(), now]))
    .db()?;
    Ok(())
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(e.to_string())
}

type RawRow = (i64, String, String, String, Option<String>, i64, i64);

fn decode_row(
    (id, mac, vendor, action, code, attempts, queued_at): RawRow,
) -> Result<OutboxRow, Error> {
    Ok(OutboxRow {
        id,
        mac: Mac::parse(&mac).map_err(corrupt)?,
        vendor: vendor.parse().map_err(corrupt)?,
        action: action.parse()?,
        claim_code: code
            .map(|c| ClaimCode::parse(&c))
            .transpose()
            .map_err(corrupt)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        queued_at,
    })
}

/// [`Store::redirect_lease`](crate::store::Store::redirect_lease).
pub(super) async fn lease(
    store: &SqliteStore,
    owner: &str,
    now: Millis,
    lease_until: Millis,
    limit: usize,
) -> Result<Vec<OutboxRow>, Error> {
    let owner = owner.to_owned();
    store
        .write(move |tx| {
            let raw = all(
                tx,
                "SELECT id, mac, vendor, action, claim_code, attempts, queued_at FROM redirect_outbox o \
                 WHERE next_try_at <= ?1 AND (leased_until IS NULL OR leased_until <= ?1) \
                 AND NOT EXISTS (SELECT 1 FROM redirect_outbox p WHERE p.mac = o.mac AND p.id < o.id) \
                 ORDER BY id LIMIT ?2",
                params![now, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )?;
            let mut rows = Vec::with_capacity(raw.len());
            for r in raw {
                let row = decode_row(r)?;
                tx.prepare_cached(
                    "UPDATE redirect_outbox SET lease_owner = ?2, leased_until = ?3 WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![row.id, owner, lease_until]))
                .db()?;
                rows.push(row);
            }
            Ok(rows)
        })
        .await
}

/// [`Store::redirect_settle`](crate::store::Store::redirect_settle).
pub(super) async fn settle(
    store: &SqliteStore,
    owner: &str,
    settled: Vec<(OutboxRow, Settlement)>,
) -> Result<(), Error> {
    let owner = owner.to_owned();
    store
        .write(move |tx| {
            let now = now_millis();
            let actor = Actor::redirect();
            for (row, outcome) in &settled {
                let still_ours: Option<i64> = one(
                    tx,
                    "SELECT id FROM redirect_outbox WHERE id = ?1 AND lease_owner = ?2",
                    params![row.id, owner],
                    |r| r.get(0),
                )?;
                if still_ours.is_none() {
                    continue;
                }
                let reason = outcome.reason();
                match outcome.next_try() {
                    Some(at) => tx
                        .prepare_cached(
                            "UPDATE redirect_outbox SET attempts = attempts + 1, next_try_at = ?2, \
                             lease_owner = NULL, leased_until = NULL, last_error = ?3 WHERE id = ?1",
                        )
                        .and_then(|mut s| s.execute(params![row.id, at, reason]))
                        .db()?,
                    None => tx
                        .prepare_cached("DELETE FROM redirect_outbox WHERE id = ?1")
                        .and_then(|mut s| s.execute([row.id]))
                        .db()?,
                };
                let mac = row.mac.to_string();
                if row.action == RedirectAction::Register {
                    tx.prepare_cached(
                        "UPDATE redirect_states SET state = ?2, reason = ?3, next_try_at = ?4, updated_at = ?5 \
                         WHERE mac = ?1 AND NOT EXISTS \
                         (SELECT 1 FROM redirect_outbox WHERE mac = ?1 AND id > ?6)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            mac,
                            outcome.state_after_register().as_str(),
                            reason,
                            outcome.next_try(),
                            now,
                            row.id
                        ])
                    })
                    .db()?;
                }
                if outcome.next_try().is_none() || row.attempts == 0 {
                    let tenant: Option<String> = one(
                        tx,
                        "SELECT t.name FROM devices d JOIN tenants t ON t.id = d.tenant_id WHERE d.mac = ?1",
                        [&mac],
                        |r| r.get(0),
                    )?;
                    let event = AuditEvent::Redirect {
                        action: row.action,
                        mac: row.mac,
                        tenant: tenant.as_deref(),
                        result: outcome.result(),
                        reason: reason.as_deref(),
                    };
                    audit::append(tx, now, &actor, event)?;
                }
            }
            Ok(())
        })
        .await
}

/// [`Store::redirect_backlog`](crate::store::Store::redirect_backlog).
pub(super) async fn backlog(store: &SqliteStore) -> Result<Vec<Backlog>, Error> {
    store
        .read(|conn| {
            let raw: Vec<(String, i64, Option<i64>)> = all(
                conn,
                "SELECT vendor, COUNT(*), MIN(queued_at) FROM redirect_outbox GROUP BY vendor ORDER BY vendor",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            raw.into_iter()
                .map(|(vendor, rows, oldest)| {
                    Ok(Backlog {
                        vendor: vendor.parse().map_err(corrupt)?,
                        rows: u64::try_from(rows).unwrap_or(0),
                        oldest,
                    })
                })
                .collect()
        })
        .await
}

/// [`Store::redirect_wake`](crate::store::Store::redirect_wake).
pub(super) async fn wake(store: &SqliteStore, vendor: Vendor, now: Millis) -> Result<u64, Error> {
    store
        .write(move |tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE redirect_outbox SET next_try_at = ?2 \
                     WHERE vendor = ?1 AND attempts > 0 AND next_try_at > ?2",
                )
                .and_then(|mut s| s.execute(params![vendor.as_str(), now]))
                .db()?;
            Ok(n as u64)
        })
        .await
}

/// A `redirect_states` row: vendor, state, reason, next try, last update.
type StateRow = (String, String, Option<String>, Option<i64>, i64);

/// [`Store::redirect_states`](crate::store::Store::redirect_states).
pub(super) async fn states(
    store: &SqliteStore,
    macs: Vec<Mac>,
) -> Result<Vec<RedirectStatus>, Error> {
    store
        .read(move |conn| {
            let mut macs = macs;
            macs.sort_unstable();
            macs.dedup();
            let mut out = Vec::new();
            for mac in macs {
                let row: Option<StateRow> = one(
                    conn,
                    "SELECT vendor, state, reason, next_try_at, updated_at FROM redirect_states WHERE mac = ?1",
                    [mac.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )?;
                if let Some((vendor, state, reason, next_try_at, updated_at)) = row {
                    out.push(RedirectStatus {
                        mac,
                        vendor: vendor.parse().map_err(corrupt)?,
                        state: state.parse::<RedirectState>()?,
                        reason,
                        next_try_at,
                        updated_at,
                    });
                }
            }
            Ok(out)
        })
        .await
}

/// [`Store::redirect_enqueue`](crate::store::Store::redirect_enqueue).
pub(super) async fn enqueue(
    store: &SqliteStore,
    rows: Vec<Enqueue>,
    actor: &Actor,
) -> Result<usize, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let now = now_millis();
            let mut queued = 0;
            for row in rows {
                if row.action == RedirectAction::Register {
                    let claimed: Option<String> = one(
                        tx,
                        "SELECT vendor FROM devices WHERE mac = ?1",
                        [row.mac.to_string()],
                        |r| r.get(0),
                    )?;
                    if claimed.is_none() {
                        continue;
                    }
                    set_pending(tx, row.mac, row.vendor, now)?;
                }
                insert_row(tx, row.mac, row.vendor, row.action, None, now)?;
                let event = AuditEvent::Redirect {
                    action: row.action,
                    mac: row.mac,
                    tenant: None,
                    result: "queued",
                    reason: None,
                };
                audit::append(tx, now, &actor, event)?;
                queued += 1;
            }
            Ok(queued)
        })
        .await
}
