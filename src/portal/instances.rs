//! The Instances tab: the partner's tenant instances with their device counts, and a form to
//! create or edit every one of its settings (SIP server, transport, port, expiry, keep-alive,
//! time zone, language, firmware, extra vendor keys, enrolment networks, plain HTTP, phone
//! authentication; the risky ones with their consequences). Changes go through the partner
//! API's handlers: their checks, refusals and audit are the API's.
//!
//! Must not know SQL or what a vendor can carry (the API's checks say).

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Serialize;

use super::csrf_refused;
use super::pages::{error_text, Pages};
use super::session::PortalUser;
use super::PortalState;
use crate::domain::{
    InvalidSetting, Language, SettingRule, TenantName, TimeZone, Vendor, Violation,
};
use crate::partner_api::error::ApiError;
use crate::partner_api::tenants::{create_tenant, delete_tenant, get_tenant, update_tenant};
use crate::partner_api::wire::{CustomerOut, FirmwareIn, TenantIn, TenantOut};
use crate::partner_api::{ApiPath, JsonBody};
use crate::store::Page;

type Fields = Form<HashMap<String, String>>;

/// Instances listed on one page.
const PAGE: usize = 50;

fn text(form: &HashMap<String, String>, name: &str) -> Option<String> {
    form.get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A number field: absent or empty is `None`; anything but a whole number in range is refused
/// (rather than dropped, which would keep the old value without a word).
fn number<T: std::str::FromStr>(
    form: &HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, ApiError> {
    text(form, name)
        .map(|v| {
            v.parse().map_err(|_| {
                ApiError::setting(
                    Violation::new(name, SettingRule::Number),
                    format!("{name}: {v:?} is not a whole number"),
                )
            })
        })
        .transpose()
}

/// The port: a whole number too large for a port is refused as out of range, not as "not a
/// number".
fn sip_port(form: &HashMap<String, String>) -> Result<Option<u16>, ApiError> {
    number::<u64>(form, "sip_port")?
        .map(|p| u16::try_from(p).map_err(|_| InvalidSetting::Port.into()))
        .transpose()
}

/// The vendors whose extra keys the form offers, as people write their names, with a real key
/// of each as the example (vendors.md: Yealink's tone country, Snom's tone scheme, Gigaset
/// Nx70's NTP server).
const VENDOR_KEY_EXAMPLES: [(Vendor, &str, &str); 3] = [
    (Vendor::Yealink, "Yealink", "voice.tone.country=Germany"),
    (Vendor::Snom, "Snom", "tone_scheme=GER"),
    (
        Vendor::Gigaset,
        "Gigaset",
        "DmGlobal.0.NtpServer=ntp.example.net",
    ),
];

/// The instance list with each instance's device counts.
pub async fn list(
    State(state): State<PortalState>,
    user: PortalUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let after = q.get("after").and_then(|a| TenantName::parse(a).ok());
    let store = &state.api.store;
    let partner = match user.partner() {
        Ok(p) => p,
        Err(e) => return state.pages.api_error(&user, &e),
    };
    let tenants = match store
        .tenants_of(
            Some(partner),
            Page {
                after,
                limit: Some(PAGE),
            },
        )
        .await
    {
        Ok(t) => t,
        Err(e) => return state.pages.api_error(&user, &e.into()),
    };
    let counts: HashMap<_, _> = match store
        .tenant_counts(tenants.iter().map(|t| t.id).collect())
        .await
    {
        Ok(c) => c.into_iter().collect(),
        Err(e) => return state.pages.api_error(&user, &e.into()),
    };
    let full = tenants.len() == PAGE;
    let rows: Vec<TenantOut> = tenants
        .into_iter()
        .map(|t| {
            let found = counts.get(&t.id).cloned();
            let mut out = TenantOut::from(t);
            out.counts = Some(found.map(Into::into).unwrap_or_default());
            out
        })
        .collect();
    let mut c = Pages::context(user.lang, Some(&user), "instances");
    if full {
        c.insert("next", &rows.last().map(|t| t.name.clone()));
    }
    c.insert("instances", &rows);
    c.insert("saved", &q.contains_key("saved"));
    state.pages.render(200, "instances.html", &c)
}

#[derive(Serialize)]
struct CustomerChoice {
    id: i64,
    company: String,
    selected: bool,
}

/// One vendor's box of extra keys.
#[derive(Serialize)]
struct VendorKeysBox {
    vendor: &'static str,
    label: &'static str,
    example: &'static str,
    text: String,
}

#[derive(Serialize)]
struct Choice {
    value: &'static str,
    label: &'static str,
}

async fn form_page(
    state: &PortalState,
    user: &PortalUser,
    status: u16,
    instance: Option<serde_json::Value>,
    editing: bool,
    error: Option<String>,
) -> Response {
    let chosen = instance.as_ref().map(|i| match &i["customer"] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let partner = match user.partner() {
        Ok(p) => p,
        Err(e) => return state.pages.api_error(user, &e),
    };
    let customers: Vec<CustomerChoice> = match state.api.store.customers(partner, Page::all()).await
    {
        Ok(rows) => rows
            .into_iter()
            .map(|c| CustomerChoice {
                selected: chosen.as_deref() == Some(c.id.to_string().as_str()),
                id: c.id,
                company: CustomerOut::from(c).company,
            })
            .collect(),
        Err(e) => return state.pages.api_error(user, &e.into()),
    };
    let languages: Vec<Choice> = Language::all()
        .map(|l| Choice {
            value: l.code(),
            label: l.name(),
        })
        .collect();
    let timezones: Vec<&str> = TimeZone::all().map(|z| z.name()).collect();
    // The firmware policy as the textarea holds it: one `vendor;model;version;url` a line.
    let firmware = instance
        .as_ref()
        .map_or(String::new(), |i| match &i["firmware"] {
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Array(rows) => rows
                .iter()
                .map(|f| {
                    ["vendor", "model", "version", "url"]
                        .map(|k| f[k].as_str().unwrap_or(""))
                        .join(";")
                })
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        });
    // The extra keys and networks as their boxes hold them: from the API's answer (a map and
    // a list) or from the form sent back after a refusal (the text as typed).
    let vendor_keys: Vec<VendorKeysBox> = VENDOR_KEY_EXAMPLES
        .iter()
        .map(|&(vendor, label, example)| {
            let name = vendor.as_str();
            let text = instance.as_ref().map_or(String::new(), |i| {
                match (
                    &i["vendor_keys"][name],
                    &i[format!("vendor_keys_{name}").as_str()],
                ) {
                    (serde_json::Value::Object(keys), _) => keys
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    (_, serde_json::Value::String(typed)) => typed.clone(),
                    _ => String::new(),
                }
            });
            VendorKeysBox {
                vendor: name,
                label,
                example,
                text,
            }
        })
        .collect();
    let networks = instance
        .as_ref()
        .map_or(String::new(), |i| match &i["enrolment_networks"] {
            serde_json::Value::String(typed) => typed.clone(),
            serde_json::Value::Array(list) => list
                .iter()
                .filter_map(serde_json::Value::as_str)
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        });
    let plain_http = instance
        .as_ref()
        .is_some_and(|i| match &i["allow_plain_http"] {
            serde_json::Value::Bool(on) => *on,
            serde_json::Value::String(typed) => typed == "1",
            _ => false,
        });
    let mut c = Pages::context(user.lang, Some(user), "instances");
    c.insert("instance", &instance);
    c.insert("vendor_keys", &vendor_keys);
    c.insert("networks", &networks);
    c.insert("plain_http", &plain_http);
    c.insert("editing", &editing);
    c.insert("customers", &customers);
    c.insert("languages", &languages);
    c.insert("timezones", &timezones);
    c.insert("transports", &["udp", "tcp", "tls"]);
    c.insert("firmware", &firmware);
    c.insert("error", &error);
    state.pages.render(status, "instance_form.html", &c)
}

/// The defaults a new instance starts from, as the form shows them.
fn defaults() -> serde_json::Value {
    serde_json::json!({
        "transport": "udp", "sip_port": "", "expiry_seconds": 3600, "keepalive_seconds": 30,
        "timezone": "Etc/UTC", "language": "en", "phone_auth": "enrolment",
        "ntp_server": "pool.ntp.org", "recheck_minutes": 1440
    })
}

/// The form for a new instance.
pub async fn new_form(State(state): State<PortalState>, user: PortalUser) -> Response {
    form_page(&state, &user, 200, Some(defaults()), false, None).await
}

/// The firmware policy typed as `vendor;model;version;url` lines (an empty box: none).
fn firmware(form: &HashMap<String, String>) -> Result<Vec<FirmwareIn>, ApiError> {
    let text = form.get("firmware").map_or("", String::as_str);
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let parts: Vec<&str> = line.split(';').map(str::trim).collect();
            match parts.as_slice() {
                [vendor, model, version, url] => Ok(FirmwareIn {
                    vendor: (*vendor).to_owned(),
                    model: (*model).to_owned(),
                    version: (*version).to_owned(),
                    url: (*url).to_owned(),
                }),
                _ => Err(ApiError::setting(
                    Violation::new(format!("firmware[{i}]"), SettingRule::FirmwareLine),
                    format!("firmware line {}: vendor;model;version;url", i + 1),
                )),
            }
        })
        .collect()
}

/// Extra keys as the API takes them: vendor → key → value.
type VendorKeys = BTreeMap<String, BTreeMap<String, String>>;

/// The extra keys typed as `key=value` lines, one box per vendor; an empty box removes that
/// vendor's keys.
fn vendor_keys(form: &HashMap<String, String>) -> Result<Option<VendorKeys>, ApiError> {
    let mut all = BTreeMap::new();
    for (vendor, _, _) in VENDOR_KEY_EXAMPLES {
        // The API replaces the whole map: a form without every box keeps the keys as they are.
        let Some(typed) = form.get(&format!("vendor_keys_{}", vendor.as_str())) else {
            return Ok(None);
        };
        let mut keys = BTreeMap::new();
        for (i, line) in typed
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let Some((key, value)) = line.split_once('=') else {
                return Err(ApiError::setting(
                    Violation::new(
                        format!("vendor_keys.{}[{i}]", vendor.as_str()),
                        SettingRule::VendorKeyLine,
                    ),
                    format!("vendor_keys.{} line {}: key=value", vendor.as_str(), i + 1),
                ));
            };
            keys.insert(key.trim().to_owned(), value.trim().to_owned());
        }
        if !keys.is_empty() {
            all.insert(vendor.as_str().to_owned(), keys);
        }
    }
    Ok(Some(all))
}

