//! The portal's bulk add through the real HTTPS listener, as a partner's browser posts it.
//!
//! `cargo bench --bench portal_bulk -- [--lines N] [--runs R]` starts the server in-process on
//! 127.0.0.1 with a fresh SQLite store, creates a partner, a tenant and a portal user (through
//! the administrator's API and the one-time link's form), logs in, and R times pastes N new
//! MACs in mixed notations into the Bulk add form: first "Check" (every row's verdict, nothing
//! changed), then "Register" (the rows claimed, every row's result). It prints the seconds of
//! each post, as the client sees them (so an upper bound of the server's time, page rendering
//! included), and their medians. Every answer is checked: status 200, one result row per line,
//! and after "Register" every line registered.

// A bench harness: a failed set-up step should stop it loudly, which `expect` does.
#![allow(clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
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
    // Test runners (cargo nextest --all-targets) run bench binaries to list tests: a benchmark
    // is not a test, so list none and do nothing.
    if std::env::args().any(|a| a == "--list") || std::env::args().len() == 1 {
        return;
    }
    let lines = arg("--lines", 10_000);
    let runs = arg("--runs", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(lines, runs));
}

/// A browser of one user: its session cookie, kept by hand as the portal sets it.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    async fn send(&mut self, r: reqwest::RequestBuilder) -> (u16, String, String) {
        let r = match &self.cookie {
            Some(c) => r.header(COOKIE, format!("zt_session={c}")),
            None => r,
        };
        let response = r.send().await.expect("request");
        let status = response.status().as_u16();
        for set in response.headers().get_all(SET_COOKIE) {
            let set = set.to_str().expect("cookie");
            if let Some(rest) = set.strip_prefix("zt_session=") {
                let value = rest.split(';').next().unwrap_or("");
                self.cookie = (!value.is_empty()).then(|| value.to_owned());
            }
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, location, response.text().await.expect("body"))
    }

    async fn get(&mut self, path: &str) -> String {
        let r = self.http.get(format!("{}{path}", self.base));
        let (status, _, body) = self.send(r).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
        let r = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(r).await
    }
}

/// The CSRF token of a page's forms.
fn csrf(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a CSRF field") + marker.len();
    let end = page[start..].find('"').expect("end of the CSRF field") + start;
    page[start..end].to_owned()
}

async fn bench(lines: usize, runs: usize) {
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
    let base = format!("https://{}", listeners.addresses().api.expect("api"));
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
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(300))
        .build()
        .expect("client");
    let partner = loop {
        let r = http
            .post(format!("{base}/api/v1/partners"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "bench"}))
            .send()
            .await;
        if let Ok(r) = r {
            break r.json::<serde_json::Value>().await.expect("partner");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let token = http
        .post(format!("{base}/api/v1/partners/{}/tokens", partner["id"]))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("token")
        .json::<serde_json::Value>()
        .await
        .expect("token");
    let token = token["token"].as_str().expect("token").to_owned();
    let customer = http
        .post(format!("{base}/api/v1/customers"))
        .bearer_auth(&token)
        .json(&json!({"company": "Bench"}))
        .send()
        .await
        .expect("customer")
        .json::<serde_json::Value>()
        .await
        .expect("customer");
    let tenant = http
        .post(format!("{base}/api/v1/tenants"))
        .bearer_auth(&token)
        .json(&json!({"name": "bench", "customer": customer["id"], "sip_server": "bench.cloud.example"}))
        .send()
        .await
        .expect("tenant");
    assert_eq!(tenant.status().as_u16(), 201, "tenant created");
    let user = http
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(ADMIN)
        .json(&json!({"partner_id": partner["id"], "email": "bench@bench.test"}))
        .send()
        .await
        .expect("user")
        .json::<serde_json::Value>()
        .await
        .expect("user");
    let link = user["link"].as_str().expect("link");
    let token_param = link.split("token=").nth(1).expect("link's token");

    let mut browser = Browser {
        http,
        base,
        cookie: None,
    };
    let (status, _, body) = browser
        .post(
            "/set-password",
            &[
                ("token", token_param),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 303, "password set: {body}");
    let (status, _, body) = browser
        .post(
            "/login",
            &[("email", "bench@bench.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(status, 303, "logged in: {body}");

    // New MACs, a third each in the colon, dash and bare notations a person pastes.
    let mut next = 0u32;
    let mut paste = |n: usize| -> String {
        let mut text = String::with_capacity(n * 18);
        for _ in 0..n {
            next += 1;
            let (a, b, c) = (next >> 16 & 0xff, next >> 8 & 0xff, next & 0xff);
            let line = match next % 3 {
                0 => format!("80:5e:c0:{a:02x}:{b:02x}:{c:02x}\n"),
                1 => format!("80-5E-C0-{a:02X}-{b:02X}-{c:02X}\n"),
                _ => format!("805ec0{a:02x}{b:02x}{c:02x}\n"),
            };
            text.push_str(&line);
        }
        text
    };
    let (mut checks, mut registers) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let text = paste(lines);
        let mut seconds = [0.0; 2];
        for (i, action) in ["preview", "commit"].into_iter().enumerate() {
            let form_page = browser.get("/bulk").await;
            let csrf = csrf(&form_page);
            let form = [
                ("csrf", csrf.as_str()),
                ("lines", text.as_str()),
                ("tenant", "bench"),
                ("action", action),
            ];
            let started = Instant::now();
            let (status, _, body) = browser.post("/bulk", &form).await;
            seconds[i] = started.elapsed().as_secs_f64();
            assert_eq!(status, 200, "{action}: {}", &body[..body.len().min(2000)]);
            let expected = if action == "preview" {
                "state-available"
            } else {
                "state-created"
            };
            assert_eq!(
                body.matches(expected).count(),
                lines,
                "{action}: every line {expected}"
            );
        }
        println!(
            "portal_bulk run={run} lines={lines} check_seconds={:.3} register_seconds={:.3}",
            seconds[0], seconds[1]
        );
        checks.push(seconds[0]);
        registers.push(seconds[1]);
    }
    println!(
        "portal_bulk lines={lines} runs={runs} median_check_seconds={:.3} median_register_seconds={:.3}",
        median(checks),
        median(registers)
    );
    stop.cancel();
    let _ = server.await;
}
