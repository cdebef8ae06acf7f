//! Device operations in PostgreSQL: claims, moves and setting changes, releases (one device or
//! a bulk release or move of many in one transaction), reading
//! devices (by MAC, hydration pages, what a partner sees, search), and the lookup other
//! operations share (a device visible to an actor, its row locked).
//!
//! How a claim of a claimed MAC ends (the label-code match) and who may see what are the
//! store's shared `rules`; this file holds their SQL, row locks and the races between nodes
//! (see [`claim_in`]). Must not know credentials beyond storing a new claim's unbound state.

use std::collections::HashMap;
use std::sync::Arc;

use super::decode::{self, get, DEVICE_COLUMNS, VIEW_SELECT};
use super::failure::Failure;
use super::redirect;
use super::tenants::{self, TenantLock};
use super::transaction::{Conn, Param, Tx};
use super::PostgresStore;
use crate::domain::{DeviceSettings, Mac, PartnerId};
use crate::store::codec::{self, AuditEvent};
use crate::store::rules::{self, BulkStep};
use crate::store::{
    now_millis, Actor, BulkAction, BulkOutcome, BulkResult, Change, ClaimOutcome, ClaimRequest,
    DeviceQuery, DeviceRecord, DeviceUpdate, DeviceView, Error, Millis, UpdateOutcome,
};

/// The device if claimed by a tenant the actor may see, with that tenant's name, its row
/// locked for the rest of the transaction (`FOR UPDATE OF d` when it is to be deleted,
/// `FOR NO KEY UPDATE OF d` otherwise).
pub(super) async fn visible(
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
    if !rules::visible(owner, partner) {
        return Ok(None);
    }
    Ok(Some((decode::device(&row)?, get(&row, 7)?)))
}

/// Applies one claim inside a transaction: the heart of "nobody can steal a phone".
///
/// The MAC is the primary key, so `INSERT … ON CONFLICT DO NOTHING` decides between concurrent
/// claimers on every node: exactly one inserts; the others wait for its commit and then read
/// its row (under a row lock, so the decision holds until this transaction ends). If that row
/// was released in between, the insert is simply tried again.
pub(super) async fn claim_in(
    tx: &Tx<'_>,
    req: &ClaimRequest,
    actor: &Actor,
    now: Millis,
) -> Result<ClaimOutcome, Failure> {
    let c = tx.conn();
    let Some((tenant_id, _)) =
        tenants::visible(c, req.tenant.as_str(), actor.partner, TenantLock::KeyShare).await?
    else {
        return Ok(ClaimOutcome::UnknownTenant);
    };
    let mac = req.mac.to_string();
    let device = rules::new_claim(req, tenant_id);
    let settings = codec::json("device settings", &device.settings)?;
    let secret_json = device
        .claim_secret
        .as_ref()
        .map(|s| codec::json("claim secret", s))
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
            tx.audit(now, actor, AuditEvent::DeviceClaimed(req));
            tx.change(Change::Device(req.mac));
            if req.redirect {
                redirect::queue_claim(c, req, now).await?;
            }
            return Ok(ClaimOutcome::Created(device));
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
        return Ok(rules::claim_again(
            decode::device(&row)?,
            req.claim_code.as_ref(),
        ));
    }
    Err(Failure::Store(Error::Unavailable(
        "the claim kept racing with releases of the same device".into(),
    )))
}

/// Writes a device's per-device settings.
pub(super) async fn write_settings(
    c: Conn<'_>,
    mac: Mac,
    settings: &DeviceSettings,
    now: Millis,
) -> Result<(), Failure> {
    let text = codec::json("device settings", settings)?;
    c.execute(
        "UPDATE devices SET settings = $2, updated_at = $3 WHERE mac = $1",
        &[&mac.to_string(), &text, &now],
    )
    .await?;
    Ok(())
}

/// [`Store::claim`](crate::store::Store::claim).
pub(super) async fn claim(
    store: &PostgresStore,
    request: ClaimRequest,
    actor: &Actor,
) -> Result<ClaimOutcome, Error> {
    let actor = actor.clone();
    store
        .write("claim", move |tx| {
            let (request, actor) = (request.clone(), actor.clone());
            Box::pin(async move { claim_in(tx, &request, &actor, now_millis()).await })
        })
        .await
}

