//! Tenant operations in SQLite: reading tenants, creating, changing and deleting them, and the
//! lookups other operations share (a tenant by id, a tenant visible to an actor, a customer a
//! tenant may be given).
//!
//! Who may see and use what is the store's shared `rules`; this file holds its SQL. Must not
//! know devices beyond counting a tenant's claims.

use rusqlite::{params, Connection};

use super::connection::{all, one, Db};
use super::decode::{self, TENANT_COLUMNS};
use super::{audit, changes, SqliteStore};
use crate::domain::{CustomerId, PartnerId, TenantName, TenantSettings};
use crate::store::codec::{self, AuditEvent, TenantColumns};
use crate::store::rules;
use crate::store::{
    now_millis, Actor, Change, Error, Page, TenantChanged, TenantCounts, TenantCreated, TenantId,
    TenantRecord,
};

/// The tenant matching `clause` (`id = ?1`, `name = ?1`) with `param`.
pub(super) fn load(
    conn: &Connection,
    clause: &str,
    param: &dyn rusqlite::ToSql,
) -> Result<Option<TenantRecord>, Error> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE {clause}");
    one(conn, &sql, [param], decode::tenant)?
        .map(TenantColumns::decode)
        .transpose()
}

/// The id and owner of the tenant named `name`, whoever owns it.
pub(super) fn owner_of(
    conn: &Connection,
    name: &str,
) -> Result<Option<(TenantId, Option<PartnerId>)>, Error> {
    one(
        conn,
        "SELECT id, partner_id FROM tenants WHERE name = ?1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// The tenant named `name`, if the actor may use it. Returns (id, partner).
pub(super) fn visible(
    conn: &Connection,
    name: &str,
    partner: Option<PartnerId>,
) -> Result<Option<(TenantId, Option<PartnerId>)>, Error> {
    Ok(owner_of(conn, name)?.filter(|(_, owner)| rules::visible(*owner, partner)))
}

/// Whether the actor's partner may give a tenant `customer` (no customer: yes).
fn customer_usable(
    conn: &Connection,
    customer: Option<CustomerId>,
    partner: Option<PartnerId>,
) -> Result<bool, Error> {
    let Some(customer) = customer else {
        return Ok(true);
    };
    let owner = one(
        conn,
        "SELECT partner_id FROM customers WHERE id = ?1",
        [customer],
        |r| r.get(0),
    )?;
    Ok(rules::customer_usable(owner, partner))
}

/// [`Store::tenant`](crate::store::Store::tenant).
pub(super) async fn by_id(
    store: &SqliteStore,
    id: TenantId,
) -> Result<Option<TenantRecord>, Error> {
    store.read(move |conn| load(conn, "id = ?1", &id)).await
}

/// [`Store::tenants_of`](crate::store::Store::tenants_of).
pub(super) async fn of(
    store: &SqliteStore,
    partner: Option<PartnerId>,
    page: Page<TenantName>,
) -> Result<Vec<TenantRecord>, Error> {
    let after = page.after.map(|n| n.as_str().to_owned());
    let limit = codec::page_limit(page.limit).unwrap_or(-1);
    store
        .read(move |conn| {
            let sql = format!(
                "SELECT {TENANT_COLUMNS} FROM tenants \
                 WHERE (?1 IS NULL OR partner_id = ?1) AND (?2 IS NULL OR name > ?2) \
                 ORDER BY name LIMIT ?3"
            );
            all(
                conn,
                &sql,
                rusqlite::params![partner, after, limit],
                decode::tenant,
            )?
            .into_iter()
            .map(TenantColumns::decode)
            .collect()
        })
        .await
}

/// [`Store::tenant_by_name`](crate::store::Store::tenant_by_name).
pub(super) async fn by_name(
    store: &SqliteStore,
    partner: Option<PartnerId>,
    name: &TenantName,
) -> Result<Option<TenantRecord>, Error> {
    let name = name.clone();
    store
        .read(move |conn| {
            Ok(load(conn, "name = ?1", &name.as_str())?
                .filter(|t| rules::visible(t.partner, partner)))
        })
        .await
}

/// [`Store::create_tenant`](crate::store::Store::create_tenant).
pub(super) async fn create(
    store: &SqliteStore,
    name: TenantName,
    customer: Option<CustomerId>,
    settings: TenantSettings,
    actor: &Actor,
) -> Result<TenantCreated, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let now = now_millis();
            if !customer_usable(tx, customer, actor.partner)? {
                return Ok(TenantCreated::UnknownCustomer);
            }
            let text = codec::json("tenant settings", &settings)?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO tenants (name, partner_id, customer_id, settings, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(name) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![name.as_str(), actor.partner, customer, text, now])
                })
                .db()?;
            if inserted == 0 {
                return Ok(TenantCreated::NameTaken);
            }
            let id = tx.last_insert_rowid();
            changes::append(tx, &Change::Tenant(id), now)?;
            audit::append(tx, now, &actor, AuditEvent::TenantCreated(name.as_str()))?;
            Ok(TenantCreated::Created(TenantRecord {
                id,
                name,
                partner: actor.partner,
                customer,
                settings,
            }))
        })
        .await
}

