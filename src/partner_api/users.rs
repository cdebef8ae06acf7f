//! Portal users, as the administrator manages them: creating a partner's user or one of the
//! operator's administrators, re-issuing a user's set-password link (a password reset), and
//! disabling or enabling a user. Each answer carries a one-time link
//! (`<portal origin>/set-password?token=…`) to hand to the person; the token is stored hashed
//! and expires after [`LINK_LIFETIME_MS`].
//!
//! Also the one place links are made, for the `user create` command and the portal's
//! invitations. Must not know how passwords are hashed or sessions kept.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{self, Authenticated};
use super::error::{ApiError, ErrorBody};
use super::{ApiPath, ApiState, JsonBody};
use crate::domain::PartnerId;
use crate::store::{now_millis, Actor, PasswordLink, Store, UserRecord};

/// How long a set-password link works: three days.
pub const LINK_LIFETIME_MS: i64 = 3 * 24 * 3600 * 1000;

/// A new portal user: a partner's (`partner_id`) or an administrator (`admin: true`, no
/// `partner_id`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    /// The partner the user acts for; absent for an administrator.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub partner_id: Option<i64>,
    /// One of the operator's administrators, who logs in to the portal with the
    /// administrator's rights (default false).
    #[serde(default)]
    pub admin: bool,
    /// The login e-mail (compared case-insensitively).
    #[schema(min_length = 3, max_length = 254)]
    pub email: String,
}

/// A portal user (never its password or links).
#[derive(Serialize, ToSchema)]
pub struct UserOut {
    /// The user's id.
    pub id: i64,
    /// Its partner (null for an administrator).
    pub partner_id: Option<i64>,
    /// One of the operator's administrators.
    pub admin: bool,
    /// Its login e-mail.
    pub email: String,
    /// Whether it has set a password.
    pub password_set: bool,
    /// A disabled user cannot log in.
    pub disabled: bool,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

impl From<UserRecord> for UserOut {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.id,
            partner_id: u.partner,
            admin: u.partner.is_none(),
            password_set: u.password_hash.is_some(),
            disabled: u.disabled,
            created_at: super::wire::time(u.created_at),
            email: u.email,
        }
    }
}

/// Which users to list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserFilter {
    /// Only this partner's users.
    #[param(minimum = 0)]
    partner_id: Option<i64>,
}

/// A portal user and the one-time link that sets its password.
#[derive(Serialize, ToSchema)]
pub struct UserLinkOut {
    /// The user's id.
    pub id: i64,
    /// Its partner (null for an administrator).
    pub partner_id: Option<i64>,
    /// One of the operator's administrators.
    pub admin: bool,
    /// Its login e-mail.
    pub email: String,
    /// The one-time set-password link, shown only here.
    pub link: String,
    /// When the link stops working (RFC 3339).
    pub link_expires_at: String,
}

/// An e-mail address as users log in with it: trimmed, lower case, `local@domain` with no
/// space or markup characters, at most 254 characters; `None` if it is not one.
pub fn normalise_email(email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let ok = (3..=254).contains(&email.len())
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && email
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"<>\"'()[],;:\\".contains(c));
    ok.then_some(email)
}

/// A fresh link's token and what the store keeps of it.
fn fresh_link() -> Result<(String, PasswordLink), ApiError> {
    let (token, hashed) = auth::issue_link_token().map_err(|e| {
        tracing::error!(error = %e, "cannot issue a set-password link");
        ApiError::Internal
    })?;
    Ok((
        token,
        PasswordLink {
            token_hash: hashed.to_vec(),
            expires_at: now_millis() + LINK_LIFETIME_MS,
        },
    ))
}

/// The link text for `token` under `origin`.
pub fn link_text(origin: &str, token: &str) -> String {
    format!(
        "{}/set-password?token={token}",
        origin.trim_end_matches('/')
    )
}

/// Creates a user of `partner` (`None`: an administrator) with a set-password link under
/// `origin`: the user and the link.
pub async fn create_with_link(
    store: &dyn Store,
    partner: Option<PartnerId>,
    email: &str,
    actor: &Actor,
    origin: &str,
) -> Result<(UserRecord, String), ApiError> {
    let email = normalise_email(email).ok_or_else(|| ApiError::Invalid {
        code: "invalid_email",
        message: "email: not an e-mail address".into(),
    })?;
    let (token, link) = fresh_link()?;
    if let Some(partner) = partner {
        if store.partner(partner).await?.is_none() {
            return Err(ApiError::NotFound("partner"));
        }
    }
    match store.create_user(partner, &email, link, actor).await? {
        Some(user) => Ok((user, link_text(origin, &token))),
        None => Err(ApiError::EmailTaken(email)),
    }
}

/// Issues a new set-password link for user `id` under `origin` (any earlier one stops
/// working); `NotFound` if the user is unknown or, for a partner's actor, another partner's.
pub async fn reset_with_link(
    store: &dyn Store,
    id: i64,
    actor: &Actor,
    origin: &str,
) -> Result<String, ApiError> {
    let (token, link) = fresh_link()?;
    if store.issue_password_link(id, link, actor).await? {
        Ok(link_text(origin, &token))
    } else {
        Err(ApiError::NotFound("user"))
    }
}

