//! Criterion benchmarks of a phone's hot path, piece by piece and whole:
//!
//! - `mac_parse`: `Mac::parse` on the notations people and phones write;
//! - `user_agent`: `UserAgent::parse` for each vendor's User-Agent;
//! - `recognise`: path + User-Agent → `PhoneRequest`, for each file of each boot sequence;
//! - `registry_lookup`: `Registry::lookup` in a registry of 1,000 and of 1,000,000 devices
//!   (hits spread over the whole index, and a miss);
//! - `render_cold`: `Renderer::render` of every template with `render::sample()`;
//! - `handle_cached`: `Provisioner::handle` answering from a warm render cache (the whole
//!   synchronous answer: recognise, lookup, cache, metrics, log call), without a log
//!   subscriber and with one formatting every line the way `serve --log-level info` does;
//!   and an enrolled phone's 401 challenge, Digest (MD5, `qop=auth`) and Basic fetches.
//!
//! ```text
//! cargo bench --bench hot_path                                  # everything
//! cargo bench --bench hot_path -- registry_lookup               # one group
//! cargo bench --bench hot_path -- --warm-up-time 1 --measurement-time 2   # quick
//! ```
//!
//! The 1,000,000-device registry is built on first use (a few seconds) and its build time and
//! memory are printed to stderr.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Instant;

use base64::Engine as _;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use zerotouch::domain::credentials::Algorithm;
use zerotouch::domain::{DeviceSettings, Host, Mac, OuiTable, TenantName, TenantSettings, Vendor};
use zerotouch::fixture;
use zerotouch::provisioning::throttle;
use zerotouch::provisioning::{self, render, Fetch, Handled, Provisioner, Renderer};
use zerotouch::registry::Registry;
use zerotouch::store::{DeviceRecord, TenantId, TenantRecord};
use zerotouch::vendors::{self, parse_user_agent, recognise};

const YEALINK_UA: &str = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:17:de:13";
const SNOM_UA: &str =
    "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)";
const GIGASET_UA: &str = "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605";

// The store records are the one place this file names their fields; when the records change,
// only these two functions do.

fn tenant_record(id: TenantId, name: &str, settings: TenantSettings) -> TenantRecord {
    TenantRecord {
        id,
        name: TenantName::parse(name).unwrap_or_else(|e| panic!("tenant name {name}: {e}")),
        partner: None,
        customer: None,
        settings,
    }
}

fn device_record(
    mac: Mac,
    vendor: Vendor,
    tenant: TenantId,
    settings: DeviceSettings,
) -> DeviceRecord {
    DeviceRecord {
        mac,
        vendor,
        tenant,
        claim_secret: None,
        credentials: None,
        enrol_until: None,
        settings,
    }
}

fn mac(s: &str) -> Mac {
    Mac::parse(s).unwrap_or_else(|e| panic!("MAC {s}: {e}"))
}

fn mac_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("mac_parse");
    for (name, input) in [
        ("hex12", "805EC017DE13"),
        ("colons", "80:5e:c0:17:de:13"),
        ("dashes", "80-5E-C0-17-DE-13"),
        ("dotted", "805e.c017.de13"),
        ("halves", "805EC0-17DE13"),
        ("padded", "  80:5E:C0:17:DE:13 "),
        ("invalid", "80:5e:c0:17:de"),
    ] {
        g.bench_with_input(BenchmarkId::from_parameter(name), input, |b, s| {
            b.iter(|| Mac::parse(black_box(s)))
        });
    }
    g.finish();
}

