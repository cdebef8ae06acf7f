//! The Devices tab: the partner's phones (paged, searched by the beginning of a MAC in any
//! notation, filtered by instance, vendor and never seen), the "+ New phone" form with live
//! checking (`/devices/check`, read by the embedded script), and a phone's page: status, its
//! redirect-service state, the config it will get (secrets masked), editing its lines and
//! display name (passwords never shown back), reopening enrolment, rotating credentials,
//! moving, and releasing after a confirmation. Every action is the partner API's handler with the user as
//! caller, so refusals ("could not be registered" with its reason, "already in use" without a
//! word about the owner) and audit are the API's.
//!
//! Must not know SQL or the claim rules themselves.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Serialize;
use serde_json::json;

use super::csrf_refused;
use super::pages::{error_text, Pages};
use super::session::PortalUser;
use super::PortalState;
use crate::domain::device::MAX_LINES;
use crate::partner_api::check::check_mac;
use crate::partner_api::devices::{
    claim_device, get_device, list_devices, open_enrolment, release_device, rotate_credentials,
    update_device,
};
use crate::partner_api::error::ApiError;
use crate::partner_api::preview::preview_config;
use crate::partner_api::wire::{DeviceIn, DevicePatch, EnrolmentIn, LineIn, LineOut, TenantOut};
use crate::partner_api::{ApiPath, JsonBody, OptionalJsonBody};
use crate::store::Page;

type Fields = Form<HashMap<String, String>>;

/// Devices listed on one page.
const PAGE: usize = 50;

fn text(form: &HashMap<String, String>, name: &str) -> Option<String> {
    form.get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// `/`: the device list.
pub async fn home() -> Redirect {
    Redirect::to("/devices")
}

/// The partner's instance names, for filters and the move menu.
async fn instance_names(state: &PortalState, user: &PortalUser) -> Result<Vec<String>, ApiError> {
    Ok(state
        .api
        .store
        .tenants_of(Some(user.partner()?), Page::all())
        .await?
        .into_iter()
        .map(|t| TenantOut::from(t).name)
        .collect())
}

/// The beginning of a MAC as typed (`80:5E:c0`, `805e-c0`): its hex digits, or `None` if it
/// holds anything but hex digits and separators.
fn mac_fragment(typed: &str) -> Option<String> {
    let typed = typed.trim();
    typed
        .chars()
        .all(|c| c.is_ascii_hexdigit() || ":.- ".contains(c))
        .then(|| {
            typed
                .chars()
                .filter(char::is_ascii_hexdigit)
                .map(|c| c.to_ascii_lowercase())
                .collect()
        })
}

/// The device list with its search and filters.
pub async fn list(
    State(state): State<PortalState>,
    user: PortalUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let search = text(&q, "q");
    let mut params = serde_json::Map::new();
    params.insert("limit".into(), json!(PAGE));
    let mut problem = None;
    if let Some(typed) = &search {
        match mac_fragment(typed) {
            Some(hex) if hex.len() <= 12 => {
                params.insert("mac_contains".into(), json!(hex));
            }
            _ => problem = Some(user.lang.t("mac_invalid").to_owned()),
        }
    }
    for key in ["tenant", "vendor", "after"] {
        if let Some(v) = text(&q, key) {
            params.insert(key.into(), json!(v));
        }
    }
    // A date picker gives `YYYY-MM-DD`: from that day's start (UTC).
    let seen_since = text(&q, "seen_since").filter(|d| {
        d.len() == 10
            && d.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            })
    });
    if let Some(day) = &seen_since {
        params.insert("seen_since".into(), json!(format!("{day}T00:00:00Z")));
    }
    let never_seen = q.get("never_seen").is_some_and(|v| v == "1");
    if never_seen {
        params.insert("never_seen".into(), json!(true));
    }
    let devices = match serde_json::from_value(serde_json::Value::Object(params)) {
        Ok(p) => match list_devices(State(state.api.clone()), user.caller(), Ok(Query(p))).await {
            Ok(Json(list)) => Some(list),
            Err(e) => {
                problem = Some(error_text(user.lang, &e));
                None
            }
        },
        Err(_) => None,
    };
    let instances = match instance_names(&state, &user).await {
        Ok(i) => i,
        Err(e) => return state.pages.api_error(&user, &e),
    };
    let mut c = Pages::context(user.lang, Some(&user), "devices");
    c.insert("instances", &instances);
    c.insert("q", &search);
    c.insert("tenant", &text(&q, "tenant"));
    c.insert("vendor", &text(&q, "vendor"));
    c.insert("never_seen", &never_seen);
    c.insert("seen_since", &seen_since);
    c.insert("problem", &problem);
    c.insert("released", &q.contains_key("released"));
    c.insert(
        "devices",
        &devices.as_ref().map(|d| &d.devices).unwrap_or(&Vec::new()),
    );
    c.insert("next", &devices.and_then(|d| d.next));
    state.pages.render(200, "devices.html", &c)
}

