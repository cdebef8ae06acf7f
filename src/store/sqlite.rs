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
    now_millis, Actor, AuditEntry, AuditQuery, Change, ChangeEntry, ClaimOutcome, ClaimRequest,
    CredentialChange, CustomerRecord, DeviceQuery, DeviceRecord, DeviceStatus, DeviceUpdate,
    DeviceView, Error, ImportBatch, ImportResult, MigrateReport, PartnerRecord, RotationOutcome,
    RowOutcome, Sighting, Store, TenantChanged, TenantCreated, TenantId, TenantRecord, TokenRecord,
    UpdateOutcome,
};
use crate::domain::{
    ClaimCode, ClaimSecret, CustomerFields, CustomerId, Mac, PartnerId, TenantName, TenantSettings,
    Vendor,
};

/// One schema migration: SQL, or SQL followed by a data conversion written in Rust.
enum Migration {
    Sql(&'static str),
    SqlThen(&'static str, fn(&Transaction<'_>) -> Result<(), Error>),
}

/// Schema migrations, in order; `PRAGMA user_version` records how many have been applied.
const MIGRATIONS: &[Migration] = &[
    // 1: tenants, devices, last-seen status, change feed, audit.
    Migration::Sql(
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
    ),
    // 2: partners, their API tokens and customers; tenants owned by partners.
    Migration::Sql(
        r#"
    CREATE TABLE partners (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE api_tokens (
        id          INTEGER PRIMARY KEY,
        partner_id  INTEGER NOT NULL REFERENCES partners(id),
        key_id      TEXT NOT NULL UNIQUE,
        secret_hash BLOB NOT NULL,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    );
    CREATE TABLE customers (
        id          INTEGER PRIMARY KEY,
        partner_id  INTEGER NOT NULL REFERENCES partners(id),
        fields      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    CREATE INDEX customers_by_partner ON customers(partner_id);
    ALTER TABLE tenants ADD COLUMN partner_id INTEGER REFERENCES partners(id);
    ALTER TABLE tenants ADD COLUMN customer_id INTEGER REFERENCES customers(id);
    CREATE INDEX tenants_by_partner ON tenants(partner_id);
    CREATE INDEX device_status_by_seen ON device_status(last_seen);
    CREATE INDEX audit_by_mac ON audit(mac);
    "#,
    ),
    // 3: phone authentication. Gigaset label codes are replaced by the HA1s of the MAC-ID;
    // devices get provisioning credentials (HA1s) and an enrolment window; a table of
    // server-wide secrets (the Digest nonce key).
    Migration::SqlThen(
        r#"
    ALTER TABLE devices ADD COLUMN claim_secret TEXT;
    ALTER TABLE devices ADD COLUMN credentials TEXT;
    ALTER TABLE devices ADD COLUMN enrol_until INTEGER;
    CREATE TABLE server_secrets (
        name   TEXT PRIMARY KEY,
        value  BLOB NOT NULL
    );
    "#,
        hash_claim_codes,
    ),
];

/// Migration 3's data step: hash stored label codes, drop the plain codes, and give devices
/// claimed before phone authentication existed a fresh enrolment window, so they can enrol.
fn hash_claim_codes(tx: &Transaction<'_>) -> Result<(), Error> {
    let rows: Vec<(String, String)> = tx
        .prepare("SELECT mac, claim_code FROM devices WHERE claim_code IS NOT NULL")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .db()?;
    for (mac, code) in rows {
        let mac_parsed = Mac::parse(&mac).map_err(|e| corrupt("device mac", e))?;
        let code = ClaimCode::parse(&code).map_err(|e| corrupt("claim code", e))?;
        let secret = json("claim secret", &ClaimSecret::new(mac_parsed, &code))?;
        tx.execute(
            "UPDATE devices SET claim_secret = ?2 WHERE mac = ?1",
            params![mac, secret],
        )
        .db()?;
    }
    tx.execute_batch("ALTER TABLE devices DROP COLUMN claim_code;")
        .db()?;
    tx.execute(
        "UPDATE devices SET enrol_until = ?1 WHERE credentials IS NULL",
        [now_millis() + DEFAULT_ENROLMENT_MS],
    )
    .db()?;
    Ok(())
}

/// Enrolment window given to devices that predate phone authentication: 7 days.
const DEFAULT_ENROLMENT_MS: i64 = 7 * 24 * 3600 * 1000;

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
        Self::open_migrated(path).map(|(store, _)| store)
    }

    /// [`SqliteStore::open`], also saying which migrations it applied (`zerotouch migrate`).
    pub fn open_migrated(path: &Path) -> Result<(Self, MigrateReport), Error> {
        let open_err = |e: &dyn std::fmt::Display| Error::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| open_err(&e))?;
        }
        let mut writer = Connection::open(path).map_err(|e| open_err(&e))?;
        configure(&writer).map_err(|e| open_err(&e))?;
        let report = migrate(&mut writer)?;
        let reader = Connection::open(path).map_err(|e| open_err(&e))?;
        configure(&reader).map_err(|e| open_err(&e))?;
        let store = Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                reader: Mutex::new(reader),
            }),
        };
        Ok((store, report))
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

