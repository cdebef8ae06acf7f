//! Tenant operations in PostgreSQL: reading tenants, creating, changing and deleting them, and
//! the lookups other operations share (a tenant by id, a tenant visible to an actor under the
//! row lock the caller needs, a customer a tenant may be given).
//!
//! Who may see and use what is the store's shared `rules`; this file holds its SQL and row
//! locks. Must not know devices beyond checking that a tenant claims none.

use super::decode::{self, get, TENANT_COLUMNS};
use super::failure::Failure;
use super::transaction::Conn;
use super::PostgresStore;
use crate::domain::{CustomerId, PartnerId, TenantName, TenantSettings};
use crate::store::codec::{self, AuditEvent};
use crate::store::now_millis;
use crate::store::rules;
use crate::store::{
    Actor, Change, Error, Page, TenantChanged, TenantCounts, TenantCreated, TenantId, TenantRecord,
};

/// The tenant with id `id`, if any.
pub(super) async fn load(c: Conn<'_>, id: TenantId) -> Result<Option<TenantRecord>, Failure> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
    c.query_opt(&sql, &[&id])
        .await?
        .as_ref()
        .map(decode::tenant)
        .transpose()
}

/// Row lock a tenant lookup takes inside a write.
#[derive(Clone, Copy)]
pub(super) enum TenantLock {
    /// Claims and moves: the tenant must not be deleted before we commit.
    KeyShare,
    /// Updates of its settings.
    NoKeyUpdate,
    /// Deletes.
    Update,
}

/// The id and owner of the tenant named `name`, whoever owns it, locked with `lock`.
pub(super) async fn owner_of(
    c: Conn<'_>,
    name: &str,
    lock: TenantLock,
) -> Result<Option<(TenantId, Option<PartnerId>)>, Failure> {
    let sql = match lock {
        TenantLock::KeyShare => "SELECT id, partner_id FROM tenants WHERE name = $1 FOR KEY SHARE",
        TenantLock::NoKeyUpdate => {
            "SELECT id, partner_id FROM tenants WHERE name = $1 FOR NO KEY UPDATE"
        }
        TenantLock::Update => "SELECT id, partner_id FROM tenants WHERE name = $1 FOR UPDATE",
    };
    let Some(row) = c.query_opt(sql, &[&name]).await? else {
        return Ok(None);
    };
    Ok(Some((get(&row, 0)?, get(&row, 1)?)))
}

/// The tenant named `name`, if the actor may use it, locked with `lock`. Returns (id, partner).
pub(super) async fn visible(
    c: Conn<'_>,
    name: &str,
    partner: Option<PartnerId>,
    lock: TenantLock,
) -> Result<Option<(TenantId, Option<PartnerId>)>, Failure> {
    Ok(owner_of(c, name, lock)
        .await?
        .filter(|(_, owner)| rules::visible(*owner, partner)))
}

/// Whether the actor's partner may give a tenant `customer` (no customer: yes), the customer
/// locked so that it stays until we commit.
async fn customer_usable(
    c: Conn<'_>,
    customer: Option<CustomerId>,
    partner: Option<PartnerId>,
) -> Result<bool, Failure> {
    let Some(customer) = customer else {
        return Ok(true);
    };
    let owner: Option<i64> = match c
        .query_opt(
            "SELECT partner_id FROM customers WHERE id = $1 FOR KEY SHARE",
            &[&customer],
        )
        .await?
    {
        Some(row) => Some(get(&row, 0)?),
        None => None,
    };
    Ok(rules::customer_usable(owner, partner))
}

/// [`Store::tenant`](crate::store::Store::tenant).
pub(super) async fn by_id(
    store: &PostgresStore,
    id: TenantId,
) -> Result<Option<TenantRecord>, Error> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
    store.read_one("tenant", &sql, &[&id], decode::tenant).await
}

/// [`Store::tenants_of`](crate::store::Store::tenants_of).
pub(super) async fn of(
    store: &PostgresStore,
    partner: Option<PartnerId>,
    page: Page<TenantName>,
) -> Result<Vec<TenantRecord>, Error> {
    let sql = format!(
        "SELECT {TENANT_COLUMNS} FROM tenants \
         WHERE ($1::bigint IS NULL OR partner_id = $1) AND ($2::text IS NULL OR name > $2) \
         ORDER BY name LIMIT $3"
    );
    let after = page.after.map(|n| n.as_str().to_owned());
    let limit = codec::page_limit(page.limit);
    store
        .read_all(
            "tenants_of",
            &sql,
            &[&partner, &after, &limit],
            decode::tenant,
        )
        .await
}

/// [`Store::tenant_by_name`](crate::store::Store::tenant_by_name).
pub(super) async fn by_name(
    store: &PostgresStore,
    partner: Option<PartnerId>,
    name: &TenantName,
) -> Result<Option<TenantRecord>, Error> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE name = $1");
    let tenant = store
        .read_one("tenant_by_name", &sql, &[&name.as_str()], decode::tenant)
        .await?;
    Ok(tenant.filter(|t| rules::visible(t.partner, partner)))
}