async fn new_page(
    state: &PortalState,
    user: &PortalUser,
    status: u16,
    form: Option<&HashMap<String, String>>,
    error: Option<String>,
) -> Response {
    let instances = match instance_names(state, user).await {
        Ok(i) => i,
        Err(e) => return state.pages.api_error(user, &e),
    };
    let mut c = Pages::context(user.lang, Some(user), "devices");
    c.insert("instances", &instances);
    c.insert("form", &form);
    c.insert("error", &error);
    state.pages.render(status, "device_new.html", &c)
}

/// The "+ New phone" form.
pub async fn new_form(State(state): State<PortalState>, user: PortalUser) -> Response {
    new_page(&state, &user, 200, None, None).await
}

/// Registers (claims) a phone for one of the partner's instances.
pub async fn create(
    State(state): State<PortalState>,
    user: PortalUser,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let body = DeviceIn {
        mac: text(&form, "mac").unwrap_or_default(),
        tenant: text(&form, "tenant").unwrap_or_default(),
        claim_code: text(&form, "claim_code"),
        display_name: text(&form, "display_name"),
        lines: Vec::new(),
        enrolment_hours: None,
        enrolment_networks: Vec::new(),
    };
    match claim_device(State(state.api.clone()), user.caller(), JsonBody(body)).await {
        Ok((_, Json(device))) => {
            Redirect::to(&format!("/devices/{}?created=1", device.mac)).into_response()
        }
        Err(e) => {
            let error = Some(error_text(user.lang, &e));
            new_page(&state, &user, e.status().as_u16(), Some(&form), error).await
        }
    }
}

/// Where a typed MAC stands, for the form's live check: its vendor from the OUI, whether a
/// Gigaset ID is needed, and the claim rules' verdict with its label in the user's language.
pub async fn check(
    State(state): State<PortalState>,
    user: PortalUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut params = serde_json::Map::new();
    params.insert("mac".into(), json!(q.get("mac").map_or("", |m| m.as_str())));
    if let Some(code) = text(&q, "claim_code") {
        params.insert("claim_code".into(), json!(code));
    }
    let Ok(p) = serde_json::from_value(serde_json::Value::Object(params)) else {
        return Json(json!({"state": "invalid_mac"})).into_response();
    };
    match check_mac(State(state.api.clone()), user.caller(), Ok(Query(p))).await {
        Ok(Json(out)) => {
            let mut value = serde_json::to_value(&out).unwrap_or_default();
            let key = format!("state_{}", value["state"].as_str().unwrap_or("invalid_mac"));
            value["label"] = json!(user.lang.t(&key));
            Json(value).into_response()
        }
        Err(e) => (e.status(), Json(json!({"state": "invalid_mac"}))).into_response(),
    }
}

/// A phone's page: status, config preview, actions.
pub async fn page(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(mac): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let shown = Shown {
        created: q.contains_key("created"),
        done: q.contains_key("done"),
        ..Shown::default()
    };
    device_page(&state, &user, &mac, shown).await
}

/// What a phone's page shows besides the phone: a notice, or a refusal with the form as typed.
#[derive(Default)]
struct Shown<'a> {
    status: Option<u16>,
    created: bool,
    done: bool,
    error: Option<String>,
    typed: Option<&'a HashMap<String, String>>,
}

