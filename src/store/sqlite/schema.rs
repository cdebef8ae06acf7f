//! The SQLite schema: its migrations, in order, and applying them.
//!
//! `PRAGMA user_version` records how many migrations a database has had; a database migrated
//! by a newer build is refused. Owns the table definitions; the data step of migration 3 is the
//! store's shared rule (`rules::migrated_*`), only its SQL is here. Must not know operations.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::connection::{unavailable, Db};
use crate::store::{now_millis, rules, Error, MigrateReport};

/// One schema migration: SQL, or SQL followed by a data conversion written in Rust, or SQL
/// that rebuilds a table other tables refer to.
enum Migration {
    Sql(&'static str),
    SqlThen(&'static str, fn(&Transaction<'_>) -> Result<(), Error>),
    /// SQLite cannot drop a column's NOT NULL in place: the table is copied into a new one,
    /// the old one dropped and the new one renamed (SQLite's documented 12-step procedure).
    /// Dropping a table others refer to is refused while foreign keys are enforced, and the
    /// pragma that stops enforcing them is ignored inside a transaction, so enforcement is
    /// off around this migration's transaction, and `foreign_key_check` must find nothing
    /// before it commits.
    Rebuild(&'static str),
}

/// Schema migrations, in order; `PRAGMA user_version` records how many have been applied.
const MIGRATIONS: &[Migration] = &[
    // 1: tenants, devices, last-seen status, change feed, audit.
    Migration::Sql(
        r#"
    CREATE TABLE tenants (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        settings    TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    CREATE TABLE devices (
        mac         TEXT PRIMARY KEY,
        vendor      TEXT NOT NULL,
        tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
        claim_code  TEXT,
        settings    TEXT NOT NULL,
        claimed_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX devices_by_tenant ON devices(tenant_id);
    CREATE TABLE device_status (
        mac          TEXT PRIMARY KEY REFERENCES devices(mac) ON DELETE CASCADE,
        last_seen    INTEGER NOT NULL,
        source_ip    TEXT NOT NULL,
        user_agent   TEXT NOT NULL,
        model        TEXT,
        firmware     TEXT,
        last_file    TEXT NOT NULL,
        last_outcome TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE changes (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        entity  TEXT NOT NULL,
        key     TEXT NOT NULL,
        at      INTEGER NOT NULL
    );
    CREATE TABLE audit (
        id      INTEGER PRIMARY KEY,
        at      INTEGER NOT NULL,
        actor   TEXT NOT NULL,
        source  TEXT,
        action  TEXT NOT NULL,
        mac     TEXT,
        tenant  TEXT,
        detail  TEXT
    );
    CREATE INDEX audit_by_time ON audit(at);
    "#,
    ),
    // 2: partners, their API tokens and customers; tenants owned by partners.
    Migration::Sql(
        r#"
    CREATE TABLE partners (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE api_tokens (
        id          INTEGER PRIMARY KEY,
        partner_id  INTEGER NOT NULL REFERENCES partners(id),
        key_id      TEXT NOT NULL UNIQUE,
        secret_hash BLOB NOT NULL,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    );
    CREATE TABLE customers (
        id          INTEGER PRIMARY KEY,
        partner_id  INTEGER NOT NULL REFERENCES partners(id),
        fields      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    CREATE INDEX customers_by_partner ON customers(partner_id);
    ALTER TABLE tenants ADD COLUMN partner_id INTEGER REFERENCES partners(id);
    ALTER TABLE tenants ADD COLUMN customer_id INTEGER REFERENCES customers(id);
    CREATE INDEX tenants_by_partner ON tenants(partner_id);
    CREATE INDEX device_status_by_seen ON device_status(last_seen);
    CREATE INDEX audit_by_mac ON audit(mac);
    "#,
    ),
    // 3: phone authentication. Gigaset label codes are replaced by the HA1s of the MAC-ID;
    // devices get provisioning credentials (HA1s) and an enrolment window; a table of
    // server-wide secrets (the Digest nonce key).
    Migration::SqlThen(
        r#"
    ALTER TABLE devices ADD COLUMN claim_secret TEXT;
    ALTER TABLE devices ADD COLUMN credentials TEXT;
    ALTER TABLE devices ADD COLUMN enrol_until INTEGER;
    CREATE TABLE server_secrets (
        name   TEXT PRIMARY KEY,
        value  BLOB NOT NULL
    );
    "#,
        hash_claim_codes,
    ),
    // 4: how a device was enrolled (when, from where, by what), shown to its partner; the
    // `mtls` phone authentication, which never did anything, becomes `enrolment`.
    Migration::Sql(
        r#"
    ALTER TABLE devices ADD COLUMN enrolment TEXT;
    UPDATE tenants SET settings = replace(settings, '"phone_auth":"mtls"', '"phone_auth":"enrolment"');
    "#,
    ),
    // 5: partners manage their own API tokens: a name, an expiry, read-only scope, and when
    // each was last used; a device's last failed authentication, apart from its last-seen
    // status, for the per-instance count of devices failing to authenticate.
    Migration::Sql(
        r#"
    CREATE TABLE device_auth_failures (
        mac         TEXT PRIMARY KEY REFERENCES devices(mac) ON DELETE CASCADE,
        at          INTEGER NOT NULL,
        source_ip   TEXT NOT NULL,
        user_agent  TEXT NOT NULL
    ) WITHOUT ROWID;
    ALTER TABLE api_tokens ADD COLUMN name TEXT;
    ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
    ALTER TABLE api_tokens ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER;
    "#,
    ),
    // 6: the redirect outbox: registrations with the vendors' redirect services, queued in
    // the claim's or release's transaction and delivered by a worker, oldest first per MAC;
    // each claimed device's redirect state as its partner sees it (with a Gigaset's label code,
    // which its vendor needs again to deregister it).
    Migration::Sql(
        r#"
    CREATE TABLE redirect_outbox (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        mac           TEXT NOT NULL,
        vendor        TEXT NOT NULL,
        action        TEXT NOT NULL,
        claim_code    TEXT,
        queued_at     INTEGER NOT NULL,
        attempts      INTEGER NOT NULL DEFAULT 0,
        next_try_at   INTEGER NOT NULL,
        lease_owner   TEXT,
        leased_until  INTEGER,
        last_error    TEXT
    );
    CREATE INDEX redirect_outbox_by_mac ON redirect_outbox(mac, id);
    CREATE INDEX redirect_outbox_by_due ON redirect_outbox(next_try_at);
    CREATE TABLE redirect_states (
        mac          TEXT PRIMARY KEY,
        vendor       TEXT NOT NULL,
        state        TEXT NOT NULL,
        claim_code   TEXT,
        reason       TEXT,
        next_try_at  INTEGER,
        updated_at   INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    ),
    // 7: the partner portal: users of a partner (e-mail, argon2id hash, language), their
    // one-time set-password links and their sessions (links and session ids stored hashed);
    // the partner whose caller left each audit entry, for the partner's own audit page.
    Migration::Sql(
        r#"
    CREATE TABLE partner_users (
        id             INTEGER PRIMARY KEY,
        partner_id     INTEGER NOT NULL REFERENCES partners(id),
        email          TEXT NOT NULL UNIQUE,
        password_hash  TEXT,
        language       TEXT,
        disabled       INTEGER NOT NULL DEFAULT 0,
        created_at     INTEGER NOT NULL
    );
    CREATE INDEX partner_users_by_partner ON partner_users(partner_id);
    CREATE TABLE password_links (
        token_hash  BLOB PRIMARY KEY,
        user_id     INTEGER NOT NULL UNIQUE REFERENCES partner_users(id),
        expires_at  INTEGER NOT NULL
    );
    CREATE TABLE portal_sessions (
        id_hash     BLOB PRIMARY KEY,
        user_id     INTEGER NOT NULL REFERENCES partner_users(id),
        csrf        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        last_seen   INTEGER NOT NULL
    );
    CREATE INDEX portal_sessions_by_user ON portal_sessions(user_id);
    CREATE INDEX portal_sessions_by_seen ON portal_sessions(last_seen);
    ALTER TABLE audit ADD COLUMN partner_id INTEGER;
    CREATE INDEX audit_by_partner ON audit(partner_id, id);
    "#,
    ),
    // 8: the operator's administrators log in to the portal too. They are rows of the same
    // table (one login, one session and link mechanism, one unique e-mail across both) with
    // no partner and the role `admin`; the role column makes an administrator explicit, and
    // the CHECK keeps role and partner in agreement, so a missing partner id alone never
    // makes one. Dropping `partner_id`'s NOT NULL needs the table rebuilt (see `Rebuild`);
    // the table keeps its name, so the links and sessions that refer to it are untouched.
    Migration::Rebuild(
        r#"
    CREATE TABLE partner_users_v8 (
        id             INTEGER PRIMARY KEY,
        partner_id     INTEGER REFERENCES partners(id),
        role           TEXT NOT NULL DEFAULT 'partner' CHECK (role IN ('partner', 'admin')),
        email          TEXT NOT NULL UNIQUE,
        password_hash  TEXT,
        language       TEXT,
        disabled       INTEGER NOT NULL DEFAULT 0,
        created_at     INTEGER NOT NULL,
        CHECK ((role = 'admin') = (partner_id IS NULL))
    );
    INSERT INTO partner_users_v8 (id, partner_id, role, email, password_hash, language, disabled, created_at)
        SELECT id, partner_id, 'partner', email, password_hash, language, disabled, created_at
        FROM partner_users;
    DROP TABLE partner_users;
    ALTER TABLE partner_users_v8 RENAME TO partner_users;
    CREATE INDEX partner_users_by_partner ON partner_users(partner_id);
    "#,
    ),
    // 9: PostgreSQL's trigram index for a search by any part of a MAC. SQLite has no such index
    // and needs none: its search looks for a partner's fragment among the partner's own MACs,
    // which the tenant index holds (`codec::FragmentSearch`). Kept so both backends count
    // their schema versions alike.
    Migration::Sql(""),
];

/// The newest schema version this build knows.
pub(super) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Migration 3's data step: hash stored label codes, drop the plain codes, and give devices
/// claimed before phone authentication existed a fresh enrolment window, so they can enrol.
fn hash_claim_codes(tx: &Transaction<'_>) -> Result<(), Error> {
    let rows: Vec<(String, String)> = tx
        .prepare("SELECT mac, claim_code FROM devices WHERE claim_code IS NOT NULL")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .db()?;
    for (mac, code) in rows {
        let secret = rules::migrated_claim_secret(&mac, &code)?;
        tx.execute(
            "UPDATE devices SET claim_secret = ?2 WHERE mac = ?1",
            params![mac, secret],
        )
        .db()?;
    }
    tx.execute_batch("ALTER TABLE devices DROP COLUMN claim_code;")
        .db()?;
    tx.execute(
        "UPDATE devices SET enrol_until = ?1 WHERE credentials IS NULL",
        [rules::migrated_enrolment_until(now_millis())],
    )
    .db()?;
    Ok(())
}

/// Applies one migration in its own exclusive transaction and records `version`.
fn apply(conn: &mut Connection, migration: &Migration, version: i64) -> Result<(), Error> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .map_err(unavailable)?;
    match migration {
        Migration::Sql(sql) => tx.execute_batch(sql).map_err(unavailable)?,
        Migration::SqlThen(sql, then) => {
            tx.execute_batch(sql).map_err(unavailable)?;
            then(&tx)?;
        }
        Migration::Rebuild(sql) => {
            tx.execute_batch(sql).map_err(unavailable)?;
            let dangling: Option<String> = tx
                .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
                .optional()
                .map_err(unavailable)?;
            if let Some(table) = dangling {
                return Err(Error::Corrupt(format!(
                    "migration {version} would leave rows of {table} referring to nothing"
                )));
            }
        }
    }
    tx.pragma_update(None, "user_version", version)
        .map_err(unavailable)?;
    tx.commit().map_err(unavailable)
}

/// Applies pending migrations, each in its own exclusive transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<MigrateReport, Error> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(unavailable)?;
    if found > VERSION {
        return Err(Error::SchemaTooNew {
            found,
            supported: VERSION,
        });
    }
    let mut applied = Vec::new();
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let rebuild = matches!(migration, Migration::Rebuild(_));
        if rebuild {
            conn.pragma_update(None, "foreign_keys", "OFF")
                .map_err(unavailable)?;
        }
        let result = apply(conn, migration, (i + 1) as i64);
        if rebuild {
            // Enforcement comes back whatever happened: the connection serves on.
            conn.pragma_update(None, "foreign_keys", "ON")
                .map_err(unavailable)?;
        }
        result?;
        tracing::info!(version = i + 1, "applied store migration");
        applied.push((i + 1) as i64);
    }
    Ok(MigrateReport {
        found,
        version: applied.last().copied().unwrap_or(found),
        applied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 8 rebuilds `partner_users` under the links and sessions that refer to it:
    /// every row survives, foreign keys are enforced again afterwards (and still point at the
    /// rebuilt table), and the schema keeps role and partner in agreement.
    #[test]
    fn migration_8_keeps_users_links_and_sessions() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        for (i, m) in MIGRATIONS[..7].iter().enumerate() {
            apply(&mut conn, m, (i + 1) as i64).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO partners (id, name, created_at) VALUES (1, 'acme', 1);
             INSERT INTO partner_users (id, partner_id, email, password_hash, language, disabled, created_at)
             VALUES (5, 1, 'ann@acme.test', 'phc', 'fr', 1, 2);
             INSERT INTO password_links (token_hash, user_id, expires_at) VALUES (x'01', 5, 3);
             INSERT INTO portal_sessions (id_hash, user_id, csrf, created_at, last_seen)
             VALUES (x'02', 5, 'c', 4, 4);",
        )
        .unwrap();
        let report = migrate(&mut conn).unwrap();
        assert_eq!((report.found, report.applied), (7, (8..=VERSION).collect()));
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1, "enforced again");
        let row: (i64, Option<i64>, String, String, Option<String>, String, bool, i64) = conn
            .query_row(
                "SELECT id, partner_id, role, email, password_hash, language, disabled, created_at \
                 FROM partner_users",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(
            row,
            (
                5,
                Some(1),
                "partner".into(),
                "ann@acme.test".into(),
                Some("phc".into()),
                "fr".into(),
                true,
                2
            )
        );
        let refs: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM password_links WHERE user_id = 5) \
                 + (SELECT count(*) FROM portal_sessions WHERE user_id = 5)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(refs, 2);
        assert!(
            conn.execute("DELETE FROM partner_users WHERE id = 5", [])
                .is_err(),
            "the sessions' foreign key points at the rebuilt table"
        );
        conn.execute(
            "INSERT INTO partner_users (partner_id, role, email, created_at) \
             VALUES (NULL, 'admin', 'root@op.test', 5)",
            [],
        )
        .unwrap();
        for (partner, role) in [("NULL", "partner"), ("1", "admin"), ("1", "boss")] {
            let sql = format!(
                "INSERT INTO partner_users (partner_id, role, email, created_at) \
                 VALUES ({partner}, '{role}', 'x-{role}-{partner}@op.test', 5)"
            );
            assert!(conn.execute(&sql, []).is_err(), "{partner} {role}");
        }
    }
}
