//! Several nodes, one PostgreSQL, measured: node start with a million devices, claims per
//! second through the partner API, and how fast a claim on one node reaches another's phones.
//!
//! ```text
//! .ci/postgres cargo bench --bench cluster -- start [--devices N] [--runs R] [--only sqlite|postgres]
//! .ci/postgres cargo bench --bench cluster -- claims [--claims C] [--concurrency K] [--only sqlite|postgres]
//! .ci/postgres cargo bench --bench cluster -- propagation [--rate R] [--seconds S]
//! ```
//!
//! `start`: N devices (default 1,000,000) over 1,000 tenants are generated straight into a
//! SQLite file and a PostgreSQL database; then the real `zerotouch serve` binary is started
//! against each R times (3): time from spawn to `/readyz` 200, the registry load time it logs,
//! and its peak RSS (`VmHWM`) once ready.
//!
//! `claims`: C claims (default 3,000) of new MACs through the HTTPS partner API by K (16)
//! concurrent clients, against one SQLite node, one PostgreSQL node, and two PostgreSQL nodes
//! (clients alternate between them). Nodes run in this process, as the integration tests run
//! them; the load generator shares the machine's cores with them.
//!
//! `propagation`: two PostgreSQL nodes; one claim every 1/R s (R = 50) for S (10) seconds
//! through node A; after each 201, node B's phone endpoint is polled every millisecond until
//! it serves the device. Reports median, p99 and max from A's answer to B serving.
//!
//! PostgreSQL needs a server: `--postgres URL` or `ZEROTOUCH_TEST_DATABASE_URL` (a superuser
//! URL; databases `zt_bench_cluster_*` are created and dropped). `.ci/postgres` provides one.
//! With `--list` or no arguments (how test runners call bench binaries) it does nothing.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use zerotouch::app::{self, Listeners};
use zerotouch::config::{Config, Knobs};

#[path = "harness/mod.rs"]
mod harness;

use harness::cli::{self, Backends, Bench, Flags};
use harness::database::{migrated_store, on_database};
use harness::generated::{self, BASE_MAC};
use harness::process::{self, Readiness};

const USAGE: &str = "\
usage: cargo bench --bench cluster -- start|claims|propagation [options]
  --devices N            start: devices in the store (default 1000000)
  --runs R               start: node starts per backend (default 3)
  --claims C             claims: claims per setup (default 3000)
  --concurrency K        claims: concurrent API clients (default 16)
  --rate R               propagation: claims per second (default 50)
  --seconds S            propagation: duration (default 10)
";

const BENCH: Bench = Bench {
    name: "cluster",
    invocation: "start|claims|propagation",
    usage: &[USAGE, cli::BACKENDS_USAGE],
    needs_arguments: true,
};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

#[derive(Clone)]
struct Options {
    what: String,
    devices: usize,
    runs: usize,
    claims: usize,
    concurrency: usize,
    rate: u32,
    seconds: u64,
    backends: Backends,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Option<Self>> {
        let mut o = Options {
            what: String::new(),
            devices: 1_000_000,
            runs: 3,
            claims: 3_000,
            concurrency: 16,
            rate: 50,
            seconds: 10,
            backends: Backends::from_env(),
        };
        let mut flags = Flags::new(args);
        while let Some(flag) = flags.next_flag() {
            match flag.as_str() {
                "--help" | "-h" => return Ok(None),
                "--devices" => o.devices = flags.number(&flag)?,
                "--runs" => o.runs = flags.number(&flag)?,
                "--claims" => o.claims = flags.number(&flag)?,
                "--concurrency" => o.concurrency = flags.number(&flag)?,
                "--rate" => o.rate = flags.number(&flag)?,
                "--seconds" => o.seconds = flags.number(&flag)?,
                w @ ("start" | "claims" | "propagation") => o.what = w.to_owned(),
                other if o.backends.take(other, &mut flags)? => {}
                other => bail!("unknown option {other}"),
            }
        }
        o.backends.resolve()?;
        if o.what.is_empty() {
            bail!("say what to measure: start, claims or propagation");
        }
        Ok(Some(o))
    }
}

