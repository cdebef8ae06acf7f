//! The embedded store: one SQLite file in WAL mode under the data directory.
//!
//! Writes go through one connection (SQLite admits one writer at a time anyway) and run on the
//! blocking pool; reads use a second connection so hydration and API reads never queue behind a
//! bulk import. `synchronous=FULL`: a commit that returned is on disk, also across power loss.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{
    now_millis, Change, ChangeEntry, DeviceRecord, Error, ImportBatch, ImportResult, RowOutcome,
    Sighting, Store, TenantId, TenantRecord,
};
use crate::domain::{ClaimCode, Mac, TenantName, Vendor};

/// Schema migrations, in order; `PRAGMA user_version` records how many have been applied.
const MIGRATIONS: &[&str] = &[
    // 1: tenants, devices, last-seen status, change feed, audit.
    r#"
    CREATE TABLE tenants (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        settings    TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    CREATE TABLE devices (
        mac         TEXT PRIMARY KEY,
        vendor      TEXT NOT NULL,
        tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
        claim_code  TEXT,
        settings    TEXT NOT NULL,
        claimed_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX devices_by_tenant ON devices(tenant_id);
    CREATE TABLE device_status (
        mac          TEXT PRIMARY KEY REFERENCES devices(mac) ON DELETE CASCADE,
        last_seen    INTEGER NOT NULL,
        source_ip    TEXT NOT NULL,
        user_agent   TEXT NOT NULL,
        model        TEXT,
        firmware     TEXT,
        last_file    TEXT NOT NULL,
        last_outcome TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE changes (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        entity  TEXT NOT NULL,
        key     TEXT NOT NULL,
        at      INTEGER NOT NULL
    );
    CREATE TABLE audit (
        id      INTEGER PRIMARY KEY,
        at      INTEGER NOT NULL,
        actor   TEXT NOT NULL,
        source  TEXT,
        action  TEXT NOT NULL,
        mac     TEXT,
        tenant  TEXT,
        detail  TEXT
    );
    CREATE INDEX audit_by_time ON audit(at);
    "#,
];

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl SqliteStore {
    /// The newest schema version this build knows.
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// Opens (creating if needed) the database file and applies pending migrations. Refuses a
    /// database migrated by a newer build.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let open_err = |e: &dyn std::fmt::Display| Error::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| open_err(&e))?;
        }
        let mut writer = Connection::open(path).map_err(|e| open_err(&e))?;
        configure(&writer).map_err(|e| open_err(&e))?;
        migrate(&mut writer)?;
        let reader = Connection::open(path).map_err(|e| open_err(&e))?;
        configure(&reader).map_err(|e| open_err(&e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let conn = inner.reader.lock().map_err(|_| poisoned())?;
            f(&conn)
        })
        .await
    }

    async fn write<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, Error> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let mut conn = inner.writer.lock().map_err(|_| poisoned())?;
            // IMMEDIATE takes the write lock up front, so a transaction never fails half-way
            // for lack of it.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let out = f(&tx)?;
            tx.commit().map_err(unavailable)?;
            Ok(out)
        })
        .await
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Unavailable(format!("store task failed: {e}")))?
}

fn poisoned() -> Error {
    Error::Unavailable("a previous store operation panicked".into())
}

fn unavailable(e: rusqlite::Error) -> Error {
    Error::Unavailable(e.to_string())
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{what}: {e}"))
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(unavailable)?;
    if found > SqliteStore::SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SqliteStore::SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
            .map_err(unavailable)?;
        tx.execute_batch(sql).map_err(unavailable)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        tracing::info!(version = i + 1, "applied store migration");
    }
    Ok(())
}

