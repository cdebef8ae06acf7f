//! Who may have a device's config: the access decision (DESIGN.md, "Who may fetch a config").
//!
//! A pure decision over the request, the device and its tenant, the Digest nonce memory and
//! the per-device failure count: MAC-only tenants, Gigaset MAC-ID Digest, enrolled credentials
//! (Digest, or Basic over TLS) through their life (pending, bound, rotated, retired,
//! compromised), or an open enrolment window and who may use it. Knows nothing of rendering,
//! the store or how credentials are issued; it only says that they are to be.

use crate::domain::network;
use crate::domain::{OuiTable, PhoneAuth};
use crate::registry::{Device, Tenant};
use crate::vendors::{FileKind, PhoneRequest};

use super::auth::{self, Nonces};
use super::backoff::Backoff;
use super::issue::Issuance;
use super::throttle::Prefix;
use super::unanswered::Unanswered;
use super::{Fetch, Outcome};

/// The decision for a request naming a known device.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// Serve the config. `confirm`: the phone proved itself with credentials that were
    /// pending (a fresh enrolment, rotation or re-issue); the store must hear that they are
    /// bound now. `authenticated`: it proved itself at all (served even from a network the
    /// miss throttle blocks).
    Allow {
        /// Tell the store the current credentials are in use.
        confirm: bool,
        /// The request carried valid credentials (or the tenant needs none).
        authenticated: bool,
    },
    /// Hand the phone new credentials with its config.
    Issue(Issuance),
    /// Ask for credentials (`stale`: the nonce expired, answer again).
    Challenge {
        /// The nonce presented had expired.
        stale: bool,
    },
    /// Retired credentials were presented: mark the device compromised, refuse.
    Compromise,
    /// Refuse, as `Outcome`.
    Refuse(Outcome),
}

const AUTHENTICATED: Access = Access::Allow {
    confirm: false,
    authenticated: true,
};

/// A file without secrets, given to whoever asks inside an enrolment window.
const UNAUTHENTICATED: Access = Access::Allow {
    confirm: false,
    authenticated: false,
};

/// What the decision reads besides the request.
pub struct Gate<'a> {
    /// Digest nonces and their replay memory.
    pub nonces: &'a Nonces,
    /// Who made which MAC, for a User-Agent that names no vendor.
    pub ouis: &'a OuiTable,
    /// Devices waiting out failed authentications.
    pub backoff: &'a Backoff,
    /// Pending devices challenged that have not answered.
    pub unanswered: &'a Unanswered,
    /// `zerotouch render`: decide as for a phone that authenticated, bind nothing.
    pub dry_run: bool,
}

