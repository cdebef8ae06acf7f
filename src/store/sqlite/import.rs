//! Imports in SQLite: a whole batch of tenant and device rows in one write transaction.
//!
//! What each row reports (a name taken by another partner, a claim's outcome, settings
//! refreshed by importing again) is the store's shared `rules`; this file holds the SQL of
//! creating and updating tenants, and claims through the device operations.

use rusqlite::params;

use super::connection::Db;
use super::{audit, changes, devices, tenants, SqliteStore};
use crate::store::codec::{self, AuditEvent};
use crate::store::rules::{self, ImportTenant};
use crate::store::{now_millis, Change, Error, ImportBatch, ImportResult, RowOutcome};

/// [`Store::import`](crate::store::Store::import).
pub(super) async fn import(store: &SqliteStore, batch: ImportBatch) -> Result<ImportResult, Error> {
    store
        .write(move |tx| {
            let now = now_millis();
            let actor = &batch.actor;
            let mut result = ImportResult::default();
            for (row, name, settings) in &batch.tenants {
                let settings_json = codec::json("tenant settings", settings)?;
                let existing = tenants::owner_of(tx, name.as_str())?;
                let (id, outcome, event) = match rules::import_tenant(existing, actor) {
                    ImportTenant::NameTaken => {
                        result.tenants.push((*row, RowOutcome::NameTaken));
                        continue;
                    }
                    ImportTenant::Update(id) => {
                        tx.prepare_cached(
                            "UPDATE tenants SET settings = ?2, updated_at = ?3 WHERE id = ?1",
                        )
                        .and_then(|mut s| s.execute(params![id, settings_json, now]))
                        .db()?;
                        (id, RowOutcome::Updated, AuditEvent::TenantUpdated(name.as_str()))
                    }
                    ImportTenant::Create => {
                        tx.prepare_cached(
                            "INSERT INTO tenants (name, partner_id, settings, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                        )
                        .and_then(|mut s| {
                            s.execute(params![name.as_str(), actor.partner, settings_json, now])
                        })
                        .db()?;
                        (
                            tx.last_insert_rowid(),
                            RowOutcome::Created,
                            AuditEvent::TenantCreated(name.as_str()),
                        )
                    }
                };
                changes::append(tx, &Change::Tenant(id), now)?;
                audit::append(tx, now, actor, event)?;
                result
                    .applied_tenants
                    .extend(tenants::load(tx, "id = ?1", &id)?);
                result.tenants.push((*row, outcome));
            }
            for d in &batch.devices {
                let claim = devices::claim_in(tx, &d.claim_request(), actor, now)?;
                if rules::import_device(&mut result, d, claim) {
                    devices::write_settings(tx, d.mac, &d.settings, now)?;
                    changes::append(tx, &Change::Device(d.mac), now)?;
                }
            }
            Ok(result)
        })
        .await
}