fn user_agent(c: &mut Criterion) {
    let mut g = c.benchmark_group("user_agent");
    for (name, input) in [
        ("yealink", YEALINK_UA),
        ("snom", SNOM_UA),
        ("gigaset", GIGASET_UA),
        ("yealink_vendorless", "W52P 25.30.0.2 00:15:65:44:b3:7c"),
        (
            "snom_without_mac",
            "Mozilla/4.0 (compatible; snomD785-SIP 8.7.3.25 1.1.3-s)",
        ),
        (
            "browser",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
    ] {
        g.bench_with_input(BenchmarkId::from_parameter(name), input, |b, s| {
            b.iter(|| parse_user_agent(black_box(s)))
        });
    }
    g.finish();
}

fn recognition(c: &mut Criterion) {
    let ouis = OuiTable::default();
    let mut g = c.benchmark_group("recognise");
    for (name, path, ua) in [
        ("yealink_mac_boot", "/805ec017de13.boot", Some(YEALINK_UA)),
        ("yealink_boot", "/y000000000000.boot", Some(YEALINK_UA)),
        ("yealink_common", "/y000000000066.cfg", Some(YEALINK_UA)),
        ("yealink_device", "/805ec017de13.cfg", Some(YEALINK_UA)),
        ("yealink_device_no_ua", "/805ec017de13.cfg", None),
        ("snom_model", "/snomD785.htm", Some(SNOM_UA)),
        ("snom_device", "/snomD785-000413922D24.htm", Some(SNOM_UA)),
        ("gigaset_index", "/provisioning.xml", Some(GIGASET_UA)),
        ("gigaset_device", "/7C2F80E0D605.xml", Some(GIGASET_UA)),
        ("unrecognised", "/favicon.ico", None),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| recognise(black_box(path), black_box(ua), &ouis).is_some())
        });
    }
    g.finish();
}

/// A registry of `devices` Yealink devices over 100 tenants, and MACs to probe: spread over
/// the whole index, so a large registry is probed outside the CPU caches as a storm would.
struct Index {
    registry: Registry,
    probes: Vec<Mac>,
}