/// Where the portal is, for links: the configured `portal_url`, else this request's host.
pub fn origin(state: &ApiState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.portal_url {
        return url.clone();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("https://{host}")
}

fn out(user: &UserRecord, link: String) -> UserLinkOut {
    UserLinkOut {
        id: user.id,
        partner_id: user.partner,
        admin: user.partner.is_none(),
        email: user.email.clone(),
        link,
        link_expires_at: super::wire::time(now_millis() + LINK_LIFETIME_MS),
    }
}

/// Create a portal user for a partner, or an administrator; the answer carries its one-time
/// set-password link.
#[utoipa::path(post, path = "/api/v1/users", tag = "admin",
    request_body = UserIn,
    responses(
        (status = 201, description = "Created, with the set-password link", body = UserLinkOut),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the administrator", body = ErrorBody),
        (status = 404, description = "No such partner", body = ErrorBody),
        (status = 409, description = "E-mail taken", body = ErrorBody),
        (status = 422, description = "Invalid e-mail, or `partner_id` missing for a partner's user or given for an administrator", body = ErrorBody),
    ))]
pub async fn create_user(
    State(state): State<ApiState>,
    caller: Authenticated,
    headers: HeaderMap,
    JsonBody(body): JsonBody<UserIn>,
) -> Result<(StatusCode, Json<UserLinkOut>), ApiError> {
    caller.admin()?;
    let partner = match (body.admin, body.partner_id) {
        (false, Some(id)) => Some(id),
        (true, None) => None,
        (false, None) => {
            return Err(ApiError::Invalid {
                code: "invalid_user",
                message: "partner_id: a partner's user needs its partner".into(),
            })
        }
        (true, Some(_)) => {
            return Err(ApiError::Invalid {
                code: "invalid_user",
                message: "partner_id: an administrator has no partner".into(),
            })
        }
    };
    let origin = origin(&state, &headers);
    let (user, link) = create_with_link(
        state.store.as_ref(),
        partner,
        &body.email,
        &caller.actor(),
        &origin,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(out(&user, link))))
}

/// List portal users, all or one partner's.
#[utoipa::path(get, path = "/api/v1/users", tag = "admin",
    params(UserFilter),
    responses(
        (status = 200, description = "The users, in id order", body = Vec<UserOut>),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the administrator", body = ErrorBody),
    ))]
pub async fn list_users(
    State(state): State<ApiState>,
    caller: Authenticated,
    filter: Result<axum::extract::Query<UserFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<UserOut>>, ApiError> {
    caller.admin()?;
    let axum::extract::Query(filter) = filter.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if filter.partner_id.is_some_and(|id| id < 0) {
        return Err(ApiError::BadRequest(
            "partner_id: a partner id is not negative".into(),
        ));
    }
    let users = state.store.users(filter.partner_id).await?;
    Ok(Json(users.into_iter().map(Into::into).collect()))
}

/// Re-issue a user's set-password link (a password reset): the earlier link stops working;
/// the user's sessions end when the new password is set.
#[utoipa::path(post, path = "/api/v1/users/{id}/reset", tag = "admin",
    params(("id" = i64, Path, description = "The user's id", minimum = 0)),
    responses(
        (status = 200, description = "A new set-password link", body = UserLinkOut),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the administrator", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn reset_user(
    State(state): State<ApiState>,
    caller: Authenticated,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<UserLinkOut>, ApiError> {
    caller.admin()?;
    let origin = origin(&state, &headers);
    let link = reset_with_link(state.store.as_ref(), id, &caller.actor(), &origin).await?;
    let user = state
        .store
        .user(id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    Ok(Json(out(&user, link)))
}

/// Disables or enables user `id` as `actor` (a partner's actor: only its own partner's users);
/// disabling ends the user's sessions. `NotFound` if the user is unknown or out of reach.
pub async fn set_disabled(
    store: &dyn Store,
    id: i64,
    disabled: bool,
    actor: &Actor,
) -> Result<UserRecord, ApiError> {
    store
        .set_user_disabled(id, disabled, actor)
        .await?
        .ok_or(ApiError::NotFound("user"))
}

/// Disable a user: it can no longer log in, and its sessions end at once.
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "admin",
    params(("id" = i64, Path, description = "The user's id", minimum = 0)),
    responses(
        (status = 200, description = "Disabled (also when it already was)", body = UserOut),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the administrator", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn disable_user(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<UserOut>, ApiError> {
    caller.admin()?;
    let user = set_disabled(state.store.as_ref(), id, true, &caller.actor()).await?;
    Ok(Json(user.into()))
}

/// Enable a disabled user again: it can log in with its password.
#[utoipa::path(post, path = "/api/v1/users/{id}/enable", tag = "admin",
    params(("id" = i64, Path, description = "The user's id", minimum = 0)),
    responses(
        (status = 200, description = "Enabled (also when it already was)", body = UserOut),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not the administrator", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn enable_user(
    State(state): State<ApiState>,
    caller: Authenticated,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<UserOut>, ApiError> {
    caller.admin()?;
    let user = set_disabled(state.store.as_ref(), id, false, &caller.actor()).await?;
    Ok(Json(user.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_or_refused() {
        assert_eq!(
            normalise_email("  Ann@Example.COM ").as_deref(),
            Some("ann@example.com")
        );
        for bad in ["", "ann", "@x", "ann@", "a b@x.y", "a@b@c", "<a>@x.y"] {
            assert_eq!(normalise_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn links_carry_the_token_under_the_origin() {
        assert_eq!(
            link_text("https://p.example/", "abc"),
            "https://p.example/set-password?token=abc"
        );
    }
}
