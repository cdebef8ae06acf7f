//! The partner portal: server-rendered pages for partners' people, served on the API listener
//! at `/` beside the REST API under `/api/v1` (same origin).
//!
//! A person logs in with e-mail and password (`account.rs`, `password.rs`, throttled by
//! `throttle.rs`), gets a server-side session (`session.rs`), and works through pages
//! (`customers.rs`, `instances.rs`, `devices.rs`, `bulk.rs`, `selected.rs`, `audit.rs`,
//! `tokens.rs`, `users.rs`) that call the partner API's own handlers with the user as caller,
//! so every rule, refusal and audit entry is the API's. The operator's administrators log in
//! the same way and get the audit log across partners and the users of all partners; the
//! partners' pages send them there (`session::PortalUser`). Pages are Tera templates embedded in the binary
//! (`pages.rs`), in English, French or German (`i18n.rs`); the one script and style sheet are
//! embedded too (`assets.rs`). Every answer of the listener carries a strict
//! Content-Security-Policy, `X-Frame-Options: DENY` and HSTS.
//!
//! Must not know SQL, how the API's rules decide, or phones' formats.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

use crate::partner_api::ApiState;

mod account;
mod assets;
mod audit;
mod bulk;
mod customers;
mod devices;
pub mod i18n;
mod instances;
mod pages;
pub mod password;
mod selected;
pub mod session;
pub mod throttle;
mod tokens;
mod users;

pub use pages::Pages;
pub use session::Expiry;

/// What every portal handler can reach.
#[derive(Clone)]
pub struct PortalState {
    /// The partner API's state: the portal acts through its handlers.
    pub api: ApiState,
    /// The compiled pages.
    pub pages: Arc<Pages>,
    /// How long sessions last.
    pub expiry: Expiry,
    /// Failed logins per account and per network.
    pub throttle: Arc<throttle::LoginThrottle>,
}

/// The templates did not compile: a bug in the embedded templates, found at start.
#[derive(Debug, thiserror::Error)]
#[error("the portal's templates do not compile: {0}")]
pub struct TemplateError(String);

/// The API listener's whole service: the portal's pages and assets, the partner API, and the
/// security headers on every answer.
pub fn router(api: ApiState, expiry: Expiry) -> Result<axum::Router, TemplateError> {
    let state = PortalState {
        pages: Arc::new(Pages::new()?),
        expiry,
        throttle: Arc::default(),
        api: api.clone(),
    };
    let portal = axum::Router::new()
        .route("/", get(devices::home))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route(
            "/set-password",
            get(account::set_password_page).post(account::set_password),
        )
        .route("/language", post(account::language))
        .route("/invite", get(account::invite_page).post(account::invite))
        .route("/customers", get(customers::list).post(customers::create))
        .route("/customers/new", get(customers::new_form))
        .route(
            "/customers/{id}",
            get(customers::edit_form).post(customers::update),
        )
        .route("/instances", get(instances::list).post(instances::create))
        .route("/instances/new", get(instances::new_form))
        .route(
            "/instances/{name}/delete",
            get(instances::delete_confirm).post(instances::delete),
        )
        .route(
            "/instances/{name}",
            get(instances::edit_form).post(instances::update),
        )
        .route("/devices", get(devices::list).post(devices::create))
        .route("/devices/new", get(devices::new_form))
        .route("/devices/check", get(devices::check))
        .route("/devices/selected", post(selected::submit))
        .route("/devices/{mac}", get(devices::page))
        .route("/devices/{mac}/enrolment", post(devices::reopen))
        .route("/devices/{mac}/rotate", post(devices::rotate))
        .route("/devices/{mac}/move", post(devices::move_to))
        .route("/devices/{mac}/settings", post(devices::edit))
        .route(
            "/devices/{mac}/release",
            get(devices::release_confirm).post(devices::release),
        )
        .route("/bulk", get(bulk::form).post(bulk::submit))
        .route("/audit", get(audit::list))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}/reset", post(users::reset))
        .route("/users/{id}/disable", post(users::disable))
        .route("/users/{id}/enable", post(users::enable))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/assets/portal.css", get(assets::css))
        .route("/assets/portal.js", get(assets::js))
        .layer(axum::middleware::from_fn(same_origin_posts))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            crate::partner_api::observe,
        ))
        .with_state(state);
    Ok(portal
        .merge(crate::partner_api::router(api))
        .layer(axum::middleware::from_fn(security_headers)))
}

/// Refuses a form posted from another site (403) before any handler runs; the CSRF token is
/// checked by each handler on top.
async fn same_origin_posts(req: Request, next: Next) -> Response {
    if req.method() == Method::POST && !session::same_origin(req.headers()) {
        let lang = session::browser_lang(req.headers());
        return pages::plain(403, lang.t("forbidden"));
    }
    next.run(req).await
}

/// The content security policy of every answer: only this origin's own scripts, styles and
/// forms; no frames, no `<base>`.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Adds the security headers to every answer of the API listener.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The refusal of a form posted without this session's CSRF token (`None`: the token is
/// right). Every form handler asks this one function first.
fn csrf_refused(
    state: &PortalState,
    user: &session::PortalUser,
    form: &std::collections::HashMap<String, String>,
) -> Option<axum::response::Response> {
    (!user.csrf_ok(form.get("csrf").map(String::as_str)))
        .then(|| state.pages.message(user.lang, 403, "forbidden"))
}
