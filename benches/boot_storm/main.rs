//! Boot storm: N phones booting at once after a power cut, against the real `zerotouch` binary.
//!
//! ```text
//! cargo bench --bench boot_storm -- [--phones N] [--concurrency C] [--keepalive on|off]
//!     [--phone-auth mac|enrolment] [--preemptive]
//!     [--tls 1.2|1.3] [--devices D] [--tenants T] [--repeat R] [--sequence boot|device]
//!     [--server-log warn|info] [--resume] [--timeout SECS] [--client-threads N]
//!     [--server-cpus LIST] [--client-cpus LIST] [--server-arg ARG]... [--data-dir DIR]
//! cargo bench --bench boot_storm -- --prepare DIR [--devices D] [--tenants T] [--phone-auth …]
//! cargo bench --bench boot_storm -- --target https://HOST:PORT (--cert FILE | --insecure)
//!     [--server-pid PID] [--metrics HOST:PORT] [--data-dir DIR] [--devices D] [--tenants T] ...
//! ```
//!
//! Without `--target` it generates an import document of D devices over T tenants (`t0`…,
//! vendors about 50% Yealink, 30% Snom, 20% Gigaset), runs `zerotouch import` and
//! `zerotouch serve` on a temporary data directory (or `--data-dir`, reused when it already holds
//! the same fleet), waits for `/readyz` and prints how long the server took to get ready. Then C
//! simulated phones at a time each fetch their vendor's boot sequence with the vendor's
//! User-Agent, every response checked (status, and the tenant's name in every config).
//! `--keepalive off` (the default) opens a fresh TLS connection per request, like phones do;
//! `on` keeps one connection per phone for its whole sequence. The client offers X25519 only
//! and does not resume sessions unless `--resume` is given (then each phone resumes only its
//! own earlier session, as a real phone would).
//!
//! Phone authentication (`--phone-auth`, the tenants' `phone_auth` setting in the import):
//! - `enrolment` (the default, as in the product): after the server is ready an **enrolment
//!   pass** (not measured; reported on its own, with its phones/s and errors) fetches each
//!   phone's per-device file once. For Yealink and Snom that first fetch binds the device, and
//!   the harness takes the provisioning credentials out of the config (Yealink
//!   `static.auto_provision.server.username/password`, Snom `http_client_user/pass`); Gigaset
//!   phones are claimed with their label code and authenticate from the start with Digest,
//!   username = MAC, password = MAC-ID (`<MAC>-<code>`). Then, in the storm, every file that
//!   names the device (Yealink common and per-device file, Snom model and per-device file,
//!   Gigaset profile) is fetched like a phone does: without `Authorization` first, the 401's
//!   Digest challenge answered with MD5, `qop=auth`, on the same connection when the server
//!   keeps it open (otherwise on a new one). With `--keepalive off` only the challenged
//!   request keeps its connection open for that retry; every other request still says
//!   `Connection: close`. `--preemptive`: after its first challenge a phone answers the
//!   remaining files of its boot with that nonce and the next nonce-count, skipping the 401
//!   while the nonce is still good (a stale nonce is answered again). 401s are counted as
//!   protocol steps, not errors; any other unexpected status is an error, and 429s (the
//!   server's miss throttle) are also counted apart: correctly authenticating phones must
//!   never get one.
//! - `mac`: tenants imported with `"phone_auth": "mac"`; the MAC alone is enough, no 401s.
//!
//! `--tenant-extra '"phone_auth": "mac"'` (what earlier versions needed) still works and is
//! the same as `--phone-auth mac`. The credentials the enrolment pass hands out live only in
//! the server's store, so with a kept data directory (`--data-dir`, or `--prepare` followed by
//! `--target … --data-dir DIR`) they are also written to `DIR/credentials.tsv` (index, MAC,
//! username, password; mode 0600) and read back when the fleet is reused; phones that already
//! hold stored credentials are not enrolled again. A reused fleet whose devices are bound but
//! whose credentials were not kept cannot authenticate: the enrolment pass says so and the
//! run fails (use a fresh data directory).
//!
//! The server's certificate is pinned by default (`--verify pin`: the presented leaf must be
//! the one in `<data dir>/tls/cert.pem` and the handshake signature is checked), which is as
//! strict as chain validation for a self-signed certificate but spares the client one ECDSA
//! verification per handshake; `--verify webpki` does full path validation, `--insecure`
//! (`--verify none`) checks nothing.
//!
//! Output: per run phones/s, requests/s, latency percentiles per request (one HTTP exchange),
//! per file (with authentication: from the first request to the file's final answer) and per
//! boot, errors (with the first distinct messages), 401 challenges and 429s, CPU used by the
//! server and by this client, the server's RSS and peak RSS (VmHWM), and what the server itself
//! counted (from `/metrics`). The last line is machine-readable: `boot_storm phones=…
//! requests=… errors=… phones_per_s=… requests_per_s=… p50_ms=… p99_ms=… max_ms=…
//! peak_rss_mib=… auth=mac|enrolment fetches=… challenges=…` (with `--repeat`, the median
//! run's throughput and latency, errors summed, max over all runs). `requests` counts every
//! HTTP exchange, 401s included; `fetches` the files of the boot sequences (each once,
//! however many exchanges it took); `challenges` the 401s. p50/p99/max are per exchange.
//!
//! `--prepare DIR` only generates and imports the fleet into DIR (and writes `DIR/phones.tsv`:
//! index, vendor, MAC, tenant, User-Agent, per-device path), so a server started by hand, or
//! another tool, can use the same devices; `--target` then runs the storm against it.
//!
//! Files: `options.rs` (the command line), `fleet.rs` and `credentials.rs` (the devices, their
//! import, the credentials phones hold), `server.rs` (the server under test), `tls.rs`,
//! `http.rs`, `digest.rs` and `client.rs` (the simulated phones), `storm.rs` (the storm and
//! the enrolment pass), `report.rs` (figures); `../harness/` is shared with the other benches.
//! This file puts them together.

