//! Portal users in PostgreSQL: partner users and the operator's administrators, their one-time set-password links and their
//! sessions (links and session ids stored only as SHA-256 hashes), shared by every node so any
//! node accepts a session.
//!
//! Must not know how a password is hashed, how a token is generated, or when a session expires
//! (the caller says).

use std::net::IpAddr;

use tokio_postgres::Row;

use super::decode::get;
use super::failure::{corrupt, Failure};
use super::PostgresStore;
use crate::domain::PartnerId;
use crate::store::codec::AuditEvent;
use crate::store::{
    now_millis, rules, Actor, Error, Millis, PasswordLink, SessionRecord, UserRecord,
};

const USER_COLUMNS: &str = "id, partner_id, email, password_hash, language, disabled, created_at";

fn user(row: &Row) -> Result<UserRecord, Failure> {
    Ok(UserRecord {
        id: get(row, 0)?,
        partner: get(row, 1)?,
        email: get(row, 2)?,
        password_hash: get(row, 3)?,
        language: get(row, 4)?,
        disabled: get(row, 5)?,
        created_at: get(row, 6)?,
    })
}

fn session_row(row: &Row) -> Result<SessionRecord, Failure> {
    Ok(SessionRecord {
        id_hash: get(row, 0)?,
        user: get(row, 1)?,
        csrf: get(row, 2)?,
        created_at: get(row, 3)?,
        last_seen: get(row, 4)?,
    })
}

/// [`Store::create_user`](crate::store::Store::create_user).
pub(super) async fn create(
    store: &PostgresStore,
    partner: Option<PartnerId>,
    email: &str,
    link: PasswordLink,
    actor: &Actor,
) -> Result<Option<UserRecord>, Error> {
    let (email, actor) = (email.to_owned(), actor.clone());
    store
        .write("create_user", move |tx| {
            let (email, actor, link) = (email.clone(), actor.clone(), link.clone());
            Box::pin(async move {
                let now = now_millis();
                let c = tx.conn();
                if let Some(partner) = partner {
                    if c.query_opt(
                        "SELECT id FROM partners WHERE id = $1 FOR KEY SHARE",
                        &[&partner],
                    )
                    .await?
                    .is_none()
                    {
                        return Ok(None);
                    }
                }
                let Some(row) = c
                    .query_opt(
                        "INSERT INTO partner_users (partner_id, role, email, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO NOTHING RETURNING id",
                        &[&partner, &rules::user_role(partner), &email, &now],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let id: i64 = get(&row, 0)?;
                c.execute(
                    "INSERT INTO password_links (token_hash, user_id, expires_at) \
                     VALUES ($1, $2, $3)",
                    &[&link.token_hash, &id, &link.expires_at],
                )
                .await?;
                tx.audit(
                    now,
                    &actor,
                    AuditEvent::UserCreated {
                        partner,
                        user: id,
                        email: &email,
                    },
                );
                Ok(Some(UserRecord {
                    id,
                    partner,
                    email,
                    password_hash: None,
                    language: None,
                    disabled: false,
                    created_at: now,
                }))
            })
        })
        .await
}

/// [`Store::user`](crate::store::Store::user).
pub(super) async fn by_id(store: &PostgresStore, id: i64) -> Result<Option<UserRecord>, Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM partner_users WHERE id = $1");
    store.read_one("user", &sql, &[&id], user).await
}

/// [`Store::users`](crate::store::Store::users).
pub(super) async fn list(
    store: &PostgresStore,
    partner: Option<PartnerId>,
) -> Result<Vec<UserRecord>, Error> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM partner_users \
         WHERE ($1::bigint IS NULL OR partner_id = $1) ORDER BY id"
    );
    store.read_all("users", &sql, &[&partner], user).await
}

/// [`Store::user_by_email`](crate::store::Store::user_by_email).
pub(super) async fn by_email(
    store: &PostgresStore,
    email: &str,
) -> Result<Option<UserRecord>, Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM partner_users WHERE email = $1");
    store.read_one("user_by_email", &sql, &[&email], user).await
}

