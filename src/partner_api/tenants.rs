//! Tenant instances: one hosted PBX each, named by a DNS label unique across the service, and
//! everything its phones receive. A change reaches the tenant's phones on their next fetch.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use super::auth::Authenticated;
use super::error::{ApiError, ErrorBody};
use super::wire::{TenantIn, TenantOut};
use super::{list_limit, paged, ApiPath, ApiState, JsonBody};
use crate::domain::{SettingRule, TenantName, TenantSettings, Violation};
use crate::store::{Page, TenantChanged, TenantCreated};

fn tenant_name(s: &str) -> Result<TenantName, ApiError> {
    TenantName::parse(s).map_err(|e| ApiError::Invalid {
        code: "invalid_tenant_name",
        message: e.to_string(),
    })
}

/// Create a tenant instance for one of the partner's customers.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants",
    request_body = TenantIn,
    responses(
        (status = 201, description = "Created", body = TenantOut),
        (status = 400, description = "Malformed body, wrong types or unknown fields", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 409, description = "Name not available", body = ErrorBody),
        (status = 422, description = "Invalid name or setting, or unknown customer", body = ErrorBody),
    ))]
pub async fn create_tenant(
    State(state): State<ApiState>,
    caller: Authenticated,
    JsonBody(mut body): JsonBody<TenantIn>,
) -> Result<(StatusCode, Json<TenantOut>), ApiError> {
    caller.partner()?;
    let name = tenant_name(body.name.take().as_deref().unwrap_or(""))?;
    let customer = body.customer.ok_or_else(|| {
        ApiError::setting(
            Violation::new("customer", SettingRule::Required),
            "customer is required: the id of one of your customers",
        )
    })?;
    let settings = body.apply_to(TenantSettings::default())?;
    match state
        .store
        .create_tenant(name.clone(), Some(customer), settings, &caller.actor())
        .await?
    {
        TenantCreated::Created(t) => {
            state.publish(vec![t.clone()], Vec::new()).await;
            Ok((StatusCode::CREATED, Json(t.into())))
        }
        TenantCreated::NameTaken => Err(ApiError::NameNotAvailable(name.to_string())),
        TenantCreated::UnknownCustomer => Err(unknown_customer()),
    }
}

fn unknown_customer() -> ApiError {
    ApiError::Invalid {
        code: "unknown_customer",
        message: "customer not found".into(),
    }
}

/// A page of the tenant list.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TenantPage {
    /// The name of the previous page's last tenant (as in the `Link: rel="next"` header).
    #[param(value_type = Option<super::wire::TenantNameText>)]
    after: Option<String>,
    /// Page size, 1–1000 (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Also how each tenant's devices stand (`counts`): one more query over the page's
    /// devices.
    counts: Option<bool>,
}

/// List the partner's tenant instances in name order, a page at a time.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    params(TenantPage),
    responses(
        (status = 200, description = "A page of tenants; when it is full, the `Link` header names the next", body = Vec<TenantOut>,
            headers(("Link" = String, description = "`<…?after=NAME&limit=N>; rel=\"next\"` when there may be more"))),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
    ))]
pub async fn list_tenants(
    State(state): State<ApiState>,
    caller: Authenticated,
    page: Result<Query<TenantPage>, QueryRejection>,
) -> Result<Response, ApiError> {
    let partner = caller.partner()?;
    let Query(page) = page.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (after, limit) = (page.after, list_limit(page.limit)?);
    let after = after
        .map(|a| TenantName::parse(&a).map_err(|e| ApiError::BadRequest(format!("after: {e}"))))
        .transpose()?;
    let tenants = state
        .store
        .tenants_of(
            Some(partner),
            Page {
                after,
                limit: Some(limit),
            },
        )
        .await?;
    let last = tenants.last().map(|t| t.name.to_string());
    let mut counts: std::collections::HashMap<_, _> = if page.counts.unwrap_or(false) {
        let ids = tenants.iter().map(|t| t.id).collect();
        state.store.tenant_counts(ids).await?.into_iter().collect()
    } else {
        std::collections::HashMap::new()
    };
    let with_counts = page.counts.unwrap_or(false);
    let rows: Vec<TenantOut> = tenants
        .into_iter()
        .map(|t| {
            let found = counts.remove(&t.id);
            let mut out = TenantOut::from(t);
            if with_counts {
                out.counts = Some(found.map(Into::into).unwrap_or_default());
            }
            out
        })
        .collect();
    Ok(paged("/api/v1/tenants", rows, limit, last))
}

