//! Connection slots and who a connection is from: caps per address and per network, closing
//! connections that serve nothing, and the PROXY protocol from trusted balancers only.

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use zerotouch::server::proxy::Header;

use crate::support::*;

fn refused(reason: &str, listener: &str) -> String {
    format!(r#"zerotouch_connections_refused_total{{listener="{listener}",reason="{reason}"}}"#)
}

/// Waits until `series` reaches `at_least`.
async fn metric_reaches(server: &TestServer, series: &str, at_least: f64) {
    eventually(|| async {
        let v = server.metric(series).await;
        (v >= at_least).then_some(())
    })
    .await;
}

const UNKNOWN: &str = "/805ec0999999.cfg";

#[tokio::test]
async fn one_network_cannot_take_every_connection_while_another_still_connects() {
    let server = TestServer::demo_with(|k| {
        k.max_connections_per_ipv4_network = Some(4);
    })
    .await;
    let http = server.addrs.http.unwrap();
    // Four addresses of 127.0.5.0/24, one connection each, every one served.
    let mut held = Vec::new();
    for i in 1..=4 {
        let mut c = RawHttp::new(connect_from(&format!("127.0.5.{i}"), http).await);
        assert_eq!(c.get(UNKNOWN, None).await.unwrap().status, 404);
        held.push(c);
    }
    // A fifth address of the same /24 gains nothing: closed without an answer.
    let mut fifth = RawHttp::new(connect_from("127.0.5.5", http).await);
    assert!(fifth.get(UNKNOWN, None).await.is_none(), "the /24 is full");
    // Another network is served meanwhile, and so are the held connections.
    let mut other = RawHttp::new(connect_from("127.0.6.1", http).await);
    assert_eq!(other.get(UNKNOWN, None).await.unwrap().status, 404);
    assert_eq!(held[0].get(UNKNOWN, None).await.unwrap().status, 404);
    metric_reaches(&server, &refused("network_cap", "phones_http"), 1.0).await;
    // A slot given back is free again.
    drop(held.pop());
    let mut again = eventually(|| async {
        let mut c = RawHttp::new(connect_from("127.0.5.5", http).await);
        c.get(UNKNOWN, None).await.map(|_| c)
    })
    .await;
    assert_eq!(again.get(UNKNOWN, None).await.unwrap().status, 404);
}

#[tokio::test]
async fn a_connection_that_only_asks_for_optional_files_is_closed_after_the_limit() {
    let server = TestServer::demo_with(|k| {
        k.max_unserved_per_connection = Some(4);
    })
    .await;
    let http = server.addrs.http.unwrap();
    let ua = Some(YEALINK_UA);

    // A phone's boot sequence: two optional files, then its config, on one connection; the
    // served config starts the count over.
    let mut phone = RawHttp::new(TcpStream::connect(http).await.unwrap());
    for path in boot_sequence("yealink", YEALINK_MAC, "T46S") {
        let r = phone.get(&path, ua).await.unwrap();
        assert_eq!(r.header("connection"), None, "{path}: {r:?}");
    }
    for _ in 0..3 {
        assert_eq!(
            phone.get("/y000000000000.boot", ua).await.unwrap().status,
            404
        );
    }
    assert_eq!(
        phone
            .get(&format!("/{YEALINK_MAC}.cfg"), ua)
            .await
            .unwrap()
            .status,
        200
    );

    // A client that only asks for optional files: the fourth answer is the last.
    let mut idle = RawHttp::new(TcpStream::connect(http).await.unwrap());
    for n in 1..=4 {
        let r = idle.get("/y000000000000.boot", ua).await.unwrap();
        assert_eq!(r.status, 404);
        let last = r.header("connection") == Some("close");
        assert_eq!(last, n == 4, "answer {n}: {r:?}");
    }
    assert!(idle.closed_by_server().await);
    // Misses and refusals count too: a scanner's connection is closed just the same.
    let mut scanner = RawHttp::new(TcpStream::connect(http).await.unwrap());
    for _ in 0..4 {
        scanner.get(UNKNOWN, None).await.unwrap();
    }
    assert!(scanner.closed_by_server().await);
    metric_reaches(&server, &refused("nothing_served", "phones_http"), 2.0).await;
}

/// The balancer's address in these tests; the test clients (partner API, metrics) connect
/// from 127.0.0.1 and stay untrusted.
const BALANCER: &str = "127.0.0.9";

/// A connection from the trusted balancer that first sends `header`.
async fn via_balancer(to: SocketAddr, header: &[u8]) -> TcpStream {
    let mut s = connect_from(BALANCER, to).await;
    s.write_all(header).await.unwrap();
    s
}

fn proxied(source: &str) -> Header {
    Header::Proxied {
        source: source.parse().unwrap(),
        destination: "198.51.100.1:80".parse().unwrap(),
    }
}

#[tokio::test]
async fn behind_a_trusted_balancer_the_throttle_and_status_see_the_client() {
    let server = TestServer::demo_with(|k| {
        k.proxy_protocol_from = Some(BALANCER.parse().unwrap());
        k.throttle_budget = Some(2);
    })
    .await;
    let http = server.addrs.http.unwrap();
    // Two misses from 203.0.113.7, through the balancer (v1, then v2).
    for header in [
        proxied("203.0.113.7:40000").to_v1().into_bytes(),
        proxied("203.0.113.7:40001").to_v2(&[]),
    ] {
        let mut c = RawHttp::new(via_balancer(http, &header).await);
        assert_eq!(c.get(UNKNOWN, None).await.unwrap().status, 404);
    }
    // Its network is blocked now; the balancer's clients elsewhere are not.
    let mut blocked =
        RawHttp::new(via_balancer(http, &proxied("203.0.113.99:1").to_v1().into_bytes()).await);
    assert_eq!(blocked.get(UNKNOWN, None).await.unwrap().status, 429);
    let mut elsewhere =
        RawHttp::new(via_balancer(http, &proxied("192.0.2.10:5060").to_v2(&[])).await);
    let served = elsewhere
        .get(&format!("/{YEALINK_MAC}.cfg"), Some(YEALINK_UA))
        .await
        .unwrap();
    assert_eq!(served.status, 200);
    // Neither the balancer's own address nor its network is blocked: a direct client of
    // 127.0.0.0/24 (not trusted, so without a header) is answered normally.
    let mut direct = RawHttp::new(connect_from("127.0.0.2", http).await);
    assert_eq!(direct.get(UNKNOWN, None).await.unwrap().status, 404);

    // The device's status records the client's address, not the balancer's.
    let source = eventually(|| async { server.last_seen_source(YEALINK_MAC) }).await;
    assert_eq!(source, "192.0.2.10");
}

#[tokio::test]
async fn a_trusted_balancer_must_send_a_header_and_nobody_else_may() {
    let server = TestServer::demo_with(|k| {
        k.proxy_protocol_from = Some("127.0.0.9/32".parse().unwrap());
    })
    .await;
    let http = server.addrs.http.unwrap();
    // From the balancer without a header: closed unanswered.
    let mut bare = RawHttp::new(connect_from(BALANCER, http).await);
    assert!(bare.get(UNKNOWN, None).await.is_none());
    metric_reaches(&server, &refused("proxy_missing", "phones_http"), 1.0).await;
    // From the balancer with a malformed header: closed unanswered.
    let mut bad = RawHttp::new(via_balancer(http, b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n").await);
    assert!(bad.get(UNKNOWN, None).await.is_none());
    metric_reaches(&server, &refused("proxy_invalid", "phones_http"), 1.0).await;
    // A LOCAL header (the balancer's health check): served as the balancer itself.
    let mut local = RawHttp::new(via_balancer(http, &Header::Local.to_v2(&[])).await);
    assert_eq!(local.get(UNKNOWN, None).await.unwrap().status, 404);
    // From anyone else a header is refused: it cannot choose its own address.
    for header in [
        proxied("192.0.2.10:1").to_v1().into_bytes(),
        proxied("192.0.2.10:1").to_v2(&[]),
    ] {
        let mut s = connect_from("127.0.0.2", http).await;
        s.write_all(&header).await.unwrap();
        let mut spoof = RawHttp::new(s);
        assert!(spoof.get(UNKNOWN, None).await.is_none());
    }
    metric_reaches(&server, &refused("proxy_untrusted", "phones_http"), 2.0).await;
    // Without one, anyone else is served as usual.
    let mut direct = RawHttp::new(connect_from("127.0.0.2", http).await);
    assert_eq!(direct.get(UNKNOWN, None).await.unwrap().status, 404);
}

#[tokio::test]
async fn the_proxy_header_comes_before_tls_on_the_https_listener() {
    let server = TestServer::demo_with(|k| {
        k.proxy_protocol_from = Some("127.0.0.9/32".parse().unwrap());
        k.throttle_budget = Some(1);
    })
    .await;
    let https = server.addrs.phones.unwrap();
    let cert = std::fs::read(server.data_dir.join("tls/cert.pem")).unwrap();
    let client = tls_client(&[&cert]);
    let header = proxied("203.0.113.7:40000").to_v2(&[]);
    let tls = tls_over(&client, via_balancer(https, &header).await)
        .await
        .unwrap();
    let mut c = RawHttp::new(tls);
    assert_eq!(c.get(UNKNOWN, None).await.unwrap().status, 404);
    let tls = tls_over(&client, via_balancer(https, &header).await)
        .await
        .unwrap();
    let mut c = RawHttp::new(tls);
    assert_eq!(
        c.get(UNKNOWN, None).await.unwrap().status,
        429,
        "the client's network is blocked after one miss"
    );
    // Someone else's header before TLS: refused as a PROXY header, not a failed handshake.
    let mut s = connect_from("127.0.0.2", https).await;
    s.write_all(&header).await.unwrap();
    assert!(tls_over(&client, s).await.is_err());
    metric_reaches(&server, &refused("proxy_untrusted", "phones"), 1.0).await;
    assert_eq!(
        server
            .metric(r#"zerotouch_tls_handshake_failures_total{listener="phones",reason="other"}"#)
            .await,
        0.0
    );
}

#[tokio::test]
async fn one_ipv6_48_cannot_spend_the_budget_of_each_of_its_64s() {
    let server = TestServer::demo_with(|k| {
        k.proxy_protocol_from = Some(BALANCER.parse().unwrap());
        k.throttle_budget = Some(2);
    })
    .await;
    let http = server.addrs.http.unwrap();
    // One miss from each of eight /64s (in two /56s) of 2001:db8:42::/48: every /64 keeps
    // budget, but the /48's budget (four times a /64's) is spent.
    for i in 0..8u16 {
        let source = format!("[2001:db8:42:{:x}::1]:40000", (i % 2) << 8 | i);
        let mut c = RawHttp::new(via_balancer(http, &proxied(&source).to_v2(&[])).await);
        assert_eq!(c.get(UNKNOWN, None).await.unwrap().status, 404, "{source}");
    }
    let fresh_64 = proxied("[2001:db8:42:ffff::7]:1").to_v2(&[]);
    let mut blocked = RawHttp::new(via_balancer(http, &fresh_64).await);
    assert_eq!(blocked.get(UNKNOWN, None).await.unwrap().status, 429);
    let next_48 = proxied("[2001:db8:43::7]:1").to_v2(&[]);
    let mut free = RawHttp::new(via_balancer(http, &next_48).await);
    assert_eq!(free.get(UNKNOWN, None).await.unwrap().status, 404);
}
