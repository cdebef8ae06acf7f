//! Rendering configs from the vendor templates with Tera.
//!
//! Owns Tera. Shipped templates (`vendor-templates/<vendor>/<file>.tera`) are embedded in the
//! binary; an operator's directory may override any of them. Every value a template prints is
//! escaped for its file format by default — line breaks and control characters removed in
//! key=value files, XML-escaped in XML files — so a tenant or device value can never inject a
//! setting. Templates are compiled and test-rendered at start, so a broken one is reported
//! with its file and line before any phone asks. Knows nothing of HTTP or the registry.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Serialize;
use tera::{Context, Tera, Value};

use crate::domain::{
    DeviceSettings, FirmwareRule, Host, Language, Mac, TenantName, TenantSettings, TimeZone,
    Transport, Vendor,
};

/// The templates zerotouch renders.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Template {
    /// Yealink per-model common file.
    YealinkCommon,
    /// Yealink per-device file.
    YealinkDevice,
    /// Snom per-model file.
    SnomModel,
    /// Snom per-device settings.
    SnomDevice,
    /// Gigaset N670/N870 family profile.
    GigasetNvm,
    /// Gigaset N510/N720 profile.
    GigasetProviderFrame,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    KeyValue,
    Xml,
}

impl Template {
    /// Every template.
    pub const ALL: [Template; 6] = [
        Template::YealinkCommon,
        Template::YealinkDevice,
        Template::SnomModel,
        Template::SnomDevice,
        Template::GigasetNvm,
        Template::GigasetProviderFrame,
    ];

    /// Path under the templates directory.
    pub const fn path(self) -> &'static str {
        match self {
            Template::YealinkCommon => "yealink/common.cfg.tera",
            Template::YealinkDevice => "yealink/device.cfg.tera",
            Template::SnomModel => "snom/model.htm.tera",
            Template::SnomDevice => "snom/device.xml.tera",
            Template::GigasetNvm => "gigaset/nvm.xml.tera",
            Template::GigasetProviderFrame => "gigaset/provider-frame.xml.tera",
        }
    }

    const fn embedded(self) -> &'static str {
        match self {
            Template::YealinkCommon => {
                include_str!("../../vendor-templates/yealink/common.cfg.tera")
            }
            Template::YealinkDevice => {
                include_str!("../../vendor-templates/yealink/device.cfg.tera")
            }
            Template::SnomModel => include_str!("../../vendor-templates/snom/model.htm.tera"),
            Template::SnomDevice => include_str!("../../vendor-templates/snom/device.xml.tera"),
            Template::GigasetNvm => include_str!("../../vendor-templates/gigaset/nvm.xml.tera"),
            Template::GigasetProviderFrame => {
                include_str!("../../vendor-templates/gigaset/provider-frame.xml.tera")
            }
        }
    }

    const fn format(self) -> Format {
        match self {
            Template::YealinkCommon | Template::YealinkDevice => Format::KeyValue,
            _ => Format::Xml,
        }
    }

    /// The vendor whose format this is.
    pub const fn vendor(self) -> Vendor {
        match self {
            Template::YealinkCommon | Template::YealinkDevice => Vendor::Yealink,
            Template::SnomModel | Template::SnomDevice => Vendor::Snom,
            Template::GigasetNvm | Template::GigasetProviderFrame => Vendor::Gigaset,
        }
    }

    /// The Content-Type sent with the rendered file.
    pub const fn content_type(self) -> &'static str {
        match self {
            Template::YealinkCommon | Template::YealinkDevice => "text/plain; charset=utf-8",
            Template::GigasetProviderFrame => "text/xml; charset=iso-8859-1",
            _ => "text/xml; charset=utf-8",
        }
    }

    /// N510/N720 profiles declare ISO-8859-1 and are sent in it.
    const fn latin1(self) -> bool {
        matches!(self, Template::GigasetProviderFrame)
    }
}

