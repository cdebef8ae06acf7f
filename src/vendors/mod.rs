//! What zerotouch knows about each phone maker: one folder per vendor, one interface.
//!
//! A vendor's module owns its phones' request paths and User-Agent shapes, its model tables,
//! its value tables (languages, time zones, tones), the choice of template by model and
//! firmware, the values its templates print, and the checks of what its formats can carry.
//! Each key and table is traced to its sources in `vendor-templates/<vendor>/SOURCES.md`.
//! The provisioning path and the partner API ask through [`VendorProfile`] and the few
//! dispatchers here; no vendor knows another, and none knows HTTP, Tera, the registry or the
//! store. Adding a vendor: a folder here, one line in [`ALL`], a folder of templates, its
//! OUIs and its [`Vendor`] variant (ARCHITECTURE.md, "Where to start").

use serde::Serialize;

use crate::domain::{
    DeviceSettings, InvalidDeviceSetting, InvalidSetting, OuiTable, SettingRule, TenantSettings,
    Transport, Vendor, Violation,
};

pub mod facts;
pub mod gigaset;
pub mod request;
mod sample;
pub mod snom;
pub mod spelling;
pub mod template;
#[cfg(test)]
mod tests;
pub mod yealink;

pub use request::{FileKind, FileMatch, FileName, PhoneRequest, UserAgent};
pub use sample::sample;
pub use template::{Charset, Format, Template, TemplateSpec};

/// The phone a file is rendered for, as far as a vendor's choices go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phone<'a> {
    /// Model as reported (or implied by the file name).
    pub model: Option<&'a str>,
    /// Firmware as reported.
    pub firmware: Option<&'a str>,
}

/// One rendering a vendor distinguishes (a model family and firmware range), with a phone
/// that selects it: what the start-up self-check and the golden files render.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// Short name, also the golden file's name (`n510`, `nx70-2.42`).
    pub name: &'static str,
    /// The file asked for.
    pub file: FileKind,
    /// A model and firmware that select it.
    pub phone: Phone<'static>,
    /// The transport the sample tenant is shown with (UDP for a model that can do nothing else).
    pub transport: Transport,
}

/// A tenant or device value a vendor's format cannot carry, or a setting a vendor's phones
/// cannot do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The models it concerns (`gigaset N510/N720`).
    pub models: &'static str,
    /// What is wrong, in a few words.
    pub reason: String,
}

/// A setting a vendor's phones cannot be given: which setting and rule (with the vendor and
/// models in [`Violation::models`]), and what they cannot do in a few English words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingRefusal {
    /// The setting, the rule broken, and the vendor and models concerned.
    pub violation: Violation,
    /// What is wrong, in a few words.
    pub reason: String,
}

impl SettingRefusal {
    /// `field` breaks `rule` on `models`, for `reason`.
    pub(crate) fn new(
        field: impl Into<String>,
        rule: SettingRule,
        models: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            violation: Violation::new(field, rule).models(models),
            reason: reason.into(),
        }
    }
}

/// The tenant's settings as one vendor spells them, printed by its templates as `values.*`.
#[derive(Serialize, Debug)]
#[serde(untagged)]
pub enum Values {
    /// Yealink's spelling.
    Yealink(yealink::Values),
    /// Snom's spelling.
    Snom(snom::Values),
    /// Gigaset's spelling.
    Gigaset(gigaset::Values),
}

/// Everything one vendor contributes. Implemented once per vendor folder.
pub trait VendorProfile: Sync {
    /// Which vendor.
    fn vendor(&self) -> Vendor;

