//! Phone authentication, `auth::verify`, with real nonces.
//!
//! Two halves, chosen by the input. A hostile header, where `NONCE` is replaced by a nonce
//! minted for the client (fresh, stale, or for another network): it never authenticates,
//! except Basic over TLS with a candidate's own user and password. A phone's answer to a
//! challenge, built from fuzzed user, password, algorithm, uri, count, cnonce and spelling:
//! the right password authenticates as the right candidate exactly once per nonce-count (a
//! replay fails, the next count succeeds); a wrong one fails; a stale nonce asks again; a
//! nonce minted for another network fails.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use zerotouch::domain::credentials::{Algorithm, Ha1, REALM};
use zerotouch::provisioning::auth::{
    parse_authorization, verify, Authorization, Nonces, Presented, Verdict,
};

const NOW_MS: u64 = 1_800_000_000_000;
const VALIDITY: Duration = Duration::from_secs(300);
const PREFIX: &[u8] = &[192, 0, 2];
const OTHER_PREFIX: &[u8] = &[198, 51, 100];
const USERS: [(&str, &str); 2] = [
    ("zt-805ec017de13-ab12", "Current0Password"),
    ("zt-805ec017de13-cd34", "Previous0Password"),
];

#[derive(Arbitrary, Debug, Clone, Copy)]
enum NonceKind {
    Fresh,
    Stale,
    OtherNetwork,
}

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    Hostile {
        header: &'a str,
        nonce: NonceKind,
        method: &'a str,
        uri: &'a str,
        tls: bool,
    },
    Phone {
        user: u8,
        right_password: bool,
        wrong_password: &'a str,
        sha256: bool,
        algorithm_spelling: u8,
        method: &'a str,
        uri: &'a str,
        nc: u32,
        upper_nc: bool,
        qop: bool,
        cnonce: &'a str,
        nonce: NonceKind,
        key_case: bool,
        spaces: u8,
    },
}

fn mint(nonces: &Nonces, kind: NonceKind) -> String {
    match kind {
        NonceKind::Fresh => nonces.mint(NOW_MS - 1_000, PREFIX),
        NonceKind::Stale => nonces.mint(NOW_MS - VALIDITY.as_millis() as u64 - 1, PREFIX),
        NonceKind::OtherNetwork => nonces.mint(NOW_MS - 1_000, OTHER_PREFIX),
    }
}

/// Drops what cannot appear inside a quoted Digest parameter.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '"' | '\\')).collect()
}

fuzz_target!(|input: Input<'_>| {
    let nonces = Nonces::new(b"fuzz key", VALIDITY, 1 << 16);
    let ha1s: Vec<Ha1> = USERS.iter().map(|(u, p)| Ha1::new(u, p)).collect();
    let candidates: Vec<&Ha1> = ha1s.iter().collect();
    match input {
        Input::Hostile {
            header,
            nonce,
            method,
            uri,
            tls,
        } => {
            let header = header.replace("NONCE", &mint(&nonces, nonce));
            let request = Presented {
                authorization: Some(&header),
                method,
                uri,
                tls,
                prefix: PREFIX,
                now_ms: NOW_MS,
            };
            let verdict = verify(&nonces, &request, &candidates);
            if let Verdict::Authenticated(i) = verdict {
                let (user, password) = USERS[i];
                assert!(tls, "authenticated without TLS: {header:?}");
                assert_eq!(
                    parse_authorization(&header),
                    Some(Authorization::Basic {
                        username: user.into(),
                        password: password.into()
                    }),
                    "authenticated by {header:?}"
                );
            }
            if verdict == Verdict::Stale {
                assert!(matches!(nonce, NonceKind::Stale));
            }
        }
        Input::Phone {
            user,
            right_password,
            wrong_password,
            sha256,
            algorithm_spelling,
            method,
            uri,
            nc,
            upper_nc,
            qop,
            cnonce,
            nonce: kind,
            key_case,
            spaces,
        } => {
            let index = usize::from(user) % USERS.len();
            let (username, password) = USERS[index];
            let password = if right_password {
                password.to_owned()
            } else {
                clean(wrong_password)
            };
            let right = password == USERS[index].1;
            let alg = if sha256 {
                Algorithm::Sha256
            } else {
                Algorithm::Md5
            };
            let alg_param = match (algorithm_spelling % 3, alg) {
                (0, Algorithm::Md5) => None,
                (1, _) => Some(alg.name().to_ascii_lowercase()),
                _ => Some(alg.name().to_owned()),
            };
            let method = clean(method);
            let uri = clean(uri);
            let cnonce = clean(cnonce);
            let nonce = mint(&nonces, kind);
            let sep = format!(",{}", " ".repeat(usize::from(spaces % 4)));
            let key = |k: &str| {
                if key_case {
                    k.to_ascii_uppercase()
                } else {
                    k.to_owned()
                }
            };
            let header_for = |nc: u32| {
                let ha1 = Ha1::new(username, &password);
                let ha1 = ha1.for_algorithm(alg);
                let ha2 = alg.hex(format!("{method}:{uri}").as_bytes());
                let nc_text = if upper_nc {
                    format!("{nc:08X}")
                } else {
                    format!("{nc:08x}")
                };
                let response = if qop {
                    alg.hex(format!("{ha1}:{nonce}:{nc_text}:{cnonce}:auth:{ha2}").as_bytes())
                } else {
                    alg.hex(format!("{ha1}:{nonce}:{ha2}").as_bytes())
                };
                let mut h = format!(
                    "Digest {}=\"{username}\"{sep}{}=\"{REALM}\"{sep}{}=\"{nonce}\"{sep}{}=\"{uri}\"",
                    key("username"),
                    key("realm"),
                    key("nonce"),
                    key("uri")
                );
                if let Some(a) = &alg_param {
                    h.push_str(&format!("{sep}{}={a}", key("algorithm")));
                }
                if qop {
                    h.push_str(&format!(
                        "{sep}{}=auth{sep}{}={nc_text}{sep}{}=\"{cnonce}\"",
                        key("qop"),
                        key("nc"),
                        key("cnonce")
                    ));
                }
                h.push_str(&format!("{sep}{}=\"{response}\"", key("response")));
                h
            };
            let nc = if qop { nc } else { 1 };
            let header = header_for(nc);
            let request = |header: &str| {
                let presented = Presented {
                    authorization: Some(header),
                    method: &method,
                    uri: &uri,
                    tls: false,
                    prefix: PREFIX,
                    now_ms: NOW_MS,
                };
                verify(&nonces, &presented, &candidates)
            };
            let verdict = request(&header);
            let expected = match kind {
                NonceKind::Stale => Verdict::Stale,
                NonceKind::OtherNetwork => Verdict::Failed,
                NonceKind::Fresh if right && nc > 0 => Verdict::Authenticated(index),
                NonceKind::Fresh => Verdict::Failed,
            };
            assert_eq!(verdict, expected, "{header:?}");
            if let Verdict::Authenticated(_) = verdict {
                assert_eq!(request(&header), Verdict::Failed, "replay of {header:?}");
                if qop && nc < u32::MAX {
                    let next = header_for(nc + 1);
                    assert_eq!(request(&next), expected, "{next:?}");
                    assert_eq!(request(&header), Verdict::Failed, "older count {header:?}");
                }
            }
        }
    }
});
