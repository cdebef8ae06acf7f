//! The redirect outbox's worker and the check before a claim: where the store's outbox rows
//! meet the vendors' redirect service adapters.
//!
//! The worker leases due rows (oldest per MAC, so a release after a claim deregisters after
//! registering, and one MAC is never in flight twice), delivers them in the vendor's batches
//! with a bounded number of calls in flight, and settles each row: done, or retried with
//! exponential back-off (the vendor's `Retry-After` when longer). While a vendor fails, one
//! `check` every `retry_first` probes it, and when it answers again every backed-off row of
//! that vendor is made due at once, so nothing waits out an hour's back-off after an outage.
//! A crash loses nothing: an unsettled lease runs out and the row is delivered again, which
//! the adapters make harmless (registering the same URL again, deregistering a MAC we do not
//! hold, both succeed).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::RedirectConfig;
use crate::domain::{ClaimCode, Mac, Vendor};
use crate::metrics::Metrics;
use crate::partner_api::redirect::ElsewhereCheck;
use crate::redirect::{Device, Failure, Holder, RedirectService};
use crate::store::{now_millis, OutboxRow, RedirectAction, Settlement, Store};

/// The adapters configured, by vendor.
#[derive(Clone, Default)]
pub struct Services(HashMap<Vendor, Arc<dyn RedirectService>>);

impl Services {
    /// The adapters for `services`.
    pub fn new(services: impl IntoIterator<Item = Arc<dyn RedirectService>>) -> Self {
        Self(services.into_iter().map(|s| (s.vendor(), s)).collect())
    }

    /// The adapter for `vendor`.
    pub fn get(&self, vendor: Vendor) -> Option<&Arc<dyn RedirectService>> {
        self.0.get(&vendor)
    }

    /// Whether none is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The adapters `config` configures, each registering the phones' public URL.
pub fn services(config: &crate::config::Config) -> anyhow::Result<Services> {
    use crate::redirect::http::Secret;
    use crate::redirect::{gigaset, snom, yealink};
    use anyhow::Context;
    let Some(public_url) = config.public_url.as_deref() else {
        return Ok(Services::default());
    };
    let r = &config.redirect;
    let name = account_name(public_url);
    let secret = |a: &crate::config::RedirectAccount| Secret::new(a.secret.expose());
    let mut services: Vec<Arc<dyn RedirectService>> = Vec::new();
    if let Some(a) = &r.yealink {
        let settings = yealink::YealinkSettings {
            base_url: a.url.clone(),
            server_name: name.clone(),
            timeout: r.request_timeout,
            ..yealink::YealinkSettings::new(a.id.clone(), secret(a))
        };
        let adapter = yealink::Yealink::new(settings, public_url).context("Yealink RPS")?;
        services.push(Arc::new(adapter));
    }
    if let Some(a) = &r.snom {
        let settings = snom::SnomSettings {
            base_url: a.url.clone(),
            profile_name: name.clone(),
            timeout: r.request_timeout,
            ..snom::SnomSettings::new(a.id.clone(), secret(a))
        };
        let adapter = snom::Snom::new(settings, public_url).context("Snom SRAPS")?;
        services.push(Arc::new(adapter));
    }
    if let Some(a) = &r.gigaset {
        let settings = gigaset::GigasetSettings {
            url: a.url.clone(),
            provider_name: name.clone(),
            timeout: r.request_timeout,
            ..gigaset::GigasetSettings::new(a.id.clone(), secret(a))
        };
        let adapter =
            gigaset::Gigaset::new(settings, public_url).context("Gigaset redirect server")?;
        services.push(Arc::new(adapter));
    }
    Ok(Services::new(services))
}

/// The name our server entry (Yealink), profile (Snom) or provider (Gigaset) carries at the
/// vendor: the phones' host name, which is ours alone (RPS wants server names unique across
/// the service, at most 20 characters).
fn account_name(public_url: &str) -> String {
    let host = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or("zerotouch");
    let name: String = host.chars().take(20).collect();
    if name.is_empty() {
        "zerotouch".to_owned()
    } else {
        name
    }
}

/// The check before a claim, bounded by `timeout`.
pub struct BoundedCheck {
    /// The adapters.
    pub services: Services,
    /// How long a claim waits.
    pub timeout: Duration,
}

#[async_trait]
impl ElsewhereCheck for BoundedCheck {
    async fn registered_elsewhere(
        &self,
        vendor: Vendor,
        mac: Mac,
        claim_code: Option<&ClaimCode>,
    ) -> bool {
        let Some(service) = self.services.get(vendor) else {
            return false;
        };
        let device = Device {
            mac,
            claim_code: claim_code.map(|c| c.as_str().to_owned()),
        };
        match tokio::time::timeout(self.timeout, service.check(&device)).await {
            Ok(Ok(Holder::Elsewhere)) => true,
            Ok(Ok(_)) => false,
            Ok(Err(e)) => {
                tracing::info!(%vendor, error = %e, "redirect check failed; the claim goes ahead and the registration is queued");
                false
            }
            Err(_) => {
                tracing::info!(%vendor, timeout = ?self.timeout, "redirect check timed out; the claim goes ahead and the registration is queued");
                false
            }
        }
    }
}

/// How the worker paces itself.
#[derive(Clone, Debug)]
pub struct Pacing {
    /// First retry wait, doubling per try.
    pub retry_first: Duration,
    /// Longest retry wait.
    pub retry_max: Duration,
    /// How long a lease holds.
    pub lease: Duration,
    /// Read interval when the outbox was empty.
    pub poll: Duration,
    /// Calls in flight at once.
    pub concurrency: usize,
}

impl Pacing {
    /// The pacing `config` asks for.
    pub fn from_config(config: &RedirectConfig) -> Self {
        Self {
            retry_first: config.retry_first,
            retry_max: config.retry_max,
            lease: config.lease,
            poll: config.poll,
            concurrency: config.concurrency,
        }
    }

