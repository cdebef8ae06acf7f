//! Devices: claiming a MAC for a tenant, listing and searching, moving, releasing, bulk
//! release and move of selected devices, and bulk import. The claim rules are checked here (MAC syntax, vendor OUI, Gigaset label code) and
//! decided race-free by the store (one MAC, one tenant).

use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Authenticated;
use super::error::{ApiError, ErrorBody};
use super::wire::{
    checked_device_settings, device_settings, networks, parse_time, BulkActionIn, BulkIn, BulkOut,
    BulkOutcomeOut, BulkRefusalCode, BulkRowOut, DeviceIn, DeviceList, DeviceOut, DevicePatch,
    EnrolmentIn, ImportIn, ImportOut, ImportRowOut, BULK_MAX,
};
use super::{
    parse_json, read_body, redirect, ApiPath, ApiState, JsonBody, OptionalJsonBody, IMPORT_LIMIT,
};
use crate::domain::{check_claimable, ClaimRefusal, DeviceSettings, Mac, TenantName, Vendor};
use crate::registry::Committed;
use crate::store::{
    BulkAction, BulkOutcome, BulkResult, ClaimOutcome, ClaimRequest, DeviceQuery, DeviceUpdate,
    RotationOutcome, UpdateOutcome,
};

fn refusal_code(e: &ClaimRefusal) -> &'static str {
    match e {
        ClaimRefusal::Mac(_) => "invalid_mac",
        ClaimRefusal::UnsupportedVendor(_) => "unsupported_vendor",
        ClaimRefusal::MissingClaimCode | ClaimRefusal::MalformedClaimCode => "invalid_claim_code",
        ClaimRefusal::ClaimCodeMismatch => "claim_code_mismatch",
    }
}

fn refuse(state: &ApiState, mac: &str, e: ClaimRefusal) -> ApiError {
    let code = refusal_code(&e);
    state
        .metrics
        .claim_refusals
        .with_label_values(&[code])
        .inc();
    ApiError::CouldNotRegister {
        mac: mac.to_owned(),
        code,
        reason: e.to_string(),
    }
}

/// A path MAC that does not parse names no device: 404, like any unknown device.
fn path_mac(mac: &str) -> Result<Mac, ApiError> {
    Mac::parse(mac).map_err(|_| ApiError::NotFound("device"))
}

async fn view(state: &ApiState, partner: i64, mac: Mac) -> Result<DeviceOut, ApiError> {
    let v = state
        .store
        .device_view(Some(partner), mac)
        .await?
        .ok_or(ApiError::NotFound("device"))?;
    let mut out = DeviceOut::from(v);
    if let Some(r) = redirect::states(state.store.as_ref(), vec![mac])
        .await?
        .remove(&mac)
    {
        out.redirect = r;
    }
    Ok(out)
}

/// Register (claim) a phone's MAC for one of the partner's tenants. Gigaset devices need the
/// 4-character code printed on their label. Claiming again for the same tenant is idempotent.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices",
    request_body = DeviceIn,
    responses(
        (status = 201, description = "Claimed", body = DeviceOut),
        (status = 200, description = "Already claimed by this tenant: nothing changed", body = DeviceOut),
        (status = 400, description = "Malformed body, wrong types or unknown fields", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Tenant not found (or not yours)", body = ErrorBody),
        (status = 409, description = "Already in use (claimed by another tenant), or registered elsewhere (the vendor's redirect service holds the MAC for another provider; only when the operator turned that check on)", body = ErrorBody),
        (status = 422, description = "Could not be registered: malformed, multicast or zero MAC, not a supported vendor, missing or wrong claim code", body = ErrorBody),
    ))]
