//! Provisioning: answering a phone's request for its files.
//!
//! The pipeline, top to bottom in [`Provisioner::handle`]: the miss throttle → recognise the
//! request (`crate::vendors`) → refuse what does not add up → registry lookup → the access
//! decision (`access`) → serve the config from the render cache, rendering on a miss — or,
//! rarely, issue credentials first (`issue`). Synchronous and free of store I/O: the only
//! shared state touched is the registry, the render cache and atomic counters; what a fetch
//! must record is queued for the batch writers. Knows nothing of sockets or TLS; `routes`
//! adapts it to HTTP.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::clock::now_millis;
use crate::domain::credentials::CredentialChange;
use crate::domain::sighting::Sighting;
use crate::domain::{Mac, OuiTable, Vendor};
use crate::metrics::Metrics;
use crate::registry::{Device, Registry, Tenant};
use crate::vendors::{self, FileKind, PhoneRequest, Template};

mod access;
pub mod auth;
pub mod backoff;
mod cache;
mod issue;
pub mod ledger;
mod origin;
mod outcome;
mod preview;
pub mod render;
pub mod routes;
pub mod sightings;
pub mod throttle;
pub mod unanswered;

use access::{Access, Gate};
use cache::RenderCache;
use origin::{directory_of, Origin};

pub use issue::{
    commit_credentials, settle_credentials, CredentialSink, Issuance, IssueJob, Ticket,
};
pub use outcome::{Answer, Handled, Outcome, METRIC_SLOTS, VENDOR_METRIC_SLOTS};
pub use preview::{device_file, Preview, ISSUED_AT_FIRST_FETCH, MASKED};
pub use render::Renderer;

/// A phone's request, as far as provisioning cares.
#[derive(Clone, Copy, Debug)]
pub struct Fetch<'a> {
    /// The method (`GET`, `HEAD`, …).
    pub method: &'a str,
    /// Path and query as sent.
    pub path_and_query: &'a str,
    /// User-Agent header, if valid text.
    pub user_agent: Option<&'a str>,
    /// Host header, if any.
    pub host: Option<&'a str>,
    /// Authorization header, if any.
    pub authorization: Option<&'a str>,
    /// Client address.
    pub source: IpAddr,
    /// The listener's address (for URLs when there is no usable Host header).
    pub local: SocketAddr,
    /// Whether the request came over TLS.
    pub tls: bool,
}

impl Fetch<'_> {
    fn readable_method(&self) -> bool {
        self.method == "GET" || self.method == "HEAD"
    }
}

/// Provisioning settings from the configuration.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `scheme://host[:port]` phones reach this server at, written into configs as the
    /// provisioning URL; `None`: taken from each request's Host header.
    pub public_url: Option<String>,
    /// Bytes of rendered configs kept in memory.
    pub render_cache_bytes: u64,
    /// `zerotouch render`: answer as to an authenticated phone, bind nothing.
    pub dry_run: bool,
}

/// Who gets in: the miss throttle and the Digest nonce memory, as configured.
pub struct Admission {
    /// The miss throttle.
    pub throttle: throttle::Throttle,
    /// Digest nonces.
    pub nonces: auth::Nonces,
    /// Failed authentications per device.
    pub backoff: backoff::Backoff,
    /// Pending devices challenged that have not answered.
    pub unanswered: unanswered::Unanswered,
}

/// Answers phones.
pub struct Provisioner {
    registry: Arc<Registry>,
    /// The compiled templates; replaced whole when a reload reads new overrides.
    renderer: std::sync::RwLock<Arc<Renderer>>,
    /// Changes with every replacement, so cached configs of the old templates are not served.
    templates_generation: std::sync::atomic::AtomicU64,
    ouis: Arc<OuiTable>,
    cache: RenderCache,
    settings: Settings,
    metrics: Arc<Metrics>,
    sightings: Option<sightings::SightingQueue>,
    admission: Admission,
    credentials: Option<CredentialSink>,
}