fn index(devices: usize) -> Index {
    let started = Instant::now();
    let rss_before = rss_mib();
    let registry = Registry::new();
    for t in 0..100 {
        let settings = TenantSettings {
            sip_server: Some(
                Host::parse(&format!("t{t}.cloud.example")).unwrap_or_else(|e| panic!("host: {e}")),
            ),
            ..TenantSettings::default()
        };
        registry.put_tenant(tenant_record(t, &format!("t{t}"), settings));
    }
    let mac_of =
        |i: usize| Mac::from_bytes([0x80, 0x5e, 0xc0, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
    for i in 0..devices {
        registry.put_device(device_record(
            mac_of(i),
            Vendor::Yealink,
            (i % 100) as TenantId,
            DeviceSettings::default(),
        ));
    }
    // A multiplicative stride visits devices in an order unrelated to insertion order.
    let probes = (0..4096usize)
        .map(|k| mac_of(k.wrapping_mul(2_654_435_761) % devices))
        .collect();
    eprintln!(
        "registry of {devices} devices: built in {:.2} s, RSS +{:.0} MiB",
        started.elapsed().as_secs_f64(),
        rss_mib() - rss_before
    );
    Index { registry, probes }
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn registry_lookup(c: &mut Criterion) {
    static SMALL: OnceLock<Index> = OnceLock::new();
    static LARGE: OnceLock<Index> = OnceLock::new();
    let mut g = c.benchmark_group("registry_lookup");
    for (devices, cell) in [(1_000, &SMALL), (1_000_000, &LARGE)] {
        g.bench_function(BenchmarkId::new("hit", devices), |b| {
            let index = cell.get_or_init(|| index(devices));
            let mut k = 0;
            b.iter(|| {
                k = (k + 1) & 4095;
                index.registry.lookup(black_box(index.probes[k])).is_some()
            })
        });
        g.bench_function(BenchmarkId::new("miss", devices), |b| {
            let index = cell.get_or_init(|| index(devices));
            let unknown = mac("80:5e:c0:ff:ff:fe");
            b.iter(|| index.registry.lookup(black_box(unknown)).is_some())
        });
    }
    g.finish();
}

fn render_cold(c: &mut Criterion) {
    let renderer = Renderer::load(None).unwrap_or_else(|e| panic!("templates: {e}"));
    let (tenant, mut settings, device) = render::sample();
    let mut g = c.benchmark_group("render_cold");
    for profile in vendors::ALL {
        for variant in profile.variants() {
            let template = profile
                .template(variant.file, variant.phone)
                .unwrap_or_else(|e| panic!("{}: {e:?}", variant.name));
            settings.transport = variant.transport;
            let settings = settings.clone();
            let input = render::Input {
                phone: render::Phone {
                    mac: mac("80:5E:C0:17:DE:13"),
                    model: variant.phone.model,
                    firmware: variant.phone.firmware,
                },
                tenant: &tenant,
                settings: &settings,
                device: Some(&device),
                provisioning_url: "https://prov.example/",
                credentials: None,
            };
            let vendor = profile.vendor();
            let size = renderer
                .render(vendor, template, &input)
                .unwrap_or_else(|e| panic!("render {template:?}: {e}"))
                .len();
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_function(format!("{vendor}/{}", variant.name), |b| {
                b.iter(|| renderer.render(vendor, template, black_box(&input)).is_ok())
            });
        }
    }
    g.finish();
}

/// The enrolled phone of the shared fixture, for the `handle_cached` digest and basic cases.
const ENROLLED_USER: &str = fixture::ENROLLED_CREDENTIALS.0;
const ENROLLED_PASSWORD: &str = fixture::ENROLLED_CREDENTIALS.1;
const ENROLLED_PATH: &str = fixture::ENROLLED.device_path;
const ENROLLED_UA: &str = fixture::ENROLLED.user_agent;

/// The shared fixture's provisioner (built the way `app.rs` builds one, no sightings queue,
/// no credential sink), with a miss budget no bench run exhausts: the miss cases measure a
/// counted 404, not the 429 every request from a blocked source would get after 100 misses.
fn provisioner() -> Provisioner {
    fixture::provisioner(throttle::Settings {
        budget: u32::MAX,
        ..throttle::Settings::default()
    })
}

fn fetch<'a>(path: &'a str, user_agent: &'a str, authorization: Option<&'a str>) -> Fetch<'a> {
    fixture::fetch(path, Some(user_agent), authorization)
}

fn answer(handled: Handled) -> provisioning::Answer {
    match handled {
        Handled::Done(answer) => answer,
        Handled::Issue(_) => panic!("a bench fetch must not issue credentials"),
    }
}

/// The value of `name=` in a `WWW-Authenticate` challenge.
fn challenge_param<'a>(challenge: &'a str, name: &str) -> &'a str {
    let start = challenge
        .find(&format!("{name}=\""))
        .unwrap_or_else(|| panic!("no {name} in {challenge}"))
        + name.len()
        + 2;
    let rest = &challenge[start..];
    &rest[..rest.find('"').unwrap_or(rest.len())]
}

