//! The change sequence in SQLite: appending a change inside a write transaction, and reading
//! the sequence for caches that follow it.
//!
//! How a change is written (entity, key) is the store's shared `codec`. SQLite has one writer,
//! so sequence numbers are taken in commit order. Must not know operations.

use rusqlite::{params, Transaction};

use super::connection::{all, Db};
use super::SqliteStore;
use crate::store::codec;
use crate::store::{Change, ChangeEntry, Error, Millis};

/// Appends `change` to the sequence.
pub(super) fn append(tx: &Transaction<'_>, change: &Change, at: Millis) -> Result<(), Error> {
    let (entity, key) = codec::change_columns(change);
    tx.prepare_cached("INSERT INTO changes (entity, key, at) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![entity, key, at]))
        .db()?;
    Ok(())
}

/// [`Store::latest_change`](crate::store::Store::latest_change).
pub(super) async fn latest(store: &SqliteStore) -> Result<i64, Error> {
    store
        .read(|conn| {
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
                r.get(0)
            })
            .db()
        })
        .await
}

/// [`Store::changes_since`](crate::store::Store::changes_since).
pub(super) async fn since(
    store: &SqliteStore,
    seq: i64,
    limit: usize,
) -> Result<Vec<ChangeEntry>, Error> {
    store
        .read(move |conn| {
            let rows = all(
                conn,
                "SELECT seq, entity, key FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                params![seq, codec::limit(limit)],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )?;
            rows.into_iter()
                .map(|(seq, entity, key)| codec::change(seq, &entity, &key))
                .collect()
        })
        .await
}
