//! Gigaset: DECT bases N510 and N720 (`<ProviderFrame>`, ISO-8859-1) and the Nx70 family
//! N530/N610/N670/N770/N870/N870E (`<provisioning>`). Maxwell desk phones are recognised but
//! not served (their format is not established by two sources).
//!
//! Owns Gigaset's request paths and User-Agents, its families and their choice by model, its
//! value tables, the limits of each family (accounts, transports, character set) and what its
//! formats can carry. Every key the templates write and every table here is traced in
//! `vendor-templates/gigaset/SOURCES.md`.

use serde::Serialize;

use crate::domain::{DeviceSettings, SettingRule, TenantSettings, Transport, Vendor};

use super::facts::{FamilyFacts, Setting};
use super::spelling::{strip_prefix_ci, version_numbers};
use super::template::{XML_LATIN1, XML_UTF8};
use super::{
    Charset, FileKind, FileMatch, FileName, Format, Phone, Refusal, SettingRefusal, Template,
    TemplateSpec, UserAgent, Values as AnyValues, Variant, VendorProfile,
};

mod family;
mod files;
pub mod locale;
mod user_agent;

pub use family::Family;

/// Gigaset's profile.
pub struct Gigaset;

/// The one instance.
pub static GIGASET: Gigaset = Gigaset;

/// SIP accounts of an N510 base.
pub const N510_ACCOUNTS: usize = 6;

/// The shortest profile re-check interval Gigaset allows an Nx70, seconds.
pub const NX70_MIN_PERIOD_SECONDS: u32 = 1800;

static TEMPLATES: [TemplateSpec; 3] = [
    TemplateSpec {
        path: "gigaset/nx70.xml.tera",
        embedded: include_str!("../../../vendor-templates/gigaset/nx70.xml.tera"),
        format: Format::Xml,
        charset: Charset::Utf8,
        content_type: XML_UTF8,
    },
    TemplateSpec {
        path: "gigaset/n510.xml.tera",
        embedded: include_str!("../../../vendor-templates/gigaset/n510.xml.tera"),
        format: Format::Xml,
        charset: Charset::Latin1,
        content_type: XML_LATIN1,
    },
    TemplateSpec {
        path: "gigaset/n720.xml.tera",
        embedded: include_str!("../../../vendor-templates/gigaset/n720.xml.tera"),
        format: Format::Xml,
        charset: Charset::Latin1,
        content_type: XML_LATIN1,
    },
];

const fn variant(
    name: &'static str,
    model: &'static str,
    fw: &'static str,
    transport: Transport,
) -> Variant {
    Variant {
        name,
        file: FileKind::Device,
        phone: Phone {
            model: Some(model),
            firmware: Some(fw),
        },
        transport,
    }
}

static VARIANTS: [Variant; 4] = [
    variant(
        "nx70",
        "N870 IP PRO",
        "83.V2.64.0+build.a546b91",
        Transport::Tls,
    ),
    variant(
        "nx70-before-2.42",
        "N670 IP PRO",
        "83.V2.39.0+build.1effdb2",
        Transport::Tls,
    ),
    variant("n510", "N510 IP PRO", "42.245.00.000.000", Transport::Udp),
    variant("n720", "N720 DM PRO", "70.108.00.000.000", Transport::Udp),
];

