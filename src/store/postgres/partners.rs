//! Partner operations in PostgreSQL: partners, their API tokens (stored hashed) and their
//! customers.
//!
//! Must not know tenants, devices, or how a token is generated or checked.

use super::decode::{self, get, CUSTOMER_COLUMNS, PARTNER_COLUMNS, TOKEN_COLUMNS};
use super::failure::corrupt;
use super::PostgresStore;
use crate::domain::{CustomerFields, CustomerId, PartnerId};
use crate::store::codec::{self, AuditEvent};
use crate::store::{
    now_millis, Actor, CustomerRecord, Error, Millis, NewToken, Page, PartnerRecord, TokenRecord,
};

/// [`Store::create_partner`](crate::store::Store::create_partner).
pub(super) async fn create(
    store: &PostgresStore,
    name: &str,
    actor: &Actor,
) -> Result<Option<PartnerRecord>, Error> {
    let (name, actor) = (name.to_owned(), actor.clone());
    store
        .write("create_partner", move |tx| {
            let (name, actor) = (name.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let Some(row) = tx
                    .conn()
                    .query_opt(
                        "INSERT INTO partners (name, created_at) VALUES ($1, $2) \
                     ON CONFLICT (name) DO NOTHING RETURNING id",
                        &[&name, &now],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let id: i64 = get(&row, 0)?;
                tx.audit(
                    now,
                    &actor,
                    AuditEvent::PartnerCreated {
                        partner: id,
                        name: &name,
                    },
                );
                Ok(Some(PartnerRecord {
                    id,
                    name,
                    created_at: now,
                }))
            })
        })
        .await
}

/// [`Store::partners`](crate::store::Store::partners).
pub(super) async fn list(store: &PostgresStore) -> Result<Vec<PartnerRecord>, Error> {
    let sql = format!("SELECT {PARTNER_COLUMNS} FROM partners ORDER BY id");
    store.read_all("partners", &sql, &[], decode::partner).await
}

/// [`Store::partner`](crate::store::Store::partner).
pub(super) async fn by_id(
    store: &PostgresStore,
    id: PartnerId,
) -> Result<Option<PartnerRecord>, Error> {
    let sql = format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE id = $1");
    store
        .read_one("partner", &sql, &[&id], decode::partner)
        .await
}

/// [`Store::partner_by_name`](crate::store::Store::partner_by_name).
pub(super) async fn by_name(
    store: &PostgresStore,
    name: &str,
) -> Result<Option<PartnerRecord>, Error> {
    let sql = format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE name = $1");
    store
        .read_one("partner_by_name", &sql, &[&name], decode::partner)
        .await
}

/// [`Store::create_token`](crate::store::Store::create_token).
pub(super) async fn create_token(
    store: &PostgresStore,
    partner: PartnerId,
    token: NewToken,
    actor: &Actor,
) -> Result<Option<TokenRecord>, Error> {
    let actor = actor.clone();
    store
        .write("create_token", move |tx| {
            let (token, actor) = (token.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                if c.query_opt(
                    "SELECT id FROM partners WHERE id = $1 FOR KEY SHARE",
                    &[&partner],
                )
                .await?
                .is_none()
                {
                    return Ok(None);
                }
                let row = c
                    .query_opt(
                        "INSERT INTO api_tokens \
                         (partner_id, key_id, secret_hash, created_at, name, expires_at, read_only) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                        &[
                            &partner,
                            &token.key_id,
                            &token.secret_hash,
                            &now,
                            &token.name,
                            &token.expires_at,
                            &token.read_only,
                        ],
                    )
                    .await?;
                let Some(row) = row else {
                    return Err(corrupt("token", "insert returned no id"));
                };
                let id: i64 = get(&row, 0)?;
                tx.audit(now, &actor, AuditEvent::TokenCreated { partner, token: id });
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
        })
        .await
}

/// [`Store::tokens_used`](crate::store::Store::tokens_used).
pub(super) async fn tokens_used(
    store: &PostgresStore,
    used: Vec<(i64, Millis)>,
) -> Result<(), Error> {
    let (ids, ats): (Vec<i64>, Vec<i64>) = used.into_iter().unzip();
    store
        .write("tokens_used", move |tx| {
            let (ids, ats) = (ids.clone(), ats.clone());
            Box::pin(async move {
                tx.conn()
                    .execute(
                        "UPDATE api_tokens t SET last_used_at = u.at \
                         FROM unnest($1::bigint[], $2::bigint[]) AS u(id, at) \
                         WHERE t.id = u.id AND (t.last_used_at IS NULL OR t.last_used_at < u.at)",
                        &[&ids, &ats],
                    )
                    .await?;
                Ok(())
            })
        })
        .await
}

