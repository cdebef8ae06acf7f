//! The store's records: what goes in and comes out of [`Store`](super::Store) operations.
//!
//! Owns the plain data types of the store contract (tenants, devices, partners, tokens,
//! customers, claims, imports, audit entries, changes) and the outcomes callers branch on.
//! Must not know SQL, either backend, or how a record is encoded in a column.

use std::net::IpAddr;

pub use crate::domain::credentials::EnrolmentRecord;
use crate::domain::{
    ClaimCode, ClaimSecret, CustomerFields, CustomerId, DeviceSettings, Mac, PartnerId,
    PhoneCredentials, TenantName, TenantSettings, Vendor,
};

/// A tenant's row id.
pub type TenantId = i64;

pub use crate::domain::clock::Millis;
pub use crate::domain::credentials::CredentialChange;
pub use crate::domain::sighting::Sighting;

/// A tenant instance as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantRecord {
    /// Row id.
    pub id: TenantId,
    /// Unique DNS label.
    pub name: TenantName,
    /// Owning partner; `None` for tenants imported by the operator without one.
    pub partner: Option<PartnerId>,
    /// The customer it belongs to.
    pub customer: Option<CustomerId>,
    /// What its phones receive.
    pub settings: TenantSettings,
}

/// A partner as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartnerRecord {
    /// Row id.
    pub id: PartnerId,
    /// Unique name.
    pub name: String,
    /// Creation time.
    pub created_at: Millis,
}

/// An API token as stored: never the token itself, only the SHA-256 of its secret part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub partner: PartnerId,
    /// Public identifier inside the token, used to find the row.
    pub key_id: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// Creation time.
    pub created_at: Millis,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Millis>,
    /// What the partner calls it.
    pub name: Option<String>,
    /// When it stops working, if ever.
    pub expires_at: Option<Millis>,
    /// Whether it may only read (GET).
    pub read_only: bool,
    /// When it was last accepted, to the minute (written off the request's path).
    pub last_used_at: Option<Millis>,
}

/// A token to store: its public id, the hash of its secret, and what it may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewToken {
    /// Public identifier inside the token.
    pub key_id: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    /// What the partner calls it.
    pub name: Option<String>,
    /// When it stops working, if ever.
    pub expires_at: Option<Millis>,
    /// Whether it may only read.
    pub read_only: bool,
}

impl TokenRecord {
    /// Whether it is accepted at `now`: not revoked, not expired.
    pub fn valid_at(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A customer as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerRecord {
    /// Row id.
    pub id: CustomerId,
    /// Owner.
    pub partner: PartnerId,
    /// What the partner wrote.
    pub fields: CustomerFields,
    /// Creation time.
    pub created_at: Millis,
}

/// What a device fetched last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceStatus {
    /// When.
    pub last_seen: Millis,
    /// From where.
    pub source: String,
    /// Its User-Agent.
    pub user_agent: String,
    /// Model it reported.
    pub model: Option<String>,
    /// Firmware it reported.
    pub firmware: Option<String>,
    /// Which file.
    pub last_file: String,
    /// How it ended.
    pub last_outcome: String,
}

/// A device with what a partner sees about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceView {
    /// The claim.
    pub record: DeviceRecord,
    /// Its tenant's name.
    pub tenant_name: TenantName,
    /// When it was claimed.
    pub claimed_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    /// Last fetch, if it ever fetched.
    pub status: Option<DeviceStatus>,
    /// How its current credentials were issued, if it enrolled.
    pub enrolment: Option<EnrolmentRecord>,
    /// Its last failed authentication, if any: kept apart from `status`, which only the
    /// phone's served fetches write.
    pub auth_failure: Option<AuthFailure>,
}

/// A fetch that presented credentials the device does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthFailure {
    /// When.
    pub at: Millis,
    /// Source address.
    pub source: String,
    /// User-Agent, cleaned and truncated.
    pub user_agent: String,
}

/// Who changes something, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// `admin`, `cli`, `partner:<id>:<name>` or `user:<id>:<email>`.
    pub name: String,
    /// The partner acting, which also scopes what the change may touch (`None`: the operator).
    pub partner: Option<PartnerId>,
    /// Client address, when the change came over the network.
    pub source: Option<IpAddr>,
}