fn migrate(conn: &mut Connection) -> Result<MigrateReport, Error> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(unavailable)?;
    if found > SqliteStore::SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: SqliteStore::SCHEMA_VERSION,
        });
    }
    let mut applied = Vec::new();
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
            .map_err(unavailable)?;
        match migration {
            Migration::Sql(sql) => tx.execute_batch(sql).map_err(unavailable)?,
            Migration::SqlThen(sql, then) => {
                tx.execute_batch(sql).map_err(unavailable)?;
                then(&tx)?;
            }
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        tracing::info!(version = i + 1, "applied store migration");
        applied.push((i + 1) as i64);
    }
    Ok(MigrateReport {
        found,
        version: applied.last().copied().unwrap_or(found),
        applied,
    })
}

/// `?` for rusqlite results: every SQL failure is the database's, not the caller's.
trait Db<T> {
    fn db(self) -> Result<T, Error>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, Error> {
        self.map_err(unavailable)
    }
}

fn json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| corrupt(what, e))
}

fn record_change(tx: &Transaction<'_>, change: &Change, at: i64) -> Result<(), Error> {
    let (entity, key) = match change {
        Change::Tenant(id) => ("tenant", id.to_string()),
        Change::Device(mac) => ("device", mac.to_string()),
    };
    tx.prepare_cached("INSERT INTO changes (entity, key, at) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![entity, key, at]))
        .db()?;
    Ok(())
}

/// One audit entry: who (actor), when, what (action on a device or tenant), from where, and
/// detail as JSON text. Never secrets.
fn audit(
    tx: &Transaction<'_>,
    at: i64,
    actor: &Actor,
    action: &str,
    mac: Option<Mac>,
    tenant: Option<&str>,
    detail: Option<serde_json::Value>,
) -> Result<(), Error> {
    tx.prepare_cached(
        "INSERT INTO audit (at, actor, source, action, mac, tenant, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            at,
            actor.name,
            actor.source.map(|a| a.to_string()),
            action,
            mac.map(|m| m.to_string()),
            tenant,
            detail.map(|d| d.to_string())
        ])
    })
    .db()?;
    Ok(())
}

const TENANT_COLUMNS: &str = "id, name, partner_id, customer_id, settings";

type RawTenant = (i64, String, Option<i64>, Option<i64>, String);

fn tenant_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawTenant> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn decode_tenant(
    (id, name, partner, customer, settings): RawTenant,
) -> Result<TenantRecord, Error> {
    Ok(TenantRecord {
        id,
        name: TenantName::parse(&name).map_err(|e| corrupt("tenant name", e))?,
        partner,
        customer,
        settings: serde_json::from_str(&settings).map_err(|e| corrupt("tenant settings", e))?,
    })
}

fn load_tenant(
    conn: &Connection,
    clause: &str,
    param: &dyn rusqlite::ToSql,
) -> Result<Option<TenantRecord>, Error> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE {clause}");
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row([param], tenant_from_row).optional())
        .db()?
        .map(decode_tenant)
        .transpose()
}

/// The tenant named `name`, if the actor may use it: the operator may use any, a partner only
/// its own. Returns (id, partner).
fn visible_tenant(
    conn: &Connection,
    name: &str,
    partner: Option<PartnerId>,
) -> Result<Option<(i64, Option<i64>)>, Error> {
    let row: Option<(i64, Option<i64>)> = conn
        .prepare_cached("SELECT id, partner_id FROM tenants WHERE name = ?1")
        .and_then(|mut s| {
            s.query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .db()?;
    Ok(row.filter(|(_, owner)| partner.is_none() || *owner == partner))
}

type RawDevice = (
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
);

/// Reads the 7 device columns starting at `at`.
fn device_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<RawDevice> {
    Ok((
        row.get(at)?,
        row.get(at + 1)?,
        row.get(at + 2)?,
        row.get(at + 3)?,
        row.get(at + 4)?,
        row.get(at + 5)?,
        row.get(at + 6)?,
    ))
}

fn device_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawDevice> {
    device_at(row, 0)
}

fn decode_json<T: serde::de::DeserializeOwned>(
    what: &str,
    text: Option<String>,
) -> Result<Option<T>, Error> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(what, e)))
        .transpose()
}

fn decode_device(
    (mac, vendor, tenant, secret, credentials, enrol_until, settings): RawDevice,
) -> Result<DeviceRecord, Error> {
    Ok(DeviceRecord {
        mac: Mac::parse(&mac).map_err(|e| corrupt("device mac", e))?,
        vendor: vendor
            .parse::<Vendor>()
            .map_err(|e| corrupt("device vendor", e))?,
        tenant,
        claim_secret: decode_json("claim secret", secret)?,
        credentials: decode_json("credentials", credentials)?,
        enrol_until,
        settings: serde_json::from_str(&settings).map_err(|e| corrupt("device settings", e))?,
    })
}

const DEVICE_COLUMNS: &str =
    "mac, vendor, tenant_id, claim_secret, credentials, enrol_until, settings";

fn load_device(conn: &Connection, mac: Mac) -> Result<Option<DeviceRecord>, Error> {
    let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE mac = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row([mac.to_string()], device_from_row).optional())
        .db()?
        .map(decode_device)
        .transpose()
}

