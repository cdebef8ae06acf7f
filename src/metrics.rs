//! Every metric zerotouch exports, in one place, registered in one Prometheus registry.
//!
//! Labels come from closed sets (vendor, file kind, outcome, route template, status class,
//! listener), never from request data. Hot-path counters are resolved once per label
//! combination and then incremented with one atomic add.

use std::sync::OnceLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// A counter family whose label combinations are addressed by a dense slot number, so the hot
/// path never hashes label strings after the first use of a combination.
pub struct SlotCounters {
    family: IntCounterVec,
    slots: Box<[OnceLock<IntCounter>]>,
}

impl SlotCounters {
    fn new(family: IntCounterVec, slots: usize) -> Self {
        Self {
            family,
            slots: (0..slots).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Creates the series in `slot` at zero, so it is exported before its first event.
    pub fn touch(&self, slot: usize, labels: &[&str]) {
        if let Some(cell) = self.slots.get(slot) {
            cell.get_or_init(|| self.family.with_label_values(labels));
        }
    }

    /// Adds one to the series in `slot`, creating it with `labels` on first use. A slot out of
    /// range (a caller bug) falls back to the family lookup rather than panicking.
    pub fn inc(&self, slot: usize, labels: &[&str]) {
        match self.slots.get(slot) {
            Some(cell) => cell
                .get_or_init(|| self.family.with_label_values(labels))
                .inc(),
            None => self.family.with_label_values(labels).inc(),
        }
    }
}

/// The same for histograms.
pub struct SlotHistograms {
    family: HistogramVec,
    slots: Box<[OnceLock<Histogram>]>,
}

impl SlotHistograms {
    fn new(family: HistogramVec, slots: usize) -> Self {
        Self {
            family,
            slots: (0..slots).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Records `value` in the series in `slot`.
    pub fn observe(&self, slot: usize, labels: &[&str], value: f64) {
        match self.slots.get(slot) {
            Some(cell) => cell
                .get_or_init(|| self.family.with_label_values(labels))
                .observe(value),
            None => self.family.with_label_values(labels).observe(value),
        }
    }
}

/// All of zerotouch's metrics.
pub struct Metrics {
    registry: Registry,
    /// Phone requests by `vendor`, `file`, `outcome`.
    pub phone_requests: SlotCounters,
    /// Phone request duration by `vendor`, seconds.
    pub phone_duration: SlotHistograms,
    /// Render failures by `vendor`.
    pub render_errors: SlotCounters,
    /// Rendered-config cache lookups by `result` (`hit`, `miss`).
    pub render_cache: SlotCounters,
    /// Claimed devices in the registry.
    pub devices: IntGauge,
    /// Tenants in the registry.
    pub tenants: IntGauge,
    /// Failed TLS handshakes by `listener` and `reason` (`server::tls::HandshakeFailure`).
    pub tls_handshake_failures: IntCounterVec,
    /// Open connections by `listener`.
    pub connections_open: IntGaugeVec,
    /// Connections refused or closed by the server, by `listener` and `reason`
    /// (`server::Refusal`).
    pub connections_refused: IntCounterVec,
    /// When the earliest-expiring certificate a listener presents expires, by `listener`,
    /// seconds since the Unix epoch.
    pub tls_certificate_expiry: IntGaugeVec,
    /// Reloads by `hook` (each hook's own name) and `result` (`changed`, `unchanged`,
    /// `failed`).
    pub reloads: IntCounterVec,
    /// ACME orders by `result` (`issued`, `failed`).
    pub acme_orders: IntCounterVec,
    /// Calls to the vendors' redirect services by `vendor`, `action` (`register`,
    /// `deregister`) and `result` (`delivered`, `registered_elsewhere`, `refused`, `retry`).
    pub redirect_deliveries: IntCounterVec,
    /// Undelivered outbox rows by `vendor` (as this node last read them).
    pub redirect_backlog: IntGaugeVec,
    /// Age of the oldest undelivered outbox row by `vendor`, seconds (0 when none).
    pub redirect_oldest_seconds: IntGaugeVec,
    /// Last-seen updates written to the store.
    pub sightings_written: IntCounter,
    /// Last-seen updates dropped because the queue was full or the store failed.
    pub sightings_dropped: IntCounter,
    /// Store changes applied to the registry by the change feed.
    pub changes_applied: IntCounter,
    /// Schema migrations this node applied when it opened the store.
    pub migrations_applied: IntCounter,
    /// 1 once the server is ready to serve phones.
    pub ready: IntGauge,
    /// Partner API requests by `route` template, `method` and `status` code.
    pub api_requests: IntCounterVec,
    /// Partner API latency by `route` template, seconds.
    pub api_duration: HistogramVec,
    /// Accepted claims by `result` (`created`, `unchanged`).
    pub claims: IntCounterVec,
    /// Refused claims by `reason` (`invalid_mac`, `unsupported_vendor`, `already_in_use`, …).
    pub claim_refusals: IntCounterVec,
    /// Devices released.
    pub releases: IntCounter,
    /// Devices moved to another tenant.
    pub moves: IntCounter,
    /// Source networks blocked by the miss throttle.
    pub throttle_blocks: IntCounter,
    /// Source networks blocked now.
    pub throttled_sources: IntGauge,
    /// Failed authentications that made a device wait (per-device back-off).
    pub auth_backoffs: IntCounter,
    /// Devices marked compromised: retired credentials were presented.
    pub compromised: IntCounter,
    /// Provisioning credentials handed to phones, by `kind` (`enrol`, `rotate`, `reissue`).
    pub enrolments: IntCounterVec,
    /// 1 while the store answers (always 1 for embedded SQLite), 0 during an outage.
    pub database_up: IntGauge,
    /// Store operation latency by `operation` (a closed set named by the store), seconds.
    pub store_duration: HistogramVec,
    /// Time from a commit on any node to its change notification reaching this node, seconds.
    pub notification_lag: Histogram,
    /// Change notifications received from the database.
    pub notifications: IntCounter,
    /// Catch-up passes that applied changes, by `trigger` (`notification`: woken by a
    /// notification or a reconnect; `poll`: found by the periodic safety-net read).
    pub catch_ups: IntCounterVec,
    /// Times the database notification connection was re-established after being lost.
    pub database_reconnects: IntCounter,
    /// Log lines the background log writer dropped, read from its counter at each scrape.
    pub log_lines_dropped: Sampled,
}

/// A counter kept by someone else (the log writer counts its own drops): read at each
/// scrape through the source [`Sampled::read_from`] gives it, 0 until then.
#[derive(Clone)]
pub struct Sampled {
    counter: IntCounter,
    source: std::sync::Arc<OnceLock<Box<dyn Fn() -> u64 + Send + Sync>>>,
}

impl Sampled {
    fn new(counter: IntCounter) -> Self {
        Self {
            counter,
            source: std::sync::Arc::default(),
        }
    }

    /// Reads the count from `source` from now on (the first source stays: one per process).
    pub fn read_from(&self, source: impl Fn() -> u64 + Send + Sync + 'static) {
        let _ = self.source.set(Box::new(source));
    }

    /// The count as last scraped.
    pub fn get(&self) -> u64 {
        self.counter.get()
    }

    /// Brings the counter up to the source's count; a counter never goes down.
    fn sample(&self) {
        if let Some(source) = self.source.get() {
            let (now, seen) = (source(), self.counter.get());
            if now > seen {
                self.counter.inc_by(now - seen);
            }
        }
    }
}

impl prometheus::core::Collector for Sampled {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.counter.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.sample();
        self.counter.collect()
    }
}

/// Number of slots for a (vendor, file, outcome) combination space.
pub const fn slots(vendors: usize, files: usize, outcomes: usize) -> usize {
    vendors * files * outcomes
}

/// A metric defined in this file: its definition is static, so a failure is a programming
/// error, caught by this file's tests before it can reach a running server.
fn defined<T>(r: prometheus::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("invalid metric definition: {e}"))
}

impl Metrics {
    /// Creates and registers every metric. `phone_slots` sizes the phone request counters.
    pub fn new(phone_slots: usize, vendor_slots: usize) -> Self {
        let registry = Registry::new();
        let reg = |c: Box<dyn prometheus::core::Collector>| defined(registry.register(c));

        let phone_requests = defined(IntCounterVec::new(
            Opts::new(
                "zerotouch_phone_requests_total",
                "Phone requests by vendor, file kind and outcome.",
            ),
            &["vendor", "file", "outcome"],
        ));
        reg(Box::new(phone_requests.clone()));
        let phone_duration = defined(HistogramVec::new(
            HistogramOpts::new(
                "zerotouch_phone_request_duration_seconds",
                "Time to answer a phone request, from parsed header to response.",
            )
            .buckets(vec![
                0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
                0.01, 0.025, 0.1,
            ]),
            &["vendor"],
        ));
        reg(Box::new(phone_duration.clone()));
        let render_errors = defined(IntCounterVec::new(
            Opts::new(
                "zerotouch_render_errors_total",
                "Configs that failed to render, by vendor.",
            ),
            &["vendor"],
        ));
        reg(Box::new(render_errors.clone()));
        let render_cache = defined(IntCounterVec::new(
            Opts::new(
                "zerotouch_render_cache_lookups_total",
                "Rendered-config cache lookups by result.",
            ),
            &["result"],
        ));
        reg(Box::new(render_cache.clone()));
        let devices = defined(IntGauge::new(
            "zerotouch_devices",
            "Claimed devices known to this node.",
        ));
        reg(Box::new(devices.clone()));
        let tenants = defined(IntGauge::new(
            "zerotouch_tenants",
            "Tenant instances known to this node.",
        ));
        reg(Box::new(tenants.clone()));
        let tls_handshake_failures = defined(IntCounterVec::new(
            Opts::new(
                "zerotouch_tls_handshake_failures_total",
                "TLS handshakes that failed or timed out, by listener and reason (no_shared_version, no_shared_cipher, bad_certificate, timeout, other).",
            ),
            &["listener", "reason"],
        ));
        reg(Box::new(tls_handshake_failures.clone()));
        let connections_open = defined(IntGaugeVec::new(
            Opts::new(
                "zerotouch_connections_open",
                "Open client connections, by listener.",
            ),
            &["listener"],
        ));
        reg(Box::new(connections_open.clone()));
        let connections_refused = defined(IntCounterVec::new(
            Opts::new(
                "zerotouch_connections_refused_total",
                "Connections the server refused or closed before the client did, by listener and reason (address_cap, network_cap, proxy_untrusted, proxy_missing, proxy_invalid, nothing_served).",
            ),
            &["listener", "reason"],
        ));
        reg(Box::new(connections_refused.clone()));
        let tls_certificate_expiry = defined(IntGaugeVec::new(
            Opts::new(
                "zerotouch_tls_certificate_expiry_timestamp_seconds",
                "When the earliest-expiring certificate a listener presents expires (its notAfter), seconds since the Unix epoch.",
            ),
            &["listener"],
        ));
        reg(Box::new(tls_certificate_expiry.clone()));
        let reloads = defined(IntCounterVec::new(
            Opts::new(
                "zerotouch_reloads_total",
                "Reloads of what can change while running (SIGHUP, a changed certificate file), by hook and result (changed, unchanged, failed: the running value is kept).",
            ),
            &["hook", "result"],
        ));
        reg(Box::new(reloads.clone()));
        let acme_orders = defined(IntCounterVec::new(
            Opts::new(
                "zerotouch_acme_orders_total",
                "Certificate orders this node placed with the ACME CA, by result (issued, failed: the certificate in use is kept and the order retried with back-off).",
            ),
            &["result"],
        ));
        reg(Box::new(acme_orders.clone()));
        let redirect_deliveries = defined(IntCounterVec::new(
            Opts::new(
                "zerotouch_redirect_deliveries_total",
                "Outbox rows this node delivered to the vendors' redirect services, by vendor, action (register, deregister) and result (delivered, registered_elsewhere, refused, retry).",
            ),
            &["vendor", "action", "result"],
        ));
        reg(Box::new(redirect_deliveries.clone()));
        let redirect_backlog = defined(IntGaugeVec::new(
            Opts::new(
                "zerotouch_redirect_backlog",
                "Undelivered rows of the redirect outbox, by vendor (shared by every node with PostgreSQL).",
            ),
            &["vendor"],
        ));
        reg(Box::new(redirect_backlog.clone()));
        let redirect_oldest_seconds = defined(IntGaugeVec::new(
            Opts::new(
                "zerotouch_redirect_oldest_seconds",
                "Age of the oldest undelivered row of the redirect outbox, by vendor (0 when the outbox is empty).",
            ),
            &["vendor"],
        ));
        reg(Box::new(redirect_oldest_seconds.clone()));
        let sightings_written = defined(IntCounter::new(
            "zerotouch_status_updates_written_total",
            "Device last-seen updates written to the store.",
        ));
        reg(Box::new(sightings_written.clone()));
        let sightings_dropped = defined(IntCounter::new(
            "zerotouch_status_updates_dropped_total",
            "Device last-seen updates dropped (queue full or store failure).",
        ));
        reg(Box::new(sightings_dropped.clone()));
        let changes_applied = defined(IntCounter::new(
            "zerotouch_store_changes_applied_total",
            "Store changes applied to the in-memory registry by the change feed.",
        ));
        reg(Box::new(changes_applied.clone()));
        let migrations_applied = defined(IntCounter::new(
            "zerotouch_schema_migrations_applied_total",
            "Schema migrations this node applied when it opened the store (nodes starting together on one database apply each once, between them).",
        ));
        reg(Box::new(migrations_applied.clone()));
        let ready = defined(IntGauge::new(
            "zerotouch_ready",
            "1 when this node serves phones, 0 while starting or draining.",
        ));
        reg(Box::new(ready.clone()));
        let build = defined(IntGaugeVec::new(
            Opts::new("zerotouch_build_info", "Build information; always 1."),
            &["version"],
        ));
        reg(Box::new(build.clone()));
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        #[cfg(target_os = "linux")]
        reg(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));

        let api_requests = defined(IntCounterVec::new(
            Opts::new(
                "zerotouch_api_requests_total",
                "Partner API requests by route template, method and status code.",
            ),
            &["route", "method", "status"],
        ));
        reg(Box::new(api_requests.clone()));
        let api_duration = defined(HistogramVec::new(
            HistogramOpts::new(
                "zerotouch_api_request_duration_seconds",
                "Partner API latency by route template.",
            )
            .buckets(vec![
                0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["route"],
        ));
        reg(Box::new(api_duration.clone()));
        let claims = defined(IntCounterVec::new(
            Opts::new(
                "zerotouch_claims_total",
                "Accepted device claims by result.",
            ),
            &["result"],
        ));
        reg(Box::new(claims.clone()));
        let claim_refusals = defined(IntCounterVec::new(
            Opts::new(
                "zerotouch_claim_refusals_total",
                "Refused device claims by reason.",
            ),
            &["reason"],
        ));
        reg(Box::new(claim_refusals.clone()));
        let releases = defined(IntCounter::new(
            "zerotouch_releases_total",
            "Devices released.",
        ));
        reg(Box::new(releases.clone()));
        let moves = defined(IntCounter::new(
            "zerotouch_moves_total",
            "Devices moved to another tenant.",
        ));
        reg(Box::new(moves.clone()));

        let throttle_blocks = defined(IntCounter::new(
            "zerotouch_throttle_blocks_total",
            "Source networks (/24, /64) blocked after too many misses.",
        ));
        reg(Box::new(throttle_blocks.clone()));
        let auth_backoffs = defined(IntCounter::new(
            "zerotouch_phone_auth_backoffs_total",
            "Failed phone authentications after which the device waits before its credentials are checked again (per device, from every network).",
        ));
        reg(Box::new(auth_backoffs.clone()));
        let compromised = defined(IntCounter::new(
            "zerotouch_devices_compromised_total",
            "Devices marked compromised: credentials retired by a completed rotation were presented.",
        ));
        reg(Box::new(compromised.clone()));
        let throttled_sources = defined(IntGauge::new(
            "zerotouch_throttled_sources",
            "Source networks currently blocked by the miss throttle.",
        ));
        reg(Box::new(throttled_sources.clone()));
        let enrolments = defined(IntCounterVec::new(
            Opts::new(
                "zerotouch_phone_credentials_issued_total",
                "Provisioning credentials handed to phones, by kind (enrol, rotate, reissue).",
            ),
            &["kind"],
        ));
        reg(Box::new(enrolments.clone()));

        let database_up = defined(IntGauge::new(
            "zerotouch_database_up",
            "1 while the store answers (always 1 for embedded SQLite), 0 while the database is unreachable.",
        ));
        reg(Box::new(database_up.clone()));
        let store_duration = defined(HistogramVec::new(
            HistogramOpts::new(
                "zerotouch_store_operation_duration_seconds",
                "Time of one store operation, failures included, by operation (PostgreSQL).",
            )
            .buckets(vec![
                0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                2.5, 10.0,
            ]),
            &["operation"],
        ));
        reg(Box::new(store_duration.clone()));
        let notification_lag = defined(Histogram::with_opts(
            HistogramOpts::new(
                "zerotouch_store_notification_lag_seconds",
                "Time from a commit (any node) to its change notification reaching this node.",
            )
            .buckets(vec![
                0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
        ));
        reg(Box::new(notification_lag.clone()));
        let notifications = defined(IntCounter::new(
            "zerotouch_store_notifications_total",
            "Change notifications received from the database (PostgreSQL LISTEN).",
        ));
        reg(Box::new(notifications.clone()));
        let catch_ups = defined(IntCounterVec::new(
            Opts::new(
                "zerotouch_store_catch_ups_total",
                "Change-feed passes that applied changes, by what triggered them (notification or poll).",
            ),
            &["trigger"],
        ));
        reg(Box::new(catch_ups.clone()));
        for trigger in ["notification", "poll"] {
            catch_ups.with_label_values(&[trigger]);
        }
        let database_reconnects = defined(IntCounter::new(
            "zerotouch_database_reconnects_total",
            "Times the database notification connection was re-established after being lost.",
        ));
        reg(Box::new(database_reconnects.clone()));
        let log_lines_dropped = Sampled::new(defined(IntCounter::new(
            "zerotouch_log_lines_dropped_total",
            "Log lines dropped because the background log writer was full (it never blocks a request).",
        )));
        reg(Box::new(log_lines_dropped.clone()));

        Self {
            log_lines_dropped,
            database_up,
            store_duration,
            notification_lag,
            notifications,
            catch_ups,
            database_reconnects,
            registry,
            throttle_blocks,
            throttled_sources,
            auth_backoffs,
            compromised,
            enrolments,
            api_requests,
            api_duration,
            claims,
            claim_refusals,
            releases,
            moves,
            phone_requests: SlotCounters::new(phone_requests, phone_slots),
            phone_duration: SlotHistograms::new(phone_duration, vendor_slots),
            render_errors: SlotCounters::new(render_errors, vendor_slots),
            render_cache: SlotCounters::new(render_cache, 2),
            devices,
            tenants,
            tls_handshake_failures,
            connections_open,
            connections_refused,
            tls_certificate_expiry,
            reloads,
            acme_orders,
            redirect_deliveries,
            redirect_backlog,
            redirect_oldest_seconds,
            sightings_written,
            sightings_dropped,
            changes_applied,
            migrations_applied,
            ready,
        }
    }

    /// The registry, for components that register their own families.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_register_and_encode() {
        let m = Metrics::new(8, 4);
        m.phone_requests.inc(3, &["yealink", "device", "served"]);
        m.phone_duration.observe(0, &["yealink"], 0.0001);
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.contains(r#"zerotouch_phone_requests_total{file="device",outcome="served",vendor="yealink"} 1"#), "{text}");
        assert!(text.contains("zerotouch_build_info"));
    }

    #[test]
    fn dropped_log_lines_are_read_at_each_scrape_and_never_go_down() {
        let m = Metrics::new(8, 4);
        let line = "zerotouch_log_lines_dropped_total";
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.contains(&format!("\n{line} 0\n")), "{text}");
        let source = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(7));
        let shared = source.clone();
        m.log_lines_dropped
            .read_from(move || shared.load(std::sync::atomic::Ordering::Relaxed));
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.contains(&format!("\n{line} 7\n")), "{text}");
        source.store(3, std::sync::atomic::Ordering::Relaxed);
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(text.contains(&format!("\n{line} 7\n")), "{text}");
        assert_eq!(m.log_lines_dropped.get(), 7);
    }

    #[test]
    fn an_increment_out_of_the_slot_range_still_counts() {
        let m = Metrics::new(8, 4);
        m.phone_requests.inc(99, &["snom", "device", "served"]);
        m.phone_requests.inc(99, &["snom", "device", "served"]);
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(
            text.contains(
                r#"zerotouch_phone_requests_total{file="device",outcome="served",vendor="snom"} 2"#
            ),
            "{text}"
        );
    }
}