impl Actor {
    /// The operator on the command line.
    pub fn cli() -> Self {
        Self {
            name: "cli".into(),
            partner: None,
            source: None,
        }
    }

    /// A phone changing its own provisioning credentials by fetching, from `source`.
    pub fn phone(source: Option<IpAddr>) -> Self {
        Self {
            name: "phone".into(),
            partner: None,
            source,
        }
    }

    /// The redirect outbox's worker, reporting what a vendor's redirect service answered.
    pub fn redirect() -> Self {
        Self {
            name: "redirect".into(),
            partner: None,
            source: None,
        }
    }
}

/// A claim of one MAC for one tenant.
#[derive(Clone, Debug)]
pub struct ClaimRequest {
    /// The device.
    pub mac: Mac,
    /// Its vendor.
    pub vendor: Vendor,
    /// Gigaset label code.
    pub claim_code: Option<ClaimCode>,
    /// The tenant, by name.
    pub tenant: TenantName,
    /// Per-device settings.
    pub settings: DeviceSettings,
    /// End of the enrolment window this claim opens.
    pub enrol_until: Option<Millis>,
    /// Whether a new claim queues a registration with the vendor's redirect service (the
    /// operator configured one for this vendor).
    pub redirect: bool,
}

/// How a rotation request ended.
// Returned once per API call, never held in bulk: boxing the record would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotationOutcome {
    /// The next authenticated fetch hands out new credentials.
    Requested(DeviceRecord),
    /// No such device for this actor.
    NotFound,
    /// The device has no credentials yet (not enrolled).
    NotEnrolled,
}

/// How a claim ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The MAC was free and is now claimed.
    Created(DeviceRecord),
    /// The MAC was already claimed by this tenant; nothing changed.
    Unchanged(DeviceRecord),
    /// The MAC is claimed by another tenant.
    AlreadyInUse,
    /// The tenant does not exist or is not the actor's.
    UnknownTenant,
    /// A Gigaset device already claimed with another label code.
    ClaimCodeMismatch,
}

/// A change to a claimed device.
#[derive(Clone, Debug, Default)]
pub struct DeviceUpdate {
    /// Move it to this tenant.
    pub tenant: Option<TenantName>,
    /// Replace its per-device settings.
    pub settings: Option<DeviceSettings>,
}

/// How a device update ended.
// Returned once per API call, never held in bulk: boxing the record would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Done.
    Updated(DeviceRecord),
    /// The device is not claimed, or not by one of the actor's tenants.
    NotFound,
    /// The target tenant does not exist or is not the actor's.
    UnknownTenant,
}

/// What a bulk change does to each of the devices it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BulkAction {
    /// Release each device, as [`Store::release`](super::Store::release) does.
    Release,
    /// Move each device to this tenant, as a tenant change through
    /// [`Store::update_device`](super::Store::update_device) does.
    Move(TenantName),
}

/// How one MAC of a bulk change ended.
// A moved device's record is what the registry needs; the outcomes of one request are read
// once and dropped, so boxing the record would only add an allocation per device.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BulkOutcome {
    /// The device was released.
    Released,
    /// The device was moved; its record afterwards.
    Moved(DeviceRecord),
    /// Nothing to do: the device is already in the target tenant, or the MAC was named earlier
    /// in the same request and that occurrence changed it.
    Unchanged,
    /// The MAC is not claimed, or not by one of the actor's tenants (indistinguishable).
    NotFound,
}

/// How a bulk change ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BulkResult {
    /// Committed: one outcome per MAC, in the order given.
    Applied(Vec<BulkOutcome>),
    /// The target tenant of a move does not exist or is not the actor's: nothing changed.
    UnknownTenant,
}

/// How creating a tenant ended.
// Built once per API call and matched at once: boxing the record would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum TenantCreated {
    /// Done.
    Created(TenantRecord),
    /// The name is taken (by anyone).
    NameTaken,
    /// The customer does not exist or is not the actor's.
    UnknownCustomer,
}

