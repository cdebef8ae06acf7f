//! What only PostgreSQL has: migrations shared by nodes, LISTEN/NOTIFY, outages, plans.
//! The behaviour every backend shares is in `store::contract`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::decode::DEVICE_COLUMNS;
use super::schema::{Migration, MIGRATIONS};
use super::{PostgresOptions, PostgresStore};
use crate::domain::{ClaimCode, Mac, TenantName, TenantSettings, Vendor};
use crate::store::contract::{store_on, test_database};
use crate::store::{now_millis, Actor, ClaimRequest, Error, ImportBatch, Store, TenantCreated};

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn woken(wake: &Notify, what: &str) {
    tokio::time::timeout(Duration::from_secs(15), wake.notified())
        .await
        .unwrap_or_else(|_| panic!("not woken: {what}"));
}

fn claim_request(mac: &str) -> ClaimRequest {
    ClaimRequest {
        mac: Mac::parse(mac).unwrap(),
        vendor: Vendor::Yealink,
        claim_code: None,
        tenant: TenantName::parse("t1").unwrap(),
        settings: Default::default(),
        enrol_until: None,
        redirect: false,
    }
}

async fn with_tenant(store: &PostgresStore) {
    let created = store
        .create_tenant(
            TenantName::parse("t1").unwrap(),
            None,
            TenantSettings::default(),
            &Actor::cli(),
        )
        .await
        .unwrap();
    assert!(matches!(created, TenantCreated::Created(_)));
}

