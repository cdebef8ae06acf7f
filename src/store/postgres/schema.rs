//! The PostgreSQL schema: its migrations, in order, and applying them once however many nodes
//! start together (one transaction holding an advisory lock).
//!
//! `zerotouch_schema.version` records how many migrations a database has had; a database
//! migrated by a newer build is refused. Owns the table definitions; the data step of
//! migration 3 is the store's shared rule (`rules::migrated_*`), only its SQL is here. Must not
//! know operations.

use deadpool_postgres::Object;

use super::decode::get;
use super::failure::Failure;
use super::PostgresStore;
use crate::store::{now_millis, rules, Error, MigrateReport};

/// Schema migrations, in order; `zerotouch_schema.version` records how many have been applied.
/// The logical schema is SQLite's (`sqlite/schema.rs`); text keys that are ordered or range-scanned
/// (MACs, names) use the "C" collation so that order is byte order whatever the database's
/// locale, exactly as in SQLite and as `Mac` orders.
pub(super) const MIGRATIONS: &[Migration] = &[
    // 1: tenants, devices, last-seen status, change feed, audit.
    Migration::Sql(
        r#"
    CREATE TABLE tenants (
        id          BIGSERIAL PRIMARY KEY,
        name        TEXT COLLATE "C" NOT NULL UNIQUE,
        settings    TEXT NOT NULL,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL
    );
    CREATE TABLE devices (
        mac         TEXT COLLATE "C" PRIMARY KEY,
        vendor      TEXT NOT NULL,
        tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
        claim_code  TEXT,
        settings    TEXT NOT NULL,
        claimed_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL
    );
    CREATE INDEX devices_by_tenant ON devices(tenant_id);
    CREATE TABLE device_status (
        mac          TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(mac) ON DELETE CASCADE,
        last_seen    BIGINT NOT NULL,
        source_ip    TEXT NOT NULL,
        user_agent   TEXT NOT NULL,
        model        TEXT,
        firmware     TEXT,
        last_file    TEXT NOT NULL,
        last_outcome TEXT NOT NULL
    );
    CREATE TABLE changes (
        seq     BIGSERIAL PRIMARY KEY,
        entity  TEXT NOT NULL,
        key     TEXT NOT NULL,
        at      BIGINT NOT NULL
    );
    CREATE TABLE audit (
        id      BIGSERIAL PRIMARY KEY,
        at      BIGINT NOT NULL,
        actor   TEXT NOT NULL,
        source  TEXT,
        action  TEXT NOT NULL,
        mac     TEXT COLLATE "C",
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
        id          BIGSERIAL PRIMARY KEY,
        name        TEXT COLLATE "C" NOT NULL UNIQUE,
        created_at  BIGINT NOT NULL
    );
    CREATE TABLE api_tokens (
        id          BIGSERIAL PRIMARY KEY,
        partner_id  BIGINT NOT NULL REFERENCES partners(id),
        key_id      TEXT COLLATE "C" NOT NULL UNIQUE,
        secret_hash BYTEA NOT NULL,
        created_at  BIGINT NOT NULL,
        revoked_at  BIGINT
    );
    CREATE INDEX api_tokens_by_partner ON api_tokens(partner_id);
    CREATE TABLE customers (
        id          BIGSERIAL PRIMARY KEY,
        partner_id  BIGINT NOT NULL REFERENCES partners(id),
        fields      TEXT NOT NULL,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL
    );
    CREATE INDEX customers_by_partner ON customers(partner_id);
    ALTER TABLE tenants ADD COLUMN partner_id BIGINT REFERENCES partners(id);
    ALTER TABLE tenants ADD COLUMN customer_id BIGINT REFERENCES customers(id);
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
    ALTER TABLE devices ADD COLUMN enrol_until BIGINT;
    CREATE TABLE server_secrets (
        name   TEXT PRIMARY KEY,
        value  BYTEA NOT NULL
    );
    "#,
        DataStep::HashClaimCodes,
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
        at          BIGINT NOT NULL,
        source_ip   TEXT NOT NULL,
        user_agent  TEXT NOT NULL
    );
    ALTER TABLE api_tokens ADD COLUMN name TEXT;
    ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
    ALTER TABLE api_tokens ADD COLUMN read_only BOOLEAN NOT NULL DEFAULT FALSE;
    ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
    "#,
    ),
    // 6: the redirect outbox: registrations with the vendors' redirect services, queued in
    // the claim's or release's transaction and delivered by a worker on any node (one node per
    // row at a time), oldest first per MAC; each claimed device's redirect state (with a Gigaset's label code,
    // which its vendor needs again to deregister it).
    Migration::Sql(
        r#"
    CREATE TABLE redirect_outbox (
        id            BIGSERIAL PRIMARY KEY,
        mac           TEXT NOT NULL,
        vendor        TEXT NOT NULL,
        action        TEXT NOT NULL,
        claim_code    TEXT,
        queued_at     BIGINT NOT NULL,
        attempts      INTEGER NOT NULL DEFAULT 0,
        next_try_at   BIGINT NOT NULL,
        lease_owner   TEXT,
        leased_until  BIGINT,
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
        next_try_at  BIGINT,
        updated_at   BIGINT NOT NULL
    );
    "#,
    ),
    // 7: the partner portal: users of a partner (e-mail, argon2id hash, language), their
    // one-time set-password links and their sessions (links and session ids stored hashed);
    // the partner whose caller left each audit entry, for the partner's own audit page.
    Migration::Sql(
        r#"
    CREATE TABLE partner_users (
        id             BIGSERIAL PRIMARY KEY,
        partner_id     BIGINT NOT NULL REFERENCES partners(id),
        email          TEXT NOT NULL UNIQUE,
        password_hash  TEXT,
        language       TEXT,
        disabled       BOOLEAN NOT NULL DEFAULT FALSE,
        created_at     BIGINT NOT NULL
    );
    CREATE INDEX partner_users_by_partner ON partner_users(partner_id);
    CREATE TABLE password_links (
        token_hash  BYTEA PRIMARY KEY,
        user_id     BIGINT NOT NULL UNIQUE REFERENCES partner_users(id),
        expires_at  BIGINT NOT NULL
    );
    CREATE TABLE portal_sessions (
        id_hash     BYTEA PRIMARY KEY,
        user_id     BIGINT NOT NULL REFERENCES partner_users(id),
        csrf        TEXT NOT NULL,
        created_at  BIGINT NOT NULL,
        last_seen   BIGINT NOT NULL
    );
    CREATE INDEX portal_sessions_by_user ON portal_sessions(user_id);
    CREATE INDEX portal_sessions_by_seen ON portal_sessions(last_seen);
    ALTER TABLE audit ADD COLUMN partner_id BIGINT;
    CREATE INDEX audit_by_partner ON audit(partner_id, id);
    "#,
    ),
    // 8: the operator's administrators log in to the portal too. They are rows of the same
    // table (one login, one session and link mechanism, one unique e-mail across both) with
    // no partner and the role `admin`; the role column makes an administrator explicit, and
    // the CHECK keeps role and partner in agreement, so a missing partner id alone never
    // makes one. (SQLite rebuilds the table for this; PostgreSQL alters it in place.)
    Migration::Sql(
        r#"
    ALTER TABLE partner_users ADD COLUMN role TEXT NOT NULL DEFAULT 'partner'
        CHECK (role IN ('partner', 'admin'));
    ALTER TABLE partner_users ALTER COLUMN partner_id DROP NOT NULL;
    ALTER TABLE partner_users ADD CONSTRAINT partner_users_role_matches_partner
        CHECK ((role = 'admin') = (partner_id IS NULL));
    "#,
    ),
    // 9: a search by any part of a MAC (the portal's search box, `mac_contains`) is answered by
    // an index of the MACs' trigrams: without it, PostgreSQL scanned every device for a
    // fragment (0.4–1.2 s in a million). `pg_trgm` ships with PostgreSQL and is trusted since
    // 13, so the database's owner may create it; the index is built once here, holding writes
    // to `devices` for the seconds it takes (about 4 s for a million devices).
    Migration::Sql(
        r#"
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX devices_by_mac_trigrams ON devices USING gin (mac gin_trgm_ops);
    "#,
    ),
];

