//! A sighting: what a claimed device fetched, when and from where — its last-seen status.

use std::net::IpAddr;

use super::clock::Millis;
use super::mac::Mac;

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
