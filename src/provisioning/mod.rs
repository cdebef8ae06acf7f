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
use std::time::Instant;

use bytes::Bytes;

use crate::domain::{GigasetFamily, Mac, OuiTable, Vendor};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::{now_millis, Sighting};

pub mod recognise;
pub mod render;
pub mod routes;
pub mod sightings;
pub mod user_agent;

pub use recognise::{recognise, FileKind, PhoneRequest};
pub use render::{Renderer, Template};

/// How a phone request ended. A closed set: also a metric label.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// 200 with a rendered config.
    Served,
    /// 404 for a file phones ask for speculatively (boot files, `provisioning.xml`, a common
    /// file without a MAC): a normal step of a boot sequence.
    OptionalAbsent,
    /// 404: the MAC is not claimed.
    UnknownDevice,
    /// 404: not a file any supported phone asks for.
    Unrecognised,
    /// 403: the MAC in the path and the MAC in the User-Agent differ.
    MacMismatch,
    /// 403: the request's vendor differs from the device's registered vendor.
    VendorMismatch,
    /// 405: not GET or HEAD.
    MethodNotAllowed,
    /// 500: the template failed for this device.
    RenderFailed,
}

impl Outcome {
    /// Every outcome, in label-slot order.
    pub const ALL: [Outcome; 8] = [
        Outcome::Served,
        Outcome::OptionalAbsent,
        Outcome::UnknownDevice,
        Outcome::Unrecognised,
        Outcome::MacMismatch,
        Outcome::VendorMismatch,
        Outcome::MethodNotAllowed,
        Outcome::RenderFailed,
    ];

    /// Metric label and log field.
    pub const fn label(self) -> &'static str {
        match self {
            Outcome::Served => "served",
            Outcome::OptionalAbsent => "optional_absent",
            Outcome::UnknownDevice => "unknown_device",
            Outcome::Unrecognised => "unrecognised",
            Outcome::MacMismatch => "mac_mismatch",
            Outcome::VendorMismatch => "vendor_mismatch",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::RenderFailed => "render_failed",
        }
    }

    /// HTTP status.
    pub const fn status(self) -> u16 {
        match self {
            Outcome::Served => 200,
            Outcome::OptionalAbsent | Outcome::UnknownDevice | Outcome::Unrecognised => 404,
            Outcome::MacMismatch | Outcome::VendorMismatch => 403,
            Outcome::MethodNotAllowed => 405,
            Outcome::RenderFailed => 500,
        }
    }

    /// The body of a refusal: one fixed text per status, so no refusal tells whether a MAC
    /// exists.
    pub const fn refusal_body(self) -> &'static str {
        match self.status() {
            403 => "forbidden\n",
            405 => "method not allowed\n",
            500 => "internal error\n",
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
    /// GET or HEAD.
    pub readable_method: bool,
    /// Path and query as sent.
    pub path_and_query: &'a str,
    /// User-Agent header, if valid text.
    pub user_agent: Option<&'a str>,
    /// Host header, if any.
    pub host: Option<&'a str>,
    /// Client address.
    pub source: IpAddr,
    /// The listener's address (for URLs when there is no usable Host header).
    pub local: SocketAddr,
    /// Whether the request came over TLS.
    pub tls: bool,
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
}

/// Provisioning settings from the configuration.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `scheme://host[:port]` phones reach this server at, written into configs as the
    /// provisioning URL; `None`: taken from each request's Host header.
    pub public_url: Option<String>,
    /// Bytes of rendered configs kept in memory.
    pub render_cache_bytes: u64,
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
}

