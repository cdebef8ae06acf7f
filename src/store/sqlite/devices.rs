//! Device operations in SQLite: claims, moves and setting changes, releases (one device or a
//! bulk release or move of many in one transaction), reading devices
//! (by MAC, hydration pages, what a partner sees, search), and the lookups other operations
//! share (a device by MAC, a device visible to an actor).
//!
//! How a claim of a claimed MAC ends (the label-code match) and who may see what are the
//! store's shared `rules`; this file holds their SQL. SQLite's single writer makes every write
//! transaction serial, so a claim reads, then inserts. Must not know credentials beyond storing
//! a new claim's unbound state.

use std::collections::HashMap;

use rusqlite::{params, Connection, Transaction};

use super::connection::{all, one, Db};
use super::decode::{self, RawView, DEVICE_COLUMNS, VIEW_SELECT};
use super::{audit, changes, redirect, tenants, SqliteStore};
use crate::domain::{DeviceSettings, Mac, PartnerId};
use crate::store::codec::{self, AuditEvent, DeviceColumns};
use crate::store::rules::{self, BulkStep};
use crate::store::{
    now_millis, Actor, BulkAction, BulkOutcome, BulkResult, Change, ClaimOutcome, ClaimRequest,
    DeviceQuery, DeviceRecord, DeviceUpdate, DeviceView, Error, Millis, UpdateOutcome,
};

/// The device claimed as `mac`, if any.
pub(super) fn load(conn: &Connection, mac: Mac) -> Result<Option<DeviceRecord>, Error> {
    let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE mac = ?1");
    one(conn, &sql, [mac.to_string()], decode::device)?
        .map(DeviceColumns::decode)
        .transpose()
}

/// The device if claimed by a tenant the actor may see, with that tenant's name.
pub(super) fn visible(
    conn: &Connection,
    mac: Mac,
    partner: Option<PartnerId>,
) -> Result<Option<(DeviceRecord, String)>, Error> {
    let row: Option<(DeviceColumns<String>, String, Option<PartnerId>)> = one(
        conn,
        "SELECT d.mac, d.vendor, d.tenant_id, d.claim_secret, d.credentials, d.enrol_until, d.settings, t.name, t.partner_id \
         FROM devices d JOIN tenants t ON t.id = d.tenant_id WHERE d.mac = ?1",
        [mac.to_string()],
        |r| Ok((decode::device(r)?, r.get(7)?, r.get(8)?)),
    )?;
    match row {
        Some((raw, tenant, owner)) if rules::visible(owner, partner) => {
            Ok(Some((raw.decode()?, tenant)))
        }
        _ => Ok(None),
    }
}

/// Applies one claim inside a transaction: the heart of "nobody can steal a phone".
pub(super) fn claim_in(
    tx: &Transaction<'_>,
    req: &ClaimRequest,
    actor: &Actor,
    now: Millis,
) -> Result<ClaimOutcome, Error> {
    let Some((tenant_id, _)) = tenants::visible(tx, req.tenant.as_str(), actor.partner)? else {
        return Ok(ClaimOutcome::UnknownTenant);
    };
    match load(tx, req.mac)? {
        Some(d) if d.tenant != tenant_id => Ok(ClaimOutcome::AlreadyInUse),
        Some(d) => Ok(rules::claim_again(d, req.claim_code.as_ref())),
        None => {
            let device = rules::new_claim(req, tenant_id);
            let settings = codec::json("device settings", &device.settings)?;
            let secret_json = device
                .claim_secret
                .as_ref()
                .map(|s| codec::json("claim secret", s))
                .transpose()?;
            tx.prepare_cached(
                "INSERT INTO devices (mac, vendor, tenant_id, claim_secret, enrol_until, settings, claimed_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    req.mac.to_string(),
                    req.vendor.as_str(),
                    tenant_id,
                    secret_json,
                    req.enrol_until,
                    settings,
                    now
                ])
            })
            .db()?;
            audit::append(tx, now, actor, AuditEvent::DeviceClaimed(req))?;
            changes::append(tx, &Change::Device(req.mac), now)?;
            if req.redirect {
                redirect::queue_claim(tx, req, now)?;
            }
            Ok(ClaimOutcome::Created(device))
        }
    }
}

/// Writes a device's per-device settings.
pub(super) fn write_settings(
    tx: &Transaction<'_>,
    mac: Mac,
    settings: &DeviceSettings,
    now: Millis,
) -> Result<(), Error> {
    let text = codec::json("device settings", settings)?;
    tx.prepare_cached("UPDATE devices SET settings = ?2, updated_at = ?3 WHERE mac = ?1")
        .and_then(|mut s| s.execute(params![mac.to_string(), text, now]))
        .db()?;
    Ok(())
}

