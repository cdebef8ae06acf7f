//! Checking a MAC before claiming it, as a partner types it: whether it is a MAC, whose OUI it
//! is, whether the device needs its label code, and whether it is free, already the partner's,
//! or in use elsewhere. The same rules as the claim (`domain::check_claimable`), so a form can
//! turn the field green or red with the claim's own reasons; nothing is changed or recorded.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Authenticated;
use super::error::{ApiError, ErrorBody};
use super::ApiState;
use crate::domain::{check_claimable, ClaimRefusal, Mac, OuiTable, PartnerId, Vendor};

/// What to check.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckParams {
    /// The MAC as typed, any notation.
    #[param(max_length = 64)]
    mac: String,
    /// A Gigaset's label code, if already typed.
    #[param(max_length = 16)]
    claim_code: Option<String>,
}

/// Where a MAC stands.
#[derive(Serialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MacState {
    /// Not a MAC, or one no phone has (zero, broadcast, multicast).
    InvalidMac,
    /// Not a supported vendor's prefix.
    UnsupportedVendor,
    /// A Gigaset: its label code is needed (and was not given).
    NeedsClaimCode,
    /// The label code given is not 4 letters or digits.
    InvalidClaimCode,
    /// Claimable: nobody has claimed it.
    Available,
    /// Already claimed by one of the caller's tenants.
    Yours,
    /// Claimed by someone else: a claim would answer 409 `already_in_use`.
    InUse,
}

/// The answer.
#[derive(Serialize, ToSchema)]
pub struct MacCheckOut {
    /// The MAC, 12 lower-case hex digits, when it parses.
    pub mac: Option<String>,
    /// Its vendor, when its prefix is a supported vendor's.
    pub vendor: Option<String>,
    /// Whether a claim needs the label code (Gigaset).
    pub needs_claim_code: bool,
    /// Where it stands.
    pub state: MacState,
    /// What is wrong, in the words the claim would use (absent when claimable or the caller's).
    pub reason: Option<String>,
}

/// Check a MAC as it is typed: whether it could be registered, by which vendor, whether it
/// needs a Gigaset's label code, and whether it is free, already yours, or in use elsewhere
/// (who has it is never said). Nothing is changed.
#[utoipa::path(get, path = "/api/v1/devices/check", tag = "devices",
    params(CheckParams),
    responses(
        (status = 200, description = "Where the MAC stands", body = MacCheckOut),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
    ))]
pub async fn check_mac(
    State(state): State<ApiState>,
    caller: Authenticated,
    params: Result<Query<CheckParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<MacCheckOut>, ApiError> {
    let partner = caller.partner()?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if p.mac.len() > 64 || p.claim_code.as_ref().is_some_and(|c| c.len() > 16) {
        return Err(ApiError::BadRequest(
            "mac is at most 64 bytes and claim_code at most 16".into(),
        ));
    }
    let (free, lookup) = before_lookup(&state.ouis, &p.mac, p.claim_code.as_deref());
    let holder = match lookup {
        Some(mac) => state.store.claim_holders(vec![mac]).await?.pop(),
        None => None,
    };
    Ok(Json(settle(partner, free, holder.map(|(_, p)| p))))
}

/// Checks many MACs at once (a pasted list: each MAC as typed, with its label code if any) by
/// the same rules as [`check_mac`], with one read of the store for all of them, so thousands
/// are answered in well under a second. Nothing is changed.
pub async fn check_many(
    state: &ApiState,
    caller: &Authenticated,
    rows: &[(String, Option<String>)],
) -> Result<Vec<MacCheckOut>, ApiError> {
    let partner = caller.partner()?;
    let pending: Vec<_> = rows
        .iter()
        .map(|(mac, code)| before_lookup(&state.ouis, mac, code.as_deref()))
        .collect();
    let wanted: Vec<Mac> = pending.iter().filter_map(|(_, mac)| *mac).collect();
    let holders: HashMap<Mac, Option<PartnerId>> = state
        .store
        .claim_holders(wanted)
        .await?
        .into_iter()
        .collect();
    Ok(pending
        .into_iter()
        .map(|(free, lookup)| {
            let holder = lookup.and_then(|mac| holders.get(&mac).copied());
            settle(partner, free, holder)
        })
        .collect())
}

/// What a check knows before asking the store: the answer if nobody holds the MAC, and the
/// MAC to ask about (none when the answer cannot depend on it).
fn before_lookup(
    ouis: &OuiTable,
    mac: &str,
    claim_code: Option<&str>,
) -> (MacCheckOut, Option<Mac>) {
    let parsed = Mac::parse(mac).ok();
    let vendor = parsed.and_then(|m| ouis.vendor_of(m));
    let answer = |state: MacState, reason: Option<String>| MacCheckOut {
        mac: parsed.map(|m| m.to_lower_hex()),
        vendor: vendor.map(|v| v.to_string()),
        needs_claim_code: vendor == Some(Vendor::Gigaset),
        state,
        reason,
    };
    match check_claimable(mac, claim_code, ouis) {
        Ok(device) => (answer(MacState::Available, None), Some(device.mac)),
        Err(refusal) => {
            let reason = Some(refusal.to_string());
            let kind = match refusal {
                ClaimRefusal::Mac(_) => MacState::InvalidMac,
                ClaimRefusal::UnsupportedVendor(_) => MacState::UnsupportedVendor,
                ClaimRefusal::MissingClaimCode => MacState::NeedsClaimCode,
                ClaimRefusal::MalformedClaimCode | ClaimRefusal::ClaimCodeMismatch => {
                    MacState::InvalidClaimCode
                }
            };
            // A Gigaset without its code may still be someone's: say so before asking for it.
            let lookup = parsed.filter(|_| kind == MacState::NeedsClaimCode);
            (answer(kind, reason), lookup)
        }
    }
}

/// The answer once the store said who holds the MAC: `holder` is `None` when nobody does, else
/// the holding tenant's partner (never named in the answer).
fn settle(partner: PartnerId, free: MacCheckOut, holder: Option<Option<PartnerId>>) -> MacCheckOut {
    let state = match holder {
        None => return free,
        Some(held_by) if held_by == Some(partner) => MacState::Yours,
        Some(_) => MacState::InUse,
    };
    let reason = (state == MacState::InUse).then(|| {
        format!(
            "{} is already in use",
            free.mac.as_deref().unwrap_or_default()
        )
    });
    MacCheckOut {
        state,
        reason,
        ..free
    }
}
