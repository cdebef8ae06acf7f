//! What a storm reports: what the workers counted (`Stats`), a run's figures (`RunResult`),
//! percentiles, the median of several runs, the server's own counters next to the client's,
//! and the machine-readable line README quotes.
//!
//! Must not know how phones fetch.

use std::collections::HashMap;
use std::time::Duration;

use crate::options::PhoneAuth;

/// A latency as the workers keep it: microseconds, saturating.
pub(crate) fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// What one worker saw.
#[derive(Default)]
pub(crate) struct Stats {
    /// HTTP exchanges, 401s included.
    pub(crate) requests: u64,
    /// Files of boot sequences, each once however many exchanges it took.
    pub(crate) fetches: u64,
    /// 401 challenges received.
    pub(crate) challenges: u64,
    /// Challenges whose answer needed a new connection (the server closed).
    pub(crate) reconnects: u64,
    /// 429s (the server's miss throttle).
    pub(crate) throttled: u64,
    /// 401s the phone could not answer: no credentials for a bound device.
    pub(crate) unanswerable: u64,
    pub(crate) connections: u64,
    pub(crate) failed_phones: u64,
    pub(crate) vendors: [u64; 3],
    pub(crate) latencies: Vec<u32>,
    pub(crate) fetch_latencies: Vec<u32>,
    pub(crate) boots: Vec<u32>,
}

impl Stats {
    /// Adds what another worker saw.
    pub(crate) fn merge(&mut self, other: Stats) {
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
pub(crate) fn percentile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

/// A latency line: `label`, then the median, p90, p99 and max of `sorted` (microseconds) in
/// milliseconds.
pub(crate) fn latency_line(label: &str, sorted: &[u32]) -> String {
    format!(
        "  {label:<12} p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile_ms(sorted, 0.50),
        percentile_ms(sorted, 0.90),
        percentile_ms(sorted, 0.99),
        percentile_ms(sorted, 1.0)
    )
}

/// One storm's figures.
pub(crate) struct RunResult {
    pub(crate) phones: usize,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) wall: Duration,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) peak_rss_mib: Option<f64>,
    pub(crate) auth: PhoneAuth,
    pub(crate) fetches: u64,
    pub(crate) challenges: u64,
}

impl RunResult {
    /// Phones booted per second.
    pub(crate) fn phones_per_s(&self) -> f64 {
        self.phones as f64 / self.wall.as_secs_f64()
    }
    /// HTTP exchanges per second.
    pub(crate) fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }
}

/// Server-side counters for the run: what the server saw, to compare with what the client saw.
pub(crate) fn print_server_counters(before: &HashMap<String, f64>, after: &HashMap<String, f64>) {
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
pub(crate) fn summarise(mut results: Vec<RunResult>) -> RunResult {
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

/// The machine-readable line README quotes (`run`: the run's number, `None` for the summary).
pub(crate) fn machine_line(r: &RunResult, run: Option<usize>) -> String {
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