fn record_change(tx: &Transaction<'_>, change: &Change, at: i64) -> Result<(), Error> {
    let (entity, key) = match change {
        Change::Tenant(id) => ("tenant", id.to_string()),
        Change::Device(mac) => ("device", mac.to_string()),
    };
    tx.prepare_cached("INSERT INTO changes (entity, key, at) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![entity, key, at]))
        .map_err(unavailable)?;
    Ok(())
}

fn audit(
    tx: &Transaction<'_>,
    at: i64,
    actor: &str,
    action: &str,
    mac: Option<Mac>,
    tenant: Option<&str>,
) -> Result<(), Error> {
    tx.prepare_cached(
        "INSERT INTO audit (at, actor, action, mac, tenant) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            at,
            actor,
            action,
            mac.map(|m| m.to_string()),
            tenant
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

fn tenant_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn decode_tenant((id, name, settings): (i64, String, String)) -> Result<TenantRecord, Error> {
    Ok(TenantRecord {
        id,
        name: TenantName::parse(&name).map_err(|e| corrupt("tenant name", e))?,
        settings: serde_json::from_str(&settings).map_err(|e| corrupt("tenant settings", e))?,
    })
}

type RawDevice = (String, String, i64, Option<String>, String);

fn device_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawDevice> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn decode_device((mac, vendor, tenant, code, settings): RawDevice) -> Result<DeviceRecord, Error> {
    Ok(DeviceRecord {
        mac: Mac::parse(&mac).map_err(|e| corrupt("device mac", e))?,
        vendor: vendor
            .parse::<Vendor>()
            .map_err(|e| corrupt("device vendor", e))?,
        tenant,
        claim_code: code
            .map(|c| ClaimCode::parse(&c))
            .transpose()
            .map_err(|e| corrupt("claim code", e))?,
        settings: serde_json::from_str(&settings).map_err(|e| corrupt("device settings", e))?,
    })
}

const DEVICE_COLUMNS: &str = "mac, vendor, tenant_id, claim_code, settings";

#[async_trait]
impl Store for SqliteStore {
    async fn tenants(&self) -> Result<Vec<TenantRecord>, Error> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id, name, settings FROM tenants ORDER BY id")
                .map_err(unavailable)?;
            let rows = stmt
                .query_map([], tenant_from_row)
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            rows.into_iter().map(decode_tenant).collect()
        })
        .await
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, Error> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT id, name, settings FROM tenants WHERE id = ?1")
                .and_then(|mut s| s.query_row([id], tenant_from_row).optional())
                .map_err(unavailable)?
                .map(decode_tenant)
                .transpose()
        })
        .await
    }

    async fn devices_page(
        &self,
        after: Option<Mac>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>, Error> {
        self.read(move |conn| {
            let after = after.map(|m| m.to_string()).unwrap_or_default();
            let sql = format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE mac > ?1 ORDER BY mac LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
            let rows = stmt
                .query_map(params![after, limit as i64], device_from_row)
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            rows.into_iter().map(decode_device).collect()
        })
        .await
    }

    async fn device(&self, mac: Mac) -> Result<Option<DeviceRecord>, Error> {
        self.read(move |conn| {
            let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE mac = ?1");
            conn.prepare_cached(&sql)
                .and_then(|mut s| s.query_row([mac.to_string()], device_from_row).optional())
                .map_err(unavailable)?
                .map(decode_device)
                .transpose()
        })
        .await
    }

    async fn latest_change(&self) -> Result<i64, Error> {
        self.read(|conn| {
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
                r.get(0)
            })
            .map_err(unavailable)
        })
        .await
    }

    async fn changes_since(&self, seq: i64, limit: usize) -> Result<Vec<ChangeEntry>, Error> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, entity, key FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![seq, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            rows.into_iter()
                .map(|(seq, entity, key)| {
                    let change = match entity.as_str() {
                        "tenant" => {
                            Change::Tenant(key.parse().map_err(|e| corrupt("change key", e))?)
                        }
                        "device" => {
                            Change::Device(Mac::parse(&key).map_err(|e| corrupt("change key", e))?)
                        }
                        other => return Err(corrupt("change entity", other)),
                    };
                    Ok(ChangeEntry { seq, change })
                })
                .collect()
        })
        .await
    }

    async fn import(&self, batch: ImportBatch) -> Result<ImportResult, Error> {
        self.write(move |tx| {
            let now = now_millis();
            let mut result = ImportResult::default();
            for (row, name, settings) in &batch.tenants {
                let json = serde_json::to_string(settings).map_err(|e| corrupt("tenant settings", e))?;
                let existing: Option<i64> = tx
                    .prepare_cached("SELECT id FROM tenants WHERE name = ?1")
                    .and_then(|mut s| s.query_row([name.as_str()], |r| r.get(0)).optional())
                    .map_err(unavailable)?;
                let (id, outcome) = match existing {
                    Some(id) => {
                        tx.prepare_cached("UPDATE tenants SET settings = ?2, updated_at = ?3 WHERE id = ?1")
                            .and_then(|mut s| s.execute(params![id, json, now]))
                            .map_err(unavailable)?;
                        (id, RowOutcome::Updated)
                    }
                    None => {
                        tx.prepare_cached(
                            "INSERT INTO tenants (name, settings, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                        )
                        .and_then(|mut s| s.execute(params![name.as_str(), json, now]))
                        .map_err(unavailable)?;
                        (tx.last_insert_rowid(), RowOutcome::Created)
                    }
                };
                record_change(tx, &Change::Tenant(id), now)?;
                audit(tx, now, &batch.actor, if outcome == RowOutcome::Created { "tenant.create" } else { "tenant.update" }, None, Some(name.as_str()))?;
                result.tenants.push((*row, outcome));
            }
            for d in &batch.devices {
                let tenant_id: Option<i64> = tx
                    .prepare_cached("SELECT id FROM tenants WHERE name = ?1")
                    .and_then(|mut s| s.query_row([d.tenant.as_str()], |r| r.get(0)).optional())
                    .map_err(unavailable)?;
                let Some(tenant_id) = tenant_id else {
                    result.devices.push((d.row, RowOutcome::UnknownTenant));
                    continue;
                };
                let mac = d.mac.to_string();
                let current: Option<(i64, Option<String>)> = tx
                    .prepare_cached("SELECT tenant_id, claim_code FROM devices WHERE mac = ?1")
                    .and_then(|mut s| s.query_row([&mac], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                    .map_err(unavailable)?;
                let settings = serde_json::to_string(&d.settings).map_err(|e| corrupt("device settings", e))?;
                let code = d.claim_code.as_ref().map(ClaimCode::as_str);
                let outcome = match current {
                    Some((owner, _)) if owner != tenant_id => RowOutcome::AlreadyInUse,
                    Some((_, stored)) if stored.as_deref() != code => RowOutcome::ClaimCodeMismatch,
                    Some(_) => {
                        tx.prepare_cached("UPDATE devices SET settings = ?2, updated_at = ?3 WHERE mac = ?1")
                            .and_then(|mut s| s.execute(params![mac, settings, now]))
                            .map_err(unavailable)?;
                        RowOutcome::Updated
                    }
                    None => {
                        tx.prepare_cached(
                            "INSERT INTO devices (mac, vendor, tenant_id, claim_code, settings, claimed_at, updated_at) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                        )
                        .and_then(|mut s| s.execute(params![mac, d.vendor.as_str(), tenant_id, code, settings, now]))
                        .map_err(unavailable)?;
                        audit(tx, now, &batch.actor, "device.claim", Some(d.mac), Some(d.tenant.as_str()))?;
                        RowOutcome::Created
                    }
                };
                if matches!(outcome, RowOutcome::Created | RowOutcome::Updated) {
                    record_change(tx, &Change::Device(d.mac), now)?;
                }
                result.devices.push((d.row, outcome));
            }
            Ok(result)
        })
        .await
    }

    async fn record_sightings(&self, batch: Vec<Sighting>) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write(move |tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO device_status (mac, last_seen, source_ip, user_agent, model, firmware, last_file, last_outcome) \
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS (SELECT 1 FROM devices WHERE mac = ?1) \
                     ON CONFLICT(mac) DO UPDATE SET last_seen = excluded.last_seen, source_ip = excluded.source_ip, \
                     user_agent = excluded.user_agent, model = excluded.model, firmware = excluded.firmware, \
                     last_file = excluded.last_file, last_outcome = excluded.last_outcome",
                )
                .map_err(unavailable)?;
            for s in &batch {
                stmt.execute(params![
                    s.mac.to_string(),
                    s.at,
                    s.source.to_string(),
                    s.user_agent,
                    s.model,
                    s.firmware,
                    s.file,
                    s.outcome
                ])
                .map_err(unavailable)?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeviceSettings, Host, TenantSettings};
    use crate::store::ImportDevice;

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
                actor: "test".into(),
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
