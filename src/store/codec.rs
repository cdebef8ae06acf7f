//! How records are written to and read from the store's columns, the same for both backends:
//! settings, customers, claim secrets and credentials as JSON text; MACs, vendors and tenant
//! names as text; a change as (entity, key); an audit entry as text columns. A value that cannot
//! be read back is [`Error::Corrupt`], naming what it was.
//!
//! Must not know SQL, a driver or its row type: each backend reads its columns (owned strings
//! for SQLite, borrowed ones for PostgreSQL) and hands the values here.

use std::fmt::Display;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::outbox::RedirectAction;
use super::records::{
    Actor, AuthFailure, Change, ChangeEntry, ClaimRequest, CustomerRecord, DeviceQuery,
    DeviceRecord, DeviceStatus, DeviceView, Millis, TenantId, TenantRecord,
};
use super::Error;
use crate::domain::{CustomerId, Mac, PartnerId, TenantName, Vendor};

/// A stored value that could not be read back.
pub(crate) fn corrupt(what: &str, e: impl Display) -> Error {
    Error::Corrupt(format!("{what}: {e}"))
}

/// `value` as the JSON text a column holds.
pub(crate) fn json<T: Serialize>(what: &str, value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| corrupt(what, e))
}

fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn from_optional_json<T: DeserializeOwned>(
    what: &str,
    text: Option<&str>,
) -> Result<Option<T>, Error> {
    text.map(|t| from_json(what, t)).transpose()
}

/// A stored tenant name.
pub(crate) fn tenant_name(text: &str) -> Result<TenantName, Error> {
    TenantName::parse(text).map_err(|e| corrupt("tenant name", e))
}

/// A page size as SQL wants it.
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The key a keyset page starts after: every stored MAC sorts after the empty string.
pub(crate) fn after(mac: Option<Mac>) -> String {
    mac.map(|m| m.to_string()).unwrap_or_default()
}

/// A value a device search binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SearchValue {
    /// An integer (a partner id, a time, the page size).
    Int(i64),
    /// Text (a MAC bound, a tenant name, a vendor).
    Text(String),
}

/// The length from which a MAC fragment is selective: three hex digits match about one MAC
/// in four hundred.
const SELECTIVE_FRAGMENT: usize = 3;

/// How a backend finds the MACs holding a fragment (`mac_contains`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FragmentSearch {
    /// An index of the MACs' trigrams answers `LIKE '%…%'` itself (PostgreSQL's `pg_trgm`).
    Indexed,
    /// No index holds a MAC's inner digits (SQLite): a partner's selective fragment is looked
    /// for among the partner's own MACs, read from the tenant index.
    ThroughPartner,
}

