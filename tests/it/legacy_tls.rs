//! Phones that need legacy TLS, through the haproxy front README documents
//! (`fixtures/haproxy/legacy-tls.cfg`): a client speaking TLS 1.0 with RSA key exchange and
//! AES-CBC (Debian's curl and OpenSSL) gets its config through haproxy, which passes it on
//! with a PROXY v2 header; the throttle then blocks the client's network, not haproxy's.
//!
//! Needs Debian's haproxy, curl and openssl: `.ci/test` installs them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::support::*;

/// Fails, naming `.ci/test`, when a tool the test drives is missing.
fn require(tool: &str) {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is missing: run .ci/test, which installs Debian's haproxy, curl and openssl"
    );
}

/// A port on 127.0.0.1 free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An RSA certificate and key for `localhost` in one PEM file, as haproxy's `crt` wants them.
fn rsa_front_certificate(dir: &Path) -> PathBuf {
    let (cert, key) = (dir.join("front.crt"), dir.join("front.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = dir.join("front.pem");
    let both = [std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap()].concat();
    std::fs::write(&pem, both).unwrap();
    pem
}

/// haproxy running the documented configuration, stopped when dropped.
struct Haproxy {
    child: Child,
    front: SocketAddr,
}

impl Haproxy {
    async fn start(server: &TestServer, front_pem: &Path) -> Self {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/haproxy/legacy-tls.cfg");
        let front: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut child = Command::new("haproxy")
            .arg("-db") // foreground
            .arg("-f")
            .arg(&config)
            .env("ZT_FRONT", front.to_string())
            .env("ZT_FRONT_PEM", front_pem)
            .env("ZT_PHONES", server.addrs.phones.unwrap().to_string())
            .env("ZT_CA", server.data_dir.join("tls/cert.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(front).await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                use tokio::io::AsyncReadExt;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .await
                    .unwrap();
                panic!("haproxy exited ({status}): {err}");
            }
            assert!(
                Instant::now() < deadline,
                "haproxy does not listen on {front}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { child, front }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// What curl got: the status (0 when no HTTP answer) and its verbose log.
struct Curl {
    status: u16,
    log: String,
}

/// GETs `path` over TLS 1.0 with TLS_RSA_WITH_AES_128_CBC_SHA only, from the local address
/// `from`, as an old phone with `user_agent` would.
async fn legacy_get(from: &str, to: SocketAddr, ca: &Path, path: &str, user_agent: &str) -> Curl {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-v",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["--interface", from])
        .args([
            "--tlsv1.0",
            "--tls-max",
            "1.0",
            "--ciphers",
            "AES128-SHA:@SECLEVEL=0",
        ])
        .arg("--cacert")
        .arg(ca)
        .args(["--resolve", &format!("localhost:{}:{}", to.port(), to.ip())])
        .args(["-A", user_agent])
        .arg(format!("https://localhost:{}{path}", to.port()))
        .output()
        .await
        .unwrap();
    Curl {
        status: String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0),
        log: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn a_tls_1_0_phone_through_haproxy_is_served_and_throttled_by_its_own_network() {
    for tool in ["haproxy", "curl", "openssl"] {
        require(tool);
    }
    // haproxy connects to zerotouch from 127.0.0.1: trusted for the PROXY protocol.
    let server = TestServer::demo_with(|k| {
        k.proxy_protocol_from = Some("127.0.0.1/32".parse().unwrap());
        k.throttle_budget = Some(3);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let front_pem = rsa_front_certificate(dir.path());
    let haproxy = Haproxy::start(&server, &front_pem).await;
    let config = format!("/{YEALINK_MAC}.cfg");

    // The old phone, at 127.0.1.2: TLS 1.0 with RSA key exchange and AES-CBC, through haproxy.
    let phone = legacy_get("127.0.1.2", haproxy.front, &front_pem, &config, YEALINK_UA).await;
    assert_eq!(phone.status, 200, "{}", phone.log);
    // OpenSSL calls TLS 1.0 "TLSv1".
    assert!(
        phone
            .log
            .contains("SSL connection using TLSv1 / AES128-SHA"),
        "{}",
        phone.log
    );
    // zerotouch saw the phone's address, not haproxy's.
    let source = eventually(|| async { server.last_seen_source(YEALINK_MAC) }).await;
    assert_eq!(source, "127.0.1.2");

    // Straight to zerotouch, the same client fails its handshake, counted as such.
    let ca = server.data_dir.join("tls/cert.pem");
    let direct = legacy_get(
        "127.0.1.2",
        server.addrs.phones.unwrap(),
        &ca,
        &config,
        YEALINK_UA,
    )
    .await;
    assert_eq!(direct.status, 0, "{}", direct.log);
    let refused =
        r#"zerotouch_tls_handshake_failures_total{listener="phones",reason="no_shared_version"}"#;
    eventually(|| async { (server.metric(refused).await >= 1.0).then_some(()) }).await;

    // A scanner in the phone's network, through haproxy: blocked after the budget of misses.
    for _ in 0..3 {
        let ua = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:99:99:99";
        let miss = legacy_get(
            "127.0.1.3",
            haproxy.front,
            &front_pem,
            "/805ec0999999.cfg",
            ua,
        )
        .await;
        assert_eq!(miss.status, 404, "{}", miss.log);
    }
    let blocked = legacy_get(
        "127.0.1.2",
        haproxy.front,
        &front_pem,
        "/805ec0999998.cfg",
        "Yealink SIP-T46S 66.86.0.15 80:5e:c0:99:99:98",
    )
    .await;
    assert_eq!(
        blocked.status, 429,
        "the client's network 127.0.1.0/24 is blocked"
    );
    // A phone of that network that needs no more than its MAC (a `mac`-mode tenant) is still
    // served: a scanner next to it does not shut it out.
    let served = legacy_get("127.0.1.2", haproxy.front, &front_pem, &config, YEALINK_UA).await;
    assert_eq!(served.status, 200, "{}", served.log);

    // haproxy's other clients are not: another network through the same haproxy is served.
    let other = legacy_get("127.0.2.2", haproxy.front, &front_pem, &config, YEALINK_UA).await;
    assert_eq!(other.status, 200, "{}", other.log);
    // Nor is haproxy's own network, 127.0.0.0/24: a client there, straight to zerotouch.
    let mut neighbour = RawHttp::new(connect_from("127.0.0.5", server.addrs.http.unwrap()).await);
    let answer = neighbour.get(&config, Some(YEALINK_UA)).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(server.metric("zerotouch_throttle_blocks_total").await, 1.0);
}
