//! Phone authentication: HTTP Digest (RFC 7616, MD5 and SHA-256, `qop=auth`) and Basic over
//! TLS, against HA1s the registry holds.
//!
//! Nonces are stateless and time-bound: `base64url(issued-at ‖ HMAC(key, issued-at ‖ source
//! prefix))`, valid for a few minutes and only from the network prefix they were issued to.
//! Within that time a nonce-count may be used once: a replayed Authorization header (same
//! nonce, same or lower `nc`) is refused. The key is a server-wide secret shared through the
//! store, so any node verifies any node's nonce. Knows nothing of vendors' formats or storage.

use std::time::Duration;

use base64::Engine;
use http::HeaderValue;
use std::collections::{HashMap, VecDeque};

use crate::domain::credentials::{constant_time_eq, Algorithm, Ha1, REALM};

/// Parameters of a Digest `Authorization` header, borrowed from it.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub struct DigestParams<'a> {
    /// `username`.
    pub username: &'a str,
    /// `realm`.
    pub realm: &'a str,
    /// `nonce`.
    pub nonce: &'a str,
    /// `uri`.
    pub uri: &'a str,
    /// `response`.
    pub response: &'a str,
    /// `algorithm` (default MD5).
    pub algorithm: Option<&'a str>,
    /// `qop`.
    pub qop: Option<&'a str>,
    /// `nc`, 8 hex digits.
    pub nc: Option<&'a str>,
    /// `cnonce`.
    pub cnonce: Option<&'a str>,
}

/// A parsed `Authorization` header.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Authorization<'a> {
    /// `Digest …`.
    Digest(DigestParams<'a>),
    /// `Basic …`, decoded.
    Basic {
        /// User.
        username: String,
        /// Password.
        password: String,
    },
}

/// Parses an `Authorization` header value; `None` for anything malformed. Never panics.
pub fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (username, password) = text.split_once(':')?;
        return Some(Authorization::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        });
    }
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut p = DigestParams::default();
    let mut rest = rest.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim();
        let after = after.trim_start();
        let (val, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            // Quoted strings in Digest parameters hold no escaped quotes in practice; a
            // backslash anywhere makes the header malformed rather than misread.
            let end = quoted.find('"')?;
            let val = &quoted[..end];
            if val.contains('\\') {
                return None;
            }
            (val, &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        match key.to_ascii_lowercase().as_str() {
            "username" => p.username = val,
            "realm" => p.realm = val,
            "nonce" => p.nonce = val,
            "uri" => p.uri = val,
            "response" => p.response = val,
            "algorithm" => p.algorithm = Some(val),
            "qop" => p.qop = Some(val),
            "nc" => p.nc = Some(val),
            "cnonce" => p.cnonce = Some(val),
            _ => {}
        }
        rest = remaining.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return None;
        }
    }
    if p.username.is_empty() || p.nonce.is_empty() || p.response.is_empty() {
        return None;
    }
    Some(Authorization::Digest(p))
}

/// issued-at (8) ‖ sequence (8) ‖ tag (16).
const NONCE_BYTES: usize = 32;

/// Mints and checks nonces, and remembers which nonce-counts were used.
pub struct Nonces {
    key: ring::hmac::Key,
    /// Makes nonces minted in the same millisecond for the same network differ: phones
    /// behind one NAT challenged together must not share a nonce (their counts would collide).
    sequence: std::sync::atomic::AtomicU64,
    validity: Duration,
    memory: std::sync::Mutex<ReplayMemory>,
    max_seen: usize,
    max_per_network: usize,
}

/// Which nonce-counts were used, bounded in total and per client network. Full, it forgets
/// the oldest nonce (of the network, or of all) instead of refusing new ones, and raises a
/// floor: a nonce issued no later than the newest forgotten one and not remembered is
/// answered with a fresh challenge, never accepted again.
#[derive(Default)]
struct ReplayMemory {
    counts: HashMap<[u8; NONCE_BYTES], u32, ahash::RandomState>,
    /// Every remembered nonce in the order first used, with its network.
    order: VecDeque<([u8; NONCE_BYTES], NetworkKey)>,
    /// Each network's remembered nonces, oldest first.
    per_network: HashMap<NetworkKey, VecDeque<[u8; NONCE_BYTES]>, ahash::RandomState>,
    /// Nonces issued before this time (ms) and not remembered were forgotten to make room
    /// overall (one past the newest forgotten; 0: none).
    floor: u64,
    /// The same per network, for nonces forgotten to make room in it: a crowded network
    /// raises only its own floor.
    floors: HashMap<NetworkKey, u64, ahash::RandomState>,
}

