//! The one mapping from everything that can go wrong in the partner API to a response.
//!
//! Every error body is `{"error": {"code": "...", "message": "..."}}` with a stable `code`.
//! Internal error text never reaches a partner: the store's errors are logged here and answered
//! with a generic message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::partner::InvalidField;
use crate::domain::{InvalidDeviceSetting, InvalidSetting, Violation};

/// Why a partner API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, a malformed one, an unknown or revoked one.
    #[error("missing or invalid API token")]
    Unauthenticated,
    /// A partner token on an admin route.
    #[error("this route is for the administrator")]
    AdminOnly,
    /// An admin token on a partner route.
    #[error("this route needs a partner token")]
    PartnerOnly,
    /// A read-only token on a request that changes something.
    #[error("this token may only read (GET); use a read_write token to change anything")]
    ReadOnlyToken,
    /// A method the route does not have.
    #[error("this route does not take {0}")]
    MethodNotAllowed(String),
    /// Not there, or not this partner's: the two are indistinguishable on purpose.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Malformed JSON or CSV, wrong types, unknown fields, bad query parameters.
    #[error("{0}")]
    BadRequest(String),
    /// A body over the size limit.
    #[error("request body too large (limit {0} bytes)")]
    TooLarge(usize),
    /// A well-formed request whose values are not acceptable.
    #[error("{message}")]
    Invalid {
        /// Stable code (`invalid_setting`, `unknown_customer`, …).
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A tenant or device setting (or a customer field) refused by its rules: the English
    /// `message`, and which setting and rule (`detail` in the body) for clients that explain it
    /// in their own words.
    #[error("{message}")]
    Setting {
        /// `invalid_setting` (a tenant or device setting) or `invalid_field` (a customer's).
        code: &'static str,
        /// The setting and the rule it breaks.
        violation: Violation,
        /// What is wrong, in English.
        message: String,
    },
    /// A MAC refused by the claim rules.
    #[error("{mac} could not be registered: {reason}")]
    CouldNotRegister {
        /// The MAC as given.
        mac: String,
        /// Stable code of the rule (`invalid_mac`, `unsupported_vendor`, …).
        code: &'static str,
        /// Why.
        reason: String,
    },
    /// The MAC is claimed by another tenant.
    #[error("{0} is already in use")]
    AlreadyInUse(String),
    /// The vendor's redirect service holds the MAC for another provider (asked before the
    /// claim, when the operator turned that check on). Who is never said.
    #[error(
        "the MAC address {0} could not be registered: the phone is provisioned by another provider"
    )]
    RegisteredElsewhere(String),
    /// The tenant name is taken.
    #[error("tenant name {0:?} is not available")]
    NameNotAvailable(String),
    /// The device has no credentials to rotate.
    #[error("{0} is not enrolled yet: there is nothing to rotate (its next fetch inside an open enrolment window binds it)")]
    NotEnrolled(String),
    /// A portal user with this e-mail exists already.
    #[error("a user with the e-mail {0:?} exists already")]
    EmailTaken(String),
    /// The tenant still claims devices.
    #[error("tenant {0:?} still has devices; move or release them first")]
    TenantHasDevices(String),
    /// The store cannot be reached; retry later. Reads answer this too: the partner API
    /// never serves partner data from a node's cache, which could be stale during an outage.
    #[error("the database is unreachable, so this request could not be completed; phones are still served; retry after the number of seconds in Retry-After")]
    Unavailable,
    /// A bug or corrupt data; details are in the server's log.
    #[error("internal error")]
    Internal,
}

/// The error body.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// For `could_not_be_registered`: which rule refused the MAC (`invalid_mac`,
    /// `unsupported_vendor`, `invalid_claim_code`, `claim_code_mismatch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `invalid_setting` and `invalid_field`: which setting and which rule, so a client
    /// can explain the refusal in its user's language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<SettingDetail>,
}