/// The device if claimed by a tenant the actor may see, with that tenant's name.
fn visible_device(
    conn: &Connection,
    mac: Mac,
    partner: Option<PartnerId>,
) -> Result<Option<(DeviceRecord, String)>, Error> {
    let row: Option<(RawDevice, String, Option<i64>)> = conn
        .prepare_cached(
            "SELECT d.mac, d.vendor, d.tenant_id, d.claim_secret, d.credentials, d.enrol_until, d.settings, t.name, t.partner_id \
             FROM devices d JOIN tenants t ON t.id = d.tenant_id WHERE d.mac = ?1",
        )
        .and_then(|mut s| {
            s.query_row([mac.to_string()], |r| {
                Ok((device_from_row(r)?, r.get(7)?, r.get(8)?))
            })
            .optional()
        })
        .db()?;
    match row {
        Some((raw, tenant, owner)) if partner.is_none() || owner == partner => {
            Ok(Some((decode_device(raw)?, tenant)))
        }
        _ => Ok(None),
    }
}

const VIEW_SELECT: &str = "SELECT d.mac, d.vendor, d.tenant_id, d.claim_secret, d.credentials, d.enrol_until, d.settings, t.name, d.claimed_at, d.updated_at, \
     s.last_seen, s.source_ip, s.user_agent, s.model, s.firmware, s.last_file, s.last_outcome \
     FROM devices d JOIN tenants t ON t.id = d.tenant_id LEFT JOIN device_status s ON s.mac = d.mac";

type RawView = (
    RawDevice,
    String,
    i64,
    i64,
    Option<(
        i64,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        String,
    )>,
);

fn view_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawView> {
    let seen: Option<i64> = r.get(10)?;
    let status = match seen {
        Some(at) => Some((
            at,
            r.get(11)?,
            r.get(12)?,
            r.get(13)?,
            r.get(14)?,
            r.get(15)?,
            r.get(16)?,
        )),
        None => None,
    };
    Ok((device_from_row(r)?, r.get(7)?, r.get(8)?, r.get(9)?, status))
}

fn decode_view(
    (raw, tenant, claimed_at, updated_at, status): RawView,
) -> Result<DeviceView, Error> {
    Ok(DeviceView {
        record: decode_device(raw)?,
        tenant_name: TenantName::parse(&tenant).map_err(|e| corrupt("tenant name", e))?,
        claimed_at,
        updated_at,
        status: status.map(
            |(last_seen, source, user_agent, model, firmware, last_file, last_outcome)| {
                DeviceStatus {
                    last_seen,
                    source,
                    user_agent,
                    model,
                    firmware,
                    last_file,
                    last_outcome,
                }
            },
        ),
    })
}

type RawCustomer = (i64, i64, String, i64);

fn customer_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawCustomer> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn decode_customer(
    (id, partner, fields, created_at): RawCustomer,
) -> Result<CustomerRecord, Error> {
    Ok(CustomerRecord {
        id,
        partner,
        fields: serde_json::from_str(&fields).map_err(|e| corrupt("customer", e))?,
        created_at,
    })
}

fn customer_is_partners(
    conn: &Connection,
    customer: Option<CustomerId>,
    partner: Option<PartnerId>,
) -> Result<bool, Error> {
    let Some(customer) = customer else {
        return Ok(true);
    };
    let owner: Option<i64> = conn
        .prepare_cached("SELECT partner_id FROM customers WHERE id = ?1")
        .and_then(|mut s| s.query_row([customer], |r| r.get(0)).optional())
        .db()?;
    Ok(match (owner, partner) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(o), Some(p)) => o == p,
    })
}

type RawToken = (i64, i64, String, Vec<u8>, i64, Option<i64>);

fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawToken> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn decode_token(
    (id, partner, key_id, secret_hash, created_at, revoked_at): RawToken,
) -> TokenRecord {
    TokenRecord {
        id,
        partner,
        key_id,
        secret_hash,
        created_at,
        revoked_at,
    }
}

/// Applies one claim inside a transaction: the heart of "nobody can steal a phone".
fn claim_in(
    tx: &Transaction<'_>,
    req: &ClaimRequest,
    actor: &Actor,
    now: i64,
) -> Result<ClaimOutcome, Error> {
    let Some((tenant_id, _)) = visible_tenant(tx, req.tenant.as_str(), actor.partner)? else {
        return Ok(ClaimOutcome::UnknownTenant);
    };
    match load_device(tx, req.mac)? {
        Some(d) if d.tenant != tenant_id => Ok(ClaimOutcome::AlreadyInUse),
        Some(d) => {
            let same_code = match (&d.claim_secret, &req.claim_code) {
                (None, None) => true,
                (Some(secret), Some(code)) => secret.matches(req.mac, code),
                _ => false,
            };
            if same_code {
                Ok(ClaimOutcome::Unchanged(d))
            } else {
                Ok(ClaimOutcome::ClaimCodeMismatch)
            }
        }
        None => {
            let settings = json("device settings", &req.settings)?;
            let claim_secret = req
                .claim_code
                .as_ref()
                .map(|c| ClaimSecret::new(req.mac, c));
            let secret_json = claim_secret
                .as_ref()
                .map(|s| json("claim secret", s))
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
            audit(
                tx,
                now,
                actor,
                "device.claim",
                Some(req.mac),
                Some(req.tenant.as_str()),
                req.enrol_until
                    .map(|u| serde_json::json!({"enrolment_until": u})),
            )?;
            record_change(tx, &Change::Device(req.mac), now)?;
            Ok(ClaimOutcome::Created(DeviceRecord {
                mac: req.mac,
                vendor: req.vendor,
                tenant: tenant_id,
                claim_secret,
                credentials: None,
                enrol_until: req.enrol_until,
                settings: req.settings.clone(),
            }))
        }
    }
}

