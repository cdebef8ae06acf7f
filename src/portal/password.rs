//! Portal passwords: hashing with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes,
//! one lane, a random salt, stored as a PHC string) and checking a login against a stored hash
//! in the same time whether or not the user exists.
//!
//! Owns the `argon2` crate. Must not know users, the store or HTTP. Hashing is slow on purpose:
//! callers run it on a blocking thread.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Fewest characters a password may have.
pub const MIN_LENGTH: usize = 12;

/// Most bytes a password may have (hashing a megabyte would be a cheap denial of service).
pub const MAX_BYTES: usize = 1024;

/// Why a new password is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Fewer than [`MIN_LENGTH`] characters, or more than [`MAX_BYTES`] bytes.
    #[error("a password has 12 to 1024 characters")]
    Length,
    /// The confirmation differs.
    #[error("the two passwords differ")]
    Mismatch,
}

/// Checks a new password and its confirmation.
pub fn check(password: &str, again: &str) -> Result<(), Refusal> {
    if password.chars().count() < MIN_LENGTH || password.len() > MAX_BYTES {
        return Err(Refusal::Length);
    }
    if password != again {
        return Err(Refusal::Mismatch);
    }
    Ok(())
}

/// Hashing failed (the system's random source, or argon2's parameters): a bug or a broken host.
#[derive(Debug, thiserror::Error)]
#[error("cannot hash a password: {0}")]
pub struct HashFailed(String);

/// The argon2id PHC string of `password`, with a fresh salt.
pub fn hash(password: &str) -> Result<String, HashFailed> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashFailed(e.to_string()))
}

/// Whether `password` matches `stored` (a PHC string). Without a stored hash (no such user, or
/// no password set yet) a fixed hash is checked instead, so the answer takes as long and is
/// false: how long a login takes does not tell whether the e-mail exists.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    let Some(stored) = stored else {
        let _ = dummy().map(|d| Argon2::default().verify_password(password.as_bytes(), &d));
        return false;
    };
    if password.len() > MAX_BYTES {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to check against when there is none, made once.
fn dummy() -> Option<PasswordHash<'static>> {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash("no user has this password").ok())
        .as_deref()
        .and_then(|h| PasswordHash::new(h).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&h)));
        assert!(!verify("correct horse batterY", Some(&h)));
        assert!(!verify("correct horse battery", None));
        assert!(!verify("correct horse battery", Some("not a hash")));
        assert_ne!(hash("correct horse battery").unwrap(), h, "salted");
    }

    #[test]
    fn new_passwords_are_checked() {
        assert_eq!(check("short", "short"), Err(Refusal::Length));
        assert_eq!(
            check("long enough pass", "long enough pasS"),
            Err(Refusal::Mismatch)
        );
        assert_eq!(check("long enough pass", "long enough pass"), Ok(()));
    }
}
