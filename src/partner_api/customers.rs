//! Customers: the businesses a partner sells to. A partner sees only its own.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::auth::Authenticated;
use super::error::{ApiError, ErrorBody};
use super::wire::{CustomerIn, CustomerOut, CustomerPatch};
use super::{ApiPath, ApiState, JsonBody};

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

/// List the partner's customers.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers",
    responses(
        (status = 200, description = "Customers", body = Vec<CustomerOut>),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
    ))]
pub async fn list_customers(
    State(state): State<ApiState>,
    caller: Authenticated,
) -> Result<Json<Vec<CustomerOut>>, ApiError> {
    let partner = caller.partner()?;
    Ok(Json(
        state
            .store
            .customers(partner)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
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
        contact: patch.contact.or(f.contact),
        address: patch.address.or(f.address),
        phone: patch.phone.or(f.phone),
        email: patch.email.or(f.email),
    }
    .into_fields()?;
    let c = state
        .store
        .update_customer(partner, id, fields, &caller.actor())
        .await?
        .ok_or(ApiError::NotFound("customer"))?;
    Ok(Json(c.into()))
}