use std::net::ToSocketAddrs;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context};
use rustls::pki_types::ServerName;

#[path = "../harness/mod.rs"]
mod harness;

mod client;
mod credentials;
mod digest;
mod fleet;
mod http;
mod options;
mod report;
mod server;
mod storm;
mod tls;

use client::{Client, ErrorLog};
use credentials::CREDENTIALS_FILE;
use fleet::{prepare, write_phone_list, Fleet};
use harness::cli::{self, Bench};
use options::{tenant_members, Options, PhoneAuth, USAGE};
use report::{machine_line, summarise};
use server::{rss_mib, Server};
use storm::{enrol_fleet, measured_storm, Watched};
use tls::client_config;

const BENCH: Bench = Bench {
    name: "boot_storm",
    invocation: "[options]",
    usage: &[USAGE],
    needs_arguments: false,
};

fn main() -> ExitCode {
    cli::main(&BENCH, Options::parse, run)
}

/// Prepares the fleet, starts or finds the server, enrols the phones, runs the storms and
/// prints their figures. False when a phone failed or the run was interrupted.
fn run(options: Options) -> anyhow::Result<bool> {
    let fleet = Fleet {
        devices: options.devices,
        tenants: options.tenants,
        tenant_extra: Some(tenant_members(&options)),
    };
    if let Some(dir) = &options.prepare {
        prepare(&fleet, dir)?;
        write_phone_list(&fleet, &dir.join("phones.tsv"))?;
        println!(
            "prepared {}; serve it with: zerotouch serve --data-dir {} (certificate: {}/tls/cert.pem, created on first start)",
            dir.display(),
            dir.display(),
            dir.display()
        );
        return Ok(true);
    }
    let machine_cpus = std::thread::available_parallelism().map_or(0, usize::from);
    if let Some(cpus) = &options.client_cpus {
        // Before the runtime exists, so every client thread inherits the mask.
        let status = Command::new("taskset")
            .args(["-p", "-c", cpus, &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .context("cannot run taskset")?;
        if !status.success() {
            bail!("taskset -c {cpus} failed");
        }
    }

    // The server: spawned on a prepared data dir, or given.
    let mut _tmp = None;
    let mut server = None;
    // Where enrolment credentials are kept (a kept data directory), and whether its fleet
    // was there before this run.
    let mut credentials_file = None;
    let reused;
    let (addr, host, metrics, server_pid, cert) = match &options.target {
        Some(url) => {
            let hostport = url
                .strip_prefix("https://")
                .context("--target must be https://HOST:PORT")?
                .trim_end_matches('/');
            let addr = hostport
                .to_socket_addrs()
                .with_context(|| format!("--target {url}"))?
                .next()
                .with_context(|| format!("--target {url}: no address"))?;
            // The devices of a running server may have been enrolled by an earlier run.
            reused = true;
            credentials_file = options.data_dir.as_ref().map(|d| d.join(CREDENTIALS_FILE));
            let metrics = match &options.metrics {
                Some(m) => Some(
                    m.to_socket_addrs()?
                        .next()
                        .with_context(|| format!("--metrics {m}: no address"))?,
                ),
                None => None,
            };
            (
                addr,
                hostport.to_owned(),
                metrics,
                options.server_pid,
                options.cert.clone(),
            )
        }
        None => {
            let dir = match &options.data_dir {
                Some(d) => d.clone(),
                None => {
                    let t = tempfile::Builder::new().prefix("boot-storm-").tempdir()?;
                    let p = t.path().to_owned();
                    _tmp = Some(t);
                    p
                }
            };
            reused = prepare(&fleet, &dir)?;
            if options.data_dir.is_some() {
                credentials_file = Some(dir.join(CREDENTIALS_FILE));
            }
            let mut s = Server::spawn(&options, &dir)?;
            let ready = s.wait_ready(options.ready_timeout)?;
            let rss =
                rss_mib(s.pid()).map_or_else(String::new, |(rss, _)| format!(", RSS {rss:.1} MiB"));
            println!(
                "server ready in {:.2} s ({} devices, {} tenants{rss}; pid {}, log level {}{})",
                ready.as_secs_f64(),
                fleet.devices,
                fleet.tenants,
                s.pid(),
                options.server_log,
                options
                    .server_cpus
                    .as_ref()
                    .map_or_else(String::new, |c| format!(", CPUs {c}"))
            );
            let r = (
                s.phones,
                s.phones.to_string(),
                Some(s.metrics),
                Some(s.pid()),
                Some(dir.join("tls/cert.pem")),
            );
            server = Some(s);
            r
        }
    };

    let tls = Arc::new(client_config(&options, cert.as_deref())?);
    let host_name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
    let server_name = ServerName::try_from(host_name.trim_matches(['[', ']']).to_owned())
        .with_context(|| format!("server name {host_name}"))?;
    let client = Arc::new(Client {
        addr,
        host,
        server_name,
        tls,
        keepalive: options.keepalive,
        resume: options.resume,
        timeout: options.timeout,
        fleet,
        phones: options.phones,
        sequence: options.sequence,
        errors: Mutex::new(ErrorLog::default()),
        auth: options.phone_auth,
        preemptive: options.preemptive,
        credentials: (0..options.phones).map(|_| OnceLock::new()).collect(),
        cnonces: AtomicU64::new(0),
    });
    // Default: one thread per CPU this client may use (after --client-cpus). One thread gets
    // a current-thread runtime: no work stealing, no cross-thread wake-ups.
    let client_threads = options
        .client_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let runtime = if client_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(client_threads)
            .enable_all()
            .build()?
    };

    if options.phone_auth == PhoneAuth::Enrolment
        && !enrol_fleet(
            &options,
            &client,
            &runtime,
            credentials_file.as_deref(),
            reused,
            metrics,
        )?
    {
        return Ok(false);
    }

    println!(
        "storm: {} phones, {} at a time, keep-alive {}, phone auth {}{}, TLS {} X25519{}, sequence {:?}, client threads {}{}",
        options.phones,
        options.concurrency,
        if options.keepalive { "on" } else { "off" },
        options.phone_auth.name(),
        if options.preemptive { " (preemptive Digest)" } else { "" },
        if options.tls13 { "1.3" } else { "1.2" },
        if options.resume { " with resumption" } else { ", no resumption" },
        options.sequence,
        client_threads,
        options
            .client_cpus
            .as_ref()
            .map_or_else(String::new, |c| format!(" on CPUs {c}"))
    );
    let watched = Watched {
        metrics,
        pid: server_pid,
        machine_cpus,
    };
    let mut results = Vec::new();
    let mut interrupted = false;
    for run in 1..=options.repeat {
        match measured_storm(run, &options, &client, &runtime, &watched) {
            Some(result) => results.push(result),
            None => {
                interrupted = true;
                break;
            }
        }
    }

    if let Some(mut s) = server {
        s.stop();
        if options.server_log != "warn" {
            let size = std::fs::metadata(&s.log).map_or(0, |m| m.len());
            println!("server log: {} bytes written", size);
        }
    }
    if results.is_empty() {
        return Ok(!interrupted);
    }
    let summary = summarise(results);
    println!("{}", machine_line(&summary, None));
    Ok(summary.errors == 0 && !interrupted)
}