/// A client network's nonce prefix bytes (at most 8), with their length.
type NetworkKey = [u8; 9];

fn network_key(prefix: &[u8]) -> NetworkKey {
    let mut key = [0u8; 9];
    let n = prefix.len().min(8);
    key[0] = n as u8;
    key[1..=n].copy_from_slice(&prefix[..n]);
    key
}

fn issued_at(nonce: &[u8; NONCE_BYTES]) -> u64 {
    let mut issued = [0u8; 8];
    issued.copy_from_slice(&nonce[..8]);
    u64::from_be_bytes(issued)
}

/// What using a nonce-count came to.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum CountUse {
    /// First use of this count: accepted.
    Accepted,
    /// This count (or a later one) was used: a replay.
    Replayed,
    /// The nonce was forgotten to make room: challenge again (the server's limit, not the
    /// client's fault).
    Forgotten,
}

impl ReplayMemory {
    /// Forgets `nonce`, raising its network's floor (`Some`) or the overall one.
    fn forget(&mut self, nonce: &[u8; NONCE_BYTES], network: Option<NetworkKey>) {
        if self.counts.remove(nonce).is_some() {
            let floor = match network {
                Some(n) => self.floors.entry(n).or_default(),
                None => &mut self.floor,
            };
            *floor = (*floor).max(issued_at(nonce).saturating_add(1));
        }
    }
}

/// What a presented nonce is worth.
#[derive(Debug, PartialEq, Eq)]
pub enum NonceCheck {
    /// Issued by us, to this prefix, recently.
    Fresh([u8; NONCE_BYTES]),
    /// Issued by us but expired: re-challenge with `stale=true`.
    Stale,
    /// Not one of ours.
    Invalid,
}

