//! The store's rules that are not SQL, written once and applied by both backends inside their
//! transactions: who may use a tenant, device or customer; when an import's tenant row finds
//! its name taken; how a claim of an already claimed MAC ends (the label-code match); what an
//! import's device row reports; how a phone's credential change, a rotation request and a
//! reopened enrolment window change a device; what a bulk release or move does with each MAC
//! (and with a MAC named twice); the enrolment window and its 7-day default; and migration 3's
//! data step.
//!
//! Every function here decides over records read inside the caller's transaction and returns
//! what to write: it must not know SQL, connections, or which backend calls it.

use super::codec;
use super::records::{
    Actor, BulkOutcome, ClaimOutcome, ClaimRequest, CredentialChange, DeviceRecord, ImportDevice,
    ImportResult, Millis, RowOutcome, TenantId,
};
use super::Error;
use crate::domain::credentials::{EnrolmentRecord, Window};
use crate::domain::{ClaimCode, ClaimSecret, Mac, PartnerId};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// Hours an enrolment window stays open when a claim does not say: 7 days.
pub const DEFAULT_ENROLMENT_HOURS: u32 = 168;

/// The longest enrolment window a claim may ask for, in hours: 90 days.
pub const MAX_ENROLMENT_HOURS: u32 = 90 * 24;

/// An enrolment window in milliseconds, from the hours asked for (default
/// [`DEFAULT_ENROLMENT_HOURS`], capped at [`MAX_ENROLMENT_HOURS`]).
pub fn enrolment_ms(hours: Option<u32>) -> Millis {
    i64::from(
        hours
            .unwrap_or(DEFAULT_ENROLMENT_HOURS)
            .min(MAX_ENROLMENT_HOURS),
    ) * 3_600_000
}

/// Whether what `owner` owns may be used by `partner`: the operator (`None`) may use
/// everything, a partner only its own.
pub(crate) fn visible(owner: Option<PartnerId>, partner: Option<PartnerId>) -> bool {
    partner.is_none() || owner == partner
}

/// Whether `partner` may give a tenant the customer owned by `owner` (`None`: there is no
/// such customer).
pub(crate) fn customer_usable(owner: Option<PartnerId>, partner: Option<PartnerId>) -> bool {
    owner.is_some_and(|o| visible(Some(o), partner))
}

/// What an import does with a tenant row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImportTenant {
    /// No tenant has the name: create it for the importing partner.
    Create,
    /// Update this tenant's settings.
    Update(TenantId),
    /// Another partner's tenant has the name.
    NameTaken,
}

/// What an import does with a tenant row, given the tenant of that name (its id and owner),
/// if there is one. The operator may update any tenant, a partner only its own.
pub(crate) fn import_tenant(
    existing: Option<(TenantId, Option<PartnerId>)>,
    actor: &Actor,
) -> ImportTenant {
    match existing {
        None => ImportTenant::Create,
        Some((_, owner)) if !visible(owner, actor.partner) => ImportTenant::NameTaken,
        Some((id, _)) => ImportTenant::Update(id),
    }
}

/// The device a new claim creates: not bound yet, its label code kept only as the HA1s of
/// its MAC-ID.
pub(crate) fn new_claim(req: &ClaimRequest, tenant: TenantId) -> DeviceRecord {
    DeviceRecord {
        mac: req.mac,
        vendor: req.vendor,
        tenant,
        claim_secret: req
            .claim_code
            .as_ref()
            .map(|c| ClaimSecret::new(req.mac, c)),
        credentials: None,
        enrol_until: req.enrol_until,
        settings: req.settings.clone(),
    }
}

/// How claiming a MAC ends when the claiming tenant holds it already: unchanged when the label
/// codes agree (none given for a device claimed without one, or the code its MAC-ID was made
/// from), refused otherwise. The label-code match.
pub(crate) fn claim_again(device: DeviceRecord, code: Option<&ClaimCode>) -> ClaimOutcome {
    let same_code = match (&device.claim_secret, code) {
        (None, None) => true,
        (Some(secret), Some(code)) => secret.matches(device.mac, code),
        _ => false,
    };
    if same_code {
        ClaimOutcome::Unchanged(device)
    } else {
        ClaimOutcome::ClaimCodeMismatch
    }
}

impl ImportDevice {
    /// The claim this row asks for.
    pub(crate) fn claim_request(&self) -> ClaimRequest {
        ClaimRequest {
            mac: self.mac,
            vendor: self.vendor,
            claim_code: self.claim_code.clone(),
            tenant: self.tenant.clone(),
            settings: self.settings.clone(),
            enrol_until: self.enrol_until,
            redirect: self.redirect,
        }
    }
}

