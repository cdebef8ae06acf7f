//! The partner API's JSON: request and response bodies, and how they map to the domain.
//!
//! Requests refuse unknown fields. Passwords are accepted and never returned. Timestamps are
//! RFC 3339 in UTC.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::domain::credentials::CredentialState;
use crate::domain::{
    CustomerFields, DeviceSettings, FirmwareRule, Host, Language, LineAccount, Secret, SettingRule,
    TenantSettings, TimeZone, Transport, Vendor, Violation,
};
use crate::store::{
    AuditEntry, CustomerRecord, DeviceStatus, DeviceView, Millis, PartnerRecord, TenantRecord,
    TokenRecord,
};

/// RFC 3339 time of a store timestamp.
pub fn time(ms: Millis) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses an RFC 3339 time into store milliseconds.
pub fn parse_time(field: &str, s: &str) -> Result<Millis, ApiError> {
    let t = ::time::OffsetDateTime::parse(s, &::time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "{field}: {s:?} is not an RFC 3339 time (like 2026-11-28T09:30:00Z or 2026-11-28T10:30:00+01:00): {e}"
            ))
        })?;
    // Nothing in the store is older than 1970: an earlier bound means the same as 1970.
    let ms = (t.unix_timestamp_nanos() / 1_000_000).max(0);
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// A MAC in any notation the API accepts: 12 hex digits, bare or separated by `:` or `-`
/// every 2, or by `.` every 4. Documentation only: requests carry the MAC as text.
pub struct MacText;

/// The MAC notations [`crate::domain::Mac::parse`] accepts, as a JSON Schema pattern.
pub const MAC_PATTERN: &str = r"^([0-9A-Fa-f]{12}|[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{4}(\.[0-9A-Fa-f]{4}){2})$";

/// A tenant name: a DNS label. Documentation only: requests carry the name as text.
pub struct TenantNameText;

/// The labels [`crate::domain::TenantName::parse`] accepts, as a JSON Schema pattern.
pub const TENANT_PATTERN: &str = r"^[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?$";

fn text_schema(pattern: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

impl utoipa::PartialSchema for MacText {
    fn schema() -> RefOr<Schema> {
        text_schema(MAC_PATTERN, "A MAC in any usual notation")
    }
}

impl ToSchema for MacText {}

impl utoipa::PartialSchema for TenantNameText {
    fn schema() -> RefOr<Schema> {
        text_schema(TENANT_PATTERN, "A tenant name (a DNS label)")
    }
}

impl ToSchema for TenantNameText {}

/// `POST /partners`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerIn {
    /// Unique partner name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

/// A partner.
#[derive(Serialize, ToSchema)]
pub struct PartnerOut {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Creation time.
    pub created_at: String,
}

impl From<PartnerRecord> for PartnerOut {
    fn from(p: PartnerRecord) -> Self {
        Self {
            id: p.id,
            name: p.name,
            created_at: time(p.created_at),
        }
    }
}

/// A token. `token` is present only in the answer that created it.
#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    /// Id (for revocation).
    pub id: i64,
    /// The token itself: shown once, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Public part of the token, to tell tokens apart.
    pub key_id: String,
    /// What the partner calls it.
    pub name: Option<String>,
    /// `read_write`, or `read_only` (only GET requests).
    pub scope: TokenScope,
    /// Creation time.
    pub created_at: String,
    /// When it stops working, `null`: never.
    pub expires_at: Option<String>,
    /// When it was last accepted, to the minute; `null`: never used.
    pub last_used_at: Option<String>,
    /// Revocation time.
    pub revoked_at: Option<String>,
}

impl TokenOut {
    /// Describes a stored token.
    pub fn from_record(t: TokenRecord, token: Option<String>) -> Self {
        Self {
            id: t.id,
            token,
            key_id: t.key_id,
            name: t.name,
            scope: if t.read_only {
                TokenScope::ReadOnly
            } else {
                TokenScope::ReadWrite
            },
            created_at: time(t.created_at),
            expires_at: t.expires_at.map(time),
            last_used_at: t.last_used_at.map(time),
            revoked_at: t.revoked_at.map(time),
        }
    }
}

/// What a token may do.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Everything its partner may do.
    #[default]
    ReadWrite,
    /// Only reads (GET): any other method answers 403 `read_only_token`.
    ReadOnly,
}

/// A token to issue.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// What to call it (1–64 printable characters), e.g. the system that will use it.
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
    /// What it may do (default `read_write`).
    pub scope: Option<TokenScope>,
    /// When it stops working (RFC 3339, any offset, in the future); default: never.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

