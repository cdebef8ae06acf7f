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

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use zerotouch::domain::{DeviceSettings, Mac, TenantName, TenantSettings, Vendor};
use zerotouch::store::sqlite::SqliteStore;
use zerotouch::store::{Actor, ClaimOutcome, ClaimRequest, Store, TenantCreated};

#[path = "harness/mod.rs"]
mod harness;

use harness::cli::{self, Backends, Bench, Flags};
use harness::database::{migrated_store, on_database};
use harness::generated::{self, BASE_MAC};
use harness::test_database::connect;

const USAGE: &str = "\
usage: cargo bench --bench hydrate -- [options]
  --devices N            devices to hydrate (default 1000000)
  --tenants T            tenants they are spread over (default 1000)
  --page P               devices_page size (default 20000)
  --runs R               hydration runs per backend (default 3)
  --claims C             claims per concurrency level (default 2000)
";

const BENCH: Bench = Bench {
    name: "hydrate",
    invocation: "[options]",
    usage: &[USAGE, cli::BACKENDS_USAGE],
    needs_arguments: false,
};

#[derive(Clone)]
struct Options {
    devices: usize,
    tenants: usize,
    page: usize,
    runs: usize,
    claims: usize,
    backends: Backends,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Option<Self>> {
        let mut o = Options {
            devices: 1_000_000,
            tenants: 1_000,
            page: 20_000,
            runs: 3,
            claims: 2_000,
            backends: Backends::from_env(),
        };
        let mut flags = Flags::new(args);
        while let Some(flag) = flags.next_flag() {
            match flag.as_str() {
                "--help" | "-h" => return Ok(None),
                "--devices" => o.devices = flags.number(&flag)?,
                "--tenants" => o.tenants = flags.number(&flag)?,
                "--page" => o.page = flags.number(&flag)?,
                "--runs" => o.runs = flags.number(&flag)?,
                "--claims" => o.claims = flags.number(&flag)?,
                other if o.backends.take(other, &mut flags)? => {}
                other => bail!("unknown option {other}"),
            }
        }
        o.backends.resolve()?;
        if o.tenants == 0 || o.page == 0 {
            bail!("--tenants and --page must be positive");
        }
        Ok(Some(o))
    }
}

fn main() -> ExitCode {
    cli::main(&BENCH, Options::parse, |o| cli::block_on(run(o)))
}

async fn run(o: Options) -> anyhow::Result<()> {
    println!(
        "{} devices over {} tenants, pages of {}, {} CPUs",
        o.devices,
        o.tenants,
        o.page,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if o.backends.sqlite {
        sqlite(&o).await?;
    }
    match &o.backends.postgres {
        Some(url) => postgres(&o, url).await?,
        None => println!("postgres: skipped (no --postgres URL or ZEROTOUCH_TEST_DATABASE_URL)"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Measurements.

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
                        redirect: false,
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

async fn sqlite(o: &Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("zerotouch.db");
    let start = Instant::now();
    let (load_path, devices, tenants) = (path.clone(), o.devices, o.tenants);
    tokio::task::spawn_blocking(move || generated::sqlite_load(&load_path, devices, tenants))
        .await??;
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

async fn postgres(o: &Options, server: &str) -> anyhow::Result<()> {
    let version = connect(server)
        .await?
        .query_one("SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')", &[])
        .await?;
    let (v, fsync, sync): (String, String, String) =
        (version.get(0), version.get(1), version.get(2));
    println!("postgres: server {v}, fsync={fsync}, synchronous_commit={sync}");

    on_database(server, "hydrate", |url| async move {
        let store = migrated_store(&url).await?;
        let start = Instant::now();
        generated::postgres_load(&url, o.devices, o.tenants).await?;
        println!(
            "postgres: generated in {:.1} s (COPY, then VACUUM ANALYZE)",
            start.elapsed().as_secs_f64()
        );
        hydrations("postgres", &store, o).await
    })
    .await?;

    on_database(server, "claims", |url| async move {
        let store: Arc<dyn Store> = Arc::new(migrated_store(&url).await?);
        claims(&format!("postgres (fsync={fsync})"), store, o).await
    })
    .await
}
