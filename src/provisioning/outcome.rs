//! How a phone request ends: the closed set of outcomes (also a metric label), the answer sent,
//! and what handling came to (an answer now, or credentials to commit first).
//!
//! Knows nothing of how an outcome is decided.

use bytes::Bytes;
use http::HeaderValue;

use crate::domain::Vendor;
use crate::vendors::FileKind;

use super::issue::Ticket;

/// How a phone request ended. A closed set: also a metric label.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// 200 with a rendered config.
    Served,
    /// 200 with a rendered config that also hands the phone new provisioning credentials
    /// (its enrolment, or a rotation).
    Enrolled,
    /// 404 for a file phones ask for speculatively (boot files, `provisioning.xml`, a common
    /// file without a MAC): a normal step of a boot sequence.
    OptionalAbsent,
    /// 404: the MAC is not claimed.
    UnknownDevice,
    /// 404: claimed, but neither enrolled nor inside its enrolment window.
    NotEnrolled,
    /// 404: not a file any supported phone asks for.
    Unrecognised,
    /// 403: the MAC in the path and the MAC in the User-Agent differ.
    MacMismatch,
    /// 404: the request's vendor differs from the device's registered vendor (answered like
    /// an unknown MAC, so it tells nothing).
    VendorMismatch,
    /// 401: the device must authenticate; a Digest challenge.
    Challenged,
    /// 404: wrong credentials, a replayed or foreign nonce (answered like an unknown MAC).
    AuthFailed,
    /// 429: the source network made too many misses and waits out a cool-down.
    Throttled,
    /// 405: not GET or HEAD.
    MethodNotAllowed,
    /// 404: the phone cannot be given what its tenant or device asks (a model zerotouch has no
    /// verified format for, a transport or number of lines the model lacks); logged with the
    /// reason and shown in the device's status. A phone's normal request: never a miss.
    Unsupported,
    /// 500: the template failed for this device.
    RenderFailed,
    /// 503: new credentials could not be stored; the phone retries later.
    Unavailable,
    /// 404: inside the enrolment window, but not from where or how a phone enrols (outside
    /// the tenant's or device's enrolment networks, without the vendor's User-Agent, a HEAD,
    /// or over plain HTTP); answered like an unknown MAC.
    EnrolmentRefused,
    /// 404: a device file over plain HTTP for a tenant that does not allow it (the file
    /// carries secrets); answered like an unknown MAC. A misconfigured phone, not a miss.
    HttpsRequired,
    /// 404: retired credentials were presented, or the device was marked compromised for
    /// that earlier; nothing is served until its partner reopens the enrolment.
    Compromised,
    /// 404: credentials for a device that failed to authenticate too often, presented before
    /// its wait is over (not checked); answered like failed authentication.
    AuthBackoff,
}

impl Outcome {
    /// Every outcome, in label-slot order.
    pub const ALL: [Outcome; 19] = [
        Outcome::Served,
        Outcome::Enrolled,
        Outcome::OptionalAbsent,
        Outcome::UnknownDevice,
        Outcome::NotEnrolled,
        Outcome::Unrecognised,
        Outcome::MacMismatch,
        Outcome::VendorMismatch,
        Outcome::Challenged,
        Outcome::AuthFailed,
        Outcome::Throttled,
        Outcome::MethodNotAllowed,
        Outcome::Unsupported,
        Outcome::RenderFailed,
        Outcome::Unavailable,
        Outcome::EnrolmentRefused,
        Outcome::HttpsRequired,
        Outcome::Compromised,
        Outcome::AuthBackoff,
    ];