/// [`Store::issue_password_link`](crate::store::Store::issue_password_link).
pub(super) async fn issue_link(
    store: &PostgresStore,
    user_id: i64,
    link: PasswordLink,
    actor: &Actor,
) -> Result<bool, Error> {
    let actor = actor.clone();
    store
        .write("issue_password_link", move |tx| {
            let (actor, link) = (actor.clone(), link.clone());
            Box::pin(async move {
                let c = tx.conn();
                let Some(row) = c
                    .query_opt(
                        "SELECT partner_id FROM partner_users WHERE id = $1 FOR UPDATE",
                        &[&user_id],
                    )
                    .await?
                else {
                    return Ok(false);
                };
                let owner: Option<PartnerId> = get(&row, 0)?;
                if !rules::user_in_reach(&actor, owner) {
                    return Ok(false);
                }
                c.execute("DELETE FROM password_links WHERE user_id = $1", &[&user_id])
                    .await?;
                c.execute(
                    "INSERT INTO password_links (token_hash, user_id, expires_at) \
                     VALUES ($1, $2, $3)",
                    &[&link.token_hash, &user_id, &link.expires_at],
                )
                .await?;
                tx.audit(
                    now_millis(),
                    &actor,
                    AuditEvent::PasswordLinkIssued(user_id),
                );
                Ok(true)
            })
        })
        .await
}

/// [`Store::set_password`](crate::store::Store::set_password).
pub(super) async fn set_password(
    store: &PostgresStore,
    token_hash: &[u8],
    password_hash: &str,
    now: Millis,
    source: Option<IpAddr>,
) -> Result<Option<UserRecord>, Error> {
    let (token_hash, password_hash) = (token_hash.to_vec(), password_hash.to_owned());
    store
        .write("set_password", move |tx| {
            let (token_hash, password_hash) = (token_hash.clone(), password_hash.clone());
            Box::pin(async move {
                let c = tx.conn();
                // A link is used once, expired or not; of two concurrent uses one deletes it.
                let Some(row) = c
                    .query_opt(
                        "DELETE FROM password_links WHERE token_hash = $1 \
                         RETURNING user_id, expires_at",
                        &[&token_hash],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let (user_id, expires_at): (i64, i64) = (get(&row, 0)?, get(&row, 1)?);
                if expires_at <= now {
                    return Ok(None);
                }
                c.execute(
                    "UPDATE partner_users SET password_hash = $2 WHERE id = $1",
                    &[&user_id, &password_hash],
                )
                .await?;
                c.execute(
                    "DELETE FROM portal_sessions WHERE user_id = $1",
                    &[&user_id],
                )
                .await?;
                let sql = format!("SELECT {USER_COLUMNS} FROM partner_users WHERE id = $1");
                let Some(row) = c.query_opt(&sql, &[&user_id]).await? else {
                    return Err(corrupt("user", "a link names a missing user"));
                };
                let record = user(&row)?;
                let actor = crate::store::rules::user_actor(&record, source);
                tx.audit(now, &actor, AuditEvent::PasswordSet(user_id));
                Ok(Some(record))
            })
        })
        .await
}

/// [`Store::set_user_language`](crate::store::Store::set_user_language).
pub(super) async fn set_language(
    store: &PostgresStore,
    user_id: i64,
    language: &str,
) -> Result<bool, Error> {
    let language = language.to_owned();
    store
        .write("set_user_language", move |tx| {
            let language = language.clone();
            Box::pin(async move {
                let n = tx
                    .conn()
                    .execute(
                        "UPDATE partner_users SET language = $2 WHERE id = $1",
                        &[&user_id, &language],
                    )
                    .await?;
                Ok(n == 1)
            })
        })
        .await
}

/// [`Store::set_user_disabled`](crate::store::Store::set_user_disabled).
pub(super) async fn set_disabled(
    store: &PostgresStore,
    user_id: i64,
    disabled: bool,
    actor: &Actor,
) -> Result<Option<UserRecord>, Error> {
    let actor = actor.clone();
    store
        .write("set_user_disabled", move |tx| {
            let actor = actor.clone();
            Box::pin(async move {
                let c = tx.conn();
                let sql =
                    format!("SELECT {USER_COLUMNS} FROM partner_users WHERE id = $1 FOR UPDATE");
                let Some(row) = c.query_opt(&sql, &[&user_id]).await? else {
                    return Ok(None);
                };
                let mut record = user(&row)?;
                if !rules::user_in_reach(&actor, record.partner) {
                    return Ok(None);
                }
                c.execute(
                    "UPDATE partner_users SET disabled = $2 WHERE id = $1",
                    &[&user_id, &disabled],
                )
                .await?;
                if disabled {
                    // In the same transaction, so no request can start on a session once the
                    // change is visible.
                    c.execute(
                        "DELETE FROM portal_sessions WHERE user_id = $1",
                        &[&user_id],
                    )
                    .await?;
                }
                tx.audit(
                    now_millis(),
                    &actor,
                    AuditEvent::UserDisabled {
                        user: user_id,
                        email: &record.email,
                        disabled,
                    },
                );
                record.disabled = disabled;
                Ok(Some(record))
            })
        })
        .await
}

/// [`Store::create_session`](crate::store::Store::create_session).
pub(super) async fn create_session(
    store: &PostgresStore,
    session: SessionRecord,
    idle_before: Millis,
    created_before: Millis,
) -> Result<(), Error> {
    store
        .write("create_session", move |tx| {
            let session = session.clone();
            Box::pin(async move {
                let c = tx.conn();
                c.execute(
                    "DELETE FROM portal_sessions WHERE last_seen < $1 OR created_at < $2",
                    &[&idle_before, &created_before],
                )
                .await?;
                c.execute(
                    "INSERT INTO portal_sessions (id_hash, user_id, csrf, created_at, last_seen) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &session.id_hash,
                        &session.user,
                        &session.csrf,
                        &session.created_at,
                        &session.last_seen,
                    ],
                )
                .await?;
                Ok(())
            })
        })
        .await
}

