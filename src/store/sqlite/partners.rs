//! Partner operations in SQLite: partners, their API tokens (stored hashed) and their
//! customers.
//!
//! Must not know tenants, devices, or how a token is generated or checked.

use rusqlite::params;

use super::connection::{all, one, Db};
use super::decode::{self, RawCustomer, CUSTOMER_COLUMNS, PARTNER_COLUMNS, TOKEN_COLUMNS};
use super::{audit, SqliteStore};
use crate::domain::{CustomerFields, CustomerId, PartnerId};
use crate::store::codec::{self, AuditEvent};
use crate::store::{
    now_millis, Actor, CustomerRecord, Error, Millis, NewToken, Page, PartnerRecord, TokenRecord,
};

/// [`Store::create_partner`](crate::store::Store::create_partner).
pub(super) async fn create(
    store: &SqliteStore,
    name: &str,
    actor: &Actor,
) -> Result<Option<PartnerRecord>, Error> {
    let (name, actor) = (name.to_owned(), actor.clone());
    store
        .write(move |tx| {
            let now = now_millis();
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO partners (name, created_at) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![name, now]))
                .db()?;
            if inserted == 0 {
                return Ok(None);
            }
            let id = tx.last_insert_rowid();
            let event = AuditEvent::PartnerCreated {
                partner: id,
                name: &name,
            };
            audit::append(tx, now, &actor, event)?;
            Ok(Some(PartnerRecord {
                id,
                name,
                created_at: now,
            }))
        })
        .await
}

/// [`Store::partners`](crate::store::Store::partners).
pub(super) async fn list(store: &SqliteStore) -> Result<Vec<PartnerRecord>, Error> {
    store
        .read(|conn| {
            let sql = format!("SELECT {PARTNER_COLUMNS} FROM partners ORDER BY id");
            all(conn, &sql, [], decode::partner)
        })
        .await
}

/// The partner matching `clause` (`id = ?1`, `name = ?1`) with `param`.
async fn find(
    store: &SqliteStore,
    clause: &'static str,
    param: impl rusqlite::ToSql + Send + 'static,
) -> Result<Option<PartnerRecord>, Error> {
    store
        .read(move |conn| {
            let sql = format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE {clause}");
            one(conn, &sql, [param], decode::partner)
        })
        .await
}

/// [`Store::partner`](crate::store::Store::partner).
pub(super) async fn by_id(
    store: &SqliteStore,
    id: PartnerId,
) -> Result<Option<PartnerRecord>, Error> {
    find(store, "id = ?1", id).await
}

/// [`Store::partner_by_name`](crate::store::Store::partner_by_name).
pub(super) async fn by_name(
    store: &SqliteStore,
    name: &str,
) -> Result<Option<PartnerRecord>, Error> {
    find(store, "name = ?1", name.to_owned()).await
}

/// [`Store::create_token`](crate::store::Store::create_token).
pub(super) async fn create_token(
    store: &SqliteStore,
    partner: PartnerId,
    token: NewToken,
    actor: &Actor,
) -> Result<Option<TokenRecord>, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let now = now_millis();
            let exists: Option<i64> = one(
                tx,
                "SELECT id FROM partners WHERE id = ?1",
                [partner],
                |r| r.get(0),
            )?;
            if exists.is_none() {
                return Ok(None);
            }
            tx.prepare_cached(
                "INSERT INTO api_tokens \
                 (partner_id, key_id, secret_hash, created_at, name, expires_at, read_only) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    partner,
                    token.key_id,
                    token.secret_hash,
                    now,
                    token.name,
                    token.expires_at,
                    token.read_only
                ])
            })
            .db()?;
            let id = tx.last_insert_rowid();
            audit::append(
                tx,
                now,
                &actor,
                AuditEvent::TokenCreated { partner, token: id },
            )?;
            Ok(Some(TokenRecord {
                id,
                partner,
                key_id: token.key_id,
                secret_hash: token.secret_hash,
                created_at: now,
                revoked_at: None,
                name: token.name,
                expires_at: token.expires_at,
                read_only: token.read_only,
                last_used_at: None,
            }))
        })
        .await
}

/// [`Store::tokens_used`](crate::store::Store::tokens_used).
pub(super) async fn tokens_used(
    store: &SqliteStore,
    used: Vec<(i64, Millis)>,
) -> Result<(), Error> {
    store
        .write(move |tx| {
            let mut update = tx
                .prepare_cached(
                    "UPDATE api_tokens SET last_used_at = ?2 \
                     WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
                )
                .db()?;
            for (id, at) in &used {
                update.execute(params![id, at]).db()?;
            }
            Ok(())
        })
        .await
}