pub async fn claim_device(
    State(state): State<ApiState>,
    caller: Authenticated,
    JsonBody(body): JsonBody<DeviceIn>,
) -> Result<(StatusCode, Json<DeviceOut>), ApiError> {
    let partner = caller.partner()?;
    let device = check_claimable(&body.mac, body.claim_code.as_deref(), &state.ouis)
        .map_err(|e| refuse(&state, &body.mac, e))?;
    let tenant = TenantName::parse(&body.tenant).map_err(|_| ApiError::NotFound("tenant"))?;
    let settings = device_settings(
        device.vendor,
        body.display_name,
        body.lines,
        body.enrolment_networks,
    )?;
    let request = ClaimRequest {
        mac: device.mac,
        vendor: device.vendor,
        claim_code: device.claim_code,
        tenant,
        settings,
        enrol_until: Some(
            crate::store::now_millis() + crate::import::enrolment_ms(body.enrolment_hours),
        ),
        redirect: state.redirects.vendors.contains(device.vendor),
    };
    if let Some(check) = &state.redirects.check {
        if request.redirect
            && check
                .registered_elsewhere(request.vendor, request.mac, request.claim_code.as_ref())
                .await
        {
            state
                .metrics
                .claim_refusals
                .with_label_values(&["registered_elsewhere"])
                .inc();
            return Err(ApiError::RegisteredElsewhere(device.mac.to_string()));
        }
    }
    let status = match state.store.claim(request, &caller.actor()).await? {
        ClaimOutcome::Created(record) => {
            state.publish(Vec::new(), vec![record]).await;
            state.metrics.claims.with_label_values(&["created"]).inc();
            StatusCode::CREATED
        }
        ClaimOutcome::Unchanged(_) => {
            state.metrics.claims.with_label_values(&["unchanged"]).inc();
            StatusCode::OK
        }
        ClaimOutcome::AlreadyInUse => {
            state
                .metrics
                .claim_refusals
                .with_label_values(&["already_in_use"])
                .inc();
            return Err(ApiError::AlreadyInUse(device.mac.to_string()));
        }
        ClaimOutcome::UnknownTenant => {
            state
                .metrics
                .claim_refusals
                .with_label_values(&["unknown_tenant"])
                .inc();
            return Err(ApiError::NotFound("tenant"));
        }
        ClaimOutcome::ClaimCodeMismatch => {
            return Err(refuse(&state, &body.mac, ClaimRefusal::ClaimCodeMismatch))
        }
    };
    Ok((status, Json(view(&state, partner, device.mac).await?)))
}

/// Search filters for the device list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeviceParams {
    /// MAC prefix, any notation (`80:5E:C0`, `805ec0`).
    #[param(pattern = r"^[:.\-]*([0-9A-Fa-f][:.\-]*){0,12}$")]
    mac_prefix: Option<String>,
    /// Hex digits found anywhere in the MAC, any notation (`17:de`, `17de`).
    #[param(pattern = r"^[:.\-]*([0-9A-Fa-f][:.\-]*){0,12}$")]
    mac_contains: Option<String>,
    /// Only this tenant's devices.
    #[param(value_type = Option<super::wire::TenantNameText>)]
    tenant: Option<String>,
    /// Only this vendor's devices.
    #[param(value_type = Option<super::wire::VendorName>)]
    vendor: Option<String>,
    /// Last fetch at or after this RFC 3339 time (any offset).
    #[param(value_type = Option<String>, format = DateTime)]
    seen_since: Option<String>,
    /// Last fetch before this RFC 3339 time (any offset).
    #[param(value_type = Option<String>, format = DateTime)]
    seen_before: Option<String>,
    /// Only devices that never fetched their config.
    never_seen: Option<bool>,
    /// The page after this MAC (the previous page's `next`).
    #[param(value_type = Option<super::wire::MacText>)]
    after: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// List and search the partner's devices, with their last-fetch status.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    params(DeviceParams),
    responses(
        (status = 200, description = "A page of devices in MAC order", body = DeviceList),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
    ))]
