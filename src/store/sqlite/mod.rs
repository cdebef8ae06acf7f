//! The embedded store: one SQLite file in WAL mode under the data directory.
//!
//! Writes go through one connection (SQLite admits one writer at a time anyway) and run on the
//! blocking pool; reads use a second connection so hydration and API reads never queue behind a
//! bulk import. `synchronous=FULL`: a commit that returned is on disk, also across power loss.
//!
//! This file opens the store; [`Store`](super::Store) is implemented through the shared
//! operation map (`store::operations`) by one file per resource (`tenants.rs`, `devices.rs`,
//! `credentials.rs`, `partners.rs`, `import.rs`, `sightings.rs`, `changes.rs`, `audit.rs`), on
//! `schema.rs` (migrations), `connection.rs` (connections, reads, write transactions) and
//! `decode.rs` (rows to records); `files.rs` keeps the files private and holds the lock
//! `restore` checks, `backup.rs` copies the store while it runs and puts a copy back. The rules every backend shares are `store::rules`; what is
//! here is SQL and SQLite's transactions. Must not know HTTP, the registry or PostgreSQL.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::{Error, MigrateReport};

pub use backup::{BackupReport, RestoreReport};

mod audit;
mod backup;
mod changes;
mod connection;
mod credentials;
mod decode;
mod devices;
mod files;
mod import;
mod partners;
mod redirect;
mod schema;
mod secrets;
mod sightings;
mod tenants;
mod users;

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    /// A shared lock on the store's lock file, held while the store is open, so `restore`
    /// never replaces a store in use.
    _lock: std::fs::File,
}

impl SqliteStore {
    /// The newest schema version this build knows.
    pub const SCHEMA_VERSION: i64 = schema::VERSION;

    /// Opens (creating if needed) the database file and applies pending migrations. Refuses a
    /// database migrated by a newer build.
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::open_migrated(path).map(|(store, _)| store)
    }

    /// [`SqliteStore::open`], also saying which migrations it applied (`zerotouch migrate`).
    pub fn open_migrated(path: &Path) -> Result<(Self, MigrateReport), Error> {
        let open_err = |e: &dyn std::fmt::Display| Error::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        files::prepare(path)?;
        let lock = files::lock_shared(path)?;
        let mut writer = Connection::open(path).map_err(|e| open_err(&e))?;
        connection::configure(&writer).map_err(|e| open_err(&e))?;
        let report = schema::migrate(&mut writer)?;
        let reader = Connection::open(path).map_err(|e| open_err(&e))?;
        connection::configure(&reader).map_err(|e| open_err(&e))?;
        // WAL mode made the log and the index: SQLite gives them the database's mode, but a
        // pair left by an older build may be wider.
        files::tighten_companions(path);
        let store = Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
                _lock: lock,
            }),
        };
        Ok((store, report))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

impl_store!(SqliteStore, {
    // One transaction, one fsync, for a whole burst of enrolments.
    async fn change_credentials_many(
        &self,
        changes: Vec<(Mac, CredentialChange, Option<IpAddr>)>,
    ) -> Result<Vec<Option<DeviceRecord>>, Error> {
        credentials::change_many(self, changes).await
    }
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeviceSettings, Host, Mac, TenantName, TenantSettings, Vendor};
    use crate::store::{Actor, Change, ImportBatch, ImportDevice, RowOutcome, Store};

    fn settings() -> TenantSettings {
        TenantSettings {
            sip_server: Some(Host::parse("sales.cloud.example").unwrap()),
            ..TenantSettings::default()
        }
    }

    fn device(row: usize, mac: &str, tenant: &str) -> ImportDevice {
        ImportDevice {
            row,
            mac: Mac::parse(mac).unwrap(),
            vendor: Vendor::Yealink,
            claim_code: None,
            tenant: TenantName::parse(tenant).unwrap(),
            settings: DeviceSettings::default(),
            enrol_until: None,
            redirect: false,
        }
    }

    #[tokio::test]
    async fn import_decides_claims_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zerotouch.db");
        let store = SqliteStore::open(&path).unwrap();
        let result = store
            .import(ImportBatch {
                tenants: vec![
                    (0, TenantName::parse("sales").unwrap(), settings()),
                    (1, TenantName::parse("support").unwrap(), settings()),
                ],
                devices: vec![
                    device(0, "805ec017de13", "sales"),
                    device(1, "805ec017de13", "support"),
                    device(2, "805ec017de14", "nowhere"),
                    device(3, "805ec017de13", "sales"),
                ],
                actor: Actor::cli(),
            })
            .await
            .unwrap();
        assert_eq!(
            result.tenants,
            vec![(0, RowOutcome::Created), (1, RowOutcome::Created)]
        );
        assert_eq!(
            result.devices,
            vec![
                (0, RowOutcome::Created),
                (1, RowOutcome::AlreadyInUse),
                (2, RowOutcome::UnknownTenant),
                (3, RowOutcome::Updated)
            ]
        );
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.tenants().await.unwrap().len(), 2);
        let page = store.devices_page(None, 10).await.unwrap();
        assert_eq!(page.len(), 1);
        assert!(store.latest_change().await.unwrap() >= 3);
        let changes = store.changes_since(0, 100).await.unwrap();
        assert!(changes
            .iter()
            .any(|c| c.change == Change::Device(page[0].mac)));
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zerotouch.db");
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        match SqliteStore::open(&path) {
            Err(Error::SchemaTooNew { found: 99, .. }) => {}
            other => panic!("expected SchemaTooNew, got {:?}", other.map(|_| ())),
        }
    }
}
