//! A known fleet for the phone path's unit tests, benchmarks (`benches/hot_path.rs`) and the
//! `handle` fuzz target: one registry, built the way the server builds it, with a phone of each
//! kind of access. Test data, compiled into the library so those separate crates share it.
//!
//! It fills the registry directly with the rows the store would hand it, which is why it sits
//! at the top of the crate and not inside the phone path (which never sees the store).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::domain::credentials::{Ha1, PhoneCredentials};
use crate::domain::{
    ClaimCode, ClaimSecret, Mac, OuiTable, PhoneAuth, TenantName, TenantSettings, Vendor,
};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::{DeviceRecord, TenantId, TenantRecord};

use crate::provisioning::auth::Nonces;
use crate::provisioning::throttle::{self, Throttle};
use crate::provisioning::{
    Admission, Fetch, Provisioner, Renderer, Settings, METRIC_SLOTS, VENDOR_METRIC_SLOTS,
};

/// A phone of the fleet: its MAC, its User-Agent and the path of its per-device file.
#[derive(Clone, Copy, Debug)]
pub struct Phone {
    /// 12 hex digits.
    pub mac: &'static str,
    /// What it sends as User-Agent.
    pub user_agent: &'static str,
    /// Its per-device file.
    pub device_path: &'static str,
}

/// A Yealink of the trial (`mac`-mode) tenant `sales`.
pub const TRIAL_YEALINK: Phone = Phone {
    mac: "805ec017de13",
    user_agent: "Yealink SIP-T46S 66.86.0.15 80:5e:c0:17:de:13",
    device_path: "/805ec017de13.cfg",
};

/// A Snom of the trial tenant.
pub const TRIAL_SNOM: Phone = Phone {
    mac: "000413922D24",
    user_agent: "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)",
    device_path: "/snomD785-000413922D24.htm",
};

/// A Gigaset Nx70 of the trial tenant.
pub const TRIAL_GIGASET: Phone = Phone {
    mac: "7C2F80E0D605",
    user_agent: "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605",
    device_path: "/7C2F80E0D605.xml",
};

/// A Yealink of the `enrolment` tenant `secure`, bound to [`ENROLLED_CREDENTIALS`].
pub const ENROLLED: Phone = Phone {
    mac: "805ec0170001",
    user_agent: "Yealink SIP-T46S 66.86.0.15 80:5e:c0:17:00:01",
    device_path: "/805ec0170001.cfg",
};

/// [`ENROLLED`]'s provisioning credentials.
pub const ENROLLED_CREDENTIALS: (&str, &str) = ("zt-805ec0170001-ab12", "Fixture0nlyPassw0rdFixt");

/// A Gigaset of the `secure` tenant, claimed with its label code: it proves itself with its
/// MAC-ID, [`GIGASET_MAC_ID`].
pub const GIGASET_CLAIMED: Phone = Phone {
    mac: "7C2F80E0D606",
    user_agent: "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D606",
    device_path: "/7C2F80E0D606.xml",
};

/// [`GIGASET_CLAIMED`]'s MAC-ID credentials (user = MAC, password = MAC-ID).
pub const GIGASET_MAC_ID: (&str, &str) = ("7C2F80E0D606", "7C2F80E0D606-AB12");

/// A Yealink of the `secure` tenant, unbound, inside its enrolment window.
pub const IN_WINDOW: Phone = Phone {
    mac: "805ec0170002",
    user_agent: "Yealink SIP-T46S 66.86.0.15 80:5e:c0:17:00:02",
    device_path: "/805ec0170002.cfg",
};

/// A Yealink of the `secure` tenant, unbound, its window closed.
pub const WINDOW_CLOSED: Phone = Phone {
    mac: "805ec0170003",
    user_agent: "Yealink SIP-T46S 66.86.0.15 80:5e:c0:17:00:03",
    device_path: "/805ec0170003.cfg",
};

fn mac(s: &str) -> Mac {
    Mac::parse(s).unwrap_or_else(|e| unreachable!("fixture MAC {s}: {e}"))
}

