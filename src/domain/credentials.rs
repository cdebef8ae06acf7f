//! Phone credentials for HTTP Digest (RFC 7616) and Basic authentication.
//!
//! zerotouch stores no phone password: only HA1 = H(username:realm:password), for MD5 and
//! SHA-256, which is what Digest verification needs and what Basic verification can recompute.
//! The realm is fixed, so stored HA1s stay valid across restarts and nodes. Knows nothing of
//! HTTP headers or storage.

use std::fmt;

use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};

use super::{ClaimCode, Mac};

/// The Digest realm zerotouch challenges with. Changing it would invalidate every stored HA1.
pub const REALM: &str = "zerotouch";

/// A Digest hash algorithm.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Algorithm {
    /// MD5: what every phone firmware speaks.
    Md5,
    /// SHA-256 (RFC 7616).
    Sha256,
}

impl Algorithm {
    /// Hex digest of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data)),
            Algorithm::Sha256 => hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref()),
        }
    }

    /// The name in `algorithm=` parameters.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// HA1 for one username under both algorithms. Every enrolled or Gigaset device of a registry
/// holds some, so the digests are kept as raw bytes (48 bytes inline, against 96 bytes of hex in
/// two more heap blocks); stores and the wire see them as lower-case hex.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ha1 {
    /// The username the hashes were computed with.
    pub username: String,
    /// MD5(username:realm:password).
    #[serde(with = "hex_digest")]
    md5: [u8; 16],
    /// SHA-256(username:realm:password).
    #[serde(with = "hex_digest")]
    sha256: [u8; 32],
}

impl Ha1 {
    /// Hashes `username:realm:password`.
    pub fn new(username: &str, password: &str) -> Self {
        let material = format!("{username}:{REALM}:{password}");
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(
            ring::digest::digest(&ring::digest::SHA256, material.as_bytes()).as_ref(),
        );
        Self {
            username: username.to_owned(),
            md5: Md5::digest(material.as_bytes()).into(),
            sha256,
        }
    }

    /// The HA1 for `algorithm`, as the hex text Digest hashes it as.
    pub fn for_algorithm(&self, algorithm: Algorithm) -> HexDigest {
        match algorithm {
            Algorithm::Md5 => HexDigest::of(&self.md5),
            Algorithm::Sha256 => HexDigest::of(&self.sha256),
        }
    }

    /// Whether `password` is the one these hashes were made from (same username), compared in
    /// constant time: how Basic authentication is checked.
    pub fn matches_password(&self, password: &str) -> bool {
        constant_time_eq(&Ha1::new(&self.username, password).sha256, &self.sha256)
    }
}

/// Lower-case hex of a digest of at most 32 bytes, on the stack.
#[derive(Clone, Copy)]
pub struct HexDigest {
    text: [u8; 64],
    len: usize,
}

impl HexDigest {
    fn of(bytes: &[u8]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 64];
        let mut len = 0;
        for b in bytes.iter().take(32) {
            text[len] = DIGITS[usize::from(b >> 4)];
            text[len + 1] = DIGITS[usize::from(b & 0xf)];
            len += 2;
        }
        Self { text, len }
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.text[..self.len]).unwrap_or_default()
    }
}

impl fmt::Display for HexDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serde for digests as lower-case hex strings (the stored and historical form).
mod hex_digest {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::hex(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let digits = text.as_bytes();
        if digits.len() != 2 * N {
            return Err(D::Error::custom(format!(
                "expected {} hex digits, found {}",
                2 * N,
                digits.len()
            )));
        }
        let nibble = |c: u8| -> Result<u8, D::Error> {
            char::from(c)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
                .ok_or_else(|| D::Error::custom("not a hex digit"))
        };
        let mut out = [0u8; N];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Ok(out)
    }
}

impl fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ha1({}, ***)", self.username)
    }
}

/// What a Gigaset phone proves itself with: Digest with username = its MAC and password = its
/// MAC-ID (`<MAC>-<label code>`). Both spellings of the MAC are kept, since the firmware's
/// case is not documented.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct ClaimSecret {
    /// Username = upper-case MAC.
    pub upper: Ha1,
    /// Username = lower-case MAC.
    pub lower: Ha1,
}

impl ClaimSecret {
    /// The secret of a device claimed with `code`.
    pub fn new(mac: Mac, code: &ClaimCode) -> Self {
        let password = code.mac_id(mac);
        Self {
            upper: Ha1::new(&mac.to_upper_hex(), &password),
            lower: Ha1::new(&mac.to_lower_hex(), &password),
        }
    }

