//! Tenant instances (one hosted PBX each) and the settings their phones receive.
//!
//! Owns the validation of every tenant setting, so a tenant that exists is one phones can be
//! given as far as no vendor is concerned; each vendor's own limits are checked by
//! `crate::vendors`. Knows nothing of vendors' file formats, storage or HTTP.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::locale::{Language, TimeZone};
use super::network::Network;
use super::vendor::Vendor;
use super::violation::{SettingRule, Violation};

/// A tenant's name: one DNS label (`sales` → `sales.<cloud domain>`), unique across the service.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TenantName(String);

/// Why a string cannot name a tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a DNS label: use 1 to 63 letters, digits or '-', not starting or ending with '-'")]
pub struct InvalidTenantName {
    /// What was given.
    pub given: String,
}

impl TenantName {
    /// Validates a DNS label and lower-cases it (DNS names are case-insensitive).
    pub fn parse(s: &str) -> Result<Self, InvalidTenantName> {
        let err = || InvalidTenantName {
            given: s.to_owned(),
        };
        let b = s.as_bytes();
        if b.is_empty() || b.len() > 63 || b[0] == b'-' || b[b.len() - 1] == b'-' {
            return Err(err());
        }
        if !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-') {
            return Err(err());
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TenantName {
    type Err = InvalidTenantName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for TenantName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A host name or IP literal a phone connects to (SIP server, NTP server). Never contains
/// white space, quotes or markup, so it is safe in every vendor format even before escaping.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Host(String);

/// Why a string is not a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a host name or IP address")]
pub struct InvalidHost {
    /// What was given.
    pub given: String,
}

impl Host {
    /// Accepts a DNS name (labels of letters, digits, '-', '_'), an IPv4 literal or a bracketed
    /// or bare IPv6 literal, at most 253 characters.
    pub fn parse(s: &str) -> Result<Self, InvalidHost> {
        let err = || InvalidHost {
            given: s.to_owned(),
        };
        let s = s.trim();
        if s.is_empty() || s.len() > 253 {
            return Err(err());
        }
        if s.parse::<std::net::IpAddr>().is_ok() {
            return Ok(Self(s.to_owned()));
        }
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return inner
                .parse::<std::net::Ipv6Addr>()
                .map(|_| Self(s.to_owned()))
                .map_err(|_| err());
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        };
        let trimmed = s.strip_suffix('.').unwrap_or(s);
        if trimmed.split('.').all(label_ok) {
            Ok(Self(trimmed.to_ascii_lowercase()))
        } else {
            Err(err())
        }
    }

    /// The host as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Host {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Host {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// SIP transport between phone and registrar.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP, the vendors' factory default.
    #[default]
    Udp,
    /// TCP.
    Tcp,
    /// TLS (SIPS), default port 5061.
    Tls,
}

impl Transport {
    /// The port a registrar listens on for this transport when none is configured.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            Transport::Udp | Transport::Tcp => 5060,
        }
    }

    /// Lower-case name (`udp`, `tcp`, `tls`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// How a tenant's phones prove who they are before they get a config.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhoneAuth {
    /// The MAC alone is enough: for trials only, anyone who knows a MAC gets its config.
    Mac,
    /// The first fetch inside a claim's enrolment window binds the phone and hands it
    /// per-device credentials; every later fetch must authenticate with them. Gigaset phones
    /// authenticate with their MAC-ID instead, out of the box.
    #[default]
    Enrolment,
}

impl PhoneAuth {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneAuth::Mac => "mac",
            PhoneAuth::Enrolment => "enrolment",
        }
    }
}

/// One firmware rule: phones of this vendor and model are pointed at this image.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareRule {
    /// Vendor the rule applies to.
    pub vendor: Vendor,
    /// Model as the phone names it in its User-Agent (`T46S`, `D785`, `N870 IP PRO`); compared
    /// case-insensitively.
    pub model: String,
    /// Version the image carries.
    pub version: String,
    /// Where phones download it (http or https).
    pub url: String,
}

