//! Portal sessions: the `zt_session` cookie, the session behind it in the store (so any node
//! accepts it), its idle and absolute expiry, the per-session CSRF token every form posts
//! back, and the check that a form was posted from this site.
//!
//! The cookie carries 32 random bytes; the store keeps only their SHA-256, so a copy of the
//! database opens no session. Must not know pages or what users may do.

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use super::i18n::Lang;
use super::PortalState;
use crate::partner_api::auth::{hash, Authenticated, Caller};
use crate::partner_api::error::ApiError;
use crate::server::ConnInfo;
use crate::store::{now_millis, Actor, Millis, SessionRecord, UserRecord};

/// The session cookie's name.
pub const COOKIE: &str = "zt_session";

/// How stale a session's `last_seen` may get before a request writes it again (at most a
/// minute, and a quarter of the idle expiry), so browsing costs few writes.
fn touch_resolution(idle: Duration) -> Millis {
    (idle.as_millis() as i64 / 4).clamp(1, 60_000)
}

/// How long sessions last.
#[derive(Clone, Copy, Debug)]
pub struct Expiry {
    /// Ends after this long without a request.
    pub idle: Duration,
    /// Ends this long after login.
    pub lifetime: Duration,
}

impl Expiry {
    /// Whether `session` has ended at `now`.
    pub fn ended(&self, session: &SessionRecord, now: Millis) -> bool {
        now - session.last_seen > self.idle.as_millis() as i64
            || now - session.created_at > self.lifetime.as_millis() as i64
    }
}

/// 32 random bytes, base64url.
pub fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The session id the request's cookie carries, if any.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && (20..=64).contains(&value.len())).then(|| value.to_owned())
        })
}

/// The `Set-Cookie` value for a new session id.
pub fn set_cookie(id: &str, lifetime: Duration) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        lifetime.as_secs()
    ))
    .ok()
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("zt_session=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

/// Starts a session for `user`: stores it (removing expired ones) and answers the cookie's id.
pub async fn start(state: &PortalState, user: &UserRecord) -> Result<String, crate::store::Error> {
    let (Some(id), Some(csrf)) = (random_token(), random_token()) else {
        return Err(crate::store::Error::Unavailable(
            "the system random number generator failed".into(),
        ));
    };
    let now = now_millis();
    let expiry = state.expiry;
    state
        .api
        .store
        .create_session(
            SessionRecord {
                id_hash: hash(&id).to_vec(),
                user: user.id,
                csrf,
                created_at: now,
                last_seen: now,
            },
            now - expiry.idle.as_millis() as i64,
            now - expiry.lifetime.as_millis() as i64,
        )
        .await?;
    Ok(id)
}

/// Ends the request's session, if it has one.
pub async fn end(state: &PortalState, headers: &HeaderMap) -> Result<(), crate::store::Error> {
    match cookie(headers) {
        Some(id) => state.api.store.delete_session(&hash(&id)).await,
        None => Ok(()),
    }
}

/// Whether a form was posted from this site: a browser's `Sec-Fetch-Site` must say
/// `same-origin` and its `Origin` must be this host. A client that sends neither (not a
/// browser) is left to the CSRF token.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let value = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if value(header::HeaderName::from_static("sec-fetch-site")).is_some_and(|s| s != "same-origin")
    {
        return false;
    }
    match (value(header::ORIGIN), value(header::HOST)) {
        (Some(origin), Some(host)) => {
            origin == format!("https://{host}") || origin == format!("http://{host}")
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// The language of a request without a user: the browser's `Accept-Language`.
pub fn browser_lang(headers: &HeaderMap) -> Lang {
    Lang::negotiate(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// A request from a logged-in portal user of a partner: the partner's pages. Without a
/// session they redirect to the login page; an administrator, who has no partner, is sent to
/// the pages it has (the audit log), so these pages only ever show one partner's data.
pub struct PortalUser {
    /// The user.
    pub user: UserRecord,
    /// The partner's name; `None` for an administrator.
    pub partner_name: Option<String>,
    /// The session's CSRF token.
    pub csrf: String,
    /// The language pages are shown in: the user's choice, else the browser's.
    pub lang: Lang,
    /// The client's address.
    pub source: Option<IpAddr>,
}

/// A request from any logged-in portal user, a partner's or an administrator: the pages
/// both have (audit, users, language, logout), which scope what they show by
/// [`PortalUser::caller`].
pub struct AnyUser(pub PortalUser);

/// Where an administrator lands in the portal.
pub const ADMIN_HOME: &str = "/audit";

impl PortalUser {
    /// The user's partner; `PartnerOnly` for an administrator (whom `PortalUser`'s extractor
    /// keeps off partners' pages already).
    pub fn partner(&self) -> Result<crate::domain::PartnerId, ApiError> {
        self.user.partner.ok_or(ApiError::PartnerOnly)
    }

    /// Whether the user is one of the operator's administrators.
    pub fn is_admin(&self) -> bool {
        self.user.partner.is_none()
    }

    /// The caller as the partner API's handlers know it: the user, acting for its partner,
    /// or with the administrator's rights.
    pub fn caller(&self) -> Authenticated {
        let (user, email) = (self.user.id, self.user.email.clone());
        Authenticated {
            caller: match self.user.partner {
                Some(id) => Caller::User { id, user, email },
                None => Caller::AdminUser { user, email },
            },
            source: self.source,
        }
    }

    /// The audit actor: `user:<id>:<email>`.
    pub fn actor(&self) -> Actor {
        self.caller().actor()
    }

    /// Whether a form's `csrf` field is this session's token.
    pub fn csrf_ok(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.csrf.as_bytes())))
    }
}

impl FromRequestParts<PortalState> for PortalUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, Response> {
        let AnyUser(user) = AnyUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            return Err(Redirect::to(ADMIN_HOME).into_response());
        }
        Ok(user)
    }
}

