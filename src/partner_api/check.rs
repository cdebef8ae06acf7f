//! Checking a MAC before claiming it, as a partner types it: whether it is a MAC, whose OUI it
//! is, whether the device needs its label code, and whether it is free, already the partner's,
//! or in use elsewhere. The same rules as the claim (`domain::check_claimable`), so a form can
//! turn the field green or red with the claim's own reasons; nothing is changed or recorded.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Authenticated;
use super::error::{ApiError, ErrorBody};
use super::ApiState;
use crate::domain::{check_claimable, ClaimRefusal, Mac, Vendor};

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
    let parsed = Mac::parse(&p.mac).ok();
    let vendor = parsed.and_then(|m| state.ouis.vendor_of(m));
    let needs_claim_code = vendor == Some(Vendor::Gigaset);
    let answer = |state: MacState, reason: Option<String>| MacCheckOut {
        mac: parsed.map(|m| m.to_lower_hex()),
        vendor: vendor.map(|v| v.to_string()),
        needs_claim_code,
        state,
        reason,
    };
    let device = match check_claimable(&p.mac, p.claim_code.as_deref(), &state.ouis) {
        Ok(device) => device,
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
            if kind != MacState::NeedsClaimCode {
                return Ok(Json(answer(kind, reason)));
            }
            return Ok(Json(match claimed(&state, partner, parsed).await? {
                Some(taken) => answer(taken, in_use_reason(taken, parsed)),
                None => answer(kind, reason),
            }));
        }
    };
    Ok(Json(
        match claimed(&state, partner, Some(device.mac)).await? {
            Some(taken) => answer(taken, in_use_reason(taken, Some(device.mac))),
            None => answer(MacState::Available, None),
        },
    ))
}

/// `Yours` or `InUse` when `mac` is claimed, from the store (never a node's cache).
async fn claimed(
    state: &ApiState,
    partner: crate::domain::PartnerId,
    mac: Option<Mac>,
) -> Result<Option<MacState>, ApiError> {
    let Some(mac) = mac else { return Ok(None) };
    if state.store.device_view(Some(partner), mac).await?.is_some() {
        return Ok(Some(MacState::Yours));
    }
    Ok(state.store.device(mac).await?.map(|_| MacState::InUse))
}

fn in_use_reason(state: MacState, mac: Option<Mac>) -> Option<String> {
    (state == MacState::InUse).then(|| {
        format!(
            "{} is already in use",
            mac.map(|m| m.to_lower_hex()).unwrap_or_default()
        )
    })
}
