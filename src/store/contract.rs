//! The store contract: one suite, written once, run against every backend.
//!
//! Owns what any [`Store`] must do as seen through the trait: per-row import outcomes, the claim
//! rules, partner scoping, tenants, tokens, customers, search, sightings, the change sequence,
//! the audit log, credentials, and what must hold when two nodes write at once. Each contract
//! function takes [`Nodes`], two handles on one fresh database (two pools for PostgreSQL, two
//! connections sets on one file for SQLite), and is run by one test per backend. Knows nothing
//! of a backend's SQL or schema.
//!
//! The PostgreSQL tests need a server: `ZEROTOUCH_TEST_DATABASE_URL` (a superuser URL); each test
//! creates its own database and drops it. `.ci/postgres <command>` provides one. Without the
//! variable they fail, never skip.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::Barrier;

use super::postgres::{PostgresOptions, PostgresStore};
use super::sqlite::SqliteStore;
use super::*;
use crate::domain::{
    ClaimCode, DeviceSettings, Ha1, Host, LineAccount, Mac, PartnerId, PhoneCredentials, Secret,
    TenantName, TenantSettings, Vendor,
};

/// Two handles on one fresh database, like two nodes.
pub(crate) struct Nodes {
    pub(crate) one: Arc<dyn Store>,
    pub(crate) two: Arc<dyn Store>,
}

// ---------------------------------------------------------------------------------------------
// Backends.

/// Runs a contract function against a fresh SQLite file.
async fn on_sqlite<F, Fut>(contract: F)
where
    F: FnOnce(Nodes) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("zerotouch.db");
    let one = SqliteStore::open(&path).expect("open sqlite");
    let two = SqliteStore::open(&path).expect("open sqlite twice");
    contract(Nodes {
        one: Arc::new(one),
        two: Arc::new(two),
    })
    .await;
}

/// Runs a contract function against a fresh PostgreSQL database, dropped afterwards (also when
/// the contract fails).
async fn on_postgres<F, Fut>(contract: F)
where
    F: FnOnce(Nodes) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = TestDatabase::create().await;
    let nodes = Nodes {
        one: Arc::new(db.store().await),
        two: Arc::new(db.store().await),
    };
    let outcome = tokio::spawn(contract(nodes)).await;
    db.drop().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("contract task failed: {e}"),
        }
    }
}

/// The superuser URL of the test cluster, or a failure that says how to get one.
pub(crate) fn test_server_url() -> String {
    match std::env::var("ZEROTOUCH_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "ZEROTOUCH_TEST_DATABASE_URL is not set: the PostgreSQL store tests need a server. \
             Run them through .ci/postgres, which starts a throwaway cluster, e.g. \
             `.ci/postgres cargo nextest run -E 'test(/store::/)' --lib`"
        ),
    }
}

/// `url` with its database replaced by `name`.
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").expect("a postgres:// URL");
    let authority = rest.split('/').next().unwrap_or(rest);
    match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// A uniquely named database in the test cluster.
pub(crate) struct TestDatabase {
    server: String,
    pub(crate) name: String,
    pub(crate) url: String,
}

impl TestDatabase {
    /// Creates `zt_test_<random>`.
    pub(crate) async fn create() -> Self {
        let server = test_server_url();
        let name = format!("zt_test_{}", random_suffix());
        admin(&server)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let url = with_database(&server, &name);
        Self { server, name, url }
    }

    /// A migrated store on it: one node.
    pub(crate) async fn store(&self) -> PostgresStore {
        let store = PostgresStore::connect(
            &self.url,
            PostgresOptions {
                max_connections: 8,
                ..PostgresOptions::default()
            },
        )
        .await
        .expect("connect to the test database");
        store.migrate().await.expect("migrate");
        store
    }

    /// A superuser connection to the cluster (not to this database).
    pub(crate) async fn admin(&self) -> tokio_postgres::Client {
        admin(&self.server).await
    }

    /// Drops it, closing whatever is still connected.
    pub(crate) async fn drop(self) {
        let _ = admin(&self.server)
            .await
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL server: {e}"));
    tokio::spawn(connection);
    client
}

/// One test per backend for each contract function.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::on_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::on_postgres(super::$name).await;
                }
            )*
        }
    };
}

contract!(
    import_reports_every_row_and_is_idempotent,
    claim_rules,
    partner_scoping,
    move_and_release,
    tenant_lifecycle,
    partners_and_tokens,
    customers,
    search_filters,
    sightings,
    change_sequence,
    audit_log,
    devices_page_walks_in_mac_order,
    credentials,
    server_secret,
    concurrent_claims_have_one_winner,
    change_feed_misses_nothing_under_concurrent_writers,
    tenant_delete_races_claims_consistently,
    concurrent_enrolment_binds_once,
);

// ---------------------------------------------------------------------------------------------
// Fixtures.

fn mac(s: &str) -> Mac {
    Mac::parse(s).expect("mac")
}

fn name(s: &str) -> TenantName {
    TenantName::parse(s).expect("tenant name")
}

fn settings(server: &str) -> TenantSettings {
    TenantSettings {
        sip_server: Some(Host::parse(server).expect("host")),
        ..TenantSettings::default()
    }
}

fn line_settings(user: &str) -> DeviceSettings {
    DeviceSettings {
        display_name: Some(format!("Desk {user}")),
        lines: vec![LineAccount {
            user: user.into(),
            auth_user: None,
            password: Secret::new("s3cret"),
            display_name: None,
        }],
    }
}

fn source() -> IpAddr {
    "192.0.2.7".parse().expect("ip")
}

fn partner_actor(p: &PartnerRecord) -> Actor {
    Actor {
        name: format!("partner:{}:{}", p.id, p.name),
        partner: Some(p.id),
        source: Some(source()),
    }
}

fn code(s: &str) -> ClaimCode {
    ClaimCode::parse(s).expect("claim code")
}

fn request(m: &str, tenant: &str) -> ClaimRequest {
    let mac = mac(m);
    ClaimRequest {
        mac,
        vendor: vendor_of(mac),
        claim_code: None,
        tenant: name(tenant),
        settings: DeviceSettings::default(),
        enrol_until: None,
    }
}

fn gigaset(m: &str, tenant: &str, label: Option<&str>) -> ClaimRequest {
    ClaimRequest {
        claim_code: label.map(code),
        ..request(m, tenant)
    }
}

/// Vendors by the test MACs' prefixes (the store trusts what it is told).
fn vendor_of(mac: Mac) -> Vendor {
    match mac.to_string().get(..6) {
        Some("000413") => Vendor::Snom,
        Some("7c2f80") => Vendor::Gigaset,
        _ => Vendor::Yealink,
    }
}

fn import_device(row: usize, m: &str, tenant: &str) -> ImportDevice {
    let r = request(m, tenant);
    ImportDevice {
        row,
        mac: r.mac,
        vendor: r.vendor,
        claim_code: None,
        tenant: r.tenant,
        settings: DeviceSettings::default(),
        enrol_until: None,
    }
}

fn sighting(m: &str, at: Millis, file: &'static str) -> Sighting {
    Sighting {
        mac: mac(m),
        at,
        source: source(),
        user_agent: "Yealink SIP-T46S 66.86.0.15".into(),
        model: Some("T46S".into()),
        firmware: Some("66.86.0.15".into()),
        file,
        outcome: "served",
    }
}

async fn partner(store: &dyn Store, n: &str) -> PartnerRecord {
    store
        .create_partner(n, &Actor::cli())
        .await
        .unwrap()
        .expect("new partner")
}

async fn tenant(store: &dyn Store, n: &str, actor: &Actor) -> TenantRecord {
    match store
        .create_tenant(name(n), None, settings("pbx.example"), actor)
        .await
        .unwrap()
    {
        TenantCreated::Created(t) => t,
        other => panic!("creating {n}: {other:?}"),
    }
}

async fn claimed(store: &dyn Store, req: ClaimRequest, actor: &Actor) -> DeviceRecord {
    match store.claim(req, actor).await.unwrap() {
        ClaimOutcome::Created(d) => d,
        other => panic!("expected a new claim, got {other:?}"),
    }
}

fn all_devices() -> DeviceQuery {
    DeviceQuery {
        limit: 1_000,
        ..DeviceQuery::default()
    }
}

fn all_audit() -> AuditQuery {
    AuditQuery {
        limit: 1_000,
        ..AuditQuery::default()
    }
}

async fn changes_after(store: &dyn Store, seq: i64) -> Vec<Change> {
    store
        .changes_since(seq, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.change)
        .collect()
}

