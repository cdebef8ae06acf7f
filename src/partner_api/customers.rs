//! Customers: the businesses a partner sells to. A partner sees only its own.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use super::auth::Authenticated;
use super::error::{ApiError, ErrorBody};
use super::wire::{CustomerIn, CustomerOut, CustomerPatch};
use super::{list_limit, paged, ApiPath, ApiState, JsonBody};
use crate::store::Page;

/// Create a customer.
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers",
    request_body = CustomerIn,
    responses(
        (status = 201, description = "Created", body = CustomerOut),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    ))]
pub async fn create_customer(
    State(state): State<ApiState>,
    caller: Authenticated,
    JsonBody(body): JsonBody<CustomerIn>,
) -> Result<(StatusCode, Json<CustomerOut>), ApiError> {
    let partner = caller.partner()?;
    let fields = body.into_fields()?;
    let c = state
        .store
        .create_customer(partner, fields, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(c.into())))
}

/// A page of the customer list.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CustomerPage {
    /// The id of the previous page's last customer (as in the `Link: rel="next"` header).
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Page size, 1–1000 (default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// List the partner's customers in id order, a page at a time.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers",
    params(CustomerPage),
    responses(
        (status = 200, description = "A page of customers; when it is full, the `Link` header names the next", body = Vec<CustomerOut>,
            headers(("Link" = String, description = "`<…?after=ID&limit=N>; rel=\"next\"` when there may be more"))),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
    ))]
pub async fn list_customers(
    State(state): State<ApiState>,
    caller: Authenticated,
    page: Result<Query<CustomerPage>, QueryRejection>,
) -> Result<Response, ApiError> {
    let partner = caller.partner()?;
    let Query(page) = page.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (after, limit) = (page.after, list_limit(page.limit)?);
    if after.is_some_and(|id| id < 0) {
        return Err(ApiError::BadRequest(
            "after: a customer id is not negative".into(),
        ));
    }
    let customers = state
        .store
        .customers(
            partner,
            Page {
                after,
                limit: Some(limit),
            },
        )
        .await?;
    let last = customers.last().map(|c| c.id.to_string());
    let rows: Vec<CustomerOut> = customers.into_iter().map(Into::into).collect();
    Ok(paged("/api/v1/customers", rows, limit, last))
}

/// Show one customer.
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers",
    params(("id" = i64, Path, description = "Customer id")),
    responses(
        (status = 200, description = "The customer", body = CustomerOut),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Not found (or not yours)", body = ErrorBody),
    ))]
pub async fn get_customer(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CustomerOut>, ApiError> {
    let partner = caller.partner()?;
    let c = state
        .store
        .customer(partner, id)
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    Ok(Json(c.into()))
}

/// Change a customer's fields.
#[utoipa::path(patch, path = "/api/v1/customers/{id}", tag = "customers",
    params(("id" = i64, Path, description = "Customer id")),
    request_body = CustomerPatch,
    responses(
        (status = 200, description = "Changed", body = CustomerOut),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "Not found (or not yours)", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    ))]
pub async fn update_customer(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<i64>,
    JsonBody(patch): JsonBody<CustomerPatch>,
) -> Result<Json<CustomerOut>, ApiError> {
    let partner = caller.partner()?;
    let current = state
        .store
        .customer(partner, id)
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    let f = current.fields;
    let fields = CustomerIn {
        company: patch.company.unwrap_or(f.company),
        contact: patch.contact.unwrap_or(f.contact),
        address: patch.address.unwrap_or(f.address),
        phone: patch.phone.unwrap_or(f.phone),
        email: patch.email.unwrap_or(f.email),
    }
    .into_fields()?;
    let c = state
        .store
        .update_customer(partner, id, fields, &caller.actor())
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    Ok(Json(c.into()))
}