    /// The wait before try `attempts + 2` (after `attempts + 1` failures), at least `hint`.
    pub fn backoff(&self, attempts: u32, hint: Option<Duration>) -> Duration {
        let doubled = self
            .retry_first
            .saturating_mul(1u32 << attempts.min(20))
            .min(self.retry_max);
        hint.map_or(doubled, |h| h.min(self.retry_max).max(doubled))
    }
}

/// Starts the worker; it runs until `stop`, finishing the calls in flight.
pub fn spawn(
    store: Arc<dyn Store>,
    services: Services,
    pacing: Pacing,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let worker = Worker {
            owner: lease_owner(),
            store,
            services,
            calls: Arc::new(Semaphore::new(pacing.concurrency)),
            pacing,
            metrics,
            down: HashMap::new(),
        };
        worker.run(stop).await;
    })
}

/// A name for this process's leases: unique per start, so a restarted node never mistakes a
/// lease of its previous life for its own.
fn lease_owner() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{host}:{}:{nanos:x}", std::process::id())
}

struct Worker {
    owner: String,
    store: Arc<dyn Store>,
    services: Services,
    calls: Arc<Semaphore>,
    pacing: Pacing,
    metrics: Arc<Metrics>,
    /// Vendors whose last call failed to get through: since when we last probed them, and a
    /// device to probe with.
    down: HashMap<Vendor, (Instant, Device)>,
}

/// Rows leased per round, per call slot: enough to fill every slot with a full batch.
const ROWS_PER_SLOT: usize = 8;

/// How often the backlog gauges are refreshed.
const BACKLOG_EVERY: Duration = Duration::from_secs(10);

