//! The contract's fixtures: the values and the small steps (a partner, a tenant, a claim) its
//! functions are written with. Knows nothing of a backend.

use super::*;

pub(super) fn mac(s: &str) -> Mac {
    Mac::parse(s).expect("mac")
}

pub(super) fn name(s: &str) -> TenantName {
    TenantName::parse(s).expect("tenant name")
}

pub(super) fn settings(server: &str) -> TenantSettings {
    TenantSettings {
        sip_server: Some(Host::parse(server).expect("host")),
        ..TenantSettings::default()
    }
}

pub(super) fn line_settings(user: &str) -> DeviceSettings {
    DeviceSettings {
        display_name: Some(format!("Desk {user}")),
        lines: vec![LineAccount {
            user: user.into(),
            auth_user: None,
            password: Secret::new("s3cret"),
            display_name: None,
        }],
        ..DeviceSettings::default()
    }
}

pub(super) fn source() -> IpAddr {
    "192.0.2.7".parse().expect("ip")
}

pub(super) fn partner_actor(p: &PartnerRecord) -> Actor {
    Actor {
        name: format!("partner:{}:{}", p.id, p.name),
        partner: Some(p.id),
        source: Some(source()),
    }
}

pub(super) fn code(s: &str) -> ClaimCode {
    ClaimCode::parse(s).expect("claim code")
}

pub(super) fn request(m: &str, tenant: &str) -> ClaimRequest {
    let mac = mac(m);
    ClaimRequest {
        mac,
        vendor: vendor_of(mac),
        claim_code: None,
        tenant: name(tenant),
        settings: DeviceSettings::default(),
        enrol_until: None,
        redirect: false,
    }
}

pub(super) fn gigaset(m: &str, tenant: &str, label: Option<&str>) -> ClaimRequest {
    ClaimRequest {
        claim_code: label.map(code),
        ..request(m, tenant)
    }
}

/// Vendors by the test MACs' prefixes (the store trusts what it is told).
pub(super) fn vendor_of(mac: Mac) -> Vendor {
    match mac.to_string().get(..6) {
        Some("000413") => Vendor::Snom,
        Some("7c2f80") => Vendor::Gigaset,
        _ => Vendor::Yealink,
    }
}

pub(super) fn import_device(row: usize, m: &str, tenant: &str) -> ImportDevice {
    let r = request(m, tenant);
    ImportDevice {
        row,
        mac: r.mac,
        vendor: r.vendor,
        claim_code: None,
        tenant: r.tenant,
        settings: DeviceSettings::default(),
        enrol_until: None,
        redirect: false,
    }
}

pub(super) fn sighting(m: &str, at: Millis, file: &'static str) -> Sighting {
    Sighting {
        mac: mac(m),
        at,
        source: source(),
        user_agent: "Yealink SIP-T46S 66.86.0.15".into(),
        model: Some("T46S".into()),
        firmware: Some("66.86.0.15".into()),
        file,
        outcome: "served",
    }
}

pub(super) async fn partner(store: &dyn Store, n: &str) -> PartnerRecord {
    store
        .create_partner(n, &Actor::cli())
        .await
        .unwrap()
        .expect("new partner")
}

pub(super) async fn tenant(store: &dyn Store, n: &str, actor: &Actor) -> TenantRecord {
    match store
        .create_tenant(name(n), None, settings("pbx.example"), actor)
        .await
        .unwrap()
    {
        TenantCreated::Created(t) => t,
        other => panic!("creating {n}: {other:?}"),
    }
}

pub(super) async fn claimed(store: &dyn Store, req: ClaimRequest, actor: &Actor) -> DeviceRecord {
    match store.claim(req, actor).await.unwrap() {
        ClaimOutcome::Created(d) => d,
        other => panic!("expected a new claim, got {other:?}"),
    }
}

pub(super) fn all_devices() -> DeviceQuery {
    DeviceQuery {
        limit: 1_000,
        ..DeviceQuery::default()
    }
}

pub(super) fn all_audit() -> AuditQuery {
    AuditQuery {
        limit: 1_000,
        ..AuditQuery::default()
    }
}

pub(super) async fn changes_after(store: &dyn Store, seq: i64) -> Vec<Change> {
    store
        .changes_since(seq, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.change)
        .collect()
}

pub(super) fn macs(views: &[DeviceView]) -> Vec<String> {
    views.iter().map(|v| v.record.mac.to_string()).collect()
}

/// A token to store with key id `key` and secret hash `hash`, read-write, never expiring.
pub(crate) fn new_token(key: &str, hash: &[u8]) -> NewToken {
    NewToken {
        key_id: key.into(),
        secret_hash: hash.to_vec(),
        ..NewToken::default()
    }
}