/// Records in `result` how an import's device row ended, given how its claim ended. True when
/// the device was claimed by the same tenant already with other per-device settings: importing
/// again refreshes them, so the caller writes the row's settings (the record in `result` has
/// them already).
pub(crate) fn import_device(
    result: &mut ImportResult,
    row: &ImportDevice,
    claim: ClaimOutcome,
) -> bool {
    let (outcome, refresh) = match claim {
        ClaimOutcome::Created(record) => {
            result.applied_devices.push(record);
            (RowOutcome::Created, false)
        }
        ClaimOutcome::Unchanged(mut record) => {
            let refresh = record.settings != row.settings;
            record.settings = row.settings.clone();
            result.applied_devices.push(record);
            (RowOutcome::Updated, refresh)
        }
        ClaimOutcome::AlreadyInUse => (RowOutcome::AlreadyInUse, false),
        ClaimOutcome::UnknownTenant => (RowOutcome::UnknownTenant, false),
        ClaimOutcome::ClaimCodeMismatch => (RowOutcome::ClaimCodeMismatch, false),
    };
    result.devices.push((row.row, outcome));
    refresh
}

/// The distinct MACs of a bulk change, in the order a backend visits them: sorted, so that two
/// bulk changes naming the same devices lock their rows in the same order and cannot deadlock
/// each other (PostgreSQL), and each device is changed once however often it is named.
pub(crate) fn bulk_visits(macs: &[Mac]) -> Vec<Mac> {
    let mut visits = macs.to_vec();
    visits.sort_unstable();
    visits.dedup();
    visits
}

/// What a bulk change does with one device, given the device as read (and locked) inside the
/// transaction if the actor may see it, and the tenant a move goes to (`None`: a release).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BulkStep {
    /// Delete the device.
    Release,
    /// Give the device the target tenant.
    Move,
    /// It is in the target tenant already: nothing to write, audit or announce.
    Unchanged,
    /// Not claimed, or not the actor's: nothing to do, and the same answer either way.
    NotFound,
}

/// What a bulk change does with `device` (see [`BulkStep`]).
pub(crate) fn bulk_step(device: Option<&DeviceRecord>, target: Option<TenantId>) -> BulkStep {
    match (device, target) {
        (None, _) => BulkStep::NotFound,
        (Some(_), None) => BulkStep::Release,
        (Some(d), Some(to)) if d.tenant == to => BulkStep::Unchanged,
        (Some(_), Some(_)) => BulkStep::Move,
    }
}

/// Each MAC's outcome in the order given, from the outcome decided for each distinct MAC
/// (`decided`; a MAC missing there was not found). A MAC named again reports `Unchanged` for
/// the repeats — its first occurrence made the change — unless it was not found, which every
/// occurrence then reports, so a repeat says no more about a MAC than its first occurrence.
pub(crate) fn bulk_outcomes(
    macs: &[Mac],
    mut decided: HashMap<Mac, BulkOutcome>,
) -> Vec<BulkOutcome> {
    let mut found: HashMap<Mac, bool> = HashMap::with_capacity(decided.len());
    let mut seen = HashSet::with_capacity(macs.len());
    macs.iter()
        .map(|mac| {
            if seen.insert(*mac) {
                let outcome = decided.remove(mac).unwrap_or(BulkOutcome::NotFound);
                found.insert(*mac, outcome != BulkOutcome::NotFound);
                outcome
            } else if found.get(mac).copied().unwrap_or(false) {
                BulkOutcome::Unchanged
            } else {
                BulkOutcome::NotFound
            }
        })
        .collect()
}

/// A phone's credential change applied at `now` to `device` as read inside the writing
/// transaction, or `None` when the change does not apply.
pub(crate) fn change_credentials(
    mut device: DeviceRecord,
    change: CredentialChange,
    source: Option<IpAddr>,
    now: Millis,
) -> Option<CredentialsChanged> {
    let open = device.enrol_until.is_some_and(|u| u > now);
    let witness = match &change {
        CredentialChange::Enrol { user_agent, .. } => Some(EnrolmentRecord {
            at: now,
            source,
            user_agent: user_agent.clone(),
        }),
        _ => None,
    };
    let applied = change.apply(device.credentials.take(), open)?;
    device.credentials = Some(applied.credentials);
    if applied.window == Window::Close {
        device.enrol_until = None;
    }
    Some(CredentialsChanged {
        device,
        action: applied.action,
        enrolment: witness,
    })
}

