//! A whole phone request through `Provisioner::handle`: recognition, registry lookup, the
//! miss throttle, phone authentication and rendering, as the server calls it (built as
//! `benches/hot_path.rs` builds it, no server, no store).
//!
//! Input, one field per line (a missing or empty line is an absent header): method, path and
//! query, User-Agent, Authorization, Host, then the client address and `tls` if over TLS.
//! The registry is `zerotouch::fixture`'s: a `mac`-mode tenant with one phone of each
//! vendor and an `enrolment` tenant with a bound Yealink phone, a Gigaset phone claimed with
//! its label code, and unbound Yealink phones inside and past their enrolment window.
//!
//! Asserts: never panics; refusals carry only their status's fixed body (nothing tells whether
//! a MAC exists); a 401 carries a challenge and nothing else does; a 429 says when to retry;
//! a config is served only for GET or HEAD of a registered phone's file, and for an
//! `enrolment` tenant's phone only with that phone's own credentials (Basic over TLS: a
//! fuzzer cannot answer a Digest challenge); credentials are issued only to the phone inside
//! its window, for its per-device file.
#![no_main]

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use zerotouch::domain::{Mac, OuiTable};
use zerotouch::fixture;
use zerotouch::provisioning::auth::{parse_authorization, Authorization};
use zerotouch::provisioning::throttle;
use zerotouch::provisioning::{Fetch, Handled, Outcome, Provisioner};
use zerotouch::vendors::{recognise, FileKind};

const ENROLLED: &str = fixture::ENROLLED.mac;
const ENROLLED_USER: &str = fixture::ENROLLED_CREDENTIALS.0;
const ENROLLED_PASSWORD: &str = fixture::ENROLLED_CREDENTIALS.1;
const GIGASET_CLAIMED: &str = fixture::GIGASET_CLAIMED.mac;
const GIGASET_MAC_ID: &str = fixture::GIGASET_MAC_ID.1;
const IN_WINDOW: &str = fixture::IN_WINDOW.mac;

fn mac(s: &str) -> Mac {
    Mac::parse(s).unwrap_or_else(|e| panic!("MAC {s}: {e}"))
}

/// The MAC-ID credentials a claimed Gigaset phone authenticates with (either case of MAC).
fn gigaset_basic(username: &str, password: &str) -> bool {
    let m = mac(GIGASET_CLAIMED);
    (username == m.to_upper_hex() || username == m.to_lower_hex()) && password == GIGASET_MAC_ID
}

fuzz_target!(|input: &str| {
    static PROVISIONER: OnceLock<Provisioner> = OnceLock::new();
    let provisioner =
        PROVISIONER.get_or_init(|| fixture::provisioner(throttle::Settings::default()));
    let ouis = OuiTable::default();

    let mut lines = input.split('\n');
    let mut field = || lines.next().filter(|l| !l.is_empty());
    let method = field().unwrap_or("GET");
    let path = field().unwrap_or("/");
    let (user_agent, authorization, host) = (field(), field(), field());
    let mut flags = field().unwrap_or("").split(' ');
    let source = flags
        .next()
        .and_then(|s| s.parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::from([192, 0, 2, 10]));
    let tls = flags.any(|f| f == "tls");
    let fetch = Fetch {
        method,
        path_and_query: path,
        user_agent,
        host,
        authorization,
        source,
        local: SocketAddr::from(([127, 0, 0, 1], 8443)),
        tls,
    };

    let request = recognise(path, user_agent, &ouis);
    let named = request.and_then(|r| r.path_mac.or(r.agent.and_then(|a| a.mac)));
    let answer = match provisioner.handle(&fetch) {
        Handled::Done(answer) => answer,
        Handled::Issue(_) => {
            let r = request.expect("credentials issued for an unrecognised request");
            assert_eq!(named, Some(mac(IN_WINDOW)), "issued to {path:?}");
            assert_eq!(r.file, FileKind::Device);
            assert!(method == "GET" || method == "HEAD");
            return;
        }
    };
    let outcome = answer.outcome;
    assert_eq!(answer.challenge.is_some(), outcome == Outcome::Challenged);
    if outcome == Outcome::Throttled {
        assert!(answer.retry_after.is_some_and(|s| s > 0));
    }
    match outcome {
        Outcome::Served => {
            assert!(method == "GET" || method == "HEAD", "served {method:?}");
            assert!(!answer.body.is_empty());
            let served = named.expect("served a config to a request naming no phone");
            let basic = authorization.and_then(parse_authorization);
            let own = |check: &dyn Fn(&str, &str) -> bool| {
                tls && matches!(&basic, Some(Authorization::Basic { username, password })
                    if check(username, password))
            };
            if served == mac(ENROLLED) {
                assert!(
                    own(&|u, p| u == ENROLLED_USER && p == ENROLLED_PASSWORD),
                    "enrolled phone's config without its credentials: {input:?}"
                );
            } else if served == mac(GIGASET_CLAIMED) {
                assert!(
                    own(&gigaset_basic),
                    "Gigaset config without its MAC-ID: {input:?}"
                );
            } else if served == mac(IN_WINDOW) {
                // Only its model or common file, which holds no secret.
                let file = request.map(|r| r.file);
                assert!(
                    matches!(
                        file,
                        Some(FileKind::Common | FileKind::Model | FileKind::Firmware)
                    ),
                    "{file:?} served to a phone not yet bound"
                );
            } else {
                assert!(
                    ["805ec017de13", "000413922D24", "7C2F80E0D605"]
                        .iter()
                        .any(|m| mac(m) == served),
                    "served {served}"
                );
            }
        }
        Outcome::Enrolled => panic!("enrolment finished without issuing credentials"),
        _ => {
            assert_ne!(outcome.status(), 200);
            assert_eq!(&answer.body[..], outcome.refusal_body().as_bytes());
        }
    }
});
