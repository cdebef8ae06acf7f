//! Phone credentials in SQLite: a phone's own credential changes (enrolment, rotation,
//! reissue, retiring the previous ones), a partner reopening an enrolment window or asking for
//! a rotation, and the server-wide secrets every node shares.
//!
//! How each change transforms a device is the store's shared `rules`; this file holds its SQL.
//! Must not know HTTP Digest or how credentials are generated.

use std::net::IpAddr;

use rusqlite::{params, Transaction};

use super::connection::Db;
use super::{audit, changes, devices, tenants, SqliteStore};
use crate::domain::Mac;
use crate::store::codec::{self, AuditEvent};
use crate::store::rules;
use crate::store::{
    now_millis, Actor, Change, CredentialChange, DeviceRecord, Error, Millis, RotationOutcome,
};

/// Writes a device's credentials (and closes or keeps its enrolment window as the SQL says).
fn write(tx: &Transaction<'_>, sql: &str, device: &DeviceRecord, now: Millis) -> Result<(), Error> {
    let text = codec::json("credentials", &device.credentials)?;
    tx.prepare_cached(sql)
        .and_then(|mut s| s.execute(params![device.mac.to_string(), text, now]))
        .db()?;
    Ok(())
}

/// Applies one credential change made by a phone's fetch inside `tx`.
fn change_in(
    tx: &Transaction<'_>,
    mac: Mac,
    change: CredentialChange,
    source: Option<IpAddr>,
    now: Millis,
) -> Result<Option<DeviceRecord>, Error> {
    let Some(device) = devices::load(tx, mac)? else {
        return Ok(None);
    };
    let Some(changed) = rules::change_credentials(device, change, source, now) else {
        return Ok(None);
    };
    let (device, action) = (changed.device, changed.action);
    let enrolment = changed
        .enrolment
        .map(|e| codec::json("enrolment", &e))
        .transpose()?;
    let credentials = codec::json("credentials", &device.credentials)?;
    tx.prepare_cached(
        "UPDATE devices SET credentials = ?2, enrol_until = ?3, enrolment = coalesce(?4, enrolment), \
         updated_at = ?5 WHERE mac = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            device.mac.to_string(),
            credentials,
            device.enrol_until,
            enrolment,
            now
        ])
    })
    .db()?;
    if let Some(action) = action {
        let tenant = tenants::load(tx, "id = ?1", &device.tenant)?.map(|t| t.name.to_string());
        audit::append(
            tx,
            now,
            &Actor::phone(source),
            AuditEvent::PhoneCredentials(action, mac, tenant.as_deref()),
        )?;
    }
    changes::append(tx, &Change::Device(mac), now)?;
    Ok(Some(device))
}

/// [`Store::change_credentials`](crate::store::Store::change_credentials).
pub(super) async fn change(
    store: &SqliteStore,
    mac: Mac,
    change: CredentialChange,
    source: Option<IpAddr>,
) -> Result<Option<DeviceRecord>, Error> {
    store
        .write(move |tx| change_in(tx, mac, change, source, now_millis()))
        .await
}

/// [`Store::change_credentials_many`](crate::store::Store::change_credentials_many).
pub(super) async fn change_many(
    store: &SqliteStore,
    changes: Vec<(Mac, CredentialChange, Option<IpAddr>)>,
) -> Result<Vec<Option<DeviceRecord>>, Error> {
    // One transaction, one fsync, for a whole burst of enrolments.
    store
        .write(move |tx| {
            let now = now_millis();
            changes
                .into_iter()
                .map(|(mac, change, source)| change_in(tx, mac, change, source, now))
                .collect()
        })
        .await
}

/// [`Store::open_enrolment`](crate::store::Store::open_enrolment).
pub(super) async fn open_enrolment(
    store: &SqliteStore,
    mac: Mac,
    until: Option<Millis>,
    actor: &Actor,
) -> Result<Option<DeviceRecord>, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let now = now_millis();
            let Some((device, tenant)) = devices::visible(tx, mac, actor.partner)? else {
                return Ok(None);
            };
            tx.prepare_cached(
                "UPDATE devices SET credentials = NULL, enrol_until = ?2, updated_at = ?3 WHERE mac = ?1",
            )
            .and_then(|mut s| s.execute(params![mac.to_string(), until, now]))
            .db()?;
            audit::append(tx, now, &actor, AuditEvent::EnrolmentOpened(mac, &tenant, until))?;
            changes::append(tx, &Change::Device(mac), now)?;
            Ok(Some(rules::open_enrolment(device, until)))
        })
        .await
}

/// [`Store::request_rotation`](crate::store::Store::request_rotation).
pub(super) async fn request_rotation(
    store: &SqliteStore,
    mac: Mac,
    actor: &Actor,
) -> Result<RotationOutcome, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let now = now_millis();
            let Some((device, tenant)) = devices::visible(tx, mac, actor.partner)? else {
                return Ok(RotationOutcome::NotFound);
            };
            let Some(device) = rules::request_rotation(device) else {
                return Ok(RotationOutcome::NotEnrolled);
            };
            write(
                tx,
                "UPDATE devices SET credentials = ?2, updated_at = ?3 WHERE mac = ?1",
                &device,
                now,
            )?;
            audit::append(tx, now, &actor, AuditEvent::RotationRequested(mac, &tenant))?;
            changes::append(tx, &Change::Device(mac), now)?;
            Ok(RotationOutcome::Requested(device))
        })
        .await
}

/// [`Store::secret`](crate::store::Store::secret).
pub(super) async fn secret(
    store: &SqliteStore,
    name: &str,
    fresh: &[u8],
) -> Result<Vec<u8>, Error> {
    let (name, fresh) = (name.to_owned(), fresh.to_vec());
    store
        .write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![name, fresh]))
            .db()?;
            tx.prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")
                .and_then(|mut s| s.query_row([name], |r| r.get(0)))
                .db()
        })
        .await
}
