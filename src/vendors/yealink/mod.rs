//! Yealink: desk phones (T2x–T8x), DECT bases (W52P–W90) and conference phones.
//!
//! Owns Yealink's request paths and User-Agents, its model codes, its value tables, the
//! choice of key names by firmware release and model family, and what its key=value format
//! can carry. Every key the templates write and every table here is traced in
//! `vendor-templates/yealink/SOURCES.md`.

use serde::Serialize;

use crate::domain::{DeviceSettings, SettingRule, TenantSettings, TimeZone, Transport, Vendor};

use super::facts::{FamilyFacts, Setting};
use super::spelling::{strip_prefix_ci, version_numbers};
use super::template::TEXT_PLAIN;
use super::{
    Charset, FileKind, FileMatch, FileName, Format, Phone, Refusal, SettingRefusal, Template,
    TemplateSpec, UserAgent, Values as AnyValues, Variant, VendorProfile,
};

mod files;
pub mod locale;
pub mod models;
mod user_agent;

pub use models::code as model_code;

/// Yealink's profile.
pub struct Yealink;

/// The one instance.
pub static YEALINK: Yealink = Yealink;

const MODELS: &str = "yealink";

/// The smallest NAT keep-alive interval Yealink phones accept, seconds (SOURCES.md).
pub const MIN_KEEPALIVE_SECONDS: u32 = 15;

static TEMPLATES: [TemplateSpec; 3] = [
    TemplateSpec {
        path: "yealink/common.cfg.tera",
        embedded: include_str!("../../../vendor-templates/yealink/common.cfg.tera"),
        format: Format::KeyValue,
        charset: Charset::Utf8,
        content_type: TEXT_PLAIN,
    },
    TemplateSpec {
        path: "yealink/device.cfg.tera",
        embedded: include_str!("../../../vendor-templates/yealink/device.cfg.tera"),
        format: Format::KeyValue,
        charset: Charset::Utf8,
        content_type: TEXT_PLAIN,
    },
    // Included by both files above, never served on its own.
    TemplateSpec {
        path: "yealink/tenant.cfg.tera",
        embedded: include_str!("../../../vendor-templates/yealink/tenant.cfg.tera"),
        format: Format::KeyValue,
        charset: Charset::Utf8,
        content_type: TEXT_PLAIN,
    },
];

const fn variant(
    name: &'static str,
    file: FileKind,
    model: &'static str,
    fw: &'static str,
) -> Variant {
    Variant {
        name,
        file,
        phone: Phone {
            model: Some(model),
            firmware: Some(fw),
        },
        transport: Transport::Tls,
    }
}

static VARIANTS: [Variant; 5] = [
    variant("common", FileKind::Common, "T46S", "66.86.0.15"),
    variant("device", FileKind::Device, "T46S", "66.86.0.15"),
    variant("device-v80", FileKind::Device, "T46G", "28.80.0.95"),
    variant("device-v73", FileKind::Device, "T46G", "28.73.0.50"),
    variant("device-w80", FileKind::Device, "W80B", "103.85.0.20"),
];

/// A daylight-saving period as Yealink writes it (`local_time.dst_time_type = 1`: by week).
#[derive(Serialize, Debug)]
pub struct Dst {
    /// `local_time.start_time`, `month/week/weekday/hour` (week 5 = last, Monday = 1).
    pub start: String,
    /// `local_time.end_time`, same form.
    pub end: String,
    /// `local_time.offset_time`, minutes.
    pub offset_minutes: u16,
}

