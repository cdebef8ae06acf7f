//! PostgreSQL for benches: a throwaway database per measurement (`zt_bench_<what>_<pid>`, made
//! and dropped by the store's test-database helper) and a migrated store on it.
//!
//! Must not know what a bench measures.

use std::future::Future;

use zerotouch::store::postgres::{PostgresOptions, PostgresStore};

use super::test_database::TestDatabase;

/// Runs `work` on a fresh database `zt_bench_<what>_<pid>` on `server` (a superuser URL) and
/// drops it afterwards, also when `work` failed.
pub async fn on_database<T, F, Fut>(server: &str, what: &str, work: F) -> anyhow::Result<T>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let name = format!("zt_bench_{what}_{}", std::process::id());
    let db = TestDatabase::create(server, name).await?;
    let outcome = work(db.url.clone()).await;
    db.drop().await?;
    outcome
}

/// A store on `url` (default options, as a node has), its schema migrated.
pub async fn migrated_store(url: &str) -> anyhow::Result<PostgresStore> {
    let store = PostgresStore::connect(url, PostgresOptions::default()).await?;
    store.migrate().await?;
    Ok(store)
}