pub async fn list_devices(
    State(state): State<ApiState>,
    caller: Authenticated,
    params: Result<Query<DeviceParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeviceList>, ApiError> {
    let partner = caller.partner()?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let query = device_query(
        Filters {
            mac_prefix: p.mac_prefix,
            mac_contains: p.mac_contains,
            tenant: p.tenant,
            vendor: p.vendor,
            seen_since: p.seen_since,
            seen_before: p.seen_before,
            never_seen: p.never_seen,
        },
        p.after,
        limit,
    )?;
    let devices = state.store.search_devices(Some(partner), query).await?;
    let next = (devices.len() == limit)
        .then(|| devices.last().map(|d| d.record.mac.to_string()))
        .flatten();
    let macs = devices.iter().map(|d| d.record.mac).collect();
    let mut redirects = redirect::states(state.store.as_ref(), macs).await?;
    Ok(Json(DeviceList {
        devices: devices
            .into_iter()
            .map(|d| {
                let mac = d.record.mac;
                let mut out = DeviceOut::from(d);
                if let Some(r) = redirects.remove(&mac) {
                    out.redirect = r;
                }
                out
            })
            .collect(),
        next,
    }))
}

/// The search filters the device list and the export share, as given in the query.
pub(super) struct Filters {
    pub mac_prefix: Option<String>,
    pub mac_contains: Option<String>,
    pub tenant: Option<String>,
    pub vendor: Option<String>,
    pub seen_since: Option<String>,
    pub seen_before: Option<String>,
    pub never_seen: Option<bool>,
}

/// The store's query for `filters`, from the MAC after `after`, `limit` devices at most.
pub(super) fn device_query(
    filters: Filters,
    after: Option<String>,
    limit: usize,
) -> Result<DeviceQuery, ApiError> {
    let bad = |field: &str, e: String| ApiError::BadRequest(format!("{field}: {e}"));
    let hex_of = |field: &str, what: &str, m: String| {
        let hex: String = m
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.'))
            .collect::<String>()
            .to_ascii_lowercase();
        if hex.len() <= 12 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(hex)
        } else {
            Err(ApiError::BadRequest(format!(
                "{field}: {m:?} is not {what} a MAC"
            )))
        }
    };
    let mac_prefix = filters
        .mac_prefix
        .map(|m| hex_of("mac_prefix", "the start of", m))
        .transpose()?;
    let mac_contains = filters
        .mac_contains
        .map(|m| hex_of("mac_contains", "part of", m))
        .transpose()?
        .filter(|hex| !hex.is_empty());
    Ok(DeviceQuery {
        mac_prefix,
        mac_contains,
        tenant: filters
            .tenant
            .map(|t| TenantName::parse(&t).map_err(|e| bad("tenant", e.to_string())))
            .transpose()?,
        vendor: filters
            .vendor
            .map(|v| {
                v.parse::<Vendor>()
                    .map_err(|e| bad("vendor", e.to_string()))
            })
            .transpose()?,
        seen_since: filters
            .seen_since
            .map(|t| parse_time("seen_since", &t))
            .transpose()?,
        seen_before: filters
            .seen_before
            .map(|t| parse_time("seen_before", &t))
            .transpose()?,
        never_seen: filters.never_seen.unwrap_or(false),
        after: after
            .map(|m| Mac::parse(&m).map_err(|e| bad("after", e.to_string())))
            .transpose()?,
        limit,
    })
}

/// Show one device with its last-fetch status.
#[utoipa::path(get, path = "/api/v1/devices/{mac}", tag = "devices",
    params(("mac" = super::wire::MacText, Path, description = "MAC, any notation")),
    responses(
        (status = 200, description = "The device", body = DeviceOut),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Not claimed (or not yours)", body = ErrorBody),
    ))]
pub async fn get_device(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(mac): ApiPath<String>,
) -> Result<Json<DeviceOut>, ApiError> {
    let partner = caller.partner()?;
    Ok(Json(view(&state, partner, path_mac(&mac)?).await?))
}

/// Move a device to another of the partner's tenants and/or replace its per-device settings.
#[utoipa::path(patch, path = "/api/v1/devices/{mac}", tag = "devices",
    params(("mac" = super::wire::MacText, Path, description = "MAC, any notation")),
    request_body = DevicePatch,
    responses(
        (status = 200, description = "Changed", body = DeviceOut),
        (status = 400, description = "Malformed body, wrong types or unknown fields", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Device or target tenant not found (or not yours)", body = ErrorBody),
        (status = 422, description = "Invalid setting", body = ErrorBody),
    ))]
