//! The certificates the TLS listeners present: read from PEM files, checked (the key matches
//! its certificate, the leaf certificate parses), and replaced while the server runs. A
//! replacement applies to handshakes that start after it; open connections keep theirs. A set
//! that fails its checks never replaces a working one.
//!
//! Owns reading and checking the files and the set in use. Knows nothing of when to reload
//! (the app polls and listens for SIGHUP), of metrics, or of which certificate a client gets
//! (`tls` chooses per ClientHello).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use super::tls::{Identity, TlsError};

/// The certificates of the TLS listeners, replaceable while they serve.
pub struct Certificates {
    identities: Vec<Identity>,
    current: RwLock<Arc<Loaded>>,
    /// The files' fingerprint at the last failed attempt, so an unchanged broken file is
    /// reported once, not at every poll.
    failed: Mutex<Option<Fingerprint>>,
}

/// One checked set of certificates.
pub struct Loaded {
    /// The keys, ECDSA ones first (cheaper handshakes for every client that can verify them).
    pub keys: Vec<Arc<CertifiedKey>>,
    /// The earliest `notAfter` of the leaf certificates, in seconds since the Unix epoch.
    pub not_after: i64,
    fingerprint: Fingerprint,
}

/// What a reload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// The files are those in use: nothing changed.
    Unchanged,
    /// New certificates are in use; the earliest leaf expires at `not_after` (Unix seconds).
    Replaced {
        /// Seconds since the Unix epoch.
        not_after: i64,
    },
}

/// SHA-256 over every file's bytes (or the reason it could not be read).
type Fingerprint = [u8; 32];

/// The files as read: each identity's certificate and key bytes, or why not.
type Files = Vec<(Result<Vec<u8>, String>, Result<Vec<u8>, String>)>;

impl Certificates {
    /// Reads and checks `identities` (fails naming the file at fault).
    pub fn load(identities: Vec<Identity>) -> Result<Self, TlsError> {
        let files = read(&identities);
        let loaded = check(&identities, &files)?;
        Ok(Self {
            identities,
            current: RwLock::new(Arc::new(loaded)),
            failed: Mutex::new(None),
        })
    }

