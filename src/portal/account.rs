//! Logging in and out, choosing a password with a one-time link, choosing a language, and
//! inviting a colleague of the same partner.
//!
//! Must not know SQL or what the other pages show.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};

use super::csrf_refused;
use super::i18n::Lang;
use super::pages::{error_text, Pages};
use super::session::{self, browser_lang, AnyUser, PortalUser, ADMIN_HOME};
use super::{password, PortalState};
use crate::partner_api::auth::hash;
use crate::partner_api::users::{create_with_link, normalise_email, origin};
use crate::server::ConnInfo;
use crate::store::now_millis;

type Fields = Form<HashMap<String, String>>;

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", String::as_str)
}

fn login_form(
    state: &PortalState,
    lang: Lang,
    status: u16,
    notice: Option<&str>,
    error: Option<&str>,
    email: &str,
) -> Response {
    let mut c = Pages::context(lang, None, "login");
    if let Some(n) = notice {
        c.insert("notice", lang.t(n));
    }
    if let Some(e) = error {
        c.insert("error", lang.t(e));
    }
    c.insert("login_email", email);
    state.pages.render(status, "login.html", &c)
}

/// The login page (with a notice after logout, expiry or a new password).
pub async fn login_page(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let notice = if q.contains_key("ended") {
        Some("session_ended")
    } else if q.contains_key("out") {
        Some("logged_out")
    } else if q.contains_key("set") {
        Some("password_set")
    } else {
        None
    };
    login_form(&state, browser_lang(&headers), 200, notice, None, "")
}

/// Checks e-mail and password (throttled per account and network) and starts a session.
pub async fn login(
    State(state): State<PortalState>,
    conn: Option<Extension<ConnInfo>>,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    let lang = browser_lang(&headers);
    let source = conn.map(|Extension(c)| c.remote.ip());
    let typed = field(&form, "email");
    let email = normalise_email(typed).unwrap_or_else(|| typed.trim().to_lowercase());
    let started = std::time::Instant::now();
    if !state.throttle.allows(&email, source, started) {
        return login_form(&state, lang, 429, None, Some("login_throttled"), &email);
    }
    let user = match state.api.store.user_by_email(&email).await {
        Ok(user) => user,
        Err(e) => {
            tracing::warn!(error = %e, "portal: store unavailable for a login");
            return state.pages.message(lang, 503, "unavailable");
        }
    };
    let presented = field(&form, "password").to_owned();
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let matches =
        tokio::task::spawn_blocking(move || password::verify(&presented, stored.as_deref()))
            .await
            .unwrap_or(false);
    let user = match user {
        Some(u) if matches && !u.disabled => u,
        _ => {
            state.throttle.failed(&email, source, started);
            tracing::info!(target: "zerotouch::portal", source = ?source, "portal login refused");
            return login_form(&state, lang, 401, None, Some("login_failed"), &email);
        }
    };
    state.throttle.succeeded(&email);
    let id = match session::start(&state, &user).await {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(error = %e, "portal: cannot store a session");
            return state.pages.message(lang, 503, "unavailable");
        }
    };
    tracing::info!(target: "zerotouch::portal", user = user.id, source = ?source, "portal login");
    let home = if user.partner.is_some() {
        "/devices"
    } else {
        ADMIN_HOME
    };
    let mut r = Redirect::to(home).into_response();
    if let Some(cookie) = session::set_cookie(&id, state.expiry.lifetime) {
        r.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    r
}

/// Ends the session (a form with the CSRF token).
pub async fn logout(
    State(state): State<PortalState>,
    AnyUser(user): AnyUser,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    if let Err(e) = session::end(&state, &headers).await {
        tracing::warn!(error = %e, "portal: cannot delete a session");
        return state.pages.message(user.lang, 503, "unavailable");
    }
    let mut r = Redirect::to("/login?out=1").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    r
}