/// The tenant's settings as Yealink spells them (`values.*` in its templates).
#[derive(Serialize, Debug)]
pub struct Values {
    /// `lang.gui` and `lang.wui`; absent: left to the phone.
    pub language: Option<&'static str>,
    /// `local_time.time_zone`: the standard offset, `+1`, `-5`, `+5:30`, `0`.
    pub time_zone: String,
    /// `local_time.time_zone_name`, where Yealink has a verified name for the zone.
    pub time_zone_name: Option<&'static str>,
    /// `local_time.summer_time`: 0 (none) or 1 (the explicit period in `dst`).
    pub summer_time: u8,
    /// The daylight-saving period, when `summer_time` is 1.
    pub dst: Option<Dst>,
    /// `voice.tone.country`; absent: left to the phone.
    pub tones: Option<&'static str>,
    /// `account.N.sip_server.M.transport_type` (or `account.N.transport` before V80).
    pub transport: u8,
    /// Provisioning and firmware keys without the `static.` prefix (firmware before V81).
    pub unprefixed: bool,
    /// The transport set per account, `account.N.transport` (firmware V73 and earlier).
    pub account_transport: bool,
    /// The registrar defined once as `template.1.*` and referenced by each account
    /// (`account.N.sip_server.template`): the W80 and W90 multi-cell DECT systems.
    pub server_template: bool,
}

/// What Yealink configs set (desk phones from V81; V80 and older, W80/W90: see SOURCES.md).
static FACTS: [FamilyFacts; 1] = [FamilyFacts {
    name: "Yealink",
    golden: "yealink/device.cfg",
    cells: &[
        (Setting::Registrar, "`account.1.sip_server.1.address` / `.port` (W80/W90: `template.1.sip_server.1.*`)"),
        (Setting::Transport, "`account.1.sip_server.1.transport_type` 0/1/2 (V73 and older: per account)"),
        (Setting::Expiry, "`account.1.sip_server.1.expires`"),
        (Setting::KeepAlive, "`account.1.nat.udp_update_enable`, `account.1.nat.udp_update_time` (15 s or more)"),
        (Setting::Accounts, "`account.1.user_name`, `account.1.auth_name`, `account.1.password`, `account.1.display_name`, `account.1.label`"),
        (Setting::Time, "`local_time.ntp_server1`, `local_time.time_zone`, `local_time.summer_time` with explicit `local_time.start_time`/`local_time.end_time`; `local_time.time_zone_name` where Yealink has a verified name"),
        (Setting::LanguageAndTones, "`lang.gui`, `lang.wui` (en, de, es, fr); `voice.tone.country` where listed"),
        (Setting::Recheck, "`static.auto_provision.server.url`, `static.auto_provision.repeat.minutes` (before V81 without `static.`)"),
        (Setting::Firmware, "`static.firmware.url`"),
        (Setting::Credentials, "`static.auto_provision.server.username` / `.password`"),
    ],
}];

