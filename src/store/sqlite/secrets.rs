//! Reading and compare-and-swapping a server-wide secret in SQLite (the `server_secrets` table):
//! what the ACME account, certificate, ordering lease and pending challenges are kept in.
//!
//! Must not know what a secret holds.

use rusqlite::{params, OptionalExtension};

use super::connection::Db;
use super::{changes, SqliteStore};
use crate::store::{now_millis, Change, Error};

/// [`Store::stored_secret`](crate::store::Store::stored_secret).
pub(super) async fn get_one(store: &SqliteStore, name: &str) -> Result<Option<Vec<u8>>, Error> {
    let name = name.to_owned();
    store
        .read(move |conn| {
            conn.prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")
                .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
                .db()
        })
        .await
}

/// [`Store::swap_secret`](crate::store::Store::swap_secret).
pub(super) async fn swap(
    store: &SqliteStore,
    name: &str,
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Result<bool, Error> {
    let (name, expected, new) = (
        name.to_owned(),
        expected.map(<[u8]>::to_vec),
        new.map(<[u8]>::to_vec),
    );
    store
        .write(move |tx| {
            // Each statement matches only the expected state, so a writer that lost the race
            // changes nothing and learns it from the row count.
            let writes = new.is_some() || expected.is_some();
            let changed = match (expected, new) {
                (None, None) => tx
                    .prepare_cached("SELECT count(*) FROM server_secrets WHERE name = ?1")
                    .and_then(|mut s| s.query_row([&name], |r| r.get::<_, i64>(0)))
                    .map(|n| usize::from(n == 0)),
                (None, Some(new)) => tx
                    .prepare_cached(
                        "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
                    )
                    .and_then(|mut s| s.execute(params![name, new])),
                (Some(old), Some(new)) => tx
                    .prepare_cached(
                        "UPDATE server_secrets SET value = ?3 WHERE name = ?1 AND value = ?2",
                    )
                    .and_then(|mut s| s.execute(params![name, old, new])),
                (Some(old), None) => tx
                    .prepare_cached("DELETE FROM server_secrets WHERE name = ?1 AND value = ?2")
                    .and_then(|mut s| s.execute(params![name, old])),
            }
            .db()?;
            if writes && changed == 1 {
                changes::append(tx, &Change::Secret(name.clone()), now_millis())?;
            }
            Ok(changed == 1)
        })
        .await
}