fn main() -> ExitCode {
    cli::main(&BENCH, Options::parse, |o| cli::block_on(run(o)))
}

async fn run(o: Options) -> anyhow::Result<()> {
    println!(
        "{} CPUs, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    match o.what.as_str() {
        "start" => start(&o).await,
        "claims" => claims(&o).await,
        _ => propagation(&o).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Figures.

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// start: the real binary against a million devices.

const TENANTS: usize = 1_000;

/// Starts the binary, waits for readiness; returns (spawn → ready, logged registry load time,
/// peak RSS in KiB).
fn start_node(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<(Duration, u64, u64)> {
    let [port] = process::free_ports::<1>()?;
    let metrics = SocketAddr::from(([127, 0, 0, 1], port));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zerotouch"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--phones-addr", "127.0.0.1:0", "--api-addr", "off"])
        .args(["--metrics-addr", &metrics.to_string()])
        .args(["--log-format", "json"])
        .env_remove("ZEROTOUCH_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().context("cannot start zerotouch")?;
    let ready = match process::wait_ready(
        &mut child,
        metrics,
        Duration::from_secs(300),
        Duration::from_millis(5),
    )? {
        Readiness::Ready(_) => started.elapsed(),
        Readiness::Exited(status) => bail!("zerotouch exited before it was ready: {status}"),
        Readiness::TimedOut => {
            let _ = child.kill();
            bail!("zerotouch not ready after 300 s");
        }
    };
    let rss = process::memory_kib(child.id(), "VmHWM:").unwrap_or(0);
    child.kill()?;
    let mut log = String::new();
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut log)?;
    }
    child.wait()?;
    let loaded = log
        .lines()
        .find(|l| l.contains("registry loaded"))
        .and_then(|l| {
            let at = l.find("\"elapsed_ms\":")? + "\"elapsed_ms\":".len();
            l[at..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    Ok((ready, loaded, rss))
}

fn report_starts(backend: &str, runs: &mut [(Duration, u64, u64)]) {
    for (i, (ready, loaded, rss)) in runs.iter().enumerate() {
        println!(
            "{backend}: start {}: ready in {:.2} s (registry loaded in {:.2} s), peak RSS {} MiB",
            i + 1,
            ready.as_secs_f64(),
            *loaded as f64 / 1e3,
            rss / 1024
        );
    }
    runs.sort_by_key(|r| r.0);
    if let Some((ready, loaded, _)) = runs.get(runs.len() / 2) {
        let peak = runs.iter().map(|r| r.2).max().unwrap_or(0);
        println!(
            "{backend}: median ready {:.2} s (registry {:.2} s), max peak RSS {} MiB",
            ready.as_secs_f64(),
            *loaded as f64 / 1e3,
            peak / 1024
        );
    }
}

async fn start(o: &Options) -> anyhow::Result<()> {
    if o.backends.sqlite {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("zerotouch.db");
        let t = Instant::now();
        let (p, n) = (path.clone(), o.devices);
        tokio::task::spawn_blocking(move || generated::sqlite_load(&p, n, TENANTS)).await??;
        println!(
            "sqlite: {} devices generated in {:.1} s",
            o.devices,
            t.elapsed().as_secs_f64()
        );
        let mut runs = Vec::new();
        for _ in 0..o.runs {
            let d = dir.path().to_owned();
            runs.push(tokio::task::spawn_blocking(move || start_node(&d, None)).await??);
        }
        report_starts("sqlite", &mut runs);
    }
    if let Some(server) = &o.backends.postgres {
        on_database(server, "cluster_start", |url| async move {
            let t = Instant::now();
            drop(migrated_store(&url).await?);
            generated::postgres_load(&url, o.devices, TENANTS).await?;
            println!(
                "postgres: {} devices generated in {:.1} s",
                o.devices,
                t.elapsed().as_secs_f64()
            );
            let mut runs = Vec::new();
            for _ in 0..o.runs {
                let dir = tempfile::tempdir()?;
                let url = url.clone();
                runs.push(
                    tokio::task::spawn_blocking(move || start_node(dir.path(), Some(&url)))
                        .await??,
                );
            }
            report_starts("postgres", &mut runs);
            Ok(())
        })
        .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// In-process nodes for claims and propagation.

struct Node {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    api: String,
    phones: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(database_url: Option<&str>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let knobs = Knobs {
            data_dir: Some(dir.path().to_owned()),
            phones_addr: Some("127.0.0.1:0".parse().map_err(anyhow::Error::msg)?),
            http_addr: Some("off".parse().map_err(anyhow::Error::msg)?),
            api_addr: Some("127.0.0.1:0".parse().map_err(anyhow::Error::msg)?),
            metrics_addr: Some("127.0.0.1:0".parse().map_err(anyhow::Error::msg)?),
            admin_token: Some(ADMIN_TOKEN.to_owned()),
            // The propagation watcher asks for devices before they exist, from one address:
            // the enumeration throttle must not block it.
            throttle_budget: Some(u32::MAX),
            database_url: database_url
                .map(|u| u.parse().map_err(anyhow::Error::msg))
                .transpose()?,
            ..Knobs::default()
        };
        let config = Config::resolve(knobs)?;
        let listeners = Listeners::bind(&config).await?;
        let addrs = listeners.addresses();
        let stop = CancellationToken::new();
        let task = tokio::spawn(app::run(config, listeners, stop.clone()));
        let metrics = addrs.metrics.context("metrics address")?;
        let t = Instant::now();
        while tokio::task::spawn_blocking(move || process::status(metrics, "/readyz")).await?
            != Some(200)
        {
            if t.elapsed() > Duration::from_secs(60) {
                bail!("node not ready");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pem = std::fs::read(dir.path().join("tls/cert.pem"))?;
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self {
            stop,
            task,
            api: format!("https://{}", addrs.api.context("api address")?),
            phones: format!("https://{}", addrs.phones.context("phones address")?),
            client,
            _dir: dir,
        })
    }

    async fn post(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let r = self
            .client
            .post(format!("{}{path}", self.api))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(serde_json::Value::Null)))
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await?
    }
}

/// A partner with a tenant `bench` (phones by MAC), made through `node`; returns its token.
async fn partner(node: &Node) -> anyhow::Result<String> {
    let (s, p) = node
        .post(ADMIN_TOKEN, "/api/v1/partners", json!({"name": "bench"}))
        .await?;
    anyhow::ensure!(s == 201, "partner: {s} {p}");
    let (s, t) = node
        .post(
            ADMIN_TOKEN,
            &format!("/api/v1/partners/{}/tokens", p["id"]),
            json!({}),
        )
        .await?;
    anyhow::ensure!(s == 201, "token: {s} {t}");
    let token = t["token"].as_str().context("token")?.to_owned();
    let (s, c) = node
        .post(&token, "/api/v1/customers", json!({"company": "Bench"}))
        .await?;
    anyhow::ensure!(s == 201, "customer: {s} {c}");
    let (s, b) = node
        .post(
            &token,
            "/api/v1/tenants",
            json!({"name": "bench", "customer": c["id"], "phone_auth": "mac",
                   "sip_server": "bench.cloud.example"}),
        )
        .await?;
    anyhow::ensure!(s == 201, "tenant: {s} {b}");
    Ok(token)
}

fn bench_mac(i: usize) -> String {
    format!("{:012x}", BASE_MAC + 0x10_0000 + i as u64)
}

async fn claim_run(label: &str, nodes: &[Arc<Node>], o: &Options) -> anyhow::Result<()> {
    let token = partner(&nodes[0]).await?;
    // Let the tenant reach every node (the claim on another node needs it in the store only,
    // but keep the start comparable).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..o.concurrency {
        let node = nodes[w % nodes.len()].clone();
        let (next, token, total) = (next.clone(), token.clone(), o.claims);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let t = Instant::now();
                let (s, body) = node
                    .post(
                        &token,
                        "/api/v1/devices",
                        json!({"mac": bench_mac(i), "tenant": "bench"}),
                    )
                    .await?;
                anyhow::ensure!(s == 201, "claim {i}: {s} {body}");
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await??);
    }
    let took = started.elapsed();
    all.sort();
    println!(
        "{label}: {} claims, {} clients: {:.0} claims/s, p50 {:.1} ms, p99 {:.1} ms",
        o.claims,
        o.concurrency,
        o.claims as f64 / took.as_secs_f64(),
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99))
    );
    Ok(())
}