/// A template that cannot be used. Names the file and, for syntax errors, the line.
#[derive(Debug, thiserror::Error)]
#[error("template {file}: {message}")]
pub struct TemplateError {
    /// The file (an override path, or `embedded:<path>`).
    pub file: String,
    /// What is wrong, with line and column when Tera knows them.
    pub message: String,
}

/// A config that failed to render (a template referring to something the context lacks).
#[derive(Debug, thiserror::Error)]
#[error("rendering {template} failed: {message}")]
pub struct RenderError {
    /// Which template.
    pub template: &'static str,
    /// Tera's explanation.
    pub message: String,
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// What a phone is and asked for, as far as rendering cares.
#[derive(Clone, Copy, Debug)]
pub struct Phone<'a> {
    /// Its MAC.
    pub mac: Mac,
    /// Model it reports (or the file name implies).
    pub model: Option<&'a str>,
    /// Firmware it reports.
    pub firmware: Option<&'a str>,
}

/// Everything one render needs.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The phone.
    pub phone: Phone<'a>,
    /// Its tenant's name.
    pub tenant: &'a TenantName,
    /// Its tenant's settings.
    pub settings: &'a TenantSettings,
    /// Per-device settings, if any.
    pub device: Option<&'a DeviceSettings>,
    /// Directory URL phones fetch their files from (ends with `/`).
    pub provisioning_url: &'a str,
    /// Provisioning credentials handed out by this very response (enrolment or rotation).
    pub credentials: Option<Credentials<'a>>,
}

/// Provisioning-server credentials written into a phone's config, once.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Credentials<'a> {
    /// User name.
    pub username: &'a str,
    /// Password.
    pub password: &'a str,
}

/// The compiled templates.
pub struct Renderer {
    key_value: Tera,
    xml: Tera,
    sources: HashMap<Template, String>,
}

