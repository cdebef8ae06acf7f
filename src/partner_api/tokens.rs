//! A partner's own API tokens: a partner issues, lists and revokes the tokens its systems use,
//! each with a name, a scope (read-write or read-only) and an optional expiry, and sees when
//! each was last used. The administrator's routes under `/partners/{id}/tokens` do the same
//! for any partner.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::auth::{self, Authenticated};
use super::error::{ApiError, ErrorBody};
use super::wire::{TokenIn, TokenOut};
use super::{ApiPath, ApiState, OptionalJsonBody};

/// Issue a token for the calling partner. The token is in this answer only; it is stored
/// hashed. A read-only token cannot issue one (it may only read).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    request_body(content = Option<TokenIn>, description = "Name, scope and expiry (an empty body: a read-write token that never expires)"),
    responses(
        (status = 201, description = "Issued", body = TokenOut),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The administrator's token, or a read-only one", body = ErrorBody),
        (status = 422, description = "Invalid name or expiry", body = ErrorBody),
    ))]
pub async fn create_own_token(
    State(state): State<ApiState>,
    caller: Authenticated,
    OptionalJsonBody(body): OptionalJsonBody<TokenIn>,
) -> Result<(StatusCode, Json<TokenOut>), ApiError> {
    let partner = caller.partner()?;
    // The partner was there a moment ago, when its token was checked.
    issue(&state, partner, body, &caller)
        .await?
        .ok_or(ApiError::Unauthenticated)
}

/// Issues and stores a token for `partner` as `body` asks, by `caller`; `None` if there is no
/// such partner. The answer is the only place the token ever appears.
pub(super) async fn issue(
    state: &ApiState,
    partner: crate::domain::PartnerId,
    body: TokenIn,
    caller: &Authenticated,
) -> Result<Option<(StatusCode, Json<TokenOut>)>, ApiError> {
    let issued = auth::issue().map_err(|e| {
        tracing::error!(error = %e, "cannot issue a token");
        ApiError::Internal
    })?;
    let token = body.into_new(&issued)?;
    let record = state
        .store
        .create_token(partner, token, &caller.actor())
        .await?;
    Ok(record.map(|record| {
        (
            StatusCode::CREATED,
            Json(TokenOut::from_record(record, Some(issued.token))),
        )
    }))
}

/// The calling partner's tokens, revoked ones included (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses(
        (status = 200, description = "Tokens", body = Vec<TokenOut>),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
    ))]
pub async fn list_own_tokens(
    State(state): State<ApiState>,
    caller: Authenticated,
) -> Result<Json<Vec<TokenOut>>, ApiError> {
    let partner = caller.partner()?;
    let tokens = state.store.tokens(partner).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenOut::from_record(t, None))
            .collect(),
    ))
}

/// Revoke one of the calling partner's tokens (the one making the request too, if named):
/// it is refused from the next request on.
#[utoipa::path(delete, path = "/api/v1/tokens/{token_id}", tag = "tokens",
    params(("token_id" = i64, Path, description = "Token id (the `id` of the token's entry, not the token itself)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such token of yours, or already revoked", body = ErrorBody),
    ))]
pub async fn revoke_own_token(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(token): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    let partner = caller.partner()?;
    if state
        .store
        .revoke_token(partner, token, &caller.actor())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("token"))
    }
}
