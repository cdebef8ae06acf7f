//! Provisioning: answering a phone's request for its files.
//!
//! recognise (path + User-Agent) → refuse what does not add up → registry lookup → render
//! (cached per device, tenant generation and request variant) → answer. Synchronous and free
//! of store I/O: the only shared state touched is the registry, the render cache and atomic
//! counters; what the fetch must record is queued for the batch writer. Knows nothing of
//! sockets or TLS; `routes` adapts it to HTTP.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use tokio::sync::mpsc;

use crate::domain::credentials::issue_credentials;
use crate::domain::{Mac, OuiTable, PhoneAuth, Vendor};
use crate::metrics::Metrics;
use crate::registry::{Device, Registry, Tenant};
use crate::store::{now_millis, CredentialChange, Sighting, Store};

pub mod auth;
pub mod render;
pub mod routes;
pub mod sightings;
pub mod throttle;

pub use render::Renderer;

use crate::vendors::{self, recognise, FileKind, PhoneRequest, Template};

/// How a phone request ended. A closed set: also a metric label.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// 200 with a rendered config.
    Served,
    /// 200 with a rendered config that also hands the phone new provisioning credentials
    /// (its enrolment, or a rotation).
    Enrolled,
    /// 404 for a file phones ask for speculatively (boot files, `provisioning.xml`, a common
    /// file without a MAC): a normal step of a boot sequence.
    OptionalAbsent,
    /// 404: the MAC is not claimed.
    UnknownDevice,
    /// 404: claimed, but neither enrolled nor inside its enrolment window.
    NotEnrolled,
    /// 404: not a file any supported phone asks for.
    Unrecognised,
    /// 403: the MAC in the path and the MAC in the User-Agent differ.
    MacMismatch,
    /// 404: the request's vendor differs from the device's registered vendor (answered like
    /// an unknown MAC, so it tells nothing).
    VendorMismatch,
    /// 401: the device must authenticate; a Digest challenge.
    Challenged,
    /// 404: wrong credentials, a replayed or foreign nonce (answered like an unknown MAC).
    AuthFailed,
    /// 429: the source network made too many misses and waits out a cool-down.
    Throttled,
    /// 405: not GET or HEAD.
    MethodNotAllowed,
    /// 404: the phone cannot be given what its tenant or device asks (a model zerotouch has no
    /// verified format for, a transport or number of lines the model lacks); logged with the
    /// reason and shown in the device's status. A phone's normal request: never a miss.
    Unsupported,
    /// 500: the template failed for this device.
    RenderFailed,
    /// 503: new credentials could not be stored; the phone retries later.
    Unavailable,
}

impl Outcome {
    /// Every outcome, in label-slot order.
    pub const ALL: [Outcome; 15] = [
        Outcome::Served,
        Outcome::Enrolled,
        Outcome::OptionalAbsent,
        Outcome::UnknownDevice,
        Outcome::NotEnrolled,
        Outcome::Unrecognised,
        Outcome::MacMismatch,
        Outcome::VendorMismatch,
        Outcome::Challenged,
        Outcome::AuthFailed,
        Outcome::Throttled,
        Outcome::MethodNotAllowed,
        Outcome::Unsupported,
        Outcome::RenderFailed,
        Outcome::Unavailable,
    ];

