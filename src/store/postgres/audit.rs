//! The audit log in PostgreSQL: reading pages. Entries are appended by each write transaction
//! at commit (`transaction::Tx::audit`), in commit order.
//!
//! Must not know anything else.

use super::decode;
use super::PostgresStore;
use crate::store::codec;
use crate::store::{AuditEntry, AuditQuery, Error};

/// [`Store::audit_log`](crate::store::Store::audit_log).
pub(super) async fn log(store: &PostgresStore, q: AuditQuery) -> Result<Vec<AuditEntry>, Error> {
    let mac = q.mac.map(|m| m.to_string());
    store
        .read_all(
            "audit_log",
            "SELECT id, at, actor, source, action, mac, tenant, detail FROM audit \
             WHERE id > $1 AND ($2::text IS NULL OR mac = $2) AND ($3::text IS NULL OR tenant = $3) \
             AND ($5::bigint IS NULL OR partner_id = $5) AND ($6::text IS NULL OR action = $6) \
             AND ($7::text IS NULL OR strpos(lower(actor), lower($7)) > 0) AND ($8::bigint IS NULL OR at >= $8) \
             AND ($9::bigint IS NULL OR at < $9) ORDER BY id LIMIT $4",
            &[
                &q.after.unwrap_or(0),
                &mac,
                &q.tenant,
                &codec::limit(q.limit),
                &q.partner,
                &q.action,
                &q.actor,
                &q.since,
                &q.until,
            ],
            decode::audit_entry,
        )
        .await
}
