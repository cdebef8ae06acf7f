//! What an operator relies on: metrics, health, restarts, live changes, limits, shutdown, CLI.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

#[tokio::test]
async fn metrics_pass_promtool_and_count_what_happened() {
    let server = TestServer::demo().await;
    let phone = server.phone(Some(YEALINK_UA));
    phone.get(&format!("/{YEALINK_MAC}.cfg")).await;
    phone.get("/nothing-here").await;
    let page = server.metrics().await;
    assert_eq!(metric_value(&page, "zerotouch_devices"), 4.0);
    assert_eq!(metric_value(&page, "zerotouch_tenants"), 2.0);
    assert_eq!(
        metric_value(
            &page,
            r#"zerotouch_phone_requests_total{file="device",outcome="served",vendor="yealink"}"#
        ),
        1.0
    );
    assert!(page.contains("zerotouch_phone_request_duration_seconds_bucket"));
    assert!(page.contains("zerotouch_render_errors_total") || !page.contains("render_failed"));
    assert!(page.contains("# TYPE zerotouch_tls_handshake_failures_total counter"));

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed: .ci/run installs it");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn tls_handshake_failures_are_counted() {
    let server = TestServer::demo().await;
    let phones = server.addrs.phones.unwrap();
    // Plain HTTP to the TLS port: not a ClientHello.
    tokio::task::spawn_blocking(move || raw_request(phones, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        .await
        .unwrap();
    let series = r#"zerotouch_tls_handshake_failures_total{listener="phones",reason="other"}"#;
    for _ in 0..200 {
        if server.metric(series).await >= 1.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("handshake failure not counted");
}

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::demo().await;
    let base = format!("http://{}", server.addrs.metrics.unwrap());
    assert_eq!(
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{base}/readyz"))
            .await
            .unwrap()
            .status(),
        200
    );
    // The partner API and metrics are not on the phones' port.
    let phone = server.phone(None);
    assert_eq!(phone.get("/metrics").await.status, 404);
    assert_eq!(phone.get("/readyz").await.status, 404);
}

#[tokio::test]
async fn a_restart_keeps_imported_data() {
    let tmp = tempfile::tempdir().unwrap();
    import(tmp.path(), DEMO).await;
    let first = TestServer::start_in(tmp.path(), |_| {}).await;
    let phone = first.phone(Some(YEALINK_UA));
    let before = phone.get(&format!("/{YEALINK_MAC}.cfg")).await;
    assert_eq!(before.status, 200);
    let (user, password) = phone
        .credentials()
        .expect("the first fetch enrolled the phone");
    first.stop().await.unwrap();

    // The data and the phone's enrolment survive: it authenticates with what it was given.
    let second = TestServer::start_in(tmp.path(), |_| {}).await;
    let after = second
        .phone(Some(YEALINK_UA))
        .with_credentials(&user, &password)
        .get(&format!("/{YEALINK_MAC}.cfg"))
        .await;
    assert_eq!(after.status, 200);
    assert!(
        !after
            .text()
            .contains("static.auto_provision.server.password"),
        "credentials are handed out once"
    );
    let strip_url = |t: String| {
        t.lines()
            .filter(|l| !l.contains("server.") && !l.contains("provisioning credentials"))
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_owned()
    };
    assert_eq!(strip_url(before.text()), strip_url(after.text()));
    second.stop().await.unwrap();
}

#[tokio::test]
async fn an_import_while_running_reaches_phones_without_a_restart() {
    let server = TestServer::start().await;
    let phone = server.phone(Some(YEALINK_UA));
    assert_eq!(phone.get(&format!("/{YEALINK_MAC}.cfg")).await.status, 404);
    import(&server.data_dir, DEMO).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let f = phone.get(&format!("/{YEALINK_MAC}.cfg")).await;
        if f.status == 200 {
            assert!(f.text().contains("sales.cloud.example"));
            break;
        }
        assert!(Instant::now() < deadline, "change never reached the phones");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A changed tenant is rendered anew (the cached config is for the old generation).
    import(
        &server.data_dir,
        r#"{"tenants":[{"name":"sales","sip_server":"new-sales.cloud.example"}]}"#,
    )
    .await;
    loop {
        let text = phone.get(&format!("/{YEALINK_MAC}.cfg")).await.text();
        if text.contains("new-sales.cloud.example") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tenant change never reached the phones"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn last_seen_status_is_recorded_off_the_hot_path() {
    let server = TestServer::demo().await;
    server
        .phone(Some(YEALINK_UA))
        .get(&format!("/{YEALINK_MAC}.cfg"))
        .await;
    let db = server.data_dir.join("zerotouch.db");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let row: Option<(String, String, String)> = conn
            .query_row(
                "SELECT user_agent, model, last_outcome FROM device_status WHERE mac = ?1",
                [YEALINK_MAC],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ok();
        if let Some((ua, model, outcome)) = row {
            assert_eq!(
                (ua.as_str(), model.as_str(), outcome.as_str()),
                (YEALINK_UA, "T46S", "served")
            );
            break;
        }
        assert!(Instant::now() < deadline, "status never written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn raw_request(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn oversized_headers_are_refused_and_the_server_keeps_serving() {
    let server = TestServer::demo().await;
    let http = server.addrs.http.unwrap();
    let big = format!(
        "GET /{YEALINK_MAC}.cfg HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let answer = tokio::task::spawn_blocking(move || raw_request(http, big.as_bytes()))
        .await
        .unwrap();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer:.200}"
    );
    let garbage =
        tokio::task::spawn_blocking(move || raw_request(http, b"\x00\x01\x02 nonsense\r\n\r\n"))
            .await
            .unwrap();
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"),
        "{garbage:.200}"
    );
    assert_eq!(
        server
            .phone_http(Some(YEALINK_UA))
            .get(&format!("/{YEALINK_MAC}.cfg"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_silent_client_is_disconnected_after_the_header_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(tmp.path(), |k| {
        k.header_read_timeout = Some("300ms".parse().unwrap());
        k.handshake_timeout = Some("300ms".parse().unwrap());
    })
    .await;
    for addr in [server.addrs.http.unwrap(), server.addrs.phones.unwrap()] {
        let closed_after = tokio::task::spawn_blocking(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            // Half a request line, then silence.
            let _ = s.write_all(b"GET /805ec017");
            let started = Instant::now();
            let mut buf = [0u8; 1024];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return started.elapsed(),
                    Ok(_) => {}
                }
            }
        })
        .await
        .unwrap();
        assert!(
            closed_after < Duration::from_secs(5),
            "{addr}: held for {closed_after:?}"
        );
    }
}

#[tokio::test]
async fn shutdown_lets_open_connections_finish_and_stops_accepting() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::demo().await;
    let http = server.addrs.http.unwrap();
    // A request in flight when the shutdown begins: its head is sent but for the last line.
    let mut open = tokio::net::TcpStream::connect(http).await.unwrap();
    open.write_all(
        format!(
            "GET /{YEALINK_MAC}.cfg HTTP/1.1\r\nHost: prov.example\r\nUser-Agent: {YEALINK_UA}\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // The server must hold the connection before the shutdown: one still in the listen queue
    // is refused with the listener, as on any server.
    eventually(|| async {
        let open = server
            .metric(r#"zerotouch_connections_open{listener="phones_http"}"#)
            .await;
        (open >= 1.0).then_some(())
    })
    .await;
    let started = Instant::now();
    server.begin_shutdown();
    let ready = format!("http://{}/readyz", server.addrs.metrics.unwrap());
    eventually(|| async {
        let status = reqwest::get(&ready).await.ok()?.status();
        (status == 503).then_some(())
    })
    .await;
    // Draining: no new connection is taken, the open request is answered in full.
    let addr = server.addrs.phones.unwrap();
    eventually(|| async { TcpStream::connect(addr).is_err().then_some(()) }).await;
    open.write_all(b"Connection: close\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    open.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("account.1.user_name = 1001"),
        "{response}"
    );
    server.join().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drained within the grace period"
    );
}

fn zerotouch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zerotouch"))
}

#[test]
fn cli_import_render_and_check_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo.json");
    let out = zerotouch()
        .args(["import", fixture, "--output", "json", "--data-dir", dir])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["refused"], 0);

    let out = zerotouch()
        .args([
            "render",
            "--mac",
            "80:5E:C0:17:DE:13",
            "--user-agent",
            YEALINK_UA,
            "--data-dir",
            dir,
            "--public-url",
            "https://prov.example",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("account.1.sip_server.1.address = sales.cloud.example"),
        "{text}"
    );
    assert!(
        text.contains("static.auto_provision.server.url = https://prov.example/"),
        "{text}"
    );

    let out = zerotouch()
        .args(["render", "--mac", "805ec0999999", "--data-dir", dir])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "unknown MAC");

    let bad = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(bad.path().join("yealink")).unwrap();
    std::fs::write(
        bad.path().join("yealink/device.cfg.tera"),
        "#!version:1.0.0.1\n\n{% for x in %}\n",
    )
    .unwrap();
    let out = zerotouch()
        .args([
            "check-config",
            "--data-dir",
            dir,
            "--templates",
            bad.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("yealink/device.cfg.tera") && err.contains("3:"),
        "{err}"
    );

    let out = zerotouch()
        .args(["check-config", "--data-dir", dir])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("phones_addr"));

    let out = zerotouch()
        .args(["check-config", "--phones-addr", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_broken_template_stops_serve_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let templates = tmp.path().join("templates");
    std::fs::create_dir_all(templates.join("snom")).unwrap();
    std::fs::write(
        templates.join("snom/device.xml.tera"),
        "<settings>{{ tenant.nope }}</settings>",
    )
    .unwrap();
    let out = zerotouch()
        .args([
            "serve",
            "--phones-addr",
            "127.0.0.1:0",
            "--api-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "off",
            "--data-dir",
        ])
        .arg(tmp.path().join("data"))
        .arg("--templates")
        .arg(&templates)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("snom/device.xml.tera"), "{err}");
}

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = zerotouch()
        .args([
            "serve",
            "--phones-addr",
            "127.0.0.1:0",
            "--api-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(tmp.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 4096];
    while !seen.contains("\"ready\"") {
        assert!(Instant::now() < deadline, "never ready: {seen}");
        let n = stderr.read(&mut buf).unwrap();
        assert!(n > 0, "exited early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit {exit:?}: {rest}");
    assert!(rest.contains("\"stopped\""), "{rest}");
    for line in seen.lines().chain(rest.lines()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}

#[tokio::test]
async fn a_reload_puts_new_throttle_settings_and_log_level_in_use_and_keeps_them_when_the_file_is_broken(
) {
    use zerotouch::reload::{Change, Error};
    let tmp = tempfile::tempdir().unwrap();
    import(tmp.path(), &demo_with_phone_auth("mac")).await;
    let file = tmp.path().join("zerotouch.toml");
    std::fs::write(&file, "throttle_budget = 100\nlog_level = \"info\"\n").unwrap();
    let server = TestServer::start_in(tmp.path(), |k| {
        k.config = Some(file.clone());
        k.throttle_budget = None;
    })
    .await;
    let phone = server.phone(Some("Yealink SIP-T46S 66.86.0.15"));
    for i in 0..3 {
        let miss = phone.get(&format!("/805ec00000{i:02}.cfg")).await;
        assert_eq!(miss.status, 404);
    }

    std::fs::write(
        &file,
        "throttle_budget = 4\nlog_level = \"debug\"\nmax_connections = 500\n",
    )
    .unwrap();
    let report = server.reload.run().await.expect("running");
    let Some(Ok(Change::Changed(what))) = report.of("settings") else {
        panic!("{report:?}")
    };
    assert!(what.contains("throttle budget 4"), "{what}");
    assert!(what.contains("log level"), "{what}");
    assert!(what.contains("after a restart: max_connections"), "{what}");
    // Three misses were spent against the old budget: the next ones run out the new one.
    let mut statuses = Vec::new();
    for i in 3..6 {
        statuses.push(phone.get(&format!("/805ec00000{i:02}.cfg")).await.status);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    // A broken file keeps everything that runs.
    std::fs::write(&file, "throttle_budget = \"many\"\n").unwrap();
    let report = server.reload.run().await.expect("running");
    assert!(
        matches!(report.of("settings"), Some(Err(Error::Kept(_)))),
        "{report:?}"
    );
    let reloads = r#"zerotouch_reloads_total{hook="settings",result="failed"}"#;
    assert_eq!(server.metric(reloads).await, 1.0);
}
