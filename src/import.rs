//! Importing tenants and devices from a document: the `import` command and, later, the
//! partner API's bulk import share this path.
//!
//! Per-row semantics: every row is checked on its own and gets its own result; rows that pass
//! are applied together in one store transaction, rows that fail are reported with a reason
//! and change nothing. A document that is not valid JSON of the expected shape is refused as a
//! whole. Knows nothing of HTTP or the registry.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{
    check_claimable, ClaimRefusal, DeviceSettings, OuiTable, TenantName, TenantSettings, VendorSet,
};
use crate::store::{self, Actor, ImportBatch, ImportDevice, RowOutcome, Store};

/// Why a document could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not JSON, or not `{"tenants": [...], "devices": [...]}`.
    #[error("malformed import document: {0}")]
    Malformed(String),
    /// The store failed; nothing was applied.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// What happened to one row.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RowResult {
    /// 0-based position in its list.
    pub row: usize,
    /// The tenant name or MAC as given (normalised when valid).
    pub key: String,
    /// `created`, `updated` or `refused`.
    pub status: &'static str,
    /// Stable reason code when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// Human-readable reason when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Results of an import, one per row.
#[derive(Clone, Debug, Serialize, Default, PartialEq)]
pub struct Report {
    /// Tenant rows.
    pub tenants: Vec<RowResult>,
    /// Device rows.
    pub devices: Vec<RowResult>,
    /// Rows applied.
    pub applied: usize,
    /// Rows refused.
    pub refused: usize,
    /// What the store committed, for caches to apply.
    #[serde(skip)]
    pub committed: crate::store::ImportResult,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    tenants: Vec<Value>,
    #[serde(default)]
    devices: Vec<Value>,
}

/// One device row as written in a document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceRow {
    mac: String,
    tenant: String,
    #[serde(default)]
    claim_code: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    lines: Vec<crate::domain::LineAccount>,
    /// Hours the enrolment window a new claim opens stays open (default 168: 7 days).
    #[serde(default)]
    enrolment_hours: Option<u32>,
}

/// The enrolment window in milliseconds, from hours given: the store's one rule, which the
/// partner API also reaches through here.
pub use crate::store::rules::enrolment_ms;

fn refused(row: usize, key: String, code: &'static str, reason: String) -> RowResult {
    RowResult {
        row,
        key,
        status: "refused",
        code: Some(code),
        reason: Some(reason),
    }
}

fn claim_code(e: &ClaimRefusal) -> &'static str {
    match e {
        ClaimRefusal::Mac(_) => "invalid_mac",
        ClaimRefusal::UnsupportedVendor(_) => "unsupported_vendor",
        ClaimRefusal::MissingClaimCode | ClaimRefusal::MalformedClaimCode => "invalid_claim_code",
        ClaimRefusal::ClaimCodeMismatch => "claim_code_mismatch",
    }
}

/// A row checked before it reaches the store.
enum Checked<T> {
    Ok(T),
    Refused(RowResult),
}

fn check_tenant(
    row: usize,
    value: Value,
    seen: &mut HashSet<TenantName>,
) -> Checked<(TenantName, TenantSettings)> {
    let Value::Object(mut map) = value else {
        return Checked::Refused(refused(
            row,
            String::new(),
            "invalid_row",
            "a tenant row must be an object".into(),
        ));
    };
    let name = match map.remove("name") {
        Some(Value::String(s)) => s,
        _ => {
            return Checked::Refused(refused(
                row,
                String::new(),
                "invalid_row",
                "name is required and must be a string".into(),
            ))
        }
    };
    let name = match TenantName::parse(&name) {
        Ok(n) => n,
        Err(e) => {
            return Checked::Refused(refused(row, name, "invalid_tenant_name", e.to_string()))
        }
    };
    if !seen.insert(name.clone()) {
        return Checked::Refused(refused(
            row,
            name.to_string(),
            "duplicate",
            "the same tenant appears earlier in this document".into(),
        ));
    }
    let settings: TenantSettings = match serde_json::from_value(Value::Object(map)) {
        Ok(s) => s,
        Err(e) => {
            return Checked::Refused(refused(row, name.to_string(), "invalid_row", e.to_string()))
        }
    };
    if let Err(e) = crate::vendors::validate_tenant(&settings) {
        return Checked::Refused(refused(
            row,
            name.to_string(),
            "invalid_setting",
            e.to_string(),
        ));
    }
    Checked::Ok((name, settings))
}

