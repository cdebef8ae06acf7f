//! The vendors' redirect services: where a phone fresh from the box asks for its provisioning
//! URL (Yealink RPS, Snom SRAPS, Gigaset's redirect server).
//!
//! Owns the one small interface every vendor adapter implements ([`RedirectService`]), the
//! adapters themselves (one file per vendor, each with the document and version it follows),
//! and the outcome vocabulary the outbox worker branches on ([`Failure`]). It knows nothing of
//! the store, the outbox's rows, HTTP routes or metrics: the worker in `app` asks an adapter to
//! deliver and records what came back. Credentials given to an adapter are never logged, never
//! put in an error's text and never shown by `Debug`.

use std::time::Duration;

pub mod gigaset;
pub mod http;
pub mod snom;
pub mod xmlrpc;
pub mod yealink;

use async_trait::async_trait;

use crate::domain::{Mac, Vendor};

/// A phone as a redirect service knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Its MAC.
    pub mac: Mac,
    /// The code printed on a Gigaset's label (Gigaset's service keys devices by `MAC-CODE`);
    /// `None` for the other vendors.
    pub claim_code: Option<String>,
}

/// Who the vendor says a MAC is registered to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// Nobody: the vendor knows the MAC but it points nowhere, or does not know it.
    Nobody,
    /// Us: it is registered with our account (whatever URL it points to).
    Us,
    /// Another provider's account. Who is never passed on.
    Elsewhere,
}

/// One device in a vendor's listing of our account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The device.
    pub mac: Mac,
    /// The provisioning URL the vendor holds for it, as the vendor returns it.
    pub url: String,
}

/// Why a call to a redirect service did not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The MAC belongs to another provider's account: retrying will not help until they
    /// release it.
    #[error("the phone is provisioned by another provider")]
    RegisteredElsewhere,
    /// The vendor refused the request for a reason retrying cannot fix (a MAC it does not
    /// make, a wrong label code, our credentials refused). `code` is the vendor's own error
    /// code or HTTP status, `reason` its message, trimmed to a line.
    #[error("refused by the vendor ({code}): {reason}")]
    Refused {
        /// The vendor's code.
        code: String,
        /// The vendor's reason.
        reason: String,
    },
    /// Worth another try later: time-out, connection refused, 5xx, rate limiting, a body that
    /// could not be read. `retry_after` is the vendor's own hint when it gave one.
    #[error("the vendor did not answer usefully: {reason}")]
    Transient {
        /// What happened.
        reason: String,
        /// The vendor's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
}

/// What one vendor's redirect service can do for us. One instance per vendor account.
///
/// Batch calls answer one result per device, in the order given and as many as given; a
/// failure of the whole call (the vendor unreachable) is that failure for every device.
/// Registering a device already registered to us with the same URL, and deregistering one
/// the vendor does not hold for us, both succeed: the outbox may deliver a row twice after a
/// crash, and the vendor must not see that as a conflict.
#[async_trait]
pub trait RedirectService: Send + Sync + 'static {
    /// The vendor this service redirects phones of.
    fn vendor(&self) -> Vendor;

    /// The most devices one `register` or `deregister` call carries (1 where the vendor's
    /// API has no batch form).
    fn batch_limit(&self) -> usize;

    /// The URL registered for our phones, in the form this vendor needs (derived from the
    /// phones' public URL given at construction).
    fn provisioning_url(&self) -> &str;

    /// Points each device at our provisioning URL.
    async fn register(&self, devices: &[Device]) -> Vec<Result<(), Failure>>;

    /// Removes each device from our account.
    async fn deregister(&self, devices: &[Device]) -> Vec<Result<(), Failure>>;

    /// Who holds this device.
    async fn check(&self, device: &Device) -> Result<Holder, Failure>;

    /// Every device our account holds, or `None` when the vendor's API cannot list.
    async fn list(&self) -> Result<Option<Vec<Listed>>, Failure>;
}
