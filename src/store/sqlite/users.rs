//! Portal users in SQLite: partner users and the operator's administrators, their one-time set-password links and their sessions
//! (links and session ids stored only as SHA-256 hashes).
//!
//! Must not know how a password is hashed, how a token is generated, or when a session expires
//! (the caller says).

use rusqlite::{params, OptionalExtension, Row};

use super::connection::{all, one, Db};
use super::{audit, SqliteStore};
use crate::domain::PartnerId;
use crate::store::codec::AuditEvent;
use crate::store::{
    now_millis, rules, Actor, Error, Millis, PasswordLink, SessionRecord, UserRecord,
};
use std::net::IpAddr;

const USER_COLUMNS: &str = "id, partner_id, email, password_hash, language, disabled, created_at";

fn user(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: r.get(0)?,
        partner: r.get(1)?,
        email: r.get(2)?,
        password_hash: r.get(3)?,
        language: r.get(4)?,
        disabled: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id_hash: r.get(0)?,
        user: r.get(1)?,
        csrf: r.get(2)?,
        created_at: r.get(3)?,
        last_seen: r.get(4)?,
    })
}

/// [`Store::create_user`](crate::store::Store::create_user).
pub(super) async fn create(
    store: &SqliteStore,
    partner: Option<PartnerId>,
    email: &str,
    link: PasswordLink,
    actor: &Actor,
) -> Result<Option<UserRecord>, Error> {
    let (email, actor) = (email.to_owned(), actor.clone());
    store
        .write(move |tx| {
            let now = now_millis();
            if let Some(partner) = partner {
                let exists: Option<i64> = one(
                    tx,
                    "SELECT id FROM partners WHERE id = ?1",
                    [partner],
                    |r| r.get(0),
                )?;
                if exists.is_none() {
                    return Ok(None);
                }
            }
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO partner_users (partner_id, role, email, created_at) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT(email) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![partner, rules::user_role(partner), email, now])
                })
                .db()?;
            if inserted == 0 {
                return Ok(None);
            }
            let id = tx.last_insert_rowid();
            tx.prepare_cached(
                "INSERT INTO password_links (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![link.token_hash, id, link.expires_at]))
            .db()?;
            let event = AuditEvent::UserCreated {
                partner,
                user: id,
                email: &email,
            };
            audit::append(tx, now, &actor, event)?;
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
        .await
}

/// [`Store::user`](crate::store::Store::user).
pub(super) async fn by_id(store: &SqliteStore, id: i64) -> Result<Option<UserRecord>, Error> {
    store
        .read(move |conn| {
            let sql = format!("SELECT {USER_COLUMNS} FROM partner_users WHERE id = ?1");
            one(conn, &sql, [id], user)
        })
        .await
}

/// [`Store::users`](crate::store::Store::users).
pub(super) async fn list(
    store: &SqliteStore,
    partner: Option<PartnerId>,
) -> Result<Vec<UserRecord>, Error> {
    store
        .read(move |conn| {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM partner_users \
                 WHERE (?1 IS NULL OR partner_id = ?1) ORDER BY id"
            );
            all(conn, &sql, [partner], user)
        })
        .await
}

/// [`Store::user_by_email`](crate::store::Store::user_by_email).
pub(super) async fn by_email(
    store: &SqliteStore,
    email: &str,
) -> Result<Option<UserRecord>, Error> {
    let email = email.to_owned();
    store
        .read(move |conn| {
            let sql = format!("SELECT {USER_COLUMNS} FROM partner_users WHERE email = ?1");
            one(conn, &sql, [email], user)
        })
        .await
}

/// [`Store::issue_password_link`](crate::store::Store::issue_password_link).
pub(super) async fn issue_link(
    store: &SqliteStore,
    user_id: i64,
    link: PasswordLink,
    actor: &Actor,
) -> Result<bool, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let owner: Option<Option<PartnerId>> = one(
                tx,
                "SELECT partner_id FROM partner_users WHERE id = ?1",
                [user_id],
                |r| r.get(0),
            )?;
            let Some(owner) = owner else {
                return Ok(false);
            };
            if !rules::user_in_reach(&actor, owner) {
                return Ok(false);
            }
            tx.prepare_cached("DELETE FROM password_links WHERE user_id = ?1")
                .and_then(|mut s| s.execute([user_id]))
                .db()?;
            tx.prepare_cached(
                "INSERT INTO password_links (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![link.token_hash, user_id, link.expires_at]))
            .db()?;
            audit::append(
                tx,
                now_millis(),
                &actor,
                AuditEvent::PasswordLinkIssued(user_id),
            )?;
            Ok(true)
        })
        .await
}