impl TokenIn {
    /// The token to store for `issued`, or why these settings cannot be.
    pub fn into_new(
        self,
        issued: &super::auth::IssuedToken,
    ) -> Result<crate::store::NewToken, ApiError> {
        use crate::domain::{SettingRule, Violation};
        if let Some(name) = &self.name {
            let rule = match name.chars().count() {
                0 => Some(Violation::new("name", SettingRule::Empty)),
                65.. => Some(Violation::new("name", SettingRule::TooLong).max(64)),
                _ if name.chars().any(char::is_control) => {
                    Some(Violation::new("name", SettingRule::ControlCharacter))
                }
                _ => None,
            };
            if let Some(violation) = rule {
                return Err(ApiError::setting(
                    violation,
                    "name must be 1-64 printable characters",
                ));
            }
        }
        let expires_at = self
            .expires_at
            .map(|t| parse_time("expires_at", &t))
            .transpose()?;
        if expires_at.is_some_and(|e| e <= crate::store::now_millis()) {
            return Err(ApiError::setting(
                Violation::new("expires_at", SettingRule::Future),
                "expires_at must be in the future",
            ));
        }
        Ok(crate::store::NewToken {
            key_id: issued.key_id.clone(),
            secret_hash: issued.secret_hash.to_vec(),
            name: self.name,
            expires_at,
            read_only: self.scope == Some(TokenScope::ReadOnly),
        })
    }
}

/// A customer (request and response).
#[derive(Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CustomerIn {
    /// Company name.
    #[schema(min_length = 1, max_length = 200)]
    pub company: String,
    /// Contact person.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub contact: Option<String>,
    /// Postal address.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 500)]
    pub address: Option<String>,
    /// Phone number: digits, spaces and `+ - ( ) . /`.
    #[serde(default)]
    #[schema(pattern = r"^[0-9 +\-()./]{1,50}$")]
    pub phone: Option<String>,
    /// E-mail address.
    #[serde(default)]
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: Option<String>,
}

impl CustomerIn {
    /// The validated domain fields.
    pub fn into_fields(self) -> Result<CustomerFields, ApiError> {
        let fields = CustomerFields {
            company: self.company,
            contact: self.contact,
            address: self.address,
            phone: self.phone,
            email: self.email,
        };
        fields.validate()?;
        Ok(fields)
    }
}

/// A SIP transport, as the API writes and documents it (also accepted in any case).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the values; requests carry the name as text
pub enum TransportName {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS.
    Tls,
}

/// How a tenant's phones authenticate, as the API documents it.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the values; requests carry the name as text
pub enum PhoneAuthName {
    /// Per-device credentials bound at the first fetch inside the enrolment window.
    Enrolment,
    /// The MAC alone (weak; for trials).
    Mac,
}

/// `PATCH /customers/{id}`: the fields to change. A field left out keeps its value; an
/// optional field sent as `null` is cleared (the company cannot be).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    /// Company name (required, so never cleared: left out or `null`, it keeps its value).
    #[schema(min_length = 1, max_length = 200)]
    pub company: Option<String>,
    /// Contact person (`null` clears it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200)]
    pub contact: Option<Option<String>>,
    /// Postal address (`null` clears it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 500)]
    pub address: Option<Option<String>>,
    /// Phone number: digits, spaces and `+ - ( ) . /` (`null` clears it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, pattern = r"^[0-9 +\-()./]{1,50}$")]
    pub phone: Option<Option<String>>,
    /// E-mail address (`null` clears it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 3, max_length = 254, format = Email)]
    pub email: Option<Option<String>>,
}

/// A field a patch names: `null` is `Some(None)` (clear it), where a field left out is `None`
/// (keep it) by `#[serde(default)]`; serde alone reads both as `None`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A customer.
#[derive(Serialize, ToSchema)]
pub struct CustomerOut {
    /// Id.
    pub id: i64,
    /// Company name.
    pub company: String,
    /// Contact person.
    pub contact: Option<String>,
    /// Postal address.
    pub address: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Creation time.
    pub created_at: String,
}

impl From<CustomerRecord> for CustomerOut {
    fn from(c: CustomerRecord) -> Self {
        Self {
            id: c.id,
            company: c.fields.company,
            contact: c.fields.contact,
            address: c.fields.address,
            phone: c.fields.phone,
            email: c.fields.email,
            created_at: time(c.created_at),
        }
    }
}

