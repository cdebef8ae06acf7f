//! Store backends compared: hydration of a million devices, and claims per second.
//!
//! ```text
//! .ci/postgres cargo bench --bench hydrate -- [--devices N] [--tenants T] [--page P]
//!     [--runs R] [--claims C] [--only sqlite|postgres] [--postgres URL]
//! ```
//!
//! Hydration: N devices (default 1,000,000) over T tenants (1,000) are generated straight into
//! each backend, not through the API: a rusqlite loop in one transaction for SQLite, binary
//! `COPY` for PostgreSQL, in a scattered MAC order. Then all of them are read back the way
//! `Registry::hydrate` does, `Store::devices_page` in keyset pages of P (20,000), R times (3).
//! Claims: C claims (2,000) of new MACs through `Store::claim`, with 1 and then 8 concurrent
//! callers, on a fresh database.
//!
//! PostgreSQL needs a server: `--postgres URL` or `ZEROTOUCH_TEST_DATABASE_URL` (a superuser
//! URL; a database `zt_bench_<random>` is created and dropped). `.ci/postgres` provides a
//! throwaway one (with `fsync=off`; `ZEROTOUCH_PG_DURABLE=1 .ci/postgres …` keeps fsync on).

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use zerotouch::domain::{DeviceSettings, Host, Mac, TenantName, TenantSettings, Vendor};
use zerotouch::store::postgres::{PostgresOptions, PostgresStore};
use zerotouch::store::sqlite::SqliteStore;
use zerotouch::store::{Actor, ClaimOutcome, ClaimRequest, Store, TenantCreated};

const USAGE: &str = "\
usage: cargo bench --bench hydrate -- [options]
  --devices N            devices to hydrate (default 1000000)
  --tenants T            tenants they are spread over (default 1000)
  --page P               devices_page size (default 20000)
  --runs R               hydration runs per backend (default 3)
  --claims C             claims per concurrency level (default 2000)
  --only sqlite|postgres one backend only
  --postgres URL         superuser URL of a PostgreSQL server (default: $ZEROTOUCH_TEST_DATABASE_URL)
";