/// [`Store::devices_page`](crate::store::Store::devices_page).
pub(super) async fn page(
    store: &PostgresStore,
    after: Option<Mac>,
    limit: usize,
) -> Result<Vec<DeviceRecord>, Error> {
    // A range scan of the primary key in key order: no sort, stops after `limit`.
    let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE mac > $1 ORDER BY mac LIMIT $2");
    let params: [Param<'_>; 2] = [&codec::after(after), &codec::limit(limit)];
    store
        .read_all("devices_page", &sql, &params, decode::device)
        .await
}

/// [`Store::device`](crate::store::Store::device).
pub(super) async fn by_mac(store: &PostgresStore, mac: Mac) -> Result<Option<DeviceRecord>, Error> {
    let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE mac = $1");
    store
        .read_one("device", &sql, &[&mac.to_string()], decode::device)
        .await
}

/// [`Store::update_device`](crate::store::Store::update_device).
pub(super) async fn update(
    store: &PostgresStore,
    mac: Mac,
    update: DeviceUpdate,
    actor: &Actor,
) -> Result<UpdateOutcome, Error> {
    let actor = actor.clone();
    store
        .write("update_device", move |tx| {
            let (update, actor) = (update.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                let Some((mut device, from)) = visible(c, mac, actor.partner, false).await? else {
                    return Ok(UpdateOutcome::NotFound);
                };
                if let Some(to) = &update.tenant {
                    let Some((to_id, _)) =
                        tenants::visible(c, to.as_str(), actor.partner, TenantLock::KeyShare)
                            .await?
                    else {
                        return Ok(UpdateOutcome::UnknownTenant);
                    };
                    if to_id != device.tenant {
                        c.execute(
                            "UPDATE devices SET tenant_id = $2, updated_at = $3 WHERE mac = $1",
                            &[&mac.to_string(), &to_id, &now],
                        )
                        .await?;
                        tx.audit(
                            now,
                            &actor,
                            AuditEvent::DeviceMoved {
                                mac,
                                from: &from,
                                to: to.as_str(),
                            },
                        );
                        device.tenant = to_id;
                    }
                }
                if let Some(settings) = update.settings {
                    write_settings(c, mac, &settings, now).await?;
                    let tenant = update.tenant.as_ref().map_or(from.as_str(), |t| t.as_str());
                    tx.audit(now, &actor, AuditEvent::DeviceUpdated(mac, tenant));
                    device.settings = settings;
                }
                tx.change(Change::Device(mac));
                Ok(UpdateOutcome::Updated(device))
            })
        })
        .await
}

/// [`Store::release`](crate::store::Store::release).
pub(super) async fn release(store: &PostgresStore, mac: Mac, actor: &Actor) -> Result<bool, Error> {
    let actor = actor.clone();
    store
        .write("release", move |tx| {
            let actor = actor.clone();
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                let Some((_, tenant)) = visible(c, mac, actor.partner, true).await? else {
                    return Ok(false);
                };
                c.execute("DELETE FROM devices WHERE mac = $1", &[&mac.to_string()])
                    .await?;
                redirect::queue_release(c, mac, now).await?;
                tx.audit(now, &actor, AuditEvent::DeviceReleased(mac, &tenant));
                tx.change(Change::Device(mac));
                Ok(true)
            })
        })
        .await
}

/// One bulk change inside a write transaction (run again from the start if it is retried).
async fn bulk_in(
    tx: &Tx<'_>,
    action: &BulkAction,
    macs: &[Mac],
    actor: &Actor,
) -> Result<BulkResult, Failure> {
    let now = now_millis();
    let c = tx.conn();
    let target = match action {
        BulkAction::Release => None,
        BulkAction::Move(to) => {
            // KEY SHARE, as a single move: the tenant cannot be deleted before we commit.
            let Some((to_id, _)) =
                tenants::visible(c, to.as_str(), actor.partner, TenantLock::KeyShare).await?
            else {
                return Ok(BulkResult::UnknownTenant);
            };
            Some((to_id, to.as_str()))
        }
    };
    let mut decided = HashMap::new();
    // Rows are locked in MAC order (`bulk_visits`): two bulk changes cannot deadlock each
    // other; against single-device writes a deadlock is retried by `write`.
    for mac in rules::bulk_visits(macs) {
        let found = visible(c, mac, actor.partner, target.is_none()).await?;
        let step = rules::bulk_step(found.as_ref().map(|(d, _)| d), target.map(|t| t.0));
        // Each change is written, audited and announced exactly as the single-device operation
        // writes it, so the audit log and other nodes cannot tell them apart.
        let outcome = match (step, found, target) {
            (BulkStep::Release, Some((_, tenant)), _) => {
                c.execute("DELETE FROM devices WHERE mac = $1", &[&mac.to_string()])
                    .await?;
                redirect::queue_release(c, mac, now).await?;
                tx.audit(now, actor, AuditEvent::DeviceReleased(mac, &tenant));
                tx.change(Change::Device(mac));
                BulkOutcome::Released
            }
            (BulkStep::Move, Some((mut device, from)), Some((to_id, to))) => {
                c.execute(
                    "UPDATE devices SET tenant_id = $2, updated_at = $3 WHERE mac = $1",
                    &[&mac.to_string(), &to_id, &now],
                )
                .await?;
                tx.audit(
                    now,
                    actor,
                    AuditEvent::DeviceMoved {
                        mac,
                        from: &from,
                        to,
                    },
                );
                tx.change(Change::Device(mac));
                device.tenant = to_id;
                BulkOutcome::Moved(device)
            }
            (BulkStep::Unchanged, ..) => BulkOutcome::Unchanged,
            // `bulk_step` gives Release and Move only for a device that was found (and Move
            // only with a target): what is left was not found.
            _ => BulkOutcome::NotFound,
        };
        decided.insert(mac, outcome);
    }
    Ok(BulkResult::Applied(rules::bulk_outcomes(macs, decided)))
}