impl Nonces {
    /// `key`: the shared secret; `validity`: how long a nonce may be used.
    ///
    /// At most `max_seen` nonces are remembered, and at most a sixteenth of that (at least 64)
    /// per client network, so one client holding valid credentials cannot crowd out the rest.
    pub fn new(key: &[u8], validity: Duration, max_seen: usize) -> Self {
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
            sequence: std::sync::atomic::AtomicU64::new(0),
            validity,
            memory: std::sync::Mutex::default(),
            max_seen: max_seen.max(1),
            max_per_network: (max_seen / 16).max(64).min(max_seen.max(1)),
        }
    }

    fn tag(&self, head: &[u8], prefix: &[u8]) -> [u8; 16] {
        let mut ctx = ring::hmac::Context::with_key(&self.key);
        ctx.update(head);
        ctx.update(prefix);
        let mut out = [0u8; 16];
        out.copy_from_slice(&ctx.sign().as_ref()[..16]);
        out
    }

    /// A nonce for a client in `prefix`, issued at `now_ms`.
    pub fn mint(&self, now_ms: u64, prefix: &[u8]) -> String {
        let mut raw = [0u8; NONCE_BYTES];
        raw[..8].copy_from_slice(&now_ms.to_be_bytes());
        let sequence = self
            .sequence
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        raw[8..16].copy_from_slice(&sequence.to_be_bytes());
        let tag = self.tag(&raw[..16], prefix);
        raw[16..].copy_from_slice(&tag);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a nonce presented from `prefix` at `now_ms`.
    pub fn check(&self, nonce: &str, now_ms: u64, prefix: &[u8]) -> NonceCheck {
        let mut raw = [0u8; NONCE_BYTES];
        match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw) {
            Ok(NONCE_BYTES) => {}
            _ => return NonceCheck::Invalid,
        }
        let mut issued_bytes = [0u8; 8];
        issued_bytes.copy_from_slice(&raw[..8]);
        let issued = u64::from_be_bytes(issued_bytes);
        if !constant_time_eq(&raw[16..], &self.tag(&raw[..16], prefix)) {
            return NonceCheck::Invalid;
        }
        let validity = u64::try_from(self.validity.as_millis()).unwrap_or(u64::MAX);
        if issued > now_ms.saturating_add(60_000) {
            NonceCheck::Invalid
        } else if now_ms.saturating_sub(issued) > validity {
            NonceCheck::Stale
        } else {
            NonceCheck::Fresh(raw)
        }
    }

    /// Records a use of `nonce` (presented from `prefix`) with count `nc`.
    pub fn use_count(&self, nonce: [u8; NONCE_BYTES], nc: u32, prefix: &[u8]) -> CountUse {
        if nc == 0 {
            // Counts start at 1 (RFC 7616): 0 is never a first use.
            return CountUse::Replayed;
        }
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = memory.counts.get_mut(&nonce) {
            if nc <= *last {
                return CountUse::Replayed;
            }
            *last = nc;
            return CountUse::Accepted;
        }
        let network = network_key(prefix);
        let issued = issued_at(&nonce);
        if issued < memory.floor || memory.floors.get(&network).is_some_and(|f| issued < *f) {
            return CountUse::Forgotten;
        }
        // Room in the client's own network first: its oldest nonce goes.
        let crowded = memory
            .per_network
            .get(&network)
            .is_some_and(|q| q.len() >= self.max_per_network);
        if crowded {
            if let Some(oldest) = memory
                .per_network
                .get_mut(&network)
                .and_then(VecDeque::pop_front)
            {
                memory.forget(&oldest, Some(network));
            }
        }
        // Then room overall: the oldest of all.
        while memory.counts.len() >= self.max_seen {
            let Some((oldest, owner)) = memory.order.pop_front() else {
                break;
            };
            if memory.counts.contains_key(&oldest) {
                memory.forget(&oldest, None);
                if let Some(q) = memory.per_network.get_mut(&owner) {
                    q.retain(|n| n != &oldest);
                }
            }
        }
        memory.counts.insert(nonce, nc);
        memory.order.push_back((nonce, network));
        memory
            .per_network
            .entry(network)
            .or_default()
            .push_back(nonce);
        CountUse::Accepted
    }

    /// Forgets nonces that have expired (they are refused as stale anyway).
    pub fn sweep(&self, now_ms: u64) {
        let validity = u64::try_from(self.validity.as_millis()).unwrap_or(u64::MAX);
        let live = |nonce: &[u8; NONCE_BYTES]| now_ms.saturating_sub(issued_at(nonce)) <= validity;
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        let memory = &mut *memory;
        memory.counts.retain(|nonce, _| live(nonce));
        let counts = &memory.counts;
        memory.order.retain(|(nonce, _)| counts.contains_key(nonce));
        memory.per_network.retain(|_, q| {
            q.retain(|nonce| counts.contains_key(nonce));
            !q.is_empty()
        });
        // A floor older than any live nonce guards nothing any more.
        memory
            .floors
            .retain(|_, floor| now_ms.saturating_sub(*floor) <= validity);
    }

    /// Nonces remembered.
    pub fn remembered(&self) -> usize {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts
            .len()
    }

    /// The `WWW-Authenticate` values for a challenge: MD5 first (every phone firmware reads
    /// it; some read only the first challenge), then SHA-256.
    pub fn challenge(&self, now_ms: u64, prefix: &[u8], stale: bool) -> [HeaderValue; 2] {
        let nonce = self.mint(now_ms, prefix);
        let stale = if stale { ", stale=true" } else { "" };
        let header = |alg: &str| {
            HeaderValue::from_str(&format!(
                "Digest realm=\"{REALM}\", qop=\"auth\", algorithm={alg}, nonce=\"{nonce}\"{stale}"
            ))
            .unwrap_or_else(|_| HeaderValue::from_static("Digest realm=\"zerotouch\""))
        };
        [header("MD5"), header("SHA-256")]
    }
}

/// The outcome of checking a request's credentials.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Verdict {
    /// The credentials match entry `index` of the candidates.
    Authenticated(usize),
    /// No credentials: challenge.
    Missing,
    /// A nonce of ours that expired: challenge again with `stale=true`.
    Stale,
    /// Wrong credentials, someone else's nonce, a replay, or Basic over plain HTTP.
    Failed,
}

/// The request facts verification needs.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// Request method.
    pub method: &'a str,
    /// Request target as sent (path and query).
    pub uri: &'a str,
    /// Whether the request came over TLS (Basic is accepted only then).
    pub tls: bool,
    /// The client's network prefix (nonces are bound to it).
    pub prefix: &'a [u8],
    /// Now, milliseconds since the epoch.
    pub now_ms: u64,
}

