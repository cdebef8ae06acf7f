//! The change sequence in PostgreSQL: reading it, for caches that follow it. Changes are
//! appended by each write transaction at commit (`transaction::Tx::commit`), which also makes
//! sequence numbers follow commit order and notifies listeners.
//!
//! Must not know operations.

use super::decode::{self, get};
use super::transaction::Conn;
use super::PostgresStore;
use crate::store::codec;
use crate::store::{ChangeEntry, Error};

/// [`Store::latest_change`](crate::store::Store::latest_change).
pub(super) async fn latest(store: &PostgresStore) -> Result<i64, Error> {
    store
        .observe("latest_change", async {
            let client = store.client().await?;
            let rows = Conn::Client(&client)
                .query("SELECT COALESCE(MAX(seq), 0)::bigint FROM changes", &[])
                .await?;
            match rows.first() {
                Some(row) => get(row, 0),
                None => Ok(0),
            }
        })
        .await
}

/// [`Store::changes_since`](crate::store::Store::changes_since).
pub(super) async fn since(
    store: &PostgresStore,
    seq: i64,
    limit: usize,
) -> Result<Vec<ChangeEntry>, Error> {
    // Safe to page by seq: seqs are taken in commit order (see `Tx::commit`).
    store
        .read_all(
            "changes_since",
            "SELECT seq, entity, key FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&seq, &codec::limit(limit)],
            decode::change,
        )
        .await
}