async fn stop_all(nodes: Vec<Arc<Node>>) -> anyhow::Result<()> {
    for node in nodes {
        if let Ok(node) = Arc::try_unwrap(node) {
            node.stop().await?;
        }
    }
    Ok(())
}

async fn claims(o: &Options) -> anyhow::Result<()> {
    if o.backends.sqlite {
        let nodes = vec![Arc::new(Node::start(None).await?)];
        claim_run("sqlite, 1 node", &nodes, o).await?;
        stop_all(nodes).await?;
    }
    if let Some(server) = &o.backends.postgres {
        for count in [1, 2] {
            on_database(server, "cluster_claims", |url| async move {
                let mut nodes = Vec::new();
                for _ in 0..count {
                    nodes.push(Arc::new(Node::start(Some(&url)).await?));
                }
                claim_run(&format!("postgres, {count} node(s)"), &nodes, o).await?;
                stop_all(nodes).await
            })
            .await?;
        }
    }
    Ok(())
}

async fn propagation(o: &Options) -> anyhow::Result<()> {
    let server =
        o.backends.postgres.as_ref().context(
            "propagation needs PostgreSQL: --postgres URL or ZEROTOUCH_TEST_DATABASE_URL",
        )?;
    on_database(server, "cluster_propagation", |url| async move {
        let a = Arc::new(Node::start(Some(&url)).await?);
        let b = Arc::new(Node::start(Some(&url)).await?);
        let token = partner(&a).await?;
        let total = (u64::from(o.rate) * o.seconds) as usize;
        let mut tick = tokio::time::interval(Duration::from_secs(1) / o.rate.max(1));
        let mut watchers = Vec::new();
        for i in 0..total {
            tick.tick().await;
            let (a, b, token) = (a.clone(), b.clone(), token.clone());
            watchers.push(tokio::spawn(async move {
                let mac = bench_mac(500_000 + i);
                let (s, body) = a
                    .post(
                        &token,
                        "/api/v1/devices",
                        json!({"mac": mac, "tenant": "bench"}),
                    )
                    .await?;
                anyhow::ensure!(s == 201, "claim: {s} {body}");
                let committed = Instant::now();
                let url = format!("{}/{mac}.cfg", b.phones);
                let colons: Vec<&str> = (0..6).map(|k| &mac[2 * k..2 * k + 2]).collect();
                let ua = format!("Yealink SIP-T46S 66.86.0.15 {}", colons.join(":"));
                loop {
                    let r = b.client.get(&url).header("user-agent", &ua).send().await?;
                    if r.status() == 200 {
                        return Ok(committed.elapsed());
                    }
                    anyhow::ensure!(
                        committed.elapsed() < Duration::from_secs(10),
                        "{mac} never reached node B"
                    );
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }));
        }
        let mut lat = Vec::new();
        for w in watchers {
            lat.push(w.await??);
        }
        lat.sort();
        println!(
            "propagation A → B: {} claims at {}/s: median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            lat.len(),
            o.rate,
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            ms(lat.last().copied().unwrap_or_default())
        );
        stop_all(vec![a, b]).await
    })
    .await
}