impl Worker {
    async fn run(mut self, stop: CancellationToken) {
        let mut backlog_read = Instant::now() - BACKLOG_EVERY;
        loop {
            if backlog_read.elapsed() >= BACKLOG_EVERY {
                self.refresh_backlog().await;
                backlog_read = Instant::now();
            }
            self.probe_down_vendors().await;
            let delivered = match self.round().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "redirect outbox unavailable; retrying");
                    0
                }
            };
            if delivered == 0 {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(self.pacing.poll) => {}
                }
            } else if stop.is_cancelled() {
                break;
            }
        }
    }

    /// Leases one round of rows, delivers them and settles them; how many were leased.
    async fn round(&mut self) -> Result<usize, crate::store::Error> {
        let now = now_millis();
        let lease_until = now + millis(self.pacing.lease);
        let limit = self.pacing.concurrency * ROWS_PER_SLOT;
        let rows = self
            .store
            .redirect_lease(&self.owner, now, lease_until, limit)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let leased = rows.len();
        let settled = self.deliver(rows).await;
        self.store.redirect_settle(&self.owner, settled).await?;
        Ok(leased)
    }

    /// Delivers rows in the vendors' batches, several calls at once.
    async fn deliver(&mut self, rows: Vec<OutboxRow>) -> Vec<(OutboxRow, Settlement)> {
        let mut settled = Vec::with_capacity(rows.len());
        let mut groups: BTreeMap<(Vendor, &'static str), Vec<OutboxRow>> = BTreeMap::new();
        for row in rows {
            if self.services.get(row.vendor).is_none() {
                let reason = format!("no redirect service is configured for {}", row.vendor);
                settled.push((row, Settlement::Refused(reason)));
                continue;
            }
            groups
                .entry((row.vendor, row.action.as_str()))
                .or_default()
                .push(row);
        }
        let mut calls = FuturesUnordered::new();
        for ((vendor, _), rows) in groups {
            let Some(service) = self.services.get(vendor).cloned() else {
                continue;
            };
            let limit = service.batch_limit().max(1);
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let batch: Vec<OutboxRow> = rows.by_ref().take(limit).collect();
                let service = service.clone();
                let slots = self.calls.clone();
                calls.push(async move {
                    let _slot = slots.acquire_owned().await;
                    let devices: Vec<Device> = batch.iter().map(device_of).collect();
                    let results = match batch[0].action {
                        RedirectAction::Register => service.register(&devices).await,
                        RedirectAction::Deregister => service.deregister(&devices).await,
                    };
                    (vendor, batch, results)
                });
            }
        }
        while let Some((vendor, batch, results)) = calls.next().await {
            let mut results = results.into_iter();
            for row in batch {
                let result = results.next().unwrap_or_else(|| {
                    Err(Failure::Transient {
                        reason: "the adapter answered fewer results than devices".into(),
                        retry_after: None,
                    })
                });
                let outcome = self.settlement(&row, result);
                self.metrics
                    .redirect_deliveries
                    .with_label_values(&[vendor.as_str(), row.action.as_str(), outcome.result()])
                    .inc();
                settled.push((row, outcome));
            }
        }
        settled
    }

    fn settlement(&mut self, row: &OutboxRow, result: Result<(), Failure>) -> Settlement {
        match result {
            Ok(()) => {
                self.down.remove(&row.vendor);
                Settlement::Delivered
            }
            Err(Failure::RegisteredElsewhere) => {
                self.down.remove(&row.vendor);
                Settlement::RegisteredElsewhere
            }
            Err(Failure::Refused { code, reason }) => {
                self.down.remove(&row.vendor);
                Settlement::Refused(format!("{code}: {reason}"))
            }
            Err(Failure::Transient {
                reason,
                retry_after,
            }) => {
                self.down
                    .entry(row.vendor)
                    .or_insert_with(|| (Instant::now(), device_of(row)));
                let wait = self.pacing.backoff(row.attempts, retry_after);
                Settlement::Retry {
                    reason,
                    at: now_millis() + millis(wait),
                }
            }
        }
    }

    /// Asks each vendor that failed whether it answers again (at most once per
    /// `retry_first`); when it does, its backed-off rows are made due.
    async fn probe_down_vendors(&mut self) {
        let due: Vec<(Vendor, Device)> = self
            .down
            .iter()
            .filter(|(_, (since, _))| since.elapsed() >= self.pacing.retry_first)
            .map(|(v, (_, d))| (*v, d.clone()))
            .collect();
        for (vendor, device) in due {
            let Some(service) = self.services.get(vendor).cloned() else {
                self.down.remove(&vendor);
                continue;
            };
            match service.check(&device).await {
                Err(Failure::Transient { .. }) => {
                    if let Some(entry) = self.down.get_mut(&vendor) {
                        entry.0 = Instant::now();
                    }
                }
                _ => {
                    self.down.remove(&vendor);
                    match self.store.redirect_wake(vendor, now_millis()).await {
                        Ok(n) => {
                            tracing::info!(%vendor, rows = n, "redirect service answers again; retrying its backlog now")
                        }
                        Err(e) => {
                            tracing::warn!(%vendor, error = %e, "could not make the backlog due")
                        }
                    }
                }
            }
        }
    }

    async fn refresh_backlog(&self) {
        let Ok(backlog) = self.store.redirect_backlog().await else {
            return;
        };
        let now = now_millis();
        for vendor in Vendor::ALL {
            let found = backlog.iter().find(|b| b.vendor == vendor);
            let rows = found.map_or(0, |b| b.rows);
            let oldest = found.and_then(|b| b.oldest).map_or(0, |t| (now - t) / 1000);
            let label = [vendor.as_str()];
            self.metrics
                .redirect_backlog
                .with_label_values(&label)
                .set(i64::try_from(rows).unwrap_or(i64::MAX));
            self.metrics
                .redirect_oldest_seconds
                .with_label_values(&label)
                .set(oldest.max(0));
        }
    }
}