/// [`Store::create_tenant`](crate::store::Store::create_tenant).
pub(super) async fn create(
    store: &PostgresStore,
    name: TenantName,
    customer: Option<CustomerId>,
    settings: TenantSettings,
    actor: &Actor,
) -> Result<TenantCreated, Error> {
    let actor = actor.clone();
    store
        .write("create_tenant", move |tx| {
            let (name, settings, actor) = (name.clone(), settings.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                if !customer_usable(c, customer, actor.partner).await? {
                    return Ok(TenantCreated::UnknownCustomer);
                }
                let text = codec::json("tenant settings", &settings)?;
                let Some(row) = c
                    .query_opt(
                        "INSERT INTO tenants (name, partner_id, customer_id, settings, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name) DO NOTHING RETURNING id",
                        &[&name.as_str(), &actor.partner, &customer, &text, &now],
                    )
                    .await?
                else {
                    return Ok(TenantCreated::NameTaken);
                };
                let id: i64 = get(&row, 0)?;
                tx.change(Change::Tenant(id));
                tx.audit(now, &actor, AuditEvent::TenantCreated(name.as_str()));
                Ok(TenantCreated::Created(TenantRecord {
                    id,
                    name,
                    partner: actor.partner,
                    customer,
                    settings,
                }))
            })
        })
        .await
}

/// [`Store::update_tenant`](crate::store::Store::update_tenant).
pub(super) async fn update(
    store: &PostgresStore,
    name: &TenantName,
    customer: Option<CustomerId>,
    settings: TenantSettings,
    actor: &Actor,
) -> Result<TenantChanged, Error> {
    let (name, actor) = (name.clone(), actor.clone());
    store
        .write("update_tenant", move |tx| {
            let (name, settings, actor) = (name.clone(), settings.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                let Some((id, _)) =
                    visible(c, name.as_str(), actor.partner, TenantLock::NoKeyUpdate).await?
                else {
                    return Ok(TenantChanged::NotFound);
                };
                if !customer_usable(c, customer, actor.partner).await? {
                    return Ok(TenantChanged::UnknownCustomer);
                }
                let text = codec::json("tenant settings", &settings)?;
                c.execute(
                    "UPDATE tenants SET settings = $2, customer_id = $3, updated_at = $4 WHERE id = $1",
                    &[&id, &text, &customer, &now],
                )
                .await?;
                tx.change(Change::Tenant(id));
                tx.audit(now, &actor, AuditEvent::TenantUpdated(name.as_str()));
                Ok(TenantChanged::Done(load(c, id).await?))
            })
        })
        .await
}

/// [`Store::delete_tenant`](crate::store::Store::delete_tenant).
pub(super) async fn delete(
    store: &PostgresStore,
    name: &TenantName,
    actor: &Actor,
) -> Result<TenantChanged, Error> {
    let (name, actor) = (name.clone(), actor.clone());
    store
        .write("delete_tenant", move |tx| {
            let (name, actor) = (name.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                // FOR UPDATE waits for claims that hold the tenant FOR KEY SHARE, so the count
                // below sees every device they committed, and blocks new ones until we end.
                let Some((id, _)) =
                    visible(c, name.as_str(), actor.partner, TenantLock::Update).await?
                else {
                    return Ok(TenantChanged::NotFound);
                };
                let claimed = c
                    .query_opt("SELECT 1 FROM devices WHERE tenant_id = $1 LIMIT 1", &[&id])
                    .await?;
                if claimed.is_some() {
                    return Ok(TenantChanged::HasDevices);
                }
                c.execute("DELETE FROM tenants WHERE id = $1", &[&id])
                    .await?;
                tx.change(Change::Tenant(id));
                tx.audit(now, &actor, AuditEvent::TenantDeleted(name.as_str()));
                Ok(TenantChanged::Done(None))
            })
        })
        .await
}

/// [`Store::tenant_counts`](crate::store::Store::tenant_counts).
pub(super) async fn counts(
    store: &PostgresStore,
    tenants: Vec<TenantId>,
) -> Result<Vec<(TenantId, TenantCounts)>, Error> {
    if tenants.is_empty() {
        return Ok(Vec::new());
    }
    // Bound credentials: not compromised, and not merely issued (pending with no previous
    // ones), as `PhoneCredentials::state` says.
    let sql = "SELECT d.tenant_id, count(*), \
         count(*) FILTER (WHERE s.mac IS NULL), \
         count(*) FILTER (WHERE d.credentials IS NOT NULL \
             AND coalesce((d.credentials::jsonb ->> 'compromised')::boolean, false) = false \
             AND (coalesce((d.credentials::jsonb ->> 'pending')::boolean, false) = false \
                  OR d.credentials::jsonb ? 'previous')), \
         count(*) FILTER (WHERE f.at > coalesce(s.last_seen, 0)) \
         FROM devices d \
         LEFT JOIN device_status s ON s.mac = d.mac \
         LEFT JOIN device_auth_failures f ON f.mac = d.mac \
         WHERE d.tenant_id = ANY($1) GROUP BY d.tenant_id";
    store
        .read_all("tenant_counts", sql, &[&tenants], |row| {
            let n = |i: usize| get::<i64>(row, i).map(|v| u64::try_from(v).unwrap_or(0));
            Ok((
                get(row, 0)?,
                TenantCounts {
                    devices: n(1)?,
                    never_seen: n(2)?,
                    enrolled: n(3)?,
                    failing_authentication: n(4)?,
                },
            ))
        })
        .await
}