pub async fn update_device(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(mac): ApiPath<String>,
    JsonBody(patch): JsonBody<DevicePatch>,
) -> Result<Json<DeviceOut>, ApiError> {
    let partner = caller.partner()?;
    let mac = path_mac(&mac)?;
    let tenant = patch
        .tenant
        .map(|t| TenantName::parse(&t).map_err(|_| ApiError::NotFound("tenant")))
        .transpose()?;
    let settings = if patch.display_name.is_some()
        || patch.lines.is_some()
        || patch.enrolment_networks.is_some()
    {
        let current = state
            .store
            .device_view(Some(partner), mac)
            .await?
            .ok_or(ApiError::NotFound("device"))?
            .record;
        let settings = DeviceSettings {
            // An empty display name removes it; an absent one keeps it.
            display_name: match patch.display_name {
                Some(name) if name.is_empty() => None,
                Some(name) => Some(name),
                None => current.settings.display_name,
            },
            lines: match patch.lines {
                Some(lines) => lines.into_iter().map(Into::into).collect(),
                None => current.settings.lines,
            },
            enrolment_networks: match patch.enrolment_networks {
                Some(list) => networks("enrolment_networks", list)?,
                None => current.settings.enrolment_networks,
            },
        };
        Some(checked_device_settings(current.vendor, settings)?)
    } else {
        None
    };
    let moving = tenant.is_some();
    match state
        .store
        .update_device(mac, DeviceUpdate { tenant, settings }, &caller.actor())
        .await?
    {
        UpdateOutcome::Updated(record) => {
            state.publish(Vec::new(), vec![record]).await;
            if moving {
                state.metrics.moves.inc();
            }
            Ok(Json(view(&state, partner, mac).await?))
        }
        UpdateOutcome::NotFound => Err(ApiError::NotFound("device")),
        UpdateOutcome::UnknownTenant => Err(ApiError::NotFound("tenant")),
    }
}

/// Release a device: it is no longer claimed, and its phone gets nothing on its next fetch.
#[utoipa::path(delete, path = "/api/v1/devices/{mac}", tag = "devices",
    params(("mac" = super::wire::MacText, Path, description = "MAC, any notation")),
    responses(
        (status = 204, description = "Released"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Not claimed (or not yours)", body = ErrorBody),
    ))]
pub async fn release_device(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(mac): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.partner()?;
    let mac = path_mac(&mac)?;
    if !state.store.release(mac, &caller.actor()).await? {
        return Err(ApiError::NotFound("device"));
    }
    state
        .publish_committed(crate::registry::Committed {
            released: vec![mac],
            ..Default::default()
        })
        .await;
    state.metrics.releases.inc();
    Ok(StatusCode::NO_CONTENT)
}

/// Release or move many of the partner's devices at once: `{"action": "release", "macs": […]}`
/// or `{"action": "move", "macs": […], "tenant": "<name>"}`, at most 10,000 MACs in any
/// notation. **Per-MAC**: every MAC gets its own result in request order; the accepted ones are
/// changed together in one transaction, each audited as by the single-device routes. A MAC that
/// is malformed is refused with `invalid_mac`; one not claimed, or not yours, with `not_found`
/// (indistinguishable); one already in the target tenant is `unchanged`, as is a MAC named
/// again after its first occurrence (which made the change). A target tenant that is not yours
/// answers 404 and changes nothing.
#[utoipa::path(post, path = "/api/v1/devices/bulk", tag = "devices",
    request_body = BulkIn,
    responses(
        (status = 200, description = "One result per MAC, in request order", body = BulkOut),
        (status = 400, description = "Malformed body, wrong types or unknown fields", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Target tenant not found (or not yours): nothing changed", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "More than 10,000 MACs, a move without a tenant or a release with one", body = ErrorBody),
    ))]
