//! The partner API's view of the vendors' redirect services: which vendors' claims are queued
//! for registration, the optional check before a claim, and each device's redirect state on
//! the wire.
//!
//! The check is a port ([`ElsewhereCheck`]) that `app` wires to the vendor adapters, bounded
//! in time there; this module only asks it and never learns who holds a phone.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::wire::RedirectOut;
use crate::domain::{ClaimCode, Mac, Vendor, VendorSet};
use crate::store::{RedirectStatus, Store};

/// Asks a vendor's redirect service, within a bound, whether a MAC is held for another
/// provider. `false` when it is not, when the vendor has no service configured, and when the
/// vendor did not answer in time: a claim is never blocked by a vendor's outage.
#[async_trait]
pub trait ElsewhereCheck: Send + Sync {
    /// Whether `mac` is registered to another provider.
    async fn registered_elsewhere(
        &self,
        vendor: Vendor,
        mac: Mac,
        claim_code: Option<&ClaimCode>,
    ) -> bool;
}

/// What the API knows of redirect services.
#[derive(Clone, Default)]
pub struct Redirects {
    /// Vendors whose new claims are queued for registration.
    pub vendors: VendorSet,
    /// The check before a claim, when the operator turned it on.
    pub check: Option<Arc<dyn ElsewhereCheck>>,
}

/// The redirect state of each of `macs` on the wire (`not_configured` when there is none).
pub(super) async fn states(
    store: &dyn Store,
    macs: Vec<Mac>,
) -> Result<HashMap<Mac, RedirectOut>, crate::store::Error> {
    Ok(store
        .redirect_states(macs)
        .await?
        .into_iter()
        .map(|s: RedirectStatus| (s.mac, RedirectOut::from(s)))
        .collect())
}