/// [`Store::tokens`](crate::store::Store::tokens).
pub(super) async fn tokens(
    store: &PostgresStore,
    partner: PartnerId,
) -> Result<Vec<TokenRecord>, Error> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE partner_id = $1 ORDER BY id");
    store
        .read_all("tokens", &sql, &[&partner], decode::token)
        .await
}

/// [`Store::token_by_key`](crate::store::Store::token_by_key).
pub(super) async fn token_by_key(
    store: &PostgresStore,
    key_id: &str,
) -> Result<Option<TokenRecord>, Error> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE key_id = $1");
    store
        .read_one("token_by_key", &sql, &[&key_id], decode::token)
        .await
}

/// [`Store::revoke_token`](crate::store::Store::revoke_token).
pub(super) async fn revoke_token(
    store: &PostgresStore,
    partner: PartnerId,
    token: i64,
    actor: &Actor,
) -> Result<bool, Error> {
    let actor = actor.clone();
    store
        .write("revoke_token", move |tx| {
            let actor = actor.clone();
            Box::pin(async move {
                let now = now_millis();
                let n = tx
                    .conn()
                    .execute(
                        "UPDATE api_tokens SET revoked_at = $3 \
                     WHERE id = $1 AND partner_id = $2 AND revoked_at IS NULL",
                        &[&token, &partner, &now],
                    )
                    .await?;
                if n > 0 {
                    tx.audit(now, &actor, AuditEvent::TokenRevoked { partner, token });
                }
                Ok(n > 0)
            })
        })
        .await
}

/// [`Store::create_customer`](crate::store::Store::create_customer).
pub(super) async fn create_customer(
    store: &PostgresStore,
    partner: PartnerId,
    fields: CustomerFields,
    actor: &Actor,
) -> Result<CustomerRecord, Error> {
    let actor = actor.clone();
    store
        .write("create_customer", move |tx| {
            let (fields, actor) = (fields.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let text = codec::json("customer", &fields)?;
                let row = tx
                    .conn()
                    .query_opt(
                        "INSERT INTO customers (partner_id, fields, created_at, updated_at) \
                     VALUES ($1, $2, $3, $3) RETURNING id",
                        &[&partner, &text, &now],
                    )
                    .await?;
                let Some(row) = row else {
                    return Err(corrupt("customer", "insert returned no id"));
                };
                let id: i64 = get(&row, 0)?;
                tx.audit(now, &actor, AuditEvent::CustomerCreated(id));
                Ok(CustomerRecord {
                    id,
                    partner,
                    fields,
                    created_at: now,
                })
            })
        })
        .await
}

/// [`Store::customers`](crate::store::Store::customers).
pub(super) async fn customers(
    store: &PostgresStore,
    partner: PartnerId,
    page: Page<CustomerId>,
) -> Result<Vec<CustomerRecord>, Error> {
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers \
         WHERE partner_id = $1 AND ($2::bigint IS NULL OR id > $2) ORDER BY id LIMIT $3"
    );
    let limit = codec::page_limit(page.limit);
    store
        .read_all(
            "customers",
            &sql,
            &[&partner, &page.after, &limit],
            decode::customer,
        )
        .await
}

/// [`Store::customer`](crate::store::Store::customer).
pub(super) async fn customer(
    store: &PostgresStore,
    partner: PartnerId,
    id: CustomerId,
) -> Result<Option<CustomerRecord>, Error> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1 AND partner_id = $2");
    store
        .read_one("customer", &sql, &[&id, &partner], decode::customer)
        .await
}

/// [`Store::update_customer`](crate::store::Store::update_customer).
pub(super) async fn update_customer(
    store: &PostgresStore,
    partner: PartnerId,
    id: CustomerId,
    fields: CustomerFields,
    actor: &Actor,
) -> Result<Option<CustomerRecord>, Error> {
    let actor = actor.clone();
    store
        .write("update_customer", move |tx| {
            let (fields, actor) = (fields.clone(), actor.clone());
            Box::pin(async move {
                let now = now_millis();
                let text = codec::json("customer", &fields)?;
                let sql = format!(
                    "UPDATE customers SET fields = $3, updated_at = $4 \
                 WHERE id = $1 AND partner_id = $2 RETURNING {CUSTOMER_COLUMNS}"
                );
                let Some(row) = tx
                    .conn()
                    .query_opt(&sql, &[&id, &partner, &text, &now])
                    .await?
                else {
                    return Ok(None);
                };
                tx.audit(now, &actor, AuditEvent::CustomerUpdated(id));
                decode::customer(&row).map(Some)
            })
        })
        .await
}
