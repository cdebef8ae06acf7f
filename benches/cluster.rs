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

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_util::sync::CancellationToken;
use zerotouch::app::{self, Listeners};
use zerotouch::config::{Config, Knobs};
use zerotouch::domain::{Host, TenantSettings};
use zerotouch::store::sqlite::SqliteStore;

const USAGE: &str = "\
usage: cargo bench --bench cluster -- start|claims|propagation [options]
  --devices N            start: devices in the store (default 1000000)
  --runs R               start: node starts per backend (default 3)
  --claims C             claims: claims per setup (default 3000)
  --concurrency K        claims: concurrent API clients (default 16)
  --rate R               propagation: claims per second (default 50)
  --seconds S            propagation: duration (default 10)
  --only sqlite|postgres one backend only
  --postgres URL         superuser URL of a PostgreSQL server (default: $ZEROTOUCH_TEST_DATABASE_URL)
";

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
    sqlite: bool,
    postgres: Option<String>,
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
                "--runs" => o.runs = value()?.parse()?,
                "--claims" => o.claims = value()?.parse()?,
                "--concurrency" => o.concurrency = value()?.parse()?,
                "--rate" => o.rate = value()?.parse()?,
                "--seconds" => o.seconds = value()?.parse()?,
                "--only" => only = Some(value()?.clone()),
                "--postgres" => o.postgres = Some(value()?.clone()),
                w @ ("start" | "claims" | "propagation") => o.what = w.to_owned(),
                other => bail!("unknown option {other}"),
            }
        }
        match only.as_deref() {
            None => {}
            Some("sqlite") => o.postgres = None,
            Some("postgres") => o.sqlite = false,
            Some(other) => bail!("--only {other}: expected sqlite or postgres"),
        }
        if o.what.is_empty() {
            bail!("say what to measure: start, claims or propagation");
        }
        Ok(Some(o))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Test runners (cargo test --benches, cargo nextest --all-targets) run bench binaries to
    // list and run tests: a benchmark is not a test, so list none and do nothing.
    if args.iter().any(|a| a == "--list") || args.iter().all(|a| a == "--bench") {
        if args.is_empty() {
            eprintln!("cluster is a benchmark: run it with `cargo bench --bench cluster -- start|claims|propagation`");
        }
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cluster: {e:#}\n{USAGE}");
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
            eprintln!("cluster: {e:#}");
            ExitCode::FAILURE
        }
    }
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
// PostgreSQL databases.

fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (scheme, rest) = base
        .split_once("://")
        .context("the PostgreSQL URL must be postgres://…")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    Ok(if query.is_empty() {
        format!("{scheme}://{authority}/{name}")
    } else {
        format!("{scheme}://{authority}/{name}?{query}")
    })
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("connecting to the PostgreSQL server")?;
    tokio::spawn(connection);
    Ok(client)
}

/// A throwaway database; `drop` removes it.
struct BenchDatabase {
    server: String,
    name: String,
    url: String,
}