fn check_device(row: usize, value: Value, ouis: &OuiTable) -> Checked<ImportDevice> {
    let given_mac = value
        .get("mac")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let d: DeviceRow = match serde_json::from_value(value) {
        Ok(d) => d,
        Err(e) => return Checked::Refused(refused(row, given_mac, "invalid_row", e.to_string())),
    };
    let device = match check_claimable(&d.mac, d.claim_code.as_deref(), ouis) {
        Ok(c) => c,
        Err(e) => {
            return Checked::Refused(refused(
                row,
                d.mac,
                claim_code(&e),
                format!("could not be registered: {e}"),
            ))
        }
    };
    let tenant = match TenantName::parse(&d.tenant) {
        Ok(t) => t,
        Err(e) => {
            return Checked::Refused(refused(
                row,
                device.mac.to_string(),
                "unknown_tenant",
                e.to_string(),
            ))
        }
    };
    let settings = DeviceSettings {
        display_name: d.display_name,
        lines: d.lines,
        ..DeviceSettings::default()
    };
    if let Err(e) = crate::vendors::validate_device(device.vendor, &settings) {
        return Checked::Refused(refused(
            row,
            device.mac.to_string(),
            "invalid_setting",
            e.to_string(),
        ));
    }
    Checked::Ok(ImportDevice {
        redirect: false,
        enrol_until: Some(crate::store::now_millis() + enrolment_ms(d.enrolment_hours)),
        row,
        mac: device.mac,
        vendor: device.vendor,
        claim_code: device.claim_code,
        tenant,
        settings,
    })
}

/// A stage of an import, as [`Progress`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Each row is checked on its own; one [`Progress::row`] per row.
    Checking,
    /// The rows that passed are written in one store transaction: no rows reported, it ends
    /// when the transaction does.
    Committing,
}

/// What a long import reports while it runs. The command line draws it on a terminal; the API
/// and tests pass [`Silent`].
pub trait Progress: Sync {
    /// `stage` begins and goes through `rows` rows.
    fn stage(&self, stage: Stage, rows: u64);
    /// One more row of the current stage is done.
    fn row(&self);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _: Stage, _: u64) {}
    fn row(&self) {}
}

/// Parses and applies a JSON import document (tenants and devices) as `actor`.
pub async fn import_json(
    store: &dyn Store,
    ouis: &OuiTable,
    document: &[u8],
    actor: &Actor,
) -> Result<Report, Error> {
    import_json_reporting(store, ouis, VendorSet::EMPTY, document, actor, &Silent).await
}

/// [`import_json`], telling `progress` how far it got; new claims of `redirects`' vendors are
/// queued for registration with their redirect services.
pub async fn import_json_reporting(
    store: &dyn Store,
    ouis: &OuiTable,
    redirects: VendorSet,
    document: &[u8],
    actor: &Actor,
    progress: &dyn Progress,
) -> Result<Report, Error> {
    let (tenants, devices) = json_rows(document)?;
    apply(store, ouis, redirects, tenants, devices, actor, progress).await
}

/// Reads a JSON import document into its tenant rows and device rows, not yet checked. A
/// document that is not an object `{"tenants": [...], "devices": [...]}` is refused whole.
pub fn json_rows(document: &[u8]) -> Result<(Vec<Value>, Vec<Value>), Error> {
    // serde would also read a struct from an array; the document must be an object.
    if document.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::Malformed(
            "expected a JSON object {\"tenants\": [...], \"devices\": [...]}".into(),
        ));
    }
    let doc: Document =
        serde_json::from_slice(document).map_err(|e| Error::Malformed(e.to_string()))?;
    Ok((doc.tenants, doc.devices))
}

/// Applies device rows (objects shaped like `POST /devices` bodies) as `actor`; new claims of
/// `redirects`' vendors are queued for registration with their redirect services.
pub async fn import_devices(
    store: &dyn Store,
    ouis: &OuiTable,
    redirects: VendorSet,
    rows: Vec<Value>,
    actor: &Actor,
) -> Result<Report, Error> {
    apply(store, ouis, redirects, Vec::new(), rows, actor, &Silent).await
}

/// CSV columns a device import may have; `mac` and `tenant` are required.
pub const CSV_COLUMNS: &[&str] = &[
    "mac",
    "tenant",
    "claim_code",
    "display_name",
    "line_user",
    "line_auth_user",
    "line_password",
    "line_display_name",
    "enrolment_hours",
];

