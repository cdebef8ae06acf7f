//! The store: the source of truth for tenants, devices, claims, audit and last-seen status.
//!
//! One async contract, [`Store`], with an embedded SQLite implementation. The claim rules that
//! need atomicity (a MAC belongs to at most one tenant) are decided inside the implementation's
//! transactions, never by callers. This is the only module that speaks SQL; it knows nothing of
//! HTTP, templates or the in-memory registry.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::domain::{ClaimCode, DeviceSettings, Mac, TenantName, TenantSettings, Vendor};

pub mod sqlite;

/// A tenant's row id.
pub type TenantId = i64;

/// Milliseconds since the Unix epoch, the store's clock.
pub type Millis = i64;

/// The current time in store units.
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A tenant instance as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantRecord {
    /// Row id.
    pub id: TenantId,
    /// Unique DNS label.
    pub name: TenantName,
    /// What its phones receive.
    pub settings: TenantSettings,
}

/// A claimed device as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device.
    pub mac: Mac,
    /// Its vendor (from the OUI at claim time).
    pub vendor: Vendor,
    /// The tenant that claims it.
    pub tenant: TenantId,
    /// Gigaset label code, when claimed with one.
    pub claim_code: Option<ClaimCode>,
    /// Per-device settings.
    pub settings: DeviceSettings,
}

/// One fetch by a known device, recorded off the hot path for troubleshooting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// The device.
    pub mac: Mac,
    /// When.
    pub at: Millis,
    /// Source address.
    pub source: IpAddr,
    /// User-Agent, truncated.
    pub user_agent: String,
    /// Model from the User-Agent.
    pub model: Option<String>,
    /// Firmware from the User-Agent.
    pub firmware: Option<String>,
    /// Which file.
    pub file: &'static str,
    /// The outcome label.
    pub outcome: &'static str,
}

/// Something that changed in the store, for caches to reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A tenant was created, changed or deleted.
    Tenant(TenantId),
    /// A device was claimed, changed, moved or released.
    Device(Mac),
}

/// A change with its position in the store's monotonically increasing change sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEntry {
    /// Sequence number; every commit that changes phone-visible data takes new ones.
    pub seq: i64,
    /// What changed.
    pub change: Change,
}

/// A validated import, applied in one transaction.
#[derive(Clone, Debug, Default)]
pub struct ImportBatch {
    /// Tenants to create or update, with their row numbers in the file.
    pub tenants: Vec<(usize, TenantName, TenantSettings)>,
    /// Devices to claim, with their row numbers.
    pub devices: Vec<ImportDevice>,
    /// Who imports (for the audit log).
    pub actor: String,
}

/// One device row of an import.
#[derive(Clone, Debug)]
pub struct ImportDevice {
    /// Row number in the file.
    pub row: usize,
    /// The device.
    pub mac: Mac,
    /// Its vendor.
    pub vendor: Vendor,
    /// Gigaset label code.
    pub claim_code: Option<ClaimCode>,
    /// Tenant to claim it for.
    pub tenant: TenantName,
    /// Per-device settings.
    pub settings: DeviceSettings,
}

/// What the store did with one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOutcome {
    /// A new tenant or claim.
    Created,
    /// An existing tenant, or a device already claimed by the same tenant, updated.
    Updated,
    /// The device is claimed by another tenant.
    AlreadyInUse,
    /// The tenant named by a device row does not exist.
    UnknownTenant,
    /// A Gigaset device re-claimed with a different label code.
    ClaimCodeMismatch,
}

/// Per-row outcomes of an import, in row order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportResult {
    /// (row, outcome) for each tenant row in the batch.
    pub tenants: Vec<(usize, RowOutcome)>,
    /// (row, outcome) for each device row in the batch.
    pub devices: Vec<(usize, RowOutcome)>,
}

/// Why the store could not do what was asked. Callers branch on these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database cannot be reached or refused the operation for a reason outside our data
    /// (disk full, locked beyond the busy timeout, connection lost). Writes may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored row could not be decoded: the data was written by something else or damaged.
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    /// The database was migrated by a newer zerotouch.
    #[error("the database schema is version {found}, newer than this build supports ({supported}); run a newer zerotouch")]
    SchemaTooNew {
        /// Version found.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The data directory or database file cannot be opened.
    #[error("cannot open the database at {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The store contract every backend implements.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// All tenants.
    async fn tenants(&self) -> Result<Vec<TenantRecord>, Error>;

    /// One tenant by id (`None` if deleted).
    async fn tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, Error>;

    /// Devices in MAC order after `after`, at most `limit`: keyset pages for hydration.
    async fn devices_page(
        &self,
        after: Option<Mac>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>, Error>;

    /// One device by MAC (`None` if not claimed).
    async fn device(&self, mac: Mac) -> Result<Option<DeviceRecord>, Error>;

    /// The newest change sequence number (0 when nothing changed yet).
    async fn latest_change(&self) -> Result<i64, Error>;

    /// Changes after `seq`, oldest first, at most `limit`.
    async fn changes_since(&self, seq: i64, limit: usize) -> Result<Vec<ChangeEntry>, Error>;

    /// Applies an import in one transaction: every row gets an outcome, and either all of the
    /// accepted rows are committed or (on error) none are.
    async fn import(&self, batch: ImportBatch) -> Result<ImportResult, Error>;

    /// Writes a batch of last-seen updates (for devices still claimed) in one transaction.
    async fn record_sightings(&self, batch: Vec<Sighting>) -> Result<(), Error>;
}