    /// Metric label and log field.
    pub const fn label(self) -> &'static str {
        match self {
            Outcome::Served => "served",
            Outcome::Enrolled => "enrolled",
            Outcome::OptionalAbsent => "optional_absent",
            Outcome::UnknownDevice => "unknown_device",
            Outcome::NotEnrolled => "not_enrolled",
            Outcome::Unrecognised => "unrecognised",
            Outcome::MacMismatch => "mac_mismatch",
            Outcome::VendorMismatch => "vendor_mismatch",
            Outcome::Challenged => "challenged",
            Outcome::AuthFailed => "auth_failed",
            Outcome::Throttled => "throttled",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::Unsupported => "unsupported",
            Outcome::RenderFailed => "render_failed",
            Outcome::Unavailable => "unavailable",
        }
    }

    /// HTTP status.
    pub const fn status(self) -> u16 {
        match self {
            Outcome::Served | Outcome::Enrolled => 200,
            Outcome::OptionalAbsent
            | Outcome::UnknownDevice
            | Outcome::NotEnrolled
            | Outcome::Unrecognised
            | Outcome::VendorMismatch
            | Outcome::AuthFailed
            | Outcome::Unsupported => 404,
            Outcome::MacMismatch => 403,
            Outcome::Challenged => 401,
            Outcome::Throttled => 429,
            Outcome::MethodNotAllowed => 405,
            Outcome::RenderFailed => 500,
            Outcome::Unavailable => 503,
        }
    }

    /// Whether this counts against the source in the miss throttle. A phone's normal steps
    /// (optional files, a first request that gets challenged) never do.
    pub const fn is_miss(self) -> bool {
        matches!(
            self,
            Outcome::UnknownDevice
                | Outcome::NotEnrolled
                | Outcome::Unrecognised
                | Outcome::MacMismatch
                | Outcome::VendorMismatch
                | Outcome::AuthFailed
                | Outcome::MethodNotAllowed
        )
    }

    /// The body of a refusal: one fixed text per status, so no refusal tells whether a MAC
    /// exists.
    pub const fn refusal_body(self) -> &'static str {
        match self.status() {
            401 => "unauthorized\n",
            403 => "forbidden\n",
            405 => "method not allowed\n",
            429 => "too many requests\n",
            500 => "internal error\n",
            503 => "unavailable\n",
            _ => "not found\n",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

const VENDOR_SLOTS: usize = Vendor::ALL.len() + 1;
const FILE_SLOTS: usize = FileKind::ALL.len() + 1;

/// Number of (vendor, file, outcome) metric slots.
pub const METRIC_SLOTS: usize = crate::metrics::slots(VENDOR_SLOTS, FILE_SLOTS, Outcome::ALL.len());

/// Metric slots for the per-vendor histogram (three vendors and "unknown").
pub const VENDOR_METRIC_SLOTS: usize = VENDOR_SLOTS;

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

/// The answer to a phone.
#[derive(Clone, Debug)]
pub struct Answer {
    /// How it ended.
    pub outcome: Outcome,
    /// Content-Type of `body`.
    pub content_type: &'static str,
    /// The config, or a fixed refusal text.
    pub body: Bytes,
    /// `WWW-Authenticate` values of a 401.
    pub challenge: Option<[HeaderValue; 2]>,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl Answer {
    fn refusal(outcome: Outcome) -> Self {
        Self {
            outcome,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from_static(outcome.refusal_body().as_bytes()),
            challenge: None,
            retry_after: None,
        }
    }
}

/// What handling a request came to: an answer now, or new credentials to store first.
pub enum Handled {
    /// The answer.
    Done(Answer),
    /// The phone is to receive new provisioning credentials: they must be committed to the
    /// store before it gets them (see [`Provisioner::issue`]). Rare: once per enrolment or
    /// rotation, never on an ordinary fetch.
    Issue(Box<Ticket>),
}

/// Why credentials are issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Issuance {
    /// First fetch inside the enrolment window.
    Enrol,
    /// A rotation was requested; the phone authenticated with its current credentials.
    Rotate,
    /// The phone authenticated with its previous credentials: it never got (or lost) the
    /// current ones; hand it new ones, keeping the previous valid.
    Reissue,
}

impl Issuance {
    fn label(self) -> &'static str {
        match self {
            Issuance::Enrol => "enrol",
            Issuance::Rotate => "rotate",
            Issuance::Reissue => "reissue",
        }
    }
}

/// Everything needed to finish a request whose answer hands out credentials.
pub struct Ticket {
    issuance: Issuance,
    mac: Mac,
    device: Arc<Device>,
    tenant: Arc<Tenant>,
    template: Template,
    file: FileKind,
    model: Option<String>,
    firmware: Option<String>,
    user_agent: String,
    provisioning_url: String,
    source: IpAddr,
    started: Instant,
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

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    mac: Mac,
    template: Template,
    device_generation: u64,
    tenant_generation: u64,
    /// Hash of what else the render depends on: model, firmware, provisioning URL.
    variant: u64,
}

#[derive(Clone)]
struct ByteWeight;

impl quick_cache::Weighter<CacheKey, Bytes> for ByteWeight {
    fn weight(&self, _key: &CacheKey, value: &Bytes) -> u64 {
        value.len() as u64 + 96
    }
}

