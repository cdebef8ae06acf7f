//! The boot storm's command line: every option, its default, and the checks that they fit
//! together; and the members every tenant row of the generated import gets from them.
//!
//! Flags are read by the benches' shared command line (`harness::cli`). Must not know how the
//! fleet is generated or how phones fetch.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::harness::cli::Flags;

/// Devices a fleet may have: a MAC has 24 bits after its vendor prefix.
pub(crate) const MAX_DEVICES: usize = 1 << 24;

/// What `--help` prints.
pub(crate) const USAGE: &str = "\
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

/// How the client checks the server's certificate (`--verify`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Verify {
    Pin,
    WebPki,
    None,
}

/// How the tenants' phones authenticate (`phone_auth`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum PhoneAuth {
    /// The MAC alone is enough.
    Mac,
    /// Enrolment: bound on the first fetch, then HTTP Digest (Gigaset: MAC-ID from the start).
    Enrolment,
}

impl PhoneAuth {
    /// Its name, as `--phone-auth` and the import spell it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            PhoneAuth::Mac => "mac",
            PhoneAuth::Enrolment => "enrolment",
        }
    }
}

/// What each phone fetches in a storm (`--sequence`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Sequence {
    Boot,
    Device,
}

/// The command line, checked; each field is the option of that name in [`USAGE`].
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) phones: usize,
    pub(crate) concurrency: usize,
    pub(crate) keepalive: bool,
    pub(crate) phone_auth: PhoneAuth,
    pub(crate) preemptive: bool,
    pub(crate) tls13: bool,
    pub(crate) resume: bool,
    pub(crate) sequence: Sequence,
    pub(crate) devices: usize,
    pub(crate) tenants: usize,
    pub(crate) repeat: usize,
    pub(crate) timeout: Duration,
    pub(crate) client_threads: Option<usize>,
    pub(crate) client_cpus: Option<String>,
    pub(crate) server_cpus: Option<String>,
    pub(crate) server_log: String,
    pub(crate) server_args: Vec<String>,
    pub(crate) tenant_extra: Option<String>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) ready_timeout: Duration,
    pub(crate) prepare: Option<PathBuf>,
    pub(crate) target: Option<String>,
    pub(crate) server_pid: Option<u32>,
    pub(crate) metrics: Option<String>,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) verify: Verify,
}

impl Options {
    /// `Ok(None)`: help was asked for.
    pub(crate) fn parse(args: &[String]) -> anyhow::Result<Option<Self>> {
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
        let mut flags = Flags::new(args);
        while let Some(flag) = flags.next_flag() {
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--phones" => o.phones = flags.number(&flag)?,
                "--concurrency" => o.concurrency = flags.number(&flag)?,
                "--keepalive" => {
                    o.keepalive = match flags.value(&flag)?.as_str() {
                        "on" => true,
                        "off" => false,
                        v => bail!("--keepalive {v}: expected on or off"),
                    }
                }
                "--phone-auth" => {
                    phone_auth = Some(match flags.value(&flag)?.as_str() {
                        "mac" => PhoneAuth::Mac,
                        "enrolment" | "enrollment" => PhoneAuth::Enrolment,
                        v => bail!("--phone-auth {v}: expected mac or enrolment"),
                    })
                }
                "--preemptive" => o.preemptive = true,
                "--tls" => {
                    o.tls13 = match flags.value(&flag)?.as_str() {
                        "1.3" => true,
                        "1.2" => false,
                        v => bail!("--tls {v}: expected 1.2 or 1.3"),
                    }
                }
                "--resume" => o.resume = true,
                "--sequence" | "--requests-per-phone" => {
                    o.sequence = match flags.value(&flag)?.as_str() {
                        "boot" | "vendor" => Sequence::Boot,
                        "device" | "1" => Sequence::Device,
                        v => bail!("{flag} {v}: expected boot (the vendor's sequence) or device"),
                    }
                }
                "--devices" => o.devices = flags.number(&flag)?,
                "--tenants" => o.tenants = flags.number(&flag)?,
                "--repeat" => o.repeat = flags.number(&flag)?,
                "--timeout" => o.timeout = Duration::from_secs_f64(flags.seconds(&flag)?),
                "--client-threads" => o.client_threads = Some(flags.number(&flag)?),
                "--client-cpus" => o.client_cpus = Some(flags.value(&flag)?),
                "--server-cpus" => o.server_cpus = Some(flags.value(&flag)?),
                "--server-log" => o.server_log = flags.value(&flag)?,
                "--server-arg" => o.server_args.push(flags.value(&flag)?),
                "--tenant-extra" => o.tenant_extra = Some(flags.value(&flag)?),
                "--data-dir" => o.data_dir = Some(flags.value(&flag)?.into()),
                "--ready-timeout" => {
                    o.ready_timeout = Duration::from_secs_f64(flags.seconds(&flag)?)
                }
                "--prepare" => o.prepare = Some(flags.value(&flag)?.into()),
                "--target" => o.target = Some(flags.value(&flag)?),
                "--server-pid" => o.server_pid = Some(flags.number(&flag)?),
                "--metrics" => o.metrics = Some(flags.value(&flag)?),
                "--cert" => o.cert = Some(flags.value(&flag)?.into()),
                "--insecure" => insecure = true,
                "--verify" => {
                    verify_given = true;
                    o.verify = match flags.value(&flag)?.as_str() {
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
pub(crate) fn phone_auth_in(extra: &str) -> anyhow::Result<Option<PhoneAuth>> {
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

/// The `phone_auth` and `--tenant-extra` members of every tenant row. Spelled as earlier
/// versions' `--tenant-extra '"phone_auth": "mac"'` was, so fleets they prepared are reused.
pub(crate) fn tenant_members(options: &Options) -> String {
    match &options.tenant_extra {
        Some(extra) if phone_auth_in(extra).ok().flatten().is_some() => extra.clone(),
        Some(extra) => format!("\"phone_auth\": \"{}\", {extra}", options.phone_auth.name()),
        None => format!("\"phone_auth\": \"{}\"", options.phone_auth.name()),
    }
}
