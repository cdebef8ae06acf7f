//! Several nodes, one PostgreSQL: two real servers (separate data directories, their own
//! registries) sharing one fresh database per test, created in the cluster named by
//! `ZEROTOUCH_TEST_DATABASE_URL` (`.ci/postgres` starts one). Without that variable these
//! tests fail and say how to get a server; they never skip.
//!
//! The outage is simulated by a TCP proxy inside the test between one node and the database:
//! cutting it closes that node's connections and refuses new ones, exactly what the node sees
//! when the database goes away, without stopping the cluster other tests share.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::support::*;
use crate::test_database::{required_server, unique_name, with_database, TestDatabase};

/// `url` pointing at `via` instead of its own host and port.
fn through(url: &str, via: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let userinfo = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    format!("{scheme}://{}{via}{path}", userinfo.unwrap_or_default())
}

/// A fresh database, dropped (closing whatever is still connected) when the test ends,
/// passed or failed.
async fn test_database() -> TestDatabase {
    let server = required_server(
        "the cluster tests need a PostgreSQL server",
        ".ci/postgres cargo nextest run --test it -E 'test(/cluster::/)'",
    );
    TestDatabase::create(&server, unique_name("zt_cluster"))
        .await
        .unwrap()
}

/// A TCP proxy to the database that the test can cut (close every connection, refuse new
/// ones) and restore.
struct Proxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cut_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if *cut_rx.borrow() {
                    // The database is "down": the connection closes at once.
                    drop(client);
                    continue;
                }
                let mut cut_rx = cut_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_rx.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { addr, cut, task }
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }

    fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        self.task.abort();
    }
}

