//! `parse_authorization` on arbitrary header values.
//!
//! Asserts: never panics; a Digest header has a username, nonce and response; written back
//! with every parameter quoted it parses to the same parameters; a Basic header's user holds
//! no `:` and, encoded again, parses to the same user and password.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use zerotouch::provisioning::auth::{parse_authorization, Authorization, DigestParams};

fn quoted(p: &DigestParams<'_>) -> String {
    let mut out = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\"",
        p.username, p.realm, p.nonce, p.uri, p.response
    );
    for (name, value) in [
        ("algorithm", p.algorithm),
        ("qop", p.qop),
        ("nc", p.nc),
        ("cnonce", p.cnonce),
    ] {
        if let Some(v) = value {
            out.push_str(&format!(", {name}=\"{v}\""));
        }
    }
    out
}

fn fields<'a>(p: &DigestParams<'a>) -> [Option<&'a str>; 9] {
    [
        Some(p.username),
        Some(p.realm),
        Some(p.nonce),
        Some(p.uri),
        Some(p.response),
        p.algorithm,
        p.qop,
        p.nc,
        p.cnonce,
    ]
}

fuzz_target!(|value: &str| {
    match parse_authorization(value) {
        None => {}
        Some(Authorization::Digest(p)) => {
            assert!(!p.username.is_empty() && !p.nonce.is_empty() && !p.response.is_empty());
            // Unquoted values may hold a quote; quoted ones never hold a quote or backslash.
            let writable = fields(&p)
                .iter()
                .flatten()
                .all(|v| !v.contains(['"', '\\']));
            if writable {
                let again = quoted(&p);
                assert_eq!(
                    parse_authorization(&again),
                    Some(Authorization::Digest(p)),
                    "{value:?} → {again:?}"
                );
            }
        }
        Some(Authorization::Basic { username, password }) => {
            assert!(!username.contains(':'));
            let again = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            );
            assert_eq!(
                parse_authorization(&again),
                Some(Authorization::Basic { username, password })
            );
        }
    }
});