impl Gate<'_> {
    /// Decides whether `fetch` (recognised as `request`) may have `device`'s config.
    pub fn decide(
        &self,
        fetch: &Fetch<'_>,
        request: &PhoneRequest<'_>,
        device: &Device,
        tenant: &Tenant,
        now_ms: fn() -> u64,
    ) -> Access {
        let agent_vendor = request.agent.and_then(|a| {
            a.vendor
                .or_else(|| a.mac.and_then(|m| self.ouis.vendor_of(m)))
        });
        if device.vendor != request.vendor || agent_vendor.is_some_and(|v| v != request.vendor) {
            return Access::Refuse(Outcome::VendorMismatch);
        }
        let per_device_file = request.file == FileKind::Device;
        if per_device_file && !fetch.tls && !tenant.settings.allow_plain_http {
            return Access::Refuse(Outcome::HttpsRequired);
        }
        if tenant.settings.phone_auth == PhoneAuth::Mac {
            return AUTHENTICATED;
        }
        if self.dry_run && (device.claim_secret.is_some() || device.credentials.is_some()) {
            return AUTHENTICATED;
        }
        // Read the clock only past the `mac`-mode return: most fetches never need it.
        let now_ms = now_ms();
        let has_secret = device.claim_secret.is_some() || device.credentials.is_some();
        if has_secret
            && fetch.authorization.is_some()
            && self.backoff.waiting(device.mac, now_ms).is_some()
        {
            return Access::Refuse(Outcome::AuthBackoff);
        }
        let prefix = Prefix::of(fetch.source);
        let presented = auth::Presented {
            authorization: fetch.authorization,
            method: fetch.method,
            uri: fetch.path_and_query,
            tls: fetch.tls,
            prefix: prefix.bytes(),
            now_ms,
        };
        let window_open = device
            .enrol_until
            .is_some_and(|until| u64::try_from(until).is_ok_and(|u| u > now_ms));
        let may_enrol = || self.may_enrol(fetch, request, device, tenant, agent_vendor);
        // Gigaset phones prove themselves with their MAC-ID, out of the box.
        if let Some(secret) = &device.claim_secret {
            return match auth::verify(self.nonces, &presented, &secret.entries()) {
                auth::Verdict::Authenticated(_) => AUTHENTICATED,
                auth::Verdict::Missing => Access::Challenge { stale: false },
                auth::Verdict::Stale => Access::Challenge { stale: true },
                auth::Verdict::Failed => Access::Refuse(Outcome::AuthFailed),
            };
        }
        if let Some(credentials) = &device.credentials {
            if credentials.compromised {
                return Access::Refuse(Outcome::Compromised);
            }
            // Candidates in a fixed order: current, then previous and retired if kept.
            let mut candidates = [&credentials.current; 3];
            let mut count = 1;
            let previous_at = credentials.previous.as_ref().map(|p| {
                candidates[count] = p;
                count += 1;
                count - 1
            });
            let retired_at = credentials.retired.as_ref().map(|r| {
                candidates[count] = r;
                count += 1;
                count - 1
            });
            // Issuing needs TLS: credentials never travel in clear.
            let can_issue = per_device_file && fetch.tls && fetch.method == "GET";
            return match auth::verify(self.nonces, &presented, &candidates[..count]) {
                auth::Verdict::Authenticated(0) if credentials.rotate && can_issue => {
                    Access::Issue(Issuance::Rotate)
                }
                auth::Verdict::Authenticated(0) => Access::Allow {
                    confirm: credentials.awaits_confirmation(),
                    authenticated: true,
                },
                auth::Verdict::Authenticated(i) if Some(i) == retired_at => Access::Compromise,
                auth::Verdict::Authenticated(i) if Some(i) == previous_at && can_issue => {
                    Access::Issue(Issuance::Reissue)
                }
                auth::Verdict::Authenticated(_) => AUTHENTICATED,
                // The first answer never arrived: challenged once, the phone had nothing to
                // answer with and asks again without credentials; it gets fresh ones while
                // its window is open.
                auth::Verdict::Missing
                    if credentials.pending
                        && credentials.previous.is_none()
                        && window_open
                        && per_device_file
                        && self.unanswered.was_challenged(device.mac, fetch.source)
                        && may_enrol() =>
                {
                    Access::Issue(Issuance::Enrol)
                }
                auth::Verdict::Missing => Access::Challenge { stale: false },
                auth::Verdict::Stale => Access::Challenge { stale: true },
                auth::Verdict::Failed => Access::Refuse(Outcome::AuthFailed),
            };
        }
        if !window_open {
            return Access::Refuse(Outcome::NotEnrolled);
        }
        if !per_device_file {
            // The common or model file holds no secret: give it, bind on the per-device
            // file that follows.
            return UNAUTHENTICATED;
        }
        if may_enrol() {
            Access::Issue(Issuance::Enrol)
        } else {
            Access::Refuse(Outcome::EnrolmentRefused)
        }
    }

    /// Whether this fetch may be handed a device's first credentials: a GET (a HEAD would
    /// burn them unseen) over TLS, with the User-Agent of the device's vendor naming a model,
    /// from a network the device's (or else its tenant's) enrolment networks admit.
    fn may_enrol(
        &self,
        fetch: &Fetch<'_>,
        request: &PhoneRequest<'_>,
        device: &Device,
        tenant: &Tenant,
        agent_vendor: Option<crate::domain::Vendor>,
    ) -> bool {
        if self.dry_run {
            return true;
        }
        if fetch.method != "GET" || !fetch.tls {
            return false;
        }
        let vendors_agent =
            agent_vendor == Some(device.vendor) && request.agent.is_some_and(|a| a.model.is_some());
        let networks = match device.settings.as_deref() {
            Some(s) if !s.enrolment_networks.is_empty() => &s.enrolment_networks,
            _ => &tenant.settings.enrolment_networks,
        };
        vendors_agent && network::admits(networks, fetch.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::credentials::PhoneCredentials;
    use crate::domain::{Ha1, Mac, Network};
    use crate::fixture::{self, Phone};
    use base64::Engine as _;
    use std::time::Duration;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    /// The per-device memories the decision reads.
    #[derive(Default)]
    struct Memory {
        backoff: Backoff,
        unanswered: Unanswered,
    }

    fn gate<'a>(nonces: &'a Nonces, ouis: &'a OuiTable, memory: &'a Memory) -> Gate<'a> {
        Gate {
            nonces,
            ouis,
            backoff: &memory.backoff,
            unanswered: &memory.unanswered,
            dry_run: false,
        }
    }

    /// Decides for `fetch` of the device `phone` names, with `device` changed by `change`.
    fn decide_with(
        phone: &Phone,
        fetch: &Fetch<'_>,
        memory: &Memory,
        change: impl FnOnce(&mut Device, &mut Tenant),
    ) -> Access {
        let registry = fixture::registry();
        let nonces = Nonces::new(b"access tests", Duration::from_secs(60), 64);
        let ouis = OuiTable::default();
        let request =
            crate::vendors::recognise(fetch.path_and_query, fetch.user_agent, &ouis).unwrap();
        let (device, tenant) = registry.lookup(request.mac().unwrap()).unwrap();
        let mut device = Device {
            mac: device.mac,
            vendor: device.vendor,
            tenant: device.tenant,
            claim_secret: device.claim_secret.clone(),
            credentials: device.credentials.clone(),
            enrol_until: device.enrol_until,
            settings: device.settings.clone(),
            generation: device.generation,
        };
        let mut tenant = Tenant {
            id: tenant.id,
            name: tenant.name.clone(),
            settings: tenant.settings.clone(),
            generation: tenant.generation,
        };
        change(&mut device, &mut tenant);
        let _ = phone;
        gate(&nonces, &ouis, memory).decide(fetch, &request, &device, &tenant, fixture::now_ms)
    }

    /// Decides for `phone` fetching `path` with `authorization`, over TLS.
    fn decide(phone: &Phone, path: &str, authorization: Option<&str>, dry_run: bool) -> Access {
        let registry = fixture::registry();
        let nonces = Nonces::new(b"access tests", Duration::from_secs(60), 64);
        let ouis = OuiTable::default();
        let memory = Memory::default();
        let fetch = fixture::fetch(path, Some(phone.user_agent), authorization);
        let request = crate::vendors::recognise(path, Some(phone.user_agent), &ouis).unwrap();
        let (device, tenant) = registry.lookup(request.mac().unwrap()).unwrap();
        let gate = Gate {
            dry_run,
            ..gate(&nonces, &ouis, &memory)
        };
        gate.decide(&fetch, &request, &device, &tenant, fixture::now_ms)
    }

    #[test]
    fn a_mac_mode_tenant_lets_its_phones_in() {
        let phone = &fixture::TRIAL_YEALINK;
        assert_eq!(decide(phone, phone.device_path, None, false), AUTHENTICATED);
    }

    #[test]
    fn another_vendors_request_is_answered_like_an_unknown_mac() {
        let phone = &fixture::TRIAL_YEALINK;
        let path = format!("/{}.xml", phone.mac.to_uppercase());
        let fetch = fixture::fetch(&path, Some(fixture::TRIAL_SNOM.user_agent), None);
        assert_eq!(
            decide_with(phone, &fetch, &Memory::default(), |_, _| {}),
            Access::Refuse(Outcome::VendorMismatch)
        );
    }

    #[test]
    fn an_enrolled_phone_must_authenticate() {
        let phone = &fixture::ENROLLED;
        let path = phone.device_path;
        assert_eq!(
            decide(phone, path, None, false),
            Access::Challenge { stale: false }
        );
        let (user, password) = fixture::ENROLLED_CREDENTIALS;
        assert_eq!(
            decide(phone, path, Some(&basic(user, password)), false),
            AUTHENTICATED
        );
        assert_eq!(
            decide(phone, path, Some(&basic(user, "wrong")), false),
            Access::Refuse(Outcome::AuthFailed)
        );
        assert_eq!(decide(phone, path, None, true), AUTHENTICATED, "dry run");
    }

    #[test]
    fn a_gigaset_proves_itself_with_its_mac_id() {
        let phone = &fixture::GIGASET_CLAIMED;
        let (user, password) = fixture::GIGASET_MAC_ID;
        assert_eq!(
            decide(
                phone,
                phone.device_path,
                Some(&basic(user, password)),
                false
            ),
            AUTHENTICATED
        );
        assert_eq!(
            decide(phone, phone.device_path, None, false),
            Access::Challenge { stale: false }
        );
    }

    #[test]
    fn the_enrolment_window_binds_on_the_per_device_file() {
        let phone = &fixture::IN_WINDOW;
        assert_eq!(
            decide(phone, phone.device_path, None, false),
            Access::Issue(Issuance::Enrol)
        );
        assert_eq!(
            decide(phone, "/y000000000066.cfg", None, false),
            UNAUTHENTICATED
        );
        let phone = &fixture::WINDOW_CLOSED;
        assert_eq!(
            decide(phone, phone.device_path, None, false),
            Access::Refuse(Outcome::NotEnrolled)
        );
    }

    #[test]
    fn only_a_phone_of_the_vendor_over_tls_with_get_from_an_admitted_network_enrols() {
        let phone = &fixture::IN_WINDOW;
        let refused = Access::Refuse(Outcome::EnrolmentRefused);
        let try_fetch = |fetch: Fetch<'_>, networks: &[&str]| {
            let networks: Vec<Network> = networks.iter().map(|n| n.parse().unwrap()).collect();
            decide_with(phone, &fetch, &Memory::default(), |_, t| {
                t.settings.enrolment_networks = networks;
            })
        };
        let get = || fixture::fetch(phone.device_path, Some(phone.user_agent), None);
        assert_eq!(try_fetch(get(), &[]), Access::Issue(Issuance::Enrol));
        let head = Fetch {
            method: "HEAD",
            ..get()
        };
        assert_eq!(try_fetch(head, &[]), refused, "a HEAD never issues");
        let curl = fixture::fetch(phone.device_path, Some("curl/8.5.0"), None);
        assert_eq!(try_fetch(curl, &[]), refused, "no vendor User-Agent");
        let anonymous = fixture::fetch(phone.device_path, None, None);
        assert_eq!(try_fetch(anonymous, &[]), refused);
        // The fixture's client is 192.0.2.10.
        assert_eq!(
            try_fetch(get(), &["192.0.2.0/24"]),
            Access::Issue(Issuance::Enrol)
        );
        assert_eq!(
            try_fetch(get(), &["198.51.100.0/24", "2001:db8::/32"]),
            refused
        );
        let plain = Fetch {
            tls: false,
            ..get()
        };
        assert_eq!(
            try_fetch(plain, &[]),
            Access::Refuse(Outcome::HttpsRequired),
            "a device file over plain HTTP"
        );
        // The device's own list replaces its tenant's.
        let device_list = decide_with(phone, &get(), &Memory::default(), |d, t| {
            t.settings.enrolment_networks = vec!["198.51.100.0/24".parse().unwrap()];
            d.settings = Some(Box::new(crate::domain::DeviceSettings {
                enrolment_networks: vec!["192.0.2.10/32".parse().unwrap()],
                ..Default::default()
            }));
        });
        assert_eq!(device_list, Access::Issue(Issuance::Enrol));
    }

    #[test]
    fn plain_http_serves_device_files_only_to_tenants_that_allow_it_and_never_issues() {
        let phone = &fixture::IN_WINDOW;
        let plain = Fetch {
            tls: false,
            ..fixture::fetch(phone.device_path, Some(phone.user_agent), None)
        };
        let allowed = decide_with(phone, &plain, &Memory::default(), |_, t| {
            t.settings.allow_plain_http = true;
        });
        assert_eq!(allowed, Access::Refuse(Outcome::EnrolmentRefused));
    }

    /// `phone`'s device with credentials `current` (pending or not), `previous` and `retired`.
    fn with_credentials(
        pending: bool,
        previous: Option<Ha1>,
        retired: Option<Ha1>,
    ) -> impl FnOnce(&mut Device, &mut Tenant) {
        move |d, _| {
            let (user, password) = fixture::ENROLLED_CREDENTIALS;
            d.credentials = Some(Box::new(PhoneCredentials {
                pending,
                previous,
                retired,
                ..PhoneCredentials::issued(Ha1::new(user, password))
            }));
            d.enrol_until = Some(i64::MAX / 2);
        }
    }

    #[test]
    fn pending_credentials_are_issued_again_to_a_phone_that_never_got_them() {
        let phone = &fixture::IN_WINDOW;
        let bare = fixture::fetch(phone.device_path, Some(phone.user_agent), None);
        let b = Memory::default();
        assert_eq!(
            decide_with(phone, &bare, &b, with_credentials(true, None, None)),
            Access::Challenge { stale: false },
            "a phone holding them answers a challenge"
        );
        b.unanswered.challenged(
            Mac::parse(phone.mac).unwrap(),
            bare.source,
            fixture::now_ms(),
        );
        assert_eq!(
            decide_with(phone, &bare, &b, with_credentials(true, None, None)),
            Access::Issue(Issuance::Enrol),
            "asked again without: it never got them"
        );
        assert_eq!(
            decide_with(phone, &bare, &b, with_credentials(false, None, None)),
            Access::Challenge { stale: false },
            "bound: challenged"
        );
        let (user, password) = fixture::ENROLLED_CREDENTIALS;
        let auth = basic(user, password);
        let signed = fixture::fetch(phone.device_path, Some(phone.user_agent), Some(&auth));
        assert_eq!(
            decide_with(phone, &signed, &b, with_credentials(true, None, None)),
            Access::Allow {
                confirm: true,
                authenticated: true
            },
            "the first authenticated fetch binds"
        );
    }

    #[test]
    fn retired_credentials_compromise_and_previous_ones_are_reissued() {
        let phone = &fixture::IN_WINDOW;
        let old = Ha1::new("old-user", "old-password");
        let auth = basic("old-user", "old-password");
        let fetch = fixture::fetch(phone.device_path, Some(phone.user_agent), Some(&auth));
        let b = Memory::default();
        assert_eq!(
            decide_with(
                phone,
                &fetch,
                &b,
                with_credentials(true, Some(old.clone()), None)
            ),
            Access::Issue(Issuance::Reissue)
        );
        assert_eq!(
            decide_with(phone, &fetch, &b, with_credentials(false, None, Some(old))),
            Access::Compromise
        );
        let compromised = decide_with(phone, &fetch, &b, |d, t| {
            with_credentials(false, None, None)(d, t);
            if let Some(c) = d.credentials.as_mut() {
                c.compromised = true;
            }
        });
        assert_eq!(compromised, Access::Refuse(Outcome::Compromised));
    }

    #[test]
    fn a_device_waiting_out_failures_is_not_checked_even_with_the_right_credentials() {
        let phone = &fixture::GIGASET_CLAIMED;
        let (user, password) = fixture::GIGASET_MAC_ID;
        let auth = basic(user, password);
        let fetch = fixture::fetch(phone.device_path, Some(phone.user_agent), Some(&auth));
        let b = Memory::default();
        let mac = Mac::parse(phone.mac).unwrap();
        for _ in 0..=super::super::backoff::FREE_FAILURES {
            b.backoff.failed(mac, fixture::now_ms());
        }
        assert_eq!(
            decide_with(phone, &fetch, &b, |_, _| {}),
            Access::Refuse(Outcome::AuthBackoff)
        );
        b.backoff.succeeded(mac);
        assert_eq!(decide_with(phone, &fetch, &b, |_, _| {}), AUTHENTICATED);
    }
}