/// How changing or deleting a tenant ended.
// Built once per API call and matched at once: boxing the record would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum TenantChanged {
    /// Done (`None` after a delete).
    Done(Option<TenantRecord>),
    /// No such tenant for this actor.
    NotFound,
    /// The customer does not exist or is not the actor's.
    UnknownCustomer,
    /// Devices are still claimed by it.
    HasDevices,
}

/// How a tenant's devices stand, for its partner's overview.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantCounts {
    /// Devices claimed.
    pub devices: u64,
    /// Of them, never served a config.
    pub never_seen: u64,
    /// Of them, bound to their own provisioning credentials.
    pub enrolled: u64,
    /// Of them, whose last attempt to authenticate failed after their last served fetch.
    pub failing_authentication: u64,
}

/// A keyset page of a list: the rows after `after` in the list's order, `limit` at most
/// (`None`: every row).
#[derive(Clone, Debug)]
pub struct Page<K> {
    /// The last row of the previous page.
    pub after: Option<K>,
    /// The most rows.
    pub limit: Option<usize>,
}

impl<K> Page<K> {
    /// Every row.
    pub fn all() -> Self {
        Self {
            after: None,
            limit: None,
        }
    }
}

/// Filters for listing devices.
#[derive(Clone, Debug, Default)]
pub struct DeviceQuery {
    /// Lower-case hex digits the MAC starts with.
    pub mac_prefix: Option<String>,
    /// Lower-case hex digits found anywhere in the MAC (a fragment read off a label).
    pub mac_contains: Option<String>,
    /// Only this tenant's.
    pub tenant: Option<TenantName>,
    /// Only this vendor's.
    pub vendor: Option<Vendor>,
    /// Seen at or after.
    pub seen_since: Option<Millis>,
    /// Seen before.
    pub seen_before: Option<Millis>,
    /// Only devices that never fetched.
    pub never_seen: bool,
    /// Page after this MAC.
    pub after: Option<Mac>,
    /// Page size.
    pub limit: usize,
}

/// One audit log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Sequence id.
    pub id: i64,
    /// When.
    pub at: Millis,
    /// Who.
    pub actor: String,
    /// From where.
    pub source: Option<String>,
    /// What: `device.claim`, `device.move`, `device.release`, `tenant.create`, …
    pub action: String,
    /// Which device.
    pub mac: Option<String>,
    /// Which tenant.
    pub tenant: Option<String>,
    /// More, as JSON text.
    pub detail: Option<String>,
}

/// Filters for reading the audit log.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Entries after this id.
    pub after: Option<i64>,
    /// Only this device's.
    pub mac: Option<Mac>,
    /// Only this tenant's.
    pub tenant: Option<String>,
    /// Only entries left by this partner's callers (its tokens and portal users); entries
    /// from before schema 7 name no partner and are left out.
    pub partner: Option<PartnerId>,
    /// Only this action (`device.claim`, `user.disable`, …), exactly.
    pub action: Option<String>,
    /// Only entries whose actor contains this text, in any case (an e-mail, `partner:3:`,
    /// `admin`).
    pub actor: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<Millis>,
    /// Only entries before this time.
    pub until: Option<Millis>,
    /// Page size.
    pub limit: usize,
}

/// A claimed device as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device.
    pub mac: Mac,
    /// Its vendor (from the OUI at claim time).
    pub vendor: Vendor,
    /// The tenant that claims it.
    pub tenant: TenantId,
    /// Gigaset: HA1s of its MAC-ID (MAC + label code), never the code itself.
    pub claim_secret: Option<ClaimSecret>,
    /// Provisioning credentials handed out at enrolment (HA1s only).
    pub credentials: Option<PhoneCredentials>,
    /// End of the enrolment window: until then, the first fetch binds the device.
    pub enrol_until: Option<Millis>,
    /// Per-device settings.
    pub settings: DeviceSettings,
}

/// Something that changed in the store, for caches to reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A tenant was created, changed or deleted.
    Tenant(TenantId),
    /// A device was claimed, changed, moved or released.
    Device(Mac),
    /// A server-wide secret (the ACME certificate, its account, lease or HTTP-01 answers) was
    /// stored, replaced or removed: nodes watching it read it again at once instead of at
    /// their next periodic check.
    Secret(String),
}