/// One node: a real server with its own data directory.
struct Node {
    server: TestServer,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Node {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl Node {
    /// Starts a node on `url`; `change_poll` is its safety-net poll interval.
    async fn start(url: String, change_poll: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let poll = change_poll.parse().unwrap();
        let server = TestServer::start_in(dir.path(), |k| {
            k.database_url = Some(url.parse().unwrap());
            k.database_pool_size = Some(8);
            k.change_poll = Some(poll);
            // Tests poll for devices before they are claimed, all from 127.0.0.1: the
            // enumeration throttle must not count that.
            k.throttle_budget = Some(1_000_000);
        })
        .await;
        Self { server, _dir: dir }
    }

    async fn stop(self) {
        self.server.stop().await.unwrap();
    }

    async fn ready_body(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{}{path}", self.addrs.metrics.unwrap()))
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// A partner with tenants `names` (phones authenticated by MAC, SIP server
/// `<tenant>.cloud.example`), created through `node`; returns its token.
async fn partner(node: &TestServer, name: &str, tenants: &[&str]) -> String {
    let admin = node.admin();
    let (status, p) = admin
        .post("/api/v1/partners", &json!({ "name": name }))
        .await;
    assert_eq!(status, 201, "{p}");
    let (status, t) = admin
        .post(&format!("/api/v1/partners/{}/tokens", p["id"]), &json!({}))
        .await;
    assert_eq!(status, 201, "{t}");
    let token = t["token"].as_str().unwrap().to_owned();
    let api = node.api(Some(&token));
    let (status, c) = api
        .post(
            "/api/v1/customers",
            &json!({ "company": format!("{name} customer") }),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    for tenant in tenants {
        let (status, body) = api
            .post(
                "/api/v1/tenants",
                &json!({ "name": tenant, "customer": c["id"], "phone_auth": "mac",
                         "sip_server": format!("{tenant}.cloud.example") }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    token
}

/// A Yealink MAC (lower-case hex) numbered `n`.
/// Waits until the node connected as `application_name` has its `LISTEN` session up. A change
/// committed before that reaches the node by the catch-up on listening, not by a notification,
/// so tests that count notifications or reconnects start after it.
async fn until_listening(db: &TestDatabase, application_name: &str) {
    let admin = db.admin().await.unwrap();
    eventually(|| async {
        let rows = admin
            .query(
                "SELECT 1 FROM pg_stat_activity \
                 WHERE datname = $1 AND application_name = $2 AND query LIKE 'LISTEN%'",
                &[&db.name, &application_name],
            )
            .await
            .unwrap();
        (!rows.is_empty()).then_some(())
    })
    .await;
}

fn mac(n: u32) -> String {
    format!("805ec0{:06x}", n & 0xff_ffff)
}

/// A Yealink phone with MAC `mac` on `node`.
fn phone(node: &TestServer, mac: &str) -> PhoneClient {
    let colons: Vec<&str> = (0..6).map(|i| &mac[2 * i..2 * i + 2]).collect();
    node.phone(Some(&format!(
        "Yealink SIP-T46S 66.86.0.15 {}",
        colons.join(":")
    )))
}

/// What the phone's device file names as its SIP server (`None`: not served).
async fn sip_server(phone: &PhoneClient, mac: &str) -> Option<String> {
    let fetched = phone.get(&format!("/{mac}.cfg")).await;
    if fetched.status != 200 {
        return None;
    }
    fetched.text().lines().find_map(|l| {
        l.strip_prefix("account.1.sip_server.1.address = ")
            .map(str::to_owned)
    })
}

/// Waits until `phone` sees `expected` for `mac`; fails after `limit`. Returns how long it
/// took.
async fn until_seen(
    phone: &PhoneClient,
    mac: &str,
    expected: Option<&str>,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let seen = sip_server(phone, mac).await;
        if seen.as_deref() == expected {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{mac}: expected {expected:?} within {limit:?}, still {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn nodes_started_together_migrate_once_and_share_one_truth() {
    let db = test_database().await;
    // Both nodes migrate at start, under the advisory lock: neither fails, the schema is
    // applied once.
    let (a, b) = tokio::join!(
        Node::start(db.url.clone(), "1s"),
        Node::start(db.url.clone(), "1s")
    );
    let series = "zerotouch_schema_migrations_applied_total";
    let (on_a, on_b) = (a.metric(series).await, b.metric(series).await);
    assert_eq!(
        on_a + on_b,
        zerotouch::store::postgres::PostgresStore::SCHEMA_VERSION as f64,
        "every migration applied once between the two nodes ({on_a} + {on_b})"
    );
    assert!(
        on_a == 0.0 || on_b == 0.0,
        "one node migrated, the other found it done"
    );
    let token = partner(&a, "acme", &["sales"]).await;
    let (status, body) = b.api(Some(&token)).claim(&mac(1), "sales").await;
    assert_eq!(
        status, 201,
        "a token made on one node works on the other: {body}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_change_through_one_node_reaches_the_phones_of_the_other_within_a_second() {
    let db = test_database().await;
    let a = Node::start(db.url.clone(), "1s").await;
    // Node B's safety-net poll is off (an hour): what reaches it, reaches it by NOTIFY.
    let b = Node::start(db.url_with("application_name=zt-node-b"), "1h").await;
    until_listening(&db, "zt-node-b").await;
    let token = partner(&a, "acme", &["sales", "support"]).await;
    let api = a.api(Some(&token));
    let m = mac(0x10);
    let on_b = phone(&b, &m);
    let second = Duration::from_secs(1);
    // Tenants created through A reached B too (the claim below would not render otherwise).
    assert_eq!(sip_server(&on_b, &m).await, None, "not claimed yet");

    let (status, body) = api.claim(&m, "sales").await;
    assert_eq!(status, 201, "{body}");
    until_seen(&on_b, &m, Some("sales.cloud.example"), second).await;

    let (status, body) = api
        .patch(
            &format!("/api/v1/devices/{m}"),
            &json!({"tenant": "support"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until_seen(&on_b, &m, Some("support.cloud.example"), second).await;

    let (status, body) = api
        .patch(
            "/api/v1/tenants/support",
            &json!({"sip_server": "pbx2.support.example"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until_seen(&on_b, &m, Some("pbx2.support.example"), second).await;

    let (status, _) = api.delete(&format!("/api/v1/devices/{m}")).await;
    assert_eq!(status, 204);
    until_seen(&on_b, &m, None, second).await;

    // And the other way round.
    let (status, body) = b.api(Some(&token)).claim(&m, "sales").await;
    assert_eq!(status, 201, "{body}");
    until_seen(&phone(&a, &m), &m, Some("sales.cloud.example"), second).await;

    // The store's counters reach /metrics on the node's health tick, not at once.
    let page = eventually(|| async {
        let page = b.metrics().await;
        (metric_value(&page, "zerotouch_store_notifications_total") >= 4.0).then_some(page)
    })
    .await;
    assert!(metric_value(&page, "zerotouch_store_notification_lag_seconds_count") >= 4.0);
    assert_eq!(
        metric_value(&page, r#"zerotouch_store_catch_ups_total{trigger="poll"}"#),
        0.0
    );
    assert_eq!(metric_value(&page, "zerotouch_database_up"), 1.0);
    assert!(
        metric_value(
            &page,
            r#"zerotouch_store_operation_duration_seconds_count{operation="claim"}"#
        ) >= 1.0,
        "store latency by operation is exported"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn one_mac_claimed_at_once_through_both_nodes_has_exactly_one_winner() {
    let db = test_database().await;
    let a = Node::start(db.url.clone(), "1s").await;
    let b = Node::start(db.url.clone(), "1s").await;
    const CLAIMANTS: usize = 16;
    let tenants: Vec<String> = (0..CLAIMANTS).map(|i| format!("t{i}")).collect();
    let names: Vec<&str> = tenants.iter().map(String::as_str).collect();
    let token = partner(&a, "acme", &names).await;
    let clients = [a.api(Some(&token)), b.api(Some(&token))];
    for round in 0..5 {
        let m = mac(0x100 + round);
        let claims = tenants.iter().enumerate().map(|(i, tenant)| {
            let api = clients[i % 2].clone();
            let (m, tenant) = (m.clone(), tenant.clone());
            tokio::spawn(async move { api.claim(&m, &tenant).await })
        });
        let mut winners = Vec::new();
        let mut conflicts = 0;
        for claim in claims.collect::<Vec<_>>() {
            let (status, body) = claim.await.unwrap();
            match status {
                201 => winners.push(body["tenant"].as_str().unwrap().to_owned()),
                409 => {
                    assert_eq!(body["error"]["code"], "already_in_use", "{body}");
                    conflicts += 1;
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(conflicts, CLAIMANTS - 1);
        // Both nodes' phones agree on the winner.
        let expected = format!("{}.cloud.example", winners[0]);
        for node in [&a, &b] {
            until_seen(
                &phone(node, &m),
                &m,
                Some(&expected),
                Duration::from_secs(1),
            )
            .await;
        }
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn changes_made_while_a_node_lost_its_notification_connection_are_caught_up() {
    let db = test_database().await;
    let a = Node::start(db.url.clone(), "1s").await;
    // B's poll is off: only notifications and the catch-up on reconnecting can reach it.
    let b = Node::start(db.url_with("application_name=zt-node-b"), "1h").await;
    let token = partner(&a, "acme", &["sales"]).await;
    let api = a.api(Some(&token));

    let admin = db.admin().await.unwrap();
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'zt-node-b' AND query LIKE 'LISTEN%'",
            &[&db.name],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 1, "node B has one LISTEN connection");
    let macs: Vec<String> = (0..5).map(|i| mac(0x200 + i)).collect();
    for m in &macs {
        let (status, body) = api.claim(m, "sales").await;
        assert_eq!(status, 201, "{body}");
    }
    for m in &macs {
        until_seen(
            &phone(&b, m),
            m,
            Some("sales.cloud.example"),
            Duration::from_secs(5),
        )
        .await;
    }
    let reconnects = eventually(|| async {
        let n = b.metric("zerotouch_database_reconnects_total").await;
        (n >= 1.0).then_some(n)
    })
    .await;
    assert!(reconnects >= 1.0);
    assert_eq!(
        b.metric(r#"zerotouch_store_catch_ups_total{trigger="poll"}"#)
            .await,
        0.0
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn through_a_database_outage_phones_are_served_writes_get_503_and_the_node_catches_up() {
    let db = test_database().await;
    let upstream_url = db.url.clone();
    let upstream: SocketAddr = {
        let (_, rest) = upstream_url.split_once('@').unwrap();
        rest.split('/').next().unwrap().parse().unwrap()
    };
    let proxy = Proxy::start(upstream).await;
    let a = Node::start(upstream_url.clone(), "1s").await;
    let b = Node::start(
        through(&db.url_with("application_name=zt-node-b"), proxy.addr),
        "1s",
    )
    .await;
    // Listening before the cut, so that listening again after it counts as a reconnect.
    until_listening(&db, "zt-node-b").await;
    let token = partner(&a, "acme", &["sales", "support"]).await;
    let (on_a, on_b) = (a.api(Some(&token)), b.api(Some(&token)));
    let served = mac(0x300);
    let (status, body) = on_a.claim(&served, "sales").await;
    assert_eq!(status, 201, "{body}");
    let b_phone = phone(&b, &served);
    until_seen(
        &b_phone,
        &served,
        Some("sales.cloud.example"),
        Duration::from_secs(1),
    )
    .await;

    proxy.cut();
    eventually(|| async { (b.metric("zerotouch_database_up").await == 0.0).then_some(()) }).await;

    // Phones: zero errors.
    for _ in 0..50 {
        assert_eq!(
            sip_server(&b_phone, &served).await.as_deref(),
            Some("sales.cloud.example")
        );
    }
    // Partner writes: 503, Retry-After, a clear message.
    let response = on_b
        .request(reqwest::Method::POST, "/api/v1/devices")
        .json(&json!({"mac": mac(0x301), "tenant": "sales"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("database is unreachable"),
        "{body}"
    );
    // Partner reads answer 503 too (they are never served from a possibly stale cache).
    assert_eq!(on_b.get(&format!("/api/v1/devices/{served}")).await.0, 503);
    // Readiness: phones keep being routed here; the API's readiness fails; the body says why.
    let (status, text) = b.ready_body("/readyz").await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("database: down"), "{text}");
    let (status, text) = b.ready_body("/readyz/api").await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("database: down"), "{text}");

    // Meanwhile, through the node that still reaches the database.
    let (status, body) = on_a
        .patch(
            &format!("/api/v1/devices/{served}"),
            &json!({"tenant": "support"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let added = mac(0x302);
    let (status, body) = on_a.claim(&added, "sales").await;
    assert_eq!(status, 201, "{body}");
    // B still serves what it knew.
    assert_eq!(
        sip_server(&b_phone, &served).await.as_deref(),
        Some("sales.cloud.example")
    );

    proxy.restore();
    eventually(|| async { (b.metric("zerotouch_database_up").await == 1.0).then_some(()) }).await;
    until_seen(
        &b_phone,
        &served,
        Some("support.cloud.example"),
        Duration::from_secs(5),
    )
    .await;
    until_seen(
        &phone(&b, &added),
        &added,
        Some("sales.cloud.example"),
        Duration::from_secs(5),
    )
    .await;
    // Writes work again, without a restart.
    let again = mac(0x303);
    let status = eventually(|| async {
        let (status, _) = on_b.claim(&again, "sales").await;
        (status != 503).then_some(status)
    })
    .await;
    assert_eq!(status, 201);
    let (status, text) = b.ready_body("/readyz/api").await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("database: up"), "{text}");
    eventually(|| async {
        (b.metric("zerotouch_database_reconnects_total").await >= 1.0).then_some(())
    })
    .await;
    a.stop().await;
    b.stop().await;
    drop(proxy);
}

#[tokio::test]
async fn migrate_applies_the_schema_once_and_a_newer_schema_is_refused() {
    let db = test_database().await;
    let dir = tempfile::tempdir().unwrap();
    let mut knobs = test_knobs(dir.path());
    knobs.database_url = Some(db.url.parse().unwrap());
    let config = zerotouch::config::Config::resolve(knobs).unwrap();
    let first = zerotouch::app::migrate(&config).await.unwrap();
    assert!(
        first.contains("schema was at version 0, applied"),
        "{first}"
    );
    let second = zerotouch::app::migrate(&config).await.unwrap();
    assert!(second.contains("nothing to apply"), "{second}");
    assert!(
        !first.contains("postgres://"),
        "no URL (and so no password) printed: {first}"
    );

    let client = crate::test_database::connect(&db.url).await.unwrap();
    client
        .execute("UPDATE zerotouch_schema SET version = 999", &[])
        .await
        .unwrap();
    let listeners = zerotouch::app::Listeners::bind(&config).await.unwrap();
    let refused = zerotouch::app::run(
        config.clone(),
        listeners,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap_err();
    let text = format!("{refused:#}");
    assert!(
        text.contains("schema is version 999") && text.contains("supports ("),
        "{text}"
    );
}

/// The URL helpers the tests above rely on.
#[test]
fn urls_are_rewritten_for_a_database_and_a_proxy() {
    assert_eq!(
        with_database(
            "postgres://postgres@127.0.0.1:5/postgres",
            "x",
            "application_name=b"
        )
        .unwrap(),
        "postgres://postgres@127.0.0.1:5/x?application_name=b"
    );
    assert_eq!(
        through(
            "postgres://u:p@127.0.0.1:5/x?a=b",
            "127.0.0.1:9".parse().unwrap()
        ),
        "postgres://u:p@127.0.0.1:9/x?a=b"
    );
}