/// The tenant's settings as Gigaset spells them (`values.*` in its templates). An absent
/// value's key is left out: the base keeps its own.
#[derive(Serialize, Debug, Default)]
pub struct Values {
    /// Nx70 `DmGlobal.0.TimeZone`.
    pub time_zone: Option<&'static str>,
    /// N510/N720 `uiI_TIME_TIMEZONE`.
    pub time_zone_code: Option<u8>,
    /// N510/N720 `ucB_TIME_USE_AUTOMATIC_DST`.
    pub automatic_dst: bool,
    /// N510 `ucI_HTTPLANGUAGE` (the web interface's language).
    pub language_code: Option<u8>,
    /// N510 `BS_AE_SwConfig.ucCountryCodeTone`.
    pub tone_code: Option<u8>,
    /// Nx70 `Telephony.0.ToneScheme`.
    pub tone_scheme: Option<&'static str>,
    /// Nx70 `SipProvider.0.TransportProtocol`.
    pub transport: u8,
    /// Nx70 firmware that knows `SipProvider.0.UDPKeepAliveTimerValue` (2.42 and later).
    pub udp_keepalive: bool,
    /// Nx70 `Provisioning.global.Period`, seconds.
    pub period_seconds: u32,
    /// Nx70 `<firmware><file version>`: the short `2.x.y` form the base compares.
    pub firmware_version: Option<String>,
}

/// What Gigaset profiles set, per family (Maxwell desk phones are not served).
static FACTS: [FamilyFacts; 3] = [
    FamilyFacts {
        name: "Gigaset Nx70",
        golden: "gigaset/nx70.xml",
        cells: &[
            (Setting::Registrar, "`SipProvider.0.Domain`, `SipProvider.0.ProxyServerAddress`/`Port`, `SipProvider.0.RegServerAddress`/`Port`"),
            (Setting::Transport, "`SipProvider.0.TransportProtocol` 1/2/3"),
            (Setting::Expiry, "`SipProvider.0.RegServerRefreshTimer`"),
            (Setting::KeepAlive, "`SipProvider.0.UDPKeepAliveTimerValue` (firmware 2.42 and later)"),
            (Setting::Accounts, "`add_hs` handset slot, then `SipAccount.00001.AuthName`, `SipAccount.00001.AuthPassword`, `SipAccount.00001.UserName`, `SipAccount.00001.DisplayName`"),
            (Setting::Time, "`DmGlobal.0.NtpServer`, `DmGlobal.0.TimeZone` (Gigaset's names)"),
            (Setting::LanguageAndTones, "no language key is known; `Telephony.0.ToneScheme` for Germany"),
            (Setting::Recheck, "`Provisioning.global.ProvisioningServer`, `Provisioning.global.Period` (30 min or more)"),
            (Setting::Firmware, "a `<firmware>` file element with the short version 2.x.y"),
            (Setting::Credentials, "none: the MAC-ID Digest the base answers with"),
        ],
    },
    FamilyFacts {
        name: "Gigaset N510",
        golden: "gigaset/n510.xml",
        cells: &[
            (Setting::Registrar, "`BS_IP_Data1.aucS_SIP_SERVER`, `BS_IP_Data1.aucS_SIP_REGISTRAR`, `BS_IP_Data1.aucS_SIP_DOMAIN`, ports (line 1 unsuffixed, lines 2-6 `_N`)"),
            (Setting::Transport, "UDP only: a TCP or TLS tenant's N510 is not served"),
            (Setting::Expiry, "`BS_IP_Data1.uiI_RE_REGISTRATION_TIMER`"),
            (Setting::KeepAlive, "`BS_IP_Data1.uiI_NAT_REFRESH_TIME`"),
            (Setting::Accounts, "`BS_IP_Data1.aucS_SIP_USER_ID`, `BS_IP_Data3.aucS_SIP_LOGIN_ID`, `BS_IP_Data1.aucS_SIP_PASSWORD`, `BS_IP_Data1.aucS_SIP_DISPLAYNAME`, `BS_IP_Data1.aucS_SIP_ACCOUNT_NAME_1`, `BS_IP_Data1.ucB_SIP_ACCOUNT_IS_ACTIVE_1` (6 accounts)"),
            (Setting::Time, "`BS_IP_Data1.aucS_TIME_NTP_SERVER`, `BS_IP_Data1.uiI_TIME_TIMEZONE`, `BS_IP_Data1.ucB_TIME_USE_AUTOMATIC_DST`"),
            (Setting::LanguageAndTones, "`BS_IP_Data1.ucI_HTTPLANGUAGE` (web interface), `BS_AE_SwConfig.ucCountryCodeTone`"),
            (Setting::Recheck, "`BS_IP_Data.ucB_AUTO_UPDATE_PROFILE`; the data server is left to Gigaset"),
            (Setting::Firmware, "not written (Gigaset's data server)"),
            (Setting::Credentials, "none: the MAC-ID Digest the base answers with"),
        ],
    },
    FamilyFacts {
        name: "Gigaset N720",
        golden: "gigaset/n720.xml",
        cells: &[
            (Setting::Registrar, "`BS_VOIP_Data.astVoipProviders[0].aucSIP_SERVER[%]`, `BS_VOIP_Data.astVoipProviders[0].aucSIP_REGISTRAR[%]`, `BS_VOIP_Data.astVoipProviders[0].aucSIP_DOMAIN[%]`, ports"),
            (Setting::Transport, "UDP only: a TCP or TLS tenant's N720 is not served"),
            (Setting::Expiry, "`BS_VOIP_Data.astVoipProviders[0].uiRE_REGISTRATION_TIMER`"),
            (Setting::KeepAlive, "`BS_VOIP_Data.astVoipProviders[0].uiNAT_REFRESH_TIME`"),
            (Setting::Accounts, "`BS_VOIP_Data.astVoipAccounts[0].aucS_SIP_USER_ID[0]`, `…LOGIN_ID[0]`, `…PASSWORD[0]`, `…DISPLAYNAME[0]` (one per handset slot)"),
            (Setting::Time, "`BS_IP_Data.aucS_TIME_NTP_SERVER[%]`, `BS_IP_Data.uiI_TIME_TIMEZONE`, `BS_IP_Data.ucB_TIME_USE_AUTOMATIC_DST`"),
            (Setting::LanguageAndTones, "not written (no source for the N720's keys)"),
            (Setting::Recheck, "`BS_IP_Data.ucB_DO_CHECK_FOR_PROFILE_UPDATES`"),
            (Setting::Firmware, "not written (Gigaset's data server)"),
            (Setting::Credentials, "none: the MAC-ID Digest the base answers with"),
        ],
    },
];