/// A supported vendor, as the API writes and documents it (also accepted in any case).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the values; requests carry the name as text
pub enum VendorName {
    /// Yealink.
    Yealink,
    /// Snom.
    Snom,
    /// Gigaset.
    Gigaset,
}

/// A firmware rule: phones of this vendor and model get this image.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct FirmwareIn {
    /// `yealink`, `snom` or `gigaset`.
    #[schema(value_type = VendorName)]
    pub vendor: String,
    /// Model as the phone's User-Agent names it (`T46S`, `D785`, `N870 IP PRO`).
    pub model: String,
    /// Version of the image.
    pub version: String,
    /// http(s) URL of the image.
    pub url: String,
}

/// Every setting a tenant's phones receive. On `POST` absent fields take their defaults; on
/// `PATCH` absent fields stay as they are.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TenantIn {
    /// DNS label, unique across the service (POST only; a tenant cannot be renamed).
    #[schema(value_type = Option<TenantNameText>)]
    pub name: Option<String>,
    /// Id of one of the partner's customers.
    pub customer: Option<i64>,
    /// Registrar host or IP (required on POST).
    pub sip_server: Option<String>,
    /// Registrar port (default: 5060, or 5061 for TLS).
    #[schema(minimum = 1, maximum = 65535)]
    pub sip_port: Option<u16>,
    /// `udp` (default), `tcp` or `tls`.
    #[schema(value_type = Option<TransportName>)]
    pub transport: Option<String>,
    /// Registration expiry, seconds (60–86400, default 3600).
    #[schema(minimum = 60, maximum = 86400)]
    pub expiry_seconds: Option<u32>,
    /// NAT keep-alive interval, seconds (5–3600, default 30).
    #[schema(minimum = 5, maximum = 3600)]
    pub keepalive_seconds: Option<u32>,
    /// NTP server (default pool.ntp.org).
    pub ntp_server: Option<String>,
    /// IANA time zone (default Etc/UTC).
    pub timezone: Option<String>,
    /// ISO 639-1 language (default en).
    pub language: Option<String>,
    /// Re-check interval, minutes (5–10080, default 1440).
    #[schema(minimum = 5, maximum = 10080)]
    pub recheck_minutes: Option<u32>,
    /// Firmware policy: replaces the whole list.
    pub firmware: Option<Vec<FirmwareIn>>,
    /// Extra raw settings per vendor (`{"yealink": {"key": "value"}}`): replaces the whole map.
    pub vendor_keys: Option<BTreeMap<String, BTreeMap<String, String>>>,
    /// How phones authenticate: `enrolment` (default: the first fetch inside a claim's
    /// enrolment window binds the phone to per-device credentials; Gigaset phones use their
    /// MAC-ID) or `mac` (weak: anyone who knows a MAC gets its config; for trials).
    #[schema(value_type = Option<PhoneAuthName>)]
    pub phone_auth: Option<String>,
    /// Networks (CIDR, e.g. `198.51.100.0/24`) phones may enrol from: the customer's
    /// offices. Empty or absent: anywhere. Replaces the whole list.
    pub enrolment_networks: Option<Vec<String>>,
    /// Serve device configs (they carry SIP passwords) over the plain-HTTP listener too
    /// (default false). Credentials are never issued over plain HTTP.
    pub allow_plain_http: Option<bool>,
}

/// Parses a list of networks written as CIDR, naming the field (and the entry) in the error.
pub fn networks(field: &str, list: Vec<String>) -> Result<Vec<crate::domain::Network>, ApiError> {
    list.iter()
        .enumerate()
        .map(|(i, n)| {
            n.trim().parse().map_err(|e| {
                ApiError::setting(
                    Violation::new(format!("{field}[{i}]"), SettingRule::Cidr),
                    format!("{field}: {e}"),
                )
            })
        })
        .collect()
}

/// A refusal of `field` by `rule`, with the English message `message`.
fn refuse(
    field: impl Into<String>,
    rule: SettingRule,
    message: impl std::fmt::Display,
) -> ApiError {
    ApiError::setting(Violation::new(field, rule), message)
}

