//! TLS as an operator sees it: why handshakes fail, certificate files replaced while the
//! server runs (on a reload request or by polling), and when the certificate expires.

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zerotouch::reload::Change;

use crate::support::*;

fn failures(reason: &str) -> String {
    format!(r#"zerotouch_tls_handshake_failures_total{{listener="phones",reason="{reason}"}}"#)
}

/// A ClientHello (record and handshake headers included) with `version`, one cipher suite
/// and `extensions` (already encoded).
fn client_hello(version: [u8; 2], suite: [u8; 2], extensions: &[u8]) -> Vec<u8> {
    let mut body = version.to_vec();
    body.extend_from_slice(&[7; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0, 2]);
    body.extend_from_slice(&suite);
    body.extend_from_slice(&[1, 0]); // null compression
    if !extensions.is_empty() {
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend_from_slice(extensions);
    }
    let mut handshake = vec![1, 0];
    handshake.extend_from_slice(&(body.len() as u16).to_be_bytes());
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// Sends `bytes` and reads until the server closes the connection.
async fn send_and_drain(to: std::net::SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(to).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink).await;
}

async fn counted(server: &TestServer, reason: &str) {
    let series = failures(reason);
    eventually(|| async { (server.metric(&series).await >= 1.0).then_some(()) }).await;
}

#[tokio::test]
async fn handshake_failures_are_counted_by_reason() {
    let server = TestServer::demo_with(|k| {
        k.handshake_timeout = Some("300ms".parse().unwrap());
    })
    .await;
    let phones = server.addrs.phones.unwrap();
    let page = server.metrics().await;
    for reason in [
        "no_shared_version",
        "no_shared_cipher",
        "bad_certificate",
        "timeout",
        "other",
    ] {
        assert_eq!(metric_value(&page, &failures(reason)), 0.0);
        assert!(
            page.contains(&failures(reason)),
            "exported from the start: {reason}"
        );
    }

    // An old phone: TLS 1.0, RSA key exchange with AES-CBC (TLS_RSA_WITH_AES_128_CBC_SHA).
    send_and_drain(phones, &client_hello([3, 1], [0x00, 0x2f], &[])).await;
    counted(&server, "no_shared_version").await;

    // TLS 1.2, but only that suite (signature_algorithms: ECDSA P-256 and RSA PKCS#1 with
    // SHA-256; supported_groups: X25519).
    let extensions = [
        0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x04, 0x01, 0x00, 0x0a, 0x00, 0x04, 0x00,
        0x02, 0x00, 0x1d,
    ];
    send_and_drain(phones, &client_hello([3, 3], [0x00, 0x2f], &extensions)).await;
    counted(&server, "no_shared_cipher").await;

    // A client that does not trust the certificate.
    let stranger = tls_client(&[]);
    assert!(
        tls_over(&stranger, TcpStream::connect(phones).await.unwrap())
            .await
            .is_err()
    );
    counted(&server, "bad_certificate").await;

    // Silence.
    let silent = TcpStream::connect(phones).await.unwrap();
    counted(&server, "timeout").await;
    drop(silent);

    // Not TLS at all.
    send_and_drain(phones, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    counted(&server, "other").await;

    // Each failure counted under its own reason only.
    let page = server.metrics().await;
    for reason in [
        "no_shared_version",
        "no_shared_cipher",
        "bad_certificate",
        "timeout",
        "other",
    ] {
        assert_eq!(metric_value(&page, &failures(reason)), 1.0, "{reason}");
    }
}

/// A certificate for `localhost` expiring at `not_after` (Unix seconds), and its key, as PEM.
fn certificate(not_after: i64) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_after = rcgen::date_time_ymd(1970, 1, 1)
        + std::time::Duration::from_secs(u64::try_from(not_after).unwrap());
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Writes a pair where the server reads it, each file replaced in one rename (as deployment
/// tools do), the key first.
fn install(dir: &Path, (cert, key): &(String, String)) {
    for (name, text) in [("key.pem", key), ("cert.pem", cert)] {
        let tmp = dir.join(format!("{name}.new"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
}

/// A server presenting the pair in `dir`, polling it every `poll`.
async fn server_with_files(dir: &Path, poll: &str) -> TestServer {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let poll = poll.parse().unwrap();
    TestServer::demo_with(move |k| {
        k.tls_cert = Some(cert);
        k.tls_key = Some(key);
        k.tls_reload_poll = Some(poll);
    })
    .await
}

/// The certificate a new TLS connection is given (DER), and that connection.
async fn connect(
    server: &TestServer,
    roots: &[&[u8]],
) -> (Vec<u8>, RawHttp<tokio_rustls::client::TlsStream<TcpStream>>) {
    let stream = TcpStream::connect(server.addrs.phones.unwrap())
        .await
        .unwrap();
    let tls = tls_over(&tls_client(roots), stream).await.unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    (leaf, RawHttp::new(tls))
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

const EXPIRY: &str = r#"zerotouch_tls_certificate_expiry_timestamp_seconds{listener="phones"}"#;
const OLD_EXPIRY: i64 = 1_950_000_000;
const NEW_EXPIRY: i64 = 1_960_000_000;

#[tokio::test]
async fn replaced_certificate_files_reach_new_connections_and_open_ones_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let old = certificate(OLD_EXPIRY);
    let new = certificate(NEW_EXPIRY);
    install(dir.path(), &old);
    let server = server_with_files(dir.path(), "0s").await;
    let roots = [old.0.as_bytes(), new.0.as_bytes()];

    let (leaf, mut open) = connect(&server, &roots).await;
    assert_eq!(leaf, der(&old.0));
    assert_eq!(
        open.get("/y000000000000.boot", None).await.unwrap().status,
        404
    );
    assert_eq!(server.metric(EXPIRY).await, OLD_EXPIRY as f64);
    assert_eq!(
        server
            .metric(r#"zerotouch_tls_certificate_expiry_timestamp_seconds{listener="api"}"#)
            .await,
        OLD_EXPIRY as f64
    );

    install(dir.path(), &new);
    let report = server.reload.run().await.unwrap();
    assert!(
        matches!(report.of("tls_certificates"), Some(Ok(Change::Changed(_)))),
        "{report:?}"
    );
    let (leaf, _) = connect(&server, &roots).await;
    assert_eq!(
        leaf,
        der(&new.0),
        "a new connection gets the new certificate"
    );
    assert_eq!(
        open.get("/y000000000000.boot", None).await.unwrap().status,
        404,
        "the open connection still works"
    );
    assert_eq!(server.metric(EXPIRY).await, NEW_EXPIRY as f64);

    // Nothing changed on disk: nothing to do.
    let again = server.reload.run().await.unwrap();
    assert_eq!(again.of("tls_certificates"), Some(&Ok(Change::Unchanged)));
    let page = server.metrics().await;
    let reloads = |result: &str| {
        metric_value(
            &page,
            &format!(r#"zerotouch_reloads_total{{hook="tls_certificates",result="{result}"}}"#),
        )
    };
    assert_eq!((reloads("changed"), reloads("unchanged")), (1.0, 1.0));
}

#[tokio::test]
async fn a_broken_certificate_file_keeps_the_one_in_use_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let old = certificate(OLD_EXPIRY);
    let other = certificate(NEW_EXPIRY);
    install(dir.path(), &old);
    let server = server_with_files(dir.path(), "0s").await;
    let roots = [old.0.as_bytes(), other.0.as_bytes()];

    // Another certificate with the old key: they do not belong together.
    install(dir.path(), &(other.0.clone(), old.1.clone()));
    let report = server.reload.run().await.unwrap();
    let failure = format!("{:?}", report.of("tls_certificates"));
    assert!(
        failure.contains("Kept") && failure.contains("key.pem") && failure.contains("cert.pem"),
        "{failure}"
    );
    // A key that is not PEM at all.
    install(dir.path(), &(other.0.clone(), "garbage".to_owned()));
    let report = server.reload.run().await.unwrap();
    let failure = format!("{:?}", report.of("tls_certificates"));
    assert!(failure.contains("key.pem"), "{failure}");

    let (leaf, mut c) = connect(&server, &roots).await;
    assert_eq!(leaf, der(&old.0), "still the old certificate");
    assert_eq!(
        c.get("/y000000000000.boot", None).await.unwrap().status,
        404
    );
    assert_eq!(server.metric(EXPIRY).await, OLD_EXPIRY as f64);
    assert_eq!(
        server
            .metric(r#"zerotouch_reloads_total{hook="tls_certificates",result="failed"}"#)
            .await,
        2.0
    );
}

#[tokio::test]
async fn changed_certificate_files_are_picked_up_by_the_poll() {
    let dir = tempfile::tempdir().unwrap();
    let old = certificate(OLD_EXPIRY);
    let new = certificate(NEW_EXPIRY);
    install(dir.path(), &old);
    let server = server_with_files(dir.path(), "50ms").await;
    let roots = [old.0.as_bytes(), new.0.as_bytes()];
    assert_eq!(connect(&server, &roots).await.0, der(&old.0));

    install(dir.path(), &new);
    let new_leaf = der(&new.0);
    eventually(|| async {
        let (leaf, _) = connect(&server, &roots).await;
        (leaf == new_leaf).then_some(())
    })
    .await;
    assert_eq!(server.metric(EXPIRY).await, NEW_EXPIRY as f64);
}
