//! The store: the source of truth for tenants, devices, claims, audit and last-seen status.
//!
//! One async contract, [`Store`], with two implementations: embedded SQLite (the default)
//! and PostgreSQL (several nodes sharing one database). The claim rules that
//! need atomicity (a MAC belongs to at most one tenant) are decided inside the implementation's
//! transactions, never by callers. This is the only module that speaks SQL; it knows nothing of
//! HTTP, templates or the in-memory registry.
//!
//! Map: `records.rs` holds the data types of the contract; `rules.rs` every decision that is
//! not SQL (claim-code match, import row outcomes, a bulk change's per-MAC outcomes, who may
//! see what, credential transitions, the enrolment window, migration 3's data step); `codec.rs` how records and audit entries are
//! written to and read from columns; `operations.rs` which backend function implements which
//! [`Store`] operation. Both backends, `sqlite/` and `postgres/`, call those and add only their
//! SQL, connections and transactions. `contract` is the one test suite run against both.

use std::net::IpAddr;

use async_trait::async_trait;

use crate::domain::{
    CustomerFields, CustomerId, Mac, PartnerId, TenantName, TenantSettings, Vendor,
};

mod codec;
#[cfg(test)]
mod contract;
#[macro_use]
mod operations;
mod outbox;
pub mod postgres;
mod records;
pub mod rules;
pub mod sqlite;
#[cfg(test)]
mod test_database;

pub use records::{
    Actor, AuditEntry, AuditQuery, AuthFailure, BulkAction, BulkOutcome, BulkResult, Change,
    ChangeEntry, ClaimOutcome, ClaimRequest, CredentialChange, CustomerRecord, DeviceQuery,
    DeviceRecord, DeviceStatus, DeviceUpdate, DeviceView, ImportBatch, ImportDevice, ImportResult,
    MigrateReport, Millis, NewToken, Page, PartnerRecord, PasswordLink, RotationOutcome,
    RowOutcome, SessionRecord, Sighting, TenantChanged, TenantCounts, TenantCreated, TenantId,
    TenantRecord, TokenRecord, UpdateOutcome, UserRecord,
};

pub use outbox::{
    Backlog, Enqueue, OutboxRow, RedirectAction, RedirectState, RedirectStatus, Settlement,
};

pub use crate::domain::clock::now_millis;

