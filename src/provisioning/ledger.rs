//! The port through which what a phone's fetch must persist leaves provisioning: credentials
//! it was issued (committed before the phone gets them) and what it fetched (its last-seen
//! status). `app` wires it to the store and the registry; provisioning never sees either.

use std::net::IpAddr;

use async_trait::async_trait;

use crate::domain::credentials::CredentialChange;
use crate::domain::sighting::Sighting;
use crate::domain::Mac;

/// Why the ledger could not record something: the store is unavailable or refused the write.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LedgerError(pub String);

/// Where a phone's fetches are recorded.
#[async_trait]
pub trait Ledger: Send + Sync + 'static {
    /// Commits credential changes in one transaction, in order, each with the address it came
    /// from, and makes the committed ones visible to the next fetch; for each change, whether
    /// it applied to the device's state as the transaction read it.
    async fn change_credentials(
        &self,
        changes: Vec<(Mac, CredentialChange, Option<IpAddr>)>,
    ) -> Result<Vec<bool>, LedgerError>;

    /// Records the newest sighting of each device in a batch.
    async fn record_sightings(&self, batch: Vec<Sighting>) -> Result<(), LedgerError>;
}