/// [`Store::claim`](crate::store::Store::claim).
pub(super) async fn claim(
    store: &SqliteStore,
    request: ClaimRequest,
    actor: &Actor,
) -> Result<ClaimOutcome, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| claim_in(tx, &request, &actor, now_millis()))
        .await
}

/// [`Store::devices_page`](crate::store::Store::devices_page).
pub(super) async fn page(
    store: &SqliteStore,
    after: Option<Mac>,
    limit: usize,
) -> Result<Vec<DeviceRecord>, Error> {
    store
        .read(move |conn| {
            let sql = format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE mac > ?1 ORDER BY mac LIMIT ?2"
            );
            let params = params![codec::after(after), codec::limit(limit)];
            all(conn, &sql, params, decode::device)?
                .into_iter()
                .map(DeviceColumns::decode)
                .collect()
        })
        .await
}

/// [`Store::device`](crate::store::Store::device).
pub(super) async fn by_mac(store: &SqliteStore, mac: Mac) -> Result<Option<DeviceRecord>, Error> {
    store.read(move |conn| load(conn, mac)).await
}

/// [`Store::update_device`](crate::store::Store::update_device).
pub(super) async fn update(
    store: &SqliteStore,
    mac: Mac,
    update: DeviceUpdate,
    actor: &Actor,
) -> Result<UpdateOutcome, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let now = now_millis();
            let Some((mut device, from)) = visible(tx, mac, actor.partner)? else {
                return Ok(UpdateOutcome::NotFound);
            };
            if let Some(to) = &update.tenant {
                let Some((to_id, _)) = tenants::visible(tx, to.as_str(), actor.partner)? else {
                    return Ok(UpdateOutcome::UnknownTenant);
                };
                if to_id != device.tenant {
                    tx.prepare_cached(
                        "UPDATE devices SET tenant_id = ?2, updated_at = ?3 WHERE mac = ?1",
                    )
                    .and_then(|mut s| s.execute(params![mac.to_string(), to_id, now]))
                    .db()?;
                    let to = to.as_str();
                    let event = AuditEvent::DeviceMoved {
                        mac,
                        from: &from,
                        to,
                    };
                    audit::append(tx, now, &actor, event)?;
                    device.tenant = to_id;
                }
            }
            if let Some(settings) = update.settings {
                write_settings(tx, mac, &settings, now)?;
                let tenant = update.tenant.as_ref().map_or(from.as_str(), |t| t.as_str());
                audit::append(tx, now, &actor, AuditEvent::DeviceUpdated(mac, tenant))?;
                device.settings = settings;
            }
            changes::append(tx, &Change::Device(mac), now)?;
            Ok(UpdateOutcome::Updated(device))
        })
        .await
}

/// [`Store::release`](crate::store::Store::release).
pub(super) async fn release(store: &SqliteStore, mac: Mac, actor: &Actor) -> Result<bool, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let now = now_millis();
            let Some((_, tenant)) = visible(tx, mac, actor.partner)? else {
                return Ok(false);
            };
            tx.prepare_cached("DELETE FROM devices WHERE mac = ?1")
                .and_then(|mut s| s.execute([mac.to_string()]))
                .db()?;
            redirect::queue_release(tx, mac, now)?;
            audit::append(tx, now, &actor, AuditEvent::DeviceReleased(mac, &tenant))?;
            changes::append(tx, &Change::Device(mac), now)?;
            Ok(true)
        })
        .await
}

