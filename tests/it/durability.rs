//! Nothing acknowledged is lost: SIGKILL in the middle of bulk imports, restart, check.

use std::collections::HashSet;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Node {
    child: Child,
    api: String,
    phones: String,
}

fn start_node(data: &std::path::Path) -> Node {
    let (api, phones, metrics) = (free_port(), free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_zerotouch"))
        .args(["serve", "--log-level", "warn", "--data-dir"])
        .arg(data)
        .args(["--api-addr", &format!("127.0.0.1:{api}")])
        .args(["--phones-addr", &format!("127.0.0.1:{phones}")])
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics}")])
        .env("ZEROTOUCH_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = format!("http://127.0.0.1:{metrics}/readyz");
    for _ in 0..1000 {
        if probe::get_status(&ready) == Ok(200) {
            return Node {
                child,
                api: format!("127.0.0.1:{api}"),
                phones: format!("127.0.0.1:{phones}"),
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("node never ready");
}

mod probe {
    /// A tiny blocking GET for readiness polling outside the async runtime.
    pub fn get_status(url: &str) -> Result<u16, ()> {
        let rest = url.strip_prefix("http://").ok_or(())?;
        let (host, path) = rest.split_once('/').ok_or(())?;
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(host).map_err(|_| ())?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .map_err(|_| ())?;
        write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .map_err(|_| ())?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|_| ())?;
        out.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or(())
    }
}

fn client(data: &std::path::Path) -> reqwest::Client {
    let pem = std::fs::read(data.join("tls/cert.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn mac(batch: usize, row: usize) -> String {
    let n = batch * 1000 + row;
    format!("805ec0{:06x}", n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_bulk_imports_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().to_owned();
    let mut node = start_node(&data);
    let http = client(&data);
    let api = format!("https://{}", node.api);

    let admin = |r: reqwest::RequestBuilder| r.bearer_auth(ADMIN_TOKEN);
    let p: serde_json::Value = admin(
        http.post(format!("{api}/api/v1/partners"))
            .json(&json!({"name": "acme"})),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let t: serde_json::Value =
        admin(http.post(format!("{api}/api/v1/partners/{}/tokens", p["id"])))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let token = t["token"].as_str().unwrap().to_owned();
    let c: serde_json::Value = http
        .post(format!("{api}/api/v1/customers"))
        .bearer_auth(&token)
        .json(&json!({"company": "Acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status = http
        .post(format!("{api}/api/v1/tenants"))
        .bearer_auth(&token)
        .json(&json!({"name": "sales", "customer": c["id"], "sip_server": "sales.cloud.example"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 201);

    // Import 500-row batches one after another; record which were acknowledged.
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let importer = {
        let (http, api, token) = (http.clone(), api.clone(), token.clone());
        tokio::spawn(async move {
            for batch in 0.. {
                let rows: Vec<_> = (0..500)
                    .map(|row| json!({"mac": mac(batch, row), "tenant": "sales"}))
                    .collect();
                let r = http
                    .post(format!("{api}/api/v1/devices/import"))
                    .bearer_auth(&token)
                    .json(&json!({"devices": rows}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let body: serde_json::Value = match r.json().await {
                            Ok(b) => b,
                            Err(_) => return batch,
                        };
                        assert_eq!(body["applied"], 500, "{body}");
                        let _ = acked_tx.send(batch);
                    }
                    _ => return batch,
                }
            }
            unreachable!()
        })
    };
    let mut acked = Vec::new();
    while acked.len() < 4 {
        acked.push(acked_rx.recv().await.unwrap());
    }
    // The fifth batch is in flight (or about to be): kill without warning.
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    let in_flight = importer.await.unwrap();
    while let Ok(b) = acked_rx.try_recv() {
        acked.push(b);
    }

    let mut node = start_node(&data);
    let api = format!("https://{}", node.api);
    let mut present = HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{api}/api/v1/devices?limit=1000");
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let page: serde_json::Value = http
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for d in page["devices"].as_array().unwrap() {
            present.insert(d["mac"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    for &batch in &acked {
        for row in 0..500 {
            assert!(
                present.contains(&mac(batch, row)),
                "acknowledged batch {batch} lost row {row}"
            );
        }
    }
    let partial = (0..500)
        .filter(|&row| present.contains(&mac(in_flight, row)))
        .count();
    assert!(
        partial == 0 || partial == 500,
        "the batch in flight was half-written: {partial} of 500 rows"
    );
    assert_eq!(present.len(), acked.len() * 500 + partial);
    // And phones are served from what survived.
    let phone = client(&data);
    let r = phone
        .get(format!("https://{}/{}.cfg", node.phones, mac(acked[0], 0)))
        .header("user-agent", "Yealink SIP-T46S 66.86.0.15")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    node.child.kill().unwrap();
    node.child.wait().unwrap();
}

#[test]
fn the_token_command_issues_a_working_token() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zerotouch"))
        .args(["token", "create", "--partner", "acme", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("zt_"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = TestServer::start_in(tmp.path(), |_| {}).await;
        let (status, body) = server.api(Some(&token)).get("/api/v1/devices").await;
        assert_eq!(status, 200, "{body}");
        server.stop().await.unwrap();
    });
}