impl TenantIn {
    /// Applies the given fields over `base` and validates the result.
    pub fn apply_to(self, mut s: TenantSettings) -> Result<TenantSettings, ApiError> {
        if let Some(v) = self.sip_server {
            s.sip_server = Some(Host::parse(&v).map_err(|e| {
                refuse("sip_server", SettingRule::Host, format!("sip_server: {e}"))
            })?);
        }
        if let Some(v) = self.sip_port {
            s.sip_port = Some(v);
        }
        if let Some(v) = self.transport {
            s.transport = match v.to_ascii_lowercase().as_str() {
                "udp" => Transport::Udp,
                "tcp" => Transport::Tcp,
                "tls" => Transport::Tls,
                _ => {
                    return Err(refuse(
                        "transport",
                        SettingRule::Choice,
                        format!("transport: {v:?} is not udp, tcp or tls"),
                    ))
                }
            };
        }
        if let Some(v) = self.expiry_seconds {
            s.expiry_seconds = v;
        }
        if let Some(v) = self.keepalive_seconds {
            s.keepalive_seconds = v;
        }
        if let Some(v) = self.ntp_server {
            s.ntp_server = Host::parse(&v)
                .map_err(|e| refuse("ntp_server", SettingRule::Host, format!("ntp_server: {e}")))?;
        }
        if let Some(v) = self.timezone {
            s.timezone =
                TimeZone::parse(&v).map_err(|e| refuse("timezone", SettingRule::TimeZone, e))?;
        }
        if let Some(v) = self.language {
            s.language =
                Language::parse(&v).map_err(|e| refuse("language", SettingRule::Language, e))?;
        }
        if let Some(v) = self.recheck_minutes {
            s.recheck_minutes = v;
        }
        if let Some(rules) = self.firmware {
            s.firmware = rules
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    Ok(FirmwareRule {
                        vendor: r.vendor.parse::<Vendor>().map_err(|e| {
                            refuse(
                                format!("firmware[{i}]"),
                                SettingRule::Vendor,
                                format!("firmware: {e}"),
                            )
                        })?,
                        model: r.model,
                        version: r.version,
                        url: r.url,
                    })
                })
                .collect::<Result<_, ApiError>>()?;
        }
        if let Some(mode) = self.phone_auth {
            s.phone_auth = match mode.to_ascii_lowercase().as_str() {
                "mac" => crate::domain::PhoneAuth::Mac,
                "enrolment" | "enrollment" => crate::domain::PhoneAuth::Enrolment,
                "mtls" => {
                    return Err(refuse(
                        "phone_auth",
                        SettingRule::MtlsNotOffered,
                        "phone_auth: mtls is not offered: no phone vendor documents where its \
                         factory certificate names the MAC (README, \"Who may fetch a config\"); \
                         use enrolment with enrolment_networks",
                    ))
                }
                _ => {
                    return Err(refuse(
                        "phone_auth",
                        SettingRule::Choice,
                        format!("phone_auth: {mode:?} is not mac or enrolment"),
                    ))
                }
            };
        }
        if let Some(list) = self.enrolment_networks {
            s.enrolment_networks = networks("enrolment_networks", list)?;
        }
        if let Some(v) = self.allow_plain_http {
            s.allow_plain_http = v;
        }
        if let Some(keys) = self.vendor_keys {
            s.vendor_keys = keys
                .into_iter()
                .map(|(v, k)| {
                    let vendor = v.parse::<Vendor>().map_err(|e| {
                        refuse(
                            format!("vendor_keys.{v}"),
                            SettingRule::Vendor,
                            format!("vendor_keys: {e}"),
                        )
                    })?;
                    Ok((vendor, k))
                })
                .collect::<Result<_, ApiError>>()?;
        }
        crate::vendors::validate_tenant(&s)?;
        Ok(s)
    }
}

/// A tenant instance and its settings.
#[derive(Serialize, ToSchema)]
pub struct TenantOut {
    /// DNS label.
    pub name: String,
    /// Customer id.
    pub customer: Option<i64>,
    /// Registrar.
    pub sip_server: Option<String>,
    /// Registrar port phones use.
    pub sip_port: u16,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// Registration expiry, seconds.
    pub expiry_seconds: u32,
    /// NAT keep-alive interval, seconds.
    pub keepalive_seconds: u32,
    /// NTP server.
    pub ntp_server: String,
    /// IANA time zone.
    pub timezone: String,
    /// ISO 639-1 language.
    pub language: String,
    /// Re-check interval, minutes.
    pub recheck_minutes: u32,
    /// Firmware policy.
    pub firmware: Vec<FirmwareIn>,
    /// Raw vendor settings.
    pub vendor_keys: BTreeMap<String, BTreeMap<String, String>>,
    /// `enrolment` or `mac`.
    pub phone_auth: String,
    /// Networks phones may enrol from (empty: anywhere).
    pub enrolment_networks: Vec<String>,
    /// Whether device configs are also served over plain HTTP.
    pub allow_plain_http: bool,
    /// Warnings about these settings (e.g. that `phone_auth: mac` is weak).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// How its devices stand: in the tenant's own answer, and in the list with `counts=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<TenantCountsOut>,
}

