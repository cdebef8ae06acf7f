//! The redirect outbox against stand-ins of the vendors' redirect services, through the real
//! server: how fast one node drains a backlog of registrations, and whether configuring a
//! redirect service changes a claim's latency.
//!
//! `cargo bench --bench redirect_outbox -- [options]` queues `--rows` claims (with their
//! outbox rows, as a bulk add does) for each vendor, starts the server in-process against a
//! stand-in that answers every call after `--latency`, and times from start until the
//! stand-in holds every registration: registrations per second per node. Then it times
//! `--claims` sequential claims over the partner API (one keep-alive connection) on a server
//! without redirect services and on one with all three configured (the check before a claim
//! off), interleaved in rounds, and prints both medians and their ratio. The stand-ins are the
//! test suite's (`tests/it/standins`), which verify every request's signature.

// A bench harness: a failed set-up step should stop it loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use zerotouch::app::{self, Listeners};
use zerotouch::config::{Config, Knobs};
use zerotouch::domain::{Mac, Vendor};

#[path = "harness/mod.rs"]
mod harness;
#[path = "../tests/it/standins/mod.rs"]
mod standins;

use harness::cli::{self, Backends, Bench, Flags};
use harness::database::on_database;
use standins::{Fault, StandIn};

const USAGE: &str = "\
usage: cargo bench --bench redirect_outbox -- [options]
  --rows N        registrations queued per vendor (default 5000)
  --latency MS    the stand-ins' answer time (default 50)
  --claims C      claims timed per configuration (default 300)
";

const BENCH: Bench = Bench {
    name: "redirect_outbox",
    invocation: "[options]",
    usage: &[USAGE, cli::BACKENDS_USAGE],
    needs_arguments: false,
};

const ADMIN: &str = "bench-admin-token-0123456789";
const PUBLIC_URL: &str = "https://prov.example.com";

#[derive(Clone)]
struct Options {
    rows: usize,
    latency: u64,
    claims: usize,
    backends: Backends,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Option<Self>> {
        let mut o = Options {
            rows: 5_000,
            latency: 50,
            claims: 300,
            backends: Backends::from_env(),
        };
        let mut flags = Flags::new(args);
        while let Some(flag) = flags.next_flag() {
            match flag.as_str() {
                "--help" | "-h" => return Ok(None),
                "--rows" => o.rows = flags.number(&flag)?,
                "--latency" => o.latency = flags.number(&flag)?,
                "--claims" => o.claims = flags.number(&flag)?,
                other if o.backends.take(other, &mut flags)? => {}
                other => bail!("unknown option {other}"),
            }
        }
        o.backends.resolve()?;
        if o.rows == 0 || o.rows > 0x0f_ffff || o.claims < 10 {
            bail!("--rows must be 1 to 1048575, --claims at least 10");
        }
        Ok(Some(o))
    }
}

fn main() -> ExitCode {
    cli::main(&BENCH, Options::parse, |o| cli::block_on(run(o)))
}

async fn run(o: Options) -> anyhow::Result<()> {
    println!(
        "{} registrations per vendor, stand-ins answering after {} ms; {} claims per configuration",
        o.rows, o.latency, o.claims
    );
    if o.backends.sqlite {
        for vendor in Vendor::ALL {
            let dir = tempfile::tempdir()?;
            drain("sqlite", vendor, dir.path(), None, &o).await?;
        }
        claim_latency(&o).await?;
    }
    if let Some(server) = o.backends.postgres.clone() {
        for vendor in Vendor::ALL {
            on_database(&server, "redirect_outbox", |url| {
                let o = o.clone();
                async move {
                    let dir = tempfile::tempdir()?;
                    drain("postgres", vendor, dir.path(), Some(&url), &o).await
                }
            })
            .await?;
        }
    } else {
        println!("postgres: skipped (no --postgres URL or ZEROTOUCH_TEST_DATABASE_URL)");
    }
    Ok(())
}

fn knobs(data_dir: &Path, database_url: Option<&str>, standins: &[&StandIn]) -> Knobs {
    let mut k = Knobs {
        data_dir: Some(data_dir.to_owned()),
        database_url: database_url.map(|u| u.parse().expect("database URL")),
        phones_addr: Some("off".parse().expect("listen")),
        api_addr: Some("127.0.0.1:0".parse().expect("listen")),
        metrics_addr: Some("off".parse().expect("listen")),
        admin_token: Some(ADMIN.into()),
        log_level: Some("warn".into()),
        public_url: Some(PUBLIC_URL.into()),
        redirect_poll: Some("20ms".parse().expect("duration")),
        ..Knobs::default()
    };
    for s in standins {
        s.configure(&mut k);
    }
    k
}

/// A MAC of `vendor` numbered `i`.
fn mac_of(vendor: Vendor, i: usize) -> String {
    let oui = match vendor {
        Vendor::Yealink => "805ec0",
        Vendor::Snom => "000413",
        Vendor::Gigaset => "7c2f80",
    };
    format!("{oui}{:06x}", 0x10_0000 + i)
}

