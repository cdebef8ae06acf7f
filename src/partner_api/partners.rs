//! Admin routes: partners, their tokens, and the audit log.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Authenticated;
use super::error::{ApiError, ErrorBody};
use super::wire::{AuditList, AuditOut, PartnerIn, PartnerOut, TokenIn, TokenOut};
use super::{ApiPath, ApiState, JsonBody, OptionalJsonBody};
use crate::domain::partner::check_partner_name;
use crate::domain::Mac;
use crate::store::AuditQuery;

/// Create a partner.
#[utoipa::path(post, path = "/api/v1/partners", tag = "admin",
    request_body = PartnerIn,
    responses(
        (status = 201, description = "Created", body = PartnerOut),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the administrator", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody),
        (status = 422, description = "Invalid name", body = ErrorBody),
    ))]
pub async fn create_partner(
    State(state): State<ApiState>,
    caller: Authenticated,
    JsonBody(body): JsonBody<PartnerIn>,
) -> Result<(StatusCode, Json<PartnerOut>), ApiError> {
    caller.admin()?;
    check_partner_name(&body.name)?;
    let name = body.name.trim().to_owned();
    match state.store.create_partner(&name, &caller.actor()).await? {
        Some(p) => Ok((StatusCode::CREATED, Json(p.into()))),
        None => Err(ApiError::NameNotAvailable(name)),
    }
}

/// List partners.
#[utoipa::path(get, path = "/api/v1/partners", tag = "admin",
    responses(
        (status = 200, description = "All partners", body = Vec<PartnerOut>),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the administrator", body = ErrorBody),
    ))]
pub async fn list_partners(
    State(state): State<ApiState>,
    caller: Authenticated,
) -> Result<Json<Vec<PartnerOut>>, ApiError> {
    caller.admin()?;
    Ok(Json(
        state
            .store
            .partners()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Issue an API token for a partner. The token is in this answer only; it is stored hashed.
#[utoipa::path(post, path = "/api/v1/partners/{id}/tokens", tag = "admin",
    params(("id" = i64, Path, description = "Partner id")),
    request_body(content = Option<TokenIn>, description = "Name, scope and expiry (an empty body: a read-write token that never expires)"),
    responses(
        (status = 201, description = "Issued", body = TokenOut),
        (status = 422, description = "Invalid name or expiry", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the administrator", body = ErrorBody),
        (status = 404, description = "No such partner", body = ErrorBody),
    ))]
pub async fn create_token(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<i64>,
    OptionalJsonBody(body): OptionalJsonBody<TokenIn>,
) -> Result<(StatusCode, Json<TokenOut>), ApiError> {
    caller.admin()?;
    super::tokens::issue(&state, id, body, &caller)
        .await?
        .ok_or(ApiError::NotFound("partner"))
}

/// List a partner's tokens (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/partners/{id}/tokens", tag = "admin",
    params(("id" = i64, Path, description = "Partner id")),
    responses(
        (status = 200, description = "Tokens", body = Vec<TokenOut>),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the administrator", body = ErrorBody),
        (status = 404, description = "No such partner", body = ErrorBody),
    ))]
pub async fn list_tokens(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<TokenOut>>, ApiError> {
    caller.admin()?;
    state
        .store
        .partner(id)
        .await?
        .ok_or(ApiError::NotFound("partner"))?;
    let tokens = state.store.tokens(id).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenOut::from_record(t, None))
            .collect(),
    ))
}

/// Revoke a partner's token.
#[utoipa::path(delete, path = "/api/v1/partners/{id}/tokens/{token_id}", tag = "admin",
    params(("id" = i64, Path, description = "Partner id"), ("token_id" = i64, Path, description = "Token id (the `id` of the token's entry, not the token itself)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the administrator", body = ErrorBody),
        (status = 404, description = "No such token, or already revoked", body = ErrorBody),
    ))]
pub async fn revoke_token(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath((id, token)): ApiPath<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    caller.admin()?;
    if state.store.revoke_token(id, token, &caller.actor()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("token"))
    }
}

/// Audit log filters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Entries after this id (for paging).
    after: Option<i64>,
    /// Only this device's entries (any MAC notation).
    #[param(value_type = Option<super::wire::MacText>)]
    mac: Option<String>,
    /// Only this tenant's entries.
    #[param(value_type = Option<super::wire::TenantNameText>)]
    tenant: Option<String>,
    /// Only entries left by this partner's callers (its tokens and portal users).
    #[param(minimum = 0)]
    partner_id: Option<i64>,
    /// Only this action, exactly (`device.claim`, `user.disable`, …).
    action: Option<String>,
    /// Only entries whose actor contains this text, in any case (an e-mail, `partner:3:`,
    /// `admin`).
    actor: Option<String>,
    /// Only entries at or after this time.
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Only entries before this time.
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// Read the audit log: every claim, move, release and change, who made it, when and from where.
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin",
    params(AuditParams),
    responses(
        (status = 200, description = "Entries, oldest first", body = AuditList),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the administrator", body = ErrorBody),
    ))]
pub async fn audit_log(
    State(state): State<ApiState>,
    caller: Authenticated,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditList>, ApiError> {
    caller.admin()?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 1000".into(),
        ));
    }
    let mac = p
        .mac
        .map(|m| Mac::parse(&m).map_err(|e| ApiError::BadRequest(format!("mac: {e}"))))
        .transpose()?;
    if p.partner_id.is_some_and(|id| id < 0) {
        return Err(ApiError::BadRequest(
            "partner_id: a partner id is not negative".into(),
        ));
    }
    let since = p
        .since
        .map(|t| super::wire::parse_time("since", &t))
        .transpose()?;
    let until = p
        .until
        .map(|t| super::wire::parse_time("until", &t))
        .transpose()?;
    let entries = state
        .store
        .audit_log(AuditQuery {
            partner: p.partner_id,
            action: p.action.filter(|a| !a.is_empty()),
            actor: p.actor.filter(|a| !a.is_empty()),
            since,
            until,
            after: p.after,
            mac,
            tenant: p
                .tenant
                .map(|t| {
                    crate::domain::TenantName::parse(&t)
                        .map(|name| name.as_str().to_owned())
                        .map_err(|e| ApiError::BadRequest(format!("tenant: {e}")))
                })
                .transpose()?,
            limit,
        })
        .await?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditList {
        entries: entries.into_iter().map(AuditOut::from).collect(),
        next,
    }))
}