type RenderCache = quick_cache::sync::Cache<CacheKey, Bytes, ByteWeight>;

/// Phone authentication and throttling, as configured.
pub struct Guard {
    /// The miss throttle.
    pub throttle: throttle::Throttle,
    /// Digest nonces.
    pub nonces: auth::Nonces,
}

/// Where credential changes made by phones' fetches go.
pub struct CredentialSink {
    /// Issued credentials, committed (in groups) before a phone gets them.
    pub issue: mpsc::Sender<IssueJob>,
    /// Retirements of previous credentials, applied off the hot path.
    pub retire: mpsc::Sender<Mac>,
}

/// One credential change waiting for its commit.
pub struct IssueJob {
    mac: Mac,
    change: CredentialChange,
    source: IpAddr,
    reply: tokio::sync::oneshot::Sender<
        Result<Option<crate::store::DeviceRecord>, crate::store::Error>,
    >,
}

/// Commits issued credentials in groups — one transaction for a burst of phones enrolling at
/// once — updates the registry, then lets each waiting request answer. Runs until every
/// sender is gone.
pub async fn commit_credentials(
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    mut jobs: mpsc::Receiver<IssueJob>,
) {
    const GROUP: usize = 256;
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let changes = group
            .iter()
            .map(|j| (j.mac, j.change.clone(), Some(j.source)))
            .collect();
        match store.change_credentials_many(changes).await {
            Ok(records) => {
                {
                    let _order = registry.write_lock().await;
                    for record in records.iter().flatten() {
                        registry.put_device(record.clone());
                    }
                }
                for (job, record) in group.into_iter().zip(records) {
                    let _ = job.reply.send(Ok(record));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                for job in group {
                    let _ = job
                        .reply
                        .send(Err(crate::store::Error::Unavailable(reason.clone())));
                }
            }
        }
    }
}

/// Answers phones.
pub struct Provisioner {
    registry: Arc<Registry>,
    renderer: Renderer,
    ouis: Arc<OuiTable>,
    cache: RenderCache,
    variant_hasher: ahash::RandomState,
    settings: Settings,
    metrics: Arc<Metrics>,
    sightings: Option<sightings::SightingQueue>,
    guard: Guard,
    credentials: Option<CredentialSink>,
}

