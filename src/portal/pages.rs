//! The portal's pages: Tera templates embedded in the binary, compiled once at start, rendered
//! with the user's language catalog; and the few answers that need no template.
//!
//! Owns the portal's use of Tera (the phones' configs have their own, in
//! `provisioning::render`). Values are HTML-escaped by Tera (every template is `.html`).
//! Must not know the store, sessions or the API's rules.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use tera::{Context, Tera, Value};

use super::i18n::Lang;
use super::session::PortalUser;
use super::TemplateError;
use crate::partner_api::error::ApiError;

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("message.html", include_str!("templates/message.html")),
    ("login.html", include_str!("templates/login.html")),
    (
        "set_password.html",
        include_str!("templates/set_password.html"),
    ),
    ("invite.html", include_str!("templates/invite.html")),
    ("customers.html", include_str!("templates/customers.html")),
    (
        "customer_form.html",
        include_str!("templates/customer_form.html"),
    ),
    ("instances.html", include_str!("templates/instances.html")),
    (
        "instance_form.html",
        include_str!("templates/instance_form.html"),
    ),
    ("devices.html", include_str!("templates/devices.html")),
    ("device_new.html", include_str!("templates/device_new.html")),
    ("device.html", include_str!("templates/device.html")),
    ("release.html", include_str!("templates/release.html")),
    ("bulk.html", include_str!("templates/bulk.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("users.html", include_str!("templates/users.html")),
    ("tokens.html", include_str!("templates/tokens.html")),
    ("selected.html", include_str!("templates/selected.html")),
    (
        "instance_delete.html",
        include_str!("templates/instance_delete.html"),
    ),
];

/// The compiled templates.
pub struct Pages {
    tera: Tera,
}

impl Pages {
    /// Compiles every template.
    pub fn new() -> Result<Self, TemplateError> {
        let mut tera = Tera::default();
        tera.add_raw_templates(TEMPLATES.iter().copied())
            .map_err(|e| TemplateError(format!("{e:?}")))?;
        tera.autoescape_on(vec![".html"]);
        tera.register_filter("date", date_filter);
        Ok(Self { tera })
    }

    /// A context with what every page shows: the language's messages and, for a logged-in
    /// user, who it is and the session's CSRF token.
    pub fn context(lang: Lang, user: Option<&PortalUser>, nav: &str) -> Context {
        let mut c = Context::new();
        c.insert("t", lang.catalog());
        c.insert("lang", lang.code());
        c.insert("langs", &Lang::ALL.map(Lang::code));
        c.insert("nav", nav);
        if let Some(u) = user {
            c.insert("email", &u.user.email);
            c.insert(
                "partner",
                u.partner_name.as_deref().unwrap_or(lang.t("operator")),
            );
            c.insert("admin", &u.is_admin());
            c.insert("csrf", &u.csrf);
        }
        c
    }

    /// Renders `name` with `context` and the given status.
    pub fn render(&self, status: u16, name: &str, context: &Context) -> Response {
        match self.tera.render(name, context) {
            Ok(html) => (status_code(status), Html(html)).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = ?e, "portal: a page failed to render");
                plain(500, "internal error")
            }
        }
    }

    /// A page with one message from the catalog.
    pub fn message(&self, lang: Lang, status: u16, key: &str) -> Response {
        let mut c = Self::context(lang, None, "");
        c.insert("message", lang.t(key));
        self.render(status, "message.html", &c)
    }

    /// The page for a failure of an API handler: its status, its message in the user's
    /// language.
    pub fn api_error(&self, user: &PortalUser, e: &ApiError) -> Response {
        let mut c = Self::context(user.lang, Some(user), "");
        c.insert("message", &error_text(user.lang, e));
        self.render(e.status().as_u16(), "message.html", &c)
    }
}

/// An API failure as the user reads it: the catalog's text for its code (with the rule's
/// reason for a MAC that could not be registered), else the API's own message.
pub fn error_text(lang: Lang, e: &ApiError) -> String {
    let reason = match e {
        ApiError::CouldNotRegister { code, .. } => Some(*code),
        _ => None,
    };
    match e {
        ApiError::Internal => lang.t("error_internal").to_owned(),
        // Which setting and rule, in the user's language; the API's English stays in the API.
        ApiError::Setting { violation, .. } => lang.violation(violation),
        // The rule's own words say which field and why; the catalog says what kind of
        // refusal it is in the user's language.
        ApiError::Invalid { message, .. } | ApiError::BadRequest(message) => {
            match lang.error(e.code(), None) {
                Some(kind) if lang != Lang::En => format!("{kind} ({message})"),
                _ => message.clone(),
            }
        }
        _ => lang
            .error(e.code(), reason)
            .unwrap_or_else(|| e.to_string()),
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A plain-text answer (no template), for refusals before a page can be chosen.
pub fn plain(status: u16, text: &str) -> Response {
    let mut r = (status_code(status), text.to_owned()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// `{{ at | date(lang=lang) }}`: an RFC 3339 time as the language writes it.
fn date_filter(
    value: &Value,
    args: &std::collections::HashMap<String, Value>,
) -> tera::Result<Value> {
    let lang = args
        .get("lang")
        .and_then(Value::as_str)
        .and_then(Lang::from_code)
        .unwrap_or(Lang::En);
    Ok(match value.as_str() {
        Some(at) => Value::String(lang.date(at)),
        None => value.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_settings_read_in_the_users_language_without_the_apis_english() {
        let refused = ApiError::setting(
            crate::domain::Violation::new("keepalive_seconds", crate::domain::SettingRule::AtLeast)
                .min(15)
                .models("yealink"),
            "keepalive_seconds: yealink accepts a NAT keep-alive interval of 15 seconds or more",
        );
        assert_eq!(
            error_text(Lang::Fr, &refused),
            "Keep-alive NAT (secondes) : les téléphones Yealink exigent au moins 15"
        );
        assert_eq!(
            error_text(Lang::En, &refused),
            "NAT keep-alive (seconds): Yealink phones need at least 15"
        );
    }

    #[test]
    fn refusals_read_in_the_users_language() {
        let invalid = ApiError::Invalid {
            code: "invalid_setting",
            message: "sip_port must be between 1 and 65535".into(),
        };
        assert_eq!(
            error_text(Lang::Fr, &invalid),
            "Un réglage n'est pas valide (sip_port must be between 1 and 65535)"
        );
        assert_eq!(
            error_text(Lang::En, &invalid),
            "sip_port must be between 1 and 65535"
        );
        assert_eq!(
            error_text(Lang::De, &ApiError::AlreadyInUse("805ec0112233".into())),
            "Diese MAC-Adresse wird bereits verwendet"
        );
    }

    #[test]
    fn every_template_compiles_and_the_message_page_renders() {
        let pages = Pages::new().unwrap();
        for lang in Lang::ALL {
            let r = pages.message(lang, 404, "not_found");
            assert_eq!(r.status(), 404);
        }
    }
}