fn device_of(row: &OutboxRow) -> Device {
    Device {
        mac: row.mac,
        claim_code: row.claim_code.as_ref().map(|c| c.as_str().to_owned()),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_are_the_phones_host() {
        assert_eq!(account_name("https://prov.example.com"), "prov.example.com");
        assert_eq!(
            account_name("https://prov.example.com:8443/p"),
            "prov.example.com"
        );
        assert_eq!(
            account_name("https://provisioning.cloud.example.com"),
            "provisioning.cloud.e"
        );
    }

    #[test]
    fn back_off_doubles_up_to_the_cap_and_honours_longer_hints() {
        let p = Pacing {
            retry_first: Duration::from_secs(10),
            retry_max: Duration::from_secs(3600),
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            concurrency: 4,
        };
        assert_eq!(p.backoff(0, None), Duration::from_secs(10));
        assert_eq!(p.backoff(3, None), Duration::from_secs(80));
        assert_eq!(p.backoff(40, None), Duration::from_secs(3600));
        assert_eq!(
            p.backoff(0, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
        assert_eq!(
            p.backoff(0, Some(Duration::from_secs(86_400))),
            Duration::from_secs(3600)
        );
        assert_eq!(
            p.backoff(3, Some(Duration::from_secs(1))),
            Duration::from_secs(80)
        );
    }
}

/// One difference `redirect sync` found between our claims and what a vendor holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The device.
    pub mac: Mac,
    /// Its vendor.
    pub vendor: Vendor,
    /// What would repair it.
    pub action: RedirectAction,
    /// Why, for the operator.
    pub why: &'static str,
}

/// What `redirect sync` found and did.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    /// The differences, by vendor then MAC.
    pub differences: Vec<Difference>,
    /// Vendors whose API cannot list: nothing compared.
    pub unlisted: Vec<Vendor>,
    /// Rows queued (with `--apply`).
    pub queued: Option<usize>,
}

impl SyncReport {
    /// The report as printed: one line per difference, then a summary.
    pub fn print(&self) -> String {
        let mut out = String::new();
        for d in &self.differences {
            out.push_str(&format!(
                "{} {} {}: {}\n",
                d.vendor,
                d.mac,
                d.action.as_str(),
                d.why
            ));
        }
        for v in &self.unlisted {
            out.push_str(&format!(
                "{v}: the redirect service cannot list devices; nothing compared\n"
            ));
        }
        match self.queued {
            Some(n) => out.push_str(&format!("{n} rows queued\n")),
            None => out.push_str(&format!(
                "{} differences (run with --apply to queue the repairs)\n",
                self.differences.len()
            )),
        }
        out
    }
}

/// Compares the devices claimed for `vendors` with what their redirect services hold: a
/// claimed device the vendor does not send to us is to be registered, a device the vendor
/// sends to us that nobody claims is to be deregistered. With `apply`, queues the repairs.
pub async fn sync(
    store: &dyn Store,
    services: &Services,
    vendors: &[Vendor],
    apply: bool,
) -> anyhow::Result<SyncReport> {
    use anyhow::Context;
    let mut claimed: BTreeMap<Vendor, std::collections::BTreeSet<Mac>> = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store.devices_page(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.mac);
        for d in page {
            claimed.entry(d.vendor).or_default().insert(d.mac);
        }
    }
    let mut report = SyncReport::default();
    for &vendor in vendors {
        let service = services
            .get(vendor)
            .with_context(|| format!("no redirect service is configured for {vendor}"))?;
        let Some(listed) = service
            .list()
            .await
            .with_context(|| format!("cannot list {vendor}'s devices"))?
        else {
            report.unlisted.push(vendor);
            continue;
        };
        let ours = claimed.remove(&vendor).unwrap_or_default();
        let url = service.provisioning_url();
        let held: BTreeMap<Mac, String> = listed.into_iter().map(|l| (l.mac, l.url)).collect();
        for mac in &ours {
            match held.get(mac) {
                None => report.differences.push(Difference {
                    mac: *mac,
                    vendor,
                    action: RedirectAction::Register,
                    why: "claimed here, not registered with the vendor",
                }),
                Some(u) if u != url => report.differences.push(Difference {
                    mac: *mac,
                    vendor,
                    action: RedirectAction::Register,
                    why: "registered with the vendor to another URL",
                }),
                Some(_) => {}
            }
        }
        for mac in held.keys().filter(|m| !ours.contains(m)) {
            report.differences.push(Difference {
                mac: *mac,
                vendor,
                action: RedirectAction::Deregister,
                why: "registered with the vendor, claimed by nobody here",
            });
        }
    }
    if apply {
        let rows = report
            .differences
            .iter()
            .map(|d| crate::store::Enqueue {
                mac: d.mac,
                vendor: d.vendor,
                action: d.action,
            })
            .collect();
        report.queued = Some(
            store
                .redirect_enqueue(rows, &crate::store::Actor::cli())
                .await?,
        );
    }
    Ok(report)
}