/// Applies one credential change made by a phone's fetch inside `tx`.
fn change_credentials_in(
    tx: &Transaction<'_>,
    mac: Mac,
    change: CredentialChange,
    source: Option<std::net::IpAddr>,
    now: i64,
) -> Result<Option<DeviceRecord>, Error> {
    let Some(mut device) = load_device(tx, mac)? else {
        return Ok(None);
    };
    let actor = Actor {
        name: "phone".into(),
        partner: None,
        source,
    };
    let open = device.enrol_until.is_some_and(|u| u > now);
    let Some((credentials, action)) = change.apply(device.credentials.take(), open) else {
        return Ok(None);
    };
    let text = json("credentials", &credentials)?;
    tx.prepare_cached(
        "UPDATE devices SET credentials = ?2, enrol_until = NULL, updated_at = ?3 WHERE mac = ?1",
    )
    .and_then(|mut s| s.execute(params![mac.to_string(), text, now]))
    .db()?;
    if let Some(action) = action {
        let tenant = load_tenant(tx, "id = ?1", &device.tenant)?.map(|t| t.name.to_string());
        audit(tx, now, &actor, action, Some(mac), tenant.as_deref(), None)?;
    }
    record_change(tx, &Change::Device(mac), now)?;
    device.credentials = Some(credentials);
    device.enrol_until = None;
    Ok(Some(device))
}

