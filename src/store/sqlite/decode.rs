//! SQLite rows to records: the columns each read selects and how a row is read into the
//! store's shared column types (`codec`), which turn them into records.
//!
//! rusqlite's row closures can only fail with rusqlite's error, so a row is first read into
//! owned values here and decoded (which may find it corrupt) after the statement. Must not know
//! operations or transactions.

use rusqlite::Row;

use crate::store::codec::{self, DeviceColumns, TenantColumns};
use crate::store::{
    AuditEntry, AuthFailure, CustomerRecord, DeviceStatus, DeviceView, Error, PartnerRecord,
    TokenRecord,
};

/// A tenant's columns, in [`tenant`]'s order.
pub(super) const TENANT_COLUMNS: &str = "id, name, partner_id, customer_id, settings";

/// A device's columns, in [`device`]'s order.
pub(super) const DEVICE_COLUMNS: &str =
    "mac, vendor, tenant_id, claim_secret, credentials, enrol_until, settings";

/// What a partner sees of devices, in [`view`]'s order.
pub(super) const VIEW_SELECT: &str = "SELECT d.mac, d.vendor, d.tenant_id, d.claim_secret, d.credentials, d.enrol_until, d.settings, t.name, d.claimed_at, d.updated_at, \
     s.last_seen, s.source_ip, s.user_agent, s.model, s.firmware, s.last_file, s.last_outcome, d.enrolment, \
     f.at, f.source_ip, f.user_agent \
     FROM devices d JOIN tenants t ON t.id = d.tenant_id LEFT JOIN device_status s ON s.mac = d.mac \
     LEFT JOIN device_auth_failures f ON f.mac = d.mac";

/// A customer's columns, in [`customer`]'s order.
pub(super) const CUSTOMER_COLUMNS: &str = "id, partner_id, fields, created_at";

/// An API token's columns, in [`token`]'s order.
pub(super) const TOKEN_COLUMNS: &str =
    "id, partner_id, key_id, secret_hash, created_at, revoked_at, name, expires_at, read_only, last_used_at";

/// A partner's columns, in [`partner`]'s order.
pub(super) const PARTNER_COLUMNS: &str = "id, name, created_at";

/// A tenant row ([`TENANT_COLUMNS`]).
pub(super) fn tenant(row: &Row<'_>) -> rusqlite::Result<TenantColumns<String>> {
    Ok(TenantColumns {
        id: row.get(0)?,
        name: row.get(1)?,
        partner: row.get(2)?,
        customer: row.get(3)?,
        settings: row.get(4)?,
    })
}

/// The seven device columns ([`DEVICE_COLUMNS`]) starting at column `at`.
pub(super) fn device_at(row: &Row<'_>, at: usize) -> rusqlite::Result<DeviceColumns<String>> {
    Ok(DeviceColumns {
        mac: row.get(at)?,
        vendor: row.get(at + 1)?,
        tenant: row.get(at + 2)?,
        claim_secret: row.get(at + 3)?,
        credentials: row.get(at + 4)?,
        enrol_until: row.get(at + 5)?,
        settings: row.get(at + 6)?,
    })
}

/// A device row ([`DEVICE_COLUMNS`]).
pub(super) fn device(row: &Row<'_>) -> rusqlite::Result<DeviceColumns<String>> {
    device_at(row, 0)
}

/// A row of [`VIEW_SELECT`], read but not decoded yet.
pub(super) struct RawView {
    device: DeviceColumns<String>,
    tenant: String,
    claimed_at: i64,
    updated_at: i64,
    status: Option<DeviceStatus>,
    enrolment: Option<String>,
    auth_failure: Option<AuthFailure>,
}

/// A row of [`VIEW_SELECT`].
pub(super) fn view(r: &Row<'_>) -> rusqlite::Result<RawView> {
    let seen: Option<i64> = r.get(10)?;
    let status = match seen {
        Some(last_seen) => Some(DeviceStatus {
            last_seen,
            source: r.get(11)?,
            user_agent: r.get(12)?,
            model: r.get(13)?,
            firmware: r.get(14)?,
            last_file: r.get(15)?,
            last_outcome: r.get(16)?,
        }),
        None => None,
    };
    Ok(RawView {
        device: device(r)?,
        tenant: r.get(7)?,
        claimed_at: r.get(8)?,
        updated_at: r.get(9)?,
        status,
        enrolment: r.get(17)?,
        auth_failure: match r.get::<_, Option<i64>>(18)? {
            Some(at) => Some(AuthFailure {
                at,
                source: r.get(19)?,
                user_agent: r.get(20)?,
            }),
            None => None,
        },
    })
}

impl RawView {
    /// The view it holds.
    pub(super) fn decode(self) -> Result<DeviceView, Error> {
        codec::view(
            self.device,
            &self.tenant,
            self.claimed_at,
            self.updated_at,
            self.status,
            self.enrolment.as_deref(),
            self.auth_failure,
        )
    }
}

/// A customer row ([`CUSTOMER_COLUMNS`]), read but not decoded yet.
pub(super) struct RawCustomer(i64, i64, String, i64);

/// A customer row ([`CUSTOMER_COLUMNS`]).
pub(super) fn customer(r: &Row<'_>) -> rusqlite::Result<RawCustomer> {
    Ok(RawCustomer(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

impl RawCustomer {
    /// The customer it holds.
    pub(super) fn decode(self) -> Result<CustomerRecord, Error> {
        codec::customer(self.0, self.1, &self.2, self.3)
    }
}

/// A token row ([`TOKEN_COLUMNS`]).
pub(super) fn token(r: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.get(0)?,
        partner: r.get(1)?,
        key_id: r.get(2)?,
        secret_hash: r.get(3)?,
        created_at: r.get(4)?,
        revoked_at: r.get(5)?,
        name: r.get(6)?,
        expires_at: r.get(7)?,
        read_only: r.get(8)?,
        last_used_at: r.get(9)?,
    })
}

/// A partner row ([`PARTNER_COLUMNS`]).
pub(super) fn partner(r: &Row<'_>) -> rusqlite::Result<PartnerRecord> {
    Ok(PartnerRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
    })
}

/// An audit row (`id, at, actor, source, action, mac, tenant, detail`).
pub(super) fn audit_entry(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
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
}