    /// This vendor's User-Agent shapes; `None` when the header is not one of its phones'.
    fn user_agent<'a>(&self, header: &'a str) -> Option<UserAgent<'a>>;

    /// The files this vendor's phones ask for; `None` when `name` is not one of them.
    /// `agent` is the parsed User-Agent (any vendor's), for names only a User-Agent settles.
    fn file<'a>(&self, name: &FileName<'a>, agent: Option<&UserAgent<'a>>)
        -> Option<FileMatch<'a>>;

    /// Every template this vendor ships.
    fn templates(&self) -> &'static [TemplateSpec];

    /// The template for a served file, chosen by model and firmware; a refusal for a model
    /// zerotouch has no verified format for.
    fn template(&self, file: FileKind, phone: Phone<'_>) -> Result<Template, Refusal>;

    /// The renderings to check at start and keep golden files of.
    fn variants(&self) -> &'static [Variant];

    /// What its configs set, per model family (README's table).
    fn facts(&self) -> &'static [facts::FamilyFacts];

    /// The tenant's settings in this vendor's spelling, for `template` and `phone`; a refusal
    /// when this phone cannot do what the tenant or device asks (a transport its model lacks,
    /// more lines than it has accounts).
    fn values(
        &self,
        template: Template,
        phone: Phone<'_>,
        settings: &TenantSettings,
        device: Option<&DeviceSettings>,
    ) -> Result<Values, Refusal>;

    /// Whether this vendor's phones can be given the tenant's settings as they are.
    fn check_tenant(&self, settings: &TenantSettings) -> Result<(), SettingRefusal>;

    /// Whether this vendor's formats can carry a device's settings unchanged.
    fn check_device(&self, settings: &DeviceSettings) -> Result<(), SettingRefusal>;
}

/// Every supported vendor, in the order User-Agents are tried (Snom's `Mozilla/4.0
/// (compatible; snom…` first, Yealink's vendor-less form before Gigaset's slash form would
/// make no difference, but an order must be fixed).
pub const ALL: [&dyn VendorProfile; 3] = [&snom::SNOM, &yealink::YEALINK, &gigaset::GIGASET];

/// The profile of one vendor.
pub fn profile(vendor: Vendor) -> &'static dyn VendorProfile {
    match vendor {
        Vendor::Yealink => &yealink::YEALINK,
        Vendor::Snom => &snom::SNOM,
        Vendor::Gigaset => &gigaset::GIGASET,
    }
}

/// Parses a User-Agent. `None` for anything that is not a phone zerotouch knows (a browser,
/// curl, an empty header): the request is then recognised by path and OUI alone.
pub fn parse_user_agent(header: &str) -> Option<UserAgent<'_>> {
    let header = header.trim();
    if header.is_empty() || header.len() > 512 {
        return None;
    }
    // A User-Agent whose first word names a vendor (`Yealink SIP-T46S …`, `Gigaset N870 …`)
    // goes to that vendor's parser first; the others are tried in order either way.
    let first = header.split_ascii_whitespace().next().unwrap_or("");
    let named = ALL
        .iter()
        .find(|p| spelling::strip_prefix_ci(first, p.vendor().as_str()).is_some());
    named
        .and_then(|p| p.user_agent(header))
        .or_else(|| ALL.iter().find_map(|p| p.user_agent(header)))
}

/// Recognises a request target and its User-Agent. `None`: not a file any supported phone
/// asks for. A file name several vendors use (`<MAC>.xml`: Snom and Gigaset) goes to the
/// vendor the User-Agent names, else to the maker of the MAC.
pub fn recognise<'a>(
    path_and_query: &'a str,
    user_agent: Option<&'a str>,
    ouis: &OuiTable,
) -> Option<PhoneRequest<'a>> {
    recognise_parsed(path_and_query, user_agent.and_then(parse_user_agent), ouis)
}