/// The authorisation decision for a known device.
enum Access {
    Allow,
    Issue(Issuance),
    Challenge { stale: bool },
    Refuse(Outcome),
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
        guard: Guard,
        credentials: Option<CredentialSink>,
    ) -> Self {
        let capacity = settings.render_cache_bytes.max(1);
        let cache = RenderCache::with_weighter(
            usize::try_from(capacity / 2048)
                .unwrap_or(usize::MAX)
                .max(16),
            capacity,
            ByteWeight,
        );
        Self {
            registry,
            renderer,
            ouis,
            cache,
            variant_hasher: ahash::RandomState::new(),
            settings,
            metrics,
            sightings,
            guard,
            credentials,
        }
    }

    /// The throttle and nonces, for the periodic sweep.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Answers one request synchronously — or, rarely, asks the caller to [`issue`]
    /// credentials first. Records metrics, one log line and (for a known device) a sighting.
    ///
    /// [`issue`]: Provisioner::issue
    pub fn handle(&self, fetch: &Fetch<'_>) -> Handled {
        let started = Instant::now();
        if let Some(wait) = self.guard.throttle.blocked_for(fetch.source) {
            let mut answer = Answer::refusal(Outcome::Throttled);
            answer.retry_after = Some(wait.as_secs().max(1));
            self.record(fetch.source, None, None, None, Outcome::Throttled, started);
            return Handled::Done(answer);
        }
        let request = recognise(fetch.path_and_query, fetch.user_agent, &self.ouis);
        let (handled, mac) = self.resolve(fetch, request.as_ref(), started);
        if let Handled::Done(answer) = &handled {
            let vendor = request.as_ref().map(|r| r.vendor).or_else(|| {
                fetch
                    .user_agent
                    .and_then(vendors::parse_user_agent)
                    .and_then(|a| a.vendor)
            });
            self.record(
                fetch.source,
                vendor,
                request.as_ref().map(|r| r.file),
                mac,
                answer.outcome,
                started,
            );
        }
        handled
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
        let vendor_slot = vendor.map_or(Vendor::ALL.len(), Vendor::index);
        let file_slot = file.map_or(FileKind::ALL.len(), FileKind::index);
        let vendor_label = vendor.map_or("unknown", Vendor::as_str);
        let file_label = file.map_or("none", FileKind::label);
        self.metrics.phone_requests.inc(
            (vendor_slot * FILE_SLOTS + file_slot) * Outcome::ALL.len() + outcome.index(),
            &[vendor_label, file_label, outcome.label()],
        );
        self.metrics
            .phone_duration
            .observe(vendor_slot, &[vendor_label], elapsed.as_secs_f64());
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
            if let Some(blocked) = self.guard.throttle.miss(source) {
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

    /// Decides the outcome; `Some(mac)` once the request names a device.
    fn resolve(
        &self,
        fetch: &Fetch<'_>,
        request: Option<&PhoneRequest<'_>>,
        started: Instant,
    ) -> (Handled, Option<Mac>) {
        let refuse =
            |outcome: Outcome, mac: Option<Mac>| (Handled::Done(Answer::refusal(outcome)), mac);
        if !fetch.readable_method() {
            return refuse(Outcome::MethodNotAllowed, None);
        }
        let Some(request) = request else {
            return refuse(Outcome::Unrecognised, None);
        };
        if !request.file.is_served() {
            return refuse(Outcome::OptionalAbsent, request.path_mac);
        }
        let agent_mac = request.agent.and_then(|a| a.mac);
        if let (Some(in_path), Some(in_agent)) = (request.path_mac, agent_mac) {
            if in_path != in_agent {
                return refuse(Outcome::MacMismatch, Some(in_path));
            }
        }
        let Some(mac) = request.path_mac.or(agent_mac) else {
            // A model or common file from a phone that does not say who it is: nothing
            // tenant-specific can be given, and the phone moves on to its per-device file.
            return refuse(Outcome::OptionalAbsent, None);
        };
        let Some((device, tenant)) = self.registry.lookup(mac) else {
            return refuse(Outcome::UnknownDevice, Some(mac));
        };
        let vendor = request.vendor;
        let agent_vendor = request.agent.and_then(|a| {
            a.vendor
                .or_else(|| a.mac.and_then(|m| self.ouis.vendor_of(m)))
        });
        let access = if device.vendor != vendor || agent_vendor.is_some_and(|v| v != vendor) {
            Access::Refuse(Outcome::VendorMismatch)
        } else {
            self.access(fetch, request, &device, &tenant)
        };
        let template = template_for(request);
        let unsupported = |refusal: &vendors::Refusal| {
            tracing::warn!(target: "zerotouch::phone", %mac, tenant = %tenant.name, models = refusal.models, reason = %refusal.reason, "phone not served: its model cannot take this config");
            Handled::Done(Answer::refusal(Outcome::Unsupported))
        };
        let handled = match access {
            Access::Refuse(outcome) => Handled::Done(Answer::refusal(outcome)),
            Access::Challenge { stale } => {
                let mut answer = Answer::refusal(Outcome::Challenged);
                answer.challenge = Some(self.guard.nonces.challenge(
                    now_ms(),
                    throttle::Prefix::of(fetch.source).bytes(),
                    stale,
                ));
                Handled::Done(answer)
            }
            Access::Issue(issuance) => {
                // Credentials are committed before the config is rendered: a phone that could
                // not be given its config must not use up its enrolment.
                let checked = template.and_then(|t| {
                    vendors::profile(vendor)
                        .values(
                            t,
                            vendors::Phone {
                                model: request.model(),
                                firmware: request.firmware(),
                            },
                            &tenant.settings,
                            device.settings.as_deref(),
                        )
                        .map(|_| t)
                });
                match checked {
                    Err(refusal) => unsupported(&refusal),
                    Ok(template) => {
                        return (
                            Handled::Issue(Box::new(Ticket {
                                issuance,
                                mac,
                                device,
                                tenant,
                                template,
                                file: request.file,
                                model: request.model().map(str::to_owned),
                                firmware: request.firmware().map(str::to_owned),
                                user_agent: truncate(fetch.user_agent.unwrap_or(""), 256)
                                    .to_owned(),
                                provisioning_url: Origin::of(
                                    fetch,
                                    self.settings.public_url.as_deref(),
                                )
                                .url(directory_of(fetch.path_and_query)),
                                source: fetch.source,
                                started,
                            })),
                            Some(mac),
                        )
                    }
                }
            }
            Access::Allow => {
                match template
                    .map_err(render::RenderError::Unsupported)
                    .and_then(|template| {
                        self.rendered(fetch, request, template, mac, &device, &tenant)
                            .map(|body| (template, body))
                    }) {
                    Ok((template, body)) => Handled::Done(Answer {
                        outcome: Outcome::Served,
                        content_type: template.content_type(),
                        body,
                        challenge: None,
                        retry_after: None,
                    }),
                    Err(render::RenderError::Unsupported(refusal)) => unsupported(&refusal),
                    Err(e) => {
                        self.metrics
                            .render_errors
                            .inc(vendor.index(), &[vendor.as_str()]);
                        tracing::error!(%mac, tenant = %tenant.name, error = %e, "cannot render config");
                        Handled::Done(Answer::refusal(Outcome::RenderFailed))
                    }
                }
            }
        };
        if let Handled::Done(answer) = &handled {
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
        (handled, Some(mac))
    }

    /// Who may have this device's config (see DESIGN.md, "Who may fetch a config").
    fn access(
        &self,
        fetch: &Fetch<'_>,
        request: &PhoneRequest<'_>,
        device: &Device,
        tenant: &Tenant,
    ) -> Access {
        if tenant.settings.phone_auth == PhoneAuth::Mac {
            return Access::Allow;
        }
        let prefix = throttle::Prefix::of(fetch.source);
        let presented = auth::Presented {
            authorization: fetch.authorization,
            method: fetch.method,
            uri: fetch.path_and_query,
            tls: fetch.tls,
            prefix: prefix.bytes(),
            now_ms: now_ms(),
        };
        let challenge_or_refuse = |verdict: auth::Verdict| match verdict {
            auth::Verdict::Missing => Access::Challenge { stale: false },
            auth::Verdict::Stale => Access::Challenge { stale: true },
            _ => Access::Refuse(Outcome::AuthFailed),
        };
        let per_device_file = request.file == FileKind::Device;
        if self.settings.dry_run && (device.claim_secret.is_some() || device.credentials.is_some())
        {
            return Access::Allow;
        }
        // Gigaset phones prove themselves with their MAC-ID, out of the box.
        if let Some(secret) = &device.claim_secret {
            return match auth::verify(&self.guard.nonces, &presented, &secret.entries()) {
                auth::Verdict::Authenticated(_) => Access::Allow,
                other => challenge_or_refuse(other),
            };
        }
        if let Some(credentials) = &device.credentials {
            let mut candidates = vec![&credentials.current];
            if let Some(previous) = &credentials.previous {
                candidates.push(previous);
            }
            return match auth::verify(&self.guard.nonces, &presented, &candidates) {
                auth::Verdict::Authenticated(0) if credentials.rotate && per_device_file => {
                    Access::Issue(Issuance::Rotate)
                }
                auth::Verdict::Authenticated(0) => {
                    if credentials.previous.is_some() {
                        self.retire_previous(device.mac);
                    }
                    Access::Allow
                }
                auth::Verdict::Authenticated(_) if per_device_file => {
                    Access::Issue(Issuance::Reissue)
                }
                auth::Verdict::Authenticated(_) => Access::Allow,
                other => challenge_or_refuse(other),
            };
        }
        match device.enrol_until {
            Some(until) if until > now_millis() => {
                if per_device_file {
                    Access::Issue(Issuance::Enrol)
                } else {
                    // The common or model file holds no secret: give it, bind on the
                    // per-device file that follows.
                    Access::Allow
                }
            }
            _ => Access::Refuse(Outcome::NotEnrolled),
        }
    }

    fn retire_previous(&self, mac: Mac) {
        if let Some(sink) = &self.credentials {
            // Best effort: if the queue is full, the next authenticated fetch asks again.
            let _ = sink.retire.try_send(mac);
        }
    }

    /// Finishes a request that hands out credentials: generates them, commits their HA1 to
    /// the store, updates the registry, then renders the config that carries them.
    pub async fn issue(&self, ticket: Ticket) -> Answer {
        let outcome_answer = self.issue_inner(&ticket).await;
        let outcome = outcome_answer.outcome;
        self.record(
            ticket.source,
            Some(ticket.device.vendor),
            Some(ticket.file),
            Some(ticket.mac),
            outcome,
            ticket.started,
        );
        self.record_sighting(
            ticket.source,
            &ticket.user_agent,
            ticket.model.as_deref(),
            ticket.firmware.as_deref(),
            ticket.file,
            ticket.mac,
            outcome,
        );
        outcome_answer
    }

    async fn issue_inner(&self, t: &Ticket) -> Answer {
        let render = |credentials: render::Credentials<'_>| {
            self.renderer.render(
                t.device.vendor,
                t.template,
                &render::Input {
                    phone: render::Phone {
                        mac: t.mac,
                        model: t.model.as_deref(),
                        firmware: t.firmware.as_deref(),
                    },
                    tenant: &t.tenant.name,
                    settings: &t.tenant.settings,
                    device: t.device.settings.as_deref(),
                    provisioning_url: &t.provisioning_url,
                    credentials: Some(credentials),
                },
            )
        };
        let answer = |outcome: Outcome, body: Bytes| Answer {
            outcome,
            content_type: t.template.content_type(),
            body,
            challenge: None,
            retry_after: None,
        };
        let Some(sink) = &self.credentials else {
            // A dry run (`zerotouch render`): show where the credentials go, bind nothing.
            let placeholder = render::Credentials {
                username: "<issued-at-first-fetch>",
                password: "<issued-at-first-fetch>",
            };
            return match render(placeholder) {
                Ok(body) => answer(Outcome::Served, body),
                Err(_) => Answer::refusal(Outcome::RenderFailed),
            };
        };
        let issued = match issue_credentials(t.mac) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "cannot generate phone credentials");
                return Answer::refusal(Outcome::Unavailable);
            }
        };
        let change = match t.issuance {
            Issuance::Enrol => CredentialChange::Enrol(issued.ha1.clone()),
            Issuance::Rotate => CredentialChange::Rotate(issued.ha1.clone()),
            Issuance::Reissue => CredentialChange::Reissue(issued.ha1.clone()),
        };
        let (reply, committed) = tokio::sync::oneshot::channel();
        let job = IssueJob {
            mac: t.mac,
            change,
            source: t.source,
            reply,
        };
        let result = match sink.issue.send(job).await {
            Ok(()) => committed.await.unwrap_or_else(|_| {
                Err(crate::store::Error::Unavailable(
                    "credential writer stopped".into(),
                ))
            }),
            Err(_) => Err(crate::store::Error::Unavailable(
                "credential writer stopped".into(),
            )),
        };
        match result {
            Ok(Some(_)) => {}
            Ok(None) => {
                // Another fetch (on this or another node) bound or rotated it first, or the
                // window closed meanwhile: this client gets what an unbound device gets.
                return Answer::refusal(Outcome::NotEnrolled);
            }
            Err(e) => {
                tracing::warn!(mac = %t.mac, error = %e, "cannot store phone credentials");
                let mut a = Answer::refusal(Outcome::Unavailable);
                a.retry_after = Some(30);
                return a;
            }
        }
        self.metrics
            .enrolments
            .with_label_values(&[t.issuance.label()])
            .inc();
        tracing::info!(target: "zerotouch::phone", mac = %t.mac, kind = t.issuance.label(), "phone credentials issued");
        match render(render::Credentials {
            username: &issued.username,
            password: &issued.password,
        }) {
            Ok(body) => answer(Outcome::Enrolled, body),
            Err(e) => {
                tracing::error!(mac = %t.mac, error = %e, "cannot render config");
                Answer::refusal(Outcome::RenderFailed)
            }
        }
    }

    fn rendered(
        &self,
        fetch: &Fetch<'_>,
        request: &PhoneRequest<'_>,
        template: Template,
        mac: Mac,
        device: &Device,
        tenant: &Tenant,
    ) -> Result<Bytes, render::RenderError> {
        let origin = Origin::of(fetch, self.settings.public_url.as_deref());
        let dir = directory_of(fetch.path_and_query);
        let mut h = self.variant_hasher.build_hasher();
        request.model().hash(&mut h);
        request.firmware().hash(&mut h);
        origin.hash(&mut h);
        dir.hash(&mut h);
        let key = CacheKey {
            mac,
            template,
            device_generation: device.generation,
            tenant_generation: tenant.generation,
            variant: h.finish(),
        };
        if let Some(body) = self.cache.get(&key) {
            self.metrics.render_cache.inc(0, &["hit"]);
            return Ok(body);
        }
        self.metrics.render_cache.inc(1, &["miss"]);
        let provisioning_url = origin.url(dir);
        let body = self.renderer.render(
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
        )?;
        self.cache.insert(key, body.clone());
        Ok(body)
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
        let Some(queue) = &self.sightings else {
            return;
        };
        queue.record(Sighting {
            mac,
            at: now_millis(),
            source,
            user_agent: truncate(user_agent, 256).to_owned(),
            model: model.map(|m| truncate(m, 64).to_owned()),
            firmware: firmware.map(|f| truncate(f, 64).to_owned()),
            file: file.label(),
            outcome: outcome.label(),
        });
    }

    /// The registry this provisioner reads.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

