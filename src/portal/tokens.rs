//! The API tokens tab: the partner's API tokens (name, scope, expiry, last use), issuing one
//! (shown once) and revoking one, through the partner API's own token handlers, so a partner's
//! people manage the tokens its systems use without the administrator.
//!
//! Must not know how tokens are generated or stored.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde_json::json;

use super::csrf_refused;
use super::pages::{error_text, Pages};
use super::session::PortalUser;
use super::PortalState;
use crate::partner_api::error::ApiError;
use crate::partner_api::tokens::{create_own_token, list_own_tokens, revoke_own_token};
use crate::partner_api::wire::TokenOut;
use crate::partner_api::{ApiPath, OptionalJsonBody};

type Fields = Form<HashMap<String, String>>;

async fn render(
    state: &PortalState,
    user: &PortalUser,
    status: u16,
    issued: Option<TokenOut>,
    error: Option<String>,
) -> Response {
    let tokens = match list_own_tokens(State(state.api.clone()), user.caller()).await {
        Ok(Json(t)) => t,
        Err(e) => return state.pages.api_error(user, &e),
    };
    let mut c = Pages::context(user.lang, Some(user), "tokens");
    c.insert("tokens", &tokens);
    c.insert("issued", &issued);
    c.insert("error", &error);
    state.pages.render(status, "tokens.html", &c)
}

/// The token list and the form to issue one.
pub async fn list(State(state): State<PortalState>, user: PortalUser) -> Response {
    render(&state, &user, 200, None, None).await
}

/// Issues a token and shows it, once.
pub async fn create(
    State(state): State<PortalState>,
    user: PortalUser,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let text = |k: &str| form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut body = serde_json::Map::new();
    if let Some(name) = text("name") {
        body.insert("name".into(), json!(name));
    }
    let read_only = text("read_only").is_some();
    body.insert(
        "scope".into(),
        json!(if read_only { "read_only" } else { "read_write" }),
    );
    if let Some(day) = text("expires") {
        body.insert("expires_at".into(), json!(format!("{day}T00:00:00Z")));
    }
    let body = match serde_json::from_value(serde_json::Value::Object(body)) {
        Ok(b) => b,
        Err(_) => return state.pages.message(user.lang, 422, "error_bad_request"),
    };
    match create_own_token(
        State(state.api.clone()),
        user.caller(),
        OptionalJsonBody(body),
    )
    .await
    {
        Ok((_, Json(token))) => render(&state, &user, 201, Some(token), None).await,
        Err(mut e) => {
            // The API names the token's name `name`, which the forms' labels take for an
            // instance's name: on this form it is the token's.
            if let ApiError::Setting { violation, .. } = &mut e {
                if violation.field == "name" {
                    violation.field = "token_name".to_owned();
                }
            }
            let error = Some(error_text(user.lang, &e));
            render(&state, &user, e.status().as_u16(), None, error).await
        }
    }
}

/// Revokes one of the partner's tokens.
pub async fn revoke(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(id): Path<String>,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let Ok(id) = id.parse::<i64>() else {
        return state.pages.message(user.lang, 404, "not_found");
    };
    match revoke_own_token(State(state.api.clone()), user.caller(), ApiPath(id)).await {
        Ok(_) => Redirect::to("/tokens").into_response(),
        Err(e) => state.pages.api_error(&user, &e),
    }
}