/// What a phone's credential change writes.
pub(crate) struct CredentialsChanged {
    /// The device afterwards: its credentials and its enrolment window as the change leaves
    /// them.
    pub device: DeviceRecord,
    /// The audit action, if the change is audited.
    pub action: Option<&'static str>,
    /// For an enrolment, how it was made (kept beside the device for its partner).
    pub enrolment: Option<EnrolmentRecord>,
}

/// A device after a rotation was requested: its credentials marked to be replaced at its next
/// authenticated fetch. `None` when it has none yet (not enrolled).
pub(crate) fn request_rotation(mut device: DeviceRecord) -> Option<DeviceRecord> {
    device.credentials.as_mut()?.rotate = true;
    Some(device)
}

/// A device after its enrolment window was (re)opened until `until`: the credentials it was
/// given are forgotten (a factory-reset phone lost them).
/// With `until` `None` the partner revokes them: without credentials or a window, the device
/// is answered like an unknown MAC until its enrolment is reopened.
pub(crate) fn open_enrolment(mut device: DeviceRecord, until: Option<Millis>) -> DeviceRecord {
    device.credentials = None;
    device.enrol_until = until;
    device
}

/// Migration 3's data step for one device claimed with a plain label code: the claim secret
/// (as stored) that replaces the code.
pub(crate) fn migrated_claim_secret(mac: &str, code: &str) -> Result<String, Error> {
    let mac = Mac::parse(mac).map_err(|e| codec::corrupt("device mac", e))?;
    let code = ClaimCode::parse(code).map_err(|e| codec::corrupt("claim code", e))?;
    codec::json("claim secret", &ClaimSecret::new(mac, &code))
}

/// Migration 3's data step for devices claimed before phone authentication existed: the end of
/// the fresh enrolment window they get at `now`, so they can enrol.
pub(crate) fn migrated_enrolment_until(now: Millis) -> Millis {
    now + enrolment_ms(None)
}

/// The audit actor of a portal user: `user:<id>:<email>`, scoped to the user's partner (an
/// administrator's to nothing), so the audit log shows the person behind every portal change.
pub fn user_actor(user: &super::records::UserRecord, source: Option<IpAddr>) -> Actor {
    Actor {
        name: format!("user:{}:{}", user.id, user.email),
        partner: user.partner,
        source,
    }
}

/// The stored role of a user of `partner` (`None`: an administrator). The column makes an
/// administrator explicit, so a missing partner id alone can never make one (the schema
/// checks that the two agree).
pub fn user_role(partner: Option<PartnerId>) -> &'static str {
    match partner {
        Some(_) => "partner",
        None => "admin",
    }
}