/// What a phone sends back to an MD5 `qop=auth` challenge, with nonce-count `nc`.
fn digest_authorization(nonce: &str, nc: u32) -> String {
    let md5 = |s: String| Algorithm::Md5.hex(s.as_bytes());
    let ha1 = md5(format!("{ENROLLED_USER}:zerotouch:{ENROLLED_PASSWORD}"));
    let ha2 = md5(format!("GET:{ENROLLED_PATH}"));
    let cnonce = "0a4f113b";
    let response = md5(format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"));
    format!(
        "Digest username=\"{ENROLLED_USER}\", realm=\"zerotouch\", nonce=\"{nonce}\", \
         uri=\"{ENROLLED_PATH}\", algorithm=MD5, qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\", \
         response=\"{response}\""
    )
}

fn handle_cached(c: &mut Criterion) {
    let provisioner = provisioner();
    let cases = [
        ("yealink_device", "/805ec017de13.cfg", YEALINK_UA, 200),
        ("yealink_common", "/y000000000066.cfg", YEALINK_UA, 200),
        ("snom_device", "/snomD785-000413922D24.htm", SNOM_UA, 200),
        ("gigaset_device", "/7C2F80E0D605.xml", GIGASET_UA, 200),
        ("yealink_boot_404", "/y000000000000.boot", YEALINK_UA, 404),
        (
            "unknown_device_404",
            "/805ec0aaaaaa.cfg",
            "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:aa:aa",
            404,
        ),
    ];
    // Warm the render cache, and make sure each case is answered as a phone expects.
    for (name, path, ua, status) in cases {
        let answer = answer(provisioner.handle(&fetch(path, ua, None)));
        assert_eq!(
            answer.outcome.status(),
            status,
            "{name}: {:?}",
            answer.outcome
        );
    }
    let mut g = c.benchmark_group("handle_cached");
    for (name, path, ua, _) in cases {
        let f = fetch(path, ua, None);
        g.bench_function(name, |b| {
            b.iter(|| answer(provisioner.handle(black_box(&f))).body.len())
        });
    }

    // An enrolled phone: the 401 challenge, then Digest (a fresh nonce-count per fetch, built
    // outside the measured part), then Basic over TLS.
    let challenged = answer(provisioner.handle(&fetch(ENROLLED_PATH, ENROLLED_UA, None)));
    assert_eq!(challenged.outcome.status(), 401, "{:?}", challenged.outcome);
    g.bench_function("enrolled_challenge_401", |b| {
        let f = fetch(ENROLLED_PATH, ENROLLED_UA, None);
        b.iter(|| answer(provisioner.handle(black_box(&f))).body.len())
    });
    let challenge = challenged
        .challenge
        .iter()
        .flatten()
        .filter_map(|h| h.to_str().ok())
        .find(|h| h.contains("algorithm=MD5"))
        .unwrap_or_else(|| panic!("no MD5 challenge"))
        .to_owned();
    let nonce = challenge_param(&challenge, "nonce").to_owned();
    let mut nc = 0u32;
    let mut next = || {
        nc += 1;
        digest_authorization(&nonce, nc)
    };
    let first = next();
    let warm = answer(provisioner.handle(&fetch(ENROLLED_PATH, ENROLLED_UA, Some(&first))));
    assert_eq!(warm.outcome.status(), 200, "digest: {:?}", warm.outcome);
    g.bench_function("enrolled_digest_md5", |b| {
        b.iter_batched(
            &mut next,
            |authorization| {
                let f = fetch(ENROLLED_PATH, ENROLLED_UA, Some(&authorization));
                answer(provisioner.handle(black_box(&f))).body.len()
            },
            BatchSize::SmallInput,
        )
    });
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{ENROLLED_USER}:{ENROLLED_PASSWORD}"))
    );
    let f = fetch(ENROLLED_PATH, ENROLLED_UA, Some(&basic));
    let warm = answer(provisioner.handle(&f));
    assert_eq!(warm.outcome.status(), 200, "basic: {:?}", warm.outcome);
    g.bench_function("enrolled_basic", |b| {
        b.iter(|| answer(provisioner.handle(black_box(&f))).body.len())
    });
    // The same with the request log line formatted and queued, as `serve --log-level info`
    // does (text format, non-blocking lossy writer; the writer thread discards the lines).
    let (writer, _guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(64 * 1024)
        .finish(std::io::sink());
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(writer)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        for (name, path, ua, _) in cases.iter().take(1) {
            let f = fetch(path, ua, None);
            g.bench_function(format!("{name}_logged"), |b| {
                b.iter(|| answer(provisioner.handle(black_box(&f))).body.len())
            });
        }
    });
    g.finish();
}

fn main() {
    // What criterion_group!/criterion_main! expand to, written out so the bench crate has no
    // undocumented public function.
    let mut c = Criterion::default().configure_from_args();
    mac_parse(&mut c);
    user_agent(&mut c);
    recognition(&mut c);
    registry_lookup(&mut c);
    render_cold(&mut c);
    handle_cached(&mut c);
    c.final_summary();
}