/// One row of the lines form. Never a password: only whether one is stored.
#[derive(Serialize)]
struct LineRow {
    user: String,
    auth_user: String,
    display_name: String,
    has_password: bool,
}

/// The rows of the lines form: the stored lines and one empty row to add a line (up to the
/// most a device may have); after a refusal, the rows as typed, in their places, since an
/// empty password keeps the password of the line in the same place.
fn line_rows(lines: &[LineOut], typed: Option<&HashMap<String, String>>) -> Vec<LineRow> {
    if let Some(form) = typed {
        return (0..=MAX_LINES)
            .take_while(|i| form.contains_key(&format!("line{i}_user")))
            .map(|i| {
                let field = |part: &str| {
                    form.get(&format!("line{i}_{part}"))
                        .cloned()
                        .unwrap_or_default()
                };
                LineRow {
                    user: field("user"),
                    auth_user: field("auth_user"),
                    display_name: field("display_name"),
                    has_password: i < lines.len(),
                }
            })
            .collect();
    }
    let mut rows: Vec<LineRow> = lines
        .iter()
        .map(|l| LineRow {
            user: l.user.clone(),
            auth_user: l.auth_user.clone().unwrap_or_default(),
            display_name: l.display_name.clone().unwrap_or_default(),
            has_password: l.has_password,
        })
        .collect();
    if rows.len() < MAX_LINES {
        rows.push(LineRow {
            user: String::new(),
            auth_user: String::new(),
            display_name: String::new(),
            has_password: false,
        });
    }
    rows
}

async fn device_page(
    state: &PortalState,
    user: &PortalUser,
    mac: &str,
    shown: Shown<'_>,
) -> Response {
    let device = match get_device(
        State(state.api.clone()),
        user.caller(),
        ApiPath(mac.to_owned()),
    )
    .await
    {
        Ok(Json(d)) => d,
        Err(e) => return state.pages.api_error(user, &e),
    };
    let preview = match serde_json::from_value(json!({})) {
        Ok(p) => preview_config(
            State(state.api.clone()),
            user.caller(),
            ApiPath(mac.to_owned()),
            Ok(Query(p)),
        )
        .await
        .ok()
        .map(|Json(p)| p.config),
        Err(_) => None,
    };
    let instances = match instance_names(state, user).await {
        Ok(i) => i,
        Err(e) => return state.pages.api_error(user, &e),
    };
    let lang = user.lang;
    let rows = line_rows(&device.lines, shown.typed);
    let display_name = match shown.typed {
        Some(form) => form.get("display_name").cloned().unwrap_or_default(),
        None => device.display_name.clone().unwrap_or_default(),
    };
    let networks = match shown.typed {
        Some(form) => form.get("enrolment_networks").cloned().unwrap_or_default(),
        None => device.enrolment_networks.join("\n"),
    };
    let redirect = json!({
        "state": lang.t(&format!("redirect_{}", device.redirect.state)),
        "failed": device.redirect.state == "failed",
        "reason": device.redirect.reason,
        "next_try_at": device.redirect.next_try_at,
        "updated_at": device.redirect.updated_at,
    });
    let auth_state = lang.t(&format!("auth_{}", device.phone_auth.state));
    let mut c = Pages::context(lang, Some(user), "devices");
    c.insert("device", &device);
    c.insert("auth_state", auth_state);
    c.insert("redirect", &redirect);
    c.insert("rows", &rows);
    c.insert("display_name", &display_name);
    c.insert("networks", &networks);
    c.insert("preview", &preview);
    c.insert("instances", &instances);
    c.insert("created", &shown.created);
    c.insert("done", &shown.done);
    c.insert("error", &shown.error);
    state
        .pages
        .render(shown.status.unwrap_or(200), "device.html", &c)
}