/// [`Store::update_tenant`](crate::store::Store::update_tenant).
pub(super) async fn update(
    store: &SqliteStore,
    name: &TenantName,
    customer: Option<CustomerId>,
    settings: TenantSettings,
    actor: &Actor,
) -> Result<TenantChanged, Error> {
    let (name, actor) = (name.clone(), actor.clone());
    store
        .write(move |tx| {
            let now = now_millis();
            let Some((id, _)) = visible(tx, name.as_str(), actor.partner)? else {
                return Ok(TenantChanged::NotFound);
            };
            if !customer_usable(tx, customer, actor.partner)? {
                return Ok(TenantChanged::UnknownCustomer);
            }
            let text = codec::json("tenant settings", &settings)?;
            tx.prepare_cached(
                "UPDATE tenants SET settings = ?2, customer_id = ?3, updated_at = ?4 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, text, customer, now]))
            .db()?;
            changes::append(tx, &Change::Tenant(id), now)?;
            audit::append(tx, now, &actor, AuditEvent::TenantUpdated(name.as_str()))?;
            Ok(TenantChanged::Done(load(tx, "id = ?1", &id)?))
        })
        .await
}

/// [`Store::delete_tenant`](crate::store::Store::delete_tenant).
pub(super) async fn delete(
    store: &SqliteStore,
    name: &TenantName,
    actor: &Actor,
) -> Result<TenantChanged, Error> {
    let (name, actor) = (name.clone(), actor.clone());
    store
        .write(move |tx| {
            let now = now_millis();
            let Some((id, _)) = visible(tx, name.as_str(), actor.partner)? else {
                return Ok(TenantChanged::NotFound);
            };
            let devices: i64 = tx
                .prepare_cached("SELECT COUNT(*) FROM devices WHERE tenant_id = ?1")
                .and_then(|mut s| s.query_row([id], |r| r.get(0)))
                .db()?;
            if devices > 0 {
                return Ok(TenantChanged::HasDevices);
            }
            tx.prepare_cached("DELETE FROM tenants WHERE id = ?1")
                .and_then(|mut s| s.execute([id]))
                .db()?;
            changes::append(tx, &Change::Tenant(id), now)?;
            audit::append(tx, now, &actor, AuditEvent::TenantDeleted(name.as_str()))?;
            Ok(TenantChanged::Done(None))
        })
        .await
}

/// [`Store::tenant_counts`](crate::store::Store::tenant_counts).
pub(super) async fn counts(
    store: &SqliteStore,
    tenants: Vec<TenantId>,
) -> Result<Vec<(TenantId, TenantCounts)>, Error> {
    if tenants.is_empty() {
        return Ok(Vec::new());
    }
    store
        .read(move |conn| {
            let placeholders = vec!["?"; tenants.len()].join(", ");
            // Bound credentials: not compromised, and not merely issued (pending with no
            // previous ones), as `PhoneCredentials::state` says.
            let sql = format!(
                "SELECT d.tenant_id, count(*), \
                 coalesce(sum(s.mac IS NULL), 0), \
                 coalesce(sum(d.credentials IS NOT NULL \
                     AND coalesce(json_extract(d.credentials, '$.compromised'), 0) = 0 \
                     AND (coalesce(json_extract(d.credentials, '$.pending'), 0) = 0 \
                          OR json_extract(d.credentials, '$.previous') IS NOT NULL)), 0), \
                 coalesce(sum(f.at IS NOT NULL AND f.at > coalesce(s.last_seen, 0)), 0) \
                 FROM devices d \
                 LEFT JOIN device_status s ON s.mac = d.mac \
                 LEFT JOIN device_auth_failures f ON f.mac = d.mac \
                 WHERE d.tenant_id IN ({placeholders}) GROUP BY d.tenant_id"
            );
            all(
                conn,
                &sql,
                rusqlite::params_from_iter(tenants.iter()),
                |r| {
                    let n = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                    Ok((
                        r.get(0)?,
                        TenantCounts {
                            devices: n(1)?,
                            never_seen: n(2)?,
                            enrolled: n(3)?,
                            failing_authentication: n(4)?,
                        },
                    ))
                },
            )
        })
        .await
}
