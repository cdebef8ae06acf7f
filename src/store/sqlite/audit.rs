//! The audit log in SQLite: appending an entry inside a write transaction, and reading pages.
//!
//! What an entry holds is the store's shared `codec::AuditRow`; which operation writes which
//! action is the operations' business. Must not know anything else.

use rusqlite::{params, Transaction};

use super::connection::{all, Db};
use super::decode;
use super::SqliteStore;
use crate::store::codec::{self, AuditEvent, AuditRow};
use crate::store::{Actor, AuditEntry, AuditQuery, Error, Millis};

/// Appends the audit entry `actor` leaves at `at` for `event`.
pub(super) fn append(
    tx: &Transaction<'_>,
    at: Millis,
    actor: &Actor,
    event: AuditEvent<'_>,
) -> Result<(), Error> {
    let row = AuditRow::new(at, actor, event);
    tx.prepare_cached(
        "INSERT INTO audit (at, actor, source, action, mac, tenant, detail, partner_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            row.at,
            row.actor,
            row.source,
            row.action,
            row.mac,
            row.tenant,
            row.detail,
            row.partner
        ])
    })
    .db()?;
    Ok(())
}

/// [`Store::audit_log`](crate::store::Store::audit_log).
pub(super) async fn log(store: &SqliteStore, q: AuditQuery) -> Result<Vec<AuditEntry>, Error> {
    store
        .read(move |conn| {
            all(
                conn,
                "SELECT id, at, actor, source, action, mac, tenant, detail FROM audit \
                 WHERE id > ?1 AND (?2 IS NULL OR mac = ?2) AND (?3 IS NULL OR tenant = ?3) \
                 AND (?5 IS NULL OR partner_id = ?5) AND (?6 IS NULL OR action = ?6) \
                 AND (?7 IS NULL OR instr(lower(actor), lower(?7)) > 0) AND (?8 IS NULL OR at >= ?8) \
                 AND (?9 IS NULL OR at < ?9) ORDER BY id LIMIT ?4",
                params![
                    q.after.unwrap_or(0),
                    q.mac.map(|m| m.to_string()),
                    q.tenant,
                    codec::limit(q.limit),
                    q.partner,
                    q.action,
                    q.actor,
                    q.since,
                    q.until
                ],
                decode::audit_entry,
            )
        })
        .await
}