/// [`Store::session`](crate::store::Store::session).
pub(super) async fn session(
    store: &PostgresStore,
    id_hash: &[u8],
) -> Result<Option<SessionRecord>, Error> {
    store
        .read_one(
            "session",
            "SELECT id_hash, user_id, csrf, created_at, last_seen FROM portal_sessions \
             WHERE id_hash = $1",
            &[&id_hash],
            session_row,
        )
        .await
}

/// [`Store::touch_session`](crate::store::Store::touch_session).
pub(super) async fn touch_session(
    store: &PostgresStore,
    id_hash: &[u8],
    at: Millis,
) -> Result<(), Error> {
    let id_hash = id_hash.to_vec();
    store
        .write("touch_session", move |tx| {
            let id_hash = id_hash.clone();
            Box::pin(async move {
                tx.conn()
                    .execute(
                        "UPDATE portal_sessions SET last_seen = GREATEST(last_seen, $2) \
                         WHERE id_hash = $1",
                        &[&id_hash, &at],
                    )
                    .await?;
                Ok(())
            })
        })
        .await
}

/// [`Store::delete_session`](crate::store::Store::delete_session).
pub(super) async fn delete_session(store: &PostgresStore, id_hash: &[u8]) -> Result<(), Error> {
    let id_hash = id_hash.to_vec();
    store
        .write("delete_session", move |tx| {
            let id_hash = id_hash.clone();
            Box::pin(async move {
                tx.conn()
                    .execute(
                        "DELETE FROM portal_sessions WHERE id_hash = $1",
                        &[&id_hash],
                    )
                    .await?;
                Ok(())
            })
        })
        .await
}