fn now_ms() -> u64 {
    u64::try_from(now_millis()).unwrap_or(0)
}

/// Applies retirements of previous credentials queued by phones' fetches, until the queue
/// closes. Each is idempotent: a lost one is asked for again by the next fetch.
pub async fn retire_previous_credentials(
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    mut queue: mpsc::Receiver<Mac>,
) {
    while let Some(mac) = queue.recv().await {
        match store
            .change_credentials(mac, CredentialChange::RetirePrevious, None)
            .await
        {
            Ok(Some(record)) => {
                let _order = registry.write_lock().await;
                registry.put_device(record);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(%mac, error = %e, "cannot retire previous phone credentials"),
        }
    }
}

/// Sweeps the throttle and the nonce memory every `every` until `shutdown`.
pub async fn sweep_guard(
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
        provisioner.guard.throttle.sweep();
        provisioner.guard.nonces.sweep(now_ms());
        metrics
            .throttled_sources
            .set(provisioner.guard.throttle.blocked_sources() as i64);
    }
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

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The directory part of the request path, with its trailing `/` (`/prov/yealink/`).
fn directory_of(path_and_query: &str) -> &str {
    let path = path_and_query.split('?').next().unwrap_or("");
    match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    }
}

/// Where phones reach this server, for the provisioning URL written into configs.
#[derive(Hash)]
enum Origin<'a> {
    Configured(&'a str),
    Host { tls: bool, host: &'a str },
    Local { tls: bool, addr: SocketAddr },
}

impl<'a> Origin<'a> {
    fn of(fetch: &Fetch<'a>, configured: Option<&'a str>) -> Self {
        if let Some(url) = configured {
            return Origin::Configured(url.trim_end_matches('/'));
        }
        match fetch.host.filter(|h| is_host_header(h)) {
            Some(host) => Origin::Host {
                tls: fetch.tls,
                host,
            },
            None => Origin::Local {
                tls: fetch.tls,
                addr: fetch.local,
            },
        }
    }

    fn url(&self, dir: &str) -> String {
        let scheme = |tls: bool| if tls { "https" } else { "http" };
        match self {
            Origin::Configured(base) => format!("{base}{dir}"),
            Origin::Host { tls, host } => format!("{}://{host}{dir}", scheme(*tls)),
            Origin::Local { tls, addr } => format!("{}://{addr}{dir}", scheme(*tls)),
        }
    }
}

/// A Host header that can go into a URL unchanged: a name or address and an optional port.
fn is_host_header(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_origins() {
        assert_eq!(
            directory_of("/prov/yealink/805ec017de13.cfg"),
            "/prov/yealink/"
        );
        assert_eq!(directory_of("/805ec017de13.cfg?x=/y"), "/");
        assert_eq!(directory_of("x"), "/");
        assert!(is_host_header("prov.example:8443"));
        assert!(is_host_header("[::1]:8443"));
        assert!(!is_host_header("evil\"host"));
        assert!(!is_host_header("a b"));
    }

    #[test]
    fn outcome_statuses() {
        assert_eq!(
            Outcome::UnknownDevice.refusal_body(),
            Outcome::Unrecognised.refusal_body()
        );
        assert_eq!(Outcome::VendorMismatch.status(), 404);
        assert_eq!(truncate("héllo", 2), "h");
    }
}