impl Provisioner {
    /// Builds the provisioner. `sightings`: where fetches by known devices are recorded;
    /// `credentials`: where phones' enrolments go (`None` for one-off rendering from the
    /// command line, which shows placeholder credentials and binds nothing).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        registry: Arc<Registry>,
        renderer: Renderer,
        ouis: Arc<OuiTable>,
        settings: Settings,
        metrics: Arc<Metrics>,
        sightings: Option<sightings::SightingQueue>,
        admission: Admission,
        credentials: Option<CredentialSink>,
    ) -> Self {
        Self {
            registry,
            renderer: std::sync::RwLock::new(Arc::new(renderer)),
            templates_generation: std::sync::atomic::AtomicU64::new(0),
            ouis,
            cache: RenderCache::new(settings.render_cache_bytes),
            settings,
            metrics,
            sightings,
            admission,
            credentials,
        }
    }

    /// The throttle and nonces, for the periodic sweep.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The registry this provisioner reads.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Answers one request synchronously — or, rarely, asks the caller to [`issue`]
    /// credentials first. Records metrics, one log line and (for a known device) a sighting.
    ///
    /// [`issue`]: Provisioner::issue
    pub fn handle(&self, fetch: &Fetch<'_>) -> Handled {
        let started = Instant::now();
        // A blocked network is still asked who it is: a phone that authenticates (or needs no
        // credentials) is served, so a few junk requests behind a shared address do not shut
        // out every phone there.
        let blocked = self.admission.throttle.blocked_for(fetch.source);
        let agent = fetch.user_agent.and_then(vendors::parse_user_agent);
        let request = vendors::recognise_parsed(fetch.path_and_query, agent, &self.ouis);
        let (handled, mac) = self.resolve(fetch, request.as_ref(), blocked, started);
        if let Handled::Done(answer) = &handled {
            let vendor = request
                .as_ref()
                .map(|r| r.vendor)
                .or_else(|| agent.and_then(|a| a.vendor));
            let file = request.as_ref().map(|r| r.file);
            self.record(fetch.source, vendor, file, mac, answer.outcome, started);
        }
        handled
    }

    /// Decides the answer; `Some(mac)` once the request names a device.
    fn resolve(
        &self,
        fetch: &Fetch<'_>,
        request: Option<&PhoneRequest<'_>>,
        blocked: Option<Duration>,
        started: Instant,
    ) -> (Handled, Option<Mac>) {
        let throttled = |wait: Duration| {
            let mut answer = Answer::refusal(Outcome::Throttled);
            answer.retry_after = Some(wait.as_secs().max(1));
            answer
        };
        let refusal = |outcome: Outcome| match blocked {
            Some(wait) => throttled(wait),
            None => Answer::refusal(outcome),
        };
        let refuse = |outcome: Outcome, mac: Option<Mac>| (Handled::Done(refusal(outcome)), mac);
        if !fetch.readable_method() {
            return refuse(Outcome::MethodNotAllowed, None);
        }
        let Some(request) = request else {
            return refuse(Outcome::Unrecognised, None);
        };
        if !request.file.is_served() {
            return refuse(Outcome::OptionalAbsent, request.path_mac);
        }
        if let (Some(in_path), Some(in_agent)) =
            (request.path_mac, request.agent.and_then(|a| a.mac))
        {
            if in_path != in_agent {
                return refuse(Outcome::MacMismatch, Some(in_path));
            }
        }
        let Some(mac) = request.mac() else {
            // A model or common file from a phone that does not say who it is: nothing
            // tenant-specific can be given, and the phone moves on to its per-device file.
            return refuse(Outcome::OptionalAbsent, None);
        };
        let Some((device, tenant)) = self.registry.lookup(mac) else {
            return refuse(Outcome::UnknownDevice, Some(mac));
        };
        let gate = Gate {
            nonces: &self.admission.nonces,
            ouis: &self.ouis,
            backoff: &self.admission.backoff,
            unanswered: &self.admission.unanswered,
            dry_run: self.settings.dry_run,
        };
        let access = gate.decide(fetch, request, &device, &tenant, now_ms);
        if fetch.authorization.is_some() {
            // Whoever was challenged had credentials to answer with: no re-issue for it.
            self.admission.unanswered.settled(mac);
        }
        let answer = match access {
            Access::Refuse(outcome) => {
                if outcome == Outcome::AuthFailed {
                    self.failed_authentication(mac);
                }
                refusal(outcome)
            }
            // A phone that must authenticate is told how, even from a blocked network.
            Access::Challenge { stale } => {
                if device.credentials.as_ref().is_some_and(|c| c.pending) {
                    self.admission
                        .unanswered
                        .challenged(mac, fetch.source, now_ms());
                }
                let mut answer = Answer::refusal(Outcome::Challenged);
                answer.challenge = Some(self.admission.nonces.challenge(
                    now_ms(),
                    throttle::Prefix::of(fetch.source).bytes(),
                    stale,
                ));
                answer
            }
            Access::Compromise => {
                tracing::warn!(target: "zerotouch::phone", %mac, tenant = %tenant.name, source = %fetch.source, "retired credentials presented: device marked compromised");
                self.metrics.compromised.inc();
                self.settle(mac, CredentialChange::Compromise, fetch.source);
                refusal(Outcome::Compromised)
            }
            Access::Allow { authenticated, .. } if blocked.is_some() && !authenticated => {
                refusal(Outcome::Throttled)
            }
            Access::Allow {
                confirm,
                authenticated,
            } => {
                if authenticated {
                    self.admission.backoff.succeeded(mac);
                }
                if confirm {
                    self.admission.unanswered.settled(mac);
                }
                if confirm {
                    self.settle(mac, CredentialChange::Confirm, fetch.source);
                }
                self.serve(fetch, request, mac, &device, &tenant)
            }
            Access::Issue(_) if blocked.is_some() => refusal(Outcome::Throttled),
            Access::Issue(issuance) => {
                self.admission.unanswered.settled(mac);
                match self.ticket(fetch, request, issuance, &device, &tenant, started) {
                    Ok(ticket) => return (Handled::Issue(Box::new(ticket)), Some(mac)),
                    Err(refusal) => self.unsupported(mac, &tenant, &refusal),
                }
            }
        };
        // A failed authentication is recorded too (apart from the last-seen status), so the
        // partner sees devices failing to authenticate; it is rare and already costly.
        if matches!(answer.outcome, Outcome::Served | Outcome::AuthFailed) {
            self.record_sighting(
                fetch.source,
                fetch.user_agent.unwrap_or(""),
                request.model(),
                request.firmware(),
                request.file,
                mac,
                answer.outcome,
            );
        }
        (Handled::Done(answer), Some(mac))
    }

    /// Counts a failed authentication against the device, whatever network it came from.
    fn failed_authentication(&self, mac: Mac) {
        if let Some(wait) = self.admission.backoff.failed(mac, now_ms()) {
            self.metrics.auth_backoffs.inc();
            tracing::warn!(target: "zerotouch::phone", %mac, wait_s = wait / 1000, "device waits after repeated failed authentications");
        }
    }

    /// The templates in use.
    pub(crate) fn renderer(&self) -> Arc<Renderer> {
        self.renderer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts new templates in use for the next render; configs rendered from the old ones are
    /// no longer served from the cache.
    pub fn replace_templates(&self, renderer: Renderer) {
        *self.renderer.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(renderer);
        self.templates_generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// The config of an admitted request: from the render cache, rendered on a miss.
    fn serve(
        &self,
        fetch: &Fetch<'_>,
        request: &PhoneRequest<'_>,
        mac: Mac,
        device: &Device,
        tenant: &Tenant,
    ) -> Answer {
        let template = match template_for(request) {
            Ok(t) => t,
            Err(refusal) => return self.unsupported(mac, tenant, &refusal),
        };
        let origin = Origin::of(fetch, self.settings.public_url.as_deref());
        let dir = directory_of(fetch.path_and_query);
        let key = cache::Key {
            mac,
            template,
            device_generation: device.generation,
            tenant_generation: tenant.generation,
            variant: self.cache.variant((
                request.model(),
                request.firmware(),
                origin,
                dir,
                self.templates_generation
                    .load(std::sync::atomic::Ordering::Acquire),
            )),
        };
        if let Some(body) = self.cache.get(&key) {
            self.metrics.render_cache.inc(0, &["hit"]);
            return Answer::config(Outcome::Served, template.content_type(), body);
        }
        self.metrics.render_cache.inc(1, &["miss"]);
        let provisioning_url = origin.url(dir);
        let rendered = self.renderer().render(
            request.vendor,
            template,
            &render::Input {
                phone: render::Phone {
                    mac,
                    model: request.model(),
                    firmware: request.firmware(),
                },
                tenant: &tenant.name,
                settings: &tenant.settings,
                device: device.settings.as_deref(),
                provisioning_url: &provisioning_url,
                credentials: None,
            },
        );
        match rendered {
            Ok(body) => {
                self.cache.insert(key, body.clone());
                Answer::config(Outcome::Served, template.content_type(), body)
            }
            Err(render::RenderError::Unsupported(refusal)) => {
                self.unsupported(mac, tenant, &refusal)
            }
            Err(e) => {
                let vendor = request.vendor;
                self.metrics
                    .render_errors
                    .inc(vendor.index(), &[vendor.as_str()]);
                tracing::error!(%mac, tenant = %tenant.name, error = %e, "cannot render config");
                Answer::refusal(Outcome::RenderFailed)
            }
        }
    }

    /// What finishing an issuance needs, once the vendor has confirmed it can serve this
    /// phone: credentials are committed before the config is rendered, so a phone that could
    /// not be given its config must not use up its enrolment.
    fn ticket(
        &self,
        fetch: &Fetch<'_>,
        request: &PhoneRequest<'_>,
        issuance: Issuance,
        device: &Arc<Device>,
        tenant: &Arc<Tenant>,
        started: Instant,
    ) -> Result<Ticket, vendors::Refusal> {
        let template = template_for(request)?;
        vendors::profile(request.vendor).values(
            template,
            vendors::Phone {
                model: request.model(),
                firmware: request.firmware(),
            },
            &tenant.settings,
            device.settings.as_deref(),
        )?;
        Ok(Ticket {
            issuance,
            mac: device.mac,
            device: device.clone(),
            tenant: tenant.clone(),
            template,
            file: request.file,
            model: request.model().map(str::to_owned),
            firmware: request.firmware().map(str::to_owned),
            user_agent: sightings::clean(fetch.user_agent.unwrap_or(""), 256),
            provisioning_url: Origin::of(fetch, self.settings.public_url.as_deref())
                .url(directory_of(fetch.path_and_query)),
            source: fetch.source,
            started,
        })
    }

    fn unsupported(&self, mac: Mac, tenant: &Tenant, refusal: &vendors::Refusal) -> Answer {
        tracing::warn!(target: "zerotouch::phone", %mac, tenant = %tenant.name, models = refusal.models, reason = %refusal.reason, "phone not served: its model cannot take this config");
        Answer::refusal(Outcome::Unsupported)
    }

    /// Metrics, the log line, and the miss throttle for one finished request.
    fn record(
        &self,
        source: IpAddr,
        vendor: Option<Vendor>,
        file: Option<FileKind>,
        mac: Option<Mac>,
        outcome: Outcome,
        started: Instant,
    ) {
        let elapsed = started.elapsed();
        let vendor_label = vendor.map_or("unknown", Vendor::as_str);
        let file_label = file.map_or("none", FileKind::label);
        self.metrics.phone_requests.inc(
            outcome::metric_slot(vendor, file, outcome),
            &[vendor_label, file_label, outcome.label()],
        );
        self.metrics.phone_duration.observe(
            vendor.map_or(Vendor::ALL.len(), Vendor::index),
            &[vendor_label],
            elapsed.as_secs_f64(),
        );
        tracing::info!(
            target: "zerotouch::phone",
            vendor = vendor_label,
            file = file_label,
            mac = mac.map(tracing::field::display),
            outcome = outcome.label(),
            status = outcome.status(),
            duration_us = elapsed.as_micros() as u64,
            source = %source,
            "phone request"
        );
        if outcome.is_miss() {
            if let Some(blocked) = self.admission.throttle.miss(source) {
                self.metrics.throttle_blocks.inc();
                tracing::warn!(
                    target: "zerotouch::throttle",
                    prefix = %blocked.prefix,
                    cooldown_s = blocked.cooldown.as_secs(),
                    "source network blocked after too many misses"
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record_sighting(
        &self,
        source: IpAddr,
        user_agent: &str,
        model: Option<&str>,
        firmware: Option<&str>,
        file: FileKind,
        mac: Mac,
        outcome: Outcome,
    ) {
        if let Some(queue) = &self.sightings {
            queue.record(Sighting {
                mac,
                at: now_millis(),
                source,
                user_agent: sightings::clean(user_agent, 256),
                model: model.map(|m| sightings::clean(m, 64)),
                firmware: firmware.map(|f| sightings::clean(f, 64)),
                file: file.label(),
                outcome: outcome.label(),
            });
        }
    }
}

fn now_ms() -> u64 {
    u64::try_from(now_millis()).unwrap_or(0)
}

fn template_for(request: &PhoneRequest<'_>) -> Result<Template, vendors::Refusal> {
    vendors::profile(request.vendor).template(
        request.file,
        vendors::Phone {
            model: request.model(),
            firmware: request.firmware(),
        },
    )
}

/// Sweeps the throttle and the nonce memory every `every` until `shutdown`.
pub async fn sweep_admission(
    provisioner: Arc<Provisioner>,
    every: Duration,
    metrics: Arc<Metrics>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let admission = provisioner.admission();
        admission.throttle.sweep();
        admission.nonces.sweep(now_ms());
        admission.backoff.sweep(now_ms());
        admission.unanswered.sweep(now_ms());
        metrics
            .throttled_sources
            .set(admission.throttle.blocked_sources() as i64);
    }
}
