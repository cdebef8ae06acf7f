//! The storm: phones booting C at a time, the enrolment pass that gives them their credentials
//! first, and one measured storm with its figures.
//!
//! Must not know how a single phone fetches (`client.rs`) or how figures are computed
//! (`report.rs`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{Client, ErrorLog};
use crate::credentials::{mac_id_credential, read_credentials, write_credentials, Credential};
use crate::fleet::Vendor;
use crate::options::{Options, PhoneAuth};
use crate::report::{
    latency_line, machine_line, percentile_ms, print_server_counters, RunResult, Stats,
};
use crate::server::{cpu_seconds, rss_mib, scrape};

/// What can be watched of the server from outside during a storm.
pub(crate) struct Watched {
    /// Its metrics listener, for its own counters.
    pub(crate) metrics: Option<SocketAddr>,
    /// Its process, for CPU time and memory.
    pub(crate) pid: Option<u32>,
    /// CPUs of this machine, to put CPU percentages in proportion.
    pub(crate) machine_cpus: usize,
}

/// The storm: every phone boots once, `concurrency` at a time; what the workers saw and how long it took.
pub(crate) async fn storm(client: Arc<Client>, concurrency: usize) -> (Stats, Duration) {
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
pub(crate) async fn enrolment_pass(
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

/// Gives every phone its credentials before the storm: Gigaset phones their MAC-ID, Yealink
/// and Snom phones those kept in `file` by an earlier run, or else those of their enrolment,
/// fetched in an enrolment pass (not measured) that also checks that Gigaset phones get in
/// with their MAC-ID. False (after saying why) if any phone could not get in.
pub(crate) fn enrol_fleet(
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
            let _ = slot.set(mac_id_credential(&device));
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

/// One measured storm, run `run` of `--repeat`: the storm itself, then its figures printed,
/// with the server's CPU, memory and counters when `watched` can tell them. `None` when it was
/// interrupted.
pub(crate) fn measured_storm(
    run: usize,
    options: &Options,
    client: &Arc<Client>,
    runtime: &tokio::runtime::Runtime,
    watched: &Watched,
) -> Option<RunResult> {
    if let Ok(mut log) = client.errors.lock() {
        *log = ErrorLog::default();
    }
    let before = watched.metrics.and_then(scrape);
    let server_cpu_before = watched.pid.and_then(|p| cpu_seconds(&p.to_string()));
    let client_cpu_before = cpu_seconds("self");
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = storm(client.clone(), options.concurrency) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let Some((mut stats, wall)) = outcome else {
        eprintln!("interrupted");
        return None;
    };
    let after = watched.metrics.and_then(scrape);
    let secs = wall.as_secs_f64();
    let server_cpu = watched
        .pid
        .and_then(|p| cpu_seconds(&p.to_string()))
        .zip(server_cpu_before)
        .map(|(a, b)| (a - b) / secs * 100.0);
    let client_cpu = cpu_seconds("self")
        .zip(client_cpu_before)
        .map(|(a, b)| (a - b) / secs * 100.0);
    let rss = watched.pid.and_then(rss_mib);
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
    println!("{}", latency_line("per request", &stats.latencies));
    if options.phone_auth == PhoneAuth::Enrolment {
        println!(
            "{} (challenge included)",
            latency_line("per file", &stats.fetch_latencies)
        );
    }
    println!("{}", latency_line("per boot", &stats.boots));
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
        "  CPU          server {}, client {} (100% = one CPU; this machine has {})",
        server_cpu.map_or("n/a".into(), |c| format!("{c:.0}%")),
        client_cpu.map_or("n/a".into(), |c| format!("{c:.0}%")),
        watched.machine_cpus,
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
    Some(result)
}