impl FromRequestParts<PortalState> for AnyUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, Response> {
        let to_login = |ended: bool| {
            let mut r =
                Redirect::to(if ended { "/login?ended=1" } else { "/login" }).into_response();
            if ended {
                r.headers_mut().insert(header::SET_COOKIE, clear_cookie());
            }
            r
        };
        let lang = browser_lang(&parts.headers);
        let unavailable = |e: crate::store::Error| {
            tracing::warn!(error = %e, "portal: store unavailable for a session");
            state.pages.message(lang, 503, "unavailable")
        };
        let Some(id) = cookie(&parts.headers) else {
            return Err(to_login(false));
        };
        let id_hash = hash(&id);
        let store = &state.api.store;
        let Some(session) = store.session(&id_hash).await.map_err(unavailable)? else {
            return Err(to_login(true));
        };
        let now = now_millis();
        if state.expiry.ended(&session, now) {
            store.delete_session(&id_hash).await.map_err(unavailable)?;
            return Err(to_login(true));
        }
        let Some(user) = store
            .user(session.user)
            .await
            .map_err(unavailable)?
            .filter(|u| !u.disabled)
        else {
            return Err(to_login(true));
        };
        let partner_name = match user.partner {
            Some(id) => match store.partner(id).await.map_err(unavailable)? {
                Some(partner) => Some(partner.name),
                None => return Err(to_login(true)),
            },
            None => None,
        };
        if now - session.last_seen >= touch_resolution(state.expiry.idle) {
            store
                .touch_session(&id_hash, now)
                .await
                .map_err(unavailable)?;
        }
        Ok(AnyUser(PortalUser {
            lang: user
                .language
                .as_deref()
                .and_then(Lang::from_code)
                .unwrap_or(lang),
            partner_name,
            csrf: session.csrf,
            source: parts.extensions.get::<ConnInfo>().map(|c| c.remote.ip()),
            user,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(created_at: Millis, last_seen: Millis) -> SessionRecord {
        SessionRecord {
            id_hash: vec![],
            user: 1,
            csrf: String::new(),
            created_at,
            last_seen,
        }
    }

    #[test]
    fn sessions_end_when_idle_or_old() {
        let e = Expiry {
            idle: Duration::from_secs(1800),
            lifetime: Duration::from_secs(12 * 3600),
        };
        let now = 100_000_000;
        assert!(!e.ended(&session(now - 1000, now - 1000), now));
        assert!(
            e.ended(&session(now - 2_000_000, now - 1_800_001), now),
            "idle"
        );
        assert!(!e.ended(&session(now - 43_200_000, now), now));
        assert!(e.ended(&session(now - 43_200_001, now), now), "absolute");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        let id = "a".repeat(43);
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; zt_session={id}; y=2")).unwrap(),
        );
        assert_eq!(cookie(&h), Some(id));
        assert_eq!(cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("p.example:9443"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://p.example:9443"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://p.example:9443"),
        );
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn the_cookie_is_http_only_secure_and_strict() {
        let c = set_cookie("abc", Duration::from_secs(60)).unwrap();
        let c = c.to_str().unwrap();
        for part in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(c.contains(part), "{c}");
        }
    }
}