/// Queues `o.rows` claims with their outbox rows, starts a node, and times the drain.
async fn drain(
    backend: &str,
    vendor: Vendor,
    data_dir: &Path,
    database_url: Option<&str>,
    o: &Options,
) -> anyhow::Result<()> {
    let standin = StandIn::start(vendor).await;
    let config = Config::resolve(knobs(data_dir, database_url, &[&standin]))?;
    let store = app::open_store(&config).await?;
    let actor = zerotouch::store::Actor::cli();
    let ouis = config.oui_table();
    let tenant = json!({"tenants": [{"name": "bench", "sip_server": "bench.cloud.example"}]});
    zerotouch::import::import_json(store.as_ref(), &ouis, tenant.to_string().as_bytes(), &actor)
        .await?;
    let rows = (0..o.rows)
        .map(|i| {
            let mut row = json!({"mac": mac_of(vendor, i), "tenant": "bench"});
            if vendor == Vendor::Gigaset {
                row["claim_code"] = json!("AB12");
            }
            row
        })
        .collect();
    let report = zerotouch::import::import_devices(
        store.as_ref(),
        &ouis,
        config.redirect.vendors(),
        rows,
        &actor,
    )
    .await?;
    if report.refused > 0 {
        bail!(
            "the bench's claims were refused: {:?}",
            report.devices.first()
        );
    }
    drop(store);
    if vendor == Vendor::Gigaset {
        for i in 0..o.rows {
            standin.seed_label(Mac::parse(&mac_of(vendor, i))?, "AB12");
        }
    }
    standin.set_fault(Fault::Latency(Duration::from_millis(o.latency)));

    let listeners = Listeners::bind(&config).await?;
    let stop = CancellationToken::new();
    let started = Instant::now();
    let server = tokio::spawn(app::run(config, listeners, stop.clone()));
    loop {
        let held = standin.registered().len();
        if held >= o.rows {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "{backend} {vendor}: only {held} of {} registered after 10 minutes",
                o.rows
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    stop.cancel();
    server.await??;
    let calls = standin.calls().len();
    println!(
        "{backend} {vendor}: {} registrations in {:.2} s = {:.0}/s ({} calls; most in flight for one MAC: {}; refused signatures: {})",
        o.rows,
        took.as_secs_f64(),
        o.rows as f64 / took.as_secs_f64(),
        calls,
        standin.concurrent_max(),
        standin.refusals()
    );
    Ok(())
}

/// One in-process server, its API's base URL and a partner token for tenant `bench`.
struct Running {
    stop: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    http: reqwest::Client,
    api: String,
    token: String,
    _dir: tempfile::TempDir,
}

async fn start(standins: &[&StandIn]) -> anyhow::Result<Running> {
    let dir = tempfile::tempdir()?;
    let mut k = knobs(dir.path(), None, standins);
    if standins.is_empty() {
        k.public_url = None;
    }
    let config = Config::resolve(k)?;
    let listeners = Listeners::bind(&config).await?;
    let api = format!(
        "https://{}",
        listeners.addresses().api.context("api listener")?
    );
    let stop = CancellationToken::new();
    let server = tokio::spawn(app::run(config, listeners, stop.clone()));
    let pem = loop {
        if let Ok(p) = std::fs::read(dir.path().join("tls/cert.pem")) {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
        .timeout(Duration::from_secs(60))
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
    let token = http
        .post(format!("{api}/api/v1/partners/{}/tokens", partner["id"]))
        .bearer_auth(ADMIN)
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?["token"]
        .as_str()
        .context("token")?
        .to_owned();
    let customer = http
        .post(format!("{api}/api/v1/customers"))
        .bearer_auth(&token)
        .json(&json!({"company": "Bench Ltd"}))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    let r = http
        .post(format!("{api}/api/v1/tenants"))
        .bearer_auth(&token)
        .json(&json!({"name": "bench", "customer": customer["id"], "sip_server": "bench.cloud.example"}))
        .send()
        .await?;
    if r.status() != 201 {
        bail!("tenant: {}", r.text().await?);
    }
    Ok(Running {
        stop,
        server,
        http,
        api,
        token,
        _dir: dir,
    })
}

impl Running {
    /// Claims `mac`, returning the request's time at the client.
    async fn claim(&self, mac: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let r = self
            .http
            .post(format!("{}/api/v1/devices", self.api))
            .bearer_auth(&self.token)
            .json(&json!({"mac": mac, "tenant": "bench"}))
            .send()
            .await?;
        let status = r.status();
        let _ = r.bytes().await?;
        if status != 201 {
            bail!("claim {mac}: {status}");
        }
        Ok(started.elapsed())
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.server.await?
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Claim latency without and with redirect services configured (check off), interleaved.
async fn claim_latency(o: &Options) -> anyhow::Result<()> {
    let yealink = StandIn::start(Vendor::Yealink).await;
    let snom = StandIn::start(Vendor::Snom).await;
    let gigaset = StandIn::start(Vendor::Gigaset).await;
    for s in [&yealink, &snom, &gigaset] {
        s.set_fault(Fault::Latency(Duration::from_millis(o.latency)));
    }
    let plain = start(&[]).await?;
    let redirected = start(&[&yealink, &snom, &gigaset]).await?;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    // Warm both connections, then alternate in rounds of ten.
    plain.claim(&mac_of(Vendor::Snom, 0xf_fff0)).await?;
    redirected.claim(&mac_of(Vendor::Snom, 0xf_fff0)).await?;
    let mut i = 0;
    while i < o.claims {
        for _ in 0..10 {
            without.push(plain.claim(&mac_of(Vendor::Yealink, i)).await?);
            i += 1;
        }
        for j in i - 10..i {
            with.push(redirected.claim(&mac_of(Vendor::Yealink, j)).await?);
        }
    }
    let (a, b) = (median(without), median(with));
    println!(
        "claim latency (sqlite, median of {}): without redirect {:.2} ms, with redirect (check off) {:.2} ms, ratio {:.2}",
        o.claims,
        a.as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3,
        b.as_secs_f64() / a.as_secs_f64()
    );
    plain.stop().await?;
    redirected.stop().await?;
    Ok(())
}