/// Reads a CSV device import (header row first, columns from [`CSV_COLUMNS`] in any order)
/// into device rows. Empty cells are absent values.
pub fn csv_rows(document: &[u8]) -> Result<Vec<Value>, Error> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(document);
    let header = reader
        .headers()
        .map_err(|e| Error::Malformed(format!("CSV header: {e}")))?
        .clone();
    for name in header.iter() {
        if !CSV_COLUMNS.contains(&name) {
            return Err(Error::Malformed(format!(
                "unknown CSV column {name:?}; expected some of {}",
                CSV_COLUMNS.join(", ")
            )));
        }
    }
    for required in ["mac", "tenant"] {
        if !header.iter().any(|h| h == required) {
            return Err(Error::Malformed(format!(
                "CSV column {required:?} is required"
            )));
        }
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Error::Malformed(format!("CSV row {i}: {e}")))?;
        let mut row = serde_json::Map::new();
        let mut line = serde_json::Map::new();
        for (name, value) in header.iter().zip(record.iter()) {
            if value.is_empty() {
                continue;
            }
            match name.strip_prefix("line_") {
                // line_user, line_password, …: the first line account's fields.
                Some(field) => {
                    line.insert(field.to_owned(), Value::String(value.to_owned()));
                }
                None if name == "enrolment_hours" => {
                    let hours = value
                        .parse::<u32>()
                        .map(Value::from)
                        .unwrap_or_else(|_| Value::String(value.to_owned()));
                    row.insert(name.to_owned(), hours);
                }
                None => {
                    row.insert(name.to_owned(), Value::String(value.to_owned()));
                }
            }
        }
        if !line.is_empty() {
            row.insert("lines".into(), Value::Array(vec![Value::Object(line)]));
        }
        rows.push(Value::Object(row));
    }
    Ok(rows)
}

/// Rows checked one by one, before anything reaches the store.
#[derive(Debug)]
pub struct Prepared {
    /// The rows that passed, for the store to apply in one transaction.
    pub batch: ImportBatch,
    /// One result per tenant row, in row order: refused rows are final, the others (status
    /// `""`) wait for the store's outcome.
    pub tenants: Vec<RowResult>,
    /// One result per device row, in row order, likewise.
    pub devices: Vec<RowResult>,
}

/// Checks every row on its own (shape, names, MACs and vendors, claim codes, settings)
/// without touching the store: what an import does before its one transaction.
pub fn prepare(
    ouis: &OuiTable,
    tenants: Vec<Value>,
    devices: Vec<Value>,
    actor: &Actor,
) -> Prepared {
    prepare_reporting(ouis, tenants, devices, actor, &Silent)
}

fn prepare_reporting(
    ouis: &OuiTable,
    tenants: Vec<Value>,
    devices: Vec<Value>,
    actor: &Actor,
    progress: &dyn Progress,
) -> Prepared {
    progress.stage(Stage::Checking, (tenants.len() + devices.len()) as u64);
    let mut batch = ImportBatch {
        actor: actor.clone(),
        tenants: Vec::new(),
        devices: Vec::new(),
    };
    let mut seen = HashSet::new();
    let pending = |row, key: String| RowResult {
        row,
        key,
        status: "",
        code: None,
        reason: None,
    };
    let mut tenant_results = Vec::with_capacity(tenants.len());
    for (row, value) in tenants.into_iter().enumerate() {
        match check_tenant(row, value, &mut seen) {
            Checked::Ok((name, settings)) => {
                tenant_results.push(pending(row, name.to_string()));
                batch.tenants.push((row, name, settings));
            }
            Checked::Refused(r) => tenant_results.push(r),
        }
        progress.row();
    }
    let mut device_results = Vec::with_capacity(devices.len());
    for (row, value) in devices.into_iter().enumerate() {
        match check_device(row, value, ouis) {
            Checked::Ok(d) => {
                device_results.push(pending(row, d.mac.to_string()));
                batch.devices.push(d);
            }
            Checked::Refused(r) => device_results.push(r),
        }
        progress.row();
    }
    Prepared {
        batch,
        tenants: tenant_results,
        devices: device_results,
    }
}

async fn apply(
    store: &dyn Store,
    ouis: &OuiTable,
    redirects: VendorSet,
    tenants: Vec<Value>,
    devices: Vec<Value>,
    actor: &Actor,
    progress: &dyn Progress,
) -> Result<Report, Error> {
    let Prepared {
        mut batch,
        tenants: mut tenant_results,
        devices: mut device_results,
    } = prepare_reporting(ouis, tenants, devices, actor, progress);
    for d in &mut batch.devices {
        d.redirect = redirects.contains(d.vendor);
    }
    progress.stage(
        Stage::Committing,
        (batch.tenants.len() + batch.devices.len()) as u64,
    );
    let committed = store.import(batch).await?;
    settle(&mut tenant_results, &committed.tenants);
    settle(&mut device_results, &committed.devices);
    let mut report = Report {
        tenants: tenant_results,
        devices: device_results,
        ..Report::default()
    };
    for r in report.tenants.iter().chain(&report.devices) {
        if r.status == "refused" {
            report.refused += 1;
        } else {
            report.applied += 1;
        }
    }
    report.committed = committed;
    Ok(report)
}