    /// Whether `code` is the code this secret was made from.
    pub fn matches(&self, mac: Mac, code: &ClaimCode) -> bool {
        let other = Self::new(mac, code);
        constant_time_eq(&other.upper.sha256, &self.upper.sha256)
    }

    /// The HA1 entries, for verification.
    pub fn entries(&self) -> [&Ha1; 2] {
        [&self.upper, &self.lower]
    }
}

/// The provisioning credentials handed to a phone, and where they stand.
///
/// Credentials are *pending* from the moment they are issued until the phone first
/// authenticates with them: an answer lost on its way (a power cut, the network) must not lock
/// the phone out, so while they are pending and the enrolment window is open, the phone may be
/// issued fresh ones. After a rotation the previous credentials stay valid until the new ones
/// are used once; from then on they are *retired*, and presenting them again marks the device
/// *compromised*: somebody else holds what only the phone should.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct PhoneCredentials {
    /// Current credentials.
    pub current: Ha1,
    /// Credentials that stay valid until the phone has fetched once with `current` (rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Ha1>,
    /// A rotation was asked for: the next authenticated fetch hands out new credentials.
    #[serde(default)]
    pub rotate: bool,
    /// `current` was issued but the phone has not authenticated with it yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// Credentials replaced by a completed rotation: never accepted again, a witness of theft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<Ha1>,
    /// Retired credentials were presented: nothing is served until a partner reopens the
    /// device's enrolment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compromised: bool,
}

impl PhoneCredentials {
    /// Freshly issued credentials, pending until the phone uses them.
    pub fn issued(current: Ha1) -> Self {
        Self {
            current,
            previous: None,
            rotate: false,
            pending: true,
            retired: None,
            compromised: false,
        }
    }

    /// Whether a fetch authenticated with `current` completes something (an enrolment, a
    /// rotation or a re-issue), so the store must hear of it.
    pub fn awaits_confirmation(&self) -> bool {
        self.pending || self.previous.is_some()
    }

    /// The state a partner sees.
    pub fn state(&self) -> CredentialState {
        if self.compromised {
            CredentialState::Compromised
        } else if self.pending && self.previous.is_none() {
            CredentialState::Pending
        } else {
            CredentialState::Bound
        }
    }
}

/// How a device was last enrolled, as its partner sees it: when, from where, by what.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct EnrolmentRecord {
    /// When the credentials were issued (milliseconds since the Unix epoch).
    pub at: super::clock::Millis,
    /// The address the fetch came from (the client's, behind a trusted balancer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<std::net::IpAddr>,
    /// The fetch's User-Agent, bounded and without control characters.
    pub user_agent: String,
}

/// Where a device's credentials stand, as its partner sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CredentialState {
    /// Issued; the phone has not authenticated with them yet.
    Pending,
    /// The phone authenticated with its current credentials.
    Bound,
    /// Retired credentials were presented: refused until the enrolment is reopened.
    Compromised,
}

impl CredentialState {
    /// Lower-case name, as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialState::Pending => "pending",
            CredentialState::Bound => "bound",
            CredentialState::Compromised => "compromised",
        }
    }
}

/// Compares two byte strings without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Freshly generated credentials: the plain text goes to the phone once; only HA1 is kept.
pub struct IssuedCredentials {
    /// Username for the phone's provisioning-server settings.
    pub username: String,
    /// Password for the phone's provisioning-server settings (shown once).
    pub password: String,
    /// What to store.
    pub ha1: Ha1,
}

impl fmt::Debug for IssuedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssuedCredentials({}, ***)", self.username)
    }
}

/// The system's random source failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomFailed;

/// Generates random, unique credentials for a device: username `zt-<mac>-<4 random hex>` (the
/// suffix changes on every rotation), password of 24 characters from a 62-letter alphabet
/// (~143 bits). Alphanumeric only: phones' settings and URL-embedded credentials take it as is.
pub fn issue_credentials(mac: Mac) -> Result<IssuedCredentials, RandomFailed> {
    use ring::rand::SecureRandom;
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let rng = ring::rand::SystemRandom::new();
    let mut suffix = [0u8; 2];
    rng.fill(&mut suffix).map_err(|_| RandomFailed)?;
    let mut password = String::with_capacity(24);
    while password.len() < 24 {
        let mut b = [0u8; 32];
        rng.fill(&mut b).map_err(|_| RandomFailed)?;
        // Rejection sampling keeps the letters uniform.
        for x in b {
            if x < 248 && password.len() < 24 {
                password.push(ALPHABET[usize::from(x % 62)] as char);
            }
        }
    }
    let username = format!("zt-{}-{}", mac.to_lower_hex(), hex(&suffix));
    Ok(IssuedCredentials {
        ha1: Ha1::new(&username, &password),
        username,
        password,
    })
}