impl Provisioner {
    /// Builds the provisioner. `sightings`: where fetches by known devices are recorded
    /// (`None` for one-off rendering from the command line).
    pub fn new(
        registry: Arc<Registry>,
        renderer: Renderer,
        ouis: Arc<OuiTable>,
        settings: Settings,
        metrics: Arc<Metrics>,
        sightings: Option<sightings::SightingQueue>,
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
        }
    }

    /// Answers one request, and records it: metrics, one log line, and (for a known device)
    /// a last-seen sighting.
    pub fn handle(&self, fetch: &Fetch<'_>) -> Answer {
        let started = Instant::now();
        let request = recognise(fetch.path_and_query, fetch.user_agent, &self.ouis);
        let (outcome, answer, mac) = self.resolve(fetch, request.as_ref());
        let vendor = request.as_ref().map(|r| r.vendor()).or_else(|| {
            fetch
                .user_agent
                .and_then(user_agent::UserAgent::parse)
                .and_then(|a| a.vendor)
        });
        let file = request.as_ref().map(|r| r.file);
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
            source = %fetch.source,
            "phone request"
        );
        answer
    }

    /// Decides the outcome; `Some(mac)` once the request names a device.
    fn resolve(
        &self,
        fetch: &Fetch<'_>,
        request: Option<&PhoneRequest<'_>>,
    ) -> (Outcome, Answer, Option<Mac>) {
        let refuse = |outcome: Outcome, mac: Option<Mac>| {
            (
                outcome,
                Answer {
                    outcome,
                    content_type: "text/plain; charset=utf-8",
                    body: Bytes::from_static(outcome.refusal_body().as_bytes()),
                },
                mac,
            )
        };
        if !fetch.readable_method {
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
        let vendor = request.vendor();
        let agent_vendor = request.agent.and_then(|a| {
            a.vendor
                .or_else(|| a.mac.and_then(|m| self.ouis.vendor_of(m)))
        });
        let outcome = if device.vendor != vendor || agent_vendor.is_some_and(|v| v != vendor) {
            Outcome::VendorMismatch
        } else {
            Outcome::Served
        };
        let result = if outcome == Outcome::Served {
            let template = template_for(request);
            match self.rendered(fetch, request, template, mac, &device, &tenant) {
                Ok(body) => (
                    outcome,
                    Answer {
                        outcome,
                        content_type: template.content_type(),
                        body,
                    },
                    Some(mac),
                ),
                Err(e) => {
                    self.metrics
                        .render_errors
                        .inc(vendor.index(), &[vendor.as_str()]);
                    tracing::error!(%mac, tenant = %tenant.name, error = %e, "cannot render config");
                    refuse(Outcome::RenderFailed, Some(mac))
                }
            }
        } else {
            refuse(outcome, Some(mac))
        };
        self.record_sighting(fetch, request, mac, result.0);
        result
    }

    fn rendered(
        &self,
        fetch: &Fetch<'_>,
        request: &PhoneRequest<'_>,
        template: Template,
        mac: Mac,
        device: &crate::registry::Device,
        tenant: &crate::registry::Tenant,
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
            },
        )?;
        self.cache.insert(key, body.clone());
        Ok(body)
    }

    fn record_sighting(
        &self,
        fetch: &Fetch<'_>,
        request: &PhoneRequest<'_>,
        mac: Mac,
        outcome: Outcome,
    ) {
        let Some(queue) = &self.sightings else {
            return;
        };
        let ua = fetch.user_agent.unwrap_or("");
        queue.record(Sighting {
            mac,
            at: now_millis(),
            source: fetch.source,
            user_agent: truncate(ua, 256).to_owned(),
            model: request.model().map(|m| truncate(m, 64).to_owned()),
            firmware: request.firmware().map(|f| truncate(f, 64).to_owned()),
            file: request.file.label(),
            outcome: outcome.label(),
        });
    }

    /// The registry this provisioner reads.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

fn template_for(request: &PhoneRequest<'_>) -> Template {
    match request.file {
        FileKind::YealinkCommon | FileKind::YealinkBoot => Template::YealinkCommon,
        FileKind::YealinkDevice => Template::YealinkDevice,
        FileKind::SnomModel => Template::SnomModel,
        FileKind::SnomDevice => Template::SnomDevice,
        FileKind::GigasetProfile | FileKind::GigasetIndex => {
            match GigasetFamily::of_model(request.model()) {
                GigasetFamily::Nvm => Template::GigasetNvm,
                GigasetFamily::ProviderFrame => Template::GigasetProviderFrame,
            }
        }
    }
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
        assert_eq!(Outcome::VendorMismatch.status(), 403);
        assert_eq!(truncate("héllo", 2), "h");
    }
}