/// [`Store::set_password`](crate::store::Store::set_password).
pub(super) async fn set_password(
    store: &SqliteStore,
    token_hash: &[u8],
    password_hash: &str,
    now: Millis,
    source: Option<IpAddr>,
) -> Result<Option<UserRecord>, Error> {
    let (token_hash, password_hash) = (token_hash.to_vec(), password_hash.to_owned());
    store
        .write(move |tx| {
            let found: Option<(i64, Millis)> = tx
                .prepare_cached(
                    "SELECT user_id, expires_at FROM password_links WHERE token_hash = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([&token_hash], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .db()?;
            let Some((user_id, expires_at)) = found else {
                return Ok(None);
            };
            // A link is used once, expired or not.
            tx.prepare_cached("DELETE FROM password_links WHERE token_hash = ?1")
                .and_then(|mut s| s.execute([&token_hash]))
                .db()?;
            if expires_at <= now {
                return Ok(None);
            }
            tx.prepare_cached("UPDATE partner_users SET password_hash = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![user_id, password_hash]))
                .db()?;
            tx.prepare_cached("DELETE FROM portal_sessions WHERE user_id = ?1")
                .and_then(|mut s| s.execute([user_id]))
                .db()?;
            let sql = format!("SELECT {USER_COLUMNS} FROM partner_users WHERE id = ?1");
            let Some(record) = one(tx, &sql, [user_id], user)? else {
                return Ok(None);
            };
            let actor = crate::store::rules::user_actor(&record, source);
            audit::append(tx, now, &actor, AuditEvent::PasswordSet(user_id))?;
            Ok(Some(record))
        })
        .await
}

/// [`Store::set_user_language`](crate::store::Store::set_user_language).
pub(super) async fn set_language(
    store: &SqliteStore,
    user_id: i64,
    language: &str,
) -> Result<bool, Error> {
    let language = language.to_owned();
    store
        .write(move |tx| {
            tx.prepare_cached("UPDATE partner_users SET language = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![user_id, language]))
                .map(|n| n == 1)
                .db()
        })
        .await
}

/// [`Store::set_user_disabled`](crate::store::Store::set_user_disabled).
pub(super) async fn set_disabled(
    store: &SqliteStore,
    user_id: i64,
    disabled: bool,
    actor: &Actor,
) -> Result<Option<UserRecord>, Error> {
    let actor = actor.clone();
    store
        .write(move |tx| {
            let sql = format!("SELECT {USER_COLUMNS} FROM partner_users WHERE id = ?1");
            let Some(mut record) = one(tx, &sql, [user_id], user)? else {
                return Ok(None);
            };
            if !rules::user_in_reach(&actor, record.partner) {
                return Ok(None);
            }
            tx.prepare_cached("UPDATE partner_users SET disabled = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![user_id, disabled]))
                .db()?;
            if disabled {
                // In the same transaction, so no request can start on a session once the
                // change is visible.
                tx.prepare_cached("DELETE FROM portal_sessions WHERE user_id = ?1")
                    .and_then(|mut s| s.execute([user_id]))
                    .db()?;
            }
            let event = AuditEvent::UserDisabled {
                user: user_id,
                email: &record.email,
                disabled,
            };
            audit::append(tx, now_millis(), &actor, event)?;
            record.disabled = disabled;
            Ok(Some(record))
        })
        .await
}

/// [`Store::create_session`](crate::store::Store::create_session).
pub(super) async fn create_session(
    store: &SqliteStore,
    session: SessionRecord,
    idle_before: Millis,
    created_before: Millis,
) -> Result<(), Error> {
    store
        .write(move |tx| {
            tx.prepare_cached(
                "DELETE FROM portal_sessions WHERE last_seen < ?1 OR created_at < ?2",
            )
            .and_then(|mut s| s.execute([idle_before, created_before]))
            .db()?;
            tx.prepare_cached(
                "INSERT INTO portal_sessions (id_hash, user_id, csrf, created_at, last_seen) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    session.id_hash,
                    session.user,
                    session.csrf,
                    session.created_at,
                    session.last_seen
                ])
            })
            .db()?;
            Ok(())
        })
        .await
}

/// [`Store::session`](crate::store::Store::session).
pub(super) async fn session(
    store: &SqliteStore,
    id_hash: &[u8],
) -> Result<Option<SessionRecord>, Error> {
    let id_hash = id_hash.to_vec();
    store
        .read(move |conn| {
            one(
                conn,
                "SELECT id_hash, user_id, csrf, created_at, last_seen FROM portal_sessions \
                 WHERE id_hash = ?1",
                [id_hash],
                session_row,
            )
        })
        .await
}

/// [`Store::touch_session`](crate::store::Store::touch_session).
pub(super) async fn touch_session(
    store: &SqliteStore,
    id_hash: &[u8],
    at: Millis,
) -> Result<(), Error> {
    let id_hash = id_hash.to_vec();
    store
        .write(move |tx| {
            tx.prepare_cached(
                "UPDATE portal_sessions SET last_seen = max(last_seen, ?2) WHERE id_hash = ?1",
            )
            .and_then(|mut s| s.execute(params![id_hash, at]))
            .db()?;
            Ok(())
        })
        .await
}

/// [`Store::delete_session`](crate::store::Store::delete_session).
pub(super) async fn delete_session(store: &SqliteStore, id_hash: &[u8]) -> Result<(), Error> {
    let id_hash = id_hash.to_vec();
    store
        .write(move |tx| {
            tx.prepare_cached("DELETE FROM portal_sessions WHERE id_hash = ?1")
                .and_then(|mut s| s.execute([id_hash]))
                .db()?;
            Ok(())
        })
        .await
}
