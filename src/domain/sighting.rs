//! A sighting: what a claimed device fetched, when and from where — its last-seen status.

use std::net::IpAddr;

use super::clock::Millis;
use super::mac::Mac;

/// The outcome of a fetch that presented credentials the device does not have: recorded
/// apart from the last-seen status (a stranger must not overwrite what the real phone did),
/// so its partner sees devices failing to authenticate.
pub const FAILED_AUTHENTICATION: &str = "auth_failed";

/// One fetch by a known device, recorded off the hot path for troubleshooting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// The device.
    pub mac: Mac,
    /// When.
    pub at: Millis,
    /// Source address.
    pub source: IpAddr,
    /// User-Agent, truncated.
    pub user_agent: String,
    /// Model from the User-Agent.
    pub model: Option<String>,
    /// Firmware from the User-Agent.
    pub firmware: Option<String>,
    /// Which file.
    pub file: &'static str,
    /// The outcome label.
    pub outcome: &'static str,
}

impl Sighting {
    /// Whether it records a failed authentication rather than a served fetch.
    pub fn is_failed_authentication(&self) -> bool {
        self.outcome == FAILED_AUTHENTICATION
    }
}
