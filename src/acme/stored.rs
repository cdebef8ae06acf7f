//! What ACME keeps in the store's server-wide secrets, shared by every node: the account, the
//! certificate with its key, the lease of the node ordering, and the HTTP-01 answers of an
//! order in progress. Encoding and decoding them (pure), and the lease's compare-and-swap.
//!
//! Must not know SQL (the store's `stored_secret`/`swap_secret` are the whole interface) or
//! the CA's protocol.

use serde::{Deserialize, Serialize};

use super::Error;
use crate::store::{Millis, Store};

/// The account (`instant_acme::AccountCredentials` and the directory it belongs to).
pub(super) const ACCOUNT: &str = "acme/account";
/// The certificate in use by every node.
pub(super) const CERTIFICATE: &str = "acme/certificate";
/// Which node may order, until when.
pub(super) const LEASE: &str = "acme/lease";
/// The prefix of an HTTP-01 answer's name; the token follows.
pub(super) const HTTP01_PREFIX: &str = "acme/http-01/";

/// A certificate issued by the CA, with its private key, as PEM.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The directory of the CA it was ordered from.
    #[serde(default)]
    pub directory: String,
    /// The names it was ordered for, in the order configured.
    pub domains: Vec<String>,
    /// The chain, leaf first.
    pub chain_pem: String,
    /// The leaf's private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("directory", &self.directory)
            .field("domains", &self.domains)
            .field("chain_pem", &self.chain_pem)
            .field("key_pem", &"***")
            .finish()
    }
}

/// The validity of a certificate's leaf, in seconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// notBefore.
    pub not_before: i64,
    /// notAfter.
    pub not_after: i64,
}

impl Certificate {
    /// Decodes the stored value.
    pub(super) fn decode(bytes: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::Stored {
            what: CERTIFICATE,
            reason: e.to_string(),
        })
    }

    /// The value to store.
    pub(super) fn encode(&self) -> Vec<u8> {
        // Plain strings and a list of them: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The leaf's validity.
    pub fn validity(&self) -> Result<Validity, Error> {
        let bad = |reason: String| Error::Stored {
            what: CERTIFICATE,
            reason,
        };
        let (_, pem) = x509_parser::pem::parse_x509_pem(self.chain_pem.as_bytes())
            .map_err(|e| bad(format!("the chain's first PEM block: {e}")))?;
        let leaf = pem
            .parse_x509()
            .map_err(|e| bad(format!("the leaf certificate: {e}")))?;
        Ok(Validity {
            not_before: leaf.validity().not_before.timestamp(),
            not_after: leaf.validity().not_after.timestamp(),
        })
    }

    /// Whether it covers exactly `domains` (in any order).
    pub(super) fn covers(&self, domains: &[String]) -> bool {
        let mut have = self.domains.clone();
        let mut want = domains.to_vec();
        have.sort();
        want.sort();
        have == want
    }
}

/// The stored account: the credentials instant-acme serialises, with the directory they were
/// made on (a different directory needs a new account).
#[derive(Serialize, Deserialize)]
pub(super) struct Account {
    pub(super) directory: String,
    pub(super) credentials: serde_json::Value,
}

/// Who holds the right to order, until when (Unix milliseconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Lease {
    holder: String,
    until: Millis,
}

/// Takes the ordering lease for `holder` until `until` if it is free, expired or already
/// `holder`'s; whether `holder` has it. Atomic across nodes (compare-and-swap).
pub(super) async fn take_lease(
    store: &dyn Store,
    holder: &str,
    now: Millis,
    until: Millis,
) -> Result<bool, Error> {
    let current = store.stored_secret(LEASE).await?;
    if let Some(bytes) = &current {
        // An unreadable lease is treated as expired: it would otherwise block ordering forever.
        if let Ok(lease) = serde_json::from_slice::<Lease>(bytes) {
            if lease.holder != holder && lease.until > now {
                return Ok(false);
            }
        }
    }
    let mine = serde_json::to_vec(&Lease {
        holder: holder.to_owned(),
        until,
    })
    .unwrap_or_default();
    Ok(store
        .swap_secret(LEASE, current.as_deref(), Some(&mine))
        .await?)
}

/// Gives the lease back if `holder` still has it.
pub(super) async fn release_lease(store: &dyn Store, holder: &str) -> Result<(), Error> {
    let Some(current) = store.stored_secret(LEASE).await? else {
        return Ok(());
    };
    match serde_json::from_slice::<Lease>(&current) {
        Ok(lease) if lease.holder == holder => {
            store.swap_secret(LEASE, Some(&current), None).await?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn pem(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Certificate {
        let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Certificate {
            directory: "https://ca.example/dir".to_owned(),
            domains: vec!["a.example".to_owned()],
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    #[test]
    fn a_certificate_round_trips_and_its_key_is_not_printed() {
        let cert = pem((2030, 1, 1), (2030, 4, 1));
        assert_eq!(Certificate::decode(&cert.encode()).unwrap(), cert);
        assert!(!format!("{cert:?}").contains("PRIVATE KEY"));
        let validity = cert.validity().unwrap();
        assert_eq!(validity.not_after - validity.not_before, 90 * 86_400);
        assert!(cert.covers(&["a.example".to_owned()]));
        assert!(!cert.covers(&["a.example".to_owned(), "b.example".to_owned()]));
        assert!(Certificate::decode(b"{}").is_err());
    }

    #[tokio::test]
    async fn one_holder_has_the_lease_until_it_expires_or_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open_migrated(&dir.path().join("z.db"))
                .unwrap()
                .0,
        );
        let store = store.as_ref();
        assert!(take_lease(store, "a", 1_000, 2_000).await.unwrap());
        assert!(
            !take_lease(store, "b", 1_500, 2_500).await.unwrap(),
            "a holds it"
        );
        assert!(
            take_lease(store, "a", 1_500, 2_500).await.unwrap(),
            "a extends"
        );
        assert!(
            take_lease(store, "b", 2_600, 3_000).await.unwrap(),
            "expired"
        );
        release_lease(store, "a").await.unwrap();
        assert!(
            !take_lease(store, "a", 2_700, 3_000).await.unwrap(),
            "not a's to release"
        );
        release_lease(store, "b").await.unwrap();
        assert!(take_lease(store, "a", 2_700, 3_000).await.unwrap());
    }
}