    /// The set in use.
    pub fn current(&self) -> Arc<Loaded> {
        // A poisoned lock still holds a whole `Arc`: the writer only ever swaps it.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The files the certificates come from.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// Reads the files again and, if they differ from the set in use and pass the checks,
    /// puts them in use. On failure the set in use stays. Blocking (reads files).
    pub fn reload(&self) -> Result<Reloaded, TlsError> {
        let files = read(&self.identities);
        let print = fingerprint(&files);
        if print == self.current().fingerprint {
            return Ok(Reloaded::Unchanged);
        }
        match check(&self.identities, &files) {
            Ok(loaded) => {
                let not_after = loaded.not_after;
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(loaded);
                *self.failed.lock().unwrap_or_else(PoisonError::into_inner) = None;
                Ok(Reloaded::Replaced { not_after })
            }
            Err(e) => {
                *self.failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(print);
                Err(e)
            }
        }
    }

    /// Whether the files differ from both the set in use and the last set that failed its
    /// checks: what a poll acts on. Blocking (reads files).
    pub fn changed_on_disk(&self) -> bool {
        let print = fingerprint(&read(&self.identities));
        let failed = *self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        print != self.current().fingerprint && Some(print) != failed
    }
}

fn read(identities: &[Identity]) -> Files {
    let one = |p: &Path| std::fs::read(p).map_err(|e| e.to_string());
    identities
        .iter()
        .map(|id| (one(&id.cert), one(&id.key)))
        .collect()
}

fn fingerprint(files: &Files) -> Fingerprint {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for file in files.iter().flat_map(|(cert, key)| [cert, key]) {
        // Tagged and length-prefixed, so no two different sets hash the same input.
        let (tag, bytes) = match file {
            Ok(bytes) => (0u8, bytes.as_slice()),
            Err(reason) => (1u8, reason.as_bytes()),
        };
        digest.update(&[tag]);
        digest.update(&(bytes.len() as u64).to_be_bytes());
        digest.update(bytes);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.finish().as_ref());
    out
}

fn read_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn check(identities: &[Identity], files: &Files) -> Result<Loaded, TlsError> {
    let mut keys = Vec::with_capacity(identities.len());
    let mut not_after = i64::MAX;
    for (identity, (cert, key)) in identities.iter().zip(files) {
        let (certified, expires) = check_one(identity, cert, key)?;
        keys.push(certified);
        not_after = not_after.min(expires);
    }
    keys.sort_by_key(|k| {
        let ecdsa = k
            .key
            .choose_scheme(&[
                SignatureScheme::ECDSA_NISTP256_SHA256,
                SignatureScheme::ECDSA_NISTP384_SHA384,
            ])
            .is_some();
        !ecdsa
    });
    Ok(Loaded {
        keys,
        not_after,
        fingerprint: fingerprint(files),
    })
}

fn check_one(
    identity: &Identity,
    cert: &Result<Vec<u8>, String>,
    key: &Result<Vec<u8>, String>,
) -> Result<(Arc<CertifiedKey>, i64), TlsError> {
    let cert_path = &identity.cert;
    let key_path = &identity.key;
    let cert = cert.as_ref().map_err(|e| read_err(cert_path, e))?;
    let key = key.as_ref().map_err(|e| read_err(key_path, e))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| read_err(cert_path, e))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: cert_path.display().to_string(),
        });
    };
    let not_after = x509_parser::parse_x509_certificate(leaf)
        .map(|(_, parsed)| parsed.validity().not_after.timestamp())
        .map_err(|e| read_err(cert_path, format!("the first certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| read_err(key_path, e))?;
    let signer = any_supported_type(&key).map_err(|e| TlsError::Key {
        path: key_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        // A signer that cannot tell its public key is not a mismatch.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => {
            return Err(TlsError::Mismatch {
                cert: cert_path.display().to_string(),
                key: key_path.display().to_string(),
            })
        }
    }
    Ok((Arc::new(certified), not_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate for `name` valid until `not_after` (Unix seconds), and its key, as PEM.
    fn pem(name: &str, not_after: i64) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.not_after =
            rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(not_after as u64);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(dir: &Path, (cert, key): &(String, String)) -> Identity {
        let id = Identity {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&id.cert, cert).unwrap();
        std::fs::write(&id.key, key).unwrap();
        id
    }

    #[test]
    fn a_changed_file_replaces_the_set_and_a_broken_one_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = pem("a.example", 4_000_000_000);
        let id = write(dir.path(), &first);
        let certs = Certificates::load(vec![id.clone()]).unwrap();
        assert_eq!(certs.current().not_after, 4_000_000_000);
        assert!(!certs.changed_on_disk());
        assert_eq!(certs.reload().unwrap(), Reloaded::Unchanged);

        let second = pem("b.example", 4_100_000_000);
        write(dir.path(), &second);
        assert!(certs.changed_on_disk());
        assert_eq!(
            certs.reload().unwrap(),
            Reloaded::Replaced {
                not_after: 4_100_000_000
            }
        );

        // A key that is not the certificate's: refused, the set in use stays, and the poll
        // does not report the same broken files again.
        std::fs::write(&id.key, &first.1).unwrap();
        assert!(certs.changed_on_disk());
        let err = certs.reload().unwrap_err();
        assert!(matches!(err, TlsError::Mismatch { .. }), "{err}");
        assert_eq!(certs.current().not_after, 4_100_000_000);
        assert!(!certs.changed_on_disk());
        // Garbage, then a missing file: refused with the file named.
        std::fs::write(&id.cert, "not a certificate").unwrap();
        assert!(certs.changed_on_disk());
        let err = certs.reload().unwrap_err().to_string();
        assert!(err.contains("cert.pem"), "{err}");
        std::fs::remove_file(&id.key).unwrap();
        let err = certs.reload().unwrap_err().to_string();
        assert!(err.contains("key.pem"), "{err}");
        assert_eq!(certs.current().not_after, 4_100_000_000);
    }

    #[test]
    fn the_earliest_expiry_of_several_certificates_counts() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let certs = Certificates::load(vec![
            write(a.path(), &pem("a.example", 4_000_000_000)),
            write(b.path(), &pem("a.example", 3_900_000_000)),
        ])
        .unwrap();
        assert_eq!(certs.current().not_after, 3_900_000_000);
        assert_eq!(certs.current().keys.len(), 2);
    }
}
