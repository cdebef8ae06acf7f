//! Store contents generated straight into a database, not through the API: `devices` devices
//! (one Yealink line account each, about what a desk phone carries) spread over `tenants`
//! tenants `tenant-00000`…, in a scattered MAC order. SQLite is loaded with a rusqlite loop in
//! one transaction, PostgreSQL with binary `COPY`.
//!
//! Writes the store's tables directly, so it follows their columns; the schema itself comes
//! from the store (the database must be migrated). Must not know what a bench measures.

use std::path::Path;

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use zerotouch::domain::{Host, TenantSettings};
use zerotouch::store::sqlite::SqliteStore;

use super::test_database::connect;

/// The first generated MAC (a Yealink prefix).
pub const BASE_MAC: u64 = 0x805e_c000_0000;

/// The i-th generated device's MAC: a permutation of 0..n, so rows arrive in scattered order.
pub fn mac_of(i: usize, n: usize) -> String {
    // 999_983 is prime and does not divide n for the sizes used here.
    let k = (i as u64).wrapping_mul(999_983) % (n.max(1) as u64);
    format!("{:012x}", BASE_MAC + k)
}

/// The j-th tenant's name.
pub fn tenant_name(j: usize) -> String {
    format!("tenant-{j:05}")
}

/// The j-th tenant's settings, as stored.
pub fn tenant_settings(j: usize) -> anyhow::Result<String> {
    let settings = TenantSettings {
        sip_server: Some(Host::parse(&format!("t{j}.cloud.example"))?),
        ..TenantSettings::default()
    };
    Ok(serde_json::to_string(&settings)?)
}

/// One line account and a display name, about what a real desk phone carries, as stored.
pub fn device_settings(i: usize) -> String {
    format!(
        r#"{{"display_name":"Desk {i}","lines":[{{"user":"{}","password":"pw-{i:08}"}}]}}"#,
        1000 + i % 9000
    )
}

/// Creates the SQLite store at `path` and loads it.
pub fn sqlite_load(path: &Path, devices: usize, tenants: usize) -> anyhow::Result<()> {
    // Let the store create its schema, then load with a plain connection.
    drop(SqliteStore::open(path)?);
    let mut conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO tenants (id, name, settings, created_at, updated_at) VALUES (?1, ?2, ?3, 1, 1)",
        )?;
        for j in 0..tenants {
            insert.execute(rusqlite::params![
                j as i64 + 1,
                tenant_name(j),
                tenant_settings(j)?
            ])?;
        }
        let mut insert = tx.prepare(
            "INSERT INTO devices (mac, vendor, tenant_id, settings, claimed_at, updated_at) \
             VALUES (?1, 'yealink', ?2, ?3, 1, 1)",
        )?;
        for i in 0..devices {
            insert.execute(rusqlite::params![
                mac_of(i, devices),
                (i % tenants) as i64 + 1,
                device_settings(i)
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Loads the migrated PostgreSQL database at `url`, then has it analysed.
pub async fn postgres_load(url: &str, devices: usize, tenants: usize) -> anyhow::Result<()> {
    let client = connect(url).await?;
    let mut ids = Vec::with_capacity(tenants);
    let mut names = Vec::with_capacity(tenants);
    let mut settings = Vec::with_capacity(tenants);
    for j in 0..tenants {
        ids.push(j as i64 + 1);
        names.push(tenant_name(j));
        settings.push(tenant_settings(j)?);
    }
    client
        .execute(
            "INSERT INTO tenants (id, name, settings, created_at, updated_at) \
             SELECT id, name, settings, 1, 1 FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, name, settings)",
            &[&ids, &names, &settings],
        )
        .await?;
    client
        .batch_execute("SELECT setval('tenants_id_seq', (SELECT max(id) FROM tenants))")
        .await?;
    let sink = client
        .copy_in(
            "COPY devices (mac, vendor, tenant_id, settings, claimed_at, updated_at) FROM STDIN BINARY",
        )
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[
            Type::TEXT,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::INT8,
            Type::INT8,
        ],
    );
    let mut writer = std::pin::pin!(writer);
    for i in 0..devices {
        let mac = mac_of(i, devices);
        let tenant = (i % tenants) as i64 + 1;
        let settings = device_settings(i);
        writer
            .as_mut()
            .write(&[&mac, &"yealink", &tenant, &settings, &1i64, &1i64])
            .await?;
    }
    writer.finish().await?;
    // What autovacuum would have done by the time a node starts.
    client.batch_execute("VACUUM ANALYZE devices").await?;
    // Separately: several statements in one batch run in a transaction, which VACUUM refuses.
    client.batch_execute("ANALYZE tenants").await?;
    Ok(())
}
