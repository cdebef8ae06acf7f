//! The server under test: `zerotouch serve` spawned on a prepared data directory (or pinned to
//! CPUs), waited for, and stopped; and what can be read about a server from outside: its
//! `/metrics` counters, its memory and the CPU time it used.
//!
//! Must not know phones or the storm.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::harness::process::{self, Readiness};
use crate::options::Options;

/// `zerotouch serve`, spawned; stopped when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) phones: SocketAddr,
    pub(crate) metrics: SocketAddr,
    pub(crate) log: PathBuf,
}

impl Server {
    /// Spawns it on `dir` with free ports, logging to `dir/server.log`.
    pub(crate) fn spawn(options: &Options, dir: &Path) -> anyhow::Result<Self> {
        let [phones_port, metrics_port] = process::free_ports::<2>()?;
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

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `/readyz` until it answers 200.
    pub(crate) fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        let every = Duration::from_millis(20);
        match process::wait_ready(&mut self.child, self.metrics, limit, every)? {
            Readiness::Ready(took) => Ok(took),
            Readiness::Exited(status) => bail!(
                "zerotouch serve exited ({status}) before it was ready:\n{}",
                tail(&self.log, 20)
            ),
            Readiness::TimedOut => bail!("zerotouch serve not ready after {limit:?}"),
        }
    }

    /// SIGTERM, then the grace period, then SIGKILL.
    pub(crate) fn stop(&mut self) {
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

/// The last `lines` lines of a file.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Every sample on a metrics page, by series (name and labels as exposed).
pub(crate) fn scrape(addr: SocketAddr) -> Option<HashMap<String, f64>> {
    let page = process::http_get(addr, "/metrics").ok()?;
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
pub(crate) fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let mib = |field| process::memory_kib(pid, field).map(|kib| kib as f64 / 1024.0);
    Some((mib("VmRSS:")?, mib("VmHWM:")?))
}

/// CPU time (user + system) a process has used so far, in seconds.
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// Clock ticks per second (`getconf CLK_TCK`), for `/proc/<pid>/stat`.
pub(crate) fn clock_ticks() -> f64 {
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