impl VendorProfile for Gigaset {
    fn vendor(&self) -> Vendor {
        Vendor::Gigaset
    }

    fn user_agent<'a>(&self, header: &'a str) -> Option<UserAgent<'a>> {
        user_agent::parse(header)
    }

    fn file<'a>(&self, name: &FileName<'a>, _: Option<&UserAgent<'a>>) -> Option<FileMatch<'a>> {
        files::recognise(name)
    }

    fn templates(&self) -> &'static [TemplateSpec] {
        &TEMPLATES
    }

    fn template(&self, _: FileKind, phone: Phone<'_>) -> Result<Template, Refusal> {
        match Family::of(phone.model) {
            Family::Nx70 => Ok(Template(&TEMPLATES[0])),
            Family::N510 => Ok(Template(&TEMPLATES[1])),
            Family::N720 => Ok(Template(&TEMPLATES[2])),
            Family::Maxwell => Err(Refusal {
                models: Family::Maxwell.models(),
                reason:
                    "use a profile format zerotouch does not write yet (no two sources agree on it)"
                        .into(),
            }),
        }
    }

    fn variants(&self) -> &'static [Variant] {
        &VARIANTS
    }

    fn facts(&self) -> &'static [FamilyFacts] {
        &FACTS
    }

    fn values(
        &self,
        _: Template,
        phone: Phone<'_>,
        s: &TenantSettings,
        device: Option<&DeviceSettings>,
    ) -> Result<AnyValues, Refusal> {
        let family = Family::of(phone.model);
        let lines = device.map_or(0, |d| d.lines.len());
        if family == Family::N510 && lines > N510_ACCOUNTS {
            return Err(Refusal {
                models: family.models(),
                reason: format!("has {N510_ACCOUNTS} SIP accounts; the device has {lines} lines"),
            });
        }
        let zone = s.timezone.name();
        let mut v = Values {
            period_seconds: s.recheck_minutes.saturating_mul(60),
            ..Values::default()
        };
        match family {
            Family::N510 | Family::N720 => {
                if s.transport != Transport::Udp {
                    return Err(Refusal {
                        models: family.models(),
                        reason: format!(
                            "cannot use SIP over {}: no provisioning key selects another transport than UDP",
                            s.transport.as_str().to_ascii_uppercase()
                        ),
                    });
                }
                if let Some(&(_, code, dst)) = super::row(locale::ZONE_CODES, |r| r.0, zone) {
                    v.time_zone_code = Some(code);
                    v.automatic_dst = dst;
                }
                if family == Family::N510 {
                    v.tone_code = super::row(locale::TONE_CODES, |r| r.0, zone).map(|r| r.1);
                    v.language_code =
                        super::row(locale::N510_LANGUAGES, |r| r.0, s.language.code()).map(|r| r.1);
                }
            }
            Family::Nx70 | Family::Maxwell => {
                v.time_zone = super::row(locale::NX70_ZONES, |r| r.0, zone).map(|r| r.1);
                v.tone_scheme = super::row(locale::NX70_TONES, |r| r.0, zone).map(|r| r.1);
                v.transport = match s.transport {
                    Transport::Udp => 1,
                    Transport::Tcp => 2,
                    Transport::Tls => 3,
                };
                v.udp_keepalive = phone
                    .firmware
                    .and_then(nx70_version)
                    .is_some_and(|(major, minor, _)| (major, minor) >= (2, 42));
                v.firmware_version = phone.model.and_then(|m| {
                    super::firmware_rule(s, Vendor::Gigaset, m)
                        .and_then(|r| nx70_version(&r.version))
                        .map(|(a, b, c)| format!("{a}.{b}.{c}"))
                });
            }
        }
        Ok(AnyValues::Gigaset(v))
    }

    fn check_tenant(&self, s: &TenantSettings) -> Result<(), SettingRefusal> {
        let min_minutes = NX70_MIN_PERIOD_SECONDS / 60;
        if s.recheck_minutes.saturating_mul(60) < NX70_MIN_PERIOD_SECONDS {
            let mut refusal = SettingRefusal::new(
                "recheck_minutes",
                SettingRule::AtLeast,
                Family::Nx70.models(),
                format!("re-check their profile at most every {min_minutes} minutes"),
            );
            refusal.violation = refusal.violation.min(min_minutes);
            return Err(refusal);
        }
        let gigaset_rules = s
            .firmware
            .iter()
            .enumerate()
            .filter(|(_, r)| r.vendor == Vendor::Gigaset);
        for (i, rule) in gigaset_rules {
            if Family::of(Some(&rule.model)) == Family::Nx70
                && nx70_version(&rule.version).is_none()
            {
                return Err(SettingRefusal::new(
                    format!("firmware[{i}]"),
                    SettingRule::FirmwareVersionForm,
                    Family::Nx70.models(),
                    format!(
                        "compare versions as 2.x.y (or 83.V2.x.y as they report it), not {:?}",
                        rule.version
                    ),
                ));
            }
        }
        for (key, value) in s.vendor_keys.get(&Vendor::Gigaset).into_iter().flatten() {
            let field = || format!("vendor_keys.gigaset.{key}");
            if key.starts_with("BS_") {
                if let Some(c) = value
                    .chars()
                    .find(|&c| u32::from(c) > 0xff || c.is_control())
                {
                    let mut refusal = SettingRefusal::new(
                        field(),
                        SettingRule::Charset,
                        "gigaset N510/N720",
                        format!("cannot carry {c:?} (profiles are ISO-8859-1 text)"),
                    );
                    refusal.violation = refusal.violation.character(c);
                    return Err(refusal);
                }
            } else if value.chars().any(char::is_control) {
                return Err(SettingRefusal::new(
                    field(),
                    SettingRule::ControlCharacter,
                    Family::Nx70.models(),
                    "a value holds no control characters",
                ));
            }
        }
        Ok(())
    }

    fn check_device(&self, d: &DeviceSettings) -> Result<(), SettingRefusal> {
        // The model is not known before the base asks: a value must fit the strictest family.
        for (field, value) in super::device_texts(d) {
            if let Some(c) = value.chars().find(|&c| c == '"' || u32::from(c) > 0xff) {
                let mut refusal = SettingRefusal::new(
                    field,
                    SettingRule::Charset,
                    "gigaset N510/N720",
                    format!(
                        "cannot carry {c:?} (values are ISO-8859-1 text between double quotes)"
                    ),
                );
                refusal.violation = refusal.violation.character(c);
                return Err(refusal);
            }
        }
        Ok(())
    }
}