/// How a tenant's devices stand.
#[derive(Serialize, ToSchema, Default)]
pub struct TenantCountsOut {
    /// Devices claimed.
    pub devices: u64,
    /// Of them, never served a config.
    pub never_seen: u64,
    /// Of them, bound to their own provisioning credentials (`phone_auth.state` `enrolled`).
    pub enrolled: u64,
    /// Of them, whose last attempt to authenticate failed after their last served fetch.
    pub failing_authentication: u64,
}

impl From<crate::store::TenantCounts> for TenantCountsOut {
    fn from(c: crate::store::TenantCounts) -> Self {
        Self {
            devices: c.devices,
            never_seen: c.never_seen,
            enrolled: c.enrolled,
            failing_authentication: c.failing_authentication,
        }
    }
}

impl From<TenantRecord> for TenantOut {
    fn from(t: TenantRecord) -> Self {
        let s = t.settings;
        let warnings = tenant_warnings(&s);
        Self {
            name: t.name.to_string(),
            customer: t.customer,
            sip_server: s.sip_server.as_ref().map(ToString::to_string),
            sip_port: s.effective_sip_port(),
            transport: s.transport.as_str().to_owned(),
            expiry_seconds: s.expiry_seconds,
            keepalive_seconds: s.keepalive_seconds,
            ntp_server: s.ntp_server.to_string(),
            timezone: s.timezone.to_string(),
            language: s.language.to_string(),
            recheck_minutes: s.recheck_minutes,
            firmware: s
                .firmware
                .into_iter()
                .map(|r| FirmwareIn {
                    vendor: r.vendor.to_string(),
                    model: r.model,
                    version: r.version,
                    url: r.url,
                })
                .collect(),
            vendor_keys: s
                .vendor_keys
                .into_iter()
                .map(|(v, k)| (v.to_string(), k))
                .collect(),
            phone_auth: s.phone_auth.as_str().to_owned(),
            enrolment_networks: s
                .enrolment_networks
                .iter()
                .map(ToString::to_string)
                .collect(),
            allow_plain_http: s.allow_plain_http,
            counts: None,
            warnings,
        }
    }
}

/// What a partner should know about a tenant's settings.
fn tenant_warnings(s: &TenantSettings) -> Vec<String> {
    let mut warnings = Vec::new();
    if s.phone_auth == crate::domain::PhoneAuth::Mac {
        warnings.push("phone_auth is mac: anyone who knows or guesses a device's MAC gets its configuration, SIP passwords included; use it for trials only".to_owned());
    }
    if s.allow_plain_http {
        warnings.push("allow_plain_http: device configs, SIP passwords included, are also served in clear over plain HTTP".to_owned());
    }
    warnings
}

/// One SIP account to write into the phone.
#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct LineIn {
    /// SIP user.
    pub user: String,
    /// Authentication user, when it differs.
    #[serde(default)]
    pub auth_user: Option<String>,
    /// SIP password (write-only).
    pub password: String,
    /// Name shown on the phone.
    #[serde(default)]
    pub display_name: Option<String>,
}

impl From<LineIn> for LineAccount {
    fn from(l: LineIn) -> Self {
        LineAccount {
            user: l.user,
            auth_user: l.auth_user,
            password: Secret::new(l.password),
            display_name: l.display_name,
        }
    }
}

/// A SIP account as returned: never the password.
#[derive(Serialize, ToSchema)]
pub struct LineOut {
    /// SIP user.
    pub user: String,
    /// Authentication user.
    pub auth_user: Option<String>,
    /// Name shown on the phone.
    pub display_name: Option<String>,
    /// Always true: a password is stored (it is never returned).
    pub has_password: bool,
}