impl Renderer {
    /// Compiles the shipped templates, each replaced by `<dir>/<vendor>/<file>.tera` when an
    /// override directory is given and holds that file. Then test-renders each one.
    pub fn load(overrides: Option<&Path>) -> Result<Self, TemplateError> {
        let mut key_value = engine(escape_key_value);
        let mut xml = engine(escape_xml);
        let mut sources = HashMap::new();
        for template in Template::ALL {
            let (source, text) = match overrides.map(|d| d.join(template.path())) {
                Some(path) if path.exists() => {
                    let text = std::fs::read_to_string(&path).map_err(|e| TemplateError {
                        file: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                    (path.display().to_string(), text)
                }
                _ => (
                    format!("embedded:{}", template.path()),
                    template.embedded().to_owned(),
                ),
            };
            let engine = match template.format() {
                Format::KeyValue => &mut key_value,
                Format::Xml => &mut xml,
            };
            engine
                .add_raw_template(template.path(), &text)
                .map_err(|e| TemplateError {
                    file: source.clone(),
                    message: chain(&e),
                })?;
            sources.insert(template, source);
        }
        let renderer = Self {
            key_value,
            xml,
            sources,
        };
        renderer.self_check()?;
        Ok(renderer)
    }

    /// Where each template came from.
    pub fn source(&self, template: Template) -> &str {
        self.sources.get(&template).map_or("", String::as_str)
    }

    /// Renders every template against sample phones (with and without lines, firmware and
    /// model), so a template that refers to a missing value fails at start, not on a phone.
    fn self_check(&self) -> Result<(), TemplateError> {
        let (tenant, settings, device) = sample();
        for template in Template::ALL {
            let model = sample_model(template.vendor());
            for (device, model) in [(Some(&device), Some(model)), (None, None)] {
                let input = Input {
                    phone: Phone {
                        mac: Mac::from_bytes([0x80, 0x5e, 0xc0, 0x17, 0xde, 0x13]),
                        model,
                        firmware: model.map(|_| "1.0.0.1"),
                    },
                    tenant: &tenant,
                    settings: &settings,
                    device,
                    provisioning_url: "https://prov.example/",
                    credentials: device.map(|_| Credentials {
                        username: "zt-805ec017de13-0000",
                        password: "sample-password",
                    }),
                };
                self.render(template, &input).map_err(|e| TemplateError {
                    file: self.source(template).to_owned(),
                    message: e.message,
                })?;
            }
        }
        Ok(())
    }

    /// Renders one template.
    pub fn render(&self, template: Template, input: &Input<'_>) -> Result<Bytes, RenderError> {
        let err = |message: String| RenderError {
            template: template.path(),
            message,
        };
        let context = Context::from_serialize(View::new(template.vendor(), input))
            .map_err(|e| err(chain(&e)))?;
        let engine = match template.format() {
            Format::KeyValue => &self.key_value,
            Format::Xml => &self.xml,
        };
        let text = engine
            .render(template.path(), &context)
            .map_err(|e| err(chain(&e)))?;
        Ok(if template.latin1() {
            Bytes::from(to_latin1(&text))
        } else {
            Bytes::from(text)
        })
    }
}

fn engine(escape: fn(&str) -> String) -> Tera {
    let mut tera = Tera::default();
    // Every template, every printed value: escaping is the default, `| safe` the exception.
    tera.autoescape_on(vec![""]);
    tera.set_escape_fn(escape);
    tera.register_filter("hex", hex_filter);
    tera.register_filter("gigaset_string", gigaset_string_filter);
    tera.register_filter("xml_comment", xml_comment_filter);
    tera
}

/// Key=value files end a value at the line break: a value may hold no control character.
pub fn escape_key_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// XML text and attribute escaping; characters XML 1.0 forbids are dropped.
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn hex_filter(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    value
        .as_u64()
        .map(|n| Value::String(format!("{n:#x}")))
        .ok_or_else(|| tera::Error::msg("hex: expected a non-negative integer"))
}

/// N510/N720 strings sit inside `'"…"'`: a double quote would end them early.
fn gigaset_string_filter(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let s = value
        .as_str()
        .ok_or_else(|| tera::Error::msg("gigaset_string: expected a string"))?;
    Ok(Value::String(s.replace('"', "")))
}

/// `--` may not appear inside an XML comment.
fn xml_comment_filter(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let s = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = s.replace("--", "- -");
    if out.ends_with('-') {
        out.push(' ');
    }
    Ok(Value::String(out))
}

fn to_latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// The template context. Field names are the templates' vocabulary; see vendor-templates/README.md.
#[derive(Serialize)]
struct View<'a> {
    vendor: Vendor,
    mac: String,
    mac_upper: String,
    model: Option<&'a str>,
    phone_firmware: Option<&'a str>,
    provisioning_url: &'a str,
    tenant: TenantView<'a>,
    language: &'static crate::domain::locale::LanguageRow,
    timezone: ZoneView,
    firmware: Option<&'a FirmwareRule>,
    lines: Vec<LineView<'a>>,
    vendor_keys: Option<&'a BTreeMap<String, String>>,
    provisioning_credentials: Option<Credentials<'a>>,
}

#[derive(Serialize)]
struct TenantView<'a> {
    name: &'a str,
    sip_server: Option<&'a Host>,
    sip_port: u16,
    transport: Transport,
    expiry_seconds: u32,
    keepalive_seconds: u32,
    ntp_server: &'a Host,
    recheck_minutes: u32,
    recheck_seconds: u32,
}

#[derive(Serialize)]
struct ZoneView {
    iana: &'static str,
    yealink_offset: String,
    yealink_name: &'static str,
    snom: &'static str,
    yealink_tones: &'static str,
    snom_tones: &'static str,
    gigaset_provider_frame: Option<&'static str>,
}