/// A change with its position in the store's monotonically increasing change sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEntry {
    /// Sequence number; every commit that changes phone-visible data takes new ones.
    pub seq: i64,
    /// What changed.
    pub change: Change,
}

/// A validated import, applied in one transaction.
#[derive(Clone, Debug)]
pub struct ImportBatch {
    /// Tenants to create or update, with their row numbers in the file.
    pub tenants: Vec<(usize, TenantName, TenantSettings)>,
    /// Devices to claim, with their row numbers.
    pub devices: Vec<ImportDevice>,
    /// Who imports (for the audit log); a partner actor may only touch its own tenants.
    pub actor: Actor,
}

/// One device row of an import.
#[derive(Clone, Debug)]
pub struct ImportDevice {
    /// Row number in the file.
    pub row: usize,
    /// The device.
    pub mac: Mac,
    /// Its vendor.
    pub vendor: Vendor,
    /// Gigaset label code.
    pub claim_code: Option<ClaimCode>,
    /// Tenant to claim it for.
    pub tenant: TenantName,
    /// Per-device settings.
    pub settings: DeviceSettings,
    /// End of the enrolment window a new claim opens.
    pub enrol_until: Option<Millis>,
    /// Whether a new claim queues a registration with the vendor's redirect service.
    pub redirect: bool,
}

/// What the store did with one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOutcome {
    /// A new tenant or claim.
    Created,
    /// An existing tenant, or a device already claimed by the same tenant, updated.
    Updated,
    /// The device is claimed by another tenant.
    AlreadyInUse,
    /// The tenant named by a device row does not exist.
    UnknownTenant,
    /// A Gigaset device re-claimed with a different label code.
    ClaimCodeMismatch,
    /// The tenant name is taken by another partner.
    NameTaken,
}

/// Per-row outcomes of an import, in row order, and the records it committed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportResult {
    /// (row, outcome) for each tenant row in the batch.
    pub tenants: Vec<(usize, RowOutcome)>,
    /// (row, outcome) for each device row in the batch.
    pub devices: Vec<(usize, RowOutcome)>,
    /// Tenants as committed (for caches).
    pub applied_tenants: Vec<TenantRecord>,
    /// Devices as committed (for caches).
    pub applied_devices: Vec<DeviceRecord>,
}

/// What applying migrations did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateReport {
    /// The schema version found before migrating (0 for an empty database).
    pub found: i64,
    /// Versions applied by this call, in order (empty when another node had already done it).
    pub applied: Vec<i64>,
    /// The version now.
    pub version: i64,
}

/// A user of the portal as stored: never a password, only its argon2id hash (PHC string).
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Row id.
    pub id: i64,
    /// The partner whose data the user sees and changes; `None` for one of the operator's
    /// administrators, who acts with the administrator's rights.
    pub partner: Option<PartnerId>,
    /// Unique e-mail address (lower case), the login name.
    pub email: String,
    /// The argon2id PHC string, once the user set a password.
    pub password_hash: Option<String>,
    /// The portal language the user chose (`en`, `fr`, `de`), if any.
    pub language: Option<String>,
    /// A disabled user cannot log in.
    pub disabled: bool,
    /// Creation time.
    pub created_at: Millis,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("partner", &self.partner)
            .field("email", &self.email)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "***"))
            .field("language", &self.language)
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A one-time set-password link as stored: the SHA-256 of its token and when it expires.
/// Issuing a new one for a user replaces the old one.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordLink {
    /// SHA-256 of the token the link carries.
    pub token_hash: Vec<u8>,
    /// When the link stops working.
    pub expires_at: Millis,
}

impl std::fmt::Debug for PasswordLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordLink")
            .field("token_hash", &"***")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A portal session as stored: the SHA-256 of the id the browser's cookie carries, never the
/// id itself.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session id.
    pub id_hash: Vec<u8>,
    /// Whose session.
    pub user: i64,
    /// The session's CSRF token, which every form posts back.
    pub csrf: String,
    /// When the user logged in (the absolute expiry counts from here).
    pub created_at: Millis,
    /// The last request (the idle expiry counts from here).
    pub last_seen: Millis,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user", &self.user)
            .field("created_at", &self.created_at)
            .field("last_seen", &self.last_seen)
            .finish_non_exhaustive()
    }
}