/// `POST /devices`: claim a MAC for one of the partner's tenants.
#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct DeviceIn {
    /// MAC in any usual notation.
    #[schema(value_type = MacText)]
    pub mac: String,
    /// Tenant name.
    #[schema(value_type = TenantNameText)]
    pub tenant: String,
    /// The 4 characters printed on a Gigaset label (required for Gigaset).
    #[serde(default)]
    pub claim_code: Option<String>,
    /// Name shown on the phone.
    #[serde(default)]
    pub display_name: Option<String>,
    /// SIP accounts, line 1 first.
    #[serde(default)]
    pub lines: Vec<LineIn>,
    /// Hours the enrolment window stays open (default 168 = 7 days, at most 2160): in tenants
    /// with `phone_auth: enrolment`, the first fetch inside it binds the phone.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2160)]
    pub enrolment_hours: Option<u32>,
    /// Networks (CIDR) this phone may enrol from; replaces its tenant's list. Empty: the
    /// tenant's list decides.
    #[serde(default)]
    pub enrolment_networks: Vec<String>,
}

/// Checks per-device settings for a device of `vendor`: the domain's rules, then what the
/// vendor's formats can carry.
pub fn device_settings(
    vendor: Vendor,
    display_name: Option<String>,
    lines: Vec<LineIn>,
    enrolment_networks: Vec<String>,
) -> Result<DeviceSettings, ApiError> {
    let settings = DeviceSettings {
        display_name,
        lines: lines.into_iter().map(Into::into).collect(),
        enrolment_networks: networks("enrolment_networks", enrolment_networks)?,
    };
    checked_device_settings(vendor, settings)
}

/// Checks assembled per-device settings for a device of `vendor`.
pub fn checked_device_settings(
    vendor: Vendor,
    settings: DeviceSettings,
) -> Result<DeviceSettings, ApiError> {
    crate::vendors::validate_device(vendor, &settings)?;
    Ok(settings)
}

/// `PATCH /devices/{mac}`: move to another tenant and/or replace per-device settings.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    /// Move the device to this tenant (one of the partner's).
    #[schema(value_type = Option<TenantNameText>)]
    pub tenant: Option<String>,
    /// New display name (kept when absent; an empty one removes it).
    pub display_name: Option<String>,
    /// New SIP accounts (replace the old ones; passwords must be given again).
    pub lines: Option<Vec<LineIn>>,
    /// New enrolment networks (CIDR; replaces the list, kept when absent).
    pub enrolment_networks: Option<Vec<String>>,
}

/// The most MACs one `POST /devices/bulk` may name.
pub const BULK_MAX: usize = 10_000;

/// What `POST /devices/bulk` does with each device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BulkActionIn {
    /// Release each device (as `DELETE /devices/{mac}`).
    Release,
    /// Move each device to `tenant` (as `PATCH /devices/{mac}` with a tenant).
    Move,
}

/// `POST /devices/bulk`: release or move many of the partner's devices at once.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkIn {
    /// `release` or `move`.
    pub action: BulkActionIn,
    /// The devices' MACs, any notation, at most 10,000. A malformed one is refused on its
    /// own; one named twice is changed once.
    #[schema(max_items = 10000)]
    pub macs: Vec<String>,
    /// The target tenant (one of the partner's): required for `move`, refused for `release`.
    #[schema(value_type = Option<TenantNameText>)]
    pub tenant: Option<String>,
}

/// How one MAC of a bulk change ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BulkOutcomeOut {
    /// Released: its phone gets nothing on its next fetch.
    Released,
    /// Moved to the target tenant.
    Moved,
    /// Nothing to do: already in the target tenant, or named earlier in the request.
    Unchanged,
    /// Refused (see `code`); nothing changed for this MAC.
    Refused,
}

/// Why a MAC of a bulk change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkRefusalCode {
    /// Not a MAC in any notation.
    InvalidMac,
    /// Not claimed, or not yours (indistinguishable).
    NotFound,
}

/// One MAC's result.
#[derive(Serialize, ToSchema)]
pub struct BulkRowOut {
    /// The MAC as given.
    pub mac: String,
    /// What happened.
    pub outcome: BulkOutcomeOut,
    /// Why, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<BulkRefusalCode>,
}

/// Results of a bulk change, one per MAC in the order given.
#[derive(Serialize, ToSchema)]
pub struct BulkOut {
    /// MACs released, moved or unchanged.
    pub applied: usize,
    /// MACs refused.
    pub refused: usize,
    /// Per-MAC results, in request order.
    pub results: Vec<BulkRowOut>,
}

/// `POST /devices/{mac}/enrolment`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentIn {
    /// Hours the window stays open (default 168 = 7 days, at most 2160).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2160)]
    pub hours: Option<u32>,
}