/// [`Store::bulk_devices`](crate::store::Store::bulk_devices).
pub(super) async fn bulk(
    store: &SqliteStore,
    action: BulkAction,
    macs: Vec<Mac>,
    actor: &Actor,
) -> Result<BulkResult, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let now = now_millis();
            let target = match &action {
                BulkAction::Release => None,
                BulkAction::Move(to) => {
                    let Some((to_id, _)) = tenants::visible(tx, to.as_str(), actor.partner)? else {
                        return Ok(BulkResult::UnknownTenant);
                    };
                    Some((to_id, to.as_str()))
                }
            };
            let mut decided = HashMap::new();
            for mac in rules::bulk_visits(&macs) {
                let found = visible(tx, mac, actor.partner)?;
                let step = rules::bulk_step(found.as_ref().map(|(d, _)| d), target.map(|t| t.0));
                // Each change is written, audited and announced exactly as the single-device
                // operation writes it, so the audit log and other nodes cannot tell them apart.
                let outcome = match (step, found, target) {
                    (BulkStep::Release, Some((_, tenant)), _) => {
                        tx.prepare_cached("DELETE FROM devices WHERE mac = ?1")
                            .and_then(|mut s| s.execute([mac.to_string()]))
                            .db()?;
                        redirect::queue_release(tx, mac, now)?;
                        let event = AuditEvent::DeviceReleased(mac, &tenant);
                        audit::append(tx, now, &actor, event)?;
                        changes::append(tx, &Change::Device(mac), now)?;
                        BulkOutcome::Released
                    }
                    (BulkStep::Move, Some((mut device, from)), Some((to_id, to))) => {
                        tx.prepare_cached(
                            "UPDATE devices SET tenant_id = ?2, updated_at = ?3 WHERE mac = ?1",
                        )
                        .and_then(|mut s| s.execute(params![mac.to_string(), to_id, now]))
                        .db()?;
                        let event = AuditEvent::DeviceMoved {
                            mac,
                            from: &from,
                            to,
                        };
                        audit::append(tx, now, &actor, event)?;
                        changes::append(tx, &Change::Device(mac), now)?;
                        device.tenant = to_id;
                        BulkOutcome::Moved(device)
                    }
                    (BulkStep::Unchanged, ..) => BulkOutcome::Unchanged,
                    // `bulk_step` gives Release and Move only for a device that was found
                    // (and Move only with a target): what is left was not found.
                    _ => BulkOutcome::NotFound,
                };
                decided.insert(mac, outcome);
            }
            Ok(BulkResult::Applied(rules::bulk_outcomes(&macs, decided)))
        })
        .await
}

/// [`Store::device_view`](crate::store::Store::device_view).
pub(super) async fn view(
    store: &SqliteStore,
    partner: Option<PartnerId>,
    mac: Mac,
) -> Result<Option<DeviceView>, Error> {
    store
        .read(move |conn| {
            let sql =
                format!("{VIEW_SELECT} WHERE d.mac = ?1 AND (?2 IS NULL OR t.partner_id = ?2)");
            one(conn, &sql, params![mac.to_string(), partner], decode::view)?
                .map(RawView::decode)
                .transpose()
        })
        .await
}

/// [`Store::claim_holders`](crate::store::Store::claim_holders).
pub(super) async fn holders(
    store: &SqliteStore,
    macs: Vec<Mac>,
) -> Result<Vec<(Mac, Option<PartnerId>)>, Error> {
    store
        .read(move |conn| {
            // One prepared look-up per MAC on one connection: a primary-key probe each, with
            // no list of thousands of placeholders to build.
            let mut held = Vec::new();
            for mac in macs {
                let sql =
                    "SELECT t.partner_id FROM devices d JOIN tenants t ON t.id = d.tenant_id \
                           WHERE d.mac = ?1";
                if let Some(partner) = one(conn, sql, params![mac.to_string()], |r| r.get(0))? {
                    held.push((mac, partner));
                }
            }
            Ok(held)
        })
        .await
}

/// [`Store::search_devices`](crate::store::Store::search_devices).
pub(super) async fn search(
    store: &SqliteStore,
    partner: Option<PartnerId>,
    q: DeviceQuery,
) -> Result<Vec<DeviceView>, Error> {
    use rusqlite::types::Value;
    let (conditions, limit) =
        codec::device_search(partner, q, codec::FragmentSearch::ThroughPartner);
    let bound = |value| match value {
        codec::SearchValue::Int(n) => Value::Integer(n),
        codec::SearchValue::Text(t) => Value::Text(t),
    };
    let mut values = Vec::new();
    let mut clauses = Vec::with_capacity(conditions.len());
    for (condition, condition_values) in conditions {
        // SQLite, without statistics, takes an equality on an indexed column for the most
        // selective way in: by `tenants_by_partner` it would read all of a partner's devices
        // and sort them for every page. A partner's devices are many; the unary `+` keeps that
        // index out, so pages are read in MAC order from the primary key (or its range, for a
        // MAC prefix) and stop at the page size. (A long MAC fragment's own subquery takes the
        // index on purpose: see `codec::device_search`.)
        let mut condition = match condition.starts_with("t.partner_id") {
            true => format!("+{condition}"),
            false => condition.to_owned(),
        };
        for value in condition_values {
            values.push(bound(value));
            condition = condition.replacen("{}", &format!("?{}", values.len()), 1);
        }
        clauses.push(condition);
    }
    values.push(bound(limit));
    let sql = format!(
        "{VIEW_SELECT} WHERE {} ORDER BY d.mac LIMIT ?{}",
        clauses.join(" AND "),
        values.len()
    );
    store
        .read(move |conn| {
            all(conn, &sql, rusqlite::params_from_iter(values), decode::view)?
                .into_iter()
                .map(RawView::decode)
                .collect()
        })
        .await
}
