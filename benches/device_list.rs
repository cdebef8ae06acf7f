//! A partner's device list and MAC search through the real HTTPS partner API, in a big store.
//!
//! `cargo bench --bench device_list -- [options]` generates a store of `--devices` devices over
//! `--tenants` tenants straight into SQLite (and PostgreSQL, given a server), starts the server
//! in-process on it, gives one partner every tenth tenant (so `--devices 1000000 --tenants 1000`
//! gives it 100,000 devices among a million), and times, over one keep-alive connection with the
//! partner's token: the first page, pages deep in the list (following `next`), MAC-prefix
//! searches, searches by any part of a MAC, a tenant's page, a vendor-filtered page, and the whole list exported as CSV (at
//! most 5 times). Each request's time is measured at the
//! client, so it is an upper bound of the server's time. Every answer is checked (status 200,
//! devices only of the partner's tenants).

// A bench harness: a failed set-up step should stop it loudly.
#![allow(clippy::expect_used)]

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use zerotouch::app::{self, Listeners};
use zerotouch::config::{Config, Knobs};

#[path = "harness/mod.rs"]
mod harness;

use harness::cli::{self, Backends, Bench, Flags};
use harness::database::on_database;
use harness::generated::{self, tenant_name};
use harness::test_database::connect;

const USAGE: &str = "\
usage: cargo bench --bench device_list -- [options]
  --devices N            devices in the store (default 1000000)
  --tenants T            tenants they are spread over; every tenth is the partner's (default 1000)
  --requests R           requests timed per kind (default 50)
  --page P               page size (default 100)
";

const BENCH: Bench = Bench {
    name: "device_list",
    invocation: "[options]",
    usage: &[USAGE, cli::BACKENDS_USAGE],
    needs_arguments: false,
};

const ADMIN: &str = "bench-admin-token-0123456789";

#[derive(Clone)]
struct Options {
    devices: usize,
    tenants: usize,
    requests: usize,
    page: usize,
    backends: Backends,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Option<Self>> {
        let mut o = Options {
            devices: 1_000_000,
            tenants: 1_000,
            requests: 50,
            page: 100,
            backends: Backends::from_env(),
        };
        let mut flags = Flags::new(args);
        while let Some(flag) = flags.next_flag() {
            match flag.as_str() {
                "--help" | "-h" => return Ok(None),
                "--devices" => o.devices = flags.number(&flag)?,
                "--tenants" => o.tenants = flags.number(&flag)?,
                "--requests" => o.requests = flags.number(&flag)?,
                "--page" => o.page = flags.number(&flag)?,
                other if o.backends.take(other, &mut flags)? => {}
                other => bail!("unknown option {other}"),
            }
        }
        o.backends.resolve()?;
        if o.tenants < 10 || o.requests == 0 || !(1..=1000).contains(&o.page) {
            bail!("--tenants must be at least 10, --requests positive, --page 1-1000");
        }
        Ok(Some(o))
    }
}

fn main() -> ExitCode {
    cli::main(&BENCH, Options::parse, |o| cli::block_on(run(o)))
}