pub async fn bulk_devices(
    State(state): State<ApiState>,
    caller: Authenticated,
    req: Request,
) -> Result<Json<BulkOut>, ApiError> {
    // 10,000 MACs in a long notation outgrow the ordinary body limit; the import's fits them
    // with room for whatever a partner's tooling puts around them. The body is read before the
    // caller's role is checked, as the `JsonBody` routes do: answering while a large body is
    // still arriving would cut the connection under the client instead of answering it.
    let body = read_body(req, &state, IMPORT_LIMIT).await?;
    caller.partner()?;
    let body: BulkIn = parse_json(&body)?;
    if body.macs.len() > BULK_MAX {
        return Err(ApiError::Invalid {
            code: "too_many_macs",
            message: format!(
                "{} MACs given, at most {BULK_MAX} per request",
                body.macs.len()
            ),
        });
    }
    let action = match (body.action, body.tenant) {
        (BulkActionIn::Release, None) => BulkAction::Release,
        (BulkActionIn::Move, Some(tenant)) => BulkAction::Move(
            // A name that cannot be a tenant's names none of the partner's: 404 as for any.
            TenantName::parse(&tenant).map_err(|_| ApiError::NotFound("tenant"))?,
        ),
        (BulkActionIn::Release, Some(_)) => {
            return Err(ApiError::Invalid {
                code: "tenant_not_allowed",
                message: "a release takes no tenant".into(),
            })
        }
        (BulkActionIn::Move, None) => {
            return Err(ApiError::Invalid {
                code: "tenant_required",
                message: "a move needs the target tenant".into(),
            })
        }
    };
    // Malformed MACs are refused here and never reach the store; the rest keep their
    // position so the store's outcomes can be put back in request order.
    let parsed: Vec<Option<Mac>> = body.macs.iter().map(|m| Mac::parse(m).ok()).collect();
    let valid: Vec<Mac> = parsed.iter().flatten().copied().collect();
    let outcomes = match state
        .store
        .bulk_devices(action, valid, &caller.actor())
        .await?
    {
        BulkResult::Applied(outcomes) => outcomes,
        BulkResult::UnknownTenant => return Err(ApiError::NotFound("tenant")),
    };
    let mut committed = Committed::default();
    let mut results = Vec::with_capacity(body.macs.len());
    let mut outcomes = outcomes.into_iter();
    for (given, mac) in body.macs.into_iter().zip(parsed) {
        let (outcome, code) = match mac.map(|mac| (mac, outcomes.next())) {
            None => (BulkOutcomeOut::Refused, Some(BulkRefusalCode::InvalidMac)),
            Some((mac, Some(BulkOutcome::Released))) => {
                committed.released.push(mac);
                (BulkOutcomeOut::Released, None)
            }
            Some((_, Some(BulkOutcome::Moved(record)))) => {
                committed.devices.push(record);
                (BulkOutcomeOut::Moved, None)
            }
            Some((_, Some(BulkOutcome::Unchanged))) => (BulkOutcomeOut::Unchanged, None),
            // The store answers once per MAC it was given; a missing answer is treated as
            // the store's "not found", which changes nothing.
            Some((_, Some(BulkOutcome::NotFound) | None)) => {
                (BulkOutcomeOut::Refused, Some(BulkRefusalCode::NotFound))
            }
        };
        results.push(BulkRowOut {
            mac: given,
            outcome,
            code,
        });
    }
    let (released, moved) = (committed.released.len(), committed.devices.len());
    // Committed: the registry learns it before we answer, so a released phone's very next
    // fetch is refused and a moved one's is served its new tenant's config.
    state.publish_committed(committed).await;
    state.metrics.releases.inc_by(released as u64);
    state.metrics.moves.inc_by(moved as u64);
    let refused = results
        .iter()
        .filter(|r| r.outcome == BulkOutcomeOut::Refused)
        .count();
    Ok(Json(BulkOut {
        applied: results.len() - refused,
        refused,
        results,
    }))
}

/// Claim many devices at once, as JSON (`{"devices": [<device>, …]}`) or CSV (`Content-Type:
/// text/csv`, header row with columns `mac,tenant,claim_code,display_name,line_user,
/// line_auth_user,line_password,line_display_name`; `mac` and `tenant` required). **Per-row**:
/// every row gets its own result, the accepted rows are committed together in one transaction,
/// refused rows change nothing. A JSON body that is not an import document is refused whole
/// (400), as is a CSV document without its required columns or with broken quoting (422).
#[utoipa::path(post, path = "/api/v1/devices/import", tag = "devices",
    request_body(content(
        (ImportIn = "application/json"),
        (String = "text/csv"),
    )),
    responses(
        (status = 200, description = "One result per row", body = ImportOut),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "A CSV document without its required columns, or with broken quoting", body = ErrorBody),
    ))]
pub async fn import_devices(
    State(state): State<ApiState>,
    caller: Authenticated,
    req: Request,
) -> Result<Json<ImportOut>, ApiError> {
    let csv = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/csv"));
    // The body is read before the caller is refused: an answer sent while an authenticated
    // client is still sending would close the connection under it (a reset, not a 403).
    let body = read_body(req, &state, IMPORT_LIMIT).await?;
    caller.partner()?;
    let rows = if csv {
        // Any text is a CSV body by the document's schema; what it must hold is a rule.
        crate::import::csv_rows(&body).map_err(|e| ApiError::Invalid {
            code: "invalid_document",
            message: e.to_string(),
        })?
    } else {
        parse_json::<ImportIn>(&body)?.devices
    };
    let report = crate::import::import_devices(
        state.store.as_ref(),
        &state.ouis,
        state.redirects.vendors,
        rows,
        &caller.actor(),
    )
    .await
    .map_err(|e| match e {
        crate::import::Error::Malformed(m) => ApiError::BadRequest(m),
        crate::import::Error::Store(e) => e.into(),
    })?;
    state
        .publish(
            report.committed.applied_tenants.clone(),
            report.committed.applied_devices.clone(),
        )
        .await;
    let mut results = Vec::with_capacity(report.devices.len());
    for r in report.devices {
        match r.code {
            Some(code) => state
                .metrics
                .claim_refusals
                .with_label_values(&[code])
                .inc(),
            None if r.status == "created" => {
                state.metrics.claims.with_label_values(&["created"]).inc()
            }
            None => state.metrics.claims.with_label_values(&["unchanged"]).inc(),
        }
        results.push(ImportRowOut {
            row: r.row,
            mac: r.key,
            status: r.status.to_owned(),
            code: r.code.map(str::to_owned),
            message: r.reason,
        });
    }
    Ok(Json(ImportOut {
        results,
        applied: report.applied,
        refused: report.refused,
    }))
}