/// The device search's conditions over `VIEW_SELECT`'s aliases (`d` devices, `t` tenants,
/// `s` device_status), each with one `{}` per value where its placeholder goes, in binding
/// order; the page size is bound last. Both backends render the placeholders their way.
///
/// Only the filters given become conditions: written as `(? IS NULL OR col = ?)`, a filter
/// hides the column's index from the planner (PostgreSQL's generic plan of such a statement
/// read a partner's first page in half a second in a million devices).
pub(crate) fn device_search(
    partner: Option<PartnerId>,
    q: DeviceQuery,
    fragments: FragmentSearch,
) -> (Vec<(&'static str, Vec<SearchValue>)>, SearchValue) {
    use SearchValue::{Int, Text};
    let mut conditions = Vec::new();
    if let Some(partner) = partner {
        conditions.push(("t.partner_id = {}", vec![Int(partner)]));
    }
    // One lower bound and one upper bound on the MAC, so the primary key's range is the
    // whole search (SQLite takes only the first lower bound it is given into its range).
    let after = after(q.after);
    match q.mac_prefix {
        Some(prefix) => {
            // Stored MACs are lower-case hex: every one starting with the prefix sorts before
            // the prefix followed by 'g'. Past the prefix's start, the page key is the bound.
            let end = format!("{prefix}g");
            if after < prefix {
                conditions.push(("d.mac >= {}", vec![Text(prefix)]));
            } else {
                conditions.push(("d.mac > {}", vec![Text(after)]));
            }
            conditions.push(("d.mac < {}", vec![Text(end)]));
        }
        None => conditions.push(("d.mac > {}", vec![Text(after)])),
    }
    if let Some(fragment) = q
        .mac_contains
        .filter(|f| f.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        // Hex digits only (checked here too), so the pattern holds no wildcard of its own.
        let pattern = Text(format!("%{fragment}%"));
        match partner {
            // A fragment this long matches a few MACs in a thousand: read in MAC order, a page
            // would wade through most of the store to find them. The partner's own MACs are
            // read instead from the tenant index, which holds them (no device row is read), and
            // only the matches are looked up; the cost follows the partner's size.
            Some(partner)
                if fragments == FragmentSearch::ThroughPartner
                    && fragment.len() >= SELECTIVE_FRAGMENT =>
            {
                conditions.push((
                "d.mac IN (SELECT od.mac FROM tenants own JOIN devices od ON od.tenant_id = own.id \
                 WHERE own.partner_id = {} AND od.mac LIKE {})",
                vec![Int(partner), pattern],
                ))
            }
            // A shorter one matches often enough that the MAC-order walk fills a page early;
            // with a trigram index, the planner picks the index or the walk by its statistics.
            _ => conditions.push(("d.mac LIKE {}", vec![pattern])),
        }
    }
    if let Some(tenant) = q.tenant {
        conditions.push(("t.name = {}", vec![Text(tenant.as_str().to_owned())]));
    }
    if let Some(vendor) = q.vendor {
        conditions.push(("d.vendor = {}", vec![Text(vendor.as_str().to_owned())]));
    }
    if let Some(since) = q.seen_since {
        conditions.push(("s.last_seen >= {}", vec![Int(since)]));
    }
    if let Some(before) = q.seen_before {
        conditions.push(("s.last_seen < {}", vec![Int(before)]));
    }
    if q.never_seen {
        conditions.push(("s.mac IS NULL", vec![]));
    }
    (conditions, Int(limit(q.limit)))
}

/// A tenant's columns as read (`id, name, partner_id, customer_id, settings`).
pub(crate) struct TenantColumns<S> {
    pub(crate) id: TenantId,
    pub(crate) name: S,
    pub(crate) partner: Option<PartnerId>,
    pub(crate) customer: Option<CustomerId>,
    pub(crate) settings: S,
}

impl<S: AsRef<str>> TenantColumns<S> {
    /// The tenant they hold.
    pub(crate) fn decode(self) -> Result<TenantRecord, Error> {
        Ok(TenantRecord {
            id: self.id,
            name: tenant_name(self.name.as_ref())?,
            partner: self.partner,
            customer: self.customer,
            settings: from_json("tenant settings", self.settings.as_ref())?,
        })
    }
}

/// A device's columns as read
/// (`mac, vendor, tenant_id, claim_secret, credentials, enrol_until, settings`).
pub(crate) struct DeviceColumns<S> {
    pub(crate) mac: S,
    pub(crate) vendor: S,
    pub(crate) tenant: TenantId,
    pub(crate) claim_secret: Option<S>,
    pub(crate) credentials: Option<S>,
    pub(crate) enrol_until: Option<Millis>,
    pub(crate) settings: S,
}

impl<S: AsRef<str>> DeviceColumns<S> {
    /// The device they hold.
    pub(crate) fn decode(self) -> Result<DeviceRecord, Error> {
        Ok(DeviceRecord {
            mac: Mac::parse(self.mac.as_ref()).map_err(|e| corrupt("device mac", e))?,
            vendor: self
                .vendor
                .as_ref()
                .parse::<Vendor>()
                .map_err(|e| corrupt("device vendor", e))?,
            tenant: self.tenant,
            claim_secret: from_optional_json(
                "claim secret",
                self.claim_secret.as_ref().map(S::as_ref),
            )?,
            credentials: from_optional_json(
                "credentials",
                self.credentials.as_ref().map(S::as_ref),
            )?,
            enrol_until: self.enrol_until,
            settings: from_json("device settings", self.settings.as_ref())?,
        })
    }
}

/// What a partner sees of a device: its columns, its tenant's name, when it was claimed and
/// last changed, and its last fetch (`None`: it never fetched).
pub(crate) fn view(
    device: DeviceColumns<impl AsRef<str>>,
    tenant: &str,
    claimed_at: Millis,
    updated_at: Millis,
    status: Option<DeviceStatus>,
    enrolment: Option<&str>,
    auth_failure: Option<AuthFailure>,
) -> Result<DeviceView, Error> {
    Ok(DeviceView {
        record: device.decode()?,
        tenant_name: tenant_name(tenant)?,
        claimed_at,
        updated_at,
        status,
        enrolment: from_optional_json("enrolment", enrolment)?,
        auth_failure,
    })
}

/// A customer from its columns (`id, partner_id, fields, created_at`).
pub(crate) fn customer(
    id: CustomerId,
    partner: PartnerId,
    fields: &str,
    created_at: Millis,
) -> Result<CustomerRecord, Error> {
    Ok(CustomerRecord {
        id,
        partner,
        fields: from_json("customer", fields)?,
        created_at,
    })
}

/// A change as the `changes` table holds it: (entity, key).
pub(crate) fn change_columns(change: &Change) -> (&'static str, String) {
    match change {
        Change::Tenant(id) => ("tenant", id.to_string()),
        Change::Device(mac) => ("device", mac.to_string()),
        Change::Secret(name) => ("secret", name.clone()),
    }
}

/// A change from its sequence number, entity and key.
pub(crate) fn change(seq: i64, entity: &str, key: &str) -> Result<ChangeEntry, Error> {
    let change = match entity {
        "tenant" => Change::Tenant(key.parse().map_err(|e| corrupt("change key", e))?),
        "device" => Change::Device(Mac::parse(key).map_err(|e| corrupt("change key", e))?),
        "secret" => Change::Secret(key.to_owned()),
        other => return Err(corrupt("change entity", other)),
    };
    Ok(ChangeEntry { seq, change })
}

/// A change as the audit log records it: the audit log's vocabulary (which action, on which
/// device and tenant, with what detail), the same for both backends. Never secrets.
pub(crate) enum AuditEvent<'a> {
    /// `partner.create`.
    PartnerCreated {
        /// The new partner.
        partner: PartnerId,
        /// Its name.
        name: &'a str,
    },
    /// `token.create`.
    TokenCreated {
        /// Whose token.
        partner: PartnerId,
        /// The token's row id.
        token: i64,
    },
    /// `token.revoke`.
    TokenRevoked {
        /// Whose token.
        partner: PartnerId,
        /// The token's row id.
        token: i64,
    },
    /// `user.create`: a portal user of a partner, or an administrator (no partner).
    UserCreated {
        /// Whose user (`None`: an administrator).
        partner: Option<PartnerId>,
        /// The user's row id.
        user: i64,
        /// The login e-mail.
        email: &'a str,
    },
    /// `user.password.link`: a set-password link was issued (never the link itself).
    PasswordLinkIssued(i64),
    /// `user.password.set`: a user set a password with a link.
    PasswordSet(i64),
    /// `user.disable` (true) or `user.enable` (false), of the user with this id and e-mail.
    UserDisabled {
        /// The user's row id.
        user: i64,
        /// Its login e-mail, so the entry names the person even to a reader without the id.
        email: &'a str,
        /// Disabled (true) or enabled again (false).
        disabled: bool,
    },
    /// `customer.create`.
    CustomerCreated(CustomerId),
    /// `customer.update`.
    CustomerUpdated(CustomerId),
    /// `tenant.create`, of the tenant named so.
    TenantCreated(&'a str),
    /// `tenant.update`.
    TenantUpdated(&'a str),
    /// `tenant.delete`.
    TenantDeleted(&'a str),
    /// `device.claim`, with the enrolment window it opens.
    DeviceClaimed(&'a ClaimRequest),
    /// `device.move`, from one tenant to another.
    DeviceMoved {
        /// The device.
        mac: Mac,
        /// The tenant it leaves.
        from: &'a str,
        /// The tenant it joins.
        to: &'a str,
    },
    /// `device.update`: new per-device settings, in this tenant.
    DeviceUpdated(Mac, &'a str),
    /// `device.release`, from this tenant.
    DeviceReleased(Mac, &'a str),
    /// `device.enrolment.open`, in this tenant, until then; `device.credentials.revoke` without
    /// an end (no window, no credentials).
    EnrolmentOpened(Mac, &'a str, Option<Millis>),
    /// `device.credentials.rotate`: a partner asked for new credentials.
    RotationRequested(Mac, &'a str),
    /// A phone's own credential change, with the action `rules::change_credentials` named.
    PhoneCredentials(&'static str, Mac, Option<&'a str>),
    /// `device.redirect.register` / `device.redirect.deregister`: what the vendor's redirect
    /// service answered (a first failed try and every final outcome; retries are not logged
    /// one by one, so an outage cannot flood the log).
    Redirect {
        /// Which row.
        action: RedirectAction,
        /// The device.
        mac: Mac,
        /// Its tenant, while it is claimed.
        tenant: Option<&'a str>,
        /// The settlement's result label.
        result: &'static str,
        /// The vendor's reason, if any.
        reason: Option<&'a str>,
    },
}

impl AuditEvent<'_> {
    /// (action, device, tenant, detail).
    fn parts(&self) -> (&'static str, Option<Mac>, Option<&str>, Option<Value>) {
        match *self {
            AuditEvent::PartnerCreated { partner, name } => (
                "partner.create",
                None,
                None,
                Some(json!({"partner": partner, "name": name})),
            ),
            AuditEvent::TokenCreated { partner, token } => (
                "token.create",
                None,
                None,
                Some(json!({"partner": partner, "token": token})),
            ),
            AuditEvent::TokenRevoked { partner, token } => (
                "token.revoke",
                None,
                None,
                Some(json!({"partner": partner, "token": token})),
            ),
            AuditEvent::UserCreated {
                partner,
                user,
                email,
            } => (
                "user.create",
                None,
                None,
                Some(json!({"partner": partner, "user": user, "email": email})),
            ),
            AuditEvent::PasswordLinkIssued(user) => (
                "user.password.link",
                None,
                None,
                Some(json!({"user": user})),
            ),
            AuditEvent::PasswordSet(user) => {
                ("user.password.set", None, None, Some(json!({"user": user})))
            }
            AuditEvent::UserDisabled {
                user,
                email,
                disabled,
            } => (
                if disabled {
                    "user.disable"
                } else {
                    "user.enable"
                },
                None,
                None,
                Some(json!({"user": user, "email": email})),
            ),
            AuditEvent::CustomerCreated(id) => {
                ("customer.create", None, None, Some(json!({"customer": id})))
            }
            AuditEvent::CustomerUpdated(id) => {
                ("customer.update", None, None, Some(json!({"customer": id})))
            }
            AuditEvent::TenantCreated(name) => ("tenant.create", None, Some(name), None),
            AuditEvent::TenantUpdated(name) => ("tenant.update", None, Some(name), None),
            AuditEvent::TenantDeleted(name) => ("tenant.delete", None, Some(name), None),
            AuditEvent::DeviceClaimed(req) => (
                "device.claim",
                Some(req.mac),
                Some(req.tenant.as_str()),
                req.enrol_until.map(|u| json!({"enrolment_until": u})),
            ),
            AuditEvent::DeviceMoved { mac, from, to } => (
                "device.move",
                Some(mac),
                Some(to),
                Some(json!({"from": from, "to": to})),
            ),
            AuditEvent::DeviceUpdated(mac, tenant) => {
                ("device.update", Some(mac), Some(tenant), None)
            }
            AuditEvent::DeviceReleased(mac, tenant) => {
                ("device.release", Some(mac), Some(tenant), None)
            }
            AuditEvent::EnrolmentOpened(mac, tenant, Some(until)) => (
                "device.enrolment.open",
                Some(mac),
                Some(tenant),
                Some(json!({"until": until})),
            ),
            AuditEvent::EnrolmentOpened(mac, tenant, None) => {
                ("device.credentials.revoke", Some(mac), Some(tenant), None)
            }
            AuditEvent::RotationRequested(mac, tenant) => {
                ("device.credentials.rotate", Some(mac), Some(tenant), None)
            }
            AuditEvent::PhoneCredentials(action, mac, tenant) => (action, Some(mac), tenant, None),
            AuditEvent::Redirect {
                action,
                mac,
                tenant,
                result,
                reason,
            } => (
                match action {
                    RedirectAction::Register => "device.redirect.register",
                    RedirectAction::Deregister => "device.redirect.deregister",
                },
                Some(mac),
                tenant,
                Some(json!({"result": result, "reason": reason})),
            ),
        }
    }
}

/// One audit entry as the `audit` table holds it: who (actor), when, what (action on a device
/// or tenant), from where, and detail as JSON text.
pub(crate) struct AuditRow {
    pub(crate) at: Millis,
    pub(crate) actor: String,
    pub(crate) source: Option<String>,
    pub(crate) action: &'static str,
    pub(crate) mac: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) detail: Option<String>,
    /// The partner whose caller acted (`None`: the operator, a phone).
    pub(crate) partner: Option<i64>,
}

impl AuditRow {
    /// The entry `actor` leaves at `at` for `event`.
    pub(crate) fn new(at: Millis, actor: &Actor, event: AuditEvent<'_>) -> Self {
        let (action, mac, tenant, detail) = event.parts();
        Self {
            at,
            actor: actor.name.clone(),
            source: actor.source.map(|a| a.to_string()),
            action,
            mac: mac.map(|m| m.to_string()),
            tenant: tenant.map(str::to_owned),
            detail: detail.map(|d| d.to_string()),
            partner: actor.partner,
        }
    }
}

/// A page's row limit as SQL takes it: `None` (every row) is PostgreSQL's `LIMIT NULL`; SQLite
/// spells it `-1`.
pub(crate) fn page_limit(limit: Option<usize>) -> Option<i64> {
    limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod device_search_tests {
    use super::*;

    fn query(prefix: Option<&str>, after: Option<&str>) -> DeviceQuery {
        DeviceQuery {
            mac_prefix: prefix.map(str::to_owned),
            mac_contains: None,
            tenant: None,
            vendor: None,
            seen_since: None,
            seen_before: None,
            never_seen: false,
            after: after.map(|m| Mac::parse(m).unwrap()),
            limit: 100,
        }
    }

    #[test]
    fn a_partners_long_fragment_is_looked_for_among_its_own_macs_without_a_trigram_index() {
        use SearchValue::{Int, Text};
        let fragment = |f: &str, partner, how| {
            let mut q = query(None, None);
            q.mac_contains = Some(f.to_owned());
            device_search(partner, q, how).0.pop()
        };
        let through = FragmentSearch::ThroughPartner;
        let (condition, values) = fragment("3a7f", Some(7), through).unwrap();
        assert!(condition.starts_with("d.mac IN (SELECT od.mac FROM tenants own"));
        assert_eq!(values, vec![Int(7), Text("%3a7f%".into())]);
        assert_eq!(condition.matches("{}").count(), values.len());
        let plain = Some(("d.mac LIKE {}", vec![Text("%3a%".into())]));
        assert_eq!(fragment("3a", Some(7), through), plain, "short: MAC order");
        let plain = Some(("d.mac LIKE {}", vec![Text("%3a7f%".into())]));
        assert_eq!(
            fragment("3a7f", None, through),
            plain,
            "the administrator's"
        );
        assert_eq!(fragment("3a7f", Some(7), FragmentSearch::Indexed), plain);
        assert_eq!(
            fragment("3a%7f", Some(7), through),
            Some(("d.mac > {}", vec![Text(String::new())])),
            "not hex: no condition (the API refuses it before)"
        );
    }

    #[test]
    fn a_search_has_one_lower_and_one_upper_bound_and_only_the_filters_given() {
        use SearchValue::{Int, Text};
        let (c, limit) = device_search(None, query(None, None), FragmentSearch::Indexed);
        assert_eq!(c, vec![("d.mac > {}", vec![Text(String::new())])]);
        assert_eq!(limit, Int(100));
        // Before the prefix's range, the prefix is the lower bound; inside it, the page key.
        let (c, _) = device_search(
            Some(7),
            query(Some("805ec0"), Some("001122334455")),
            FragmentSearch::Indexed,
        );
        assert_eq!(
            c,
            vec![
                ("t.partner_id = {}", vec![Int(7)]),
                ("d.mac >= {}", vec![Text("805ec0".into())]),
                ("d.mac < {}", vec![Text("805ec0g".into())]),
            ]
        );
        let (c, _) = device_search(
            None,
            query(Some("805ec0"), Some("805ec0aabbcc")),
            FragmentSearch::Indexed,
        );
        assert_eq!(
            c,
            vec![
                ("d.mac > {}", vec![Text("805ec0aabbcc".into())]),
                ("d.mac < {}", vec![Text("805ec0g".into())]),
            ]
        );
    }
}