fn macs(views: &[DeviceView]) -> Vec<String> {
    views.iter().map(|v| v.record.mac.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// The contract.

/// Every row gets an outcome; accepted rows are committed; importing again is harmless.
pub(crate) async fn import_reports_every_row_and_is_idempotent(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let mut g_ok = import_device(4, "7c2f80e0d605", "sales");
    g_ok.claim_code = Some(code("AB12"));
    let mut g_bad = import_device(5, "7c2f80e0d605", "sales");
    g_bad.claim_code = Some(code("ZZ99"));
    let batch = ImportBatch {
        tenants: vec![
            (0, name("sales"), settings("sales.cloud.example")),
            (1, name("support"), settings("support.cloud.example")),
        ],
        devices: vec![
            import_device(0, "805ec017de13", "sales"),
            import_device(1, "805ec017de13", "support"),
            import_device(2, "805ec017de14", "nowhere"),
            import_device(3, "805ec017de13", "sales"),
            g_ok,
            g_bad,
        ],
        actor: Actor::cli(),
    };
    let first = store.import(batch.clone()).await.unwrap();
    assert_eq!(
        first.tenants,
        vec![(0, RowOutcome::Created), (1, RowOutcome::Created)]
    );
    assert_eq!(
        first.devices,
        vec![
            (0, RowOutcome::Created),
            (1, RowOutcome::AlreadyInUse),
            (2, RowOutcome::UnknownTenant),
            (3, RowOutcome::Updated),
            (4, RowOutcome::Created),
            (5, RowOutcome::ClaimCodeMismatch),
        ]
    );
    let sales = store
        .tenant_by_name(None, &name("sales"))
        .await
        .unwrap()
        .expect("sales");
    let support = store
        .tenant_by_name(None, &name("support"))
        .await
        .unwrap()
        .expect("support");
    assert_eq!(first.applied_tenants, vec![sales.clone(), support.clone()]);
    assert_eq!(sales.partner, None);
    assert_eq!(sales.settings, settings("sales.cloud.example"));
    let applied: Vec<(String, TenantId)> = first
        .applied_devices
        .iter()
        .map(|d| (d.mac.to_string(), d.tenant))
        .collect();
    assert_eq!(
        applied,
        vec![
            ("805ec017de13".into(), sales.id),
            ("805ec017de13".into(), sales.id),
            ("7c2f80e0d605".into(), sales.id),
        ]
    );
    assert!(first.applied_devices[2].claim_secret.is_some());
    assert_eq!(
        store.device(mac("805ec017de13")).await.unwrap().as_ref(),
        Some(&first.applied_devices[0])
    );
    assert_eq!(store.device(mac("805ec017de14")).await.unwrap(), None);
    assert_eq!(store.devices_page(None, 100).await.unwrap().len(), 2);

    // The same file again: tenants are updated, claims by the same tenant are updated.
    let before = store.latest_change().await.unwrap();
    let second = store.import(batch.clone()).await.unwrap();
    assert_eq!(
        second.tenants,
        vec![(0, RowOutcome::Updated), (1, RowOutcome::Updated)]
    );
    assert_eq!(
        second.devices,
        vec![
            (0, RowOutcome::Updated),
            (1, RowOutcome::AlreadyInUse),
            (2, RowOutcome::UnknownTenant),
            (3, RowOutcome::Updated),
            (4, RowOutcome::Updated),
            (5, RowOutcome::ClaimCodeMismatch),
        ]
    );
    assert_eq!(second.applied_tenants, vec![sales.clone(), support]);
    assert_eq!(second.applied_devices.len(), 3);
    assert_eq!(store.tenants().await.unwrap().len(), 2);
    assert_eq!(store.devices_page(None, 100).await.unwrap().len(), 2);
    // Unchanged devices produce no device change; updated tenants do.
    let changes = changes_after(store, before).await;
    assert!(changes.contains(&Change::Tenant(sales.id)));
    assert!(!changes.iter().any(|c| matches!(c, Change::Device(_))));

    // New per-device settings are applied to a device already claimed by the same tenant.
    let mut refreshed = import_device(0, "805ec017de13", "sales");
    refreshed.settings = line_settings("1001");
    let third = store
        .import(ImportBatch {
            tenants: vec![],
            devices: vec![refreshed],
            actor: Actor::cli(),
        })
        .await
        .unwrap();
    assert_eq!(third.devices, vec![(0, RowOutcome::Updated)]);
    assert_eq!(third.applied_devices[0].settings, line_settings("1001"));
    assert_eq!(
        store
            .device(mac("805ec017de13"))
            .await
            .unwrap()
            .expect("claimed")
            .settings,
        line_settings("1001")
    );

    // A partner's import: its new tenants are its own; other owners' names are taken and their
    // tenants are unknown to it.
    let acme = partner(store, "acme").await;
    let as_acme = partner_actor(&acme);
    let fourth = store
        .import(ImportBatch {
            tenants: vec![
                (0, name("acme-hq"), settings("hq.acme.example")),
                (1, name("sales"), settings("evil.example")),
            ],
            devices: vec![
                import_device(0, "805ec0000001", "acme-hq"),
                import_device(1, "805ec0000002", "sales"),
            ],
            actor: as_acme.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        fourth.tenants,
        vec![(0, RowOutcome::Created), (1, RowOutcome::NameTaken)]
    );
    assert_eq!(
        fourth.devices,
        vec![(0, RowOutcome::Created), (1, RowOutcome::UnknownTenant)]
    );
    assert_eq!(fourth.applied_tenants.len(), 1);
    assert_eq!(fourth.applied_tenants[0].partner, Some(acme.id));
    assert_eq!(
        store
            .tenant_by_name(None, &name("sales"))
            .await
            .unwrap()
            .expect("sales")
            .settings,
        settings("sales.cloud.example")
    );
    // The operator may update anyone's tenant; the owner stays.
    let fifth = store
        .import(ImportBatch {
            tenants: vec![(0, name("acme-hq"), settings("hq2.acme.example"))],
            devices: vec![],
            actor: Actor::cli(),
        })
        .await
        .unwrap();
    assert_eq!(fifth.tenants, vec![(0, RowOutcome::Updated)]);
    assert_eq!(fifth.applied_tenants[0].partner, Some(acme.id));
    assert_eq!(
        fifth.applied_tenants[0].settings,
        settings("hq2.acme.example")
    );
}

/// Created, unchanged for the same tenant, already in use for another, unknown or foreign
/// tenant, Gigaset label codes.
pub(crate) async fn claim_rules(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p1 = partner(store, "one").await;
    let p2 = partner(store, "two").await;
    let (a1, a2) = (partner_actor(&p1), partner_actor(&p2));
    let t1 = tenant(store, "t1", &a1).await;
    tenant(store, "t2", &a1).await;
    let t3 = tenant(store, "t3", &a2).await;

    let mut req = request("805ec017de13", "t1");
    req.settings = line_settings("1001");
    req.enrol_until = Some(4_102_444_800_000);
    let created = claimed(store, req.clone(), &a1).await;
    assert_eq!(created.mac, mac("805ec017de13"));
    assert_eq!(created.vendor, Vendor::Yealink);
    assert_eq!(created.tenant, t1.id);
    assert_eq!(created.settings, line_settings("1001"));
    assert_eq!(created.claim_secret, None);
    assert_eq!(created.credentials, None);
    assert_eq!(created.enrol_until, Some(4_102_444_800_000));
    assert_eq!(
        store.device(created.mac).await.unwrap().as_ref(),
        Some(&created)
    );
    // Nodes share one truth.
    assert_eq!(
        nodes.two.device(created.mac).await.unwrap().as_ref(),
        Some(&created)
    );

    // The same tenant again: unchanged, whatever settings the repeat carries.
    let mut again = req.clone();
    again.settings = DeviceSettings::default();
    assert_eq!(
        store.claim(again, &a1).await.unwrap(),
        ClaimOutcome::Unchanged(created.clone())
    );
    // Another tenant, of the same partner or another: already in use.
    assert_eq!(
        store
            .claim(request("805ec017de13", "t2"), &a1)
            .await
            .unwrap(),
        ClaimOutcome::AlreadyInUse
    );
    assert_eq!(
        nodes
            .two
            .claim(request("805ec017de13", "t3"), &a2)
            .await
            .unwrap(),
        ClaimOutcome::AlreadyInUse
    );
    assert_eq!(
        store
            .claim(request("805ec017de13", "t3"), &Actor::cli())
            .await
            .unwrap(),
        ClaimOutcome::AlreadyInUse
    );
    // Unknown tenant, and another partner's tenant, look the same.
    assert_eq!(
        store
            .claim(request("805ec017de14", "nowhere"), &a1)
            .await
            .unwrap(),
        ClaimOutcome::UnknownTenant
    );
    assert_eq!(
        store
            .claim(request("805ec017de14", "t3"), &a1)
            .await
            .unwrap(),
        ClaimOutcome::UnknownTenant
    );
    assert_eq!(store.device(mac("805ec017de14")).await.unwrap(), None);
    // The operator may claim for any tenant.
    let by_operator = claimed(store, request("805ec017de14", "t3"), &Actor::cli()).await;
    assert_eq!(by_operator.tenant, t3.id);

    // Gigaset: the label code, case-insensitive; another code or none is a mismatch; the
    // tenant check comes first.
    let g = claimed(store, gigaset("7c2f80e0d605", "t1", Some("AB12")), &a1).await;
    assert_eq!(g.vendor, Vendor::Gigaset);
    let secret = g.claim_secret.clone().expect("claim secret");
    assert!(secret.matches(g.mac, &code("ab12")));
    assert_eq!(
        store
            .claim(gigaset("7c2f80e0d605", "t1", Some("ab12")), &a1)
            .await
            .unwrap(),
        ClaimOutcome::Unchanged(g.clone())
    );
    assert_eq!(
        store
            .claim(gigaset("7c2f80e0d605", "t1", Some("ZZ99")), &a1)
            .await
            .unwrap(),
        ClaimOutcome::ClaimCodeMismatch
    );
    assert_eq!(
        store
            .claim(gigaset("7c2f80e0d605", "t1", None), &a1)
            .await
            .unwrap(),
        ClaimOutcome::ClaimCodeMismatch
    );
    assert_eq!(
        store
            .claim(gigaset("7c2f80e0d605", "t2", Some("ZZ99")), &a1)
            .await
            .unwrap(),
        ClaimOutcome::AlreadyInUse
    );
    // A device claimed without a code cannot be re-claimed with one.
    assert_eq!(
        store
            .claim(gigaset("805ec017de13", "t1", Some("AB12")), &a1)
            .await
            .unwrap(),
        ClaimOutcome::ClaimCodeMismatch
    );
    assert_eq!(store.devices_page(None, 100).await.unwrap().len(), 3);
}

/// A partner never sees or touches another partner's tenants, devices, customers or tokens.
pub(crate) async fn partner_scoping(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p1 = partner(store, "one").await;
    let p2 = partner(store, "two").await;
    let (a1, a2) = (partner_actor(&p1), partner_actor(&p2));
    let c1 = store
        .create_customer(
            p1.id,
            CustomerFields {
                company: "Initech".into(),
                ..CustomerFields::default()
            },
            &a1,
        )
        .await
        .unwrap();
    let t1 = tenant(store, "t1", &a1).await;
    tenant(store, "t2", &a1).await;
    let t3 = tenant(store, "t3", &a2).await;
    let operators = tenant(store, "ops", &Actor::cli()).await;
    assert_eq!(operators.partner, None);
    let d = claimed(store, request("805ec017de13", "t1"), &a1).await;
    let tok1 = store
        .create_token(p1.id, "key-one", b"hash-one", &Actor::cli())
        .await
        .unwrap()
        .expect("token");

    // Tenants.
    let names = |ts: Vec<TenantRecord>| -> Vec<String> {
        ts.into_iter().map(|t| t.name.to_string()).collect()
    };
    assert_eq!(
        names(store.tenants_of(Some(p1.id)).await.unwrap()),
        ["t1", "t2"]
    );
    assert_eq!(names(store.tenants_of(Some(p2.id)).await.unwrap()), ["t3"]);
    assert_eq!(
        names(store.tenants_of(None).await.unwrap()),
        ["ops", "t1", "t2", "t3"]
    );
    assert_eq!(
        names(store.tenants().await.unwrap()),
        ["ops", "t1", "t2", "t3"]
    );
    assert_eq!(
        store
            .tenant_by_name(Some(p2.id), &name("t1"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .tenant_by_name(Some(p2.id), &name("ops"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .tenant_by_name(Some(p1.id), &name("t1"))
            .await
            .unwrap(),
        Some(t1.clone())
    );
    assert_eq!(
        store.tenant_by_name(None, &name("t1")).await.unwrap(),
        Some(t1.clone())
    );
    assert_eq!(
        store
            .update_tenant(&name("t1"), None, settings("evil.example"), &a2)
            .await
            .unwrap(),
        TenantChanged::NotFound
    );
    assert_eq!(
        store.delete_tenant(&name("t2"), &a2).await.unwrap(),
        TenantChanged::NotFound
    );
    assert_eq!(
        store
            .update_tenant(&name("t3"), Some(c1.id), settings("pbx.example"), &a2)
            .await
            .unwrap(),
        TenantChanged::UnknownCustomer
    );
    assert_eq!(
        store
            .create_tenant(name("t4"), Some(c1.id), settings("pbx.example"), &a2)
            .await
            .unwrap(),
        TenantCreated::UnknownCustomer
    );
    assert_eq!(store.tenant(t1.id).await.unwrap(), Some(t1.clone()));
    assert!(store
        .tenant_by_name(None, &name("t2"))
        .await
        .unwrap()
        .is_some());

    // Devices.
    assert_eq!(store.device_view(Some(p2.id), d.mac).await.unwrap(), None);
    assert_eq!(
        store
            .device_view(Some(p1.id), d.mac)
            .await
            .unwrap()
            .map(|v| v.record),
        Some(d.clone())
    );
    assert!(store.device_view(None, d.mac).await.unwrap().is_some());
    assert!(store
        .search_devices(Some(p2.id), all_devices())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        macs(
            &store
                .search_devices(Some(p1.id), all_devices())
                .await
                .unwrap()
        ),
        ["805ec017de13"]
    );
    let move_to = |t: &str| DeviceUpdate {
        tenant: Some(name(t)),
        settings: None,
    };
    assert_eq!(
        store
            .update_device(d.mac, move_to("t3"), &a2)
            .await
            .unwrap(),
        UpdateOutcome::NotFound
    );
    assert_eq!(
        store
            .update_device(d.mac, move_to("t3"), &a1)
            .await
            .unwrap(),
        UpdateOutcome::UnknownTenant
    );
    assert_eq!(
        store
            .update_device(
                d.mac,
                DeviceUpdate {
                    tenant: None,
                    settings: Some(line_settings("666")),
                },
                &a2
            )
            .await
            .unwrap(),
        UpdateOutcome::NotFound
    );
    assert!(!store.release(d.mac, &a2).await.unwrap());
    assert_eq!(store.open_enrolment(d.mac, 1, &a2).await.unwrap(), None);
    assert_eq!(
        store.request_rotation(d.mac, &a2).await.unwrap(),
        RotationOutcome::NotFound
    );
    assert_eq!(store.device(d.mac).await.unwrap(), Some(d.clone()));

    // Customers.
    assert!(store.customers(p2.id).await.unwrap().is_empty());
    assert_eq!(store.customers(p1.id).await.unwrap(), vec![c1.clone()]);
    assert_eq!(store.customer(p2.id, c1.id).await.unwrap(), None);
    assert_eq!(
        store
            .update_customer(
                p2.id,
                c1.id,
                CustomerFields {
                    company: "Evil".into(),
                    ..CustomerFields::default()
                },
                &a2
            )
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.customer(p1.id, c1.id).await.unwrap(), Some(c1));

    // Tokens.
    assert!(store.tokens(p2.id).await.unwrap().is_empty());
    assert!(!store.revoke_token(p2.id, tok1.id, &a2).await.unwrap());
    assert_eq!(
        store
            .token_by_key("key-one")
            .await
            .unwrap()
            .and_then(|t| t.revoked_at),
        None
    );

    // The operator is not scoped.
    assert_eq!(
        store
            .update_device(d.mac, move_to("t3"), &Actor::cli())
            .await
            .unwrap(),
        UpdateOutcome::Updated(DeviceRecord {
            tenant: t3.id,
            ..d.clone()
        })
    );
    assert!(store.release(d.mac, &Actor::cli()).await.unwrap());
    assert_eq!(
        store
            .delete_tenant(&name("t2"), &Actor::cli())
            .await
            .unwrap(),
        TenantChanged::Done(None)
    );
}

/// Moving a device to another tenant, changing its settings, releasing it.
pub(crate) async fn move_and_release(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p1 = partner(store, "one").await;
    let p2 = partner(store, "two").await;
    let (a1, a2) = (partner_actor(&p1), partner_actor(&p2));
    tenant(store, "t1", &a1).await;
    let t2 = tenant(store, "t2", &a1).await;
    let t3 = tenant(store, "t3", &a2).await;
    let d = claimed(store, request("805ec017de13", "t1"), &a1).await;

    let moved = store
        .update_device(
            d.mac,
            DeviceUpdate {
                tenant: Some(name("t2")),
                settings: None,
            },
            &a1,
        )
        .await
        .unwrap();
    let expected = DeviceRecord {
        tenant: t2.id,
        ..d.clone()
    };
    assert_eq!(moved, UpdateOutcome::Updated(expected.clone()));
    assert_eq!(store.device(d.mac).await.unwrap(), Some(expected.clone()));
    let view = store
        .device_view(Some(p1.id), d.mac)
        .await
        .unwrap()
        .expect("view");
    assert_eq!(view.tenant_name, name("t2"));

    let changed = store
        .update_device(
            d.mac,
            DeviceUpdate {
                tenant: None,
                settings: Some(line_settings("1002")),
            },
            &a1,
        )
        .await
        .unwrap();
    let expected = DeviceRecord {
        settings: line_settings("1002"),
        ..expected
    };
    assert_eq!(changed, UpdateOutcome::Updated(expected.clone()));
    assert_eq!(store.device(d.mac).await.unwrap(), Some(expected.clone()));
    // Moving to where it is changes nothing but is fine.
    assert_eq!(
        store
            .update_device(
                d.mac,
                DeviceUpdate {
                    tenant: Some(name("t2")),
                    settings: None,
                },
                &a1,
            )
            .await
            .unwrap(),
        UpdateOutcome::Updated(expected.clone())
    );
    assert_eq!(
        store
            .update_device(
                d.mac,
                DeviceUpdate {
                    tenant: Some(name("nowhere")),
                    settings: None,
                },
                &a1,
            )
            .await
            .unwrap(),
        UpdateOutcome::UnknownTenant
    );
    assert_eq!(
        store
            .update_device(mac("805ec0000099"), DeviceUpdate::default(), &a1)
            .await
            .unwrap(),
        UpdateOutcome::NotFound
    );

    // Release frees the MAC for anyone, and forgets its last-seen status.
    store
        .record_sightings(vec![sighting("805ec017de13", 1_000, "device")])
        .await
        .unwrap();
    assert!(store
        .device_view(None, d.mac)
        .await
        .unwrap()
        .expect("view")
        .status
        .is_some());
    assert!(store.release(d.mac, &a1).await.unwrap());
    assert_eq!(store.device(d.mac).await.unwrap(), None);
    assert_eq!(store.device_view(None, d.mac).await.unwrap(), None);
    assert!(!store.release(d.mac, &a1).await.unwrap());
    assert!(!nodes.two.release(d.mac, &Actor::cli()).await.unwrap());
    let again = claimed(nodes.two.as_ref(), request("805ec017de13", "t3"), &a2).await;
    assert_eq!(again.tenant, t3.id);
    let view = store
        .device_view(Some(p2.id), d.mac)
        .await
        .unwrap()
        .expect("view");
    assert_eq!(view.status, None);
}

/// Creating (names are unique across partners), updating and deleting tenants.
pub(crate) async fn tenant_lifecycle(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p1 = partner(store, "one").await;
    let p2 = partner(store, "two").await;
    let (a1, a2) = (partner_actor(&p1), partner_actor(&p2));
    let c1 = store
        .create_customer(
            p1.id,
            CustomerFields {
                company: "Initech".into(),
                ..CustomerFields::default()
            },
            &a1,
        )
        .await
        .unwrap();

    let created = match store
        .create_tenant(name("sales"), None, settings("sales.example"), &a1)
        .await
        .unwrap()
    {
        TenantCreated::Created(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(created.name, name("sales"));
    assert_eq!(created.partner, Some(p1.id));
    assert_eq!(created.customer, None);
    assert_eq!(created.settings, settings("sales.example"));
    assert_eq!(
        store.tenant(created.id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        nodes.two.tenant(created.id).await.unwrap(),
        Some(created.clone())
    );
    for actor in [&a1, &a2, &Actor::cli()] {
        assert_eq!(
            store
                .create_tenant(name("sales"), None, settings("x.example"), actor)
                .await
                .unwrap(),
            TenantCreated::NameTaken
        );
    }
    assert_eq!(
        store
            .create_tenant(name("support"), Some(999_999), settings("x.example"), &a1)
            .await
            .unwrap(),
        TenantCreated::UnknownCustomer
    );
    match store
        .create_tenant(name("support"), Some(c1.id), settings("x.example"), &a1)
        .await
        .unwrap()
    {
        TenantCreated::Created(t) => assert_eq!(t.customer, Some(c1.id)),
        other => panic!("{other:?}"),
    }

    let mut new_settings = settings("sales2.example");
    new_settings.keepalive_seconds = 45;
    let updated = store
        .update_tenant(&name("sales"), Some(c1.id), new_settings.clone(), &a1)
        .await
        .unwrap();
    let expected = TenantRecord {
        customer: Some(c1.id),
        settings: new_settings.clone(),
        ..created.clone()
    };
    assert_eq!(updated, TenantChanged::Done(Some(expected.clone())));
    assert_eq!(store.tenant(created.id).await.unwrap(), Some(expected));
    assert_eq!(
        store
            .update_tenant(&name("nowhere"), None, new_settings.clone(), &a1)
            .await
            .unwrap(),
        TenantChanged::NotFound
    );
    assert_eq!(
        store
            .update_tenant(&name("sales"), Some(999_999), new_settings, &a1)
            .await
            .unwrap(),
        TenantChanged::UnknownCustomer
    );

    // Refused while devices are claimed by it.
    let d = claimed(store, request("805ec017de13", "sales"), &a1).await;
    assert_eq!(
        store.delete_tenant(&name("sales"), &a1).await.unwrap(),
        TenantChanged::HasDevices
    );
    assert!(store.release(d.mac, &a1).await.unwrap());
    assert_eq!(
        store.delete_tenant(&name("sales"), &a1).await.unwrap(),
        TenantChanged::Done(None)
    );
    assert_eq!(store.tenant(created.id).await.unwrap(), None);
    assert_eq!(
        store.tenant_by_name(None, &name("sales")).await.unwrap(),
        None
    );
    assert_eq!(
        store.delete_tenant(&name("sales"), &a1).await.unwrap(),
        TenantChanged::NotFound
    );
    // The name is free again, for anyone.
    assert!(matches!(
        store
            .create_tenant(name("sales"), None, settings("x.example"), &a2)
            .await
            .unwrap(),
        TenantCreated::Created(_)
    ));
}

/// Partners, and their tokens: create, list, look up by key, revoke.
pub(crate) async fn partners_and_tokens(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let acme = partner(store, "acme").await;
    assert_eq!(acme.name, "acme");
    assert!(acme.created_at > 0);
    assert_eq!(
        store.create_partner("acme", &Actor::cli()).await.unwrap(),
        None
    );
    let zeta = partner(nodes.two.as_ref(), "zeta").await;
    assert_eq!(
        store.partners().await.unwrap(),
        vec![acme.clone(), zeta.clone()]
    );
    assert_eq!(store.partner(acme.id).await.unwrap(), Some(acme.clone()));
    assert_eq!(store.partner(999_999).await.unwrap(), None);
    assert_eq!(
        store.partner_by_name("zeta").await.unwrap(),
        Some(zeta.clone())
    );
    assert_eq!(store.partner_by_name("nope").await.unwrap(), None);

    let t1 = store
        .create_token(acme.id, "k1", &[1, 2, 3], &Actor::cli())
        .await
        .unwrap()
        .expect("token");
    assert_eq!(t1.partner, acme.id);
    assert_eq!(t1.key_id, "k1");
    assert_eq!(t1.secret_hash, vec![1, 2, 3]);
    assert_eq!(t1.revoked_at, None);
    let t2 = store
        .create_token(acme.id, "k2", &[4; 32], &Actor::cli())
        .await
        .unwrap()
        .expect("token");
    assert_eq!(
        store
            .create_token(999_999, "k3", &[5], &Actor::cli())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.tokens(acme.id).await.unwrap(),
        vec![t1.clone(), t2.clone()]
    );
    assert!(store.tokens(zeta.id).await.unwrap().is_empty());
    assert_eq!(store.token_by_key("k1").await.unwrap(), Some(t1.clone()));
    assert_eq!(store.token_by_key("k3").await.unwrap(), None);

    assert!(store
        .revoke_token(acme.id, t1.id, &Actor::cli())
        .await
        .unwrap());
    assert!(!store
        .revoke_token(acme.id, t1.id, &Actor::cli())
        .await
        .unwrap());
    assert!(!store
        .revoke_token(acme.id, 999_999, &Actor::cli())
        .await
        .unwrap());
    let revoked = store
        .token_by_key("k1")
        .await
        .unwrap()
        .expect("still there");
    assert!(revoked.revoked_at.is_some_and(|at| at >= t1.created_at));
    assert_eq!(store.tokens(acme.id).await.unwrap().len(), 2);
    assert_eq!(store.token_by_key("k2").await.unwrap(), Some(t2.clone()));

    let audit = store.audit_log(all_audit()).await.unwrap();
    let entries: Vec<(&str, Option<serde_json::Value>)> = audit
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.detail
                    .as_deref()
                    .map(|d| serde_json::from_str(d).expect("json detail")),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            (
                "partner.create",
                Some(serde_json::json!({"partner": acme.id, "name": "acme"}))
            ),
            (
                "partner.create",
                Some(serde_json::json!({"partner": zeta.id, "name": "zeta"}))
            ),
            (
                "token.create",
                Some(serde_json::json!({"partner": acme.id, "token": t1.id}))
            ),
            (
                "token.create",
                Some(serde_json::json!({"partner": acme.id, "token": t2.id}))
            ),
            (
                "token.revoke",
                Some(serde_json::json!({"partner": acme.id, "token": t1.id}))
            ),
        ]
    );
    assert!(audit.iter().all(|e| e.actor == "cli" && e.source.is_none()));
}

/// A partner's customers: create, list, read, update.
pub(crate) async fn customers(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p = partner(store, "acme").await;
    let actor = partner_actor(&p);
    let fields = CustomerFields {
        company: "Initech".into(),
        contact: Some("Bill".into()),
        address: Some("1 Main St".into()),
        phone: Some("+1 555 0100".into()),
        email: Some("it@initech.example".into()),
    };
    let c = store
        .create_customer(p.id, fields.clone(), &actor)
        .await
        .unwrap();
    assert_eq!(c.partner, p.id);
    assert_eq!(c.fields, fields);
    assert!(c.created_at > 0);
    let c2 = store
        .create_customer(
            p.id,
            CustomerFields {
                company: "Globex".into(),
                ..CustomerFields::default()
            },
            &actor,
        )
        .await
        .unwrap();
    assert_eq!(
        store.customers(p.id).await.unwrap(),
        vec![c.clone(), c2.clone()]
    );
    assert_eq!(store.customer(p.id, c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(store.customer(p.id, 999_999).await.unwrap(), None);

    let new_fields = CustomerFields {
        company: "Initrode".into(),
        ..CustomerFields::default()
    };
    let updated = store
        .update_customer(p.id, c.id, new_fields.clone(), &actor)
        .await
        .unwrap();
    let expected = CustomerRecord {
        fields: new_fields,
        ..c.clone()
    };
    assert_eq!(updated, Some(expected.clone()));
    assert_eq!(
        nodes.two.customer(p.id, c.id).await.unwrap(),
        Some(expected)
    );
    assert_eq!(
        store
            .update_customer(p.id, 999_999, CustomerFields::default(), &actor)
            .await
            .unwrap(),
        None
    );
    let audit = store.audit_log(all_audit()).await.unwrap();
    let actions: Vec<(&str, Option<&str>)> = audit
        .iter()
        .filter(|e| e.action.starts_with("customer."))
        .map(|e| (e.action.as_str(), e.detail.as_deref()))
        .collect();
    let detail = |id: i64| serde_json::json!({"customer": id}).to_string();
    assert_eq!(
        actions,
        vec![
            ("customer.create", Some(detail(c.id).as_str())),
            ("customer.create", Some(detail(c2.id).as_str())),
            ("customer.update", Some(detail(c.id).as_str())),
        ]
    );
}

/// Searching by MAC prefix, tenant, vendor, last-seen window, never seen; paging with `after`.
pub(crate) async fn search_filters(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p1 = partner(store, "one").await;
    let p2 = partner(store, "two").await;
    let (a1, a2) = (partner_actor(&p1), partner_actor(&p2));
    tenant(store, "t1", &a1).await;
    tenant(store, "t2", &a1).await;
    tenant(store, "t3", &a2).await;
    for (m, t, actor) in [
        ("805ec0000003", "t1", &a1),
        ("805ec0000001", "t1", &a1),
        ("805ec0000002", "t1", &a1),
        ("000413000001", "t2", &a1),
        ("7c2f80000001", "t1", &a1),
        ("805ec0100001", "t3", &a2),
    ] {
        let req = if m.starts_with("7c2f80") {
            gigaset(m, t, Some("AB12"))
        } else {
            request(m, t)
        };
        claimed(store, req, actor).await;
    }
    store
        .record_sightings(vec![
            sighting("805ec0000001", 1_000, "device"),
            sighting("805ec0000002", 2_000, "common"),
            sighting("805ec0100001", 1_000, "device"),
        ])
        .await
        .unwrap();
    let q = |f: fn(&mut DeviceQuery)| {
        let mut q = all_devices();
        f(&mut q);
        q
    };
    let search = |partner: Option<PartnerId>, query: DeviceQuery| async move {
        macs(&store.search_devices(partner, query).await.unwrap())
    };

    assert_eq!(
        search(Some(p1.id), all_devices()).await,
        [
            "000413000001",
            "7c2f80000001",
            "805ec0000001",
            "805ec0000002",
            "805ec0000003"
        ]
    );
    assert_eq!(search(None, all_devices()).await.len(), 6);
    assert_eq!(
        search(Some(p1.id), q(|q| q.mac_prefix = Some("805ec000".into()))).await,
        ["805ec0000001", "805ec0000002", "805ec0000003"]
    );
    assert_eq!(
        search(None, q(|q| q.mac_prefix = Some("805ec0".into()))).await,
        [
            "805ec0000001",
            "805ec0000002",
            "805ec0000003",
            "805ec0100001"
        ]
    );
    assert_eq!(
        search(None, q(|q| q.mac_prefix = Some("805ec0000002".into()))).await,
        ["805ec0000002"]
    );
    assert!(search(None, q(|q| q.mac_prefix = Some("ff".into())))
        .await
        .is_empty());
    assert_eq!(
        search(Some(p1.id), q(|q| q.tenant = Some(name("t2")))).await,
        ["000413000001"]
    );
    assert!(search(Some(p1.id), q(|q| q.tenant = Some(name("t3"))))
        .await
        .is_empty());
    assert_eq!(
        search(None, q(|q| q.vendor = Some(Vendor::Gigaset))).await,
        ["7c2f80000001"]
    );
    assert_eq!(
        search(None, q(|q| q.vendor = Some(Vendor::Snom))).await,
        ["000413000001"]
    );
    assert_eq!(
        search(Some(p1.id), q(|q| q.seen_since = Some(1_500))).await,
        ["805ec0000002"]
    );
    assert_eq!(
        search(Some(p1.id), q(|q| q.seen_since = Some(1_000))).await,
        ["805ec0000001", "805ec0000002"]
    );
    assert_eq!(
        search(Some(p1.id), q(|q| q.seen_before = Some(1_500))).await,
        ["805ec0000001"]
    );
    assert_eq!(
        search(
            None,
            q(|q| {
                q.seen_since = Some(500);
                q.seen_before = Some(1_500);
            })
        )
        .await,
        ["805ec0000001", "805ec0100001"]
    );
    assert_eq!(
        search(Some(p1.id), q(|q| q.never_seen = true)).await,
        ["000413000001", "7c2f80000001", "805ec0000003"]
    );
    assert_eq!(
        search(
            Some(p1.id),
            q(|q| {
                q.never_seen = true;
                q.mac_prefix = Some("805e".into());
            })
        )
        .await,
        ["805ec0000003"]
    );

    // Keyset paging.
    let page1 = search(
        None,
        DeviceQuery {
            limit: 4,
            ..DeviceQuery::default()
        },
    )
    .await;
    assert_eq!(
        page1,
        [
            "000413000001",
            "7c2f80000001",
            "805ec0000001",
            "805ec0000002"
        ]
    );
    let page2 = search(
        None,
        DeviceQuery {
            limit: 4,
            after: Some(mac(&page1[3])),
            ..DeviceQuery::default()
        },
    )
    .await;
    assert_eq!(page2, ["805ec0000003", "805ec0100001"]);
    let page3 = search(
        None,
        DeviceQuery {
            limit: 4,
            after: Some(mac("805ec0100001")),
            ..DeviceQuery::default()
        },
    )
    .await;
    assert!(page3.is_empty());
    assert_eq!(
        search(
            Some(p1.id),
            DeviceQuery {
                limit: 2,
                after: Some(mac("7c2f80000001")),
                mac_prefix: Some("805ec0".into()),
                ..DeviceQuery::default()
            }
        )
        .await,
        ["805ec0000001", "805ec0000002"]
    );

    // What a view carries.
    let views = store
        .search_devices(
            Some(p1.id),
            q(|q| q.mac_prefix = Some("805ec0000001".into())),
        )
        .await
        .unwrap();
    let v = &views[0];
    assert_eq!(v.tenant_name, name("t1"));
    assert!(v.claimed_at > 0 && v.updated_at >= v.claimed_at);
    assert_eq!(
        v.status,
        Some(DeviceStatus {
            last_seen: 1_000,
            source: "192.0.2.7".into(),
            user_agent: "Yealink SIP-T46S 66.86.0.15".into(),
            model: Some("T46S".into()),
            firmware: Some("66.86.0.15".into()),
            last_file: "device".into(),
            last_outcome: "served".into(),
        })
    );
    assert_eq!(
        store
            .device_view(Some(p1.id), v.record.mac)
            .await
            .unwrap()
            .as_ref(),
        Some(v)
    );
}

/// Sightings are recorded for claimed devices only; the latest one wins.
pub(crate) async fn sightings(nodes: Nodes) {
    let store = nodes.one.as_ref();
    tenant(store, "t1", &Actor::cli()).await;
    claimed(store, request("805ec017de13", "t1"), &Actor::cli()).await;
    store.record_sightings(vec![]).await.unwrap();
    store
        .record_sightings(vec![
            sighting("805ec017de13", 1_000, "device"),
            sighting("805ec017de14", 1_000, "device"),
        ])
        .await
        .unwrap();
    let status = |m: &'static str| async move {
        store
            .device_view(None, mac(m))
            .await
            .unwrap()
            .expect("claimed")
            .status
    };
    assert_eq!(
        status("805ec017de13").await.map(|s| s.last_seen),
        Some(1_000)
    );
    // Not recorded for an unclaimed device: claiming it later shows no status.
    claimed(store, request("805ec017de14", "t1"), &Actor::cli()).await;
    assert_eq!(status("805ec017de14").await, None);

    // Within a batch and across batches, the latest write wins.
    store
        .record_sightings(vec![
            sighting("805ec017de13", 2_000, "common"),
            sighting("805ec017de14", 2_500, "device"),
            sighting("805ec017de13", 3_000, "boot"),
        ])
        .await
        .unwrap();
    let s = status("805ec017de13").await.expect("seen");
    assert_eq!((s.last_seen, s.last_file.as_str()), (3_000, "boot"));
    assert_eq!(
        status("805ec017de14").await.map(|s| s.last_seen),
        Some(2_500)
    );
    let mut other = sighting("805ec017de13", 4_000, "device");
    other.source = "2001:db8::1".parse().expect("ip");
    other.model = None;
    other.firmware = None;
    other.outcome = "vendor_mismatch";
    nodes.two.record_sightings(vec![other]).await.unwrap();
    assert_eq!(
        status("805ec017de13").await,
        Some(DeviceStatus {
            last_seen: 4_000,
            source: "2001:db8::1".into(),
            user_agent: "Yealink SIP-T46S 66.86.0.15".into(),
            model: None,
            firmware: None,
            last_file: "device".into(),
            last_outcome: "vendor_mismatch".into(),
        })
    );
}

/// Every mutation of phone-visible data takes new sequence numbers, in order; nothing else
/// does.
pub(crate) async fn change_sequence(nodes: Nodes) {
    let store = nodes.one.as_ref();
    assert_eq!(store.latest_change().await.unwrap(), 0);
    assert!(store.changes_since(0, 100).await.unwrap().is_empty());
    let p = partner(store, "acme").await;
    let actor = partner_actor(&p);
    store
        .create_customer(
            p.id,
            CustomerFields {
                company: "Initech".into(),
                ..CustomerFields::default()
            },
            &actor,
        )
        .await
        .unwrap();
    store
        .create_token(p.id, "k1", b"h", &Actor::cli())
        .await
        .unwrap();
    assert_eq!(
        store.latest_change().await.unwrap(),
        0,
        "no phone-visible change"
    );

    let mut seq = 0;
    // Runs `op` and returns the changes it appended, checking the sequence moved forward.
    macro_rules! step {
        ($op:expr) => {{
            let _ = $op;
            let latest = store.latest_change().await.unwrap();
            let entries = store.changes_since(seq, 1_000).await.unwrap();
            assert!(latest > seq, "a mutation must take a new sequence number");
            assert_eq!(entries.last().map(|e| e.seq), Some(latest));
            seq = latest;
            entries.into_iter().map(|e| e.change).collect::<Vec<_>>()
        }};
    }
    let t1 = tenant(store, "t1", &actor).await;
    let _ = step!(());
    let m = mac("805ec017de13");
    assert_eq!(
        step!(claimed(store, request("805ec017de13", "t1"), &actor).await),
        [Change::Device(m)]
    );
    let t2 = tenant(nodes.two.as_ref(), "t2", &actor).await;
    assert_eq!(step!(()), [Change::Tenant(t2.id)]);
    assert_eq!(
        step!(store
            .update_device(
                m,
                DeviceUpdate {
                    tenant: Some(name("t2")),
                    settings: Some(line_settings("1")),
                },
                &actor
            )
            .await
            .unwrap()),
        [Change::Device(m)]
    );
    assert_eq!(
        step!(store
            .update_tenant(&name("t1"), None, settings("new.example"), &actor)
            .await
            .unwrap()),
        [Change::Tenant(t1.id)]
    );
    assert_eq!(
        step!(store
            .open_enrolment(m, now_millis() + 60_000, &actor)
            .await
            .unwrap()),
        [Change::Device(m)]
    );
    assert_eq!(
        step!(store
            .change_credentials(m, CredentialChange::Enrol(Ha1::new("u", "p")), None)
            .await
            .unwrap()),
        [Change::Device(m)]
    );
    assert_eq!(
        step!(store.request_rotation(m, &actor).await.unwrap()),
        [Change::Device(m)]
    );
    assert_eq!(
        step!(assert!(store.release(m, &actor).await.unwrap())),
        [Change::Device(m)]
    );
    assert_eq!(
        step!(store.delete_tenant(&name("t1"), &actor).await.unwrap()),
        [Change::Tenant(t1.id)]
    );
    let imported = step!(store
        .import(ImportBatch {
            tenants: vec![(0, name("t9"), settings("t9.example"))],
            devices: vec![
                import_device(0, "805ec0000001", "t9"),
                import_device(1, "805ec0000002", "t9"),
            ],
            actor: actor.clone(),
        })
        .await
        .unwrap());
    let t9 = store
        .tenant_by_name(None, &name("t9"))
        .await
        .unwrap()
        .expect("t9");
    assert_eq!(
        imported,
        [
            Change::Tenant(t9.id),
            Change::Device(mac("805ec0000001")),
            Change::Device(mac("805ec0000002"))
        ]
    );

    // Refusals, reads, sightings, partners, customers, tokens and secrets change nothing.
    assert_eq!(
        store
            .claim(request("805ec0000001", "t2"), &actor)
            .await
            .unwrap(),
        ClaimOutcome::AlreadyInUse
    );
    assert!(matches!(
        store
            .claim(request("805ec0000001", "t9"), &actor)
            .await
            .unwrap(),
        ClaimOutcome::Unchanged(_)
    ));
    store
        .record_sightings(vec![sighting("805ec0000001", 5, "device")])
        .await
        .unwrap();
    store.secret("nonce-key", b"fresh").await.unwrap();
    partner(store, "zeta").await;
    assert!(!store.release(mac("805ec0099999"), &actor).await.unwrap());
    assert_eq!(store.latest_change().await.unwrap(), seq);

    // The whole sequence: strictly increasing, pageable.
    let all = store.changes_since(0, 10_000).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all.last().map(|e| e.seq), Some(seq));
    let page = store.changes_since(0, 3).await.unwrap();
    assert_eq!(page, all[..3].to_vec());
    let next = nodes.two.changes_since(page[2].seq, 3).await.unwrap();
    assert_eq!(next, all[3..6].to_vec());
    assert!(store.changes_since(seq, 10).await.unwrap().is_empty());
    assert_eq!(nodes.two.latest_change().await.unwrap(), seq);
}

/// (action, actor, source, mac, tenant, detail) of an audit entry.
type AuditLine<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

/// Who did what to which device or tenant, from where; filtered and paged.
pub(crate) async fn audit_log(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p = partner(store, "acme").await;
    let actor = partner_actor(&p);
    tenant(store, "t1", &actor).await;
    tenant(store, "t2", &actor).await;
    let m = mac("805ec017de13");
    let mut req = request("805ec017de13", "t1");
    req.enrol_until = Some(1_234);
    claimed(store, req, &actor).await;
    store
        .update_device(
            m,
            DeviceUpdate {
                tenant: Some(name("t2")),
                settings: Some(line_settings("1")),
            },
            &actor,
        )
        .await
        .unwrap();
    claimed(store, request("805ec0000001", "t1"), &Actor::cli()).await;
    store
        .update_tenant(&name("t1"), None, settings("x.example"), &actor)
        .await
        .unwrap();
    store.release(m, &actor).await.unwrap();

    let log = store.audit_log(all_audit()).await.unwrap();
    assert!(log.windows(2).all(|w| w[0].id < w[1].id));
    let summary: Vec<AuditLine<'_>> = log
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.actor.as_str(),
                e.source.as_deref(),
                e.mac.as_deref(),
                e.tenant.as_deref(),
                e.detail.as_deref(),
            )
        })
        .collect();
    let who = format!("partner:{}:acme", p.id);
    let from = Some("192.0.2.7");
    let dev = Some("805ec017de13");
    let moved = serde_json::json!({"from": "t1", "to": "t2"}).to_string();
    let enrol = serde_json::json!({"enrolment_until": 1_234}).to_string();
    assert_eq!(
        summary,
        vec![
            ("partner.create", "cli", None, None, None, summary[0].5),
            ("tenant.create", who.as_str(), from, None, Some("t1"), None),
            ("tenant.create", who.as_str(), from, None, Some("t2"), None),
            (
                "device.claim",
                who.as_str(),
                from,
                dev,
                Some("t1"),
                Some(enrol.as_str())
            ),
            (
                "device.move",
                who.as_str(),
                from,
                dev,
                Some("t2"),
                Some(moved.as_str())
            ),
            ("device.update", who.as_str(), from, dev, Some("t2"), None),
            (
                "device.claim",
                "cli",
                None,
                Some("805ec0000001"),
                Some("t1"),
                None
            ),
            ("tenant.update", who.as_str(), from, None, Some("t1"), None),
            ("device.release", who.as_str(), from, dev, Some("t2"), None),
        ]
    );
    assert!(log.iter().all(|e| e.at > 0));

    // Filters.
    let by_mac = store
        .audit_log(AuditQuery {
            mac: Some(m),
            ..all_audit()
        })
        .await
        .unwrap();
    assert_eq!(
        by_mac.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        [
            "device.claim",
            "device.move",
            "device.update",
            "device.release"
        ]
    );
    let by_tenant = nodes
        .two
        .audit_log(AuditQuery {
            tenant: Some("t1".into()),
            ..all_audit()
        })
        .await
        .unwrap();
    assert_eq!(
        by_tenant
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        [
            "tenant.create",
            "device.claim",
            "device.claim",
            "tenant.update"
        ]
    );
    // Paging.
    let first = store
        .audit_log(AuditQuery {
            limit: 4,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(first, log[..4].to_vec());
    let second = store
        .audit_log(AuditQuery {
            limit: 4,
            after: Some(first[3].id),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(second, log[4..8].to_vec());
    let by_mac_after = store
        .audit_log(AuditQuery {
            mac: Some(m),
            after: Some(by_mac[1].id),
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_mac_after, vec![by_mac[2].clone()]);
}

/// Hydration pages: every device exactly once, in MAC order.
pub(crate) async fn devices_page_walks_in_mac_order(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p = partner(store, "acme").await;
    tenant(store, "t1", &Actor::cli()).await;
    tenant(store, "t2", &partner_actor(&p)).await;
    let mut expected = BTreeSet::new();
    // Claimed out of order, across tenants and vendors.
    for i in 0..25u32 {
        let n = (i * 7919) % 25;
        let m = match n % 3 {
            0 => format!("805ec0{n:06x}"),
            1 => format!("000413{n:06x}"),
            _ => format!("805ec1{n:06x}"),
        };
        let t = if n % 2 == 0 { "t1" } else { "t2" };
        claimed(store, request(&m, t), &Actor::cli()).await;
        expected.insert(mac(&m));
    }
    assert!(store.devices_page(None, 0).await.unwrap().is_empty());
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.devices_page(after, 10).await.unwrap();
        assert!(page.len() <= 10);
        for d in &page {
            assert_eq!(store.device(d.mac).await.unwrap().as_ref(), Some(d));
        }
        seen.extend(page.iter().map(|d| d.mac));
        match page.last() {
            Some(d) if page.len() == 10 => after = Some(d.mac),
            _ => break,
        }
    }
    assert_eq!(seen, expected.iter().copied().collect::<Vec<_>>());
    let last = *expected.iter().last().expect("devices");
    assert!(store.devices_page(Some(last), 10).await.unwrap().is_empty());
    let first_two: Vec<Mac> = expected.iter().copied().take(3).collect();
    assert_eq!(
        nodes
            .two
            .devices_page(Some(first_two[0]), 2)
            .await
            .unwrap()
            .iter()
            .map(|d| d.mac)
            .collect::<Vec<_>>(),
        first_two[1..]
    );
}

/// Enrolment, rotation, reissue and retirement of phone credentials.
pub(crate) async fn credentials(nodes: Nodes) {
    let store = nodes.one.as_ref();
    let p = partner(store, "acme").await;
    let actor = partner_actor(&p);
    tenant(store, "t1", &actor).await;
    let future = now_millis() + 3_600_000;
    let m = mac("805ec017de13");
    let mut req = request("805ec017de13", "t1");
    req.enrol_until = Some(future);
    claimed(store, req, &actor).await;
    let ha1 = |u: &str| Ha1::new(u, "password");
    let from: Option<IpAddr> = Some("198.51.100.9".parse().expect("ip"));

    // Nothing to rotate, reissue or retire before enrolment; unknown devices are refused.
    for change in [
        CredentialChange::Rotate(ha1("r")),
        CredentialChange::Reissue(ha1("r")),
        CredentialChange::RetirePrevious,
    ] {
        assert_eq!(
            store.change_credentials(m, change, from).await.unwrap(),
            None
        );
    }
    assert_eq!(
        store
            .change_credentials(mac("805ec0000099"), CredentialChange::Enrol(ha1("x")), from)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.request_rotation(m, &actor).await.unwrap(),
        RotationOutcome::NotEnrolled
    );

    let enrolled = store
        .change_credentials(m, CredentialChange::Enrol(ha1("first")), from)
        .await
        .unwrap()
        .expect("enrolled");
    let creds = PhoneCredentials {
        current: ha1("first"),
        previous: None,
        rotate: false,
    };
    assert_eq!(enrolled.credentials, Some(creds.clone()));
    assert_eq!(enrolled.enrol_until, None);
    assert_eq!(store.device(m).await.unwrap(), Some(enrolled.clone()));
    // Bound: a second enrolment is refused.
    assert_eq!(
        nodes
            .two
            .change_credentials(m, CredentialChange::Enrol(ha1("second")), from)
            .await
            .unwrap(),
        None
    );

    let requested = match store.request_rotation(m, &actor).await.unwrap() {
        RotationOutcome::Requested(d) => d,
        other => panic!("{other:?}"),
    };
    assert!(requested.credentials.as_ref().is_some_and(|c| c.rotate));
    let rotated = store
        .change_credentials(m, CredentialChange::Rotate(ha1("second")), from)
        .await
        .unwrap()
        .expect("rotated");
    assert_eq!(
        rotated.credentials,
        Some(PhoneCredentials {
            current: ha1("second"),
            previous: Some(ha1("first")),
            rotate: false,
        })
    );
    // No rotation pending any more.
    assert_eq!(
        store
            .change_credentials(m, CredentialChange::Rotate(ha1("third")), from)
            .await
            .unwrap(),
        None
    );
    let reissued = store
        .change_credentials(m, CredentialChange::Reissue(ha1("third")), from)
        .await
        .unwrap()
        .expect("reissued");
    assert_eq!(
        reissued.credentials,
        Some(PhoneCredentials {
            current: ha1("third"),
            previous: Some(ha1("first")),
            rotate: false,
        })
    );
    let retired = store
        .change_credentials(m, CredentialChange::RetirePrevious, from)
        .await
        .unwrap()
        .expect("retired");
    assert_eq!(
        retired.credentials,
        Some(PhoneCredentials {
            current: ha1("third"),
            previous: None,
            rotate: false,
        })
    );
    assert_eq!(
        store
            .change_credentials(m, CredentialChange::RetirePrevious, from)
            .await
            .unwrap(),
        None
    );

    // Reopening enrolment forgets the credentials.
    let reopened = store
        .open_enrolment(m, future, &actor)
        .await
        .unwrap()
        .expect("visible");
    assert_eq!(reopened.credentials, None);
    assert_eq!(reopened.enrol_until, Some(future));
    assert_eq!(store.device(m).await.unwrap(), Some(reopened));
    // A window in the past admits nobody.
    store
        .open_enrolment(m, now_millis() - 1, &actor)
        .await
        .unwrap()
        .expect("visible");
    assert_eq!(
        store
            .change_credentials(m, CredentialChange::Enrol(ha1("late")), from)
            .await
            .unwrap(),
        None
    );

    let log = store
        .audit_log(AuditQuery {
            mac: Some(m),
            ..all_audit()
        })
        .await
        .unwrap();
    let summary: Vec<(&str, &str, Option<&str>, Option<&str>)> = log
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.actor.as_str(),
                e.source.as_deref(),
                e.tenant.as_deref(),
            )
        })
        .collect();
    let who = format!("partner:{}:acme", p.id);
    let phone = Some("198.51.100.9");
    let partner_from = Some("192.0.2.7");
    assert_eq!(
        summary,
        vec![
            ("device.claim", who.as_str(), partner_from, Some("t1")),
            ("device.enrol", "phone", phone, Some("t1")),
            (
                "device.credentials.rotate",
                who.as_str(),
                partner_from,
                Some("t1")
            ),
            ("device.credentials.rotated", "phone", phone, Some("t1")),
            ("device.credentials.reissued", "phone", phone, Some("t1")),
            (
                "device.enrolment.open",
                who.as_str(),
                partner_from,
                Some("t1")
            ),
            (
                "device.enrolment.open",
                who.as_str(),
                partner_from,
                Some("t1")
            ),
        ]
    );
    assert_eq!(
        log[5].detail.as_deref(),
        Some(serde_json::json!({"until": future}).to_string().as_str())
    );
}

/// The first writer of a server-wide secret wins, on every node.
pub(crate) async fn server_secret(nodes: Nodes) {
    let first = nodes.one.secret("nonce-key", b"first").await.unwrap();
    assert_eq!(first, b"first");
    assert_eq!(
        nodes.one.secret("nonce-key", b"other").await.unwrap(),
        b"first"
    );
    assert_eq!(
        nodes.two.secret("nonce-key", b"other").await.unwrap(),
        b"first"
    );
    assert_eq!(nodes.two.secret("other-key", b"x").await.unwrap(), b"x");

    let barrier = Arc::new(Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let store = if i % 2 == 0 {
            nodes.one.clone()
        } else {
            nodes.two.clone()
        };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.secret("raced", &[i]).await.unwrap()
        }));
    }
    let mut values = BTreeSet::new();
    for t in tasks {
        values.insert(t.await.unwrap());
    }
    assert_eq!(values.len(), 1, "every caller gets the one stored value");
}

/// 50 claims of one MAC for two tenants at once, through two nodes: exactly one is created.
pub(crate) async fn concurrent_claims_have_one_winner(nodes: Nodes) {
    let a = tenant(nodes.one.as_ref(), "a", &Actor::cli()).await;
    let b = tenant(nodes.one.as_ref(), "b", &Actor::cli()).await;
    for round in 0..3u32 {
        let m = format!("805ec01700{round:02x}");
        let before = nodes.one.latest_change().await.unwrap();
        let barrier = Arc::new(Barrier::new(50));
        let mut tasks = Vec::new();
        for i in 0..50 {
            let store = if i % 2 == 0 {
                nodes.one.clone()
            } else {
                nodes.two.clone()
            };
            let tenant = if i % 4 < 2 { "a" } else { "b" };
            let req = request(&m, tenant);
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                (tenant, store.claim(req, &Actor::cli()).await.unwrap())
            }));
        }
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        let winners: Vec<&(&str, ClaimOutcome)> = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, ClaimOutcome::Created(_)))
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "exactly one claim is created: {outcomes:?}"
        );
        let (winner, created) = winners[0];
        let ClaimOutcome::Created(record) = created else {
            unreachable!()
        };
        assert_eq!(record.tenant, if *winner == "a" { a.id } else { b.id });
        for (tenant, outcome) in &outcomes {
            match outcome {
                ClaimOutcome::Created(_) => {}
                ClaimOutcome::Unchanged(d) => {
                    assert_eq!(tenant, winner);
                    assert_eq!(d, record);
                }
                ClaimOutcome::AlreadyInUse => assert_ne!(tenant, winner),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            nodes.two.device(mac(&m)).await.unwrap().as_ref(),
            Some(record)
        );
        assert_eq!(
            changes_after(nodes.one.as_ref(), before).await,
            [Change::Device(mac(&m))]
        );
        let claims = nodes
            .one
            .audit_log(AuditQuery {
                mac: Some(mac(&m)),
                ..all_audit()
            })
            .await
            .unwrap();
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].action, "device.claim");
        assert_eq!(claims[0].tenant.as_deref(), Some(*winner));
    }
}