/// Why the lines form could not become a change.
#[derive(Debug, thiserror::Error)]
enum EditError {
    /// Not a MAC, or not one of the partner's phones.
    #[error("device not found")]
    NotFound,
    /// The store could not say what the phone has now.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

impl From<EditError> for ApiError {
    fn from(e: EditError) -> Self {
        match e {
            EditError::NotFound => ApiError::NotFound("device"),
            EditError::Store(e) => e.into(),
        }
    }
}

/// The change the lines form asks for, and for each line sent the row it came from (so a
/// refusal names the row the user sees). A row without a SIP user is a line removed; a row
/// without a password keeps the one its line has now.
async fn settings_patch(
    state: &PortalState,
    user: &PortalUser,
    mac: &str,
    form: &HashMap<String, String>,
) -> Result<(DevicePatch, Vec<usize>), EditError> {
    let mac = crate::domain::Mac::parse(mac).map_err(|_| EditError::NotFound)?;
    let partner = user.partner().map_err(|_| EditError::NotFound)?;
    let current = state
        .api
        .store
        .device_view(Some(partner), mac)
        .await?
        .ok_or(EditError::NotFound)?
        .record
        .settings
        .lines;
    let mut lines = Vec::new();
    let mut rows = Vec::new();
    for i in (0..=MAX_LINES).take_while(|i| form.contains_key(&format!("line{i}_user"))) {
        let field = |part: &str| text(form, &format!("line{i}_{part}"));
        let Some(sip_user) = field("user") else {
            continue;
        };
        // Passwords are never sent to the browser, so an empty field means "as it is".
        let password = field("password")
            .or_else(|| current.get(i).map(|l| l.password.expose().to_owned()))
            .unwrap_or_default();
        lines.push(LineIn {
            user: sip_user,
            auth_user: field("auth_user"),
            password,
            display_name: field("display_name"),
        });
        rows.push(i);
    }
    // A form without line rows (not the phone page's) leaves the lines as they are.
    let has_rows = form.contains_key("line0_user");
    let patch = DevicePatch {
        // Sent empty, it removes the display name.
        display_name: form.get("display_name").map(|n| n.trim().to_owned()),
        lines: has_rows.then_some(lines),
        // One network a line; none left means the instance's list applies again.
        enrolment_networks: form.get("enrolment_networks").map(|typed| {
            typed
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        }),
        ..DevicePatch::default()
    };
    Ok((patch, rows))
}

/// A refusal of `lines[k]…` named after the form's row rather than the list sent.
fn in_rows(e: ApiError, rows: &[usize]) -> ApiError {
    match e {
        ApiError::Setting {
            code,
            mut violation,
            message,
        } => {
            let sent = violation
                .field
                .strip_prefix("lines[")
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(k, after)| Some((rows.get(k.parse::<usize>().ok()?)?, after)));
            if let Some((row, after)) = sent {
                violation.field = format!("lines[{row}]{after}");
            }
            ApiError::Setting {
                code,
                violation,
                message,
            }
        }
        other => other,
    }
}

/// Replaces the phone's lines and display name (through `PATCH /api/v1/devices/{mac}`).
pub async fn edit(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(mac): Path<String>,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let result = match settings_patch(&state, &user, &mac, &form).await {
        Ok((patch, rows)) => update_device(
            State(state.api.clone()),
            user.caller(),
            ApiPath(mac.clone()),
            JsonBody(patch),
        )
        .await
        .map_err(|e| in_rows(e, &rows)),
        Err(e) => Err(e.into()),
    };
    match result {
        Err(e @ ApiError::Setting { .. }) => {
            let shown = Shown {
                status: Some(e.status().as_u16()),
                error: Some(error_text(user.lang, &e)),
                typed: Some(&form),
                ..Shown::default()
            };
            device_page(&state, &user, &mac, shown).await
        }
        other => after_action(&state, &user, &mac, other),
    }
}

/// Answers an action on a phone: back to its page, or the refusal.
fn after_action<T>(
    state: &PortalState,
    user: &PortalUser,
    mac: &str,
    result: Result<T, ApiError>,
) -> Response {
    match result {
        Ok(_) => match crate::domain::Mac::parse(mac) {
            Ok(m) => Redirect::to(&format!("/devices/{}?done=1", m.to_lower_hex())).into_response(),
            Err(_) => Redirect::to("/devices").into_response(),
        },
        Err(e) => state.pages.api_error(user, &e),
    }
}