async fn run(o: Options) -> anyhow::Result<()> {
    println!(
        "{} devices over {} tenants, the partner's: every tenth tenant ({} devices); pages of {}, {} requests per kind",
        o.devices,
        o.tenants,
        o.devices / 10,
        o.page,
        o.requests
    );
    if o.backends.sqlite {
        let dir = tempfile::tempdir()?;
        let started = Instant::now();
        generated::sqlite_load(&dir.path().join("zerotouch.db"), o.devices, o.tenants)?;
        println!(
            "sqlite: generated in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        measure("sqlite", dir.path(), None, &o).await?;
    }
    match o.backends.postgres.clone() {
        Some(server) => {
            on_database(&server, "device_list", |url| {
                let o = o.clone();
                async move {
                    let store = harness::database::migrated_store(&url).await?;
                    drop(store);
                    let started = Instant::now();
                    generated::postgres_load(&url, o.devices, o.tenants).await?;
                    println!(
                        "postgres: generated in {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                    let dir = tempfile::tempdir()?;
                    measure("postgres", dir.path(), Some(&url), &o).await
                }
            })
            .await?
        }
        None => println!("postgres: skipped (no --postgres URL or ZEROTOUCH_TEST_DATABASE_URL)"),
    }
    Ok(())
}

/// Gives partner 1 every tenth tenant, through the backend's own connection.
async fn hand_over(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<()> {
    const SQL: &str = "UPDATE tenants SET partner_id = 1 WHERE (id - 1) % 10 = 0";
    match database_url {
        None => {
            let conn = rusqlite::Connection::open(data_dir.join("zerotouch.db"))?;
            conn.busy_timeout(Duration::from_secs(30))?;
            conn.execute(SQL, [])?;
        }
        Some(url) => {
            // Autovacuum analyses a table whose rows changed this much; the bench does not
            // wait for it.
            let client = connect(url).await?;
            client.execute(SQL, &[]).await?;
            client.batch_execute("ANALYZE tenants").await?;
        }
    }
    Ok(())
}

async fn measure(
    backend: &str,
    data_dir: &Path,
    database_url: Option<&str>,
    o: &Options,
) -> anyhow::Result<()> {
    let config = Config::resolve(Knobs {
        data_dir: Some(data_dir.to_owned()),
        database_url: database_url.map(|u| u.parse().expect("database URL")),
        phones_addr: Some("off".parse().expect("listen")),
        api_addr: Some("127.0.0.1:0".parse().expect("listen")),
        metrics_addr: Some("off".parse().expect("listen")),
        admin_token: Some(ADMIN.into()),
        log_level: Some("warn".into()),
        ..Knobs::default()
    })?;
    let listeners = Listeners::bind(&config).await?;
    let api = format!(
        "https://{}",
        listeners.addresses().api.context("api listener")?
    );
    let stop = CancellationToken::new();
    let started = Instant::now();
    let server = tokio::spawn(app::run(config, listeners, stop.clone()));
    let pem = loop {
        if let Ok(p) = std::fs::read(data_dir.join("tls/cert.pem")) {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(1)
        .build()?;
    let partner = loop {
        let r = http
            .post(format!("{api}/api/v1/partners"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "bench"}))
            .send()
            .await;
        if let Ok(r) = r {
            break r.json::<serde_json::Value>().await?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "{backend}: server ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if partner["id"] != 1 {
        bail!("expected the first partner to be id 1: {partner}");
    }
    let token = http
        .post(format!("{api}/api/v1/partners/1/tokens"))
        .bearer_auth(ADMIN)
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?["token"]
        .as_str()
        .context("token")?
        .to_owned();
    hand_over(data_dir, database_url).await?;

    let ours = |name: &str| {
        name.strip_prefix("tenant-")
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|j| j % 10 == 0)
    };
    let get = |query: String| {
        let (http, api, token) = (http.clone(), api.clone(), token.clone());
        async move {
            let started = Instant::now();
            let response = http
                .get(format!("{api}/api/v1/devices?{query}"))
                .bearer_auth(&token)
                .send()
                .await?;
            let status = response.status();
            let body = response.json::<serde_json::Value>().await?;
            let took = started.elapsed();
            if status != 200 {
                bail!("{query}: {status} {body}");
            }
            Ok::<_, anyhow::Error>((took, body))
        }
    };
    let check = |query: &str, body: &serde_json::Value| -> anyhow::Result<usize> {
        let devices = body["devices"].as_array().context("devices")?;
        for d in devices {
            let tenant = d["tenant"].as_str().unwrap_or("");
            if !ours(tenant) {
                bail!("{query}: a device of another partner's tenant {tenant}");
            }
        }
        Ok(devices.len())
    };
    let report = |kind: &str, mut times: Vec<Duration>, rows: usize| {
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "device_list backend={backend} kind={kind} requests={} rows={rows} median_ms={:.2} p90_ms={:.2} max_ms={:.2}",
            times.len(),
            ms(times[times.len() / 2]),
            ms(times[times.len() * 9 / 10]),
            ms(times[times.len() - 1])
        );
    };
    // One warm-up, so the first measured request does not pay for the connection.
    get(format!("limit={}", o.page)).await?;

    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..o.requests {
        let query = format!("limit={}", o.page);
        let (took, body) = get(query.clone()).await?;
        rows += check(&query, &body)?;
        times.push(took);
    }
    report("first_page", times, rows);

    // Walking the list: every page after the first, as far as `--requests` pages go.
    let (mut times, mut rows, mut after) = (Vec::new(), 0, None::<String>);
    for _ in 0..o.requests {
        let query = match &after {
            Some(mac) => format!("limit={}&after={mac}", o.page),
            None => format!("limit={}", o.page),
        };
        let (took, body) = get(query.clone()).await?;
        rows += check(&query, &body)?;
        times.push(took);
        after = body["next"].as_str().map(str::to_owned);
        if after.is_none() {
            break;
        }
    }
    report("next_page", times, rows);

    // A MAC-prefix search: 8 hex digits (the generated MACs share their first 6), different
    // each time, in the colon notation a person types.
    let (mut times, mut rows) = (Vec::new(), 0);
    for i in 0..o.requests {
        let k = (i * 7919) % 4096;
        let prefix = format!("80:5e:c0:{:02x}", k % 256);
        let query = format!("limit={}&mac_prefix={prefix}", o.page);
        let (took, body) = get(query.clone()).await?;
        rows += check(&query, &body)?;
        times.push(took);
    }
    report("mac_prefix", times, rows);

    // A search by any part of a MAC (the portal's search box): 4 hex digits from the middle,
    // in the dash notation, different each time.
    let (mut times, mut rows) = (Vec::new(), 0);
    for i in 0..o.requests {
        let k = (i * 7919) % 65_536;
        let fragment = format!("{:02x}-{:02x}", k >> 8, k & 0xff);
        let query = format!("limit={}&mac_contains={fragment}", o.page);
        let (took, body) = get(query.clone()).await?;
        rows += check(&query, &body)?;
        times.push(took);
    }
    report("mac_contains", times, rows);

    let (mut times, mut rows) = (Vec::new(), 0);
    for i in 0..o.requests {
        let tenant = tenant_name((i * 10) % o.tenants);
        let query = format!("limit={}&tenant={tenant}", o.page);
        let (took, body) = get(query.clone()).await?;
        rows += check(&query, &body)?;
        times.push(took);
    }
    report("tenant", times, rows);

    let (mut times, mut rows) = (Vec::new(), 0);
    for _ in 0..o.requests {
        let query = format!("limit={}&vendor=yealink&never_seen=true", o.page);
        let (took, body) = get(query.clone()).await?;
        rows += check(&query, &body)?;
        times.push(took);
    }
    report("vendor_never_seen", times, rows);

    // The whole list as CSV: every one of the partner's devices, streamed page by page.
    let exports = o.requests.clamp(1, 5);
    let (mut times, mut rows) = (Vec::new(), 0);
    for _ in 0..exports {
        let started = Instant::now();
        let response = http
            .get(format!("{api}/api/v1/devices/export"))
            .bearer_auth(&token)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        times.push(started.elapsed());
        if status != 200 {
            bail!("export: {status} {text}");
        }
        let lines = text.lines().count().saturating_sub(1);
        if lines != o.devices / 10 {
            bail!("export: {lines} devices, expected {}", o.devices / 10);
        }
        rows += lines;
    }
    report("export_csv", times, rows);

    stop.cancel();
    server.await??;
    Ok(())
}