fn settle(results: &mut [RowResult], outcomes: &[(usize, RowOutcome)]) {
    for &(row, outcome) in outcomes {
        let Some(r) = results.get_mut(row) else {
            continue;
        };
        let refuse = |code, reason: String| refused(row, r.key.clone(), code, reason);
        *r = match outcome {
            RowOutcome::Created => RowResult {
                status: "created",
                ..r.clone()
            },
            RowOutcome::Updated => RowResult {
                status: "updated",
                ..r.clone()
            },
            RowOutcome::AlreadyInUse => {
                refuse("already_in_use", format!("{} is already in use", r.key))
            }
            RowOutcome::UnknownTenant => refuse("unknown_tenant", "tenant not found".into()),
            RowOutcome::NameTaken => refuse("name_not_available", "name not available".into()),
            RowOutcome::ClaimCodeMismatch => refuse(
                "claim_code_mismatch",
                ClaimRefusal::ClaimCodeMismatch.to_string(),
            ),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    /// Records what an import reports.
    #[derive(Default)]
    struct Recorded(std::sync::Mutex<Vec<(Stage, u64, u64)>>);

    impl Progress for Recorded {
        fn stage(&self, stage: Stage, rows: u64) {
            self.0.lock().unwrap().push((stage, rows, 0));
        }
        fn row(&self) {
            if let Some(last) = self.0.lock().unwrap().last_mut() {
                last.2 += 1;
            }
        }
    }

    #[tokio::test]
    async fn progress_counts_every_row_checked_then_the_rows_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let doc = br#"{"tenants": [{"name":"sales","sip_server":"sales.cloud.example"}],
            "devices": [{"mac":"80:5E:C0:17:DE:13","tenant":"sales"},
                        {"mac":"not a mac","tenant":"sales"}]}"#;
        let recorded = Recorded::default();
        let report = import_json_reporting(
            &store,
            &OuiTable::default(),
            VendorSet::EMPTY,
            doc,
            &Actor::cli(),
            &recorded,
        )
        .await
        .unwrap();
        assert_eq!((report.applied, report.refused), (2, 1), "{report:?}");
        assert_eq!(
            *recorded.0.lock().unwrap(),
            [(Stage::Checking, 3, 3), (Stage::Committing, 2, 0)]
        );
    }

    #[tokio::test]
    async fn per_row_results() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let doc = br#"{
            "tenants": [
                {"name":"sales","sip_server":"sales.cloud.example","keepalive_seconds":30,"language":"fr","timezone":"Europe/Paris","ntp_server":"pool.ntp.org",
                 "firmware":[{"vendor":"yealink","model":"T46S","version":"66.86.0.15","url":"https://fw.example/T46S-66.86.0.15.rom"}]},
                {"name":"bad name","sip_server":"x.example"},
                {"name":"support","sip_server":"support.cloud.example","colour":"red"},
                {"name":"sales","sip_server":"other.example"}
            ],
            "devices": [
                {"mac":"80:5E:C0:17:DE:13","tenant":"sales"},
                {"mac":"80:5E:C0:17:DE","tenant":"sales"},
                {"mac":"00:11:22:33:44:55","tenant":"sales"},
                {"mac":"80:5E:C0:17:DE:14","tenant":"nowhere"},
                {"mac":"7C2F80E0D605","tenant":"sales"},
                {"mac":"7C2F80E0D605","tenant":"sales","claim_code":"AB12"}
            ]
        }"#;
        let report = import_json(&store, &OuiTable::default(), doc, &Actor::cli())
            .await
            .unwrap();
        let codes = |rows: &[RowResult]| {
            rows.iter()
                .map(|r| r.code.unwrap_or(r.status))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            codes(&report.tenants),
            ["created", "invalid_tenant_name", "invalid_row", "duplicate"]
        );
        assert_eq!(
            codes(&report.devices),
            [
                "created",
                "invalid_mac",
                "unsupported_vendor",
                "unknown_tenant",
                "invalid_claim_code",
                "created"
            ]
        );
        assert_eq!((report.applied, report.refused), (3, 7));
        assert!(report.tenants[2]
            .reason
            .as_deref()
            .unwrap()
            .contains("colour"));

        let again = import_json(&store, &OuiTable::default(), br#"{"tenants":[{"name":"support","sip_server":"s.example"}],
            "devices":[{"mac":"805ec017de13","tenant":"support"},{"mac":"805ec017de13","tenant":"sales"}]}"#, &Actor::cli()).await.unwrap();
        assert_eq!(codes(&again.devices), ["already_in_use", "updated"]);
    }

    #[tokio::test]
    async fn malformed_documents_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        for doc in [
            &b"{"[..],
            b"[]",
            br#"{"tenants":{}}"#,
            br#"{"devices":[],"extra":1}"#,
        ] {
            assert!(matches!(
                import_json(&store, &OuiTable::default(), doc, &Actor::cli()).await,
                Err(Error::Malformed(_))
            ));
        }
        assert!(store.tenants().await.unwrap().is_empty());
    }
}