#[async_trait]
impl Store for SqliteStore {
    async fn tenants(&self) -> Result<Vec<TenantRecord>, Error> {
        self.tenants_of(None).await
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, Error> {
        self.read(move |conn| load_tenant(conn, "id = ?1", &id))
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
            let mut stmt = conn.prepare_cached(&sql).db()?;
            let rows = stmt
                .query_map(params![after, limit as i64], device_from_row)
                .db()?
                .collect::<Result<Vec<_>, _>>()
                .db()?;
            rows.into_iter().map(decode_device).collect()
        })
        .await
    }

    async fn device(&self, mac: Mac) -> Result<Option<DeviceRecord>, Error> {
        self.read(move |conn| load_device(conn, mac)).await
    }

    async fn latest_change(&self) -> Result<i64, Error> {
        self.read(|conn| {
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
                r.get(0)
            })
            .db()
        })
        .await
    }

    async fn changes_since(&self, seq: i64, limit: usize) -> Result<Vec<ChangeEntry>, Error> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, entity, key FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .db()?;
            let rows = stmt
                .query_map(params![seq, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .db()?
                .collect::<Result<Vec<_>, _>>()
                .db()?;
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
            let actor = &batch.actor;
            let mut result = ImportResult::default();
            for (row, name, settings) in &batch.tenants {
                let settings_json = json("tenant settings", settings)?;
                let existing: Option<(i64, Option<i64>)> = tx
                    .prepare_cached("SELECT id, partner_id FROM tenants WHERE name = ?1")
                    .and_then(|mut s| s.query_row([name.as_str()], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                    .db()?;
                let outcome = match existing {
                    Some((_, owner)) if actor.partner.is_some() && owner != actor.partner => RowOutcome::NameTaken,
                    Some((id, _)) => {
                        tx.prepare_cached("UPDATE tenants SET settings = ?2, updated_at = ?3 WHERE id = ?1")
                            .and_then(|mut s| s.execute(params![id, settings_json, now]))
                            .db()?;
                        record_change(tx, &Change::Tenant(id), now)?;
                        audit(tx, now, actor, "tenant.update", None, Some(name.as_str()), None)?;
                        result.applied_tenants.extend(load_tenant(tx, "id = ?1", &id)?);
                        RowOutcome::Updated
                    }
                    None => {
                        tx.prepare_cached(
                            "INSERT INTO tenants (name, partner_id, settings, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                        )
                        .and_then(|mut s| s.execute(params![name.as_str(), actor.partner, settings_json, now]))
                        .db()?;
                        let id = tx.last_insert_rowid();
                        record_change(tx, &Change::Tenant(id), now)?;
                        audit(tx, now, actor, "tenant.create", None, Some(name.as_str()), None)?;
                        result.applied_tenants.extend(load_tenant(tx, "id = ?1", &id)?);
                        RowOutcome::Created
                    }
                };
                result.tenants.push((*row, outcome));
            }
            for d in &batch.devices {
                let req = ClaimRequest {
                    mac: d.mac,
                    vendor: d.vendor,
                    claim_code: d.claim_code.clone(),
                    tenant: d.tenant.clone(),
                    settings: d.settings.clone(),
                    enrol_until: d.enrol_until,
                };
                let outcome = match claim_in(tx, &req, actor, now)? {
                    ClaimOutcome::Created(record) => {
                        result.applied_devices.push(record);
                        RowOutcome::Created
                    }
                    ClaimOutcome::Unchanged(mut record) => {
                        // Importing again refreshes per-device settings.
                        if record.settings != d.settings {
                            let settings = json("device settings", &d.settings)?;
                            tx.prepare_cached("UPDATE devices SET settings = ?2, updated_at = ?3 WHERE mac = ?1")
                                .and_then(|mut s| s.execute(params![d.mac.to_string(), settings, now]))
                                .db()?;
                            record_change(tx, &Change::Device(d.mac), now)?;
                            record.settings = d.settings.clone();
                        }
                        result.applied_devices.push(record);
                        RowOutcome::Updated
                    }
                    ClaimOutcome::AlreadyInUse => RowOutcome::AlreadyInUse,
                    ClaimOutcome::UnknownTenant => RowOutcome::UnknownTenant,
                    ClaimOutcome::ClaimCodeMismatch => RowOutcome::ClaimCodeMismatch,
                };
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
                .db()?;
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
                .db()?;
            }
            Ok(())
        })
        .await
    }

    async fn create_partner(
        &self,
        name: &str,
        actor: &Actor,
    ) -> Result<Option<PartnerRecord>, Error> {
        let (name, actor) = (name.to_owned(), actor.clone());
        self.write(move |tx| {
            let now = now_millis();
            let inserted = tx
                .prepare_cached("INSERT INTO partners (name, created_at) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING")
                .and_then(|mut s| s.execute(params![name, now]))
                .db()?;
            if inserted == 0 {
                return Ok(None);
            }
            let id = tx.last_insert_rowid();
            audit(tx, now, &actor, "partner.create", None, None, Some(serde_json::json!({"partner": id, "name": name})))?;
            Ok(Some(PartnerRecord { id, name, created_at: now }))
        })
        .await
    }

    async fn partners(&self) -> Result<Vec<PartnerRecord>, Error> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id, name, created_at FROM partners ORDER BY id")
                .db()?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(PartnerRecord {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                })
                .db()?
                .collect::<Result<Vec<_>, _>>()
                .db()?;
            Ok(rows)
        })
        .await
    }

    async fn partner(&self, id: PartnerId) -> Result<Option<PartnerRecord>, Error> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT id, name, created_at FROM partners WHERE id = ?1")
                .and_then(|mut s| {
                    s.query_row([id], |r| {
                        Ok(PartnerRecord {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            created_at: r.get(2)?,
                        })
                    })
                    .optional()
                })
                .db()
        })
        .await
    }

    async fn partner_by_name(&self, name: &str) -> Result<Option<PartnerRecord>, Error> {
        let name = name.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT id, name, created_at FROM partners WHERE name = ?1")
                .and_then(|mut s| {
                    s.query_row([name], |r| {
                        Ok(PartnerRecord {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            created_at: r.get(2)?,
                        })
                    })
                    .optional()
                })
                .db()
        })
        .await
    }

    async fn create_token(
        &self,
        partner: PartnerId,
        key_id: &str,
        secret_hash: &[u8],
        actor: &Actor,
    ) -> Result<Option<TokenRecord>, Error> {
        let (key_id, secret_hash, actor) = (key_id.to_owned(), secret_hash.to_vec(), actor.clone());
        self.write(move |tx| {
            let now = now_millis();
            let exists: Option<i64> = tx
                .prepare_cached("SELECT id FROM partners WHERE id = ?1")
                .and_then(|mut s| s.query_row([partner], |r| r.get(0)).optional())
                .db()?;
            if exists.is_none() {
                return Ok(None);
            }
            tx.prepare_cached("INSERT INTO api_tokens (partner_id, key_id, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4)")
                .and_then(|mut s| s.execute(params![partner, key_id, secret_hash, now]))
                .db()?;
            let id = tx.last_insert_rowid();
            audit(tx, now, &actor, "token.create", None, None, Some(serde_json::json!({"partner": partner, "token": id})))?;
            Ok(Some(TokenRecord { id, partner, key_id, secret_hash, created_at: now, revoked_at: None }))
        })
        .await
    }

    async fn tokens(&self, partner: PartnerId) -> Result<Vec<TokenRecord>, Error> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, partner_id, key_id, secret_hash, created_at, revoked_at FROM api_tokens WHERE partner_id = ?1 ORDER BY id",
                )
                .db()?;
            let rows = stmt.query_map([partner], token_from_row).db()?.collect::<Result<Vec<_>, _>>().db()?;
            Ok(rows.into_iter().map(decode_token).collect())
        })
        .await
    }

    async fn token_by_key(&self, key_id: &str) -> Result<Option<TokenRecord>, Error> {
        let key_id = key_id.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT id, partner_id, key_id, secret_hash, created_at, revoked_at FROM api_tokens WHERE key_id = ?1")
                .and_then(|mut s| s.query_row([key_id], token_from_row).optional())
                .db()?
                .map(decode_token))
        })
        .await
    }

    async fn revoke_token(
        &self,
        partner: PartnerId,
        token: i64,
        actor: &Actor,
    ) -> Result<bool, Error> {
        let actor = actor.clone();
        self.write(move |tx| {
            let now = now_millis();
            let n = tx
                .prepare_cached("UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND partner_id = ?2 AND revoked_at IS NULL")
                .and_then(|mut s| s.execute(params![token, partner, now]))
                .db()?;
            if n > 0 {
                audit(tx, now, &actor, "token.revoke", None, None, Some(serde_json::json!({"partner": partner, "token": token})))?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn create_customer(
        &self,
        partner: PartnerId,
        fields: CustomerFields,
        actor: &Actor,
    ) -> Result<CustomerRecord, Error> {
        let actor = actor.clone();
        self.write(move |tx| {
            let now = now_millis();
            let text = json("customer", &fields)?;
            tx.prepare_cached("INSERT INTO customers (partner_id, fields, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)")
                .and_then(|mut s| s.execute(params![partner, text, now]))
                .db()?;
            let id = tx.last_insert_rowid();
            audit(tx, now, &actor, "customer.create", None, None, Some(serde_json::json!({"customer": id})))?;
            Ok(CustomerRecord { id, partner, fields, created_at: now })
        })
        .await
    }

    async fn customers(&self, partner: PartnerId) -> Result<Vec<CustomerRecord>, Error> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id, partner_id, fields, created_at FROM customers WHERE partner_id = ?1 ORDER BY id")
                .db()?;
            let rows = stmt.query_map([partner], customer_from_row).db()?.collect::<Result<Vec<_>, _>>().db()?;
            rows.into_iter().map(decode_customer).collect()
        })
        .await
    }

    async fn customer(
        &self,
        partner: PartnerId,
        id: CustomerId,
    ) -> Result<Option<CustomerRecord>, Error> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT id, partner_id, fields, created_at FROM customers WHERE id = ?1 AND partner_id = ?2")
                .and_then(|mut s| s.query_row([id, partner], customer_from_row).optional())
                .db()?
                .map(decode_customer)
                .transpose()
        })
        .await
    }

    async fn update_customer(
        &self,
        partner: PartnerId,
        id: CustomerId,
        fields: CustomerFields,
        actor: &Actor,
    ) -> Result<Option<CustomerRecord>, Error> {
        let actor = actor.clone();
        self.write(move |tx| {
            let now = now_millis();
            let text = json("customer", &fields)?;
            let n = tx
                .prepare_cached("UPDATE customers SET fields = ?3, updated_at = ?4 WHERE id = ?1 AND partner_id = ?2")
                .and_then(|mut s| s.execute(params![id, partner, text, now]))
                .db()?;
            if n == 0 {
                return Ok(None);
            }
            audit(tx, now, &actor, "customer.update", None, None, Some(serde_json::json!({"customer": id})))?;
            tx.prepare_cached("SELECT id, partner_id, fields, created_at FROM customers WHERE id = ?1")
                .and_then(|mut s| s.query_row([id], customer_from_row).optional())
                .db()?
                .map(decode_customer)
                .transpose()
        })
        .await
    }

    async fn create_tenant(
        &self,
        name: TenantName,
        customer: Option<CustomerId>,
        settings: TenantSettings,
        actor: &Actor,
    ) -> Result<TenantCreated, Error> {
        let actor = actor.clone();
        self.write(move |tx| {
            let now = now_millis();
            if !customer_is_partners(tx, customer, actor.partner)? {
                return Ok(TenantCreated::UnknownCustomer);
            }
            let text = json("tenant settings", &settings)?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO tenants (name, partner_id, customer_id, settings, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(name) DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![name.as_str(), actor.partner, customer, text, now]))
                .db()?;
            if inserted == 0 {
                return Ok(TenantCreated::NameTaken);
            }
            let id = tx.last_insert_rowid();
            record_change(tx, &Change::Tenant(id), now)?;
            audit(tx, now, &actor, "tenant.create", None, Some(name.as_str()), None)?;
            Ok(TenantCreated::Created(TenantRecord { id, name, partner: actor.partner, customer, settings }))
        })
        .await
    }

    async fn tenants_of(&self, partner: Option<PartnerId>) -> Result<Vec<TenantRecord>, Error> {
        self.read(move |conn| {
            let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE ?1 IS NULL OR partner_id = ?1 ORDER BY name");
            let mut stmt = conn.prepare_cached(&sql).db()?;
            let rows = stmt.query_map([partner], tenant_from_row).db()?.collect::<Result<Vec<_>, _>>().db()?;
            rows.into_iter().map(decode_tenant).collect()
        })
        .await
    }

    async fn tenant_by_name(
        &self,
        partner: Option<PartnerId>,
        name: &TenantName,
    ) -> Result<Option<TenantRecord>, Error> {
        let name = name.clone();
        self.read(move |conn| {
            Ok(load_tenant(conn, "name = ?1", &name.as_str())?
                .filter(|t| partner.is_none() || t.partner == partner))
        })
        .await
    }

    async fn update_tenant(
        &self,
        name: &TenantName,
        customer: Option<CustomerId>,
        settings: TenantSettings,
        actor: &Actor,
    ) -> Result<TenantChanged, Error> {
        let (name, actor) = (name.clone(), actor.clone());
        self.write(move |tx| {
            let now = now_millis();
            let Some((id, _)) = visible_tenant(tx, name.as_str(), actor.partner)? else {
                return Ok(TenantChanged::NotFound);
            };
            if !customer_is_partners(tx, customer, actor.partner)? {
                return Ok(TenantChanged::UnknownCustomer);
            }
            let text = json("tenant settings", &settings)?;
            tx.prepare_cached(
                "UPDATE tenants SET settings = ?2, customer_id = ?3, updated_at = ?4 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, text, customer, now]))
            .db()?;
            record_change(tx, &Change::Tenant(id), now)?;
            audit(
                tx,
                now,
                &actor,
                "tenant.update",
                None,
                Some(name.as_str()),
                None,
            )?;
            Ok(TenantChanged::Done(load_tenant(tx, "id = ?1", &id)?))
        })
        .await
    }

    async fn delete_tenant(
        &self,
        name: &TenantName,
        actor: &Actor,
    ) -> Result<TenantChanged, Error> {
        let (name, actor) = (name.clone(), actor.clone());
        self.write(move |tx| {
            let now = now_millis();
            let Some((id, _)) = visible_tenant(tx, name.as_str(), actor.partner)? else {
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
            record_change(tx, &Change::Tenant(id), now)?;
            audit(
                tx,
                now,
                &actor,
                "tenant.delete",
                None,
                Some(name.as_str()),
                None,
            )?;
            Ok(TenantChanged::Done(None))
        })
        .await
    }

    async fn claim(&self, request: ClaimRequest, actor: &Actor) -> Result<ClaimOutcome, Error> {
        let actor = actor.clone();
        self.write(move |tx| claim_in(tx, &request, &actor, now_millis()))
            .await
    }

    async fn update_device(
        &self,
        mac: Mac,
        update: DeviceUpdate,
        actor: &Actor,
    ) -> Result<UpdateOutcome, Error> {
        let actor = actor.clone();
        self.write(move |tx| {
            let now = now_millis();
            let Some((mut device, from)) = visible_device(tx, mac, actor.partner)? else {
                return Ok(UpdateOutcome::NotFound);
            };
            if let Some(to) = &update.tenant {
                let Some((to_id, _)) = visible_tenant(tx, to.as_str(), actor.partner)? else {
                    return Ok(UpdateOutcome::UnknownTenant);
                };
                if to_id != device.tenant {
                    tx.prepare_cached(
                        "UPDATE devices SET tenant_id = ?2, updated_at = ?3 WHERE mac = ?1",
                    )
                    .and_then(|mut s| s.execute(params![mac.to_string(), to_id, now]))
                    .db()?;
                    audit(
                        tx,
                        now,
                        &actor,
                        "device.move",
                        Some(mac),
                        Some(to.as_str()),
                        Some(serde_json::json!({"from": from, "to": to.as_str()})),
                    )?;
                    device.tenant = to_id;
                }
            }
            if let Some(settings) = update.settings {
                let text = json("device settings", &settings)?;
                tx.prepare_cached(
                    "UPDATE devices SET settings = ?2, updated_at = ?3 WHERE mac = ?1",
                )
                .and_then(|mut s| s.execute(params![mac.to_string(), text, now]))
                .db()?;
                let tenant = update.tenant.as_ref().map_or(from.as_str(), |t| t.as_str());
                audit(
                    tx,
                    now,
                    &actor,
                    "device.update",
                    Some(mac),
                    Some(tenant),
                    None,
                )?;
                device.settings = settings;
            }
            record_change(tx, &Change::Device(mac), now)?;
            Ok(UpdateOutcome::Updated(device))
        })
        .await
    }

    async fn release(&self, mac: Mac, actor: &Actor) -> Result<bool, Error> {
        let actor = actor.clone();
        self.write(move |tx| {
            let now = now_millis();
            let Some((_, tenant)) = visible_device(tx, mac, actor.partner)? else {
                return Ok(false);
            };
            tx.prepare_cached("DELETE FROM devices WHERE mac = ?1")
                .and_then(|mut s| s.execute([mac.to_string()]))
                .db()?;
            audit(
                tx,
                now,
                &actor,
                "device.release",
                Some(mac),
                Some(&tenant),
                None,
            )?;
            record_change(tx, &Change::Device(mac), now)?;
            Ok(true)
        })
        .await
    }

    async fn device_view(
        &self,
        partner: Option<PartnerId>,
        mac: Mac,
    ) -> Result<Option<DeviceView>, Error> {
        self.read(move |conn| {
            let sql =
                format!("{VIEW_SELECT} WHERE d.mac = ?1 AND (?2 IS NULL OR t.partner_id = ?2)");
            conn.prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row(params![mac.to_string(), partner], view_from_row)
                        .optional()
                })
                .db()?
                .map(decode_view)
                .transpose()
        })
        .await
    }

    async fn search_devices(
        &self,
        partner: Option<PartnerId>,
        q: DeviceQuery,
    ) -> Result<Vec<DeviceView>, Error> {
        self.read(move |conn| {
            let sql = format!(
                "{VIEW_SELECT} WHERE (?1 IS NULL OR t.partner_id = ?1) AND d.mac > ?2 \
                 AND (?3 IS NULL OR (d.mac >= ?3 AND d.mac < ?3 || 'g')) AND (?4 IS NULL OR t.name = ?4) \
                 AND (?5 IS NULL OR d.vendor = ?5) AND (?6 IS NULL OR s.last_seen >= ?6) \
                 AND (?7 IS NULL OR s.last_seen < ?7) AND (?8 = 0 OR s.mac IS NULL) ORDER BY d.mac LIMIT ?9"
            );
            let mut stmt = conn.prepare_cached(&sql).db()?;
            let rows = stmt
                .query_map(
                    params![
                        partner,
                        q.after.map(|m| m.to_string()).unwrap_or_default(),
                        q.mac_prefix,
                        q.tenant.as_ref().map(TenantName::as_str),
                        q.vendor.map(Vendor::as_str),
                        q.seen_since,
                        q.seen_before,
                        q.never_seen,
                        q.limit as i64
                    ],
                    view_from_row,
                )
                .db()?
                .collect::<Result<Vec<_>, _>>()
                .db()?;
            rows.into_iter().map(decode_view).collect()
        })
        .await
    }

    async fn audit_log(&self, q: AuditQuery) -> Result<Vec<AuditEntry>, Error> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, at, actor, source, action, mac, tenant, detail FROM audit \
                     WHERE id > ?1 AND (?2 IS NULL OR mac = ?2) AND (?3 IS NULL OR tenant = ?3) ORDER BY id LIMIT ?4",
                )
                .db()?;
            let rows = stmt
                .query_map(
                    params![q.after.unwrap_or(0), q.mac.map(|m| m.to_string()), q.tenant, q.limit as i64],
                    |r| {
                        Ok(AuditEntry {
                            id: r.get(0)?,
                            at: r.get(1)?,
                            actor: r.get(2)?,
                            source: r.get(3)?,
                            action: r.get(4)?,
                            mac: r.get(5)?,
                            tenant: r.get(6)?,
                            detail: r.get(7)?,
                        })
                    },
                )
                .db()?
                .collect::<Result<Vec<_>, _>>()
                .db()?;
            Ok(rows)
        })
        .await
    }

    async fn change_credentials(
        &self,
        mac: Mac,
        change: CredentialChange,
        source: Option<std::net::IpAddr>,
    ) -> Result<Option<DeviceRecord>, Error> {
        self.write(move |tx| change_credentials_in(tx, mac, change, source, now_millis()))
            .await
    }

    async fn change_credentials_many(
        &self,
        changes: Vec<(Mac, CredentialChange, Option<std::net::IpAddr>)>,
    ) -> Result<Vec<Option<DeviceRecord>>, Error> {
        // One transaction, one fsync, for a whole burst of enrolments.
        self.write(move |tx| {
            let now = now_millis();
            changes
                .into_iter()
                .map(|(mac, change, source)| change_credentials_in(tx, mac, change, source, now))
                .collect()
        })
        .await
    }

    async fn open_enrolment(
        &self,
        mac: Mac,
        until: i64,
        actor: &Actor,
    ) -> Result<Option<DeviceRecord>, Error> {
        let actor = actor.clone();
        self.write(move |tx| {
            let now = now_millis();
            let Some((mut device, tenant)) = visible_device(tx, mac, actor.partner)? else {
                return Ok(None);
            };
            tx.prepare_cached("UPDATE devices SET credentials = NULL, enrol_until = ?2, updated_at = ?3 WHERE mac = ?1")
                .and_then(|mut s| s.execute(params![mac.to_string(), until, now]))
                .db()?;
            audit(tx, now, &actor, "device.enrolment.open", Some(mac), Some(&tenant), Some(serde_json::json!({"until": until})))?;
            record_change(tx, &Change::Device(mac), now)?;
            device.credentials = None;
            device.enrol_until = Some(until);
            Ok(Some(device))
        })
        .await
    }

    async fn request_rotation(&self, mac: Mac, actor: &Actor) -> Result<RotationOutcome, Error> {
        let actor = actor.clone();
        self.write(move |tx| {
            let now = now_millis();
            let Some((mut device, tenant)) = visible_device(tx, mac, actor.partner)? else {
                return Ok(RotationOutcome::NotFound);
            };
            let Some(mut credentials) = device.credentials.take() else {
                return Ok(RotationOutcome::NotEnrolled);
            };
            credentials.rotate = true;
            let text = json("credentials", &credentials)?;
            tx.prepare_cached(
                "UPDATE devices SET credentials = ?2, updated_at = ?3 WHERE mac = ?1",
            )
            .and_then(|mut s| s.execute(params![mac.to_string(), text, now]))
            .db()?;
            audit(
                tx,
                now,
                &actor,
                "device.credentials.rotate",
                Some(mac),
                Some(&tenant),
                None,
            )?;
            record_change(tx, &Change::Device(mac), now)?;
            device.credentials = Some(credentials);
            Ok(RotationOutcome::Requested(device))
        })
        .await
    }

    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, Error> {
        let (name, fresh) = (name.to_owned(), fresh.to_vec());
        self.write(move |tx| {
            tx.prepare_cached("INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING")
                .and_then(|mut s| s.execute(params![name, fresh]))
                .db()?;
            tx.prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")
                .and_then(|mut s| s.query_row([name], |r| r.get(0)))
                .db()
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
            enrol_until: None,
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