#[derive(Clone)]
struct Options {
    devices: usize,
    tenants: usize,
    page: usize,
    runs: usize,
    claims: usize,
    sqlite: bool,
    postgres: Option<String>,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Option<Self>> {
        let mut o = Options {
            devices: 1_000_000,
            tenants: 1_000,
            page: 20_000,
            runs: 3,
            claims: 2_000,
            sqlite: true,
            postgres: std::env::var("ZEROTOUCH_TEST_DATABASE_URL").ok(),
        };
        let mut only = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || it.next().with_context(|| format!("{a} needs a value"));
            match a.as_str() {
                "--bench" => {}
                "--help" | "-h" => return Ok(None),
                "--devices" => o.devices = value()?.parse()?,
                "--tenants" => o.tenants = value()?.parse()?,
                "--page" => o.page = value()?.parse()?,
                "--runs" => o.runs = value()?.parse()?,
                "--claims" => o.claims = value()?.parse()?,
                "--only" => only = Some(value()?.clone()),
                "--postgres" => o.postgres = Some(value()?.clone()),
                other => bail!("unknown option {other}"),
            }
        }
        match only.as_deref() {
            None => {}
            Some("sqlite") => o.postgres = None,
            Some("postgres") => {
                o.sqlite = false;
                if o.postgres.is_none() {
                    bail!("--only postgres needs --postgres URL or ZEROTOUCH_TEST_DATABASE_URL");
                }
            }
            Some(other) => bail!("--only sqlite or postgres, not {other}"),
        }
        if o.tenants == 0 || o.page == 0 {
            bail!("--tenants and --page must be positive");
        }
        Ok(Some(o))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Test runners (cargo test --benches, cargo nextest --all-targets) run bench binaries to
    // list and run tests: a benchmark is not a test, so list none and do nothing.
    if args.iter().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    if args.is_empty() {
        eprintln!("hydrate is a benchmark: run it with `cargo bench --bench hydrate -- [options]`");
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("hydrate: {e:#}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
        .and_then(|rt| rt.block_on(run(options)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hydrate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(o: Options) -> anyhow::Result<()> {
    println!(
        "{} devices over {} tenants, pages of {}, {} CPUs",
        o.devices,
        o.tenants,
        o.page,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if o.sqlite {
        sqlite(&o).await?;
    }
    match &o.postgres {
        Some(url) => postgres(&o, url).await?,
        None => println!("postgres: skipped (no --postgres URL or ZEROTOUCH_TEST_DATABASE_URL)"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Generated data.

const BASE_MAC: u64 = 0x805e_c000_0000;

/// The i-th generated device's MAC: a permutation of 0..n, so rows arrive in scattered order.
fn mac_of(i: usize, n: usize) -> String {
    // 999_983 is prime and does not divide n for the sizes used here.
    let k = (i as u64).wrapping_mul(999_983) % (n.max(1) as u64);
    format!("{:012x}", BASE_MAC + k)
}

fn tenant_settings(j: usize) -> anyhow::Result<String> {
    let settings = TenantSettings {
        sip_server: Some(Host::parse(&format!("t{j}.cloud.example"))?),
        ..TenantSettings::default()
    };
    Ok(serde_json::to_string(&settings)?)
}

/// One line account and a display name, about what a real desk phone carries.
fn device_settings(i: usize) -> String {
    format!(
        r#"{{"display_name":"Desk {i}","lines":[{{"user":"{}","password":"pw-{i:08}"}}]}}"#,
        1000 + i % 9000
    )
}

fn tenant_name(j: usize) -> String {
    format!("tenant-{j:05}")
}

async fn hydrate(store: &dyn Store, page: usize) -> anyhow::Result<(usize, Duration)> {
    let start = Instant::now();
    let mut after = None;
    let mut count = 0;
    loop {
        let devices = store.devices_page(after, page).await?;
        count += devices.len();
        let full = devices.len() == page;
        after = devices.last().map(|d| d.mac);
        if !full {
            return Ok((count, start.elapsed()));
        }
    }
}

async fn hydrations(backend: &str, store: &dyn Store, o: &Options) -> anyhow::Result<()> {
    let start = Instant::now();
    let tenants = store.tenants().await?.len();
    println!(
        "{backend}: tenants() read {tenants} tenants in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let mut times = Vec::new();
    for run in 1..=o.runs {
        let (count, took) = hydrate(store, o.page).await?;
        if count != o.devices {
            bail!(
                "{backend}: hydrated {count} devices, expected {}",
                o.devices
            );
        }
        println!(
            "{backend}: hydration run {run}: {count} devices in {:.2} s ({:.0} devices/s)",
            took.as_secs_f64(),
            count as f64 / took.as_secs_f64()
        );
        times.push(took);
    }
    times.sort();
    if let Some(median) = times.get(times.len() / 2) {
        println!("{backend}: hydration median {:.2} s", median.as_secs_f64());
    }
    Ok(())
}

async fn claims(backend: &str, store: Arc<dyn Store>, o: &Options) -> anyhow::Result<()> {
    match store
        .create_tenant(
            TenantName::parse("bench")?,
            None,
            TenantSettings::default(),
            &Actor::cli(),
        )
        .await?
    {
        TenantCreated::Created(_) => {}
        other => bail!("{backend}: creating the bench tenant: {other:?}"),
    }
    let mut first = 0x7c00_0000u64;
    for concurrency in [1usize, 8] {
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (store, next, total) = (store.clone(), next.clone(), o.claims);
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return Ok::<(), anyhow::Error>(());
                    }
                    let mac = Mac::parse(&format!("{:012x}", BASE_MAC + first + i as u64))?;
                    let request = ClaimRequest {
                        mac,
                        vendor: Vendor::Yealink,
                        claim_code: None,
                        tenant: TenantName::parse("bench")?,
                        settings: DeviceSettings::default(),
                        enrol_until: None,
                    };
                    match store.claim(request, &Actor::cli()).await? {
                        ClaimOutcome::Created(_) => {}
                        other => bail!("claim of {mac}: {other:?}"),
                    }
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        let took = start.elapsed();
        println!(
            "{backend}: {} claims with {concurrency} concurrent caller(s) in {:.2} s: {:.0} claims/s",
            o.claims,
            took.as_secs_f64(),
            o.claims as f64 / took.as_secs_f64()
        );
        first += o.claims as u64;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// SQLite.

fn sqlite_load(path: &Path, o: &Options) -> anyhow::Result<()> {
    // Let the store create its schema, then load with a plain connection.
    drop(SqliteStore::open(path)?);
    let mut conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO tenants (id, name, settings, created_at, updated_at) VALUES (?1, ?2, ?3, 1, 1)",
        )?;
        for j in 0..o.tenants {
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
        for i in 0..o.devices {
            insert.execute(rusqlite::params![
                mac_of(i, o.devices),
                (i % o.tenants) as i64 + 1,
                device_settings(i)
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

async fn sqlite(o: &Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("zerotouch.db");
    let start = Instant::now();
    let (load_path, options) = (path.clone(), o.clone());
    tokio::task::spawn_blocking(move || sqlite_load(&load_path, &options)).await??;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "sqlite: generated in {:.1} s ({} MB file)",
        start.elapsed().as_secs_f64(),
        size / 1_000_000
    );
    let store = SqliteStore::open(&path)?;
    hydrations("sqlite", &store, o).await?;
    drop(store);

    let fresh = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&fresh.path().join("claims.db"))?);
    claims("sqlite (synchronous=FULL)", store, o).await
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL.

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = base
        .split_once("://")
        .context("the PostgreSQL URL must be postgres://…")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    Ok(match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    })
}

async fn admin(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| "connecting to the PostgreSQL server".to_string())?;
    tokio::spawn(connection);
    Ok(client)
}

/// A throwaway database, dropped when the bench ends (also after a failure).
struct BenchDatabase {
    server: String,
    name: String,
    url: String,
}

impl BenchDatabase {
    async fn create(server: &str, what: &str) -> anyhow::Result<Self> {
        let name = format!("zt_bench_{what}_{}", std::process::id());
        let client = admin(server).await?;
        // One statement per call: several in one batch would run in a transaction, which
        // DROP DATABASE refuses.
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        Ok(Self {
            server: server.to_owned(),
            url: with_database(server, &name)?,
            name,
        })
    }

    async fn store(&self) -> anyhow::Result<PostgresStore> {
        let store = PostgresStore::connect(&self.url, PostgresOptions::default()).await?;
        store.migrate().await?;
        Ok(store)
    }

    async fn drop(self) -> anyhow::Result<()> {
        admin(&self.server)
            .await?
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

async fn postgres_load(url: &str, o: &Options) -> anyhow::Result<()> {
    let client = admin(url).await?;
    let mut ids = Vec::with_capacity(o.tenants);
    let mut names = Vec::with_capacity(o.tenants);
    let mut settings = Vec::with_capacity(o.tenants);
    for j in 0..o.tenants {
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
    for i in 0..o.devices {
        let mac = mac_of(i, o.devices);
        let tenant = (i % o.tenants) as i64 + 1;
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

async fn postgres(o: &Options, server: &str) -> anyhow::Result<()> {
    let version = admin(server)
        .await?
        .query_one("SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')", &[])
        .await?;
    let (v, fsync, sync): (String, String, String) =
        (version.get(0), version.get(1), version.get(2));
    println!("postgres: server {v}, fsync={fsync}, synchronous_commit={sync}");

    let db = BenchDatabase::create(server, "hydrate").await?;
    let outcome = async {
        let store = db.store().await?;
        let start = Instant::now();
        postgres_load(&db.url, o).await?;
        println!(
            "postgres: generated in {:.1} s (COPY, then VACUUM ANALYZE)",
            start.elapsed().as_secs_f64()
        );
        hydrations("postgres", &store, o).await
    }
    .await;
    db.drop().await?;
    outcome?;

    let db = BenchDatabase::create(server, "claims").await?;
    let outcome = async {
        let store: Arc<dyn Store> = Arc::new(db.store().await?);
        claims(&format!("postgres (fsync={fsync})"), store, o).await
    }
    .await;
    db.drop().await?;
    outcome
}
