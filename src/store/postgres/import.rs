//! Imports in PostgreSQL: a whole batch of tenant and device rows in one write transaction.
//!
//! What each row reports (a name taken by another partner, a claim's outcome, settings
//! refreshed by importing again) is the store's shared `rules`; this file holds the SQL of
//! creating and updating tenants, the race with tenants created concurrently on other nodes,
//! and claims through the device operations.

use std::sync::Arc;

use super::decode::get;
use super::devices;
use super::failure::Failure;
use super::tenants::{self, TenantLock};
use super::transaction::Tx;
use super::PostgresStore;
use crate::domain::{TenantName, TenantSettings};
use crate::store::codec::{self, AuditEvent};
use crate::store::rules::{self, ImportTenant};
use crate::store::{
    now_millis, Actor, Change, Error, ImportBatch, ImportResult, Millis, RowOutcome,
};

/// One tenant row of an import: created, updated, or refused because another partner owns
/// the name.
async fn import_tenant(
    tx: &Tx<'_>,
    name: &TenantName,
    settings: &TenantSettings,
    actor: &Actor,
    now: Millis,
    result: &mut ImportResult,
) -> Result<RowOutcome, Failure> {
    let c = tx.conn();
    let settings_json = codec::json("tenant settings", settings)?;
    for _ in 0..16 {
        let existing = tenants::owner_of(c, name.as_str(), TenantLock::NoKeyUpdate).await?;
        let (id, outcome, event) = match rules::import_tenant(existing, actor) {
            ImportTenant::NameTaken => return Ok(RowOutcome::NameTaken),
            ImportTenant::Update(id) => {
                c.execute(
                    "UPDATE tenants SET settings = $2, updated_at = $3 WHERE id = $1",
                    &[&id, &settings_json, &now],
                )
                .await?;
                (
                    id,
                    RowOutcome::Updated,
                    AuditEvent::TenantUpdated(name.as_str()),
                )
            }
            ImportTenant::Create => {
                let row = c
                    .query_opt(
                        "INSERT INTO tenants (name, partner_id, settings, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING RETURNING id",
                        &[&name.as_str(), &actor.partner, &settings_json, &now],
                    )
                    .await?;
                // Created by a concurrent transaction since we looked: look again.
                let Some(row) = row else { continue };
                (
                    get(&row, 0)?,
                    RowOutcome::Created,
                    AuditEvent::TenantCreated(name.as_str()),
                )
            }
        };
        tx.change(Change::Tenant(id));
        tx.audit(now, actor, event);
        result.applied_tenants.extend(tenants::load(c, id).await?);
        return Ok(outcome);
    }
    Err(Failure::Store(Error::Unavailable(
        "the tenant kept being created and deleted concurrently".into(),
    )))
}

async fn import_in(tx: &Tx<'_>, batch: &ImportBatch) -> Result<ImportResult, Failure> {
    let now = now_millis();
    let actor = &batch.actor;
    let mut result = ImportResult::default();
    for (row, name, settings) in &batch.tenants {
        let outcome = import_tenant(tx, name, settings, actor, now, &mut result).await?;
        result.tenants.push((*row, outcome));
    }
    for d in &batch.devices {
        let claim = devices::claim_in(tx, &d.claim_request(), actor, now).await?;
        if rules::import_device(&mut result, d, claim) {
            devices::write_settings(tx.conn(), d.mac, &d.settings, now).await?;
            tx.change(Change::Device(d.mac));
        }
    }
    Ok(result)
}

/// [`Store::import`](crate::store::Store::import).
pub(super) async fn import(
    store: &PostgresStore,
    batch: ImportBatch,
) -> Result<ImportResult, Error> {
    let batch = Arc::new(batch);
    store
        .write("import", move |tx| {
            let batch = Arc::clone(&batch);
            Box::pin(async move { import_in(tx, &batch).await })
        })
        .await
}
