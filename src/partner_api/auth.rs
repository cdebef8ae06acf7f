//! API tokens: issuing, hashing, and recognising the caller of a request.
//!
//! A token is `zt_<key id>_<secret>`: the key id (public, 16 hex digits) finds the stored row,
//! the secret (32 random bytes, base64url) is checked against the SHA-256 stored for it, in
//! constant time. Tokens are shown once and never stored; a fast hash is enough because the
//! secret has 256 bits of entropy. The administrator's token comes from configuration and is
//! compared the same way.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::ApiState;
use crate::domain::PartnerId;
use crate::server::ConnInfo;
use crate::store::{now_millis, Actor, Millis, TokenRecord};

/// Prefix of every partner token, so leaked tokens are easy to spot and scan for.
pub const TOKEN_PREFIX: &str = "zt_";

/// A freshly issued token: the text to show once, and what to store.
pub struct IssuedToken {
    /// The whole token, shown to the caller once.
    pub token: String,
    /// Public id stored in clear.
    pub key_id: String,
    /// SHA-256 of the secret part.
    pub secret_hash: [u8; 32],
}

/// The system's random source failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomFailed;

/// Issues a new random token.
pub fn issue() -> Result<IssuedToken, RandomFailed> {
    let rng = SystemRandom::new();
    let mut key = [0u8; 8];
    let mut secret = [0u8; 32];
    rng.fill(&mut key).map_err(|_| RandomFailed)?;
    rng.fill(&mut secret).map_err(|_| RandomFailed)?;
    let key_id: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    Ok(IssuedToken {
        token: format!("{TOKEN_PREFIX}{key_id}_{secret}"),
        secret_hash: hash(&secret),
        key_id,
    })
}

/// SHA-256 of a secret.
pub fn hash(secret: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A fresh one-time token for a set-password link, and the SHA-256 stored for it: 32 random
/// bytes, base64url, so (as for API tokens) a fast hash is enough.
pub fn issue_link_token() -> Result<(String, [u8; 32]), RandomFailed> {
    let mut secret = [0u8; 32];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| RandomFailed)?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let hashed = hash(&token);
    Ok((token, hashed))
}

/// Splits a partner token into key id and secret; `None` if it is not one.
pub fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (key_id, secret) = rest.split_once('_')?;
    let ok = key_id.len() == 16
        && key_id.bytes().all(|c| c.is_ascii_hexdigit())
        && (20..=64).contains(&secret.len());
    ok.then_some((key_id, secret))
}

/// The administrator's token, kept only as its hash.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl AdminToken {
    /// From the configured token text.
    pub fn new(token: &str) -> Self {
        Self(hash(token))
    }

    fn matches(&self, presented: &str) -> bool {
        bool::from(hash(presented).ct_eq(&self.0))
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The operator's administrator.
    Admin,
    /// A partner.
    Partner {
        /// Its id.
        id: PartnerId,
        /// Its name.
        name: String,
    },
    /// One of the operator's administrators logged in to the portal: the administrator's
    /// rights, the person's name in the audit log.
    AdminUser {
        /// The user's row id.
        user: i64,
        /// The user's login e-mail.
        email: String,
    },
    /// A person logged in to the portal, acting for its partner with the partner's rights.
    User {
        /// The partner's id.
        id: PartnerId,
        /// The user's row id.
        user: i64,
        /// The user's login e-mail.
        email: String,
    },
}

/// The authenticated caller and where the request came from.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// Who.
    pub caller: Caller,
    /// From where.
    pub source: Option<IpAddr>,
}

impl Authenticated {
    /// The audit actor for this caller.
    pub fn actor(&self) -> Actor {
        match &self.caller {
            Caller::Admin => Actor {
                name: "admin".into(),
                partner: None,
                source: self.source,
            },
            Caller::Partner { id, name } => Actor {
                name: format!("partner:{id}:{name}"),
                partner: Some(*id),
                source: self.source,
            },
            Caller::User { id, user, email } => Actor {
                name: format!("user:{user}:{email}"),
                partner: Some(*id),
                source: self.source,
            },
            Caller::AdminUser { user, email } => Actor {
                name: format!("user:{user}:{email}"),
                partner: None,
                source: self.source,
            },
        }
    }

