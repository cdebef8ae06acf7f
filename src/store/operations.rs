//! The map from every [`Store`](super::Store) operation to the function of a backend that
//! implements it, written once for both backends.
//!
//! Each backend lays out its operations the same way: a module per resource (`tenants`,
//! `devices`, `partners`, `credentials`, `secrets`, `users`, `import`, `sightings`, `changes`, `audit`, `redirect`) holding one
//! function per operation, which takes the store first. [`impl_store!`] implements the trait for
//! a backend by calling them, so the two backends cannot drift apart in how operations are
//! routed, and an operation added to the trait is added here once. Must not know SQL or either
//! backend's types.

/// Implements [`Store`](crate::store::Store) for `$backend` by calling the functions of its
/// resource modules, which must be in scope where it is invoked. `$extra` holds the backend's
/// own implementations of provided methods (SQLite batches credential changes in one
/// transaction).
macro_rules! impl_store {
    ($backend:ty, { $($extra:tt)* }) => {
        const _: () = {
            use std::net::IpAddr;

            use $crate::domain::{
                CustomerFields, CustomerId, Mac, PartnerId, TenantName, TenantSettings,
            };
            use $crate::store::{
                Actor, AuditEntry, AuditQuery, Backlog, BulkAction, Enqueue, OutboxRow, RedirectStatus, Settlement, BulkResult, ChangeEntry, ClaimOutcome, ClaimRequest,
                CredentialChange, CustomerRecord, DeviceQuery, DeviceRecord, DeviceUpdate,
                DeviceView, Error, ImportBatch, ImportResult, Millis, NewToken, Page, PartnerRecord,
                RotationOutcome, Sighting, Store, PasswordLink, SessionRecord, UserRecord, TenantChanged, TenantCounts, TenantCreated, TenantId,
                TenantRecord, TokenRecord, UpdateOutcome,
            };

            #[async_trait::async_trait]
            impl Store for $backend {
                async fn tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, Error> {
                    tenants::by_id(self, id).await
                }

                async fn devices_page(
                    &self,
                    after: Option<Mac>,
                    limit: usize,
                ) -> Result<Vec<DeviceRecord>, Error> {
                    devices::page(self, after, limit).await
                }

                async fn device(&self, mac: Mac) -> Result<Option<DeviceRecord>, Error> {
                    devices::by_mac(self, mac).await
                }

                async fn latest_change(&self) -> Result<i64, Error> {
                    changes::latest(self).await
                }

                async fn changes_since(&self, seq: i64, limit: usize) -> Result<Vec<ChangeEntry>, Error> {
                    changes::since(self, seq, limit).await
                }

                async fn import(&self, batch: ImportBatch) -> Result<ImportResult, Error> {
                    import::import(self, batch).await
                }

                async fn record_sightings(&self, batch: Vec<Sighting>) -> Result<(), Error> {
                    sightings::record(self, batch).await
                }

                async fn create_partner(
                    &self,
                    name: &str,
                    actor: &Actor,
                ) -> Result<Option<PartnerRecord>, Error> {
                    partners::create(self, name, actor).await
                }

                async fn partners(&self) -> Result<Vec<PartnerRecord>, Error> {
                    partners::list(self).await
                }

                async fn partner(&self, id: PartnerId) -> Result<Option<PartnerRecord>, Error> {
                    partners::by_id(self, id).await
                }

                async fn partner_by_name(&self, name: &str) -> Result<Option<PartnerRecord>, Error> {
                    partners::by_name(self, name).await
                }

                async fn create_token(
                    &self,
                    partner: PartnerId,
                    token: NewToken,
                    actor: &Actor,
                ) -> Result<Option<TokenRecord>, Error> {
                    partners::create_token(self, partner, token, actor).await
                }

                async fn tokens_used(&self, used: Vec<(i64, Millis)>) -> Result<(), Error> {
                    partners::tokens_used(self, used).await
                }

                async fn tokens(&self, partner: PartnerId) -> Result<Vec<TokenRecord>, Error> {
                    partners::tokens(self, partner).await
                }

                async fn token_by_key(&self, key_id: &str) -> Result<Option<TokenRecord>, Error> {
                    partners::token_by_key(self, key_id).await
                }

                async fn revoke_token(
                    &self,
                    partner: PartnerId,
                    token: i64,
                    actor: &Actor,
                ) -> Result<bool, Error> {
                    partners::revoke_token(self, partner, token, actor).await
                }

                async fn create_customer(
                    &self,
                    partner: PartnerId,
                    fields: CustomerFields,
                    actor: &Actor,
                ) -> Result<CustomerRecord, Error> {
                    partners::create_customer(self, partner, fields, actor).await
                }

                async fn customers(&self, partner: PartnerId, page: Page<CustomerId>) -> Result<Vec<CustomerRecord>, Error> {
                    partners::customers(self, partner, page).await
                }

                async fn customer(
                    &self,
                    partner: PartnerId,
                    id: CustomerId,
                ) -> Result<Option<CustomerRecord>, Error> {
                    partners::customer(self, partner, id).await
                }

                async fn update_customer(
                    &self,
                    partner: PartnerId,
                    id: CustomerId,
                    fields: CustomerFields,
                    actor: &Actor,
                ) -> Result<Option<CustomerRecord>, Error> {
                    partners::update_customer(self, partner, id, fields, actor).await
                }

                async fn create_tenant(
                    &self,
                    name: TenantName,
                    customer: Option<CustomerId>,
                    settings: TenantSettings,
                    actor: &Actor,
                ) -> Result<TenantCreated, Error> {
                    tenants::create(self, name, customer, settings, actor).await
                }

                async fn tenant_counts(&self, tenants: Vec<TenantId>) -> Result<Vec<(TenantId, TenantCounts)>, Error> {
                    tenants::counts(self, tenants).await
                }

                async fn tenants_of(&self, partner: Option<PartnerId>, page: Page<TenantName>) -> Result<Vec<TenantRecord>, Error> {
                    tenants::of(self, partner, page).await
                }

                async fn tenant_by_name(
                    &self,
                    partner: Option<PartnerId>,
                    name: &TenantName,
                ) -> Result<Option<TenantRecord>, Error> {
                    tenants::by_name(self, partner, name).await
                }

                async fn update_tenant(
                    &self,
                    name: &TenantName,
                    customer: Option<CustomerId>,
                    settings: TenantSettings,
                    actor: &Actor,
                ) -> Result<TenantChanged, Error> {
                    tenants::update(self, name, customer, settings, actor).await
                }

                async fn delete_tenant(
                    &self,
                    name: &TenantName,
                    actor: &Actor,
                ) -> Result<TenantChanged, Error> {
                    tenants::delete(self, name, actor).await
                }

                async fn claim(&self, request: ClaimRequest, actor: &Actor) -> Result<ClaimOutcome, Error> {
                    devices::claim(self, request, actor).await
                }

                async fn update_device(
                    &self,
                    mac: Mac,
                    update: DeviceUpdate,
                    actor: &Actor,
                ) -> Result<UpdateOutcome, Error> {
                    devices::update(self, mac, update, actor).await
                }

                async fn release(&self, mac: Mac, actor: &Actor) -> Result<bool, Error> {
                    devices::release(self, mac, actor).await
                }

                async fn bulk_devices(
                    &self,
                    action: BulkAction,
                    macs: Vec<Mac>,
                    actor: &Actor,
                ) -> Result<BulkResult, Error> {
                    devices::bulk(self, action, macs, actor).await
                }

                async fn device_view(
                    &self,
                    partner: Option<PartnerId>,
                    mac: Mac,
                ) -> Result<Option<DeviceView>, Error> {
                    devices::view(self, partner, mac).await
                }

                async fn claim_holders(
                    &self,
                    macs: Vec<Mac>,
                ) -> Result<Vec<(Mac, Option<PartnerId>)>, Error> {
                    devices::holders(self, macs).await
                }

                async fn search_devices(
                    &self,
                    partner: Option<PartnerId>,
                    query: DeviceQuery,
                ) -> Result<Vec<DeviceView>, Error> {
                    devices::search(self, partner, query).await
                }

                async fn audit_log(&self, query: AuditQuery) -> Result<Vec<AuditEntry>, Error> {
                    audit::log(self, query).await
                }

                async fn change_credentials(
                    &self,
                    mac: Mac,
                    change: CredentialChange,
                    source: Option<IpAddr>,
                ) -> Result<Option<DeviceRecord>, Error> {
                    credentials::change(self, mac, change, source).await
                }

                async fn open_enrolment(
                    &self,
                    mac: Mac,
                    until: Option<Millis>,
                    actor: &Actor,
                ) -> Result<Option<DeviceRecord>, Error> {
                    credentials::open_enrolment(self, mac, until, actor).await
                }

                async fn request_rotation(&self, mac: Mac, actor: &Actor) -> Result<RotationOutcome, Error> {
                    credentials::request_rotation(self, mac, actor).await
                }

                async fn redirect_lease(
                    &self,
                    owner: &str,
                    now: Millis,
                    lease_until: Millis,
                    limit: usize,
                ) -> Result<Vec<OutboxRow>, Error> {
                    redirect::lease(self, owner, now, lease_until, limit).await
                }

                async fn redirect_settle(
                    &self,
                    owner: &str,
                    settled: Vec<(OutboxRow, Settlement)>,
                ) -> Result<(), Error> {
                    redirect::settle(self, owner, settled).await
                }

                async fn redirect_backlog(&self) -> Result<Vec<Backlog>, Error> {
                    redirect::backlog(self).await
                }

                async fn redirect_wake(&self, vendor: $crate::domain::Vendor, now: Millis) -> Result<u64, Error> {
                    redirect::wake(self, vendor, now).await
                }

                async fn redirect_states(&self, macs: Vec<Mac>) -> Result<Vec<RedirectStatus>, Error> {
                    redirect::states(self, macs).await
                }

                async fn redirect_enqueue(&self, rows: Vec<Enqueue>, actor: &Actor) -> Result<usize, Error> {
                    redirect::enqueue(self, rows, actor).await
                }

                async fn create_user(
                    &self,
                    partner: Option<PartnerId>,
                    email: &str,
                    link: PasswordLink,
                    actor: &Actor,
                ) -> Result<Option<UserRecord>, Error> {
                    users::create(self, partner, email, link, actor).await
                }

                async fn user(&self, id: i64) -> Result<Option<UserRecord>, Error> {
                    users::by_id(self, id).await
                }

                async fn users(&self, partner: Option<PartnerId>) -> Result<Vec<UserRecord>, Error> {
                    users::list(self, partner).await
                }

                async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, Error> {
                    users::by_email(self, email).await
                }

                async fn issue_password_link(
                    &self,
                    user: i64,
                    link: PasswordLink,
                    actor: &Actor,
                ) -> Result<bool, Error> {
                    users::issue_link(self, user, link, actor).await
                }

                async fn set_password(
                    &self,
                    token_hash: &[u8],
                    password_hash: &str,
                    now: Millis,
                    source: Option<IpAddr>,
                ) -> Result<Option<UserRecord>, Error> {
                    users::set_password(self, token_hash, password_hash, now, source).await
                }

                async fn set_user_language(&self, user: i64, language: &str) -> Result<bool, Error> {
                    users::set_language(self, user, language).await
                }

                async fn set_user_disabled(
                    &self,
                    user: i64,
                    disabled: bool,
                    actor: &Actor,
                ) -> Result<Option<UserRecord>, Error> {
                    users::set_disabled(self, user, disabled, actor).await
                }

                async fn create_session(
                    &self,
                    session: SessionRecord,
                    idle_before: Millis,
                    created_before: Millis,
                ) -> Result<(), Error> {
                    users::create_session(self, session, idle_before, created_before).await
                }

                async fn session(&self, id_hash: &[u8]) -> Result<Option<SessionRecord>, Error> {
                    users::session(self, id_hash).await
                }

                async fn touch_session(&self, id_hash: &[u8], at: Millis) -> Result<(), Error> {
                    users::touch_session(self, id_hash, at).await
                }

                async fn delete_session(&self, id_hash: &[u8]) -> Result<(), Error> {
                    users::delete_session(self, id_hash).await
                }

                async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, Error> {
                    credentials::secret(self, name, fresh).await
                }

                async fn stored_secret(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
                    secrets::get_one(self, name).await
                }

                async fn swap_secret(
                    &self,
                    name: &str,
                    expected: Option<&[u8]>,
                    new: Option<&[u8]>,
                ) -> Result<bool, Error> {
                    secrets::swap(self, name, expected, new).await
                }

                $($extra)*
            }
        };
    };
}
