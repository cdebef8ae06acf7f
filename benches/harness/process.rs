//! Processes a bench starts or watches: free ports for them, plain-HTTP requests to a
//! server's admin listener, waiting for `/readyz`, and what `/proc` says about their memory.
//!
//! Blocking and std-only, so that it works before, outside and inside an async runtime (from
//! `spawn_blocking`). Must not know the server's options or what a bench measures.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::Context;

/// `N` ports nobody listens on right now.
pub fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
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

/// A plain-HTTP GET (the admin listener), returning the whole response.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The status of a plain-HTTP GET, if one came back.
pub fn status(addr: SocketAddr, path: &str) -> Option<u16> {
    http_get(addr, path).ok()?.get(9..12)?.parse().ok()
}

/// How waiting for a spawned server to get ready ended.
pub enum Readiness {
    /// `/readyz` answered 200 this long after the wait began.
    Ready(Duration),
    /// The server exited first.
    Exited(ExitStatus),
    /// Neither within the limit.
    TimedOut,
}

/// Polls the admin listener at `metrics` every `every` until `/readyz` answers 200, `child`
/// exits, or `limit` has passed.
pub fn wait_ready(
    child: &mut Child,
    metrics: SocketAddr,
    limit: Duration,
    every: Duration,
) -> std::io::Result<Readiness> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Readiness::Exited(status));
        }
        if status(metrics, "/readyz") == Some(200) {
            return Ok(Readiness::Ready(started.elapsed()));
        }
        if started.elapsed() > limit {
            return Ok(Readiness::TimedOut);
        }
        std::thread::sleep(every);
    }
}

/// A process's memory figure from `/proc/<pid>/status`, in KiB (`field`: `VmRSS:` now,
/// `VmHWM:` its peak).
pub fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