/// Whether `actor` may manage (reset, disable) a user of `owner` (`None`: an administrator):
/// the operator any user, a partner's caller only its own partner's users.
pub fn user_in_reach(actor: &Actor, owner: Option<PartnerId>) -> bool {
    actor.partner.is_none() || actor.partner == owner
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeviceSettings, TenantName, Vendor};

    #[test]
    fn the_enrolment_window_defaults_to_7_days_and_is_capped_at_90() {
        assert_eq!(enrolment_ms(None), 7 * 24 * 3_600_000);
        assert_eq!(enrolment_ms(Some(1)), 3_600_000);
        assert_eq!(enrolment_ms(Some(u32::MAX)), 90 * 24 * 3_600_000);
        assert_eq!(migrated_enrolment_until(1_000), 1_000 + enrolment_ms(None));
    }

    #[test]
    fn a_partner_manages_only_its_own_users_the_operator_everyone() {
        let actor = |partner| Actor {
            name: "x".into(),
            partner,
            source: None,
        };
        assert!(user_in_reach(&actor(None), None), "an administrator");
        assert!(user_in_reach(&actor(None), Some(1)));
        assert!(user_in_reach(&actor(Some(1)), Some(1)));
        assert!(!user_in_reach(&actor(Some(1)), Some(2)));
        assert!(
            !user_in_reach(&actor(Some(1)), None),
            "never an administrator"
        );
        assert_eq!((user_role(Some(1)), user_role(None)), ("partner", "admin"));
    }

    #[test]
    fn the_operator_sees_everything_a_partner_only_its_own() {
        assert!(visible(Some(1), None));
        assert!(visible(None, None));
        assert!(visible(Some(1), Some(1)));
        assert!(!visible(Some(2), Some(1)));
        assert!(
            !visible(None, Some(1)),
            "an operator's tenant is not a partner's"
        );
        assert!(customer_usable(Some(1), None));
        assert!(customer_usable(Some(1), Some(1)));
        assert!(!customer_usable(Some(2), Some(1)));
        assert!(!customer_usable(None, None), "no such customer");
    }

    #[test]
    fn an_imported_tenant_name_is_taken_only_by_another_partner() {
        let partner = Actor {
            partner: Some(1),
            ..Actor::cli()
        };
        assert_eq!(import_tenant(None, &partner), ImportTenant::Create);
        assert_eq!(
            import_tenant(Some((7, Some(1))), &partner),
            ImportTenant::Update(7)
        );
        assert_eq!(
            import_tenant(Some((7, Some(2))), &partner),
            ImportTenant::NameTaken
        );
        assert_eq!(
            import_tenant(Some((7, None)), &partner),
            ImportTenant::NameTaken
        );
        assert_eq!(
            import_tenant(Some((7, Some(2))), &Actor::cli()),
            ImportTenant::Update(7)
        );
    }

    #[test]
    fn a_bulk_change_visits_each_device_once_in_mac_order() {
        let m = |s: &str| Mac::parse(s).unwrap();
        let macs = [m("805ec0000002"), m("805ec0000001"), m("80:5e:c0:00:00:02")];
        assert_eq!(bulk_visits(&macs), [m("805ec0000001"), m("805ec0000002")]);
        assert!(bulk_visits(&[]).is_empty());
    }

    #[test]
    fn a_bulk_step_releases_moves_or_leaves_a_device() {
        let request = ClaimRequest {
            mac: Mac::parse("805ec0000001").unwrap(),
            vendor: Vendor::Yealink,
            claim_code: None,
            tenant: TenantName::parse("t1").unwrap(),
            settings: DeviceSettings::default(),
            enrol_until: None,
            redirect: false,
        };
        let device = new_claim(&request, 1);
        assert_eq!(bulk_step(None, None), BulkStep::NotFound);
        assert_eq!(bulk_step(None, Some(1)), BulkStep::NotFound);
        assert_eq!(bulk_step(Some(&device), None), BulkStep::Release);
        assert_eq!(bulk_step(Some(&device), Some(1)), BulkStep::Unchanged);
        assert_eq!(bulk_step(Some(&device), Some(2)), BulkStep::Move);
    }

    #[test]
    fn a_mac_named_twice_is_changed_once_and_reports_unchanged_after() {
        let m = |s: &str| Mac::parse(s).unwrap();
        let (a, b, c) = (m("805ec0000001"), m("805ec0000002"), m("805ec0000003"));
        let decided = HashMap::from([(a, BulkOutcome::Released)]);
        assert_eq!(
            bulk_outcomes(&[b, a, c, a, b], decided),
            [
                BulkOutcome::NotFound,
                BulkOutcome::Released,
                BulkOutcome::NotFound,
                BulkOutcome::Unchanged,
                BulkOutcome::NotFound,
            ]
        );
    }

    #[test]
    fn claiming_again_needs_the_same_label_code() {
        let mac = Mac::parse("7c2f80e0d605").unwrap();
        let request = |code: Option<&str>| ClaimRequest {
            mac,
            vendor: Vendor::Gigaset,
            claim_code: code.map(|c| ClaimCode::parse(c).unwrap()),
            tenant: TenantName::parse("t1").unwrap(),
            settings: DeviceSettings::default(),
            enrol_until: None,
            redirect: false,
        };
        let claimed = new_claim(&request(Some("AB12")), 1);
        assert!(claimed.credentials.is_none());
        let again = |code| claim_again(claimed.clone(), request(code).claim_code.as_ref());
        assert!(matches!(again(Some("ab12")), ClaimOutcome::Unchanged(_)));
        assert_eq!(again(Some("AB13")), ClaimOutcome::ClaimCodeMismatch);
        assert_eq!(again(None), ClaimOutcome::ClaimCodeMismatch);
        let plain = new_claim(&request(None), 1);
        assert!(matches!(
            claim_again(plain.clone(), None),
            ClaimOutcome::Unchanged(_)
        ));
        let code = ClaimCode::parse("AB12").unwrap();
        assert_eq!(
            claim_again(plain, Some(&code)),
            ClaimOutcome::ClaimCodeMismatch
        );
    }
}