/// A change to a device's provisioning credentials, made by a phone's fetch.
#[derive(Clone, Debug)]
pub enum CredentialChange {
    /// A fetch inside the enrolment window: these credentials become current, pending until
    /// the phone uses them; the window stays open until then. Applies to a device without
    /// credentials or whose credentials are still pending from an earlier enrolment (that
    /// answer was lost: the unused credentials are discarded).
    Enrol {
        /// What to keep of the new credentials.
        ha1: Ha1,
        /// The User-Agent of the fetch, shown to the partner.
        user_agent: String,
    },
    /// A rotation was requested: these become current (pending), the old ones stay valid as
    /// previous. Refused if no rotation is pending.
    Rotate(Ha1),
    /// The phone authenticated with its previous credentials (it never got the current
    /// ones): these replace the current ones, the previous stay valid. Refused if there are
    /// no previous credentials.
    Reissue(Ha1),
    /// The phone authenticated with its current credentials: they are bound, the previous
    /// ones retired and the enrolment window closed.
    Confirm,
    /// Retired credentials were presented: the device is compromised.
    Compromise,
}

/// What a change does to the device's enrolment window.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Window {
    /// Leave it as it is.
    Keep,
    /// Close it.
    Close,
}

/// A credential change as applied: the credentials afterwards, the audit action it records
/// (`None`: not audited) and what becomes of the enrolment window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The device's credentials afterwards.
    pub credentials: PhoneCredentials,
    /// The audit action, if the change is audited.
    pub action: Option<&'static str>,
    /// The enrolment window afterwards.
    pub window: Window,
}