/// What the device fetched last.
#[derive(Serialize, ToSchema)]
pub struct StatusOut {
    /// When.
    pub last_seen: String,
    /// Source address.
    pub source: String,
    /// User-Agent.
    pub user_agent: String,
    /// Model it reported.
    pub model: Option<String>,
    /// Firmware it reported.
    pub firmware: Option<String>,
    /// File kind (`device`, `common`, `model`, …).
    pub last_file: String,
    /// Outcome (`served`, `vendor_mismatch`, …).
    pub last_outcome: String,
}

impl From<DeviceStatus> for StatusOut {
    fn from(s: DeviceStatus) -> Self {
        Self {
            last_seen: time(s.last_seen),
            source: s.source,
            user_agent: s.user_agent,
            model: s.model,
            firmware: s.firmware,
            last_file: s.last_file,
            last_outcome: s.last_outcome,
        }
    }
}

/// A claimed device.
#[derive(Serialize, ToSchema)]
pub struct DeviceOut {
    /// MAC, 12 lower-case hex digits.
    pub mac: String,
    /// Vendor.
    pub vendor: String,
    /// Tenant name.
    pub tenant: String,
    /// Display name.
    pub display_name: Option<String>,
    /// SIP accounts (no passwords).
    pub lines: Vec<LineOut>,
    /// When claimed.
    pub claimed_at: String,
    /// Last change.
    pub updated_at: String,
    /// Last fetch, `null` if it never fetched.
    pub status: Option<StatusOut>,
    /// Phone authentication state.
    pub phone_auth: PhoneAuthOut,
    /// Networks (CIDR) this phone may enrol from; empty: its tenant's list decides.
    pub enrolment_networks: Vec<String>,
    /// The last fetch that presented credentials this device does not have (a phone with
    /// stale credentials, or someone trying its MAC); `null` if none. Never the credentials.
    pub last_auth_failure: Option<AuthFailureOut>,
    /// Where the phone stands with its vendor's redirect service.
    pub redirect: RedirectOut,
}

/// A device's registration with its vendor's redirect service (Yealink RPS, Snom SRAPS,
/// Gigaset's redirect server).
#[derive(Serialize, ToSchema)]
pub struct RedirectOut {
    /// `not_configured` (no redirect service for this vendor when it was claimed), `pending`
    /// (queued), `registered`, `registered_elsewhere` (the vendor holds the MAC for another
    /// provider), or `failed` (with the vendor's reason, and the next try unless the vendor
    /// refused for good).
    #[schema(pattern = "^(not_configured|pending|registered|registered_elsewhere|failed)$")]
    pub state: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// When it is tried next.
    pub next_try_at: Option<String>,
    /// When the state last changed.
    pub updated_at: Option<String>,
}

impl RedirectOut {
    /// The state of a device without one.
    pub fn not_configured() -> Self {
        Self {
            state: "not_configured".into(),
            reason: None,
            next_try_at: None,
            updated_at: None,
        }
    }
}

impl From<crate::store::RedirectStatus> for RedirectOut {
    fn from(s: crate::store::RedirectStatus) -> Self {
        Self {
            state: s.state.as_str().to_owned(),
            reason: s.reason,
            next_try_at: s.next_try_at.map(time),
            updated_at: Some(time(s.updated_at)),
        }
    }
}

/// A failed authentication: when, from where, by what.
#[derive(Serialize, ToSchema)]
pub struct AuthFailureOut {
    /// When.
    pub at: String,
    /// The address the fetch came from.
    pub source: String,
    /// Its User-Agent (control characters removed, at most 256 bytes).
    pub user_agent: String,
}

/// Where a device stands with phone authentication. Never carries a secret.
#[derive(Serialize, ToSchema)]
pub struct PhoneAuthOut {
    /// `enrolled` (bound: the phone authenticated with its per-device credentials),
    /// `enrolment_pending` (credentials issued, not used yet: while the window is open, the
    /// phone may be issued fresh ones), `compromised` (credentials retired by a rotation were
    /// presented: nothing is served until the enrolment is reopened), `enrolment_open` (the
    /// next fetch binds it), `not_enrolled` (no window, no credentials: reopen it), or
    /// `label_code` (Gigaset: authenticates with its MAC-ID).
    pub state: String,
    /// End of the enrolment window, when open.
    pub enrolment_until: Option<String>,
    /// New credentials will be handed out at the next authenticated fetch.
    pub rotation_pending: bool,
    /// How the current credentials were issued, if the phone enrolled.
    pub enrolment: Option<EnrolmentOut>,
}