/// Everything a tenant's phones receive, validated.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantSettings {
    /// Registrar / proxy phones register with.
    pub sip_server: Option<Host>,
    /// Registrar port; the transport's default when absent.
    pub sip_port: Option<u16>,
    /// SIP transport.
    pub transport: Transport,
    /// Registration expiry, seconds (60–86400).
    pub expiry_seconds: u32,
    /// NAT keep-alive interval, seconds (5–3600); keep-alive is always enabled.
    pub keepalive_seconds: u32,
    /// NTP server.
    pub ntp_server: Host,
    /// IANA time zone.
    pub timezone: TimeZone,
    /// Display language (ISO 639-1).
    pub language: Language,
    /// How often phones re-check their configuration, minutes (5–10080).
    pub recheck_minutes: u32,
    /// Firmware per vendor and model.
    pub firmware: Vec<FirmwareRule>,
    /// Extra raw settings per vendor, written after zerotouch's own (key → value).
    pub vendor_keys: BTreeMap<Vendor, BTreeMap<String, String>>,
    /// How phones authenticate.
    pub phone_auth: PhoneAuth,
    /// Networks a phone may enrol from (the customer's offices); empty: anywhere. A device's
    /// own list, when it has one, replaces this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub enrolment_networks: Vec<Network>,
    /// Serve configs carrying secrets over the plain-HTTP listener too. Off: over plain HTTP
    /// a device file is answered like an unknown MAC. Credentials are never issued over it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_plain_http: bool,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            sip_server: None,
            sip_port: None,
            transport: Transport::Udp,
            expiry_seconds: 3600,
            keepalive_seconds: 30,
            ntp_server: Host("pool.ntp.org".to_owned()),
            timezone: TimeZone::utc(),
            language: Language::english(),
            recheck_minutes: 1440,
            firmware: Vec::new(),
            vendor_keys: BTreeMap::new(),
            phone_auth: PhoneAuth::default(),
            enrolment_networks: Vec::new(),
            allow_plain_http: false,
        }
    }
}

/// A setting outside what phones accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSetting {
    /// A number outside its range.
    #[error("{field} must be between {min} and {max}, got {got}")]
    OutOfRange {
        /// The setting.
        field: &'static str,
        /// Smallest accepted.
        min: u32,
        /// Largest accepted.
        max: u32,
        /// What was given.
        got: u32,
    },
    /// No registrar.
    #[error("sip_server is required")]
    MissingSipServer,
    /// Port zero.
    #[error("sip_port must be between 1 and 65535")]
    Port,
    /// A firmware rule that cannot be used.
    #[error("firmware rule for {vendor} {model:?}: {reason}")]
    Firmware {
        /// Its place in the list, from 0.
        index: usize,
        /// Vendor of the rule.
        vendor: Vendor,
        /// Model of the rule.
        model: String,
        /// Which part is wrong (`firmware_model`, `firmware_version`, `firmware_url`).
        rule: SettingRule,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two firmware rules for one model.
    #[error("two firmware rules for {vendor} {model:?}")]
    DuplicateFirmware {
        /// The place of the second one in the list, from 0.
        index: usize,
        /// Vendor of the rules.
        vendor: Vendor,
        /// Model of the rules.
        model: String,
    },
    /// A raw vendor key that could break any file format.
    #[error("vendor key {key:?} for {vendor}: keys are 1-128 of letters, digits and . _ - [ ]")]
    VendorKey {
        /// Vendor of the key.
        vendor: Vendor,
        /// The key.
        key: String,
    },
    /// A raw vendor value too long to be a setting, or holding a line break.
    #[error(
        "vendor key {key:?} for {vendor}: the value must be one line of at most 1024 characters"
    )]
    VendorValue {
        /// Vendor of the key.
        vendor: Vendor,
        /// The key.
        key: String,
    },
    /// A value some vendor's phones cannot be given (checked by each vendor's rules).
    #[error("{}: {} {reason}", violation.field, violation.models.unwrap_or(""))]
    NotRepresentable {
        /// The setting, the rule and the vendor and models concerned.
        violation: Violation,
        /// What they cannot do.
        reason: String,
    },
}

