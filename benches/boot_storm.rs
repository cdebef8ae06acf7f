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

use std::collections::HashMap;
use std::io::{BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

const USAGE: &str = "\
usage: cargo bench --bench boot_storm -- [options]
  --phones N             phones booting (default 10000)
  --concurrency C        phones booting at the same time (default 1000)
  --keepalive on|off     off: a fresh TLS connection per request; on: one per phone (default off)
  --phone-auth MODE      enrolment: tenants' phone_auth = enrolment (the default): an enrolment
                         pass binds each phone first, then every fetch answers a Digest challenge;
                         mac: phone_auth = mac, the MAC alone is enough (no authentication)
  --preemptive           enrolment: after its first 401 a phone reuses the nonce (next nc) for
                         the rest of its boot instead of waiting for a challenge per file
  --tls 1.2|1.3          TLS version the client offers (default 1.3); key exchange is X25519 only
  --resume               let each phone resume its own earlier TLS session (default: no resumption)
  --sequence boot|device boot: the vendor's whole boot sequence; device: only the per-device file
  --devices D            devices in the generated store (default: --phones); phones are spread over them
  --tenants T            tenants t0..t(T-1) (default 100)
  --repeat R             storms against the same server (default 1)
  --timeout SECS         per request, connect and handshake included (default 30)
  --client-threads N     client runtime threads (default: CPUs available)
  --client-cpus LIST     pin this client (taskset list, e.g. 1)
  --server-cpus LIST     pin the spawned server (taskset list, e.g. 0)
  --server-log LEVEL     the spawned server's --log-level (default warn; info logs every request)
  --server-arg ARG       extra argument for `zerotouch serve` (repeatable), e.g. --server-arg=--tls-tickets=0
  --tenant-extra JSON    members added to every tenant row of the import, e.g. '\"recheck_minutes\": 60'
                         (a phone_auth member here sets --phone-auth: '\"phone_auth\": \"mac\"')
  --data-dir DIR         keep the data directory (reused when it already holds the same fleet);
                         enrolment credentials are kept in DIR/credentials.tsv. With --target: the
                         --prepare'd DIR, for its credentials.tsv
  --ready-timeout SECS   how long the server may take to get ready (default 1800)
  --prepare DIR          only generate and import the fleet into DIR (and DIR/phones.tsv), then exit
  --target URL           use a running server (https://HOST:PORT) instead of spawning one
  --server-pid PID       with --target: the server's pid, for RSS and CPU
  --metrics HOST:PORT    with --target: its metrics listener, for the server-side counters
  --cert FILE            with --target: PEM certificate to pin (or verify, with --verify webpki)
  --insecure             with --target: do not verify the server (same as --verify none)
  --verify pin|webpki|none  how the client checks the server certificate (default pin)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Test runners (cargo test --benches, cargo nextest --all-targets) run bench binaries to
    // list and run tests: a boot storm is not a test, so list none and do nothing.
    if args.iter().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    if !args.iter().any(|a| a == "--bench") && args.is_empty() {
        eprintln!(
            "boot_storm is a benchmark: run it with `cargo bench --bench boot_storm -- [options]`"
        );
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("boot_storm: {e:#}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("boot_storm: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Verify {
    Pin,
    WebPki,
    None,
}

/// How the tenants' phones authenticate (`phone_auth`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PhoneAuth {
    /// The MAC alone is enough.
    Mac,
    /// Enrolment: bound on the first fetch, then HTTP Digest (Gigaset: MAC-ID from the start).
    Enrolment,
}

impl PhoneAuth {
    fn name(self) -> &'static str {
        match self {
            PhoneAuth::Mac => "mac",
            PhoneAuth::Enrolment => "enrolment",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sequence {
    Boot,
    Device,
}

#[derive(Clone, Debug)]
struct Options {
    phones: usize,
    concurrency: usize,
    keepalive: bool,
    phone_auth: PhoneAuth,
    preemptive: bool,
    tls13: bool,
    resume: bool,
    sequence: Sequence,
    devices: usize,
    tenants: usize,
    repeat: usize,
    timeout: Duration,
    client_threads: Option<usize>,
    client_cpus: Option<String>,
    server_cpus: Option<String>,
    server_log: String,
    server_args: Vec<String>,
    tenant_extra: Option<String>,
    data_dir: Option<PathBuf>,
    ready_timeout: Duration,
    prepare: Option<PathBuf>,
    target: Option<String>,
    server_pid: Option<u32>,
    metrics: Option<String>,
    cert: Option<PathBuf>,
    verify: Verify,
}

impl Options {
    /// `Ok(None)`: help was asked for.
    fn parse(args: &[String]) -> anyhow::Result<Option<Self>> {
        let mut o = Options {
            phones: 10_000,
            concurrency: 1_000,
            keepalive: false,
            phone_auth: PhoneAuth::Enrolment,
            preemptive: false,
            tls13: true,
            resume: false,
            sequence: Sequence::Boot,
            devices: 0,
            tenants: 100,
            repeat: 1,
            timeout: Duration::from_secs(30),
            client_threads: None,
            client_cpus: None,
            server_cpus: None,
            server_log: "warn".into(),
            server_args: Vec::new(),
            tenant_extra: None,
            data_dir: None,
            ready_timeout: Duration::from_secs(1800),
            prepare: None,
            target: None,
            server_pid: None,
            metrics: None,
            cert: None,
            verify: Verify::Pin,
        };
        let mut insecure = false;
        let mut verify_given = false;
        let mut phone_auth = None;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
                _ => (arg.as_str(), None),
            };
            let mut value = || -> anyhow::Result<String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => it
                        .next()
                        .cloned()
                        .with_context(|| format!("{flag} needs a value")),
                }
            };
            match flag {
                "--bench" => {}
                "-h" | "--help" => return Ok(None),
                "--phones" => o.phones = number(flag, &value()?)?,
                "--concurrency" => o.concurrency = number(flag, &value()?)?,
                "--keepalive" => {
                    o.keepalive = match value()?.as_str() {
                        "on" => true,
                        "off" => false,
                        v => bail!("--keepalive {v}: expected on or off"),
                    }
                }
                "--phone-auth" => {
                    phone_auth = Some(match value()?.as_str() {
                        "mac" => PhoneAuth::Mac,
                        "enrolment" | "enrollment" => PhoneAuth::Enrolment,
                        v => bail!("--phone-auth {v}: expected mac or enrolment"),
                    })
                }
                "--preemptive" => o.preemptive = true,
                "--tls" => {
                    o.tls13 = match value()?.as_str() {
                        "1.3" => true,
                        "1.2" => false,
                        v => bail!("--tls {v}: expected 1.2 or 1.3"),
                    }
                }
                "--resume" => o.resume = true,
                "--sequence" | "--requests-per-phone" => {
                    o.sequence = match value()?.as_str() {
                        "boot" | "vendor" => Sequence::Boot,
                        "device" | "1" => Sequence::Device,
                        v => bail!("{flag} {v}: expected boot (the vendor's sequence) or device"),
                    }
                }
                "--devices" => o.devices = number(flag, &value()?)?,
                "--tenants" => o.tenants = number(flag, &value()?)?,
                "--repeat" => o.repeat = number(flag, &value()?)?,
                "--timeout" => o.timeout = Duration::from_secs_f64(seconds(flag, &value()?)?),
                "--client-threads" => o.client_threads = Some(number(flag, &value()?)?),
                "--client-cpus" => o.client_cpus = Some(value()?),
                "--server-cpus" => o.server_cpus = Some(value()?),
                "--server-log" => o.server_log = value()?,
                "--server-arg" => o.server_args.push(value()?),
                "--tenant-extra" => o.tenant_extra = Some(value()?),
                "--data-dir" => o.data_dir = Some(value()?.into()),
                "--ready-timeout" => {
                    o.ready_timeout = Duration::from_secs_f64(seconds(flag, &value()?)?)
                }
                "--prepare" => o.prepare = Some(value()?.into()),
                "--target" => o.target = Some(value()?),
                "--server-pid" => o.server_pid = Some(number(flag, &value()?)?),
                "--metrics" => o.metrics = Some(value()?),
                "--cert" => o.cert = Some(value()?.into()),
                "--insecure" => insecure = true,
                "--verify" => {
                    verify_given = true;
                    o.verify = match value()?.as_str() {
                        "pin" => Verify::Pin,
                        "webpki" => Verify::WebPki,
                        "none" => Verify::None,
                        v => bail!("--verify {v}: expected pin, webpki or none"),
                    }
                }
                other => bail!("unknown option {other}"),
            }
        }
        if insecure {
            if verify_given && o.verify != Verify::None {
                bail!("--insecure contradicts --verify");
            }
            o.verify = Verify::None;
        }
        if o.tenant_extra
            .as_deref()
            .is_some_and(|e| e.trim().is_empty())
        {
            o.tenant_extra = None;
        }
        let in_extra = match &o.tenant_extra {
            Some(extra) => phone_auth_in(extra)?,
            None => None,
        };
        o.phone_auth = match (phone_auth, in_extra) {
            (Some(given), Some(extra)) if given != extra => bail!(
                "--phone-auth {} contradicts the phone_auth of --tenant-extra ({})",
                given.name(),
                extra.name()
            ),
            (Some(mode), _) | (None, Some(mode)) => mode,
            (None, None) => PhoneAuth::Enrolment,
        };
        if o.preemptive && o.phone_auth != PhoneAuth::Enrolment {
            bail!("--preemptive goes with --phone-auth enrolment");
        }
        if o.devices == 0 {
            o.devices = o.phones;
        }
        if o.phones == 0 || o.concurrency == 0 || o.tenants == 0 || o.repeat == 0 {
            bail!("--phones, --concurrency, --tenants and --repeat must be at least 1");
        }
        if o.client_threads == Some(0) {
            bail!("--client-threads must be at least 1");
        }
        if o.devices < o.phones && o.prepare.is_none() {
            bail!(
                "--devices ({}) must be at least --phones ({})",
                o.devices,
                o.phones
            );
        }
        if o.devices > MAX_DEVICES {
            bail!("--devices: at most {MAX_DEVICES} (24 bits of MAC per vendor prefix)");
        }
        if o.target.is_some() {
            if o.cert.is_none() && o.verify != Verify::None {
                bail!("--target needs --cert FILE (the server's certificate) or --insecure");
            }
        } else if o.server_pid.is_some() || o.metrics.is_some() {
            bail!("--server-pid and --metrics go with --target");
        }
        Ok(Some(o))
    }
}

/// The `phone_auth` member of `--tenant-extra`, if it has one (`mtls` authenticates like
/// `enrolment` until client certificates are implemented).
fn phone_auth_in(extra: &str) -> anyhow::Result<Option<PhoneAuth>> {
    let members: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&format!("{{{extra}}}")).with_context(|| {
            format!("--tenant-extra {extra}: not JSON object members (\"key\": value, …)")
        })?;
    Ok(match members.get("phone_auth") {
        None => None,
        Some(v) => Some(match v.as_str() {
            Some("mac") => PhoneAuth::Mac,
            Some("enrolment" | "mtls") => PhoneAuth::Enrolment,
            _ => {
                bail!("--tenant-extra: phone_auth {v}: expected \"mac\", \"enrolment\" or \"mtls\"")
            }
        }),
    })
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> anyhow::Result<T> {
    v.replace('_', "")
        .parse()
        .map_err(|_| anyhow::anyhow!("{flag} {v}: not a number"))
}

fn seconds(flag: &str, v: &str) -> anyhow::Result<f64> {
    let s: f64 = number(flag, v.trim_end_matches('s'))?;
    if !(s > 0.0 && s.is_finite()) {
        bail!("{flag} {v}: expected a positive number of seconds");
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// The fleet: which devices exist, and how each phone asks for its files

const MAX_DEVICES: usize = 1 << 24;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Vendor {
    Yealink,
    Snom,
    Gigaset,
}

impl Vendor {
    fn oui(self) -> [u8; 3] {
        match self {
            Vendor::Yealink => [0x80, 0x5e, 0xc0],
            Vendor::Snom => [0x00, 0x04, 0x13],
            Vendor::Gigaset => [0x7c, 0x2f, 0x80],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Vendor::Yealink => "yealink",
            Vendor::Snom => "snom",
            Vendor::Gigaset => "gigaset",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A deterministic, well-mixed 64-bit hash (splitmix64's finaliser), so that vendor and tenant
/// do not line up with the stride phones are picked at.
fn mix(index: u64) -> u64 {
    let mut z = index.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Fleet {
    devices: usize,
    tenants: usize,
    /// Raw JSON members added to each tenant row (`--tenant-extra`).
    tenant_extra: Option<String>,
}

/// One generated device.
#[derive(Clone, Copy, Debug)]
struct Device {
    vendor: Vendor,
    mac: [u8; 6],
    tenant: usize,
    hash: u64,
}

impl Fleet {
    fn device(&self, index: usize) -> Device {
        let hash = mix(index as u64);
        let vendor = match hash % 10 {
            0..=4 => Vendor::Yealink,
            5..=7 => Vendor::Snom,
            _ => Vendor::Gigaset,
        };
        let tenant = ((hash >> 32) % self.tenants as u64) as usize;
        let [a, b, c] = vendor.oui();
        let i = index as u32;
        Device {
            vendor,
            mac: [a, b, c, (i >> 16) as u8, (i >> 8) as u8, i as u8],
            tenant,
            hash,
        }
    }

    /// The device phone `phone` of `phones` is: spread evenly over the whole store, so a small
    /// storm against a large store looks devices up all over the index.
    fn phone(&self, phone: usize, phones: usize) -> Device {
        self.device(self.phone_index(phone, phones))
    }

    /// The index of the device phone `phone` of `phones` is.
    fn phone_index(&self, phone: usize, phones: usize) -> usize {
        (phone as u64 * self.devices as u64 / phones as u64) as usize
    }

    fn marker(&self) -> String {
        format!(
            "boot_storm fleet v1 devices={} tenants={} tenant_extra={}\n",
            self.devices,
            self.tenants,
            self.tenant_extra.as_deref().unwrap_or("")
        )
    }
}

impl Device {
    fn mac_colon_upper(&self) -> String {
        let m = self.mac;
        format!(
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }

    fn mac_colon_lower(&self) -> String {
        self.mac_colon_upper().to_ascii_lowercase()
    }

    fn mac_hex_upper(&self) -> String {
        self.mac.iter().map(|b| format!("{b:02X}")).collect()
    }

    fn mac_hex_lower(&self) -> String {
        self.mac_hex_upper().to_ascii_lowercase()
    }

    /// The 4-character label code of a Gigaset device.
    fn claim_code(&self) -> String {
        const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        (0..4)
            .map(|k| DIGITS[((self.hash >> (8 + 6 * k)) % 36) as usize] as char)
            .collect()
    }

    /// What a Gigaset phone claimed with its label code authenticates with out of the box:
    /// username = MAC, password = MAC-ID (`<MAC>-<code>`).
    fn mac_id_credential(&self) -> Credential {
        let mac = self.mac_hex_upper();
        Credential {
            password: format!("{mac}-{}", self.claim_code()),
            username: mac,
        }
    }

    /// The User-Agent the vendor's phone sends (fixtures/requests.json).
    fn user_agent(&self) -> String {
        match self.vendor {
            Vendor::Yealink => format!("Yealink SIP-T46S 66.86.0.15 {}", self.mac_colon_lower()),
            Vendor::Snom => format!(
                "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 {} SXM:0 UXM:0)",
                self.mac_hex_upper()
            ),
            Vendor::Gigaset => format!(
                "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;{}",
                self.mac_hex_upper()
            ),
        }
    }

    /// The files the phone asks for on boot, in order, with the status each must get.
    fn boot_sequence(&self) -> Vec<Step> {
        let step = |path: String, status: u16, what: &'static str| Step { path, status, what };
        match self.vendor {
            Vendor::Yealink => vec![
                step(
                    format!("/{}.boot", self.mac_hex_lower()),
                    404,
                    "yealink <mac>.boot",
                ),
                step(
                    "/y000000000000.boot".into(),
                    404,
                    "yealink y000000000000.boot",
                ),
                step(
                    "/y000000000066.cfg".into(),
                    200,
                    "yealink common y000000000066.cfg",
                ),
                step(
                    format!("/{}.cfg", self.mac_hex_lower()),
                    200,
                    "yealink <mac>.cfg",
                ),
            ],
            Vendor::Snom => vec![
                step("/snomD785.htm".into(), 200, "snom model snomD785.htm"),
                step(
                    format!("/snomD785-{}.htm", self.mac_hex_upper()),
                    200,
                    "snom snomD785-<MAC>.htm",
                ),
            ],
            Vendor::Gigaset => vec![
                step("/provisioning.xml".into(), 404, "gigaset provisioning.xml"),
                step(
                    format!("/{}.xml", self.mac_hex_upper()),
                    200,
                    "gigaset <MAC>.xml",
                ),
            ],
        }
    }

    fn requests(&self, sequence: Sequence) -> Vec<Step> {
        let mut steps = self.boot_sequence();
        if sequence == Sequence::Device {
            steps.drain(..steps.len() - 1);
        }
        steps
    }
}

/// One request of a boot sequence.
#[derive(Clone, Debug)]
struct Step {
    path: String,
    status: u16,
    what: &'static str,
}

/// Provisioning credentials a phone holds.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Credential {
    username: String,
    password: String,
}

/// The provisioning credentials an enrolment config hands the phone, in the vendor's own keys:
/// Yealink `static.auto_provision.server.username/password = …` lines, Snom
/// `<http_client_user perm="R">…</http_client_user>` and `http_client_pass` elements.
fn credentials_in(vendor: Vendor, body: &[u8]) -> Option<Credential> {
    let text = std::str::from_utf8(body).ok()?;
    let (username, password) = match vendor {
        Vendor::Yealink => {
            let setting = |key: &str| {
                text.lines().find_map(|l| {
                    let (k, v) = l.split_once('=')?;
                    (k.trim() == key).then(|| v.trim().to_owned())
                })
            };
            (
                setting("static.auto_provision.server.username")?,
                setting("static.auto_provision.server.password")?,
            )
        }
        Vendor::Snom => {
            let element = |tag: &str| {
                let start = text.find(&format!("<{tag}"))?;
                let rest = &text[start..];
                let value = &rest[rest.find('>')? + 1..];
                Some(value[..value.find('<')?].trim().to_owned())
            };
            (element("http_client_user")?, element("http_client_pass")?)
        }
        Vendor::Gigaset => return None,
    };
    (!username.is_empty() && !password.is_empty()).then_some(Credential { username, password })
}

/// Reads `credentials.tsv` (device index, MAC, username, password), checking every row
/// against `fleet`. A missing file is an empty set.
fn read_credentials(fleet: &Fleet, path: &Path) -> anyhow::Result<HashMap<usize, Credential>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [index, mac, username, password] = fields[..] else {
            bail!(
                "{}:{}: expected 4 tab-separated fields",
                path.display(),
                n + 1
            );
        };
        let index: usize = index
            .parse()
            .with_context(|| format!("{}:{}: bad index", path.display(), n + 1))?;
        if index >= fleet.devices || fleet.device(index).mac_hex_upper() != mac {
            bail!(
                "{}:{}: device {index} {mac} is not in this fleet",
                path.display(),
                n + 1
            );
        }
        out.insert(
            index,
            Credential {
                username: username.to_owned(),
                password: password.to_owned(),
            },
        );
    }
    Ok(out)
}

/// Writes `credentials.tsv` (replacing it whole, through a temporary file; mode 0600: these
/// are the phones' provisioning passwords).
fn write_credentials(
    fleet: &Fleet,
    path: &Path,
    credentials: &HashMap<usize, Credential>,
) -> anyhow::Result<()> {
    let tmp = path.with_extension("tsv.tmp");
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let file = open
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    let mut w = BufWriter::new(file);
    writeln!(w, "index\tmac\tusername\tpassword")?;
    let mut indices: Vec<usize> = credentials.keys().copied().collect();
    indices.sort_unstable();
    for i in indices {
        let c = &credentials[&i];
        writeln!(
            w,
            "{i}\t{}\t{}\t{}",
            fleet.device(i).mac_hex_upper(),
            c.username,
            c.password
        )?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Writes the import document for `fleet` (streamed: a million devices is ~100 MB).
fn write_import(fleet: &Fleet, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(b"{\"tenants\": [\n")?;
    for t in 0..fleet.tenants {
        let sep = if t + 1 == fleet.tenants { "" } else { "," };
        let extra = fleet
            .tenant_extra
            .as_deref()
            .map_or_else(String::new, |e| format!(", {e}"));
        writeln!(
            w,
            "{{\"name\": \"t{t}\", \"sip_server\": \"t{t}.cloud.example\"{extra}}}{sep}"
        )?;
    }
    w.write_all(b"],\n\"devices\": [\n")?;
    for i in 0..fleet.devices {
        let d = fleet.device(i);
        let sep = if i + 1 == fleet.devices { "" } else { "," };
        let (mac, tenant) = (d.mac_colon_upper(), d.tenant);
        match d.vendor {
            Vendor::Yealink => writeln!(
                w,
                "{{\"mac\": \"{mac}\", \"tenant\": \"t{tenant}\", \"lines\": [{{\"user\": \"{}\", \"password\": \"pw-{:012x}\", \"display_name\": \"Desk {i}\"}}]}}{sep}",
                100_000 + i,
                d.hash >> 16
            )?,
            Vendor::Snom => writeln!(w, "{{\"mac\": \"{mac}\", \"tenant\": \"t{tenant}\"}}{sep}")?,
            Vendor::Gigaset => writeln!(
                w,
                "{{\"mac\": \"{mac}\", \"tenant\": \"t{tenant}\", \"claim_code\": \"{}\"}}{sep}",
                d.claim_code()
            )?,
        }
    }
    w.write_all(b"]}\n")?;
    w.flush()?;
    Ok(())
}

/// Writes `phones.tsv`: what other tools (compare-nginx.sh, curl) need to act as these phones.
fn write_phone_list(fleet: &Fleet, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut w = BufWriter::new(file);
    writeln!(w, "index\tvendor\tmac\ttenant\tuser_agent\tdevice_path")?;
    for i in 0..fleet.devices {
        let d = fleet.device(i);
        let device_path = d.requests(Sequence::Device).remove(0).path;
        writeln!(
            w,
            "{i}\t{}\t{}\tt{}\t{}\t{device_path}",
            d.vendor.name(),
            d.mac_hex_upper(),
            d.tenant,
            d.user_agent()
        )?;
    }
    w.flush()?;
    Ok(())
}

/// Makes sure `dir` holds `fleet`: generates and imports it unless a previous run already did.
/// True if it was already there (reused).
fn prepare(fleet: &Fleet, dir: &Path) -> anyhow::Result<bool> {
    let marker = dir.join("boot_storm.fleet");
    match std::fs::read_to_string(&marker) {
        Ok(m) if m == fleet.marker() => {
            println!(
                "data dir {} already holds this fleet: reusing it",
                dir.display()
            );
            return Ok(true);
        }
        Ok(m) => bail!(
            "{} holds another fleet ({}); use another --data-dir",
            dir.display(),
            m.trim()
        ),
        Err(_) if dir.join("zerotouch.db").exists() => bail!(
            "{} already holds a zerotouch store that boot_storm did not create",
            dir.display()
        ),
        Err(_) => {}
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    // Credentials of an earlier store would be wrong for this one.
    let _ = std::fs::remove_file(dir.join(CREDENTIALS_FILE));
    let document = dir.join("import.json");
    let started = Instant::now();
    write_import(fleet, &document)?;
    println!(
        "generated {} devices over {} tenants in {:.1} s",
        fleet.devices,
        fleet.tenants,
        started.elapsed().as_secs_f64()
    );
    let report = dir.join("import-report.json");
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_zerotouch"))
        .arg("import")
        .arg(&document)
        .arg("--data-dir")
        .arg(dir)
        .args(["--log-level", "warn"])
        .stdout(std::fs::File::create(&report)?)
        .status()
        .context("cannot run zerotouch import")?;
    if !status.success() {
        bail!(
            "zerotouch import failed ({status}); see {} (per-row results)",
            report.display()
        );
    }
    println!(
        "imported in {:.1} s (zerotouch import)",
        started.elapsed().as_secs_f64()
    );
    // The document and the per-row report can be large; the store holds everything now.
    let _ = std::fs::remove_file(&document);
    let _ = std::fs::remove_file(&report);
    std::fs::write(&marker, fleet.marker())?;
    Ok(false)
}

/// Where a kept data directory holds the credentials the enrolment pass handed out.
const CREDENTIALS_FILE: &str = "credentials.tsv";

// ---------------------------------------------------------------------------------------------
// The server under test

struct Server {
    child: Child,
    phones: SocketAddr,
    metrics: SocketAddr,
    log: PathBuf,
}

/// A port nobody listens on right now.
fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot find a free port")?;
    let mut ports = [0; N];
    for (p, l) in ports.iter_mut().zip(&listeners) {
        *p = l.local_addr()?.port();
    }
    Ok(ports)
}

impl Server {
    fn spawn(options: &Options, dir: &Path) -> anyhow::Result<Self> {
        let [phones_port, metrics_port] = free_ports::<2>()?;
        let phones = SocketAddr::from(([127, 0, 0, 1], phones_port));
        let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
        let log = dir.join("server.log");
        let binary = env!("CARGO_BIN_EXE_zerotouch");
        let mut command = match &options.server_cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .arg("--phones-addr")
            .arg(phones.to_string())
            .arg("--metrics-addr")
            .arg(metrics.to_string())
            .arg("--log-level")
            .arg(&options.server_log)
            .args(&options.server_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?);
        let child = command.spawn().context("cannot start zerotouch serve")?;
        Ok(Self {
            child,
            phones,
            metrics,
            log,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `/readyz` until it answers 200.
    fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "zerotouch serve exited ({status}) before it was ready:\n{}",
                    tail(&self.log, 20)
                );
            }
            if let Ok(response) = http_get(self.metrics, "/readyz") {
                if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
                    return Ok(started.elapsed());
                }
            }
            if started.elapsed() > limit {
                bail!("zerotouch serve not ready after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the grace period, then SIGKILL.
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A plain-HTTP GET (the metrics listener), returning the whole response.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Every sample on a metrics page, by series (name and labels as exposed).
fn scrape(addr: SocketAddr) -> Option<HashMap<String, f64>> {
    let page = http_get(addr, "/metrics").ok()?;
    let body = page.split_once("\r\n\r\n")?.1;
    Some(
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect(),
    )
}

/// Resident memory of a process, MiB: (current VmRSS, peak VmHWM).
fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time (user + system) a process has used so far, in seconds.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

// ---------------------------------------------------------------------------------------------
// The client: TLS with X25519 only, and a minimal HTTP/1.1 exchange

/// Accepts exactly one certificate (the server's self-signed one) and checks the handshake
/// signature with it: the trust a phone provisioned with that certificate would have.
#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Checks nothing (`--insecure`).
#[derive(Debug)]
struct Blind(Vec<SignatureScheme>);

impl ServerCertVerifier for Blind {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.clone()
    }
}

fn client_config(options: &Options, cert: Option<&Path>) -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(CryptoProvider {
        kx_groups: vec![rustls::crypto::ring::kx_group::X25519],
        ..rustls::crypto::ring::default_provider()
    });
    let versions: &[&rustls::SupportedProtocolVersion] = if options.tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12]
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .context("TLS versions")?;
    let certs = || -> anyhow::Result<Vec<CertificateDer<'static>>> {
        let path = cert.context("no certificate to trust")?;
        let certs = CertificateDer::pem_file_iter(path)
            .with_context(|| format!("read {}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parse {}", path.display()))?;
        if certs.is_empty() {
            bail!("{} holds no certificate", path.display());
        }
        Ok(certs)
    };
    let mut config = match options.verify {
        Verify::WebPki => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs()? {
                roots
                    .add(c)
                    .context("certificate not usable as a trust anchor")?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Verify::Pin => {
            let leaf = certs()?.remove(0);
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    leaf,
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth()
        }
        Verify::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Blind(
                provider
                    .signature_verification_algorithms
                    .supported_schemes(),
            )))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    Ok(config)
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// What the client knows about the server and how to behave.
struct Client {
    addr: SocketAddr,
    host: String,
    server_name: ServerName<'static>,
    tls: Arc<ClientConfig>,
    keepalive: bool,
    resume: bool,
    timeout: Duration,
    fleet: Fleet,
    phones: usize,
    sequence: Sequence,
    errors: Mutex<ErrorLog>,
    auth: PhoneAuth,
    preemptive: bool,
    /// Per phone (storm index): the provisioning credentials it holds (Gigaset: its MAC-ID
    /// from the start; Yealink and Snom: once enrolled or read back from credentials.tsv).
    credentials: Vec<OnceLock<Credential>>,
    /// Makes client nonces differ.
    cnonces: AtomicU64,
}

#[derive(Default)]
struct ErrorLog {
    count: u64,
    distinct: Vec<(String, u64)>,
}

impl ErrorLog {
    fn record(&mut self, message: String) {
        self.count += 1;
        if let Some(e) = self.distinct.iter_mut().find(|(m, _)| *m == message) {
            e.1 += 1;
        } else if self.distinct.len() < 64 {
            self.distinct.push((message, 1));
        }
    }
}

/// One response: status, where the body is in the buffer, whether the server closes, and
/// the Digest challenge of a 401.
struct Response {
    status: u16,
    body: std::ops::Range<usize>,
    close: bool,
    challenge: Option<Challenge>,
}

/// A `WWW-Authenticate: Digest …` challenge the client can answer (MD5, `qop=auth`).
#[derive(Clone, Debug)]
struct Challenge {
    realm: String,
    nonce: String,
    stale: bool,
}

/// Parses one `WWW-Authenticate` value; `None` unless it is a Digest challenge with MD5 (or
/// no algorithm, which means MD5) and `qop` offering `auth`.
fn parse_challenge(value: &str) -> Option<Challenge> {
    let (scheme, mut rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let (mut realm, mut nonce, mut stale, mut md5, mut auth) = (None, None, false, true, false);
    loop {
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (val, remaining) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim(), &after[end..])
            }
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(val.to_owned()),
            "nonce" => nonce = Some(val.to_owned()),
            "stale" => stale = val.eq_ignore_ascii_case("true"),
            "algorithm" => md5 = val.eq_ignore_ascii_case("MD5"),
            "qop" => {
                auth = val
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            }
            _ => {}
        }
        rest = remaining;
    }
    (md5 && auth).then_some(())?;
    Some(Challenge {
        realm: realm?,
        nonce: nonce?,
        stale,
    })
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Authorization` value answering `challenge` for `GET uri` (RFC 7616, MD5, qop=auth).
fn digest_authorization(
    credential: &Credential,
    challenge: &Challenge,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let Credential { username, password } = credential;
    let Challenge { realm, nonce, .. } = challenge;
    let ha1 = md5_hex(format!("{username}:{realm}:{password}").as_bytes());
    let ha2 = md5_hex(format!("GET:{uri}").as_bytes());
    let response = md5_hex(format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}").as_bytes());
    format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=MD5, qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\", response=\"{response}\""
    )
}

/// The nonce a phone answered its last challenge with, and the last nonce-count it used.
struct NonceUse {
    challenge: Challenge,
    nc: u32,
}

/// Why a file of a boot did not come out as expected.
struct FetchError {
    message: String,
    /// A 401 for a device the phone holds no credentials for (a bound device, its
    /// credentials lost).
    unanswerable: bool,
}

impl FetchError {
    fn new(message: String) -> Self {
        Self {
            message,
            unanswerable: false,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether `body` names `tenant` (`tenant: t5`, not `tenant: t50`).
fn names_tenant(body: &[u8], marker: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = find(&body[from..], marker) {
        let end = from + i + marker.len();
        match body.get(end) {
            Some(c) if c.is_ascii_alphanumeric() || *c == b'-' => from = end,
            _ => return true,
        }
    }
    false
}

impl Client {
    async fn connect(&self, config: &Arc<ClientConfig>) -> Result<Tls, String> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        TlsConnector::from(config.clone())
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))
    }

    /// Sends one request and reads the whole response into `buf`.
    async fn exchange(
        stream: &mut Tls,
        request: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<Response, String> {
        stream
            .write_all(request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        stream.flush().await.map_err(|e| format!("write: {e}"))?;
        buf.clear();
        let header_end = loop {
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(8192);
            }
            let searched = buf.len().saturating_sub(3);
            let n = stream
                .read_buf(buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed before the response header".into());
            }
            if let Some(i) = find(&buf[searched..], b"\r\n\r\n") {
                break searched + i + 4;
            }
            if buf.len() > 64 * 1024 {
                return Err("response header larger than 64 KiB".into());
            }
        };
        let head = std::str::from_utf8(&buf[..header_end])
            .map_err(|_| "response header is not UTF-8".to_owned())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut length = None;
        let mut challenge = None;
        let mut close = status_line.starts_with("HTTP/1.0");
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("bad content-length {value:?}"))?,
                );
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(format!("transfer-encoding {value} is not supported"));
            } else if status == 401
                && challenge.is_none()
                && name.eq_ignore_ascii_case("www-authenticate")
            {
                challenge = parse_challenge(value);
            }
        }
        match length {
            Some(length) => {
                let end = header_end + length;
                while buf.len() < end {
                    buf.reserve(end - buf.len());
                    let n = stream
                        .read_buf(buf)
                        .await
                        .map_err(|e| format!("read: {e}"))?;
                    if n == 0 {
                        return Err("connection closed before the body was complete".into());
                    }
                }
                Ok(Response {
                    status,
                    body: header_end..end,
                    close,
                    challenge,
                })
            }
            None => {
                // No length: the body runs to the end of the connection.
                loop {
                    buf.reserve(8192);
                    match stream.read_buf(buf).await {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => return Err(format!("read: {e}")),
                    }
                }
                Ok(Response {
                    status,
                    body: header_end..buf.len(),
                    close: true,
                    challenge,
                })
            }
        }
    }

    /// The TLS configuration for one phone: with --resume each phone keeps its own session
    /// store, so it resumes only its own earlier sessions (a phone after a power cut has none
    /// from before).
    fn phone_tls(&self) -> Arc<ClientConfig> {
        if self.resume {
            let mut c = (*self.tls).clone();
            c.resumption = Resumption::in_memory_sessions(4);
            Arc::new(c)
        } else {
            self.tls.clone()
        }
    }

    /// Fetches one file of a boot like a phone: one request, or with phone authentication
    /// also the answer to the server's Digest challenge (on the same connection when the
    /// server keeps it open). Checks the final status and, for a config, the tenant's name.
    /// `Ok(Some(body))` for a 200 (the body's place in `buf`).
    #[allow(clippy::too_many_arguments)]
    async fn fetch(
        &self,
        step: &Step,
        ua: &str,
        marker: &str,
        credential: Option<&Credential>,
        tls: &Arc<ClientConfig>,
        conn: &mut Option<Tls>,
        nonce: &mut Option<NonceUse>,
        stats: &mut Stats,
        buf: &mut Vec<u8>,
        request: &mut Vec<u8>,
    ) -> Result<Option<std::ops::Range<usize>>, FetchError> {
        let authenticate = self.auth == PhoneAuth::Enrolment && step.status == 200;
        let mut authorization = None;
        if authenticate && self.preemptive {
            if let (Some(n), Some(c)) = (nonce.as_mut(), credential) {
                n.nc += 1;
                authorization = Some(digest_authorization(
                    c,
                    &n.challenge,
                    &step.path,
                    n.nc,
                    &self.cnonce(),
                ));
            }
        }
        let started = Instant::now();
        let mut exchanges = 0;
        let result = loop {
            exchanges += 1;
            // Without keep-alive the connection stays open only for the answer to a challenge.
            let keep_open =
                self.keepalive || (authenticate && authorization.is_none() && credential.is_some());
            request.clear();
            request.extend_from_slice(b"GET ");
            request.extend_from_slice(step.path.as_bytes());
            request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
            request.extend_from_slice(self.host.as_bytes());
            request.extend_from_slice(b"\r\nUser-Agent: ");
            request.extend_from_slice(ua.as_bytes());
            request.extend_from_slice(b"\r\nAccept: */*\r\n");
            if let Some(a) = &authorization {
                request.extend_from_slice(b"Authorization: ");
                request.extend_from_slice(a.as_bytes());
                request.extend_from_slice(b"\r\n");
            }
            if !keep_open {
                request.extend_from_slice(b"Connection: close\r\n");
            }
            request.extend_from_slice(b"\r\n");

            let sent = Instant::now();
            let outcome = tokio::time::timeout(self.timeout, async {
                let mut stream = match conn.take() {
                    Some(s) => s,
                    None => {
                        stats.connections += 1;
                        self.connect(tls).await?
                    }
                };
                let response = Self::exchange(&mut stream, request, buf).await?;
                Ok::<_, String>((stream, response))
            })
            .await;
            stats.requests += 1;
            stats.latencies.push(micros(sent.elapsed()));
            let (stream, response) = match outcome {
                Err(_) => {
                    break Err(FetchError::new(format!(
                        "{}: timed out after {:?}",
                        step.what, self.timeout
                    )))
                }
                Ok(Err(e)) => break Err(FetchError::new(format!("{}: {e}", step.what))),
                Ok(Ok(r)) => r,
            };
            let reusable = keep_open && !response.close;
            if response.status == 429 {
                stats.throttled += 1;
            }
            if response.status == 401 && authenticate {
                stats.challenges += 1;
                let Some(challenge) = response.challenge else {
                    break Err(FetchError::new(format!(
                        "{}: 401 without a Digest MD5 qop=auth challenge",
                        step.what
                    )));
                };
                let Some(credential) = credential else {
                    break Err(FetchError {
                        message: format!(
                            "{}: 401 (the device is bound), but the phone holds no provisioning credentials",
                            step.what
                        ),
                        unanswerable: true,
                    });
                };
                // Answer a first challenge, or a later one that says our nonce went stale.
                if !(authorization.is_none() || challenge.stale) || exchanges >= 3 {
                    break Err(FetchError::new(format!(
                        "{}: 401 again after a Digest answer",
                        step.what
                    )));
                }
                authorization = Some(digest_authorization(
                    credential,
                    &challenge,
                    &step.path,
                    1,
                    &self.cnonce(),
                ));
                *nonce = Some(NonceUse { challenge, nc: 1 });
                if reusable {
                    *conn = Some(stream);
                } else {
                    stats.reconnects += 1;
                }
                continue;
            }
            let result = if response.status != step.status {
                Err(FetchError::new(format!(
                    "{}: status {}, expected {}",
                    step.what, response.status, step.status
                )))
            } else if step.status == 200 {
                if names_tenant(&buf[response.body.clone()], marker.as_bytes()) {
                    Ok(Some(response.body))
                } else {
                    Err(FetchError::new(format!(
                        "{}: the body does not name the phone's tenant",
                        step.what
                    )))
                }
            } else {
                Ok(None)
            };
            if self.keepalive && reusable {
                *conn = Some(stream);
            }
            break result;
        };
        stats.fetches += 1;
        stats.fetch_latencies.push(micros(started.elapsed()));
        result
    }

    fn cnonce(&self) -> String {
        format!(
            "{:016x}",
            mix(self.cnonces.fetch_add(1, Ordering::Relaxed) ^ 0x5a5a_5a5a)
        )
    }

    fn record(&self, error: &FetchError) {
        if let Ok(mut log) = self.errors.lock() {
            log.record(error.message.clone());
        }
    }

    /// One phone's boot: its whole sequence, each response checked.
    async fn boot(
        &self,
        phone: usize,
        stats: &mut Stats,
        buf: &mut Vec<u8>,
        request: &mut Vec<u8>,
    ) {
        let device = self.fleet.phone(phone, self.phones);
        let ua = device.user_agent();
        let marker = format!("tenant: t{}", device.tenant);
        let credential = self.credentials.get(phone).and_then(OnceLock::get);
        let tls = self.phone_tls();
        let started = Instant::now();
        let mut failed = false;
        let mut conn: Option<Tls> = None;
        // A phone after a power cut holds no nonce; it keeps the one of its first challenge.
        let mut nonce = None;
        for step in device.requests(self.sequence) {
            let fetched = self
                .fetch(
                    &step, &ua, &marker, credential, &tls, &mut conn, &mut nonce, stats, buf,
                    request,
                )
                .await;
            if let Err(e) = fetched {
                failed = true;
                stats.unanswerable += u64::from(e.unanswerable);
                self.record(&e);
            }
        }
        stats.boots.push(micros(started.elapsed()));
        stats.vendors[device.vendor.index()] += 1;
        if failed {
            stats.failed_phones += 1;
        }
    }

    /// The enrolment pass for one phone: its per-device file, once. A Yealink or Snom phone
    /// is bound by it and keeps the credentials the config carries; a Gigaset phone answers
    /// the challenge with its MAC-ID.
    async fn enrol(
        &self,
        phone: usize,
        stats: &mut Stats,
        buf: &mut Vec<u8>,
        request: &mut Vec<u8>,
    ) -> Option<Credential> {
        let device = self.fleet.phone(phone, self.phones);
        let ua = device.user_agent();
        let marker = format!("tenant: t{}", device.tenant);
        let credential = self.credentials.get(phone).and_then(OnceLock::get);
        let tls = self.phone_tls();
        let started = Instant::now();
        let step = device.requests(Sequence::Device).remove(0);
        let fetched = self
            .fetch(
                &step, &ua, &marker, credential, &tls, &mut None, &mut None, stats, buf, request,
            )
            .await;
        stats.boots.push(micros(started.elapsed()));
        stats.vendors[device.vendor.index()] += 1;
        let issued = match fetched {
            Ok(Some(body)) if device.vendor != Vendor::Gigaset => {
                match credentials_in(device.vendor, &buf[body]) {
                    Some(c) => Ok(Some(c)),
                    None => Err(FetchError::new(format!(
                        "{}: the enrolment config carries no provisioning credentials",
                        step.what
                    ))),
                }
            }
            Ok(_) => Ok(None),
            Err(e) => Err(e),
        };
        match issued {
            Ok(c) => c,
            Err(e) => {
                stats.failed_phones += 1;
                stats.unanswerable += u64::from(e.unanswerable);
                self.record(&e);
                None
            }
        }
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// What one worker saw.
#[derive(Default)]
struct Stats {
    /// HTTP exchanges, 401s included.
    requests: u64,
    /// Files of boot sequences, each once however many exchanges it took.
    fetches: u64,
    /// 401 challenges received.
    challenges: u64,
    /// Challenges whose answer needed a new connection (the server closed).
    reconnects: u64,
    /// 429s (the server's miss throttle).
    throttled: u64,
    /// 401s the phone could not answer: no credentials for a bound device.
    unanswerable: u64,
    connections: u64,
    failed_phones: u64,
    vendors: [u64; 3],
    latencies: Vec<u32>,
    fetch_latencies: Vec<u32>,
    boots: Vec<u32>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.requests += other.requests;
        self.fetches += other.fetches;
        self.challenges += other.challenges;
        self.reconnects += other.reconnects;
        self.throttled += other.throttled;
        self.unanswerable += other.unanswerable;
        self.connections += other.connections;
        self.failed_phones += other.failed_phones;
        for (a, b) in self.vendors.iter_mut().zip(other.vendors) {
            *a += b;
        }
        self.latencies.extend(other.latencies);
        self.fetch_latencies.extend(other.fetch_latencies);
        self.boots.extend(other.boots);
    }
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
fn percentile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

/// One storm's figures.
struct RunResult {
    phones: usize,
    requests: u64,
    errors: u64,
    wall: Duration,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    peak_rss_mib: Option<f64>,
    auth: PhoneAuth,
    fetches: u64,
    challenges: u64,
}

impl RunResult {
    fn phones_per_s(&self) -> f64 {
        self.phones as f64 / self.wall.as_secs_f64()
    }
    fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }
}

async fn storm(client: Arc<Client>, concurrency: usize) -> (Stats, Duration) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(client.phones))
        .map(|_| {
            let client = client.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut stats = Stats::default();
                let mut buf = Vec::with_capacity(16 * 1024);
                let mut request = Vec::with_capacity(512);
                loop {
                    let phone = next.fetch_add(1, Ordering::Relaxed);
                    if phone >= client.phones {
                        break;
                    }
                    client.boot(phone, &mut stats, &mut buf, &mut request).await;
                }
                stats
            })
        })
        .collect();
    let mut total = Stats::default();
    for w in workers {
        if let Ok(stats) = w.await {
            total.merge(stats);
        }
    }
    (total, started.elapsed())
}

/// The enrolment pass: `phones` (storm indices) each fetch their per-device file once, C at a
/// time. Returns what it saw and the credentials handed out, by phone.
async fn enrolment_pass(
    client: Arc<Client>,
    concurrency: usize,
    phones: Arc<Vec<usize>>,
) -> (Stats, Duration, Vec<(usize, Credential)>) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(phones.len()))
        .map(|_| {
            let client = client.clone();
            let next = next.clone();
            let phones = phones.clone();
            tokio::spawn(async move {
                let mut stats = Stats::default();
                let mut issued = Vec::new();
                let mut buf = Vec::with_capacity(16 * 1024);
                let mut request = Vec::with_capacity(512);
                while let Some(&phone) = phones.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Some(c) = client
                        .enrol(phone, &mut stats, &mut buf, &mut request)
                        .await
                    {
                        issued.push((phone, c));
                    }
                }
                (stats, issued)
            })
        })
        .collect();
    let mut total = Stats::default();
    let mut issued = Vec::new();
    for w in workers {
        if let Ok((stats, i)) = w.await {
            total.merge(stats);
            issued.extend(i);
        }
    }
    (total, started.elapsed(), issued)
}

// ---------------------------------------------------------------------------------------------
// Putting it together

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
    let mut results = Vec::new();
    let mut interrupted = false;
    for run in 1..=options.repeat {
        if let Ok(mut log) = client.errors.lock() {
            *log = ErrorLog::default();
        }
        let before = metrics.and_then(scrape);
        let server_cpu_before = server_pid.and_then(|p| cpu_seconds(&p.to_string()));
        let client_cpu_before = cpu_seconds("self");
        let outcome = runtime.block_on(async {
            tokio::select! {
                r = storm(client.clone(), options.concurrency) => Some(r),
                _ = tokio::signal::ctrl_c() => None,
            }
        });
        let Some((mut stats, wall)) = outcome else {
            eprintln!("interrupted");
            interrupted = true;
            break;
        };
        let after = metrics.and_then(scrape);
        let secs = wall.as_secs_f64();
        let server_cpu = server_pid
            .and_then(|p| cpu_seconds(&p.to_string()))
            .zip(server_cpu_before)
            .map(|(a, b)| (a - b) / secs * 100.0);
        let client_cpu = cpu_seconds("self")
            .zip(client_cpu_before)
            .map(|(a, b)| (a - b) / secs * 100.0);
        let rss = server_pid.and_then(rss_mib);
        stats.latencies.sort_unstable();
        stats.fetch_latencies.sort_unstable();
        stats.boots.sort_unstable();
        let errors = client.errors.lock().map(|l| l.count).unwrap_or(0);
        let result = RunResult {
            phones: options.phones,
            requests: stats.requests,
            errors,
            wall,
            p50_ms: percentile_ms(&stats.latencies, 0.50),
            p99_ms: percentile_ms(&stats.latencies, 0.99),
            max_ms: percentile_ms(&stats.latencies, 1.0),
            peak_rss_mib: rss.map(|r| r.1),
            auth: options.phone_auth,
            fetches: stats.fetches,
            challenges: stats.challenges,
        };

        println!(
            "\nrun {run}/{}: {} phones ({} yealink, {} snom, {} gigaset), {} requests for {} files over {} TLS connections in {:.2} s",
            options.repeat,
            options.phones,
            stats.vendors[0],
            stats.vendors[1],
            stats.vendors[2],
            stats.requests,
            stats.fetches,
            stats.connections,
            secs
        );
        if options.phone_auth == PhoneAuth::Enrolment {
            println!(
                "  phone auth   {} × 401 answered with Digest MD5 ({} on a new connection: the server closed){}",
                stats.challenges,
                stats.reconnects,
                if options.preemptive {
                    ", preemptive after the first"
                } else {
                    ""
                }
            );
        }
        println!(
            "  throughput   {:.1} phones/s, {:.1} requests/s",
            result.phones_per_s(),
            result.requests_per_s()
        );
        println!(
            "  per request  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            result.p50_ms,
            percentile_ms(&stats.latencies, 0.90),
            result.p99_ms,
            result.max_ms
        );
        if options.phone_auth == PhoneAuth::Enrolment {
            println!(
                "  per file     p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms (challenge included)",
                percentile_ms(&stats.fetch_latencies, 0.50),
                percentile_ms(&stats.fetch_latencies, 0.90),
                percentile_ms(&stats.fetch_latencies, 0.99),
                percentile_ms(&stats.fetch_latencies, 1.0)
            );
        }
        println!(
            "  per boot     p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            percentile_ms(&stats.boots, 0.50),
            percentile_ms(&stats.boots, 0.90),
            percentile_ms(&stats.boots, 0.99),
            percentile_ms(&stats.boots, 1.0)
        );
        println!(
            "  errors       {} in {} of {} phones",
            errors, stats.failed_phones, options.phones
        );
        if stats.throttled > 0 {
            println!(
                "    of which {} × 429 from the server's miss throttle: phones that authenticate correctly were throttled",
                stats.throttled
            );
        }
        if let Ok(log) = client.errors.lock() {
            for (message, count) in log.distinct.iter().take(5) {
                println!("    {count} × {message}");
            }
            if log.distinct.len() > 5 {
                println!("    … {} more distinct messages", log.distinct.len() - 5);
            }
        }
        println!(
            "  CPU          server {}, client {} (100% = one CPU; this machine has {machine_cpus})",
            server_cpu.map_or("n/a".into(), |c| format!("{c:.0}%")),
            client_cpu.map_or("n/a".into(), |c| format!("{c:.0}%")),
        );
        match rss {
            Some((now, peak)) => {
                println!("  server RSS   {now:.1} MiB now, {peak:.1} MiB peak (VmHWM)")
            }
            None => println!("  server RSS   n/a (give --server-pid)"),
        }
        if let (Some(before), Some(after)) = (before, after) {
            print_server_counters(&before, &after);
        }
        println!("{}", machine_line(&result, Some(run)));
        results.push(result);
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

/// The `phone_auth` and `--tenant-extra` members of every tenant row. Spelled as earlier
/// versions' `--tenant-extra '"phone_auth": "mac"'` was, so fleets they prepared are reused.
fn tenant_members(options: &Options) -> String {
    match &options.tenant_extra {
        Some(extra) if phone_auth_in(extra).ok().flatten().is_some() => extra.clone(),
        Some(extra) => format!("\"phone_auth\": \"{}\", {extra}", options.phone_auth.name()),
        None => format!("\"phone_auth\": \"{}\"", options.phone_auth.name()),
    }
}

/// Gives every phone its credentials before the storm: Gigaset phones their MAC-ID, Yealink
/// and Snom phones those kept in `file` by an earlier run, or else those of their enrolment,
/// fetched in an enrolment pass (not measured) that also checks that Gigaset phones get in
/// with their MAC-ID. False (after saying why) if any phone could not get in.
fn enrol_fleet(
    options: &Options,
    client: &Arc<Client>,
    runtime: &tokio::runtime::Runtime,
    file: Option<&Path>,
    reused: bool,
    metrics: Option<SocketAddr>,
) -> anyhow::Result<bool> {
    let fleet = &client.fleet;
    let mut stored = match file {
        Some(f) => read_credentials(fleet, f)?,
        None => HashMap::new(),
    };
    let (mut held, mut binding, mut gigaset) = (0, 0, 0);
    let mut todo = Vec::new();
    for (phone, slot) in client.credentials.iter().enumerate() {
        let device = fleet.phone(phone, options.phones);
        if device.vendor == Vendor::Gigaset {
            let _ = slot.set(device.mac_id_credential());
            gigaset += 1;
            todo.push(phone);
        } else if let Some(c) = stored.get(&fleet.phone_index(phone, options.phones)) {
            let _ = slot.set(c.clone());
            held += 1;
        } else {
            binding += 1;
            todo.push(phone);
        }
    }
    let where_kept = file.map_or_else(
        || "none kept: no --data-dir".to_owned(),
        |f| format!("kept in {}", f.display()),
    );
    println!(
        "enrolment pass: {binding} Yealink/Snom phones to enrol, {gigaset} Gigaset phones to check (MAC-ID), {held} phones hold stored credentials ({where_kept})"
    );
    if reused && binding > 0 {
        println!(
            "  note: the fleet is reused and {binding} phones have no stored credentials: enrolling them works only if no earlier run bound them"
        );
    }
    if file.is_none() && options.target.is_some() {
        println!(
            "  note: no --data-dir: the credentials are kept in memory only; a later run against this server cannot authenticate these phones"
        );
    }
    let before = metrics.and_then(scrape);
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = enrolment_pass(client.clone(), options.concurrency, Arc::new(todo)) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let Some((stats, wall, issued)) = outcome else {
        eprintln!("interrupted");
        return Ok(false);
    };
    let after = metrics.and_then(scrape);
    // Keep what was handed out before anything else: the store has bound these devices.
    for (phone, c) in &issued {
        stored.insert(fleet.phone_index(*phone, options.phones), c.clone());
        let _ = client.credentials[*phone].set(c.clone());
    }
    if let (Some(f), false) = (file, issued.is_empty()) {
        write_credentials(fleet, f, &stored)?;
    }
    let errors = client.errors.lock().map(|l| l.count).unwrap_or(0);
    let phones = stats.vendors.iter().sum::<u64>();
    let secs = wall.as_secs_f64();
    let mut boots = stats.boots;
    boots.sort_unstable();
    println!(
        "  {phones} phones in {secs:.2} s ({:.1} phones/s, not measured as the storm), {} requests ({} answered 401s) over {} TLS connections; {} credentials issued{}",
        phones as f64 / secs.max(1e-9),
        stats.requests,
        stats.challenges,
        stats.connections,
        issued.len(),
        match (file, issued.is_empty()) {
            (Some(f), false) => format!(", kept in {}", f.display()),
            _ => String::new(),
        }
    );
    println!(
        "  per phone    p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile_ms(&boots, 0.50),
        percentile_ms(&boots, 0.99),
        percentile_ms(&boots, 1.0)
    );
    println!(
        "  errors       {errors} in {} of {phones} phones{}",
        stats.failed_phones,
        if stats.throttled > 0 {
            format!(
                " ({} × 429 from the server's miss throttle)",
                stats.throttled
            )
        } else {
            String::new()
        }
    );
    if let Ok(log) = client.errors.lock() {
        for (message, count) in log.distinct.iter().take(5) {
            println!("    {count} × {message}");
        }
    }
    if let (Some(before), Some(after)) = (before, after) {
        print_server_counters(&before, &after);
    }
    println!(
        "boot_storm_enrolment phones={phones} requests={} errors={errors} phones_per_s={:.1} issued={}",
        stats.requests,
        phones as f64 / secs.max(1e-9),
        issued.len()
    );
    if errors == 0 {
        return Ok(true);
    }
    if stats.unanswerable > 0 {
        eprintln!(
            "boot_storm: {} phones are bound already and no credentials are stored for them ({where_kept}): an earlier run enrolled this fleet without keeping its credentials.tsv. Use a fresh --data-dir (or reopen the devices' enrolment windows).",
            stats.unanswerable
        );
    } else {
        eprintln!(
            "boot_storm: the enrolment pass failed for {} phones (a reused fleet's enrolment windows close 168 h after its import); no storm",
            stats.failed_phones
        );
    }
    Ok(false)
}

/// Server-side counters for the run: what the server saw, to compare with what the client saw.
fn print_server_counters(before: &HashMap<String, f64>, after: &HashMap<String, f64>) {
    let delta = |pred: &dyn Fn(&str) -> bool| -> f64 {
        after
            .iter()
            .filter(|(k, _)| pred(k))
            .map(|(k, v)| v - before.get(k).copied().unwrap_or(0.0))
            .sum::<f64>()
            .max(0.0)
    };
    let mut outcomes: Vec<(String, f64)> = Vec::new();
    for key in after.keys() {
        if let Some(rest) = key.strip_prefix("zerotouch_phone_requests_total{") {
            if let Some(outcome) = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("outcome=\""))
                .map(|o| o.trim_end_matches(['}', '"']).to_owned())
            {
                if !outcomes.iter().any(|(o, _)| *o == outcome) {
                    let n = delta(&|k: &str| {
                        k.starts_with("zerotouch_phone_requests_total{")
                            && k.contains(&format!("outcome=\"{outcome}\""))
                    });
                    outcomes.push((outcome, n));
                }
            }
        }
    }
    outcomes.retain(|(_, n)| *n > 0.0);
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    let outcomes: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
    println!(
        "  server saw   {}; render cache {} hits, {} misses; {} TLS handshake failures",
        if outcomes.is_empty() {
            "no phone requests".to_owned()
        } else {
            outcomes.join(", ")
        },
        delta(&|k| k.starts_with("zerotouch_render_cache_lookups_total") && k.contains("hit")),
        delta(&|k| k.starts_with("zerotouch_render_cache_lookups_total") && k.contains("miss")),
        delta(&|k| k.starts_with("zerotouch_tls_handshake_failures_total")),
    );
}

/// The figures of several runs: median throughput and latency, errors summed, the worst max.
fn summarise(mut results: Vec<RunResult>) -> RunResult {
    let errors = results.iter().map(|r| r.errors).sum();
    let max_ms = results.iter().map(|r| r.max_ms).fold(0.0, f64::max);
    let peak = results
        .iter()
        .filter_map(|r| r.peak_rss_mib)
        .reduce(f64::max);
    results.sort_by(|a, b| a.phones_per_s().total_cmp(&b.phones_per_s()));
    let mid = results.len() / 2;
    let mut median = results.swap_remove(mid);
    median.errors = errors;
    median.max_ms = max_ms;
    median.peak_rss_mib = peak;
    median
}

fn machine_line(r: &RunResult, run: Option<usize>) -> String {
    format!(
        "boot_storm{} phones={} requests={} errors={} phones_per_s={:.1} requests_per_s={:.1} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} peak_rss_mib={} auth={} fetches={} challenges={}",
        run.map_or_else(String::new, |n| format!("_run run={n}")),
        r.phones,
        r.requests,
        r.errors,
        r.phones_per_s(),
        r.requests_per_s(),
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.peak_rss_mib
            .map_or_else(|| "na".to_owned(), |m| format!("{m:.1}")),
        r.auth.name(),
        r.fetches,
        r.challenges
    )
}
