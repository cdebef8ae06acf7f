//! The config preview: what one of the partner's phones will be served, its secrets masked,
//! so a partner can check a phone's settings before it boots. The API owns the port
//! ([`ConfigPreview`]) and the route; whoever serves phones renders (`app` wires it).

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Authenticated;
use super::error::{ApiError, ErrorBody};
use super::{ApiPath, ApiState};
use crate::domain::Mac;
use crate::provisioning::Preview;

/// Renders what a device's phone will be served, as the phones' listener would, with every
/// secret masked.
pub trait ConfigPreview: Send + Sync {
    /// The preview of `path` (the device's own file when `None`) for a phone sending
    /// `user_agent`.
    fn preview(&self, mac: Mac, path: Option<&str>, user_agent: Option<&str>) -> Preview;
}

/// What to preview.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PreviewParams {
    /// The file, as the phone asks for it (`/y000000000066.cfg`, `/snomD785.htm`); default:
    /// the device's own file (`<mac>.cfg` for Yealink, `<MAC>.xml` otherwise).
    #[param(max_length = 512)]
    path: Option<String>,
    /// The phone's User-Agent: its model and firmware choose the template and what it can be
    /// given (default: none, the vendor's generic answer).
    #[param(max_length = 512)]
    user_agent: Option<String>,
}

/// A config as the phone would receive it, with its secrets masked.
#[derive(Serialize, ToSchema)]
pub struct ConfigPreviewOut {
    /// MAC, 12 lower-case hex digits.
    pub mac: String,
    /// The file previewed.
    pub path: String,
    /// Its media type, as served to the phone.
    pub content_type: String,
    /// The file. Every SIP password reads `********`; where the phone would be handed its
    /// provisioning credentials, they read `<issued-at-first-fetch>`.
    pub config: String,
    /// Whether the file carries the phone's provisioning credentials (it is the one that
    /// hands them out: the tenant issues per-device credentials and none are bound yet).
    pub hands_out_credentials: bool,
}

/// A served file's bytes as text: the Latin-1 files of older Gigaset bases are decoded as such.
fn as_text(content_type: &str, body: &[u8]) -> String {
    if content_type.to_ascii_lowercase().contains("iso-8859-1") {
        body.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(body).into_owned()
    }
}

/// What one of the partner's phones will be served: the same recognition, template choice
/// (by model and firmware from the User-Agent) and render as a phone's fetch, with its SIP
/// passwords and provisioning credentials masked. Nothing is recorded: a preview is not a fetch.
#[utoipa::path(get, path = "/api/v1/devices/{mac}/config", tag = "devices",
    params(
        ("mac" = super::wire::MacText, Path, description = "MAC, any notation"),
        PreviewParams
    ),
    responses(
        (status = 200, description = "The config the phone will be served, secrets masked", body = ConfigPreviewOut),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Not claimed (or not yours)", body = ErrorBody),
        (status = 422, description = "Not a file this phone is served (`not_served`), or its model cannot take its settings (`unsupported`)", body = ErrorBody),
    ))]
pub async fn preview_config(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(mac): ApiPath<String>,
    params: Result<Query<PreviewParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ConfigPreviewOut>, ApiError> {
    let partner = caller.partner()?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    for (name, value) in [("path", &p.path), ("user_agent", &p.user_agent)] {
        if value.as_ref().is_some_and(|v| v.len() > 512) {
            return Err(ApiError::BadRequest(format!(
                "{name} is longer than 512 bytes"
            )));
        }
    }
    let mac = Mac::parse(&mac).map_err(|_| ApiError::NotFound("device"))?;
    // Ownership is the store's to say, as for every read: the registry knows no partners.
    state
        .store
        .device_view(Some(partner), mac)
        .await?
        .ok_or(ApiError::NotFound("device"))?;
    let Some(previewer) = &state.preview else {
        return Err(ApiError::Invalid {
            code: "not_served",
            message: "this server does not serve phones, so it has nothing to preview".into(),
        });
    };
    match previewer.preview(mac, p.path.as_deref(), p.user_agent.as_deref()) {
        Preview::Config {
            path,
            content_type,
            body,
            credentials,
        } => Ok(Json(ConfigPreviewOut {
            mac: mac.to_lower_hex(),
            path,
            content_type: content_type.to_owned(),
            config: as_text(content_type, &body),
            hands_out_credentials: credentials,
        })),
        // Claimed in the store but not yet in this node's registry (the change feed is
        // catching up): the same answer as for any device this node cannot serve yet.
        Preview::UnknownDevice => Err(ApiError::NotFound("device")),
        Preview::NotServed(reason) => Err(ApiError::Invalid {
            code: "not_served",
            message: reason,
        }),
        Preview::Unsupported(reason) => Err(ApiError::Invalid {
            code: "unsupported",
            message: format!("this phone would not be served: {reason}"),
        }),
        Preview::RenderFailed => Err(ApiError::Internal),
    }
}

#[cfg(test)]
mod tests {
    use super::as_text;

    #[test]
    fn latin1_files_are_decoded_as_latin1() {
        assert_eq!(
            as_text("text/xml; charset=iso-8859-1", b"Fran\xe7ais"),
            "Français"
        );
        assert_eq!(
            as_text("text/xml; charset=utf-8", "Français".as_bytes()),
            "Français"
        );
    }
}