    /// Metric label and log field.
    pub const fn label(self) -> &'static str {
        match self {
            Outcome::Served => "served",
            Outcome::Enrolled => "enrolled",
            Outcome::OptionalAbsent => "optional_absent",
            Outcome::UnknownDevice => "unknown_device",
            Outcome::NotEnrolled => "not_enrolled",
            Outcome::Unrecognised => "unrecognised",
            Outcome::MacMismatch => "mac_mismatch",
            Outcome::VendorMismatch => "vendor_mismatch",
            Outcome::Challenged => "challenged",
            Outcome::AuthFailed => crate::domain::sighting::FAILED_AUTHENTICATION,
            Outcome::Throttled => "throttled",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::Unsupported => "unsupported",
            Outcome::RenderFailed => "render_failed",
            Outcome::Unavailable => "unavailable",
            Outcome::EnrolmentRefused => "enrolment_refused",
            Outcome::HttpsRequired => "https_required",
            Outcome::Compromised => "compromised",
            Outcome::AuthBackoff => "auth_backoff",
        }
    }

    /// HTTP status.
    pub const fn status(self) -> u16 {
        match self {
            Outcome::Served | Outcome::Enrolled => 200,
            Outcome::OptionalAbsent
            | Outcome::UnknownDevice
            | Outcome::NotEnrolled
            | Outcome::Unrecognised
            | Outcome::VendorMismatch
            | Outcome::AuthFailed
            | Outcome::Unsupported
            | Outcome::EnrolmentRefused
            | Outcome::HttpsRequired
            | Outcome::Compromised
            | Outcome::AuthBackoff => 404,
            Outcome::MacMismatch => 403,
            Outcome::Challenged => 401,
            Outcome::Throttled => 429,
            Outcome::MethodNotAllowed => 405,
            Outcome::RenderFailed => 500,
            Outcome::Unavailable => 503,
        }
    }

    /// Whether this counts against the source in the miss throttle. A phone's normal steps
    /// (optional files, a first request that gets challenged) never do.
    pub const fn is_miss(self) -> bool {
        matches!(
            self,
            Outcome::UnknownDevice
                | Outcome::NotEnrolled
                | Outcome::Unrecognised
                | Outcome::MacMismatch
                | Outcome::VendorMismatch
                | Outcome::AuthFailed
                | Outcome::MethodNotAllowed
                | Outcome::EnrolmentRefused
                | Outcome::Compromised
                | Outcome::AuthBackoff
        )
    }

    /// The body of a refusal: one fixed text per status, so no refusal tells whether a MAC
    /// exists.
    pub const fn refusal_body(self) -> &'static str {
        match self.status() {
            401 => "unauthorized\n",
            403 => "forbidden\n",
            405 => "method not allowed\n",
            429 => "too many requests\n",
            500 => "internal error\n",
            503 => "unavailable\n",
            _ => "not found\n",
        }
    }

    /// Position in [`Outcome::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

const VENDOR_SLOTS: usize = Vendor::ALL.len() + 1;
const FILE_SLOTS: usize = FileKind::ALL.len() + 1;

/// Number of (vendor, file, outcome) metric slots.
pub const METRIC_SLOTS: usize = crate::metrics::slots(VENDOR_SLOTS, FILE_SLOTS, Outcome::ALL.len());

/// Metric slots for the per-vendor histogram (the vendors and "unknown").
pub const VENDOR_METRIC_SLOTS: usize = VENDOR_SLOTS;

/// The (vendor, file, outcome) slot of a request's counter; `None` is the "unknown"/"none" slot.
pub(crate) fn metric_slot(
    vendor: Option<Vendor>,
    file: Option<FileKind>,
    outcome: Outcome,
) -> usize {
    let vendor_slot = vendor.map_or(Vendor::ALL.len(), Vendor::index);
    let file_slot = file.map_or(FileKind::ALL.len(), FileKind::index);
    (vendor_slot * FILE_SLOTS + file_slot) * Outcome::ALL.len() + outcome.index()
}

/// The answer to a phone.
#[derive(Clone, Debug)]
pub struct Answer {
    /// How it ended.
    pub outcome: Outcome,
    /// Content-Type of `body`.
    pub content_type: &'static str,
    /// The config, or a fixed refusal text.
    pub body: Bytes,
    /// `WWW-Authenticate` values of a 401.
    pub challenge: Option<[HeaderValue; 2]>,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
}

impl Answer {
    /// The fixed answer of a refusal.
    pub fn refusal(outcome: Outcome) -> Self {
        Self {
            outcome,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from_static(outcome.refusal_body().as_bytes()),
            challenge: None,
            retry_after: None,
        }
    }

    /// A rendered config.
    pub fn config(outcome: Outcome, content_type: &'static str, body: Bytes) -> Self {
        Self {
            outcome,
            content_type,
            body,
            challenge: None,
            retry_after: None,
        }
    }
}

/// What handling a request came to: an answer now, or new credentials to store first.
pub enum Handled {
    /// The answer.
    Done(Answer),
    /// The phone is to receive new provisioning credentials: they must be committed to the
    /// store before it gets them (see [`super::Provisioner::issue`]). Rare: once per enrolment
    /// or rotation, never on an ordinary fetch.
    Issue(Box<Ticket>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_tell_nothing() {
        assert_eq!(
            Outcome::UnknownDevice.refusal_body(),
            Outcome::Unrecognised.refusal_body()
        );
        assert_eq!(Outcome::VendorMismatch.status(), 404);
        assert!(!Outcome::Unsupported.is_miss() && !Outcome::OptionalAbsent.is_miss());
    }

    #[test]
    fn every_outcome_has_its_own_slot() {
        let mut slots: Vec<usize> = Outcome::ALL
            .iter()
            .map(|&o| metric_slot(None, None, o))
            .collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), Outcome::ALL.len());
        assert!(metric_slot(None, None, Outcome::Unavailable) < METRIC_SLOTS);
    }
}