/// Show one tenant instance, with how its devices stand (`counts`).
#[utoipa::path(get, path = "/api/v1/tenants/{name}", tag = "tenants",
    params(("name" = super::wire::TenantNameText, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "The tenant", body = TenantOut),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Not found (or not yours)", body = ErrorBody),
    ))]
pub async fn get_tenant(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<TenantOut>, ApiError> {
    let partner = caller.partner()?;
    let name = TenantName::parse(&name).map_err(|_| ApiError::NotFound("tenant"))?;
    let t = state
        .store
        .tenant_by_name(Some(partner), &name)
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    let counts = state.store.tenant_counts(vec![t.id]).await?;
    let mut out = TenantOut::from(t);
    out.counts = Some(
        counts
            .into_iter()
            .next()
            .map(|(_, c)| c.into())
            .unwrap_or_default(),
    );
    Ok(Json(out))
}

/// Change a tenant's settings; absent fields stay as they are. Its phones get the change on
/// their next fetch.
#[utoipa::path(patch, path = "/api/v1/tenants/{name}", tag = "tenants",
    params(("name" = super::wire::TenantNameText, Path, description = "Tenant name")),
    request_body = TenantIn,
    responses(
        (status = 200, description = "Changed", body = TenantOut),
        (status = 400, description = "Malformed body, wrong types, unknown fields, or a rename", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Not found (or not yours)", body = ErrorBody),
        (status = 422, description = "Invalid setting or unknown customer", body = ErrorBody),
    ))]
pub async fn update_tenant(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(name): ApiPath<String>,
    JsonBody(mut body): JsonBody<TenantIn>,
) -> Result<Json<TenantOut>, ApiError> {
    let partner = caller.partner()?;
    let name = TenantName::parse(&name).map_err(|_| ApiError::NotFound("tenant"))?;
    if body.name.take().is_some_and(|n| n != name.as_str()) {
        return Err(ApiError::setting(
            Violation::new("name", SettingRule::Rename),
            "name: a tenant cannot be renamed (name is for POST only)",
        ));
    }
    let current = state
        .store
        .tenant_by_name(Some(partner), &name)
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    let customer = body.customer.take().or(current.customer);
    let settings = body.apply_to(current.settings)?;
    match state
        .store
        .update_tenant(&name, customer, settings, &caller.actor())
        .await?
    {
        TenantChanged::Done(Some(t)) => {
            state.publish(vec![t.clone()], Vec::new()).await;
            Ok(Json(t.into()))
        }
        TenantChanged::UnknownCustomer => Err(unknown_customer()),
        _ => Err(ApiError::NotFound("tenant")),
    }
}

/// Delete a tenant instance that claims no devices.
#[utoipa::path(delete, path = "/api/v1/tenants/{name}", tag = "tenants",
    params(("name" = super::wire::TenantNameText, Path, description = "Tenant name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Not found (or not yours)", body = ErrorBody),
        (status = 409, description = "Devices are still claimed by it", body = ErrorBody),
    ))]
pub async fn delete_tenant(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.partner()?;
    let name = TenantName::parse(&name).map_err(|_| ApiError::NotFound("tenant"))?;
    match state.store.delete_tenant(&name, &caller.actor()).await? {
        TenantChanged::Done(_) => {
            state
                .publish_committed(crate::registry::Committed {
                    deleted_tenants: vec![name],
                    ..Default::default()
                })
                .await;
            Ok(StatusCode::NO_CONTENT)
        }
        TenantChanged::HasDevices => Err(ApiError::TenantHasDevices(name.to_string())),
        _ => Err(ApiError::NotFound("tenant")),
    }
}
