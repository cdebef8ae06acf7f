//! Phone credentials in PostgreSQL: a phone's own credential changes (enrolment, rotation,
//! reissue, retiring the previous ones), a partner reopening an enrolment window or asking for
//! a rotation, and the server-wide secrets every node shares.
//!
//! How each change transforms a device is the store's shared `rules`; this file holds its SQL
//! and the row lock that makes two nodes' fetches for one MAC take turns. Must not know HTTP
//! Digest or how credentials are generated.

use std::net::IpAddr;

use super::decode::{self, get, DEVICE_COLUMNS};
use super::devices;
use super::failure::corrupt;
use super::tenants;
use super::transaction::Conn;
use super::PostgresStore;
use crate::domain::Mac;
use crate::store::codec::{self, AuditEvent};
use crate::store::rules;
use crate::store::{
    now_millis, Actor, Change, CredentialChange, DeviceRecord, Error, Millis, RotationOutcome,
};

/// Writes a device's credentials (and closes or keeps its enrolment window as `sql` says).
async fn write(
    c: Conn<'_>,
    sql: &str,
    device: &DeviceRecord,
    now: Millis,
) -> Result<(), super::failure::Failure> {
    let text = codec::json("credentials", &device.credentials)?;
    c.execute(sql, &[&device.mac.to_string(), &text, &now])
        .await?;
    Ok(())
}

/// [`Store::change_credentials`](crate::store::Store::change_credentials).
pub(super) async fn change(
    store: &PostgresStore,
    mac: Mac,
    change: CredentialChange,
    source: Option<IpAddr>,
) -> Result<Option<DeviceRecord>, Error> {
    store
        .write("change_credentials", move |tx| {
            let change = change.clone();
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                // The row lock makes concurrent fetches through different nodes take turns:
                // of two phones enrolling one MAC at once, exactly one binds it.
                let sql = format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices WHERE mac = $1 FOR NO KEY UPDATE"
                );
                let Some(row) = c.query_opt(&sql, &[&mac.to_string()]).await? else {
                    return Ok(None);
                };
                let Some(changed) =
                    rules::change_credentials(decode::device(&row)?, change, source, now)
                else {
                    return Ok(None);
                };
                let (device, action) = (changed.device, changed.action);
                let enrolment = changed
                    .enrolment
                    .map(|e| codec::json("enrolment", &e))
                    .transpose()?;
                let credentials = codec::json("credentials", &device.credentials)?;
                c.execute(
                    "UPDATE devices SET credentials = $2, enrol_until = $3, \
                     enrolment = coalesce($4, enrolment), updated_at = $5 WHERE mac = $1",
                    &[
                        &mac.to_string(),
                        &credentials,
                        &device.enrol_until,
                        &enrolment,
                        &now,
                    ],
                )
                .await?;
                if let Some(action) = action {
                    let tenant = tenants::load(c, device.tenant)
                        .await?
                        .map(|t| t.name.to_string());
                    tx.audit(
                        now,
                        &Actor::phone(source),
                        AuditEvent::PhoneCredentials(action, mac, tenant.as_deref()),
                    );
                }
                tx.change(Change::Device(mac));
                Ok(Some(device))
            })
        })
        .await
}

/// [`Store::open_enrolment`](crate::store::Store::open_enrolment).
pub(super) async fn open_enrolment(
    store: &PostgresStore,
    mac: Mac,
    until: Option<Millis>,
    actor: &Actor,
) -> Result<Option<DeviceRecord>, Error> {
    let actor = actor.clone();
    store
        .write("open_enrolment", move |tx| {
            let actor = actor.clone();
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                let Some((device, tenant)) =
                    devices::visible(c, mac, actor.partner, false).await?
                else {
                    return Ok(None);
                };
                c.execute(
                    "UPDATE devices SET credentials = NULL, enrol_until = $2, updated_at = $3 WHERE mac = $1",
                    &[&mac.to_string(), &until, &now],
                )
                .await?;
                tx.audit(now, &actor, AuditEvent::EnrolmentOpened(mac, &tenant, until));
                tx.change(Change::Device(mac));
                Ok(Some(rules::open_enrolment(device, until)))
            })
        })
        .await
}

/// [`Store::request_rotation`](crate::store::Store::request_rotation).
pub(super) async fn request_rotation(
    store: &PostgresStore,
    mac: Mac,
    actor: &Actor,
) -> Result<RotationOutcome, Error> {
    let actor = actor.clone();
    store
        .write("request_rotation", move |tx| {
            let actor = actor.clone();
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                let Some((device, tenant)) = devices::visible(c, mac, actor.partner, false).await?
                else {
                    return Ok(RotationOutcome::NotFound);
                };
                let Some(device) = rules::request_rotation(device) else {
                    return Ok(RotationOutcome::NotEnrolled);
                };
                write(
                    c,
                    "UPDATE devices SET credentials = $2, updated_at = $3 WHERE mac = $1",
                    &device,
                    now,
                )
                .await?;
                tx.audit(now, &actor, AuditEvent::RotationRequested(mac, &tenant));
                tx.change(Change::Device(mac));
                Ok(RotationOutcome::Requested(device))
            })
        })
        .await
}

/// [`Store::secret`](crate::store::Store::secret).
pub(super) async fn secret(
    store: &PostgresStore,
    name: &str,
    fresh: &[u8],
) -> Result<Vec<u8>, Error> {
    let (name, fresh) = (name.to_owned(), fresh.to_vec());
    store
        .write("secret", move |tx| {
            let (name, fresh) = (name.clone(), fresh.clone());
            Box::pin(async move {
                let c = tx.conn();
                // A concurrent first writer on another node wins; everyone reads its value.
                c.execute(
                    "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    &[&name, &fresh],
                )
                .await?;
                match c
                    .query_opt("SELECT value FROM server_secrets WHERE name = $1", &[&name])
                    .await?
                {
                    Some(row) => get(&row, 0),
                    None => Err(corrupt("server secret", "vanished inside its transaction")),
                }
            })
        })
        .await
}