/// Why the store could not do what was asked. Callers branch on these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database cannot be reached or refused the operation for a reason outside our data
    /// (disk full, locked beyond the busy timeout, connection lost). Writes may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored row could not be decoded: the data was written by something else or damaged.
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    /// The database was migrated by a newer zerotouch.
    #[error("the database schema is version {found}, newer than this build supports ({supported}): refusing to start; run a zerotouch that supports schema {found} (every node of a cluster must run a version that knows the database's schema)")]
    SchemaTooNew {
        /// Version found.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The data directory or database file cannot be opened.
    #[error("cannot open the database at {path}: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A server or another command has the store open, so it cannot be replaced (`restore`).
    #[error("the store at {path} is in use (a running server or another zerotouch command has it open): stop it, then restore")]
    InUse {
        /// The database file.
        path: String,
    },
    /// A backup was written by a newer zerotouch: this build cannot serve it.
    #[error("the backup {path} has schema version {found}, newer than this build supports ({supported}): restore it with a zerotouch that supports schema {found}")]
    BackupTooNew {
        /// The backup file.
        path: String,
        /// Version found.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// A file offered as a backup is not a sound zerotouch store.
    #[error("{path} is not a usable backup: {reason}")]
    BadBackup {
        /// The backup file.
        path: String,
        /// What is wrong (SQLite's integrity check, or not a zerotouch store at all).
        reason: String,
    },
}

/// The store contract every backend implements.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// All tenants.
    async fn tenants(&self) -> Result<Vec<TenantRecord>, Error> {
        self.tenants_of(None, Page::all()).await
    }

    /// One tenant by id (`None` if deleted).
    async fn tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, Error>;

    /// Devices in MAC order after `after`, at most `limit`: keyset pages for hydration.
    async fn devices_page(
        &self,
        after: Option<Mac>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>, Error>;

    /// One device by MAC (`None` if not claimed).
    async fn device(&self, mac: Mac) -> Result<Option<DeviceRecord>, Error>;

    /// The newest change sequence number (0 when nothing changed yet).
    async fn latest_change(&self) -> Result<i64, Error>;

    /// Changes after `seq`, oldest first, at most `limit`.
    async fn changes_since(&self, seq: i64, limit: usize) -> Result<Vec<ChangeEntry>, Error>;

    /// Applies an import in one transaction: every row gets an outcome, and either all of the
    /// accepted rows are committed or (on error) none are.
    async fn import(&self, batch: ImportBatch) -> Result<ImportResult, Error>;

    /// Writes a batch of last-seen updates (for devices still claimed) in one transaction.
    async fn record_sightings(&self, batch: Vec<Sighting>) -> Result<(), Error>;

    /// Creates a partner; `None` when the name is taken.
    async fn create_partner(
        &self,
        name: &str,
        actor: &Actor,
    ) -> Result<Option<PartnerRecord>, Error>;

    /// All partners.
    async fn partners(&self) -> Result<Vec<PartnerRecord>, Error>;

    /// One partner by id.
    async fn partner(&self, id: PartnerId) -> Result<Option<PartnerRecord>, Error>;

    /// One partner by name.
    async fn partner_by_name(&self, name: &str) -> Result<Option<PartnerRecord>, Error>;

    /// Stores a new token (its secret hashed by the caller); `None` if the partner is unknown.
    async fn create_token(
        &self,
        partner: PartnerId,
        token: NewToken,
        actor: &Actor,
    ) -> Result<Option<TokenRecord>, Error>;

    /// Records that tokens were accepted (`(token id, when)`), for their `last_used_at`.
    async fn tokens_used(&self, used: Vec<(i64, Millis)>) -> Result<(), Error>;

    /// A partner's tokens, revoked ones included.
    async fn tokens(&self, partner: PartnerId) -> Result<Vec<TokenRecord>, Error>;

    /// The token with this key id (revoked or not).
    async fn token_by_key(&self, key_id: &str) -> Result<Option<TokenRecord>, Error>;

    /// Revokes a token; false if it is not this partner's or already revoked.
    async fn revoke_token(
        &self,
        partner: PartnerId,
        token: i64,
        actor: &Actor,
    ) -> Result<bool, Error>;

    /// Creates a customer.
    async fn create_customer(
        &self,
        partner: PartnerId,
        fields: CustomerFields,
        actor: &Actor,
    ) -> Result<CustomerRecord, Error>;

    /// A partner's customers in id order, one page.
    async fn customers(
        &self,
        partner: PartnerId,
        page: Page<CustomerId>,
    ) -> Result<Vec<CustomerRecord>, Error>;

    /// One of a partner's customers.
    async fn customer(
        &self,
        partner: PartnerId,
        id: CustomerId,
    ) -> Result<Option<CustomerRecord>, Error>;

    /// Replaces a customer's fields; `None` if it is not this partner's.
    async fn update_customer(
        &self,
        partner: PartnerId,
        id: CustomerId,
        fields: CustomerFields,
        actor: &Actor,
    ) -> Result<Option<CustomerRecord>, Error>;

    /// Creates a tenant for the actor's partner and customer.
    async fn create_tenant(
        &self,
        name: TenantName,
        customer: Option<CustomerId>,
        settings: TenantSettings,
        actor: &Actor,
    ) -> Result<TenantCreated, Error>;

    /// Tenants visible to the actor (a partner's own, or all for the operator) in name order,
    /// one page.
    async fn tenants_of(
        &self,
        partner: Option<PartnerId>,
        page: Page<TenantName>,
    ) -> Result<Vec<TenantRecord>, Error>;

    /// How each of `tenants`' devices stand (a tenant without devices is absent).
    async fn tenant_counts(
        &self,
        tenants: Vec<TenantId>,
    ) -> Result<Vec<(TenantId, TenantCounts)>, Error>;

    /// A tenant by name, if visible to the actor.
    async fn tenant_by_name(
        &self,
        partner: Option<PartnerId>,
        name: &TenantName,
    ) -> Result<Option<TenantRecord>, Error>;

    /// Replaces a tenant's settings and customer.
    async fn update_tenant(
        &self,
        name: &TenantName,
        customer: Option<CustomerId>,
        settings: TenantSettings,
        actor: &Actor,
    ) -> Result<TenantChanged, Error>;

    /// Deletes a tenant that claims no devices.
    async fn delete_tenant(&self, name: &TenantName, actor: &Actor)
        -> Result<TenantChanged, Error>;

    /// Claims a MAC for a tenant, deciding uniqueness inside one transaction.
    async fn claim(&self, request: ClaimRequest, actor: &Actor) -> Result<ClaimOutcome, Error>;

    /// Moves a device or replaces its settings.
    async fn update_device(
        &self,
        mac: Mac,
        update: DeviceUpdate,
        actor: &Actor,
    ) -> Result<UpdateOutcome, Error>;

    /// Releases a device; false if it is not claimed by one of the actor's tenants.
    async fn release(&self, mac: Mac, actor: &Actor) -> Result<bool, Error>;

    /// Releases or moves many devices in one transaction: every MAC gets an outcome (in the
    /// order of `macs`), each change is audited and appended to the change sequence as the
    /// single-device operation would, and either all of them are committed or (on error) none.
    /// A move whose target tenant the actor may not use changes nothing.
    async fn bulk_devices(
        &self,
        action: BulkAction,
        macs: Vec<Mac>,
        actor: &Actor,
    ) -> Result<BulkResult, Error>;

    /// A device with its tenant name and status, if visible to `partner`.
    async fn device_view(
        &self,
        partner: Option<PartnerId>,
        mac: Mac,
    ) -> Result<Option<DeviceView>, Error>;

    /// Which of these MACs are claimed, each with the partner of its tenant (`None`: one of
    /// the operator's own tenants); MACs not claimed are left out. One read for many MACs, so
    /// a pasted list of thousands is checked at once.
    async fn claim_holders(&self, macs: Vec<Mac>) -> Result<Vec<(Mac, Option<PartnerId>)>, Error>;

    /// Devices visible to `partner` matching `query`, in MAC order.
    async fn search_devices(
        &self,
        partner: Option<PartnerId>,
        query: DeviceQuery,
    ) -> Result<Vec<DeviceView>, Error>;

    /// Reads the audit log, oldest first.
    async fn audit_log(&self, query: AuditQuery) -> Result<Vec<AuditEntry>, Error>;

    /// Applies a credential change made by a phone's fetch (audited as actor `phone`).
    /// `None` when the change no longer applies (bound meanwhile, window closed, no rotation
    /// pending, device released).
    async fn change_credentials(
        &self,
        mac: Mac,
        change: CredentialChange,
        source: Option<IpAddr>,
    ) -> Result<Option<DeviceRecord>, Error>;

    /// Applies several credential changes at once (a burst of phones enrolling): one
    /// transaction where the backend can. Results are in the order of `changes`.
    async fn change_credentials_many(
        &self,
        changes: Vec<(Mac, CredentialChange, Option<IpAddr>)>,
    ) -> Result<Vec<Option<DeviceRecord>>, Error> {
        let mut out = Vec::with_capacity(changes.len());
        for (mac, change, source) in changes {
            out.push(self.change_credentials(mac, change, source).await?);
        }
        Ok(out)
    }

    /// (Re)opens a device's enrolment window until `until`, forgetting any credentials it was
    /// given (a factory-reset phone lost them); with `until` `None`, revokes them and leaves the
    /// window closed. `None` if not visible to the actor.
    async fn open_enrolment(
        &self,
        mac: Mac,
        until: Option<Millis>,
        actor: &Actor,
    ) -> Result<Option<DeviceRecord>, Error>;

    /// Asks for new credentials at the device's next authenticated fetch.
    async fn request_rotation(&self, mac: Mac, actor: &Actor) -> Result<RotationOutcome, Error>;

    /// Leases up to `limit` outbox rows to `owner` until `lease_until`: rows due at `now`,
    /// not leased by anyone whose lease is still running, and each the oldest undelivered row
    /// of its MAC (so a MAC's rows are delivered in order, and by one worker at a time, on
    /// every node sharing the store).
    async fn redirect_lease(
        &self,
        owner: &str,
        now: Millis,
        lease_until: Millis,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, Error>;

    /// Records how delivering leased rows ended, in one transaction: a finished row is
    /// removed, a retried one released with its next try; a register row's outcome becomes its
    /// device's redirect state (unless a newer row for the MAC is queued); first failures and
    /// final outcomes are audited. A row whose lease `owner` lost (it expired and another
    /// worker took the row) is left alone.
    async fn redirect_settle(
        &self,
        owner: &str,
        settled: Vec<(OutboxRow, Settlement)>,
    ) -> Result<(), Error>;

    /// What the outbox holds, per vendor with undelivered rows.
    async fn redirect_backlog(&self) -> Result<Vec<Backlog>, Error>;

    /// Makes every retried row of `vendor` due at `now` (the vendor answers again after an
    /// outage, so rows backed off for hours need not wait); how many.
    async fn redirect_wake(&self, vendor: Vendor, now: Millis) -> Result<u64, Error>;

    /// The redirect state of each of `macs` that has one (claimed with a redirect service
    /// configured), in MAC order.
    async fn redirect_states(&self, macs: Vec<Mac>) -> Result<Vec<RedirectStatus>, Error>;

    /// Queues rows outside a claim or release (the repair of `redirect sync --apply`): a
    /// register row is queued only for a device still claimed, and sets its state `pending`;
    /// how many rows were queued.
    async fn redirect_enqueue(&self, rows: Vec<Enqueue>, actor: &Actor) -> Result<usize, Error>;

    /// Creates a portal user of `partner`, or one of the operator's administrators (`None`),
    /// (e-mail already normalised) with a set-password link; `None` when the e-mail is taken
    /// or the partner unknown.
    async fn create_user(
        &self,
        partner: Option<PartnerId>,
        email: &str,
        link: PasswordLink,
        actor: &Actor,
    ) -> Result<Option<UserRecord>, Error>;

    /// One portal user by id.
    async fn user(&self, id: i64) -> Result<Option<UserRecord>, Error>;

    /// Portal users in id order: one partner's, or everyone's (`None`).
    async fn users(&self, partner: Option<PartnerId>) -> Result<Vec<UserRecord>, Error>;

    /// One portal user by (normalised) e-mail.
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, Error>;

    /// Issues a new set-password link for a user, replacing any earlier one (a password reset
    /// by the administrator, or by a colleague of the same partner when `actor.partner` is
    /// set); false if the user is unknown or of another partner.
    async fn issue_password_link(
        &self,
        user: i64,
        link: PasswordLink,
        actor: &Actor,
    ) -> Result<bool, Error>;

    /// Consumes the set-password link whose token hashes to `token_hash` if it has not
    /// expired at `now`: stores `password_hash` for its user and ends all of the user's
    /// sessions. `None` when no such link is valid.
    async fn set_password(
        &self,
        token_hash: &[u8],
        password_hash: &str,
        now: Millis,
        source: Option<IpAddr>,
    ) -> Result<Option<UserRecord>, Error>;

    /// Stores the portal language a user chose; false if the user is unknown.
    async fn set_user_language(&self, user: i64, language: &str) -> Result<bool, Error>;

    /// Disables (`true`) or enables again (`false`) a user, audited as `user.disable` /
    /// `user.enable`; disabling also ends all of the user's sessions in the same transaction.
    /// A partner's actor may touch only its own partner's users. The user as it is now;
    /// `None` if unknown or out of the actor's reach.
    async fn set_user_disabled(
        &self,
        user: i64,
        disabled: bool,
        actor: &Actor,
    ) -> Result<Option<UserRecord>, Error>;

    /// Stores a new portal session, first removing every session idle since before
    /// `idle_before` or created before `created_before` (expired ones).
    async fn create_session(
        &self,
        session: SessionRecord,
        idle_before: Millis,
        created_before: Millis,
    ) -> Result<(), Error>;

    /// The session whose id hashes to `id_hash`, if stored.
    async fn session(&self, id_hash: &[u8]) -> Result<Option<SessionRecord>, Error>;

    /// Notes a session's latest request.
    async fn touch_session(&self, id_hash: &[u8], at: Millis) -> Result<(), Error>;

    /// Removes a session (logout, expiry).
    async fn delete_session(&self, id_hash: &[u8]) -> Result<(), Error>;

    /// The server-wide secret named `name` (shared by every node), storing `fresh` first if
    /// there is none yet.
    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, Error>;

    /// The server-wide secret named `name`, if one is stored.
    async fn stored_secret(&self, name: &str) -> Result<Option<Vec<u8>>, Error>;

    /// Replaces the secret named `name` with `new` (`None`: removes it) only if its stored
    /// value is still `expected` (`None`: there is none); whether it did. Atomic across nodes:
    /// of two writers expecting the same value, one wins.
    async fn swap_secret(
        &self,
        name: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, Error>;
}
