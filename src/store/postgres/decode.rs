//! PostgreSQL rows to records: the columns each read selects and how a row's columns are
//! handed to the store's shared column types (`codec`), which turn them into records.
//!
//! A column that cannot be read as the expected type is [`Error::Corrupt`], like a value that
//! cannot be decoded. Must not know operations or transactions.

use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use super::failure::{corrupt, Failure};
use crate::store::codec::{self, DeviceColumns, TenantColumns};
use crate::store::{
    AuditEntry, AuthFailure, ChangeEntry, CustomerRecord, DeviceRecord, DeviceStatus, DeviceView,
    PartnerRecord, TenantRecord, TokenRecord,
};

/// A column, or [`Error::Corrupt`](crate::store::Error::Corrupt) when it cannot be decoded as
/// `T`.
pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, Failure> {
    row.try_get(idx).map_err(|e| corrupt("column", e))
}

/// A tenant's columns, in [`tenant`]'s order.
pub(super) const TENANT_COLUMNS: &str = "id, name, partner_id, customer_id, settings";

/// A device's columns, in [`device`]'s order.
pub(super) const DEVICE_COLUMNS: &str =
    "mac, vendor, tenant_id, claim_secret, credentials, enrol_until, settings";

/// What a partner sees of devices, in [`view`]'s order.
pub(super) const VIEW_SELECT: &str = "SELECT d.mac, d.vendor, d.tenant_id, d.claim_secret, d.credentials, d.enrol_until, d.settings, \
     t.name, d.claimed_at, d.updated_at, \
     s.last_seen, s.source_ip, s.user_agent, s.model, s.firmware, s.last_file, s.last_outcome, d.enrolment, \
     f.at, f.source_ip, f.user_agent \
     FROM devices d JOIN tenants t ON t.id = d.tenant_id LEFT JOIN device_status s ON s.mac = d.mac \
     LEFT JOIN device_auth_failures f ON f.mac = d.mac";

/// A customer's columns, in [`customer`]'s order.
pub(super) const CUSTOMER_COLUMNS: &str = "id, partner_id, fields, created_at";

/// An API token's columns, in [`token`]'s order.
pub(super) const TOKEN_COLUMNS: &str =
    "id, partner_id, key_id, secret_hash, created_at, revoked_at, name, expires_at, read_only, last_used_at";

/// A tenant row ([`TENANT_COLUMNS`]).
pub(super) fn tenant(row: &Row) -> Result<TenantRecord, Failure> {
    Ok(TenantColumns::<&str> {
        id: get(row, 0)?,
        name: get(row, 1)?,
        partner: get(row, 2)?,
        customer: get(row, 3)?,
        settings: get(row, 4)?,
    }
    .decode()?)
}

fn device_columns(row: &Row) -> Result<DeviceColumns<&str>, Failure> {
    Ok(DeviceColumns {
        mac: get(row, 0)?,
        vendor: get(row, 1)?,
        tenant: get(row, 2)?,
        claim_secret: get(row, 3)?,
        credentials: get(row, 4)?,
        enrol_until: get(row, 5)?,
        settings: get(row, 6)?,
    })
}

/// A device from the first seven columns of `row` ([`DEVICE_COLUMNS`]).
pub(super) fn device(row: &Row) -> Result<DeviceRecord, Failure> {
    Ok(device_columns(row)?.decode()?)
}

/// A row of [`VIEW_SELECT`].
pub(super) fn view(row: &Row) -> Result<DeviceView, Failure> {
    let seen: Option<i64> = get(row, 10)?;
    let status = match seen {
        Some(last_seen) => Some(DeviceStatus {
            last_seen,
            source: get(row, 11)?,
            user_agent: get(row, 12)?,
            model: get(row, 13)?,
            firmware: get(row, 14)?,
            last_file: get(row, 15)?,
            last_outcome: get(row, 16)?,
        }),
        None => None,
    };
    Ok(codec::view(
        device_columns(row)?,
        get(row, 7)?,
        get(row, 8)?,
        get(row, 9)?,
        status,
        get::<Option<String>>(row, 17)?.as_deref(),
        match get::<Option<i64>>(row, 18)? {
            Some(at) => Some(AuthFailure {
                at,
                source: get(row, 19)?,
                user_agent: get(row, 20)?,
            }),
            None => None,
        },
    )?)
}

/// A customer row ([`CUSTOMER_COLUMNS`]).
pub(super) fn customer(row: &Row) -> Result<CustomerRecord, Failure> {
    Ok(codec::customer(
        get(row, 0)?,
        get(row, 1)?,
        get(row, 2)?,
        get(row, 3)?,
    )?)
}

/// A token row ([`TOKEN_COLUMNS`]).
pub(super) fn token(row: &Row) -> Result<TokenRecord, Failure> {
    Ok(TokenRecord {
        id: get(row, 0)?,
        partner: get(row, 1)?,
        key_id: get(row, 2)?,
        secret_hash: get(row, 3)?,
        created_at: get(row, 4)?,
        revoked_at: get(row, 5)?,
        name: get(row, 6)?,
        expires_at: get(row, 7)?,
        read_only: get(row, 8)?,
        last_used_at: get(row, 9)?,
    })
}

/// A partner's columns, in [`partner`]'s order.
pub(super) const PARTNER_COLUMNS: &str = "id, name, created_at";

/// A partner row ([`PARTNER_COLUMNS`]).
pub(super) fn partner(row: &Row) -> Result<PartnerRecord, Failure> {
    Ok(PartnerRecord {
        id: get(row, 0)?,
        name: get(row, 1)?,
        created_at: get(row, 2)?,
    })
}

/// A change row (`seq, entity, key`).
pub(super) fn change(row: &Row) -> Result<ChangeEntry, Failure> {
    Ok(codec::change(get(row, 0)?, get(row, 1)?, get(row, 2)?)?)
}

/// An audit row (`id, at, actor, source, action, mac, tenant, detail`).
pub(super) fn audit_entry(row: &Row) -> Result<AuditEntry, Failure> {
    Ok(AuditEntry {
        id: get(row, 0)?,
        at: get(row, 1)?,
        actor: get(row, 2)?,
        source: get(row, 3)?,
        action: get(row, 4)?,
        mac: get(row, 5)?,
        tenant: get(row, 6)?,
        detail: get(row, 7)?,
    })
}