/// [`Store::bulk_devices`](crate::store::Store::bulk_devices).
pub(super) async fn bulk(
    store: &PostgresStore,
    action: BulkAction,
    macs: Vec<Mac>,
    actor: &Actor,
) -> Result<BulkResult, Error> {
    let (action, macs, actor) = (Arc::new(action), Arc::new(macs), actor.clone());
    store
        .write("bulk_devices", move |tx| {
            let (action, macs, actor) = (Arc::clone(&action), Arc::clone(&macs), actor.clone());
            Box::pin(async move { bulk_in(tx, &action, &macs, &actor).await })
        })
        .await
}

/// [`Store::device_view`](crate::store::Store::device_view).
pub(super) async fn view(
    store: &PostgresStore,
    partner: Option<PartnerId>,
    mac: Mac,
) -> Result<Option<DeviceView>, Error> {
    let sql =
        format!("{VIEW_SELECT} WHERE d.mac = $1 AND ($2::bigint IS NULL OR t.partner_id = $2)");
    store
        .read_one(
            "device_view",
            &sql,
            &[&mac.to_string(), &partner],
            decode::view,
        )
        .await
}

/// [`Store::search_devices`](crate::store::Store::search_devices).
pub(super) async fn search(
    store: &PostgresStore,
    partner: Option<PartnerId>,
    q: DeviceQuery,
) -> Result<Vec<DeviceView>, Error> {
    let (conditions, limit) = codec::device_search(partner, q, codec::FragmentSearch::Indexed);
    let mut values: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = Vec::new();
    let mut clauses = Vec::with_capacity(conditions.len());
    for (condition, condition_values) in conditions {
        let mut condition = condition.to_owned();
        for value in condition_values {
            values.push(bound(value));
            condition = condition.replacen("{}", &format!("${}", values.len()), 1);
        }
        clauses.push(condition);
    }
    values.push(bound(limit));
    let sql = format!(
        "{VIEW_SELECT} WHERE {} ORDER BY d.mac LIMIT ${}",
        clauses.join(" AND "),
        values.len()
    );
    let params: Vec<Param<'_>> = values.iter().map(|v| v.as_ref() as Param<'_>).collect();
    store
        .read_all("search_devices", &sql, &params, decode::view)
        .await
}

/// [`Store::claim_holders`](crate::store::Store::claim_holders).
pub(super) async fn holders(
    store: &PostgresStore,
    macs: Vec<Mac>,
) -> Result<Vec<(Mac, Option<PartnerId>)>, Error> {
    let texts: Vec<String> = macs.iter().map(Mac::to_string).collect();
    store
        .read_all(
            "claim_holders",
            "SELECT d.mac, t.partner_id FROM devices d JOIN tenants t ON t.id = d.tenant_id \
             WHERE d.mac = ANY($1)",
            &[&texts],
            |row| {
                let mac: &str = get(row, 0)?;
                let mac = Mac::parse(mac).map_err(|e| super::failure::corrupt("device mac", e))?;
                Ok((mac, get(row, 1)?))
            },
        )
        .await
}

/// A search value as PostgreSQL binds it.
fn bound(value: codec::SearchValue) -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
    match value {
        codec::SearchValue::Int(n) => Box::new(n),
        codec::SearchValue::Text(t) => Box::new(t),
    }
}