impl BenchDatabase {
    async fn create(server: &str, what: &str) -> anyhow::Result<Self> {
        let name = format!("zt_bench_cluster_{what}_{}", std::process::id());
        // One statement per call: several in one batch would run in a transaction, which
        // DROP DATABASE refuses.
        let client = connect(server).await?;
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

    async fn drop(self) -> anyhow::Result<()> {
        connect(&self.server)
            .await?
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// start: the real binary against a million devices.

const TENANTS: usize = 1_000;
const BASE_MAC: u64 = 0x805e_c000_0000;

/// The i-th device's MAC: a permutation of 0..n, so rows arrive in scattered order.
fn mac_of(i: usize, n: usize) -> String {
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

fn device_settings(i: usize) -> String {
    format!(
        r#"{{"display_name":"Desk {i}","lines":[{{"user":"{}","password":"pw-{i:08}"}}]}}"#,
        1000 + i % 9000
    )
}

fn sqlite_load(path: &Path, devices: usize) -> anyhow::Result<()> {
    drop(SqliteStore::open(path)?);
    let mut conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO tenants (id, name, settings, created_at, updated_at) VALUES (?1, ?2, ?3, 1, 1)",
        )?;
        for j in 0..TENANTS {
            insert.execute(rusqlite::params![
                j as i64 + 1,
                format!("tenant-{j:05}"),
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
                (i % TENANTS) as i64 + 1,
                device_settings(i)
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

async fn postgres_load(url: &str, devices: usize) -> anyhow::Result<()> {
    let store = zerotouch::store::postgres::PostgresStore::connect(url, Default::default()).await?;
    store.migrate().await?;
    let client = connect(url).await?;
    let mut ids = Vec::new();
    let mut names = Vec::new();
    let mut settings = Vec::new();
    for j in 0..TENANTS {
        ids.push(j as i64 + 1);
        names.push(format!("tenant-{j:05}"));
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
        let (mac, tenant, settings) = (
            mac_of(i, devices),
            (i % TENANTS) as i64 + 1,
            device_settings(i),
        );
        writer
            .as_mut()
            .write(&[&mac, &"yealink", &tenant, &settings, &1i64, &1i64])
            .await?;
    }
    writer.finish().await?;
    client.batch_execute("VACUUM ANALYZE devices").await?;
    // Separately: several statements in one batch run in a transaction, which VACUUM refuses.
    client.batch_execute("ANALYZE tenants").await?;
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A blocking GET's status, for polling readiness without a client library.
fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix("VmHWM:")
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    })
}

/// Starts the binary, waits for readiness; returns (spawn → ready, logged registry load time,
/// peak RSS in KiB).
fn start_node(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<(Duration, u64, u64)> {
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
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
    let ready = loop {
        if get_status(metrics, "/readyz") == Some(200) {
            break started.elapsed();
        }
        if let Some(status) = child.try_wait()? {
            bail!("zerotouch exited before it was ready: {status}");
        }
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            bail!("zerotouch not ready after 300 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let rss = peak_rss_kib(child.id()).unwrap_or(0);
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
    if o.sqlite {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("zerotouch.db");
        let t = Instant::now();
        let (p, n) = (path.clone(), o.devices);
        tokio::task::spawn_blocking(move || sqlite_load(&p, n)).await??;
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
    if let Some(server) = &o.postgres {
        let db = BenchDatabase::create(server, "start").await?;
        let outcome = async {
            let t = Instant::now();
            postgres_load(&db.url, o.devices).await?;
            println!(
                "postgres: {} devices generated in {:.1} s",
                o.devices,
                t.elapsed().as_secs_f64()
            );
            let mut runs = Vec::new();
            for _ in 0..o.runs {
                let dir = tempfile::tempdir()?;
                let url = db.url.clone();
                runs.push(
                    tokio::task::spawn_blocking(move || start_node(dir.path(), Some(&url)))
                        .await??,
                );
            }
            report_starts("postgres", &mut runs);
            Ok::<(), anyhow::Error>(())
        }
        .await;
        db.drop().await?;
        outcome?;
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
        while tokio::task::spawn_blocking(move || get_status(metrics, "/readyz")).await?
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
    if o.sqlite {
        let nodes = vec![Arc::new(Node::start(None).await?)];
        claim_run("sqlite, 1 node", &nodes, o).await?;
        stop_all(nodes).await?;
    }
    if let Some(server) = &o.postgres {
        for count in [1, 2] {
            let db = BenchDatabase::create(server, "claims").await?;
            let outcome = async {
                let mut nodes = Vec::new();
                for _ in 0..count {
                    nodes.push(Arc::new(Node::start(Some(&db.url)).await?));
                }
                claim_run(&format!("postgres, {count} node(s)"), &nodes, o).await?;
                stop_all(nodes).await
            }
            .await;
            db.drop().await?;
            outcome?;
        }
    }
    Ok(())
}

async fn propagation(o: &Options) -> anyhow::Result<()> {
    let server = o
        .postgres
        .as_ref()
        .context("propagation needs PostgreSQL: --postgres URL or ZEROTOUCH_TEST_DATABASE_URL")?;
    let db = BenchDatabase::create(server, "propagation").await?;
    let outcome = async {
        let a = Arc::new(Node::start(Some(&db.url)).await?);
        let b = Arc::new(Node::start(Some(&db.url)).await?);
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
    }
    .await;
    db.drop().await?;
    outcome
}