fn set_password_form(
    state: &PortalState,
    lang: Lang,
    status: u16,
    token: &str,
    error: Option<&str>,
) -> Response {
    let mut c = Pages::context(lang, None, "login");
    c.insert("token", token);
    if let Some(e) = error {
        c.insert("error", lang.t(e));
    }
    state.pages.render(status, "set_password.html", &c)
}

/// The form a set-password link opens.
pub async fn set_password_page(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = q.get("token").map_or("", String::as_str);
    set_password_form(&state, browser_lang(&headers), 200, token, None)
}

/// Sets the password of the link's user (the link then stops working, and the user's other
/// sessions end).
pub async fn set_password(
    State(state): State<PortalState>,
    conn: Option<Extension<ConnInfo>>,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    let lang = browser_lang(&headers);
    let token = field(&form, "token");
    let (new, again) = (field(&form, "password"), field(&form, "password_again"));
    if let Err(refusal) = password::check(new, again) {
        let key = match refusal {
            password::Refusal::Length => "password_short",
            password::Refusal::Mismatch => "password_mismatch",
        };
        return set_password_form(&state, lang, 422, token, Some(key));
    }
    let new = new.to_owned();
    let phc = match tokio::task::spawn_blocking(move || password::hash(&new)).await {
        Ok(Ok(phc)) => phc,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "portal: cannot hash a password");
            return state.pages.message(lang, 500, "error_internal");
        }
        Err(e) => {
            tracing::error!(error = %e, "portal: the hashing task failed");
            return state.pages.message(lang, 500, "error_internal");
        }
    };
    let source = conn.map(|Extension(c)| c.remote.ip());
    match state
        .api
        .store
        .set_password(&hash(token), &phc, now_millis(), source)
        .await
    {
        Ok(Some(_)) => Redirect::to("/login?set=1").into_response(),
        Ok(None) => set_password_form(&state, lang, 400, "", Some("link_invalid")),
        Err(e) => {
            tracing::warn!(error = %e, "portal: store unavailable for a new password");
            state.pages.message(lang, 503, "unavailable")
        }
    }
}

/// Stores the language the user chose, then shows the page it came from.
pub async fn language(
    State(state): State<PortalState>,
    AnyUser(user): AnyUser,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let Some(lang) = Lang::from_code(field(&form, "lang")) else {
        return state.pages.message(user.lang, 422, "not_found");
    };
    if let Err(e) = state
        .api
        .store
        .set_user_language(user.user.id, lang.code())
        .await
    {
        tracing::warn!(error = %e, "portal: cannot store a language");
        return state.pages.message(user.lang, 503, "unavailable");
    }
    let back = field(&form, "back");
    let back = if back.starts_with('/') && !back.starts_with("//") && !back.contains('\\') {
        back
    } else {
        "/"
    };
    Redirect::to(back).into_response()
}

/// The invitation form.
pub async fn invite_page(State(state): State<PortalState>, user: PortalUser) -> Response {
    let c = Pages::context(user.lang, Some(&user), "invite");
    state.pages.render(200, "invite.html", &c)
}

/// Creates a colleague's account for the user's own partner and shows its one-time link.
pub async fn invite(
    State(state): State<PortalState>,
    user: PortalUser,
    headers: HeaderMap,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    // The colleague is of the inviter's partner: never an administrator, which a user
    // without a partner would otherwise make.
    let partner = match user.partner() {
        Ok(p) => p,
        Err(e) => return state.pages.api_error(&user, &e),
    };
    let mut c = Pages::context(user.lang, Some(&user), "invite");
    let origin = origin(&state.api, &headers);
    match create_with_link(
        state.api.store.as_ref(),
        Some(partner),
        field(&form, "email"),
        &user.actor(),
        &origin,
    )
    .await
    {
        Ok((_, link)) => {
            c.insert("link", &link);
            state.pages.render(201, "invite.html", &c)
        }
        Err(e) => {
            c.insert("error", &error_text(user.lang, &e));
            c.insert("invite_email", field(&form, "email"));
            state.pages.render(e.status().as_u16(), "invite.html", &c)
        }
    }
}