/// [`Store::tokens`](crate::store::Store::tokens).
pub(super) async fn tokens(
    store: &SqliteStore,
    partner: PartnerId,
) -> Result<Vec<TokenRecord>, Error> {
    store
        .read(move |conn| {
            let sql =
                format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE partner_id = ?1 ORDER BY id");
            all(conn, &sql, [partner], decode::token)
        })
        .await
}

/// [`Store::token_by_key`](crate::store::Store::token_by_key).
pub(super) async fn token_by_key(
    store: &SqliteStore,
    key_id: &str,
) -> Result<Option<TokenRecord>, Error> {
    let key_id = key_id.to_owned();
    store
        .read(move |conn| {
            let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE key_id = ?1");
            one(conn, &sql, [key_id], decode::token)
        })
        .await
}

/// [`Store::revoke_token`](crate::store::Store::revoke_token).
pub(super) async fn revoke_token(
    store: &SqliteStore,
    partner: PartnerId,
    token: i64,
    actor: &Actor,
) -> Result<bool, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let now = now_millis();
            let n = tx
                .prepare_cached(
                    "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND partner_id = ?2 AND revoked_at IS NULL",
                )
                .and_then(|mut s| s.execute(params![token, partner, now]))
                .db()?;
            if n > 0 {
                audit::append(tx, now, &actor, AuditEvent::TokenRevoked { partner, token })?;
            }
            Ok(n > 0)
        })
        .await
}

/// [`Store::create_customer`](crate::store::Store::create_customer).
pub(super) async fn create_customer(
    store: &SqliteStore,
    partner: PartnerId,
    fields: CustomerFields,
    actor: &Actor,
) -> Result<CustomerRecord, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let now = now_millis();
            let text = codec::json("customer", &fields)?;
            tx.prepare_cached(
                "INSERT INTO customers (partner_id, fields, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
            )
            .and_then(|mut s| s.execute(params![partner, text, now]))
            .db()?;
            let id = tx.last_insert_rowid();
            audit::append(tx, now, &actor, AuditEvent::CustomerCreated(id))?;
            Ok(CustomerRecord {
                id,
                partner,
                fields,
                created_at: now,
            })
        })
        .await
}

/// [`Store::customers`](crate::store::Store::customers).
pub(super) async fn customers(
    store: &SqliteStore,
    partner: PartnerId,
    page: Page<CustomerId>,
) -> Result<Vec<CustomerRecord>, Error> {
    let limit = codec::page_limit(page.limit).unwrap_or(-1);
    store
        .read(move |conn| {
            let sql = format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers \
                 WHERE partner_id = ?1 AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3"
            );
            all(
                conn,
                &sql,
                rusqlite::params![partner, page.after, limit],
                decode::customer,
            )?
            .into_iter()
            .map(RawCustomer::decode)
            .collect()
        })
        .await
}

/// [`Store::customer`](crate::store::Store::customer).
pub(super) async fn customer(
    store: &SqliteStore,
    partner: PartnerId,
    id: CustomerId,
) -> Result<Option<CustomerRecord>, Error> {
    store
        .read(move |conn| {
            let sql = format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?1 AND partner_id = ?2"
            );
            one(conn, &sql, [id, partner], decode::customer)?
                .map(RawCustomer::decode)
                .transpose()
        })
        .await
}

/// [`Store::update_customer`](crate::store::Store::update_customer).
pub(super) async fn update_customer(
    store: &SqliteStore,
    partner: PartnerId,
    id: CustomerId,
    fields: CustomerFields,
    actor: &Actor,
) -> Result<Option<CustomerRecord>, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let now = now_millis();
            let text = codec::json("customer", &fields)?;
            let n = tx
                .prepare_cached(
                    "UPDATE customers SET fields = ?3, updated_at = ?4 WHERE id = ?1 AND partner_id = ?2",
                )
                .and_then(|mut s| s.execute(params![id, partner, text, now]))
                .db()?;
            if n == 0 {
                return Ok(None);
            }
            audit::append(tx, now, &actor, AuditEvent::CustomerUpdated(id))?;
            let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?1");
            one(tx, &sql, [id], decode::customer)?
                .map(RawCustomer::decode)
                .transpose()
        })
        .await
}