fn tenant(id: TenantId, name: &str, settings: TenantSettings) -> TenantRecord {
    TenantRecord {
        id,
        name: TenantName::parse(name)
            .unwrap_or_else(|e| unreachable!("fixture tenant {name}: {e}")),
        partner: None,
        customer: None,
        settings,
    }
}

fn device(phone: &Phone, vendor: Vendor, tenant: TenantId) -> DeviceRecord {
    DeviceRecord {
        mac: mac(phone.mac),
        vendor,
        tenant,
        claim_secret: None,
        credentials: None,
        enrol_until: None,
        settings: crate::vendors::sample().2,
    }
}

/// The fleet's registry: the sample tenant in `mac` mode as `sales` (id 1) with a phone of
/// each vendor, and the sample tenant in `enrolment` mode as `secure` (id 2) with an enrolled
/// Yealink, a Gigaset claimed with its code, and two unbound Yealinks (window open, closed).
pub fn registry() -> Registry {
    let registry = Registry::new();
    let (name, mut settings, _) = crate::vendors::sample();
    settings.phone_auth = PhoneAuth::Mac;
    registry.put_tenant(tenant(1, name.as_str(), settings.clone()));
    registry.put_device(device(&TRIAL_YEALINK, Vendor::Yealink, 1));
    registry.put_device(device(&TRIAL_SNOM, Vendor::Snom, 1));
    registry.put_device(device(&TRIAL_GIGASET, Vendor::Gigaset, 1));
    settings.phone_auth = PhoneAuth::Enrolment;
    registry.put_tenant(tenant(2, "secure", settings));
    let mut enrolled = device(&ENROLLED, Vendor::Yealink, 2);
    enrolled.credentials = Some(PhoneCredentials {
        pending: false,
        ..PhoneCredentials::issued(Ha1::new(ENROLLED_CREDENTIALS.0, ENROLLED_CREDENTIALS.1))
    });
    registry.put_device(enrolled);
    let mut gigaset = device(&GIGASET_CLAIMED, Vendor::Gigaset, 2);
    let code = ClaimCode::parse(&GIGASET_MAC_ID.1[13..])
        .unwrap_or_else(|e| unreachable!("fixture claim code: {e}"));
    gigaset.claim_secret = Some(ClaimSecret::new(mac(GIGASET_CLAIMED.mac), &code));
    registry.put_device(gigaset);
    let mut waiting = device(&IN_WINDOW, Vendor::Yealink, 2);
    waiting.enrol_until = Some(i64::MAX / 2);
    registry.put_device(waiting);
    registry.put_device(device(&WINDOW_CLOSED, Vendor::Yealink, 2));
    registry
}

/// A provisioner over [`registry`], built as `app` builds one but with no sightings queue and
/// no credential writer (issuing answers as a dry run would).
pub fn provisioner(throttle: throttle::Settings) -> Provisioner {
    Provisioner::new(
        Arc::new(registry()),
        Renderer::load(None).unwrap_or_else(|e| unreachable!("shipped templates: {e}")),
        Arc::new(OuiTable::default()),
        Settings {
            public_url: None,
            render_cache_bytes: 64 << 20,
            dry_run: false,
        },
        Arc::new(Metrics::new(METRIC_SLOTS, VENDOR_METRIC_SLOTS)),
        None,
        Admission {
            throttle: Throttle::new(throttle),
            nonces: Nonces::new(b"fixture", Duration::from_secs(3600), 1 << 20),
            backoff: crate::provisioning::backoff::Backoff::new(),
            unanswered: crate::provisioning::unanswered::Unanswered::new(),
        },
        None,
    )
}

/// A GET of `path` over TLS from 192.0.2.10, with the headers given.
pub fn fetch<'a>(
    path: &'a str,
    user_agent: Option<&'a str>,
    authorization: Option<&'a str>,
) -> Fetch<'a> {
    Fetch {
        method: "GET",
        path_and_query: path,
        user_agent,
        host: Some("prov.example"),
        authorization,
        source: IpAddr::from([192, 0, 2, 10]),
        local: SocketAddr::from(([127, 0, 0, 1], 8443)),
        tls: true,
    }
}

/// Now, in the milliseconds the access decision compares with.
pub fn now_ms() -> u64 {
    u64::try_from(crate::domain::clock::now_millis()).unwrap_or(0)
}
