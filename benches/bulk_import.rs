//! Bulk adds through the real HTTPS listener: the partner API's import, and the portal's
//! Bulk add form as a logged-in browser posts it.
//!
//! `cargo bench --bench bulk_import -- [--rows N] [--runs R]` starts the server in-process on
//! 127.0.0.1 with a fresh SQLite store, creates a partner, a customer and a tenant, then posts
//! R imports of N new devices each (JSON, then CSV) and prints rows/s per run and the median.
//! Then a portal user of the partner (made through the administrator's API and its one-time
//! link) logs in and, R times, pastes N new MACs in mixed notations into the Bulk add form:
//! "Check" (every row's verdict, nothing changed), then "Register" (the rows claimed). It prints
//! the seconds of each post at the client (the page of N rows included) and their medians.
//! Every answer is checked: status 200 and every row applied (or, in the portal, every line
//! available, then created).

// A bench harness: a failed set-up step should stop it loudly, which `expect` does.
#![allow(clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use zerotouch::app::{self, Listeners};
use zerotouch::config::{Config, Knobs};

const ADMIN: &str = "bench-admin-token-0123456789";
const PASSWORD: &str = "bench portal password 1";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // Test runners (cargo nextest --all-targets) run bench binaries to list tests: an import
    // benchmark is not a test, so list none and do nothing.
    if std::env::args().any(|a| a == "--list") || std::env::args().len() == 1 {
        return;
    }
    let rows = arg("--rows", 10_000);
    let runs = arg("--runs", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(rows, runs));
}

async fn bench(rows: usize, runs: usize) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = Config::resolve(Knobs {
        data_dir: Some(tmp.path().to_owned()),
        phones_addr: Some("off".parse().expect("listen")),
        api_addr: Some("127.0.0.1:0".parse().expect("listen")),
        metrics_addr: Some("off".parse().expect("listen")),
        admin_token: Some(ADMIN.into()),
        log_level: Some("warn".into()),
        ..Knobs::default()
    })
    .expect("config");
    let listeners = Listeners::bind(&config).await.expect("bind");
    let api = format!("https://{}", listeners.addresses().api.expect("api"));
    let stop = CancellationToken::new();
    let server = tokio::spawn(app::run(config, listeners, stop.clone()));

    let pem = loop {
        if let Ok(p) = std::fs::read(tmp.path().join("tls/cert.pem")) {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("cert"))
        // The portal answers a login with a redirect that sets the session cookie.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(300))
        .build()
        .expect("client");
    let call = |r: reqwest::RequestBuilder| async move {
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().await.expect("json"))
    };
    let partner = loop {
        let r = http
            .post(format!("{api}/api/v1/partners"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "bench"}))
            .send()
            .await;
        if let Ok(r) = r {
            break r.json::<serde_json::Value>().await.expect("partner");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (_, token) = call(
        http.post(format!("{api}/api/v1/partners/{}/tokens", partner["id"]))
            .bearer_auth(ADMIN),
    )
    .await;
    let token = token["token"].as_str().expect("token").to_owned();
    let (_, customer) = call(
        http.post(format!("{api}/api/v1/customers"))
            .bearer_auth(&token)
            .json(&json!({"company": "Bench"})),
    )
    .await;
    let (status, _) = call(http.post(format!("{api}/api/v1/tenants")).bearer_auth(&token)
        .json(&json!({"name": "bench", "customer": customer["id"], "sip_server": "bench.cloud.example"}))).await;
    assert_eq!(status, 201);

    let mut next = 0u32;
    let mut fresh = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                next += 1;
                format!(
                    "80:5e:c0:{:02x}:{:02x}:{:02x}",
                    next >> 16 & 0xff,
                    next >> 8 & 0xff,
                    next & 0xff
                )
            })
            .collect()
    };
    for format in ["json", "csv"] {
        let mut rates = Vec::new();
        for run in 0..runs {
            let macs = fresh(rows);
            let request = if format == "json" {
                let devices: Vec<_> = macs
                    .iter()
                    .map(|m| json!({"mac": m, "tenant": "bench", "lines": [{"user": "100", "password": "pw"}]}))
                    .collect();
                http.post(format!("{api}/api/v1/devices/import"))
                    .bearer_auth(&token)
                    .json(&json!({"devices": devices}))
            } else {
                let mut body = String::from("mac,tenant,line_user,line_password\n");
                for m in &macs {
                    body.push_str(&format!("{m},bench,100,pw\n"));
                }
                http.post(format!("{api}/api/v1/devices/import"))
                    .bearer_auth(&token)
                    .header("content-type", "text/csv")
                    .body(body)
            };
            let started = Instant::now();
            let (status, report) = call(request).await;
            let elapsed = started.elapsed();
            assert_eq!(status, 200, "{report}");
            assert_eq!(
                report["applied"].as_u64(),
                Some(rows as u64),
                "every row applied"
            );
            let rate = rows as f64 / elapsed.as_secs_f64();
            println!("bulk_import format={format} run={run} rows={rows} seconds={:.3} rows_per_s={rate:.0}", elapsed.as_secs_f64());
            rates.push(rate);
        }
        println!(
            "bulk_import format={format} rows={rows} runs={runs} median_rows_per_s={:.0}",
            median(rates)
        );
    }

    let mut browser = logged_in(&http, &api, &partner).await;
    let (mut checks, mut registers) = (Vec::new(), Vec::new());
    for run in 0..runs {
        // A third each in the colon, dash and bare notations a person pastes.
        let mut text = String::with_capacity(rows * 18);
        for (i, mac) in fresh(rows).into_iter().enumerate() {
            let line = match i % 3 {
                0 => mac,
                1 => mac.replace(':', "-").to_uppercase(),
                _ => mac.replace(':', ""),
            };
            text.push_str(&line);
            text.push('\n');
        }
        let mut seconds = [0.0; 2];
        for (i, (action, expected)) in [("preview", "state-available"), ("commit", "state-created")]
            .into_iter()
            .enumerate()
        {
            let csrf = csrf(&browser.send(http.get(format!("{api}/bulk"))).await.1);
            let form = [
                ("csrf", csrf.as_str()),
                ("lines", text.as_str()),
                ("tenant", "bench"),
                ("action", action),
            ];
            let started = Instant::now();
            let (status, body) = browser
                .send(http.post(format!("{api}/bulk")).form(&form))
                .await;
            seconds[i] = started.elapsed().as_secs_f64();
            assert_eq!(status, 200, "{action}: {}", &body[..body.len().min(2000)]);
            assert_eq!(
                body.matches(expected).count(),
                rows,
                "{action}: every line {expected}"
            );
        }
        println!(
            "bulk_import format=portal run={run} lines={rows} check_seconds={:.3} register_seconds={:.3}",
            seconds[0], seconds[1]
        );
        checks.push(seconds[0]);
        registers.push(seconds[1]);
    }
    println!(
        "bulk_import format=portal lines={rows} runs={runs} median_check_seconds={:.3} median_register_seconds={:.3}",
        median(checks),
        median(registers)
    );
    stop.cancel();
    let _ = server.await;
}

