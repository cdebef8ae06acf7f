//! Who may have a device's config: the access decision (DESIGN.md, "Who may fetch a config").
//!
//! A pure decision over the request, the device and its tenant, and the Digest nonce memory:
//! MAC-only tenants, Gigaset MAC-ID Digest, enrolled credentials (Digest, or Basic over TLS),
//! or an open enrolment window. Knows nothing of rendering, the store or how credentials are
//! issued; it only says that they are to be.

use crate::domain::{OuiTable, PhoneAuth};
use crate::registry::{Device, Tenant};
use crate::vendors::{FileKind, PhoneRequest};

use super::auth::{self, Nonces};
use super::issue::Issuance;
use super::throttle::Prefix;
use super::{Fetch, Outcome};

/// The decision for a request naming a known device.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// Serve the config. `retire_previous`: the phone proved itself with its current
    /// credentials while previous ones are still kept; they can go.
    Allow {
        /// Forget the previous credentials.
        retire_previous: bool,
    },
    /// Hand the phone new credentials with its config.
    Issue(Issuance),
    /// Ask for credentials (`stale`: the nonce expired, answer again).
    Challenge {
        /// The nonce presented had expired.
        stale: bool,
    },
    /// Refuse, as `Outcome`.
    Refuse(Outcome),
}

const ALLOW: Access = Access::Allow {
    retire_previous: false,
};

/// What the decision reads besides the request.
pub struct Gate<'a> {
    /// Digest nonces and their replay memory.
    pub nonces: &'a Nonces,
    /// Who made which MAC, for a User-Agent that names no vendor.
    pub ouis: &'a OuiTable,
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
        if tenant.settings.phone_auth == PhoneAuth::Mac {
            return ALLOW;
        }
        if self.dry_run && (device.claim_secret.is_some() || device.credentials.is_some()) {
            return ALLOW;
        }
        // Read the clock only past the `mac`-mode return: most fetches never need it.
        let now_ms = now_ms();
        let prefix = Prefix::of(fetch.source);
        let presented = auth::Presented {
            authorization: fetch.authorization,
            method: fetch.method,
            uri: fetch.path_and_query,
            tls: fetch.tls,
            prefix: prefix.bytes(),
            now_ms,
        };
        let challenge_or_refuse = |verdict: auth::Verdict| match verdict {
            auth::Verdict::Missing => Access::Challenge { stale: false },
            auth::Verdict::Stale => Access::Challenge { stale: true },
            _ => Access::Refuse(Outcome::AuthFailed),
        };
        let per_device_file = request.file == FileKind::Device;
        // Gigaset phones prove themselves with their MAC-ID, out of the box.
        if let Some(secret) = &device.claim_secret {
            return match auth::verify(self.nonces, &presented, &secret.entries()) {
                auth::Verdict::Authenticated(_) => ALLOW,
                other => challenge_or_refuse(other),
            };
        }
        if let Some(credentials) = &device.credentials {
            let mut candidates = vec![&credentials.current];
            if let Some(previous) = &credentials.previous {
                candidates.push(previous);
            }
            return match auth::verify(self.nonces, &presented, &candidates) {
                auth::Verdict::Authenticated(0) if credentials.rotate && per_device_file => {
                    Access::Issue(Issuance::Rotate)
                }
                auth::Verdict::Authenticated(0) => Access::Allow {
                    retire_previous: credentials.previous.is_some(),
                },
                auth::Verdict::Authenticated(_) if per_device_file => {
                    Access::Issue(Issuance::Reissue)
                }
                auth::Verdict::Authenticated(_) => ALLOW,
                other => challenge_or_refuse(other),
            };
        }
        match device.enrol_until {
            Some(until) if u64::try_from(until).is_ok_and(|u| u > now_ms) => {
                if per_device_file {
                    Access::Issue(Issuance::Enrol)
                } else {
                    // The common or model file holds no secret: give it, bind on the
                    // per-device file that follows.
                    ALLOW
                }
            }
            _ => Access::Refuse(Outcome::NotEnrolled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{self, Phone};
    use base64::Engine as _;
    use std::time::Duration;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    /// Decides for `phone` fetching `path` with `authorization`, over TLS.
    fn decide(phone: &Phone, path: &str, authorization: Option<&str>, dry_run: bool) -> Access {
        let registry = fixture::registry();
        let nonces = Nonces::new(b"access tests", Duration::from_secs(60), 64);
        let ouis = OuiTable::default();
        let fetch = fixture::fetch(path, Some(phone.user_agent), authorization);
        let request = crate::vendors::recognise(path, Some(phone.user_agent), &ouis).unwrap();
        let (device, tenant) = registry.lookup(request.mac().unwrap()).unwrap();
        let gate = Gate {
            nonces: &nonces,
            ouis: &ouis,
            dry_run,
        };
        gate.decide(&fetch, &request, &device, &tenant, fixture::now_ms)
    }

    #[test]
    fn a_mac_mode_tenant_lets_its_phones_in() {
        let phone = &fixture::TRIAL_YEALINK;
        assert_eq!(decide(phone, phone.device_path, None, false), ALLOW);
    }

    #[test]
    fn another_vendors_request_is_answered_like_an_unknown_mac() {
        let phone = &fixture::TRIAL_YEALINK;
        let path = format!("/{}.xml", phone.mac.to_uppercase());
        let snom_ua = fixture::TRIAL_SNOM.user_agent;
        let registry = fixture::registry();
        let nonces = Nonces::new(b"t", Duration::from_secs(60), 4);
        let ouis = OuiTable::default();
        let request = crate::vendors::recognise(&path, Some(snom_ua), &ouis).unwrap();
        let (device, tenant) = registry.lookup(request.mac().unwrap()).unwrap();
        let fetch = fixture::fetch(&path, Some(snom_ua), None);
        let gate = Gate {
            nonces: &nonces,
            ouis: &ouis,
            dry_run: false,
        };
        assert_eq!(
            gate.decide(&fetch, &request, &device, &tenant, fixture::now_ms),
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
            ALLOW
        );
        assert_eq!(
            decide(phone, path, Some(&basic(user, "wrong")), false),
            Access::Refuse(Outcome::AuthFailed)
        );
        assert_eq!(decide(phone, path, None, true), ALLOW, "dry run");
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
            ALLOW
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
        assert_eq!(decide(phone, "/y000000000066.cfg", None, false), ALLOW);
        let phone = &fixture::WINDOW_CLOSED;
        assert_eq!(
            decide(phone, phone.device_path, None, false),
            Access::Refuse(Outcome::NotEnrolled)
        );
    }
}