/// Checks the request's credentials against the candidate HA1s (e.g. current and previous
/// credentials, or both spellings of a Gigaset MAC).
pub fn verify(nonces: &Nonces, request: &Presented<'_>, candidates: &[&Ha1]) -> Verdict {
    let Some(header) = request.authorization else {
        return Verdict::Missing;
    };
    match parse_authorization(header) {
        Some(Authorization::Digest(p)) => verify_digest(nonces, request, &p, candidates),
        Some(Authorization::Basic { username, password }) if request.tls => candidates
            .iter()
            .position(|c| c.username == username && c.matches_password(&password))
            .map_or(Verdict::Failed, Verdict::Authenticated),
        _ => Verdict::Failed,
    }
}

fn verify_digest(
    nonces: &Nonces,
    request: &Presented<'_>,
    p: &DigestParams<'_>,
    candidates: &[&Ha1],
) -> Verdict {
    let algorithm = match p.algorithm {
        None => Algorithm::Md5,
        Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
        Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
        Some(_) => return Verdict::Failed,
    };
    if p.realm != REALM || p.uri != request.uri {
        return Verdict::Failed;
    }
    let raw = match nonces.check(p.nonce, request.now_ms, request.prefix) {
        NonceCheck::Fresh(raw) => raw,
        NonceCheck::Stale => return Verdict::Stale,
        NonceCheck::Invalid => return Verdict::Failed,
    };
    let Some(index) = candidates.iter().position(|c| c.username == p.username) else {
        return Verdict::Failed;
    };
    let ha1 = candidates[index].for_algorithm(algorithm);
    let ha2 = algorithm.hex(format!("{}:{}", request.method, p.uri).as_bytes());
    let (expected, nc) = match p.qop {
        Some(qop) if qop.eq_ignore_ascii_case("auth") => {
            let (Some(nc), Some(cnonce)) = (p.nc, p.cnonce) else {
                return Verdict::Failed;
            };
            let Ok(count) = u32::from_str_radix(nc, 16) else {
                return Verdict::Failed;
            };
            (
                algorithm.hex(format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", p.nonce).as_bytes()),
                count,
            )
        }
        // RFC 2069 style, without qop: the nonce is good for one request.
        None => (
            algorithm.hex(format!("{ha1}:{}:{ha2}", p.nonce).as_bytes()),
            1,
        ),
        Some(_) => return Verdict::Failed,
    };
    if !constant_time_eq(
        expected.as_bytes(),
        p.response.to_ascii_lowercase().as_bytes(),
    ) {
        return Verdict::Failed;
    }
    // Only a correct response consumes the count, so guessing cannot burn a phone's nonce.
    match nonces.use_count(raw, nc, request.prefix) {
        CountUse::Accepted => Verdict::Authenticated(index),
        CountUse::Replayed => Verdict::Failed,
        // Forgotten to make room: the server's limit, so a fresh challenge, never a miss.
        CountUse::Forgotten => Verdict::Stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nonces() -> Nonces {
        Nonces::new(b"test key", Duration::from_secs(300), 1000)
    }

    /// What a phone sends after a challenge.
    fn answer(
        alg: Algorithm,
        user: &str,
        pass: &str,
        nonce: &str,
        uri: &str,
        nc: &str,
        cnonce: &str,
    ) -> String {
        let ha1 = Ha1::new(user, pass);
        let ha1 = ha1.for_algorithm(alg);
        let ha2 = alg.hex(format!("GET:{uri}").as_bytes());
        let response = alg.hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes());
        format!(
            r#"Digest username="{user}", realm="{REALM}", nonce="{nonce}", uri="{uri}", algorithm={}, qop=auth, nc={nc}, cnonce="{cnonce}", response="{response}""#,
            alg.name()
        )
    }

    #[test]
    fn rfc_7616_example_parses() {
        let h = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="8ca523f5e9506fed4657c9700eebdbec", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let Some(Authorization::Digest(p)) = parse_authorization(h) else {
            panic!()
        };
        assert_eq!(p.username, "Mufasa");
        assert_eq!(p.nc, Some("00000001"));
        assert_eq!(p.qop, Some("auth"));
        // The RFC's own numbers: MD5 response for password "Circle of Life".
        let ha1 = Algorithm::Md5.hex(b"Mufasa:http-auth@example.org:Circle of Life");
        let ha2 = Algorithm::Md5.hex(b"GET:/dir/index.html");
        let response = Algorithm::Md5.hex(
            format!(
                "{ha1}:{}:00000001:{}:auth:{ha2}",
                p.nonce,
                p.cnonce.unwrap()
            )
            .as_bytes(),
        );
        assert_eq!(response, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn digest_round_trip_both_algorithms_and_replay() {
        let n = nonces();
        let cred = Ha1::new("zt-805ec017de13-ab12", "secret");
        let other = Ha1::new("someone", "else");
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let nonce = n.mint(1_000, b"\x0a\x00\x00");
            let header = answer(
                alg,
                "zt-805ec017de13-ab12",
                "secret",
                &nonce,
                "/805ec017de13.cfg",
                "00000001",
                "abc",
            );
            let req = Presented {
                authorization: Some(&header),
                method: "GET",
                uri: "/805ec017de13.cfg",
                tls: true,
                prefix: b"\x0a\x00\x00",
                now_ms: 2_000,
            };
            assert_eq!(
                verify(&n, &req, &[&other, &cred]),
                Verdict::Authenticated(1),
                "{alg:?}"
            );
            assert_eq!(
                verify(&n, &req, &[&other, &cred]),
                Verdict::Failed,
                "replayed header"
            );
            let next = answer(
                alg,
                "zt-805ec017de13-ab12",
                "secret",
                &nonce,
                "/805ec017de13.cfg",
                "00000002",
                "abd",
            );
            let req2 = Presented {
                authorization: Some(&next),
                ..req
            };
            assert_eq!(
                verify(&n, &req2, &[&cred]),
                Verdict::Authenticated(0),
                "the next count is fine"
            );
        }
    }

    #[test]
    fn wrong_password_stale_foreign_nonce_and_basic_over_http_fail() {
        let n = nonces();
        let cred = Ha1::new("u", "right");
        let nonce = n.mint(1_000, b"p1");
        let wrong = answer(
            Algorithm::Md5,
            "u",
            "wrong",
            &nonce,
            "/x.cfg",
            "00000001",
            "c",
        );
        let base = Presented {
            authorization: Some(&wrong),
            method: "GET",
            uri: "/x.cfg",
            tls: true,
            prefix: b"p1",
            now_ms: 2_000,
        };
        assert_eq!(verify(&n, &base, &[&cred]), Verdict::Failed);
        let right = answer(
            Algorithm::Md5,
            "u",
            "right",
            &nonce,
            "/x.cfg",
            "00000001",
            "c",
        );
        assert_eq!(
            verify(
                &n,
                &Presented {
                    authorization: Some(&right),
                    now_ms: 1_000 + 301_000,
                    ..base
                },
                &[&cred]
            ),
            Verdict::Stale
        );
        assert_eq!(
            verify(
                &n,
                &Presented {
                    authorization: Some(&right),
                    prefix: b"p2",
                    ..base
                },
                &[&cred]
            ),
            Verdict::Failed,
            "nonce bound to the prefix"
        );
        assert_eq!(
            verify(
                &n,
                &Presented {
                    authorization: Some(&right),
                    uri: "/y.cfg",
                    ..base
                },
                &[&cred]
            ),
            Verdict::Failed,
            "uri must match"
        );
        assert_eq!(
            verify(
                &n,
                &Presented {
                    authorization: None,
                    ..base
                },
                &[&cred]
            ),
            Verdict::Missing
        );
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("u:right")
        );
        assert_eq!(
            verify(
                &n,
                &Presented {
                    authorization: Some(&basic),
                    ..base
                },
                &[&cred]
            ),
            Verdict::Authenticated(0)
        );
        assert_eq!(
            verify(
                &n,
                &Presented {
                    authorization: Some(&basic),
                    tls: false,
                    ..base
                },
                &[&cred]
            ),
            Verdict::Failed,
            "no Basic in clear"
        );
        let forged = n.mint(1_000, b"p1").replace('A', "B");
        let f = answer(
            Algorithm::Md5,
            "u",
            "right",
            &forged,
            "/x.cfg",
            "00000001",
            "c",
        );
        assert_ne!(
            verify(
                &n,
                &Presented {
                    authorization: Some(&f),
                    ..base
                },
                &[&cred]
            ),
            Verdict::Authenticated(0)
        );
    }

    #[test]
    fn the_replay_memory_is_bounded_and_swept() {
        let n = Nonces::new(b"k", Duration::from_secs(1), 2);
        let a = n.mint(0, b"p");
        let NonceCheck::Fresh(ra) = n.check(&a, 10, b"p") else {
            panic!()
        };
        let NonceCheck::Fresh(rb) = n.check(&n.mint(5, b"p"), 10, b"p") else {
            panic!()
        };
        let NonceCheck::Fresh(rc) = n.check(&n.mint(6, b"p"), 10, b"p") else {
            panic!()
        };
        assert_eq!(n.use_count(ra, 1, b"p"), CountUse::Accepted);
        assert_eq!(n.use_count(rb, 1, b"p"), CountUse::Accepted);
        assert_eq!(
            n.use_count(rc, 1, b"p"),
            CountUse::Accepted,
            "full: the oldest goes, the new one is taken"
        );
        assert_eq!(n.remembered(), 2);
        assert_eq!(
            n.use_count(ra, 2, b"p"),
            CountUse::Forgotten,
            "the forgotten one is challenged again, never accepted twice"
        );
        assert_eq!(n.use_count(rb, 1, b"p"), CountUse::Replayed);
        n.sweep(5_000);
        assert_eq!(n.remembered(), 0);
    }

    #[test]
    fn a_count_of_zero_is_never_a_first_use() {
        // Found by the `digest` fuzz target after the memory was rewritten.
        let n = Nonces::new(b"k", Duration::from_secs(300), 1024);
        let NonceCheck::Fresh(raw) = n.check(&n.mint(1, b"p"), 1, b"p") else {
            panic!()
        };
        assert_eq!(n.use_count(raw, 0, b"p"), CountUse::Replayed);
        assert_eq!(n.use_count(raw, 1, b"p"), CountUse::Accepted);
    }

    #[test]
    fn one_network_cannot_crowd_out_the_others() {
        let n = Nonces::new(b"k", Duration::from_secs(300), 16 * 64);
        let fresh = |at: u64, prefix: &[u8]| {
            let NonceCheck::Fresh(raw) = n.check(&n.mint(at, prefix), at, prefix) else {
                panic!()
            };
            raw
        };
        let phone = fresh(1, b"office");
        assert_eq!(n.use_count(phone, 1, b"office"), CountUse::Accepted);
        let neighbour = fresh(5, b"branch");
        // A client with valid credentials uses 10,000 nonces from its network.
        for i in 0..10_000u64 {
            let raw = fresh(10 + i, b"flood");
            assert_eq!(n.use_count(raw, 1, b"flood"), CountUse::Accepted);
        }
        assert!(n.remembered() <= 16 * 64);
        // The phone's nonce is still remembered: its next count is taken, a replay refused.
        assert_eq!(n.use_count(phone, 2, b"office"), CountUse::Accepted);
        assert_eq!(n.use_count(phone, 2, b"office"), CountUse::Replayed);
        // A nonce of another network, older than what the flood lost, is still taken.
        assert_eq!(n.use_count(neighbour, 1, b"branch"), CountUse::Accepted);
    }

    #[test]
    fn challenges_carry_a_fresh_nonce() {
        let n = nonces();
        let [md5, sha] = n.challenge(1_000, b"p", true);
        let md5 = md5.to_str().unwrap();
        assert!(
            md5.starts_with("Digest realm=\"zerotouch\", qop=\"auth\", algorithm=MD5, nonce=\"")
        );
        assert!(md5.ends_with("stale=true"));
        assert!(sha.to_str().unwrap().contains("algorithm=SHA-256"));
    }

    proptest! {
        #[test]
        fn authorization_parsing_never_panics(s in "\\PC{0,300}") {
            let _ = parse_authorization(&s);
        }

        #[test]
        fn digest_shaped_noise_never_panics(
            pairs in proptest::collection::vec(("[a-z]{1,9}", "[ -~]{0,20}", any::<bool>()), 0..10)
        ) {
            let body: Vec<String> = pairs.iter().map(|(k, v, q)| if *q { format!("{k}=\"{v}\"") } else { format!("{k}={v}") }).collect();
            let _ = parse_authorization(&format!("Digest {}", body.join(", ")));
        }

        #[test]
        fn nonce_checking_never_panics(s in "\\PC{0,64}", now in any::<u64>()) {
            let _ = nonces().check(&s, now, b"p");
        }
    }
}
