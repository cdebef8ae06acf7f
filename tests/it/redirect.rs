//! Claimed phones reach their vendors' redirect services: the outbox delivers registrations
//! and deregistrations to stand-ins of Yealink RPS, Snom SRAPS and Gigaset's redirect server,
//! in order per MAC, through outages, rate limits and a SIGKILL, and shows each device's
//! redirect state to its partner.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use zerotouch::config::Knobs;
use zerotouch::domain::{Mac, Vendor};

use crate::standins::{Fault, StandIn};
use crate::support::*;

const PUBLIC_URL: &str = "https://prov.example.com";

/// Points the server's knobs at `standins`, with retries fast enough for a test.
fn use_standins(k: &mut Knobs, standins: &[&StandIn]) {
    k.public_url = Some(PUBLIC_URL.into());
    k.redirect_retry_first = Some("1s".parse().unwrap());
    k.redirect_retry_max = Some("2s".parse().unwrap());
    k.redirect_request_timeout = Some("2s".parse().unwrap());
    k.redirect_lease = Some("5s".parse().unwrap());
    k.redirect_poll = Some("50ms".parse().unwrap());
    for s in standins {
        s.configure(k);
    }
}

fn mac(s: &str) -> Mac {
    Mac::parse(s).unwrap()
}

/// Polls `check` for up to `limit`.
async fn within<T, F, Fut>(limit: Duration, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn redirect_state(api: &ApiClient, m: &str) -> serde_json::Value {
    let (status, d) = api.get(&format!("/api/v1/devices/{m}")).await;
    assert_eq!(status, 200, "{d}");
    d["redirect"].clone()
}

async fn until_state(api: &ApiClient, m: &str, state: &str, limit: Duration) -> serde_json::Value {
    within(limit, || async {
        let r = redirect_state(api, m).await;
        (r["state"] == state).then_some(r)
    })
    .await
}

const YEALINK: &str = "805ec0aa0001";
const SNOM: &str = "000413aa0001";
const GIGASET: &str = "7c2f80aa0001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_registered_and_releases_deregistered_with_every_vendor() {
    let yealink = StandIn::start(Vendor::Yealink).await;
    let snom = StandIn::start(Vendor::Snom).await;
    let gigaset = StandIn::start(Vendor::Gigaset).await;
    gigaset.seed_label(mac(GIGASET), "AB12");
    let server = TestServer::demo_with(|k| use_standins(k, &[&yealink, &snom, &gigaset])).await;
    let api = server.partner("acme", &["redir"]).await;

    for m in [YEALINK, SNOM] {
        let (status, d) = api.claim(m, "redir").await;
        assert_eq!(status, 201, "{d}");
        assert!(
            ["pending", "registered"].contains(&d["redirect"]["state"].as_str().unwrap()),
            "{d}"
        );
    }
    let (status, d) = api
        .post(
            "/api/v1/devices",
            &json!({"mac": GIGASET, "tenant": "redir", "claim_code": "ab12"}),
        )
        .await;
    assert_eq!(status, 201, "{d}");

    for (standin, m) in [(&yealink, YEALINK), (&snom, SNOM), (&gigaset, GIGASET)] {
        let r = until_state(&api, m, "registered", Duration::from_secs(20)).await;
        assert!(r["reason"].is_null(), "{r}");
        let registered = standin.registered();
        let url = registered
            .get(&mac(m))
            .unwrap_or_else(|| panic!("{m} not at the vendor"));
        assert!(url.starts_with(PUBLIC_URL), "{m}: {url}");
    }

    // Released: deregistered, after the registration.
    for m in [YEALINK, SNOM, GIGASET] {
        let (status, _) = api.delete(&format!("/api/v1/devices/{m}")).await;
        assert_eq!(status, 204);
    }
    for (standin, m) in [(&yealink, YEALINK), (&snom, SNOM), (&gigaset, GIGASET)] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while standin.registered().contains_key(&mac(m)) {
            assert!(
                Instant::now() < deadline,
                "{m} still registered; calls: {:?}",
                standin.calls()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(standin.concurrent_max(), 1, "{m}: one call at a time");
        assert_eq!(standin.refusals(), 0, "{m}: every request verified");
    }

    let actions = server.audit_actions(YEALINK).await;
    let register = actions.iter().position(|a| a == "device.redirect.register");
    let deregister = actions
        .iter()
        .position(|a| a == "device.redirect.deregister");
    assert!(register.is_some() && register < deregister, "{actions:?}");
    let metrics = server.metrics().await;
    assert!(
        metric_value(
            &metrics,
            r#"zerotouch_redirect_deliveries_total{action="register",result="delivered",vendor="gigaset"}"#
        ) >= 1.0,
        "{metrics}"
    );
    for s in [&yealink, &snom, &gigaset] {
        assert!(!metrics.contains(&s.secret), "a secret in the metrics");
    }
    let (_, config) = server.admin().get("/api/v1/devices?limit=10").await;
    for s in [&yealink, &snom, &gigaset] {
        assert!(!config.to_string().contains(&s.secret));
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_held_by_another_provider_is_shown_and_can_be_refused_before_the_claim() {
    let snom = StandIn::start(Vendor::Snom).await;
    snom.seed_elsewhere(mac("000413bb0001"));
    snom.seed_elsewhere(mac("000413bb0002"));
    let server = TestServer::demo_with(|k| use_standins(k, &[&snom])).await;
    let api = server.partner("acme", &["redir"]).await;

    // Without the check: the claim stands, the state says where the phone is.
    let (status, d) = api.claim("000413bb0001", "redir").await;
    assert_eq!(status, 201, "{d}");
    let r = until_state(
        &api,
        "000413bb0001",
        "registered_elsewhere",
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        r["reason"], "the phone is provisioned by another provider",
        "{r}"
    );
    assert!(r["next_try_at"].is_null());
    server.stop().await.unwrap();

    // With the check (Yealink's RPS answers whether another provider holds a MAC): refused,
    // without saying who holds it.
    let yealink = StandIn::start(Vendor::Yealink).await;
    yealink.seed_elsewhere(mac("805ec0bb0002"));
    let checked = TestServer::demo_with(|k| {
        use_standins(k, &[&yealink]);
        k.redirect_check_before_claim = Some(true);
        k.redirect_check_timeout = Some("1s".parse().unwrap());
    })
    .await;
    let api = checked.partner("acme", &["redir"]).await;
    let (status, e) = api.claim("805ec0bb0002", "redir").await;
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["error"]["code"], "registered_elsewhere");
    assert_eq!(
        e["error"]["message"],
        "the MAC address 805ec0bb0002 could not be registered: the phone is provisioned by another provider"
    );
    let (status, _) = api.get("/api/v1/devices/805ec0bb0002").await;
    assert_eq!(status, 404, "nothing claimed");
    assert_eq!(
        checked
            .metric(r#"zerotouch_claim_refusals_total{reason="registered_elsewhere"}"#)
            .await,
        1.0
    );
    let (status, d) = api.claim("805ec0bb0004", "redir").await;
    assert_eq!(status, 201, "a free MAC is claimed: {d}");

    // A vendor that does not answer within the bound never blocks a claim.
    yealink.set_fault(Fault::Hang);
    let started = Instant::now();
    let (status, d) = api.claim("805ec0bb0003", "redir").await;
    assert_eq!(status, 201, "{d}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    yealink.set_fault(Fault::None);
    until_state(&api, "805ec0bb0003", "registered", Duration::from_secs(20)).await;
    checked.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_during_a_vendor_outage_succeed_at_once_and_register_when_it_returns() {
    let yealink = StandIn::start(Vendor::Yealink).await;
    let server = TestServer::demo_with(|k| {
        use_standins(k, &[&yealink]);
        // Hours of back-off: only the probe can bring the rows back in time.
        k.redirect_retry_max = Some("1h".parse().unwrap());
    })
    .await;
    let api = server.partner("acme", &["redir"]).await;
    yealink.set_fault(Fault::Down);
    let macs: Vec<String> = (0..5).map(|i| format!("805ec0cc000{i}")).collect();
    for m in &macs {
        let started = Instant::now();
        let (status, d) = api.claim(m, "redir").await;
        assert_eq!(status, 201, "{d}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let failed = until_state(&api, &macs[0], "failed", Duration::from_secs(20)).await;
    assert!(
        failed["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{failed}"
    );
    assert!(failed["next_try_at"].is_string(), "{failed}");
    // Long enough for the rows to back off well past a minute.
    tokio::time::sleep(Duration::from_secs(8)).await;

    yealink.set_fault(Fault::None);
    let back = Instant::now();
    for m in &macs {
        until_state(&api, m, "registered", Duration::from_secs(60)).await;
    }
    assert!(back.elapsed() < Duration::from_secs(60));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_malformed_answers_are_retried() {
    let snom = StandIn::start(Vendor::Snom).await;
    let server = TestServer::demo_with(|k| {
        use_standins(k, &[&snom]);
        k.redirect_retry_max = Some("30s".parse().unwrap());
    })
    .await;
    let api = server.partner("acme", &["redir"]).await;

    snom.set_fault(Fault::RateLimited);
    api.claim("000413dd0001", "redir").await;
    let r = until_state(&api, "000413dd0001", "failed", Duration::from_secs(20)).await;
    let (status, d) = api.get("/api/v1/devices/000413dd0001").await;
    assert_eq!(status, 200);
    // The vendor's Retry-After (7 s) is honoured over the 1 s back-off.
    let next = time::OffsetDateTime::parse(
        r["next_try_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let updated = time::OffsetDateTime::parse(
        r["updated_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(next - updated >= time::Duration::seconds(6), "{d}");

    snom.set_fault(Fault::Malformed);
    api.claim("000413dd0002", "redir").await;
    until_state(&api, "000413dd0002", "failed", Duration::from_secs(20)).await;
    snom.set_fault(Fault::None);
    for m in ["000413dd0001", "000413dd0002"] {
        until_state(&api, m, "registered", Duration::from_secs(30)).await;
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_sync_prints_and_queues_the_differences() {
    let yealink = StandIn::start(Vendor::Yealink).await;
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(tmp.path(), |k| use_standins(k, &[&yealink])).await;
    let api = server.partner("acme", &["redir"]).await;
    api.claim("805ec0ee0001", "redir").await;
    until_state(&api, "805ec0ee0001", "registered", Duration::from_secs(20)).await;
    server.stop().await.unwrap();
    // Meanwhile someone removed it at the vendor.
    yealink.forget(mac("805ec0ee0001"));

    let run = |apply: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zerotouch"));
        cmd.args(["redirect", "sync", "--vendor", "yealink", "--data-dir"])
            .arg(tmp.path())
            .args(["--public-url", PUBLIC_URL]);
        for (knob, value) in yealink.knobs() {
            if knob == "redirect_yealink_secret" {
                cmd.env("ZEROTOUCH_REDIRECT_YEALINK_SECRET", value);
            } else {
                cmd.arg(format!("--{}", knob.replace('_', "-"))).arg(value);
            }
        }
        if apply {
            cmd.arg("--apply");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let printed = run(false);
    assert!(
        printed.contains(
            "yealink 805ec0ee0001 register: claimed here, not registered with the vendor"
        ),
        "{printed}"
    );
    assert!(printed.contains("1 differences"), "{printed}");
    assert!(yealink.registered().is_empty(), "printing changes nothing");
    let applied = run(true);
    assert!(applied.contains("1 rows queued"), "{applied}");

    let server = TestServer::start_in(tmp.path(), |k| use_standins(k, &[&yealink])).await;
    within(Duration::from_secs(20), || async {
        yealink
            .registered()
            .contains_key(&mac("805ec0ee0001"))
            .then_some(())
    })
    .await;
    server.stop().await.unwrap();
}

/// Registrations the vendor holds, by MAC, once `n` have arrived.
async fn until_registered(standin: &StandIn, n: usize, limit: Duration) -> BTreeMap<Mac, String> {
    within(limit, || async {
        let r = standin.registered();
        (r.len() >= n).then_some(r)
    })
    .await
}

/// Queues `n` Yealink claims (MACs `805ec0100000` + i) for tenant `sales` into the store
/// `config` opens, as a bulk add does.
async fn queue_claims(config: &zerotouch::config::Config, n: usize) -> Vec<Mac> {
    let store = zerotouch::app::open_store(config).await.unwrap();
    let actor = zerotouch::store::Actor::cli();
    let ouis = config.oui_table();
    let tenant = json!({"tenants": [{"name": "sales", "sip_server": "sales.cloud.example", "phone_auth": "mac"}]});
    zerotouch::import::import_json(store.as_ref(), &ouis, tenant.to_string().as_bytes(), &actor)
        .await
        .unwrap();
    let macs: Vec<Mac> = (0..n)
        .map(|i| mac(&format!("805ec0{:06x}", 0x10_0000 + i)))
        .collect();
    let rows = macs
        .iter()
        .map(|m| json!({"mac": m.to_string(), "tenant": "sales"}))
        .collect();
    let report = zerotouch::import::import_devices(
        store.as_ref(),
        &ouis,
        config.redirect.vendors(),
        rows,
        &actor,
    )
    .await
    .unwrap();
    assert_eq!(report.refused, 0, "{:?}", report.devices.first());
    macs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_deliveries_in_flight_loses_none_and_delivers_no_mac_twice_at_once() {
    let yealink = StandIn::start(Vendor::Yealink).await;
    // Slow enough that the kill lands while calls are in flight.
    yealink.set_fault(Fault::Latency(Duration::from_millis(1500)));
    let tmp = tempfile::tempdir().unwrap();
    let mut knobs = test_knobs(tmp.path());
    use_standins(&mut knobs, &[&yealink]);
    let config = zerotouch::config::Config::resolve(knobs).unwrap();
    let macs = queue_claims(&config, 300).await;

    let start = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zerotouch"));
        cmd.args(["serve", "--log-level", "warn", "--data-dir"])
            .arg(tmp.path())
            .args([
                "--api-addr",
                "off",
                "--phones-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "off",
            ])
            .args(["--public-url", PUBLIC_URL])
            .args(["--redirect-request-timeout", "3s", "--redirect-lease", "4s"])
            .args(["--redirect-retry-first", "1s", "--redirect-poll", "50ms"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (knob, value) in yealink.knobs() {
            if knob == "redirect_yealink_secret" {
                cmd.env("ZEROTOUCH_REDIRECT_YEALINK_SECRET", value);
            } else {
                cmd.arg(format!("--{}", knob.replace('_', "-"))).arg(value);
            }
        }
        cmd.spawn().unwrap()
    };
    let mut node = start();
    within(Duration::from_secs(30), || async {
        (!yealink.calls().is_empty()).then_some(())
    })
    .await;
    node.kill().unwrap();
    node.wait().unwrap();
    let delivered_before = yealink.registered().len();
    assert!(
        delivered_before < macs.len(),
        "the kill came too late to test anything"
    );

    let mut node = start();
    let registered = until_registered(&yealink, macs.len(), Duration::from_secs(90)).await;
    node.kill().unwrap();
    node.wait().unwrap();
    for m in &macs {
        assert!(
            registered.get(m).is_some_and(|u| u.starts_with(PUBLIC_URL)),
            "{m} lost"
        );
    }
    assert_eq!(
        yealink.concurrent_max(),
        1,
        "a MAC was delivered twice at once"
    );
    assert_eq!(yealink.refusals(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgresql_share_a_backlog_of_ten_thousand_rows() {
    let server = crate::test_database::required_server(
        "the two-node outbox test needs PostgreSQL",
        ".ci/postgres cargo nextest run --test it -E 'test(/redirect/)'",
    );
    let db = crate::test_database::TestDatabase::create(
        &server,
        crate::test_database::unique_name("zt_redirect"),
    )
    .await
    .unwrap();
    let yealink = StandIn::start(Vendor::Yealink).await;
    yealink.set_fault(Fault::Latency(Duration::from_millis(20)));
    let knobs = |dir: &std::path::Path| {
        let mut k = test_knobs(dir);
        use_standins(&mut k, &[&yealink]);
        k.database_url = Some(db.url.parse().unwrap());
        k.database_pool_size = Some(8);
        k
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = zerotouch::config::Config::resolve(knobs(dir_a.path())).unwrap();
    let macs = queue_claims(&config, 10_000).await;

    let a = TestServer::start_in(dir_a.path(), |k| *k = knobs(dir_a.path())).await;
    let b = TestServer::start_in(dir_b.path(), |k| *k = knobs(dir_b.path())).await;
    let started = Instant::now();
    let registered = until_registered(&yealink, macs.len(), Duration::from_secs(240)).await;
    let took = started.elapsed();
    assert_eq!(registered.len(), macs.len());
    assert_eq!(
        yealink.concurrent_max(),
        1,
        "a row was delivered by both nodes at once"
    );
    let (from_a, from_b) = (
        a.metric(r#"zerotouch_redirect_deliveries_total{action="register",result="delivered",vendor="yealink"}"#).await,
        b.metric(r#"zerotouch_redirect_deliveries_total{action="register",result="delivered",vendor="yealink"}"#).await,
    );
    assert!(
        from_a > 0.0 && from_b > 0.0,
        "both nodes delivered: {from_a} + {from_b}"
    );
    assert!(from_a + from_b >= macs.len() as f64);
    eprintln!("10,000 rows by two nodes in {took:?} ({from_a} + {from_b})");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    db.drop().await.unwrap();
}