impl CredentialChange {
    /// The device's credentials after this change, or `None` when the change does not apply
    /// to the device's state as read inside the writing transaction. The one rule both
    /// backends apply.
    pub fn apply(self, current: Option<PhoneCredentials>, enrolment_open: bool) -> Option<Applied> {
        let applied = |credentials, action: &'static str, window| Applied {
            credentials,
            action: Some(action),
            window,
        };
        match (self, current) {
            (CredentialChange::Enrol { ha1, .. }, None) if enrolment_open => Some(applied(
                PhoneCredentials::issued(ha1),
                "device.enrol",
                Window::Keep,
            )),
            (CredentialChange::Enrol { ha1, .. }, Some(old))
                if enrolment_open && old.pending && old.previous.is_none() && !old.compromised =>
            {
                Some(applied(
                    PhoneCredentials::issued(ha1),
                    "device.enrol.reissued",
                    Window::Keep,
                ))
            }
            (CredentialChange::Rotate(ha1), Some(old)) if old.rotate && !old.compromised => {
                Some(applied(
                    PhoneCredentials {
                        previous: Some(old.current),
                        retired: old.retired,
                        ..PhoneCredentials::issued(ha1)
                    },
                    "device.credentials.rotated",
                    Window::Keep,
                ))
            }
            (CredentialChange::Reissue(ha1), Some(old))
                if old.previous.is_some() && !old.compromised =>
            {
                Some(applied(
                    PhoneCredentials {
                        previous: old.previous,
                        retired: old.retired,
                        ..PhoneCredentials::issued(ha1)
                    },
                    "device.credentials.reissued",
                    Window::Keep,
                ))
            }
            (CredentialChange::Confirm, Some(old))
                if old.awaits_confirmation() && !old.compromised =>
            {
                let action = if old.previous.is_some() {
                    "device.credentials.confirmed"
                } else {
                    "device.enrol.confirmed"
                };
                Some(applied(
                    PhoneCredentials {
                        pending: false,
                        retired: old.previous.or(old.retired),
                        previous: None,
                        ..old
                    },
                    action,
                    Window::Close,
                ))
            }
            (CredentialChange::Compromise, Some(old)) if !old.compromised => Some(applied(
                PhoneCredentials {
                    compromised: true,
                    ..old
                },
                "device.compromised",
                Window::Close,
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_the_standard_ones() {
        assert_eq!(
            Algorithm::Md5.hex(b"abc"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            Algorithm::Sha256.hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn claim_secrets_compare_by_code() {
        let mac = Mac::parse("7C2F80E0D605").unwrap();
        let s = ClaimSecret::new(mac, &ClaimCode::parse("AB12").unwrap());
        assert!(s.matches(mac, &ClaimCode::parse("ab12").unwrap()));
        assert!(!s.matches(mac, &ClaimCode::parse("AB13").unwrap()));
        assert_eq!(s.upper.username, "7C2F80E0D605");
        assert_eq!(s.upper, Ha1::new("7C2F80E0D605", "7C2F80E0D605-AB12"));
    }

    #[test]
    fn ha1_is_the_rfc_7616_value_and_is_stored_as_hex() {
        // RFC 7616 section 3.9.1's user and password (under zerotouch's realm).
        let ha1 = Ha1::new("Mufasa", "Circle of Life");
        let json = serde_json::to_value(&ha1).unwrap();
        assert_eq!(json["username"], "Mufasa");
        let md5 = Algorithm::Md5.hex(format!("Mufasa:{REALM}:Circle of Life").as_bytes());
        assert_eq!(json["md5"], md5.as_str());
        assert_eq!(ha1.for_algorithm(Algorithm::Md5).as_str(), md5);
        assert_eq!(
            Algorithm::Md5.hex(b"Mufasa:http-auth@example.org:Circle of Life"),
            "3d78807defe7de2157e2b0b6573a855f"
        );
        let back: Ha1 = serde_json::from_value(json).unwrap();
        assert_eq!(back, ha1);
        assert!(ha1.matches_password("Circle of Life"));
        assert!(!ha1.matches_password("Circle of life"));
        let bad = serde_json::json!({"username": "u", "md5": "zz", "sha256": ""});
        assert!(serde_json::from_value::<Ha1>(bad).is_err());
    }

    #[test]
    fn issued_credentials_are_unique_and_hashed() {
        let mac = Mac::parse("805ec017de13").unwrap();
        let a = issue_credentials(mac).unwrap();
        let b = issue_credentials(mac).unwrap();
        assert_ne!(a.password, b.password);
        assert_eq!(a.password.len(), 24);
        assert!(a.password.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(a.username.starts_with("zt-805ec017de13-"));
        assert_eq!(a.ha1, Ha1::new(&a.username, &a.password));
        assert!(!format!("{a:?}").contains(&a.password));
    }

    fn enrol(ha1: &Ha1) -> CredentialChange {
        CredentialChange::Enrol {
            ha1: ha1.clone(),
            user_agent: "Yealink SIP-T46S".into(),
        }
    }

    #[test]
    fn a_lost_first_answer_can_be_issued_again_until_the_phone_uses_it() {
        let (a, b) = (Ha1::new("a", "1"), Ha1::new("b", "2"));
        let first = enrol(&a).apply(None, true).unwrap();
        assert!(first.credentials.pending);
        assert_eq!(first.window, Window::Keep);
        assert!(enrol(&b).apply(None, false).is_none(), "window closed");
        let again = enrol(&b).apply(Some(first.credentials), true).unwrap();
        assert_eq!(again.credentials.current, b);
        assert_eq!(again.action, Some("device.enrol.reissued"));
        let bound = CredentialChange::Confirm
            .apply(Some(again.credentials), true)
            .unwrap();
        assert!(!bound.credentials.pending);
        assert_eq!(bound.window, Window::Close);
        assert_eq!(bound.credentials.state(), CredentialState::Bound);
        assert!(
            enrol(&a)
                .apply(Some(bound.credentials.clone()), true)
                .is_none(),
            "a bound device is not enrolled again"
        );
        assert!(
            CredentialChange::Confirm
                .apply(Some(bound.credentials), true)
                .is_none(),
            "nothing left to confirm"
        );
    }

    #[test]
    fn a_completed_rotation_retires_the_old_credentials_and_their_use_compromises() {
        let (old, new) = (Ha1::new("old", "1"), Ha1::new("new", "2"));
        let mut bound = PhoneCredentials::issued(old.clone());
        bound.pending = false;
        bound.rotate = true;
        let rotated = CredentialChange::Rotate(new.clone())
            .apply(Some(bound), false)
            .unwrap()
            .credentials;
        assert_eq!(rotated.previous.as_ref(), Some(&old));
        let confirmed = CredentialChange::Confirm
            .apply(Some(rotated), false)
            .unwrap()
            .credentials;
        assert_eq!(confirmed.previous, None);
        assert_eq!(confirmed.retired.as_ref(), Some(&old));
        let stolen = CredentialChange::Compromise
            .apply(Some(confirmed), false)
            .unwrap();
        assert_eq!(stolen.action, Some("device.compromised"));
        assert_eq!(stolen.credentials.state(), CredentialState::Compromised);
        assert!(CredentialChange::Reissue(new)
            .apply(Some(stolen.credentials), true)
            .is_none());
    }
}