/// The enrolment networks typed one a line (an empty box: from anywhere).
fn networks(form: &HashMap<String, String>) -> Option<Vec<String>> {
    form.get("enrolment_networks").map(|typed| {
        typed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

fn body(form: &HashMap<String, String>) -> Result<TenantIn, ApiError> {
    Ok(TenantIn {
        firmware: Some(firmware(form)?),
        customer: number(form, "customer")?,
        sip_server: text(form, "sip_server"),
        sip_port: sip_port(form)?,
        transport: text(form, "transport"),
        expiry_seconds: number(form, "expiry_seconds")?,
        keepalive_seconds: number(form, "keepalive_seconds")?,
        timezone: text(form, "timezone"),
        ntp_server: text(form, "ntp_server"),
        recheck_minutes: number(form, "recheck_minutes")?,
        language: text(form, "language"),
        phone_auth: text(form, "phone_auth"),
        vendor_keys: vendor_keys(form)?,
        enrolment_networks: networks(form),
        // A radio pair: absent (a form without it) keeps the setting.
        allow_plain_http: form.get("allow_plain_http").map(|v| v == "1"),
        ..TenantIn::default()
    })
}

/// Creates an instance.
pub async fn create(
    State(state): State<PortalState>,
    user: PortalUser,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let created = match body(&form) {
        Ok(mut tenant) => {
            tenant.name = text(&form, "name");
            create_tenant(State(state.api.clone()), user.caller(), JsonBody(tenant))
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(_) => Redirect::to("/instances?saved=1").into_response(),
        Err(e) => {
            let echo = serde_json::to_value(&form).ok();
            let error = Some(error_text(user.lang, &e));
            form_page(&state, &user, e.status().as_u16(), echo, false, error).await
        }
    }
}

/// The settings form of one of the partner's instances (404 for anyone else's).
pub async fn edit_form(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(name): Path<String>,
) -> Response {
    match get_tenant(State(state.api.clone()), user.caller(), ApiPath(name)).await {
        Ok(Json(t)) => {
            let value = serde_json::to_value(t).ok();
            form_page(&state, &user, 200, value, true, None).await
        }
        Err(e) => state.pages.api_error(&user, &e),
    }
}

/// Saves an instance's settings.
pub async fn update(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(name): Path<String>,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let updated = match body(&form) {
        Ok(tenant) => update_tenant(
            State(state.api.clone()),
            user.caller(),
            ApiPath(name.clone()),
            JsonBody(tenant),
        )
        .await
        .map(|_| ()),
        Err(e) => Err(e),
    };
    match updated {
        Ok(_) => Redirect::to("/instances?saved=1").into_response(),
        Err(ApiError::NotFound(_)) => state.pages.message(user.lang, 404, "not_found"),
        Err(e) => {
            let mut echo = serde_json::to_value(&form).unwrap_or_default();
            echo["name"] = serde_json::Value::from(name);
            let error = Some(error_text(user.lang, &e));
            form_page(&state, &user, e.status().as_u16(), Some(echo), true, error).await
        }
    }
}

/// The confirmation step before an instance is deleted.
pub async fn delete_confirm(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(name): Path<String>,
) -> Response {
    match get_tenant(State(state.api.clone()), user.caller(), ApiPath(name)).await {
        Ok(Json(t)) => {
            let mut c = Pages::context(user.lang, Some(&user), "instances");
            c.insert("instance", &t);
            state.pages.render(200, "instance_delete.html", &c)
        }
        Err(e) => state.pages.api_error(&user, &e),
    }
}

/// Deletes an instance that has no phones left.
pub async fn delete(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(name): Path<String>,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    match delete_tenant(State(state.api.clone()), user.caller(), ApiPath(name)).await {
        Ok(_) => Redirect::to("/instances?saved=1").into_response(),
        Err(e) => state.pages.api_error(&user, &e),
    }
}