impl InvalidSetting {
    /// The setting and rule, for clients that explain a refusal in their own words.
    pub fn violation(&self) -> Violation {
        match self {
            InvalidSetting::OutOfRange {
                field, min, max, ..
            } => Violation::new(*field, SettingRule::Range)
                .min(*min)
                .max(*max),
            InvalidSetting::MissingSipServer => Violation::new("sip_server", SettingRule::Required),
            InvalidSetting::Port => Violation::new("sip_port", SettingRule::Range)
                .min(1)
                .max(u32::from(u16::MAX)),
            InvalidSetting::Firmware { index, rule, .. } => {
                Violation::new(format!("firmware[{index}]"), *rule)
            }
            InvalidSetting::DuplicateFirmware { index, .. } => {
                Violation::new(format!("firmware[{index}]"), SettingRule::FirmwareDuplicate)
            }
            InvalidSetting::VendorKey { vendor, key } => {
                Violation::new(format!("vendor_keys.{vendor}.{key}"), SettingRule::KeyName)
            }
            InvalidSetting::VendorValue { vendor, key } => {
                Violation::new(format!("vendor_keys.{vendor}.{key}"), SettingRule::KeyValue)
            }
            InvalidSetting::NotRepresentable { violation, .. } => violation.clone(),
        }
    }
}