#[derive(Serialize)]
struct LineView<'a> {
    /// 1-based line number.
    index: usize,
    /// Gigaset Nx70 handset number, 5 digits.
    handset: String,
    user: &'a str,
    auth_user: &'a str,
    password: &'a str,
    display_name: &'a str,
}

impl<'a> View<'a> {
    fn new(vendor: Vendor, input: &Input<'a>) -> Self {
        let s = input.settings;
        let zone: TimeZone = s.timezone;
        let language: Language = s.language;
        let lines = input
            .device
            .map(|d| d.lines.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, l)| LineView {
                index: i + 1,
                handset: format!("{:05}", i + 1),
                user: &l.user,
                auth_user: l.auth_user.as_deref().unwrap_or(&l.user),
                password: l.password.expose(),
                // A line without its own name shows the device's, else its user.
                display_name: l
                    .display_name
                    .as_deref()
                    .or(input.device.and_then(|d| d.display_name.as_deref()))
                    .unwrap_or(&l.user),
            })
            .collect();
        Self {
            vendor,
            mac: input.phone.mac.to_lower_hex(),
            mac_upper: input.phone.mac.to_upper_hex(),
            model: input.phone.model,
            phone_firmware: input.phone.firmware,
            provisioning_url: input.provisioning_url,
            tenant: TenantView {
                name: input.tenant.as_str(),
                sip_server: s.sip_server.as_ref(),
                sip_port: s.effective_sip_port(),
                transport: s.transport,
                expiry_seconds: s.expiry_seconds,
                keepalive_seconds: s.keepalive_seconds,
                ntp_server: &s.ntp_server,
                recheck_minutes: s.recheck_minutes,
                recheck_seconds: s.recheck_minutes.saturating_mul(60),
            },
            language: language.row(),
            timezone: ZoneView {
                iana: zone.row().iana,
                yealink_offset: zone.yealink_offset(),
                yealink_name: zone.row().yealink_name,
                snom: zone.row().snom,
                yealink_tones: zone.row().yealink_tones,
                snom_tones: zone.row().snom_tones,
                gigaset_provider_frame: zone.gigaset_provider_frame_code(),
            },
            firmware: input.phone.model.and_then(|m| {
                s.firmware
                    .iter()
                    .find(|r| r.vendor == vendor && super::user_agent::same_model(&r.model, m))
            }),
            lines,
            vendor_keys: s.vendor_keys.get(&vendor),
            provisioning_credentials: input.credentials,
        }
    }
}

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
        timezone: TimeZone::parse("Europe/Paris").unwrap_or_else(|_| unreachable!("in table")),
        language: Language::parse("fr").unwrap_or_else(|_| unreachable!("in table")),
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
                BTreeMap::from([("Telephony.0.CT_ByOnHook".to_owned(), "1".to_owned())]),
            ),
        ]),
        phone_auth: crate::domain::PhoneAuth::Enrolment,
    };
    let device = DeviceSettings {
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

/// A model of each vendor that [`sample`]'s firmware policy names.
pub fn sample_model(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Yealink => "T46S",
        Vendor::Snom => "D785",
        Vendor::Gigaset => "N870 IP PRO",
    }
}

