//! The dashboard and the alerts of `deploy/`: the rules pass `promtool check rules` and their
//! unit tests, every alert has a test, every metric they name is one zerotouch exports, and a
//! real Prometheus (Debian's package) scrapes a test server and answers for it through its API.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::TestServer;

const RULES: &str = include_str!("../../deploy/prometheus/zerotouch.rules.yml");
const RULE_TESTS: &str = include_str!("../../deploy/prometheus/zerotouch.rules.test.yml");
const DASHBOARD: &str = include_str!("../../deploy/grafana/zerotouch.json");
const METRICS_RS: &str = include_str!("../../src/metrics.rs");

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

/// Runs a tool that `.ci/test` installs; its absence fails the test.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} (Debian package prometheus) must be installed, as .ci/test does: {e}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?}:\n{text}");
    text
}

/// The names after `- alert:` in the rules file.
fn alerts() -> Vec<&'static str> {
    RULES
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(str::trim)
        .collect()
}

/// Every `zerotouch_…` name in `text`, with a histogram's `_bucket`/`_sum`/`_count` taken off.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("zerotouch_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|base| METRICS_RS.contains(&format!("\"{base}\"")))
            .unwrap_or(name);
        names.insert(base.to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let rules = deploy("prometheus/zerotouch.rules.yml");
    let out = run("promtool", &["check", "rules", rules.to_str().unwrap()]);
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", alerts().len())),
        "{out}"
    );
    let tests = deploy("prometheus/zerotouch.rules.test.yml");
    let out = run("promtool", &["test", "rules", tests.to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_alert_has_a_unit_test_that_fires_it() {
    let names = alerts();
    for required in [
        "ZerotouchPhonesFailing",
        "ZerotouchThrottleSurge",
        "ZerotouchDatabaseDown",
        "ZerotouchCatchUpStuck",
        "ZerotouchCertificateExpiring",
        "ZerotouchStatusWritesDropped",
    ] {
        assert!(names.contains(&required), "no alert {required}");
    }
    for name in names {
        // A test case that expects the alert names it under exp_alerts after its alertname.
        let fires = RULE_TESTS.split("- eval_time:").any(|case| {
            case.contains(&format!("alertname: {name}\n")) && case.contains("exp_labels:")
        });
        assert!(
            fires,
            "no test in zerotouch.rules.test.yml expects {name} to fire"
        );
    }
}

#[test]
fn the_dashboard_and_the_alerts_name_only_metrics_zerotouch_exports() {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let mut exprs = String::new();
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "panel ids repeat"
        );
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} has no query", panel["title"]);
        for t in targets {
            exprs += t["expr"].as_str().unwrap();
            exprs += "\n";
        }
    }
    let used = metric_names(&exprs);
    let unknown: Vec<_> = metric_names(&(exprs.clone() + RULES))
        .into_iter()
        .filter(|name| !METRICS_RS.contains(&format!("\"{name}\"")))
        .collect();
    assert!(unknown.is_empty(), "not in src/metrics.rs: {unknown:?}");
    // What an operator looks for first, each on the dashboard.
    for name in [
        "zerotouch_phone_requests_total",
        "zerotouch_phone_request_duration_seconds",
        "zerotouch_tls_handshake_failures_total",
        "zerotouch_connections_open",
        "zerotouch_throttle_blocks_total",
        "zerotouch_phone_credentials_issued_total",
        "zerotouch_claims_total",
        "zerotouch_database_up",
        "zerotouch_tls_certificate_expiry_timestamp_seconds",
        "zerotouch_status_updates_dropped_total",
        "zerotouch_log_lines_dropped_total",
    ] {
        assert!(used.contains(name), "the dashboard shows no {name}");
    }
}

/// A port nobody listens on now (Prometheus takes an address, not a listener).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Asks Prometheus's HTTP API until `check` accepts the answer's `data`, for at most 60 s.
async fn until_answered(
    url: &str,
    check: impl Fn(&serde_json::Value) -> bool,
    prometheus: &mut tokio::process::Child,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = prometheus.try_wait() {
            panic!("prometheus exited: {status}");
        }
        let last = match reqwest::get(url).await {
            Ok(r) => {
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                if body["status"] == "success" && check(&body["data"]) {
                    return body["data"].clone();
                }
                body.to_string()
            }
            Err(e) => e.to_string(),
        };
        assert!(Instant::now() < deadline, "{url}: {last}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_real_prometheus_scrapes_zerotouch_and_loads_the_alerts() {
    let server = TestServer::demo().await;
    let metrics = server.addrs.metrics.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: zerotouch\n    static_configs:\n      - targets: ['{metrics}']\n",
            rules = deploy("prometheus/zerotouch.rules.yml").display()
        ),
    )
    .unwrap();
    let web = format!("127.0.0.1:{}", free_port());
    let mut prometheus = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus (Debian package prometheus) must be installed, as .ci/test does");

    let data = until_answered(
        &format!("http://{web}/api/v1/query?query=zerotouch_ready"),
        |data| data["result"].as_array().is_some_and(|r| !r.is_empty()),
        &mut prometheus,
    )
    .await;
    let sample = &data["result"][0];
    assert_eq!(sample["metric"]["job"], "zerotouch");
    assert_eq!(sample["metric"]["instance"], metrics.to_string());
    assert_eq!(sample["value"][1], "1", "{sample}");

    // The log writer's drops are exported from the start, at 0 in a quiet test.
    let data = until_answered(
        &format!("http://{web}/api/v1/query?query=zerotouch_log_lines_dropped_total"),
        |data| data["result"].as_array().is_some_and(|r| !r.is_empty()),
        &mut prometheus,
    )
    .await;
    assert_eq!(data["result"][0]["value"][1], "0");

    // The demo fleet's devices, as a gauge the dashboard shows.
    let data = until_answered(
        &format!("http://{web}/api/v1/query?query=zerotouch_devices"),
        |data| {
            data["result"][0]["value"][1]
                .as_str()
                .is_some_and(|v| v != "0")
        },
        &mut prometheus,
    )
    .await;
    assert!(
        data["result"][0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 3
    );

    // The alert rules load into a real Prometheus and evaluate without error.
    let data = until_answered(
        &format!("http://{web}/api/v1/rules"),
        |data| {
            data["groups"][0]["rules"]
                .as_array()
                .is_some_and(|r| r.iter().all(|rule| rule["health"] == "ok"))
        },
        &mut prometheus,
    )
    .await;
    let loaded = data["groups"][0]["rules"].as_array().unwrap().len();
    assert_eq!(loaded, alerts().len());

    prometheus.kill().await.unwrap();
    server.stop().await.unwrap();
}
