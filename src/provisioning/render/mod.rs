//! Rendering configs from the vendor templates with Tera.
//!
//! Owns Tera. Each vendor's shipped templates (`vendor-templates/<vendor>/<file>.tera`, listed
//! by `crate::vendors`) are embedded in the binary; an operator's directory may override any
//! of them. Every value a template prints is
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
use crate::vendors::{self, Charset, Format, Template};

/// A template that cannot be used. Names the file and, for syntax errors, the line.
#[derive(Debug, thiserror::Error)]
#[error("template {file}: {message}")]
pub struct TemplateError {
    /// The file (an override path, or `embedded:<path>`).
    pub file: String,
    /// What is wrong, with line and column when Tera knows them.
    pub message: String,
}

/// A config that could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The phone cannot be given what its tenant or device asks (its model lacks a transport,
    /// has fewer accounts): nothing is sent rather than a config it would misapply.
    #[error("{} {}", .0.models, .0.reason)]
    Unsupported(vendors::Refusal),
    /// The template refers to something the context lacks, or a value cannot be written in
    /// its format unchanged.
    #[error("rendering {template} failed: {message}")]
    Failed {
        /// Which template.
        template: &'static str,
        /// What went wrong.
        message: String,
    },
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

impl<'a> Phone<'a> {
    fn reported(&self) -> vendors::Phone<'a> {
        vendors::Phone {
            model: self.model,
            firmware: self.firmware,
        }
    }
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

/// The compiled templates of every vendor.
pub struct Renderer {
    key_value: Tera,
    xml: Tera,
    sources: HashMap<&'static str, String>,
}

impl Renderer {
    /// Compiles every vendor's shipped templates, each replaced by `<dir>/<vendor>/<file>.tera`
    /// when an override directory is given and holds that file. Then test-renders each one.
    pub fn load(overrides: Option<&Path>) -> Result<Self, TemplateError> {
        let mut key_value = engine(escape_key_value);
        let mut xml = engine(escape_xml);
        let mut sources = HashMap::new();
        for spec in vendors::ALL.iter().flat_map(|v| v.templates()) {
            let (source, text) = match overrides.map(|d| d.join(spec.path)) {
                Some(path) if path.exists() => {
                    let text = std::fs::read_to_string(&path).map_err(|e| TemplateError {
                        file: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                    (path.display().to_string(), text)
                }
                _ => (format!("embedded:{}", spec.path), spec.embedded.to_owned()),
            };
            let engine = match spec.format {
                Format::KeyValue => &mut key_value,
                Format::Xml => &mut xml,
            };
            engine
                .add_raw_template(spec.path, &text)
                .map_err(|e| TemplateError {
                    file: source.clone(),
                    message: chain(&e),
                })?;
            sources.insert(spec.path, source);
        }
        let renderer = Self {
            key_value,
            xml,
            sources,
        };
        renderer.self_check()?;
        Ok(renderer)
    }

    /// Where a template came from.
    pub fn source(&self, template: Template) -> &str {
        self.sources.get(template.path()).map_or("", String::as_str)
    }

    /// Renders each vendor's variants against the sample tenant (with and without lines and
    /// credentials), so a template that refers to a missing value fails at start, not on a
    /// phone.
    fn self_check(&self) -> Result<(), TemplateError> {
        let (tenant, mut settings, device) = sample();
        for profile in vendors::ALL {
            for variant in profile.variants() {
                let failed = |message: String, template: Option<Template>| TemplateError {
                    file: template.map_or_else(String::new, |t| self.source(t).to_owned()),
                    message,
                };
                let template = profile.template(variant.file, variant.phone).map_err(|r| {
                    failed(format!("{}: {} {}", variant.name, r.models, r.reason), None)
                })?;
                settings.transport = variant.transport;
                for device in [Some(&device), None] {
                    let phone = variant.phone;
                    let input = Input {
                        phone: Phone {
                            mac: Mac::from_bytes([0x80, 0x5e, 0xc0, 0x17, 0xde, 0x13]),
                            model: phone.model,
                            firmware: phone.firmware,
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
                    self.render(profile.vendor(), template, &input)
                        .map_err(|e| failed(e.to_string(), Some(template)))?;
                }
            }
        }
        Ok(())
    }

    /// Renders one of `vendor`'s templates.
    pub fn render(
        &self,
        vendor: Vendor,
        template: Template,
        input: &Input<'_>,
    ) -> Result<Bytes, RenderError> {
        let err = |message: String| RenderError::Failed {
            template: template.path(),
            message,
        };
        let view = View::new(vendor, template, input).map_err(RenderError::Unsupported)?;
        let context = Context::from_serialize(view).map_err(|e| err(chain(&e)))?;
        let engine = match template.spec().format {
            Format::KeyValue => &self.key_value,
            Format::Xml => &self.xml,
        };
        let text = engine
            .render(template.path(), &context)
            .map_err(|e| err(chain(&e)))?;
        match template.spec().charset {
            Charset::Utf8 => Ok(Bytes::from(text)),
            Charset::Latin1 => to_latin1(&text).map(Bytes::from).map_err(|c| {
                err(format!(
                    "{c:?} is not an ISO-8859-1 character; the value must be refused when saved"
                ))
            }),
        }
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

/// N510/N720 strings sit inside `'"…"'` and the base has no escape for a double quote inside:
/// such a value is refused when saved, and if one reaches a template anyway, the render fails
/// rather than send something else than what was saved.
fn gigaset_string_filter(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let s = value
        .as_str()
        .ok_or_else(|| tera::Error::msg("gigaset_string: expected a string"))?;
    if s.contains('"') {
        return Err(tera::Error::msg(
            "gigaset_string: a double quote cannot be written into an N510/N720 string",
        ));
    }
    Ok(Value::String(s.to_owned()))
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

/// ISO-8859-1 bytes of `s`, or the first character it cannot hold.
fn to_latin1(s: &str) -> Result<Vec<u8>, char> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| c))
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
    language: &'static str,
    timezone: &'static str,
    values: vendors::Values,
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
    fn new(
        vendor: Vendor,
        template: Template,
        input: &Input<'a>,
    ) -> Result<Self, vendors::Refusal> {
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
        let values =
            vendors::profile(vendor).values(template, input.phone.reported(), s, input.device)?;
        Ok(Self {
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
            language: language.code(),
            timezone: zone.name(),
            values,
            firmware: input
                .phone
                .model
                .and_then(|m| vendors::firmware_rule(s, vendor, m)),
            lines,
            vendor_keys: s.vendor_keys.get(&vendor),
            provisioning_credentials: input.credentials,
        })
    }
}

pub use crate::vendors::sample;

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
mod tests;