impl TenantSettings {
    /// Checks ranges and the shape of firmware rules and raw keys.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.sip_server.is_none() {
            return Err(InvalidSetting::MissingSipServer);
        }
        if self.sip_port == Some(0) {
            return Err(InvalidSetting::Port);
        }
        range("expiry_seconds", self.expiry_seconds, 60, 86_400)?;
        range("keepalive_seconds", self.keepalive_seconds, 5, 3_600)?;
        range("recheck_minutes", self.recheck_minutes, 5, 10_080)?;
        for (i, rule) in self.firmware.iter().enumerate() {
            let bad = |which, reason| InvalidSetting::Firmware {
                index: i,
                vendor: rule.vendor,
                model: rule.model.clone(),
                rule: which,
                reason,
            };
            if !is_token(&rule.model, 32, |c| {
                c.is_ascii_alphanumeric() || " _-".contains(c)
            }) {
                return Err(bad(
                    SettingRule::FirmwareModel,
                    "model must be 1-32 letters, digits, spaces, '_' or '-'",
                ));
            }
            if !is_token(&rule.version, 64, |c| c.is_ascii_graphic()) {
                return Err(bad(
                    SettingRule::FirmwareVersion,
                    "version must be 1-64 printable characters without spaces",
                ));
            }
            let url_ok = (rule.url.starts_with("https://") || rule.url.starts_with("http://"))
                && is_token(&rule.url, 2048, |c| {
                    c.is_ascii_graphic() && !"\"'<>\\`{}|^".contains(c)
                });
            if !url_ok {
                return Err(bad(
                    SettingRule::FirmwareUrl,
                    "url must be an http:// or https:// URL without spaces or quotes",
                ));
            }
            if self.firmware[..i]
                .iter()
                .any(|r| r.vendor == rule.vendor && r.model.eq_ignore_ascii_case(&rule.model))
            {
                return Err(InvalidSetting::DuplicateFirmware {
                    index: i,
                    vendor: rule.vendor,
                    model: rule.model.clone(),
                });
            }
        }
        for (&vendor, keys) in &self.vendor_keys {
            for (key, value) in keys {
                if !is_token(key, 128, |c| {
                    c.is_ascii_alphanumeric() || "._-[]".contains(c)
                }) {
                    return Err(InvalidSetting::VendorKey {
                        vendor,
                        key: key.clone(),
                    });
                }
                if value.chars().count() > 1024 || value.chars().any(char::is_control) {
                    return Err(InvalidSetting::VendorValue {
                        vendor,
                        key: key.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The registrar port phones use.
    pub fn effective_sip_port(&self) -> u16 {
        self.sip_port.unwrap_or(self.transport.default_port())
    }

    /// The firmware rule for a phone of `vendor` reporting `model`, if the tenant names one.
    pub fn firmware_for(&self, vendor: Vendor, model: &str) -> Option<&FirmwareRule> {
        self.firmware
            .iter()
            .find(|r| r.vendor == vendor && r.model.eq_ignore_ascii_case(model))
    }
}

fn range(field: &'static str, got: u32, min: u32, max: u32) -> Result<(), InvalidSetting> {
    if (min..=max).contains(&got) {
        Ok(())
    } else {
        Err(InvalidSetting::OutOfRange {
            field,
            min,
            max,
            got,
        })
    }
}

fn is_token(s: &str, max: usize, allowed: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.len() <= max && s.chars().all(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TenantSettings {
        TenantSettings {
            sip_server: Some(Host::parse("sales.cloud.example").unwrap()),
            ..TenantSettings::default()
        }
    }

    #[test]
    fn tenant_names_are_dns_labels() {
        assert_eq!(TenantName::parse("Sales").unwrap().as_str(), "sales");
        assert!(TenantName::parse("sales-2").is_ok());
        for bad in [
            "",
            "-sales",
            "sales-",
            "sa les",
            "sales.cloud",
            &"a".repeat(64),
        ] {
            assert!(TenantName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hosts() {
        for ok in [
            "sales.cloud.example",
            "10.0.0.1",
            "::1",
            "[2001:db8::1]",
            "sip_1.example.",
        ] {
            assert!(Host::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "x\ny", "host\"", "[::zz]", "a..b", "<x>"] {
            assert!(Host::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults_are_valid_once_a_registrar_is_named() {
        assert_eq!(
            TenantSettings::default().validate(),
            Err(InvalidSetting::MissingSipServer)
        );
        assert_eq!(settings().validate(), Ok(()));
        assert_eq!(settings().effective_sip_port(), 5060);
    }

    #[test]
    fn ranges_are_enforced() {
        let s = TenantSettings {
            keepalive_seconds: 0,
            ..settings()
        };
        assert!(matches!(
            s.validate(),
            Err(InvalidSetting::OutOfRange {
                field: "keepalive_seconds",
                ..
            })
        ));
    }

    #[test]
    fn firmware_rules_are_checked() {
        let rule = |url: &str| FirmwareRule {
            vendor: Vendor::Yealink,
            model: "T46S".into(),
            version: "66.86.0.15".into(),
            url: url.into(),
        };
        let mut s = settings();
        s.firmware = vec![rule("https://fw.example/T46S.rom")];
        assert_eq!(s.validate(), Ok(()));
        assert!(s.firmware_for(Vendor::Yealink, "t46s").is_some());
        assert!(s.firmware_for(Vendor::Snom, "T46S").is_none());
        s.firmware = vec![rule("ftp://fw.example/x")];
        assert!(s.validate().is_err());
        s.firmware = vec![rule("https://fw.example/x\nstatic.x=1")];
        assert!(s.validate().is_err());
        s.firmware = vec![rule("https://a/1"), rule("https://a/2")];
        assert!(matches!(
            s.validate(),
            Err(InvalidSetting::DuplicateFirmware { .. })
        ));
    }

    #[test]
    fn vendor_keys_cannot_carry_markup_or_line_breaks() {
        let mut s = settings();
        s.vendor_keys.insert(
            Vendor::Yealink,
            BTreeMap::from([("features.dnd.enable".into(), "1".into())]),
        );
        assert_eq!(s.validate(), Ok(()));
        s.vendor_keys
            .insert(Vendor::Snom, BTreeMap::from([("a\nb".into(), "1".into())]));
        assert!(matches!(
            s.validate(),
            Err(InvalidSetting::VendorKey { .. })
        ));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err =
            serde_json::from_str::<TenantSettings>(r#"{"sip_server":"a.example","colour":"red"}"#)
                .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