/// A reader following the change feed while several nodes commit misses nothing.
pub(crate) async fn change_feed_misses_nothing_under_concurrent_writers(nodes: Nodes) {
    tenant(nodes.one.as_ref(), "t1", &Actor::cli()).await;
    let start = nodes.one.latest_change().await.unwrap();
    let writers_done = Arc::new(tokio::sync::Notify::new());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let store = nodes.two.clone();
        let done = done.clone();
        let writers_done = writers_done.clone();
        tokio::spawn(async move {
            let mut cursor = start;
            let mut seen = BTreeMap::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                loop {
                    let page = store.changes_since(cursor, 7).await.unwrap();
                    for e in &page {
                        assert!(e.seq > cursor, "the feed goes forward");
                        cursor = e.seq;
                        if let Change::Device(m) = &e.change {
                            *seen.entry(*m).or_insert(0) += 1;
                        }
                    }
                    if page.len() < 7 {
                        break;
                    }
                }
                if finished {
                    return seen;
                }
                tokio::select! {
                    () = writers_done.notified() => {}
                    () = tokio::time::sleep(std::time::Duration::from_millis(1)) => {}
                }
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..8u32 {
        let store = if w % 2 == 0 {
            nodes.one.clone()
        } else {
            nodes.two.clone()
        };
        writers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..25u32 {
                let m = format!("805ec0{w:02x}{i:04x}");
                claimed(store.as_ref(), request(&m, "t1"), &Actor::cli()).await;
                if i % 5 == 0 {
                    // Some transactions carry several changes.
                    store
                        .update_device(
                            mac(&m),
                            DeviceUpdate {
                                tenant: None,
                                settings: Some(line_settings("1")),
                            },
                            &Actor::cli(),
                        )
                        .await
                        .unwrap();
                }
                mine.push(mac(&m));
            }
            mine
        }));
    }
    let mut all = BTreeSet::new();
    for w in writers {
        all.extend(w.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    writers_done.notify_one();
    let seen = reader.await.unwrap();
    assert_eq!(seen.keys().copied().collect::<BTreeSet<_>>(), all);
    let expected_changes: usize = all
        .iter()
        .map(|m| {
            if u32::from_str_radix(&m.to_string()[8..], 16).unwrap_or(1) % 5 == 0 {
                2
            } else {
                1
            }
        })
        .sum();
    assert_eq!(seen.values().sum::<usize>(), expected_changes);
}

/// A tenant is never deleted under a device claimed at the same moment: either the claim wins
/// (and the delete is refused) or the delete wins (and the claim finds no tenant).
pub(crate) async fn tenant_delete_races_claims_consistently(nodes: Nodes) {
    for round in 0..10u32 {
        let t = format!("race{round}");
        tenant(nodes.one.as_ref(), &t, &Actor::cli()).await;
        let m = format!("805ec02000{round:02x}");
        let barrier = Arc::new(Barrier::new(2));
        let claim = {
            let (store, barrier, req) = (nodes.one.clone(), barrier.clone(), request(&m, &t));
            tokio::spawn(async move {
                barrier.wait().await;
                store.claim(req, &Actor::cli()).await.unwrap()
            })
        };
        let delete = {
            let (store, barrier, t) = (nodes.two.clone(), barrier.clone(), name(&t));
            tokio::spawn(async move {
                barrier.wait().await;
                store.delete_tenant(&t, &Actor::cli()).await.unwrap()
            })
        };
        let (claim, delete) = (claim.await.unwrap(), delete.await.unwrap());
        match (&claim, &delete) {
            (ClaimOutcome::Created(_), TenantChanged::HasDevices) => {
                assert!(nodes.one.device(mac(&m)).await.unwrap().is_some());
            }
            (ClaimOutcome::UnknownTenant, TenantChanged::Done(None)) => {
                assert!(nodes.one.device(mac(&m)).await.unwrap().is_none());
            }
            other => panic!("inconsistent outcome {other:?}"),
        }
        assert!(nodes
            .one
            .devices_page(None, 1_000)
            .await
            .unwrap()
            .iter()
            .all(|d| d.tenant > 0));
    }
    // Every stored device still has its tenant.
    for d in nodes.one.devices_page(None, 1_000).await.unwrap() {
        assert!(nodes.one.tenant(d.tenant).await.unwrap().is_some());
    }
}

/// Two fetches enrolling one device at once, through two nodes: exactly one binds it.
pub(crate) async fn concurrent_enrolment_binds_once(nodes: Nodes) {
    tenant(nodes.one.as_ref(), "t1", &Actor::cli()).await;
    for round in 0..5u32 {
        let m = format!("805ec03000{round:02x}");
        let mut req = request(&m, "t1");
        req.enrol_until = Some(now_millis() + 3_600_000);
        claimed(nodes.one.as_ref(), req, &Actor::cli()).await;
        let barrier = Arc::new(Barrier::new(10));
        let mut tasks = Vec::new();
        for i in 0..10u32 {
            let store = if i % 2 == 0 {
                nodes.one.clone()
            } else {
                nodes.two.clone()
            };
            let barrier = barrier.clone();
            let m = mac(&m);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .change_credentials(
                        m,
                        CredentialChange::Enrol(Ha1::new(&format!("u{i}"), "p")),
                        None,
                    )
                    .await
                    .unwrap()
            }));
        }
        let mut bound = Vec::new();
        for t in tasks {
            bound.extend(t.await.unwrap());
        }
        assert_eq!(bound.len(), 1, "exactly one enrolment binds the device");
        assert_eq!(
            nodes.two.device(mac(&m)).await.unwrap().as_ref(),
            Some(&bound[0])
        );
    }
}
