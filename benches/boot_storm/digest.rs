//! HTTP Digest as a phone answers it: the server's `WWW-Authenticate: Digest` challenge, and
//! the `Authorization` that answers it (RFC 7616, MD5, `qop=auth`), with the nonce a phone keeps
//! for the rest of its boot.
//!
//! Written independently of the server's own Digest code on purpose: a mistake shared by both
//! would otherwise pass unnoticed. Must not know connections or phones' files.

use crate::credentials::Credential;

/// A `WWW-Authenticate: Digest …` challenge the client can answer (MD5, `qop=auth`).
#[derive(Clone, Debug)]
pub(crate) struct Challenge {
    pub(crate) realm: String,
    pub(crate) nonce: String,
    pub(crate) stale: bool,
}

/// Parses one `WWW-Authenticate` value; `None` unless it is a Digest challenge with MD5 (or
/// no algorithm, which means MD5) and `qop` offering `auth`.
pub(crate) fn parse_challenge(value: &str) -> Option<Challenge> {
    let (scheme, mut rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let (mut realm, mut nonce, mut stale, mut md5, mut auth) = (None, None, false, true, false);
    loop {
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (val, remaining) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim(), &after[end..])
            }
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(val.to_owned()),
            "nonce" => nonce = Some(val.to_owned()),
            "stale" => stale = val.eq_ignore_ascii_case("true"),
            "algorithm" => md5 = val.eq_ignore_ascii_case("MD5"),
            "qop" => {
                auth = val
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            }
            _ => {}
        }
        rest = remaining;
    }
    (md5 && auth).then_some(())?;
    Some(Challenge {
        realm: realm?,
        nonce: nonce?,
        stale,
    })
}

/// MD5 of `data`, lower-case hex.
pub(crate) fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Authorization` value answering `challenge` for `GET uri` (RFC 7616, MD5, qop=auth).
pub(crate) fn digest_authorization(
    credential: &Credential,
    challenge: &Challenge,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let Credential { username, password } = credential;
    let Challenge { realm, nonce, .. } = challenge;
    let ha1 = md5_hex(format!("{username}:{realm}:{password}").as_bytes());
    let ha2 = md5_hex(format!("GET:{uri}").as_bytes());
    let response = md5_hex(format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}").as_bytes());
    format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=MD5, qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\", response=\"{response}\""
    )
}

/// The nonce a phone answered its last challenge with, and the last nonce-count it used.
pub(crate) struct NonceUse {
    pub(crate) challenge: Challenge,
    pub(crate) nc: u32,
}