/// (Re)open a device's enrolment window: its next fetch inside the window binds it to new
/// per-device credentials. Use it for a factory-reset phone; any credentials it had stop
/// working. Audited.
#[utoipa::path(post, path = "/api/v1/devices/{mac}/enrolment", tag = "devices",
    params(("mac" = super::wire::MacText, Path, description = "MAC, any notation")),
    request_body = EnrolmentIn,
    responses(
        (status = 200, description = "Window open", body = DeviceOut),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Not claimed (or not yours)", body = ErrorBody),
    ))]
pub async fn open_enrolment(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(mac): ApiPath<String>,
    OptionalJsonBody(body): OptionalJsonBody<EnrolmentIn>,
) -> Result<Json<DeviceOut>, ApiError> {
    let partner = caller.partner()?;
    let mac = path_mac(&mac)?;
    let hours = body.hours;
    let until = crate::store::now_millis() + crate::import::enrolment_ms(hours);
    let record = state
        .store
        .open_enrolment(mac, Some(until), &caller.actor())
        .await?
        .ok_or(ApiError::NotFound("device"))?;
    state.publish(Vec::new(), vec![record]).await;
    Ok(Json(view(&state, partner, mac).await?))
}

/// Revoke a device's provisioning credentials and close its enrolment window: the phone is
/// answered like an unknown MAC until its enrolment is reopened. Use it for a stolen or
/// compromised phone. Audited.
#[utoipa::path(post, path = "/api/v1/devices/{mac}/credentials/revoke", tag = "devices",
    params(("mac" = super::wire::MacText, Path, description = "MAC, any notation")),
    responses(
        (status = 200, description = "Revoked", body = DeviceOut),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Not claimed (or not yours)", body = ErrorBody),
    ))]
pub async fn revoke_credentials(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(mac): ApiPath<String>,
) -> Result<Json<DeviceOut>, ApiError> {
    let partner = caller.partner()?;
    let mac = path_mac(&mac)?;
    let record = state
        .store
        .open_enrolment(mac, None, &caller.actor())
        .await?
        .ok_or(ApiError::NotFound("device"))?;
    state.publish(Vec::new(), vec![record]).await;
    Ok(Json(view(&state, partner, mac).await?))
}

/// Rotate a device's provisioning credentials: its next authenticated fetch receives new
/// ones; the old ones keep working until the phone has fetched once with the new ones.
/// Audited.
#[utoipa::path(post, path = "/api/v1/devices/{mac}/credentials/rotate", tag = "devices",
    params(("mac" = super::wire::MacText, Path, description = "MAC, any notation")),
    responses(
        (status = 200, description = "Rotation pending", body = DeviceOut),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Not claimed (or not yours)", body = ErrorBody),
        (status = 409, description = "Not enrolled yet: nothing to rotate", body = ErrorBody),
    ))]
pub async fn rotate_credentials(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(mac): ApiPath<String>,
) -> Result<Json<DeviceOut>, ApiError> {
    let partner = caller.partner()?;
    let mac = path_mac(&mac)?;
    match state.store.request_rotation(mac, &caller.actor()).await? {
        RotationOutcome::Requested(record) => {
            state.publish(Vec::new(), vec![record]).await;
            Ok(Json(view(&state, partner, mac).await?))
        }
        RotationOutcome::NotFound => Err(ApiError::NotFound("device")),
        RotationOutcome::NotEnrolled => Err(ApiError::NotEnrolled(mac.to_string())),
    }
}