impl VendorProfile for Yealink {
    fn vendor(&self) -> Vendor {
        Vendor::Yealink
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

    fn template(&self, file: FileKind, _: Phone<'_>) -> Result<Template, Refusal> {
        Ok(match file {
            FileKind::Device => Template(&TEMPLATES[1]),
            _ => Template(&TEMPLATES[0]),
        })
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
        _: Option<&DeviceSettings>,
    ) -> Result<AnyValues, Refusal> {
        let release = phone.firmware.and_then(release);
        let dst = s.timezone.dst_period().map(|p| {
            let at = |t: crate::domain::locale::Transition| {
                format!("{}/{}/{}/{}", t.month, t.week, t.weekday, t.hour)
            };
            Dst {
                start: at(p.start),
                end: at(p.end),
                offset_minutes: p.save_minutes,
            }
        });
        Ok(AnyValues::Yealink(Values {
            language: super::row(locale::LANGUAGES, |r| r.0, s.language.code()).map(|r| r.1),
            time_zone: offset(s.timezone),
            time_zone_name: super::row(locale::TIME_ZONE_NAMES, |r| r.0, s.timezone.name())
                .map(|r| r.1),
            summer_time: u8::from(dst.is_some()),
            dst,
            tones: super::row(locale::TONES, |r| r.0, s.timezone.name()).map(|r| r.1),
            transport: match s.transport {
                Transport::Udp => 0,
                Transport::Tcp => 1,
                Transport::Tls => 2,
            },
            unprefixed: release.is_some_and(|r| r < 81),
            account_transport: release.is_some_and(|r| r <= 73),
            server_template: phone.model.is_some_and(multi_cell),
        }))
    }

    fn check_tenant(&self, s: &TenantSettings) -> Result<(), SettingRefusal> {
        if s.keepalive_seconds < MIN_KEEPALIVE_SECONDS {
            let mut refusal = SettingRefusal::new(
                "keepalive_seconds",
                SettingRule::AtLeast,
                MODELS,
                format!(
                    "accepts a NAT keep-alive interval of {MIN_KEEPALIVE_SECONDS} seconds or more"
                ),
            );
            refusal.violation = refusal.violation.min(MIN_KEEPALIVE_SECONDS);
            return Err(refusal);
        }
        for (key, value) in s.vendor_keys.get(&Vendor::Yealink).into_iter().flatten() {
            check_key(key, value).map_err(|(rule, reason)| {
                SettingRefusal::new(format!("vendor_keys.yealink.{key}"), rule, MODELS, reason)
            })?;
        }
        Ok(())
    }

    fn check_device(&self, d: &DeviceSettings) -> Result<(), SettingRefusal> {
        for (field, value) in super::device_texts(d) {
            if value.trim() == "%NULL%" {
                return Err(SettingRefusal::new(
                    field,
                    SettingRule::NullValue,
                    MODELS,
                    "reads %NULL% as an empty value",
                ));
            }
        }
        Ok(())
    }
}

/// The release of a Yealink firmware version: its second number (`66.86.0.15` → 86).
fn release(firmware: &str) -> Option<u32> {
    let (numbers, n) = version_numbers(firmware);
    (n >= 2).then_some(numbers[1])
}

/// W80 (W80B, W80DM) and W90 (W90B, W90DM) multi-cell systems.
fn multi_cell(model: &str) -> bool {
    let model = strip_prefix_ci(model, "SIP-").unwrap_or(model);
    ["W80", "W90"]
        .iter()
        .any(|m| strip_prefix_ci(model, m).is_some())
}

/// Yealink's `local_time.time_zone` form of a standard offset: `+1`, `-5`, `+5:30`, `0`.
fn offset(zone: TimeZone) -> String {
    let m = zone.offset_minutes();
    if m == 0 {
        return "0".into();
    }
    let sign = if m < 0 { '-' } else { '+' };
    let (h, rest) = (m.abs() / 60, m.abs() % 60);
    if rest == 0 {
        format!("{sign}{h}")
    } else {
        format!("{sign}{h}:{rest:02}")
    }
}

/// A raw key is a dotted name (`features.dnd.enable`); its value one line.
fn check_key(key: &str, value: &str) -> Result<(), (SettingRule, &'static str)> {
    let key_ok = key.len() <= 128
        && key
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c));
    if !key_ok {
        return Err((
            SettingRule::YealinkKeyName,
            "keys are 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err((
            SettingRule::ControlCharacter,
            "a value is one line without control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_and_families() {
        assert_eq!(release("66.86.0.15"), Some(86));
        assert_eq!(release("28.73.0.50"), Some(73));
        assert_eq!(release("x"), None);
        assert!(multi_cell("W80B") && multi_cell("w90dm") && !multi_cell("W60B"));
    }

    #[test]
    fn offsets_in_yealink_form() {
        let z = |n| offset(TimeZone::parse(n).unwrap());
        assert_eq!(z("Europe/Paris"), "+1");
        assert_eq!(z("America/New_York"), "-5");
        assert_eq!(z("Asia/Kolkata"), "+5:30");
        assert_eq!(z("Etc/UTC"), "0");
    }

    #[test]
    fn keep_alive_below_the_phones_minimum_is_refused() {
        let mut s = crate::vendors::sample().1;
        s.keepalive_seconds = 14;
        assert!(YEALINK.check_tenant(&s).is_err());
        s.keepalive_seconds = 15;
        assert!(YEALINK.check_tenant(&s).is_ok());
    }
}