/// Reopens the phone's enrolment window (the default length).
pub async fn reopen(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(mac): Path<String>,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let result = open_enrolment(
        State(state.api.clone()),
        user.caller(),
        ApiPath(mac.clone()),
        OptionalJsonBody(EnrolmentIn::default()),
    )
    .await;
    after_action(&state, &user, &mac, result)
}

/// Asks for new credentials at the phone's next fetch.
pub async fn rotate(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(mac): Path<String>,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let result = rotate_credentials(
        State(state.api.clone()),
        user.caller(),
        ApiPath(mac.clone()),
    )
    .await;
    after_action(&state, &user, &mac, result)
}

/// Moves the phone to another of the partner's instances.
pub async fn move_to(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(mac): Path<String>,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let patch = DevicePatch {
        tenant: text(&form, "tenant"),
        ..DevicePatch::default()
    };
    let result = update_device(
        State(state.api.clone()),
        user.caller(),
        ApiPath(mac.clone()),
        JsonBody(patch),
    )
    .await;
    after_action(&state, &user, &mac, result)
}

/// The confirmation step before a release.
pub async fn release_confirm(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(mac): Path<String>,
) -> Response {
    match get_device(State(state.api.clone()), user.caller(), ApiPath(mac)).await {
        Ok(Json(device)) => {
            let mut c = Pages::context(user.lang, Some(&user), "devices");
            c.insert("device", &device);
            state.pages.render(200, "release.html", &c)
        }
        Err(e) => state.pages.api_error(&user, &e),
    }
}

/// Releases the phone (after the confirmation page).
pub async fn release(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(mac): Path<String>,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    match release_device(State(state.api.clone()), user.caller(), ApiPath(mac)).await {
        Ok(_) => Redirect::to("/devices?released=1").into_response(),
        Err(e) => state.pages.api_error(&user, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_fragments_in_any_notation() {
        assert_eq!(mac_fragment("80:5E:C0").as_deref(), Some("805ec0"));
        assert_eq!(mac_fragment("805e-c0").as_deref(), Some("805ec0"));
        assert_eq!(mac_fragment("805e.c017").as_deref(), Some("805ec017"));
        assert_eq!(mac_fragment("80x5"), None);
    }

    #[test]
    fn a_refused_line_is_named_after_the_row_the_user_sees() {
        use crate::domain::{SettingRule, Violation};
        let refused = ApiError::setting(
            Violation::new("lines[1].password", SettingRule::Text),
            "lines[1].password must be 1-128 printable characters",
        );
        // Row 1 was emptied (the line removed): the second line sent is the third row.
        match in_rows(refused, &[0, 2]) {
            ApiError::Setting { violation, .. } => {
                assert_eq!(violation.field, "lines[2].password");
            }
            other => panic!("{other:?}"),
        }
        let elsewhere = ApiError::setting(
            Violation::new("display_name", SettingRule::Text),
            "display_name must be 1-128 printable characters",
        );
        assert!(matches!(
            in_rows(elsewhere, &[3]),
            ApiError::Setting { violation, .. } if violation.field == "display_name"
        ));
    }

    #[test]
    fn the_lines_form_never_holds_a_password_and_offers_one_more_row() {
        let stored = vec![LineOut {
            user: "1001".into(),
            auth_user: None,
            display_name: Some("Desk".into()),
            has_password: true,
        }];
        let rows = line_rows(&stored, None);
        assert_eq!(rows.len(), 2);
        assert!(rows[0].has_password && !rows[1].has_password);
        assert_eq!(rows[1].user, "");
        let typed = HashMap::from([
            ("line0_user".to_owned(), String::new()),
            ("line1_user".to_owned(), "1002".to_owned()),
        ]);
        let rows = line_rows(&stored, Some(&typed));
        assert_eq!(rows.len(), 2, "the rows as typed, in their places");
        assert_eq!(rows[1].user, "1002");
    }
}