/// Which setting was refused and by which rule.
#[derive(Serialize, ToSchema)]
pub struct SettingDetail {
    /// The setting as the API names it: `sip_port`, `firmware[1]`, `enrolment_networks[0]`,
    /// `vendor_keys.yealink.voice.tone.country`, `lines[0].password`.
    pub field: String,
    /// The rule broken, a stable code: `required`, `range` (`min`–`max`), `at_least` (`min`),
    /// `at_most` (`max` items), `number`, `host`, `choice`, `mtls_not_offered`, `time_zone`,
    /// `language`, `vendor`, `firmware_line`, `firmware_model`, `firmware_version`,
    /// `firmware_url`, `firmware_duplicate`, `firmware_version_form`, `vendor_key_line`,
    /// `key_name`, `yealink_key_name`, `snom_key_name`, `key_value`, `control_character`,
    /// `charset` (`character`), `null_value`, `text`, `cidr`, `rename`; for a customer's
    /// fields `empty`, `too_long` (`max` characters), `email`, `phone_number`; for an API
    /// token's `name` `empty`, `too_long`, `control_character`, and its `expires_at` `future`.
    #[schema(example = "range")]
    pub rule: String,
    /// The smallest value accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    /// The largest value (or number of items) accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// The vendor and models whose limit it is (`gigaset N510/N720`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<String>,
    /// The character refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub character: Option<String>,
}

impl From<&Violation> for SettingDetail {
    fn from(v: &Violation) -> Self {
        Self {
            field: v.field.clone(),
            rule: v.rule.code().to_owned(),
            min: v.min,
            max: v.max,
            models: v.models.map(str::to_owned),
            character: v.character.map(String::from),
        }
    }
}

impl ApiError {
    /// A refused tenant or device setting with its English message.
    pub fn setting(violation: Violation, message: impl std::fmt::Display) -> Self {
        ApiError::Setting {
            code: "invalid_setting",
            violation,
            message: message.to_string(),
        }
    }
}

impl From<InvalidSetting> for ApiError {
    fn from(e: InvalidSetting) -> Self {
        ApiError::setting(e.violation(), e)
    }
}

impl From<InvalidField> for ApiError {
    fn from(e: InvalidField) -> Self {
        ApiError::Setting {
            code: "invalid_field",
            violation: e.violation(),
            message: e.to_string(),
        }
    }
}

impl From<InvalidDeviceSetting> for ApiError {
    fn from(e: InvalidDeviceSetting) -> Self {
        ApiError::setting(e.violation(), e)
    }
}

impl ApiError {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::AdminOnly | ApiError::PartnerOnly | ApiError::ReadOnlyToken => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid { .. }
            | ApiError::Setting { .. }
            | ApiError::CouldNotRegister { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::AlreadyInUse(_)
            | ApiError::RegisteredElsewhere(_)
            | ApiError::NameNotAvailable(_)
            | ApiError::EmailTaken(_)
            | ApiError::TenantHasDevices(_)
            | ApiError::NotEnrolled(_) => StatusCode::CONFLICT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::AdminOnly => "admin_only",
            ApiError::PartnerOnly => "partner_only",
            ApiError::ReadOnlyToken => "read_only_token",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::TooLarge(_) => "body_too_large",
            ApiError::Invalid { code, .. } => code,
            ApiError::Setting { code, .. } => code,
            ApiError::CouldNotRegister { .. } => "could_not_be_registered",
            ApiError::AlreadyInUse(_) => "already_in_use",
            ApiError::RegisteredElsewhere(_) => "registered_elsewhere",
            ApiError::NameNotAvailable(_) => "name_not_available",
            ApiError::EmailTaken(_) => "email_taken",
            ApiError::TenantHasDevices(_) => "tenant_has_devices",
            ApiError::NotEnrolled(_) => "not_enrolled",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal => "internal",
        }
    }
}

impl From<crate::store::Error> for ApiError {
    fn from(e: crate::store::Error) -> Self {
        match e {
            crate::store::Error::Unavailable(reason) => {
                tracing::warn!(%reason, "store unavailable for a partner request");
                ApiError::Unavailable
            }
            other => {
                tracing::error!(error = %other, "store failure on a partner request");
                ApiError::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let reason = match &self {
            ApiError::CouldNotRegister { code, .. } => Some((*code).to_owned()),
            _ => None,
        };
        let detail = match &self {
            ApiError::Setting { violation, .. } => Some(SettingDetail::from(violation)),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
                reason,
                detail,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthenticated => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"zerotouch\""),
                );
            }
            ApiError::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}