/// One schema migration: SQL, or SQL followed by a data conversion written in Rust.
pub(super) enum Migration {
    /// Statements only.
    Sql(&'static str),
    /// Statements, then a data conversion.
    SqlThen(&'static str, DataStep),
}

/// Data conversions that SQL alone cannot do.
#[derive(Clone, Copy)]
pub(super) enum DataStep {
    /// Migration 3: hash stored label codes, drop the plain codes, and give devices claimed
    /// before phone authentication existed a fresh enrolment window, so they can enrol.
    HashClaimCodes,
}

/// The newest schema version this build knows.
pub(super) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Advisory lock key held while migrating (`pg_advisory_xact_lock`): "ztmi".
const LOCK_MIGRATE: i64 = 0x7a74_6d69;

async fn run_data_step(
    tx: &deadpool_postgres::Transaction<'_>,
    step: DataStep,
) -> Result<(), Failure> {
    match step {
        DataStep::HashClaimCodes => {
            let rows = tx
                .query(
                    "SELECT mac, claim_code FROM devices WHERE claim_code IS NOT NULL",
                    &[],
                )
                .await?;
            for row in &rows {
                let mac: &str = get(row, 0)?;
                let code: &str = get(row, 1)?;
                let secret = rules::migrated_claim_secret(mac, code)?;
                tx.execute(
                    "UPDATE devices SET claim_secret = $2 WHERE mac = $1",
                    &[&mac, &secret],
                )
                .await?;
            }
            tx.batch_execute("ALTER TABLE devices DROP COLUMN claim_code")
                .await?;
            tx.execute(
                "UPDATE devices SET enrol_until = $1 WHERE credentials IS NULL",
                &[&rules::migrated_enrolment_until(now_millis())],
            )
            .await?;
            Ok(())
        }
    }
}

async fn read_schema_version(client: &Object) -> Result<Option<i64>, Failure> {
    let exists = client
        .query_one("SELECT to_regclass('zerotouch_schema') IS NOT NULL", &[])
        .await?;
    if !get::<bool>(&exists, 0)? {
        return Ok(None);
    }
    match client
        .query_opt("SELECT version FROM zerotouch_schema WHERE id = 1", &[])
        .await?
    {
        Some(row) => Ok(Some(get(&row, 0)?)),
        None => Ok(None),
    }
}

impl PostgresStore {
    /// The schema version of the database (0 when it was never migrated).
    pub async fn schema_version(&self) -> Result<i64, Error> {
        self.observe("schema_version", async {
            let client = self.client().await?;
            Ok(read_schema_version(&client).await?.unwrap_or(0))
        })
        .await
    }

    /// Applies pending migrations in one transaction holding an advisory lock, so that nodes
    /// starting together migrate exactly once (the others wait, then find nothing to do).
    /// Refuses a database migrated by a newer build with [`Error::SchemaTooNew`].
    pub async fn migrate(&self) -> Result<MigrateReport, Error> {
        self.observe("migrate", async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRATE])
                .await?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS zerotouch_schema (\
                     id INT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)",
            )
            .await?;
            let found = match tx
                .query_opt("SELECT version FROM zerotouch_schema WHERE id = 1", &[])
                .await?
            {
                Some(row) => get::<i64>(&row, 0)?,
                None => {
                    tx.execute(
                        "INSERT INTO zerotouch_schema (id, version) VALUES (1, 0)",
                        &[],
                    )
                    .await?;
                    0
                }
            };
            if found > VERSION {
                return Err(Failure::Store(Error::SchemaTooNew {
                    found,
                    supported: VERSION,
                }));
            }
            let mut applied = Vec::new();
            for (i, migration) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
                let version = i as i64 + 1;
                match migration {
                    Migration::Sql(sql) => tx.batch_execute(sql).await?,
                    Migration::SqlThen(sql, step) => {
                        tx.batch_execute(sql).await?;
                        run_data_step(&tx, *step).await?;
                    }
                }
                tx.execute(
                    "UPDATE zerotouch_schema SET version = $1 WHERE id = 1",
                    &[&version],
                )
                .await?;
                applied.push(version);
            }
            tx.commit().await?;
            for version in &applied {
                tracing::info!(version, "applied store migration");
            }
            Ok(MigrateReport {
                found,
                version: applied.last().copied().unwrap_or(found),
                applied,
            })
        })
        .await
    }
}