/// The `2.x.y` of an Nx70 version: `83.V2.64.0+build.a546b91` → (2, 64, 0); `2.64.0` as is.
fn nx70_version(v: &str) -> Option<(u32, u32, u32)> {
    let v = v.trim();
    let short = match v.split_once(".V").or_else(|| v.split_once(".v")) {
        Some((platform, rest)) if platform.bytes().all(|c| c.is_ascii_digit()) => rest,
        Some(_) => return None,
        None => strip_prefix_ci(v, "V").unwrap_or(v),
    };
    let (n, count) = version_numbers(short);
    (count >= 3).then_some((n[0], n[1], n[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nx70_versions_in_their_short_form() {
        assert_eq!(nx70_version("83.V2.64.0+build.a546b91"), Some((2, 64, 0)));
        assert_eq!(nx70_version("83.V2.11.0-160-g1a2b3c4"), Some((2, 11, 0)));
        assert_eq!(nx70_version("2.48.0"), Some((2, 48, 0)));
        assert_eq!(nx70_version("V2.48.0"), Some((2, 48, 0)));
        assert_eq!(nx70_version("x.V2.1.0"), None);
        assert_eq!(nx70_version("2.48"), None);
    }

    fn phone(model: &'static str) -> Phone<'static> {
        Phone {
            model: Some(model),
            firmware: None,
        }
    }

    #[test]
    fn an_n510_cannot_use_tls() {
        let mut s = crate::vendors::sample().1;
        s.transport = Transport::Tls;
        let t = GIGASET
            .template(FileKind::Device, phone("N510 IP PRO"))
            .unwrap();
        let err = GIGASET
            .values(t, phone("N510 IP PRO"), &s, None)
            .unwrap_err();
        assert!(err.reason.contains("TLS"), "{err:?}");
        s.transport = Transport::Udp;
        assert!(GIGASET.values(t, phone("N510 IP PRO"), &s, None).is_ok());
        let t = GIGASET
            .template(FileKind::Device, phone("N870 IP PRO"))
            .unwrap();
        s.transport = Transport::Tls;
        assert!(GIGASET.values(t, phone("N870 IP PRO"), &s, None).is_ok());
    }

    #[test]
    fn maxwell_phones_are_not_served() {
        assert!(GIGASET
            .template(FileKind::Device, phone("Maxwell 3 PRO"))
            .is_err());
    }

    #[test]
    fn device_values_must_fit_iso_8859_1_without_double_quotes() {
        let mut d = crate::vendors::sample().2;
        assert!(GIGASET.check_device(&d).is_ok());
        d.lines[0].password = crate::domain::Secret::new("pa\"ss");
        let r = GIGASET.check_device(&d).unwrap_err();
        assert_eq!(
            r.violation,
            crate::domain::Violation::new("lines[0].password", SettingRule::Charset)
                .models("gigaset N510/N720")
                .character('"')
        );
        d.lines[0].password = crate::domain::Secret::new("€uro");
        assert!(GIGASET.check_device(&d).is_err());
        d.lines[0].password = crate::domain::Secret::new("Réception");
        assert!(GIGASET.check_device(&d).is_ok());
    }
}
