//! Snom: desk phones (D1xx–D8xx, 3xx, 7xx). M-series DECT bases are recognised but not
//! served: their settings layout differs and no two sources agree on it (SOURCES.md).
//!
//! Owns Snom's request paths and User-Agents, its value tables, the choice of template and
//! what its XML settings format can carry. Every key the templates write and every table here
//! is traced in `vendor-templates/snom/SOURCES.md`.

use serde::Serialize;

use crate::domain::{DeviceSettings, SettingRule, TenantSettings, Transport, Vendor};

use super::facts::{FamilyFacts, Setting};
use super::spelling::strip_prefix_ci;
use super::template::XML_UTF8;
use super::{
    Charset, FileKind, FileMatch, FileName, Format, Phone, Refusal, SettingRefusal, Template,
    TemplateSpec, UserAgent, Values as AnyValues, Variant, VendorProfile,
};

mod files;
pub mod locale;
mod user_agent;

/// Snom's profile.
pub struct Snom;

/// The one instance.
pub static SNOM: Snom = Snom;

const MODELS: &str = "snom";

const fn spec(path: &'static str, embedded: &'static str) -> TemplateSpec {
    TemplateSpec {
        path,
        embedded,
        format: Format::Xml,
        charset: Charset::Utf8,
        content_type: XML_UTF8,
    }
}

static TEMPLATES: [TemplateSpec; 3] = [
    spec(
        "snom/model.htm.tera",
        include_str!("../../../vendor-templates/snom/model.htm.tera"),
    ),
    spec(
        "snom/device.xml.tera",
        include_str!("../../../vendor-templates/snom/device.xml.tera"),
    ),
    spec(
        "snom/firmware.xml.tera",
        include_str!("../../../vendor-templates/snom/firmware.xml.tera"),
    ),
];

const fn variant(name: &'static str, file: FileKind) -> Variant {
    Variant {
        name,
        file,
        phone: Phone {
            model: Some("D785"),
            firmware: Some("10.1.33.33"),
        },
        transport: Transport::Tls,
    }
}

static VARIANTS: [Variant; 3] = [
    variant("model", FileKind::Model),
    variant("device", FileKind::Device),
    variant("firmware", FileKind::Firmware),
];

/// The tenant's settings as Snom spells them (`values.*` in its templates). An absent value's
/// key is left out: the phone keeps its own.
#[derive(Serialize, Debug)]
pub struct Values {
    /// `language`.
    pub language: Option<&'static str>,
    /// `web_language`.
    pub web_language: Option<&'static str>,
    /// `timezone`.
    pub timezone: Option<&'static str>,
    /// `tone_scheme`.
    pub tone_scheme: Option<&'static str>,
}

/// What Snom desk-phone configs set (M-series DECT bases are not served).
static FACTS: [FamilyFacts; 1] = [FamilyFacts {
    name: "Snom",
    golden: "snom/device.xml",
    cells: &[
        (
            Setting::Registrar,
            "`user_host`, `user_outbound` (per line)",
        ),
        (
            Setting::Transport,
            "`user_outbound` as `host:port;transport=tls` (or udp, tcp)",
        ),
        (Setting::Expiry, "`user_expiry` (per line)"),
        (Setting::KeepAlive, "`keepalive_interval` (per line)"),
        (
            Setting::Accounts,
            "`user_active`, `user_name`, `user_pname`, `user_pass`, `user_realname`",
        ),
        (
            Setting::Time,
            "`ntp_server`, `timezone` (Snom code; its daylight-saving rule)",
        ),
        (
            Setting::LanguageAndTones,
            "`language`, `web_language`, `tone_scheme` where Snom lists them",
        ),
        (
            Setting::Recheck,
            "`setting_server`, `settings_refresh_timer` (seconds)",
        ),
        (
            Setting::Firmware,
            "`firmware_status` naming a `<firmware-settings>` file, `update_policy`",
        ),
        (
            Setting::Credentials,
            "`http_client_user`, `http_client_pass`",
        ),
    ],
}];

impl VendorProfile for Snom {
    fn vendor(&self) -> Vendor {
        Vendor::Snom
    }

    fn user_agent<'a>(&self, header: &'a str) -> Option<UserAgent<'a>> {
        user_agent::parse(header)
    }

    fn file<'a>(
        &self,
        name: &FileName<'a>,
        agent: Option<&UserAgent<'a>>,
    ) -> Option<FileMatch<'a>> {
        files::recognise(name, agent)
    }

    fn templates(&self) -> &'static [TemplateSpec] {
        &TEMPLATES
    }

    fn template(&self, file: FileKind, phone: Phone<'_>) -> Result<Template, Refusal> {
        if phone.model.is_some_and(is_dect_base) {
            return Err(Refusal {
                models: "snom M-series DECT",
                reason: "use a settings layout zerotouch does not write yet (no two sources agree on it)".into(),
            });
        }
        Ok(match file {
            FileKind::Device => Template(&TEMPLATES[1]),
            FileKind::Firmware => Template(&TEMPLATES[2]),
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
        _: Phone<'_>,
        s: &TenantSettings,
        _: Option<&DeviceSettings>,
    ) -> Result<AnyValues, Refusal> {
        let language = super::row(locale::LANGUAGES, |r| r.0, s.language.code());
        Ok(AnyValues::Snom(Values {
            language: language.map(|r| r.1),
            web_language: language.and_then(|r| r.2),
            timezone: super::row(locale::TIME_ZONES, |r| r.0, s.timezone.name()).map(|r| r.1),
            tone_scheme: super::row(locale::TONE_SCHEMES, |r| r.0, s.timezone.name()).map(|r| r.1),
        }))
    }

    fn check_tenant(&self, s: &TenantSettings) -> Result<(), SettingRefusal> {
        for (key, value) in s.vendor_keys.get(&Vendor::Snom).into_iter().flatten() {
            let field = || format!("vendor_keys.snom.{key}");
            if !is_setting_name(key) {
                return Err(SettingRefusal::new(
                    field(),
                    SettingRule::SnomKeyName,
                    MODELS,
                    "setting names are 1-64 letters, digits or '_' (they become XML element names)",
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(SettingRefusal::new(
                    field(),
                    SettingRule::ControlCharacter,
                    MODELS,
                    "a value holds no control characters",
                ));
            }
        }
        Ok(())
    }

    fn check_device(&self, _: &DeviceSettings) -> Result<(), SettingRefusal> {
        // UTF-8 XML with every value escaped carries any text the domain accepts.
        Ok(())
    }
}

/// A Snom setting name: letters, digits and `_` only (Snom's own rule; it becomes an XML
/// element name, so it must not start with a digit either).
fn is_setting_name(key: &str) -> bool {
    key.len() <= 64
        && key
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && key.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The M-series DECT bases name themselves `M300`, `M700`, `M900`, … (no `-SIP`).
fn is_dect_base(model: &str) -> bool {
    strip_prefix_ci(model, "M")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_names_are_snoms() {
        assert!(is_setting_name("dnd_mode"));
        assert!(!is_setting_name("user_realname[1]"));
        assert!(!is_setting_name("a.b"));
        assert!(!is_setting_name("1abc"));
        assert!(!is_setting_name(""));
    }

    #[test]
    fn dect_bases_are_not_served() {
        let phone = |model| Phone {
            model: Some(model),
            firmware: None,
        };
        assert!(SNOM.template(FileKind::Device, phone("M900")).is_err());
        assert!(SNOM.template(FileKind::Device, phone("D785")).is_ok());
        assert!(SNOM.template(FileKind::Device, phone("MX")).is_ok());
    }
}