async fn connect(db: &crate::store::test_database::TestDatabase) -> PostgresStore {
    PostgresStore::connect(&db.url, PostgresOptions::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_together_migrate_once() {
    let db = test_database().await;
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(connect(&db).await);
    }
    assert_eq!(stores[0].schema_version().await.unwrap(), 0);
    let mut tasks = Vec::new();
    for store in &stores {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.migrate().await.unwrap() }));
    }
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await.unwrap());
    }
    let all: Vec<i64> = (1..=PostgresStore::SCHEMA_VERSION).collect();
    assert_eq!(
        reports.iter().filter(|r| !r.applied.is_empty()).count(),
        1,
        "{reports:?}"
    );
    for r in &reports {
        assert_eq!(r.version, PostgresStore::SCHEMA_VERSION);
        assert!(r.applied.is_empty() || r.applied == all);
    }
    assert_eq!(
        stores[1].schema_version().await.unwrap(),
        PostgresStore::SCHEMA_VERSION
    );
    // Again: nothing to do.
    let again = stores[2].migrate().await.unwrap();
    assert_eq!(again.found, PostgresStore::SCHEMA_VERSION);
    assert!(again.applied.is_empty());
    drop(stores);
    db.drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let db = test_database().await;
    let store = store_on(&db).await;
    let client = store.client().await.unwrap();
    client
        .execute("UPDATE zerotouch_schema SET version = 99", &[])
        .await
        .unwrap();
    drop(client);
    match store.migrate().await {
        Err(Error::SchemaTooNew {
            found: 99,
            supported,
        }) => assert_eq!(supported, PostgresStore::SCHEMA_VERSION),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert_eq!(store.schema_version().await.unwrap(), 99);
    drop(store);
    db.drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_3_hashes_stored_claim_codes() {
    let db = test_database().await;
    let store = connect(&db).await;
    // A database left at version 2 with a plain label code.
    {
        let mut client = store.client().await.unwrap();
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(
            "CREATE TABLE zerotouch_schema (id INT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL);
             INSERT INTO zerotouch_schema VALUES (1, 2);",
        )
        .await
        .unwrap();
        for m in &MIGRATIONS[..2] {
            let Migration::Sql(sql) = m else {
                panic!("the first migrations are plain SQL")
            };
            tx.batch_execute(sql).await.unwrap();
        }
        tx.batch_execute(
            "INSERT INTO tenants (name, settings, created_at, updated_at) VALUES ('t1', '{}', 1, 1);
             INSERT INTO devices (mac, vendor, tenant_id, claim_code, settings, claimed_at, updated_at)
             SELECT '7c2f80e0d605', 'gigaset', id, 'AB12', '{}', 1, 1 FROM tenants;
             INSERT INTO tenants (name, settings, created_at, updated_at)
             VALUES ('t2', '{\"phone_auth\":\"mtls\"}', 1, 1);",
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let report = store.migrate().await.unwrap();
    assert_eq!(report.found, 2);
    assert_eq!(
        report.applied,
        (3..=PostgresStore::SCHEMA_VERSION).collect::<Vec<_>>()
    );
    // Migration 4: the `mtls` mode, which never did anything, is `enrolment`.
    let tenants = store.tenants().await.unwrap();
    assert!(tenants
        .iter()
        .all(|t| t.settings.phone_auth == crate::domain::PhoneAuth::Enrolment));
    let mac = Mac::parse("7c2f80e0d605").unwrap();
    let device = store.device(mac).await.unwrap().unwrap();
    assert!(device
        .claim_secret
        .unwrap()
        .matches(mac, &ClaimCode::parse("ab12").unwrap()));
    assert!(device.enrol_until.is_some_and(|u| u > now_millis()));
    drop(store);
    db.drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_on_one_node_wake_the_others() {
    let db = test_database().await;
    let (one, two) = (store_on(&db).await, store_on(&db).await);
    with_tenant(&one).await;
    let wake = Arc::new(Notify::new());
    let stop = CancellationToken::new();
    let task = two.listen(wake.clone(), stop.clone());
    woken(&wake, "LISTEN established").await;
    assert_eq!(two.reconnects(), 0);
    one.claim(claim_request("805ec017de13"), &Actor::cli())
        .await
        .unwrap();
    woken(&wake, "a claim on another node").await;
    until("the notification is counted", || two.notifications() >= 1).await;
    // A refused claim commits no change and notifies nobody.
    let before = two.notifications();
    one.claim(claim_request("805ec017de13"), &Actor::cli())
        .await
        .unwrap();
    one.create_partner("p", &Actor::cli()).await.unwrap();
    one.release(Mac::parse("805ec017de13").unwrap(), &Actor::cli())
        .await
        .unwrap();
    woken(&wake, "a release").await;
    until("the release's notification", || {
        two.notifications() > before
    })
    .await;
    assert_eq!(two.notifications(), before + 1);
    stop.cancel();
    task.await.unwrap();
    drop((one, two));
    db.drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_listen_connection_reconnects_and_wakes() {
    let db = test_database().await;
    let store = store_on(&db).await;
    with_tenant(&store).await;
    let wake = Arc::new(Notify::new());
    let stop = CancellationToken::new();
    let task = store.listen(wake.clone(), stop.clone());
    woken(&wake, "LISTEN established").await;
    let admin = db.admin().await.unwrap();
    for round in 1..=2u64 {
        let killed = admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND query LIKE 'LISTEN%'",
                &[&db.name],
            )
            .await
            .unwrap();
        assert_eq!(killed, 1);
        // Woken again once it listens again, to catch up on what it may have missed.
        woken(&wake, "LISTEN re-established").await;
        until("the reconnect is counted", || store.reconnects() == round).await;
        assert!(store.is_up());
    }
    // And it still hears commits.
    store
        .claim(claim_request("805ec017de13"), &Actor::cli())
        .await
        .unwrap();
    woken(&wake, "a claim after reconnecting").await;
    stop.cancel();
    task.await.unwrap();
    drop(store);
    db.drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_fails_fast_as_unavailable_and_recovers() {
    let db = test_database().await;
    let store = store_on(&db).await;
    with_tenant(&store).await;
    assert!(store.is_up());
    let admin = db.admin().await.unwrap();
    let block = format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", db.name);
    admin.batch_execute(&block).await.unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&db.name],
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut failures = 0;
    // Pooled connections may still look open for a moment: within a few operations every
    // one of them fails, and none hangs.
    for _ in 0..20 {
        match store.tenants().await {
            Err(Error::Unavailable(_)) => failures += 1,
            Ok(_) => panic!("the database refuses connections"),
            Err(other) => panic!("expected Unavailable, got {other:?}"),
        }
    }
    assert_eq!(failures, 20);
    assert!(!store.is_up());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failing took {:?}",
        started.elapsed()
    );
    match store
        .claim(claim_request("805ec017de13"), &Actor::cli())
        .await
    {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let unblock = format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", db.name);
    admin.batch_execute(&unblock).await.unwrap();
    assert_eq!(store.tenants().await.unwrap().len(), 1);
    assert!(store.is_up());
    drop(store);
    db.drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_unavailable_quickly() {
    let started = Instant::now();
    match PostgresStore::connect(
        "postgres://postgres@127.0.0.1:1/postgres",
        PostgresOptions::default(),
    )
    .await
    {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {:?}", other.map(|_| ())),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    match PostgresStore::connect("not a url", PostgresOptions::default()).await {
        Err(Error::Open { .. }) => {}
        other => panic!("expected Open, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hydration_pages_scan_the_primary_key() {
    let db = test_database().await;
    let store = store_on(&db).await;
    let client = store.client().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO tenants (name, settings, created_at, updated_at) VALUES ('t1', '{}', 1, 1);
             INSERT INTO devices (mac, vendor, tenant_id, settings, claimed_at, updated_at)
             SELECT lpad(to_hex(i), 12, '0'), 'yealink', (SELECT id FROM tenants), '{}', 1, 1
             FROM generate_series(1, 50000) AS i;
             ANALYZE devices;",
        )
        .await
        .unwrap();
    // Both the plans PostgreSQL picks for a prepared statement: custom and generic.
    for mode in ["force_custom_plan", "force_generic_plan"] {
        client
            .batch_execute(&format!("SET plan_cache_mode = {mode}"))
            .await
            .unwrap();
        let sql = format!(
            "EXPLAIN SELECT {DEVICE_COLUMNS} FROM devices WHERE mac > $1 ORDER BY mac LIMIT $2"
        );
        let plan: Vec<String> = client
            .query(&sql, &[&"", &20_000i64])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Scan using devices_pkey"),
            "{mode}:\n{plan}"
        );
        assert!(!plan.contains("Sort"), "{mode}:\n{plan}");
    }
    drop(client);
    let page = store.devices_page(None, 20_000).await.unwrap();
    assert_eq!(page.len(), 20_000);
    let next = store
        .devices_page(Some(page[19_999].mac), 20_000)
        .await
        .unwrap();
    assert_eq!(next[0].mac.to_string(), format!("{:012x}", 20_001));
    drop(store);
    db.drop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_observer_sees_every_operation() {
    let db = test_database().await;
    let mut store = store_on(&db).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let (s, c) = (seen.clone(), calls.clone());
    store.set_observer(Arc::new(move |op, took| {
        assert!(took < Duration::from_secs(30));
        c.fetch_add(1, Ordering::Relaxed);
        s.lock().unwrap().push(op);
    }));
    with_tenant(&store).await;
    store
        .claim(claim_request("805ec017de13"), &Actor::cli())
        .await
        .unwrap();
    store.devices_page(None, 10).await.unwrap();
    store
        .import(ImportBatch {
            tenants: vec![],
            devices: vec![],
            actor: Actor::cli(),
        })
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["create_tenant", "claim", "devices_page", "import"]
    );
    assert_eq!(calls.load(Ordering::Relaxed), 4);
    drop(store);
    db.drop().await.unwrap();
}

#[tokio::test]
async fn verify_full_checks_the_host_name_and_verify_ca_only_the_chain() {
    let db = test_database().await;
    // The cluster's certificate names 127.0.0.1 and localhost: reach the same address under
    // a name the certificate does not carry.
    let renamed = db
        .url_with("hostaddr=127.0.0.1")
        .replacen("@127.0.0.1:", "@db.invalid:", 1);
    assert!(renamed.contains("@db.invalid:"), "{renamed}");

    let full = PostgresStore::connect(&renamed, PostgresOptions::default()).await;
    let Err(e) = full else {
        panic!("verify-full accepted a certificate for another name")
    };
    assert!(
        e.to_string().contains("not valid for name \"db.invalid\""),
        "{e}"
    );

    let ca = PostgresStore::connect(
        &format!("{renamed}&sslmode=verify-ca"),
        PostgresOptions::default(),
    )
    .await
    .expect("verify-ca checks the chain only");
    assert_eq!(ca.ssl_mode(), super::SslMode::VerifyCa);
    db.drop().await.unwrap();
}

#[tokio::test]
async fn the_test_cluster_refuses_cleartext() {
    // Every PostgreSQL test connects with TLS because the cluster lets nothing else in:
    // sslmode=disable is turned away by the server, not by us.
    let db = test_database().await;
    let Err(e) = PostgresStore::connect(
        // The last sslmode in the URL wins, as in libpq.
        &db.url_with("sslmode=disable"),
        PostgresOptions::default(),
    )
    .await
    else {
        panic!("a cleartext connection was accepted")
    };
    assert!(e.to_string().contains("no encryption"), "{e}");
    db.drop().await.unwrap();
}

#[tokio::test]
async fn a_root_certificate_makes_require_check_the_chain_as_libpq_does() {
    let db = test_database().await;
    let dir = tempfile::tempdir().unwrap();
    let stranger = rcgen::generate_simple_self_signed(vec!["stranger.example".into()]).unwrap();
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, stranger.cert.pem()).unwrap();
    for mode in ["prefer", "require"] {
        let url = db.url_with(&format!("sslmode={mode}&sslrootcert={}", wrong.display()));
        let Err(e) = PostgresStore::connect(&url, PostgresOptions::default()).await else {
            panic!("{mode} with a root certificate accepted a server it did not sign")
        };
        assert!(e.to_string().contains("UnknownIssuer"), "{mode}: {e}");
    }
    // Without one, require encrypts and checks nothing: tests/it/postgres_tls.rs.
    db.drop().await.unwrap();
}
