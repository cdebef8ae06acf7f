//! The Users tab: the people who log in to the portal, with whether each is active, invited
//! or disabled, and a button to disable or enable one. A partner's people see and manage
//! their partner's colleagues; an administrator sees and manages everyone. Which users an
//! actor may touch is the store's rule (`rules::user_in_reach`), as for the API.
//!
//! Must not know SQL or how sessions end.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Serialize;
use serde_json::json;

use super::csrf_refused;
use super::pages::{error_text, Pages};
use super::session::{AnyUser, PortalUser};
use super::PortalState;
use crate::partner_api::users::{create_user, reset_user, set_disabled};
use crate::partner_api::{ApiPath, JsonBody};
use crate::store::UserRecord;

/// One row of the list.
#[derive(Serialize)]
struct Row {
    id: i64,
    email: String,
    partner: Option<String>,
    admin: bool,
    /// `active`, `invited` or `disabled`.
    state: &'static str,
    /// The row is the viewer's own (no button: one cannot lock oneself out).
    own: bool,
}

fn row(u: UserRecord, partner: Option<String>, viewer: i64) -> Row {
    let state = if u.disabled {
        "disabled"
    } else if u.password_hash.is_none() {
        "invited"
    } else {
        "active"
    };
    Row {
        id: u.id,
        admin: u.partner.is_none(),
        own: u.id == viewer,
        email: u.email,
        partner,
        state,
    }
}

/// The users the viewer may manage.
pub async fn list(
    State(state): State<PortalState>,
    AnyUser(user): AnyUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let saved = q.contains_key("saved");
    page(
        &state,
        &user,
        200,
        Outcome {
            saved,
            ..Outcome::default()
        },
    )
    .await
}

/// What the page says above the list after an action.
#[derive(Default)]
struct Outcome {
    /// A change was saved.
    saved: bool,
    /// A set-password link made by the administrator, shown once, and for whom.
    link: Option<(String, String)>,
    /// Why the administrator's form was refused, and what was typed.
    error: Option<(String, HashMap<String, String>)>,
}

/// The Users page.
async fn page(state: &PortalState, user: &PortalUser, status: u16, outcome: Outcome) -> Response {
    let store = &state.api.store;
    // A partner's people see their partner's users; the administrator (no partner) everyone.
    let users = match store.users(user.user.partner).await {
        Ok(users) => users,
        Err(e) => return state.pages.api_error(user, &e.into()),
    };
    let names: HashMap<i64, String> = if user.is_admin() {
        match store.partners().await {
            Ok(ps) => ps.into_iter().map(|p| (p.id, p.name)).collect(),
            Err(e) => return state.pages.api_error(user, &e.into()),
        }
    } else {
        HashMap::new()
    };
    let rows: Vec<Row> = users
        .into_iter()
        .map(|u| {
            let partner = u.partner.and_then(|p| names.get(&p).cloned());
            row(u, partner, user.user.id)
        })
        .collect();
    let mut partners: Vec<(&i64, &String)> = names.iter().collect();
    partners.sort_by(|a, b| a.1.cmp(b.1));
    let mut c = Pages::context(user.lang, Some(user), "users");
    c.insert("users", &rows);
    c.insert("partners", &partners);
    c.insert("saved", &outcome.saved);
    if let Some((email, link)) = &outcome.link {
        c.insert("link_email", email);
        c.insert("link", link);
    }
    if let Some((error, form)) = &outcome.error {
        c.insert("error", error);
        c.insert("form", form);
    }
    state.pages.render(status, "users.html", &c)
}

/// `POST /users` (administrators): a new user of a partner, or a new administrator; the
/// one-time set-password link is shown once, as `zerotouch user create` prints it.
pub async fn create(
    State(state): State<PortalState>,
    AnyUser(user): AnyUser,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    if !user.is_admin() {
        return state.pages.message(user.lang, 404, "not_found");
    }
    let email = form.get("email").map_or("", |e| e.trim()).to_owned();
    let body = match form.get("partner").map(String::as_str) {
        Some("admin") => json!({"email": email, "admin": true}),
        Some(id) => match id.parse::<i64>() {
            Ok(id) => json!({"email": email, "partner_id": id}),
            Err(_) => json!({"email": email}),
        },
        None => json!({"email": email}),
    };
    let created = match serde_json::from_value(body) {
        Ok(body) => {
            create_user(
                State(state.api.clone()),
                user.caller(),
                headers,
                JsonBody(body),
            )
            .await
        }
        Err(_) => return state.pages.message(user.lang, 422, "error_bad_request"),
    };
    match created {
        Ok((_, Json(out))) => {
            let outcome = Outcome {
                link: Some((out.email, out.link)),
                ..Outcome::default()
            };
            page(&state, &user, 201, outcome).await
        }
        Err(e) => {
            let outcome = Outcome {
                error: Some((error_text(user.lang, &e), form)),
                ..Outcome::default()
            };
            page(&state, &user, e.status().as_u16(), outcome).await
        }
    }
}

/// `POST /users/{id}/reset` (administrators): a new set-password link for a user, shown once;
/// the old password stops working when the link is used.
pub async fn reset(
    State(state): State<PortalState>,
    AnyUser(user): AnyUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let Some(id) = id.parse::<i64>().ok().filter(|_| user.is_admin()) else {
        return state.pages.message(user.lang, 404, "not_found");
    };
    match reset_user(
        State(state.api.clone()),
        user.caller(),
        headers,
        ApiPath(id),
    )
    .await
    {
        Ok(Json(out)) => {
            let outcome = Outcome {
                link: Some((out.email, out.link)),
                ..Outcome::default()
            };
            page(&state, &user, 200, outcome).await
        }
        Err(e) => state.pages.api_error(&user, &e),
    }
}

/// `POST /users/{id}/disable`.
pub async fn disable(
    state: State<PortalState>,
    user: AnyUser,
    id: Path<String>,
    form: Form<HashMap<String, String>>,
) -> Response {
    change(state, user, id, form, true).await
}

/// `POST /users/{id}/enable`.
pub async fn enable(
    state: State<PortalState>,
    user: AnyUser,
    id: Path<String>,
    form: Form<HashMap<String, String>>,
) -> Response {
    change(state, user, id, form, false).await
}

/// Disables or enables a user the viewer may manage (404 for anyone else), audited as the
/// viewer; disabling ends the user's sessions.
async fn change(
    State(state): State<PortalState>,
    AnyUser(user): AnyUser,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
    disabled: bool,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let Ok(id) = id.parse::<i64>() else {
        return state.pages.message(user.lang, 404, "not_found");
    };
    if id == user.user.id {
        return state.pages.message(user.lang, 422, "user_self");
    }
    match set_disabled(state.api.store.as_ref(), id, disabled, &user.actor()).await {
        Ok(_) => Redirect::to("/users?saved=1").into_response(),
        Err(e) => state.pages.api_error(&user, &e),
    }
}