/// [`recognise`] with the User-Agent already parsed (the hot path parses it once).
pub fn recognise_parsed<'a>(
    path_and_query: &'a str,
    agent: Option<UserAgent<'a>>,
    ouis: &OuiTable,
) -> Option<PhoneRequest<'a>> {
    let name = FileName::of(path_and_query)?;
    let request = |vendor: Vendor, m: FileMatch<'a>| PhoneRequest {
        vendor,
        file: m.kind,
        path_mac: m.mac,
        path_model: m.model,
        model_code: m.model_code,
        agent,
    };
    // The vendor the User-Agent names wins any file name it shares with others: ask it first.
    let named = agent.and_then(|a| a.vendor);
    if let Some(vendor) = named {
        if let Some(m) = profile(vendor).file(&name, agent.as_ref()) {
            return Some(request(vendor, m));
        }
    }
    let mut candidates: [Option<(Vendor, FileMatch<'a>)>; ALL.len()] = [None; ALL.len()];
    for (slot, profile) in candidates.iter_mut().zip(ALL) {
        if Some(profile.vendor()) != named {
            *slot = profile
                .file(&name, agent.as_ref())
                .map(|m| (profile.vendor(), m));
        }
    }
    let mut found = candidates.iter().flatten();
    let (vendor, m) = match (found.next(), found.next()) {
        (None, _) => return None,
        (Some(&only), None) => only,
        // Several vendors use this name and the User-Agent names none of them: the maker of
        // the MAC decides.
        (Some(_), Some(_)) => candidates.iter().flatten().find_map(|&(v, m)| {
            (m.mac.and_then(|mac| ouis.vendor_of(mac)) == Some(v)).then_some((v, m))
        })?,
    };
    Some(request(vendor, m))
}

/// Checks a tenant's settings: the domain's rules, then each vendor's (a value a vendor
/// cannot represent is refused, naming the vendor and models).
pub fn validate_tenant(settings: &TenantSettings) -> Result<(), InvalidSetting> {
    settings.validate()?;
    for profile in ALL {
        profile
            .check_tenant(settings)
            .map_err(|r| InvalidSetting::NotRepresentable {
                violation: r.violation,
                reason: r.reason,
            })?;
    }
    Ok(())
}

/// Checks a device's settings: the domain's rules, then its vendor's.
pub fn validate_device(
    vendor: Vendor,
    settings: &DeviceSettings,
) -> Result<(), InvalidDeviceSetting> {
    settings.validate()?;
    profile(vendor)
        .check_device(settings)
        .map_err(|r| InvalidDeviceSetting::NotRepresentable {
            violation: r.violation,
            reason: r.reason,
        })
}

/// The row of a vendor's table whose key column is `want`.
pub(crate) fn row<R>(
    rows: &'static [R],
    key: impl Fn(&R) -> &str,
    want: &str,
) -> Option<&'static R> {
    rows.iter().find(|r| key(r) == want)
}

/// Every text of a device's settings that a template prints, named as the API names it.
pub(crate) fn device_texts(d: &DeviceSettings) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    if let Some(name) = &d.display_name {
        out.push(("display_name".to_owned(), name.as_str()));
    }
    for (i, line) in d.lines.iter().enumerate() {
        out.push((format!("lines[{i}].user"), line.user.as_str()));
        out.push((format!("lines[{i}].password"), line.password.expose()));
        if let Some(v) = &line.auth_user {
            out.push((format!("lines[{i}].auth_user"), v.as_str()));
        }
        if let Some(v) = &line.display_name {
            out.push((format!("lines[{i}].display_name"), v.as_str()));
        }
    }
    out
}

/// The tenant's firmware rule for a phone of `vendor` reporting `model` (model names compared
/// as phones spell them).
pub fn firmware_rule<'s>(
    settings: &'s TenantSettings,
    vendor: Vendor,
    model: &str,
) -> Option<&'s crate::domain::FirmwareRule> {
    settings
        .firmware
        .iter()
        .find(|r| r.vendor == vendor && spelling::same_model(&r.model, model))
}

/// The values of the list block `name` in a vendor's `SOURCES.md`: the lines of the ```text
/// block that follows `<!-- list: name -->`. What the table tests hold each table against.
#[cfg(test)]
pub(crate) fn source_list(sources: &str, name: &str) -> Vec<String> {
    let marker = format!("<!-- list: {name} -->");
    let start = sources
        .find(&marker)
        .unwrap_or_else(|| panic!("SOURCES.md has no list {name:?}"));
    let block = &sources[start + marker.len()..];
    let open = block
        .find("```text\n")
        .expect("a ```text block after the marker")
        + 8;
    let close = block[open..].find("```").expect("the block closes") + open;
    block[open..close]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}
