//! The sample tenant and device: every optional setting given, with values every vendor can
//! carry. What the start-up self-check renders, and what the golden files, benchmarks and
//! fuzz targets use. Knows nothing of rendering.

use std::collections::BTreeMap;

use crate::domain::{
    DeviceSettings, FirmwareRule, Host, Language, TenantName, TenantSettings, TimeZone, Transport,
    Vendor,
};

/// A tenant and device with every optional value set, for self-checks and golden tests.
pub fn sample() -> (TenantName, TenantSettings, DeviceSettings) {
    use crate::domain::{LineAccount, Secret};
    let tenant = TenantName::parse("sales").unwrap_or_else(|_| unreachable!("valid literal"));
    let host = |h: &str| Host::parse(h).unwrap_or_else(|_| unreachable!("valid literal"));
    let settings = TenantSettings {
        sip_server: Some(host("sales.cloud.example")),
        sip_port: None,
        transport: Transport::Tls,
        expiry_seconds: 600,
        keepalive_seconds: 30,
        ntp_server: host("pool.ntp.org"),
        timezone: TimeZone::parse("Europe/Berlin").unwrap_or_else(|_| unreachable!("in table")),
        language: Language::parse("de").unwrap_or_else(|_| unreachable!("in table")),
        recheck_minutes: 1440,
        firmware: vec![
            FirmwareRule {
                vendor: Vendor::Yealink,
                model: "T46S".into(),
                version: "66.86.0.15".into(),
                url: "https://fw.example/T46S-66.86.0.15.rom".into(),
            },
            FirmwareRule {
                vendor: Vendor::Snom,
                model: "D785".into(),
                version: "10.1.33.33".into(),
                url: "https://fw.example/snom.bin".into(),
            },
            FirmwareRule {
                vendor: Vendor::Gigaset,
                model: "N870 IP PRO".into(),
                version: "83.V2.64.0".into(),
                url: "https://fw.example/gigaset.bin".into(),
            },
        ],
        vendor_keys: BTreeMap::from([
            (
                Vendor::Yealink,
                BTreeMap::from([("features.dnd.enable".to_owned(), "1".to_owned())]),
            ),
            (
                Vendor::Snom,
                BTreeMap::from([("dnd_mode".to_owned(), "off".to_owned())]),
            ),
            (
                Vendor::Gigaset,
                BTreeMap::from([
                    ("Telephony.0.CT_ByOnHook".to_owned(), "1".to_owned()),
                    (
                        "BS_IP_Data1.ucB_CT_AFTER_ON_HOOK".to_owned(),
                        "0x1".to_owned(),
                    ),
                ]),
            ),
        ]),
        phone_auth: crate::domain::PhoneAuth::Enrolment,
        enrolment_networks: Vec::new(),
        allow_plain_http: false,
    };
    let device = DeviceSettings {
        enrolment_networks: Vec::new(),
        display_name: Some("Reception".into()),
        lines: vec![
            LineAccount {
                user: "1001".into(),
                auth_user: Some("sales-1001".into()),
                password: Secret::new("s3cret-1001"),
                display_name: Some("Reception".into()),
            },
            LineAccount {
                user: "1002".into(),
                auth_user: None,
                password: Secret::new("s3cret-1002"),
                display_name: None,
            },
        ],
    };
    (tenant, settings, device)
}
