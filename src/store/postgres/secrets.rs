//! Reading and compare-and-swapping a server-wide secret in PostgreSQL (the `server_secrets`
//! table): what the ACME account, certificate, ordering lease and pending challenges are kept
//! in, shared by every node.
//!
//! Must not know what a secret holds.

use super::decode::get;
use super::PostgresStore;
use crate::store::{Change, Error};

/// [`Store::stored_secret`](crate::store::Store::stored_secret).
pub(super) async fn get_one(store: &PostgresStore, name: &str) -> Result<Option<Vec<u8>>, Error> {
    store
        .read_one(
            "stored_secret",
            "SELECT value FROM server_secrets WHERE name = $1",
            &[&name],
            |row| get(row, 0),
        )
        .await
}

/// [`Store::swap_secret`](crate::store::Store::swap_secret).
pub(super) async fn swap(
    store: &PostgresStore,
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
        .write("swap_secret", move |tx| {
            let (name, expected, new) = (name.clone(), expected.clone(), new.clone());
            Box::pin(async move {
                let writes = new.is_some() || expected.is_some();
                let c = tx.conn();
                // Each statement matches only the expected state. A concurrent writer on
                // another node holds the row lock until it commits; this one then re-checks
                // the condition against the committed row, so exactly one of them wins.
                let changed = match (expected, new) {
                    (None, None) => {
                        let row = c
                            .query_opt("SELECT 1 FROM server_secrets WHERE name = $1", &[&name])
                            .await?;
                        u64::from(row.is_none())
                    }
                    (None, Some(new)) => {
                        c.execute(
                            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                            &[&name, &new],
                        )
                        .await?
                    }
                    (Some(old), Some(new)) => {
                        c.execute(
                            "UPDATE server_secrets SET value = $3 WHERE name = $1 AND value = $2",
                            &[&name, &old, &new],
                        )
                        .await?
                    }
                    (Some(old), None) => {
                        c.execute(
                            "DELETE FROM server_secrets WHERE name = $1 AND value = $2",
                            &[&name, &old],
                        )
                        .await?
                    }
                };
                if writes && changed == 1 {
                    tx.change(Change::Secret(name.clone()));
                }
                Ok(changed == 1)
            })
        })
        .await
}