/// How a phone enrolled: when, from where, by what.
#[derive(Serialize, ToSchema)]
pub struct EnrolmentOut {
    /// When its credentials were issued.
    pub at: String,
    /// The address the fetch came from.
    pub source: Option<String>,
    /// The fetch's User-Agent (control characters removed, at most 256 bytes).
    pub user_agent: String,
}

impl From<DeviceView> for DeviceOut {
    fn from(v: DeviceView) -> Self {
        Self {
            mac: v.record.mac.to_string(),
            vendor: v.record.vendor.to_string(),
            tenant: v.tenant_name.to_string(),
            display_name: v.record.settings.display_name,
            lines: v
                .record
                .settings
                .lines
                .into_iter()
                .map(|l| LineOut {
                    user: l.user,
                    auth_user: l.auth_user,
                    display_name: l.display_name,
                    has_password: true,
                })
                .collect(),
            claimed_at: time(v.claimed_at),
            updated_at: time(v.updated_at),
            status: v.status.map(Into::into),
            enrolment_networks: v
                .record
                .settings
                .enrolment_networks
                .iter()
                .map(ToString::to_string)
                .collect(),
            redirect: RedirectOut::not_configured(),
            last_auth_failure: v.auth_failure.map(|f| AuthFailureOut {
                at: time(f.at),
                source: f.source,
                user_agent: f.user_agent,
            }),
            phone_auth: PhoneAuthOut {
                state: if v.record.claim_secret.is_some() {
                    "label_code"
                } else if let Some(c) = &v.record.credentials {
                    match c.state() {
                        CredentialState::Bound => "enrolled",
                        CredentialState::Pending => "enrolment_pending",
                        CredentialState::Compromised => "compromised",
                    }
                } else if v
                    .record
                    .enrol_until
                    .is_some_and(|u| u > crate::store::now_millis())
                {
                    "enrolment_open"
                } else {
                    "not_enrolled"
                }
                .to_owned(),
                enrolment_until: v.record.enrol_until.map(time),
                rotation_pending: v.record.credentials.as_ref().is_some_and(|c| c.rotate),
                enrolment: v.enrolment.map(|e| EnrolmentOut {
                    at: time(e.at),
                    source: e.source.map(|s| s.to_string()),
                    user_agent: e.user_agent,
                }),
            },
        }
    }
}

/// A page of devices.
#[derive(Serialize, ToSchema)]
pub struct DeviceList {
    /// The devices, in MAC order.
    pub devices: Vec<DeviceOut>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<String>,
}

/// `POST /devices/import` as JSON.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportIn {
    /// Device rows, each claimed as by `POST /devices`.
    pub devices: Vec<serde_json::Value>,
}

/// One row's result.
#[derive(Serialize, ToSchema)]
pub struct ImportRowOut {
    /// 0-based row (CSV: data rows after the header).
    pub row: usize,
    /// The MAC (normalised when valid).
    pub mac: String,
    /// `created`, `updated` (already claimed by that tenant) or `refused`.
    pub status: String,
    /// Stable reason code when refused.
    pub code: Option<String>,
    /// Reason when refused.
    pub message: Option<String>,
}

/// Results of a bulk import, one per row.
#[derive(Serialize, ToSchema)]
pub struct ImportOut {
    /// Per-row results, in row order.
    pub results: Vec<ImportRowOut>,
    /// Rows applied.
    pub applied: usize,
    /// Rows refused.
    pub refused: usize,
}

/// An audit log entry.
#[derive(Serialize, ToSchema)]
pub struct AuditOut {
    /// Sequence id (pass as `after` to page).
    pub id: i64,
    /// When.
    pub at: String,
    /// Who: `admin`, `cli` or `partner:<id>:<name>`.
    pub actor: String,
    /// From which address.
    pub source: Option<String>,
    /// What (`device.claim`, `device.move`, `device.release`, `tenant.create`, …).
    pub action: String,
    /// Device MAC.
    pub mac: Option<String>,
    /// Tenant name.
    pub tenant: Option<String>,
    /// Details (JSON).
    pub detail: Option<serde_json::Value>,
}

impl From<AuditEntry> for AuditOut {
    fn from(a: AuditEntry) -> Self {
        Self {
            id: a.id,
            at: time(a.at),
            actor: a.actor,
            source: a.source,
            action: a.action,
            mac: a.mac,
            tenant: a.tenant,
            detail: a.detail.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditList {
    /// Entries, oldest first.
    pub entries: Vec<AuditOut>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<i64>,
}
