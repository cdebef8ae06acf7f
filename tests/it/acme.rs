//! Certificates from a real ACME CA: Debian's Pebble (`pebble`, installed by `.ci/test`),
//! started per test on free ports with its own HTTPS certificate (made here), validating
//! HTTP-01 for real against the server's plain listener (`httpPort`), and issuing short-lived
//! certificates (`certificateValidityPeriod`) so renewal happens within seconds.
//!
//! Nothing is timed: every wait polls a condition with a generous deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, pki_types::CertificateDer, RootCertStore};
use tokio_rustls::TlsConnector;
use zerotouch::config::Knobs;

use crate::support::*;
use crate::test_database::{required_server, unique_name, TestDatabase};

/// How long any one condition may take to come true.
const DEADLINE: Duration = Duration::from_secs(90);

/// A running Pebble, stopped when dropped.
struct Pebble {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The ACME directory URL.
    directory: String,
    /// The root of Pebble's own HTTPS certificate (for `acme_ca_root`).
    https_root: PathBuf,
    management: SocketAddr,
}

/// A port nothing listens on now (the OS's next free one).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Pebble {
    /// Starts Pebble validating HTTP-01 on `http_port` of 127.0.0.1 and issuing certificates
    /// valid for `validity`.
    async fn start(http_port: u16, validity: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let https_root = dir.path().join("root.pem");
        std::fs::write(&https_root, ca.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        let (listen, management) = (free_port(), free_port());
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{listen}"),
                "managementListenAddress": format!("127.0.0.1:{management}"),
                "certificate": dir.path().join("cert.pem"),
                "privateKey": dir.path().join("key.pem"),
                "httpPort": http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
                "certificateValidityPeriod": validity.as_secs(),
            }
        });
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
        let mut pebble = Self {
            child: None,
            dir,
            directory: format!("https://127.0.0.1:{listen}/dir"),
            https_root,
            management: SocketAddr::from(([127, 0, 0, 1], management)),
        };
        pebble.run().await;
        pebble
    }

    /// Runs Pebble on its configuration (again, after [`Pebble::stop`]: a CA that forgot
    /// every account and issues under a new root) and waits until it answers.
    async fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("pebble.log"))
            .unwrap();
        let child = Command::new("pebble")
            .arg("-config")
            .arg(self.dir.path().join("pebble.json"))
            // No artificial validation delays, no rejected nonces, and fresh authorisations
            // for every order, so each renewal is validated again.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run pebble (Debian package `pebble`; .ci/test installs it)");
        self.child = Some(child);
        let client = self.client();
        eventually("pebble answers", || async {
            client
                .get(&self.directory)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }

    fn client(&self) -> reqwest::Client {
        let root =
            reqwest::Certificate::from_pem(&std::fs::read(&self.https_root).unwrap()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(root)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    /// The root Pebble issues certificates under (new at every start).
    async fn issuing_root(&self) -> CertificateDer<'static> {
        let pem = self
            .client()
            .get(format!("https://{}/roots/0", self.management))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap()
    }

    /// Stops Pebble: the CA is down.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `condition` until it holds; fails after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < DEADLINE, "still waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `found` until it gives a value; fails after [`DEADLINE`].
async fn until<T, F, Fut>(what: &str, mut found: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = found().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "still waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The ACME knobs of a test server ordering `localhost` from `pebble`, on plain port `http`.
fn acme_knobs(k: &mut Knobs, pebble: &Pebble, http: u16) {
    k.http_addr = Some(format!("127.0.0.1:{http}").parse().unwrap());
    k.acme_directory = Some(pebble.directory.clone());
    k.acme_ca_root = Some(pebble.https_root.clone());
    k.acme_domains = Some("localhost".parse().unwrap());
    k.acme_contact = Some("ops@example.com".parse().unwrap());
    k.acme_check_every = Some("100ms".parse().unwrap());
    // The test's open connection idles while the certificate is renewed.
    k.header_read_timeout = Some("60s".parse().unwrap());
}

/// A TLS connection to `addr` as `localhost`, checked against `root` (any certificate when
/// `None`), and the leaf certificate it was given.
async fn connect(
    addr: SocketAddr,
    root: Option<&CertificateDer<'static>>,
) -> Option<(
    tokio_rustls::client::TlsStream<TcpStream>,
    CertificateDer<'static>,
)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let config = match root {
        Some(root) => {
            let mut roots = RootCertStore::empty();
            roots.add(root.clone()).unwrap();
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await.ok()?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .ok()?;
    let leaf = stream.get_ref().1.peer_certificates()?.first()?.clone();
    Some((stream, leaf))
}

/// The leaf `addr` presents to a new connection, whoever issued it.
async fn presented(addr: SocketAddr) -> CertificateDer<'static> {
    connect(addr, None).await.unwrap().1
}

fn issuer(leaf: &CertificateDer<'_>) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).unwrap();
    cert.issuer().to_string()
}

fn not_after(leaf: &CertificateDer<'_>) -> i64 {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).unwrap();
    cert.validity().not_after.timestamp()
}

fn from_pebble(leaf: &CertificateDer<'_>) -> bool {
    issuer(leaf).contains("Pebble")
}

/// Sends one request on an open connection and reads the answer's status line.
async fn status_line(stream: &mut tokio_rustls::client::TlsStream<TcpStream>) -> String {
    stream
        .write_all(b"GET /nothing-here HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One node: the first certificate is issued after real HTTP-01 validation and presented to new
/// connections; it is renewed before it expires while a connection opened earlier keeps
/// working; with the CA down, the renewal fails, is counted, and the certificate in use stays;
/// with the CA back (a new one: the account is unknown there), renewal succeeds again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_is_issued_renewed_and_kept_through_a_ca_outage() {
    let http = free_port();
    // Ten-second certificates: renewed with a third of their lifetime left.
    let mut pebble = Pebble::start(http, Duration::from_secs(10)).await;
    let server = {
        let tmp = tempfile::tempdir().unwrap();
        let s = TestServer::start_in(tmp.path(), |k| acme_knobs(k, &pebble, http)).await;
        (s, tmp)
    };
    let (server, _tmp) = server;
    let phones = server.addrs.phones.unwrap();

    let first = until("a certificate from Pebble", || async {
        Some(presented(phones).await).filter(from_pebble)
    })
    .await;
    // It chains to Pebble's root for the name ordered, on the API listener too.
    let root = pebble.issuing_root().await;
    let (mut open, leaf) = connect(phones, Some(&root)).await.unwrap_or_else(|| {
        panic!(
            "the certificate does not verify; pebble log:\n{}",
            pebble.log()
        )
    });
    assert!(from_pebble(&leaf));
    assert!(from_pebble(&presented(server.addrs.api.unwrap()).await));
    assert!(
        server
            .metric("zerotouch_acme_orders_total{result=\"issued\"}")
            .await
            >= 1.0
    );

    // Renewal: a new certificate for new connections; the open one still answers.
    let renewed = until("a renewed certificate", || async {
        Some(presented(phones).await).filter(|leaf| from_pebble(leaf) && *leaf != first)
    })
    .await;
    assert!(status_line(&mut open).await.starts_with("HTTP/1.1 "));
    let expiry = "zerotouch_tls_certificate_expiry_timestamp_seconds{listener=\"phones\"}";
    eventually(
        "the expiry gauge follows the certificate in use",
        || async {
            let current = presented(phones).await;
            server.metric(expiry).await as i64 == not_after(&current)
        },
    )
    .await;

    // The CA goes away: the next renewal fails and the certificate in use stays.
    pebble.stop();
    let before = server
        .metric("zerotouch_acme_orders_total{result=\"failed\"}")
        .await;
    eventually("a failed renewal", || async {
        server
            .metric("zerotouch_acme_orders_total{result=\"failed\"}")
            .await
            > before
    })
    .await;
    let kept = presented(phones).await;
    assert!(from_pebble(&kept), "still Pebble's certificate");
    assert!(
        kept == renewed || not_after(&kept) >= not_after(&renewed),
        "the newest certificate is kept"
    );

    // The CA is back, having forgotten the account: a new one is made and the renewal
    // succeeds, under the new root.
    pebble.run().await;
    let root = pebble.issuing_root().await;
    eventually("a certificate from the restarted CA", || async {
        connect(phones, Some(&root)).await.is_some()
    })
    .await;
    server.stop().await.unwrap();
}

/// Two nodes on one PostgreSQL database: one orders (whichever takes the lease; the CA reaches
/// only the first node, which answers from the store if the second ordered), and both end up
/// presenting the same certificate. The second node starts while the first holds the ordering
/// lease and checks the store only once an hour: the certificate reaches it through the change
/// feed, as soon as it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_end_with_the_same_certificate() {
    let server = required_server(
        "the ACME cluster test needs a PostgreSQL server",
        ".ci/postgres cargo nextest run --test it -E 'test(/acme::/)'",
    );
    let db = TestDatabase::create(&server, unique_name("zt_acme"))
        .await
        .unwrap();
    let http = free_port();
    let pebble = Pebble::start(http, Duration::from_secs(3600)).await;
    let start = |dir: &Path, http: u16, check_every: &'static str| {
        let url = db.url.clone();
        let dir = dir.to_owned();
        let pebble = &pebble;
        async move {
            TestServer::start_in(&dir, |k| {
                acme_knobs(k, pebble, http);
                k.acme_check_every = Some(check_every.parse().unwrap());
                k.database_url = Some(url.parse().unwrap());
                k.database_pool_size = Some(4);
            })
            .await
        }
    };
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(a_dir.path(), http, "100ms").await;
    let database = crate::test_database::connect(&db.url).await.unwrap();
    // (or, on a fast machine, already to have stored the certificate: the second node then
    // reads it at start, and the test shows only that both agree.)
    until("the first node to take the ordering lease", || async {
        database
            .query_opt(
                "SELECT 1 FROM server_secrets WHERE name IN ('acme/lease', 'acme/certificate')",
                &[],
            )
            .await
            .unwrap()
            .map(|_| ())
    })
    .await;
    let b = start(b_dir.path(), free_port(), "1h").await;
    let (a_phones, b_phones) = (a.addrs.phones.unwrap(), b.addrs.phones.unwrap());

    eventually(
        "both nodes present the same certificate from Pebble",
        || async {
            let (one, two) = (presented(a_phones).await, presented(b_phones).await);
            from_pebble(&one) && one == two
        },
    )
    .await;
    let orders = a
        .metric("zerotouch_acme_orders_total{result=\"issued\"}")
        .await
        + b.metric("zerotouch_acme_orders_total{result=\"issued\"}")
            .await;
    assert_eq!(orders, 1.0, "one node ordered");
    let root = pebble.issuing_root().await;
    assert!(connect(b_phones, Some(&root)).await.is_some());
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    db.drop().await.unwrap();
}