/// Templates directory given on the command line or in config, checked to exist.
pub fn check_override_dir(dir: &Path) -> Result<PathBuf, TemplateError> {
    if dir.is_dir() {
        Ok(dir.to_owned())
    } else {
        Err(TemplateError {
            file: dir.display().to_string(),
            message: "not a directory".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape_key_value("a\nb\rc\u{2028}d"), "a b c d");
        assert_eq!(
            escape_xml(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(escape_xml("a\u{1}b\nc"), "ab c");
    }

    #[test]
    fn latin1_transcoding() {
        assert_eq!(to_latin1("Réception €"), b"R\xe9ception ?".to_vec());
    }

    /// Renders every shipped template with the sample tenant and device and compares the
    /// bytes with `fixtures/golden/`. A template change shows up as a diff there; run with
    /// `ZEROTOUCH_UPDATE_GOLDEN=1` to accept it.
    #[test]
    fn golden_files() {
        let renderer = Renderer::load(None).unwrap();
        let (tenant, settings, device) = sample();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden");
        let update = std::env::var_os("ZEROTOUCH_UPDATE_GOLDEN").is_some();
        let mut mismatches = Vec::new();
        for template in Template::ALL {
            let model = match template {
                Template::GigasetProviderFrame => "N510 IP PRO",
                t => sample_model(t.vendor()),
            };
            let input = Input {
                phone: Phone {
                    mac: Mac::from_bytes([0x80, 0x5e, 0xc0, 0x17, 0xde, 0x13]),
                    model: Some(model),
                    firmware: Some("1.0.0.1"),
                },
                tenant: &tenant,
                settings: &settings,
                device: Some(&device),
                provisioning_url: "https://prov.example/",
                credentials: Some(Credentials {
                    username: "zt-805ec017de13-0000",
                    password: "sample-password",
                }),
            };
            let got = renderer.render(template, &input).unwrap();
            let file = dir.join(template.path().replace('/', "-").trim_end_matches(".tera"));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&file, &got).unwrap();
            } else {
                let want = std::fs::read(&file).unwrap_or_default();
                if want != got {
                    mismatches.push(format!(
                        "{}:\n{}",
                        file.display(),
                        String::from_utf8_lossy(&got)
                    ));
                }
            }
        }
        assert!(
            mismatches.is_empty(),
            "rendered output differs from the golden files (ZEROTOUCH_UPDATE_GOLDEN=1 accepts):\n{}",
            mismatches.join("\n")
        );
    }

    #[test]
    fn a_device_value_with_a_line_break_cannot_add_a_key() {
        use crate::domain::{LineAccount, Secret};
        let renderer = Renderer::load(None).unwrap();
        let (tenant, settings, _) = sample();
        // Validation refuses this at the API; rendering must hold even if it did not.
        let device = DeviceSettings {
            display_name: Some("x\nstatic.firmware.url = https://evil.example/".into()),
            lines: vec![LineAccount {
                user: "1\r\naccount.1.password = stolen".into(),
                auth_user: None,
                password: Secret::new("p"),
                display_name: None,
            }],
        };
        let input = Input {
            phone: Phone {
                mac: Mac::from_bytes([0x80, 0x5e, 0xc0, 0x17, 0xde, 0x13]),
                model: None,
                firmware: None,
            },
            tenant: &tenant,
            settings: &settings,
            device: Some(&device),
            provisioning_url: "https://prov.example/",
            credentials: None,
        };
        let out = renderer.render(Template::YealinkDevice, &input).unwrap();
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(
            !text.lines().any(|l| l.starts_with("static.firmware.url")),
            "{text}"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("account.1.password = stolen")),
            "{text}"
        );
    }

    #[test]
    fn shipped_templates_load() {
        Renderer::load(None).unwrap();
    }

    #[test]
    fn an_override_with_a_syntax_error_is_reported_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("snom")).unwrap();
        std::fs::write(
            dir.path().join("snom/device.xml.tera"),
            "<settings>\n{% if %}\n",
        )
        .unwrap();
        let err = Renderer::load(Some(dir.path())).err().unwrap();
        assert!(err.file.ends_with("snom/device.xml.tera"), "{err}");
        assert!(err.message.contains("2:"), "line number in {err}");
    }

    #[test]
    fn an_override_referring_to_a_missing_value_fails_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("yealink")).unwrap();
        std::fs::write(
            dir.path().join("yealink/device.cfg.tera"),
            "#!version:1.0.0.1\nx = {{ nonexistent.value }}\n",
        )
        .unwrap();
        let err = Renderer::load(Some(dir.path())).err().unwrap();
        assert!(err.file.ends_with("yealink/device.cfg.tera"), "{err}");
    }
}