    /// The partner's id, or 403 for the administrator.
    pub fn partner(&self) -> Result<PartnerId, ApiError> {
        match self.caller {
            Caller::Partner { id, .. } | Caller::User { id, .. } => Ok(id),
            Caller::Admin | Caller::AdminUser { .. } => Err(ApiError::PartnerOnly),
        }
    }

    /// Ok for the administrator, 403 for a partner.
    pub fn admin(&self) -> Result<(), ApiError> {
        match self.caller {
            Caller::Admin | Caller::AdminUser { .. } => Ok(()),
            Caller::Partner { .. } | Caller::User { .. } => Err(ApiError::AdminOnly),
        }
    }
}

/// How stale a token's `last_used_at` may get: a busy token costs one write a minute.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Records, off the request's path, that `token` was accepted at `now` when its stored
/// `last_used_at` is more than a minute old. A lost write (the store is down, the server
/// stops) only leaves the time a little older.
fn note_use(state: &ApiState, token: &TokenRecord, now: Millis) {
    if token
        .last_used_at
        .is_some_and(|at| now - at < LAST_USED_RESOLUTION_MS)
    {
        return;
    }
    let (store, id) = (state.store.clone(), token.id);
    tokio::spawn(async move {
        if let Err(e) = store.tokens_used(vec![(id, now)]).await {
            tracing::debug!(error = %e, token = id, "cannot record a token's last use");
        }
    });
}

impl FromRequestParts<ApiState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let source = parts.extensions.get::<ConnInfo>().map(|c| c.remote.ip());
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or(ApiError::Unauthenticated)?;
        if let Some(admin) = &state.admin_token {
            if admin.matches(presented) {
                return Ok(Authenticated {
                    caller: Caller::Admin,
                    source,
                });
            }
        }
        let (key_id, secret) = split(presented).ok_or(ApiError::Unauthenticated)?;
        let now = now_millis();
        let record = state
            .store
            .token_by_key(key_id)
            .await?
            .filter(|t| t.valid_at(now))
            .ok_or(ApiError::Unauthenticated)?;
        if !bool::from(hash(secret).as_slice().ct_eq(record.secret_hash.as_slice())) {
            return Err(ApiError::Unauthenticated);
        }
        if record.read_only && !matches!(parts.method, Method::GET | Method::HEAD) {
            return Err(ApiError::ReadOnlyToken);
        }
        note_use(state, &record, now);
        let partner = state
            .store
            .partner(record.partner)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        Ok(Authenticated {
            caller: Caller::Partner {
                id: partner.id,
                name: partner.name,
            },
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_split_and_verify() {
        let t = issue().unwrap();
        assert!(t.token.starts_with("zt_"));
        let (key_id, secret) = split(&t.token).unwrap();
        assert_eq!(key_id, t.key_id);
        assert_eq!(hash(secret), t.secret_hash);
        assert_ne!(issue().unwrap().token, t.token);
    }

    #[test]
    fn malformed_tokens_do_not_split() {
        for t in [
            "",
            "zt_",
            "zt_abc_def",
            "xx_0123456789abcdef_aaaaaaaaaaaaaaaaaaaaaaaa",
            "zt_0123456789abcdeg_aaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(split(t).is_none(), "{t}");
        }
    }

    #[test]
    fn admin_token_compares_by_hash() {
        let a = AdminToken::new("a-long-admin-token-for-tests");
        assert!(a.matches("a-long-admin-token-for-tests"));
        assert!(!a.matches("a-long-admin-token-for-test"));
        assert!(!format!("{a:?}").contains("long"));
    }
}
