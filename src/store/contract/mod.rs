//! The store contract: one suite, written once, run against every backend.
//!
//! Owns what any [`Store`] must do as seen through the trait: per-row import outcomes, the claim
//! rules, partner scoping, tenants, tokens, customers, search, sightings, the change sequence,
//! the audit log, credentials, portal users and sessions, and what must hold when two nodes write at once. Each contract
//! function takes [`Nodes`], two handles on one fresh database (two pools for PostgreSQL, two
//! connections sets on one file for SQLite), and is run by one test per backend. Knows nothing
//! of a backend's SQL or schema.
//!
//! This file holds the backends and the list of contract functions; `fixtures.rs` the values
//! they are written with; the other files one area of the contract each.
//!
//! The PostgreSQL tests need a server: `ZEROTOUCH_TEST_DATABASE_URL` (a superuser URL); each test
//! creates its own database and drops it (`store::test_database`). `.ci/postgres <command>`
//! provides one. Without the variable they fail, never skip.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::Barrier;

use super::postgres::{PostgresOptions, PostgresStore};
use super::sqlite::SqliteStore;
use super::test_database::{required_server, unique_name, TestDatabase};
use super::*;
use crate::domain::{
    ClaimCode, DeviceSettings, Ha1, Host, LineAccount, Mac, PartnerId, PhoneCredentials, Secret,
    TenantName, TenantSettings, Vendor,
};
use fixtures::*;

mod audit;
mod changes;
mod claims;
mod concurrency;
mod credentials;
mod devices;
mod fixtures;
mod imports;
mod outbox;
mod partners;
mod secrets;
mod tenants;
mod users;

use audit::{audit_filters, audit_log};
use changes::change_sequence;
use claims::{claim_rules, move_and_release};
use concurrency::{
    change_feed_misses_nothing_under_concurrent_writers, concurrent_claims_have_one_winner,
    concurrent_enrolment_binds_once, tenant_delete_races_claims_consistently,
};
use credentials::{credentials, server_secret};
use devices::{bulk_release_and_move, devices_page_walks_in_mac_order, search_filters, sightings};
use imports::import_reports_every_row_and_is_idempotent;
use outbox::{redirect_leases_are_exclusive, redirect_outbox};
use partners::{customers, partner_scoping, partners_and_tokens, tenant_and_customer_pages};
use secrets::secret_swap;
use tenants::{tenant_counts, tenant_lifecycle};
use users::{admin_users_and_disabling, portal_sessions, portal_users};

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
    let db = test_database().await;
    let nodes = Nodes {
        one: Arc::new(store_on(&db).await),
        two: Arc::new(store_on(&db).await),
    };
    let outcome = tokio::spawn(contract(nodes)).await;
    let dropped = db.drop().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("contract task failed: {e}"),
        }
    }
    dropped.expect("drop the test database");
}

/// A fresh database on the test server, for one test (dropped when it is).
pub(crate) async fn test_database() -> TestDatabase {
    let server = required_server(
        "the PostgreSQL store tests need a server",
        ".ci/postgres cargo nextest run -E 'test(/store::/)' --lib",
    );
    TestDatabase::create(&server, unique_name("zt_test"))
        .await
        .expect("create a test database")
}

/// A migrated store on `db`: one node.
pub(crate) async fn store_on(db: &TestDatabase) -> PostgresStore {
    let store = PostgresStore::connect(
        &db.url,
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
    tenant_and_customer_pages,
    move_and_release,
    bulk_release_and_move,
    tenant_lifecycle,
    tenant_counts,
    partners_and_tokens,
    customers,
    search_filters,
    sightings,
    change_sequence,
    audit_log,
    devices_page_walks_in_mac_order,
    credentials,
    server_secret,
    secret_swap,
    portal_users,
    portal_sessions,
    admin_users_and_disabling,
    audit_filters,
    concurrent_claims_have_one_winner,
    change_feed_misses_nothing_under_concurrent_writers,
    tenant_delete_races_claims_consistently,
    concurrent_enrolment_binds_once,
    redirect_outbox,
    redirect_leases_are_exclusive,
);
