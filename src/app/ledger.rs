//! The phone path's ledger wired to the store and the registry: credential changes committed
//! in one transaction and reflected in the registry before the phone is answered; sightings
//! written in batches.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::credentials::CredentialChange;
use crate::domain::sighting::Sighting;
use crate::domain::Mac;
use crate::provisioning::ledger::{Ledger, LedgerError};
use crate::registry::{Committed, Registry};
use crate::store::Store;

/// The store, seen from the phone path.
pub(super) struct StoreLedger {
    pub(super) store: Arc<dyn Store>,
    pub(super) registry: Arc<Registry>,
}

#[async_trait]
impl Ledger for StoreLedger {
    async fn change_credentials(
        &self,
        changes: Vec<(Mac, CredentialChange, Option<IpAddr>)>,
    ) -> Result<Vec<bool>, LedgerError> {
        let records = self
            .store
            .change_credentials_many(changes)
            .await
            .map_err(|e| LedgerError(e.to_string()))?;
        let applied = records.iter().map(Option::is_some).collect();
        self.registry
            .apply(Committed {
                devices: records.into_iter().flatten().collect(),
                ..Committed::default()
            })
            .await;
        Ok(applied)
    }

    async fn record_sightings(&self, batch: Vec<Sighting>) -> Result<(), LedgerError> {
        self.store
            .record_sightings(batch)
            .await
            .map_err(|e| LedgerError(e.to_string()))
    }
}
