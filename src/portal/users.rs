//! The Users tab: the people who log in to the portal, with whether each is active, invited
//! or disabled, and a button to disable or enable one. A partner's people see and manage
//! their partner's colleagues; an administrator sees and manages everyone. Which users an
//! actor may touch is the store's rule (`rules::user_in_reach`), as for the API.
//!
//! Must not know SQL or how sessions end.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Serialize;

use super::csrf_refused;
use super::pages::Pages;
use super::session::AnyUser;
use super::PortalState;
use crate::partner_api::users::set_disabled;
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
    let store = &state.api.store;
    // A partner's people see their partner's users; the administrator (no partner) everyone.
    let users = match store.users(user.user.partner).await {
        Ok(users) => users,
        Err(e) => return state.pages.api_error(&user, &e.into()),
    };
    let names: HashMap<i64, String> = if user.is_admin() {
        match store.partners().await {
            Ok(ps) => ps.into_iter().map(|p| (p.id, p.name)).collect(),
            Err(e) => return state.pages.api_error(&user, &e.into()),
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
    let mut c = Pages::context(user.lang, Some(&user), "users");
    c.insert("users", &rows);
    c.insert("saved", &q.contains_key("saved"));
    state.pages.render(200, "users.html", &c)
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