/// A browser's session: the portal's cookie, kept by hand as the portal sets it.
struct Browser {
    cookie: Option<String>,
}

impl Browser {
    /// Sends with the session cookie; the status and the body.
    async fn send(&mut self, r: reqwest::RequestBuilder) -> (u16, String) {
        let r = match &self.cookie {
            Some(c) => r.header(COOKIE, format!("zt_session={c}")),
            None => r,
        };
        let response = r.send().await.expect("request");
        for set in response.headers().get_all(SET_COOKIE) {
            let set = set.to_str().expect("cookie");
            if let Some(rest) = set.strip_prefix("zt_session=") {
                let value = rest.split(';').next().unwrap_or("");
                self.cookie = (!value.is_empty()).then(|| value.to_owned());
            }
        }
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }
}

/// A portal user of `partner`, made through the administrator's API, its password set
/// through the one-time link's form, logged in.
async fn logged_in(http: &reqwest::Client, api: &str, partner: &serde_json::Value) -> Browser {
    let user = http
        .post(format!("{api}/api/v1/users"))
        .bearer_auth(ADMIN)
        .json(&json!({"partner_id": partner["id"], "email": "bench@bench.test"}))
        .send()
        .await
        .expect("user")
        .json::<serde_json::Value>()
        .await
        .expect("user");
    let link = user["link"].as_str().expect("link");
    let token = link.split("token=").nth(1).expect("link's token");
    let mut browser = Browser { cookie: None };
    let set = [
        ("token", token),
        ("password", PASSWORD),
        ("password_again", PASSWORD),
    ];
    let (status, body) = browser
        .send(http.post(format!("{api}/set-password")).form(&set))
        .await;
    assert_eq!(status, 303, "password set: {body}");
    let login = [("email", "bench@bench.test"), ("password", PASSWORD)];
    let (status, body) = browser
        .send(http.post(format!("{api}/login")).form(&login))
        .await;
    assert_eq!(status, 303, "logged in: {body}");
    browser
}

/// The CSRF token of a page's forms.
fn csrf(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a CSRF field") + marker.len();
    let end = page[start..].find('"').expect("end of the CSRF field") + start;
    page[start..end].to_owned()
}
