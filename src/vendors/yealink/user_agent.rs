//! Yealink User-Agents: `Yealink SIP-T46S 66.86.0.15 80:5e:c0:17:de:13` and the variants seen
//! in the field (vendors.md): the vendor word in any case, DECT bases and conference phones
//! without `SIP-`, `SIP VP-<model>`, runs of spaces, 12 bare hex digits, the dash form
//! `Yealink-<model> <firmware> <hardware>` without a MAC, and old DECT bases and video phones
//! with no vendor word at all. Parsed by tokens, never by position.

use crate::domain::Vendor;
use crate::vendors::spelling::{is_model_token, is_version, mac_token, strip_prefix_ci, tokens};
use crate::vendors::UserAgent;

/// Parses a Yealink User-Agent, named or vendor-less.
pub fn parse(ua: &str) -> Option<UserAgent<'_>> {
    named(ua).or_else(|| vendorless(ua))
}

fn named(ua: &str) -> Option<UserAgent<'_>> {
    let mut it = tokens(ua).peekable();
    let first = it.next()?;
    let mut agent = UserAgent {
        vendor: Some(Vendor::Yealink),
        ..UserAgent::default()
    };
    if first.eq_ignore_ascii_case("yealink") {
        // `SIP VP-T49G`: a lone `SIP` token before the model.
        if it.peek().is_some_and(|t| t.eq_ignore_ascii_case("SIP")) {
            it.next();
        }
        if let Some(&t) = it.peek() {
            if !is_version(t) && mac_token(t).is_none() {
                it.next();
                let model = strip_prefix_ci(t, "SIP-")
                    .or_else(|| strip_prefix_ci(t, "VP-"))
                    .unwrap_or(t);
                agent.model = Some(model).filter(|m| is_model_token(m));
            }
        }
    } else if let Some(model) = strip_prefix_ci(first, "yealink-") {
        agent.model = Some(model).filter(|m| is_model_token(m));
    } else {
        return None;
    }
    for t in it {
        if agent.firmware.is_none() && is_version(t) {
            agent.firmware = Some(t);
        } else if agent.mac.is_none() {
            agent.mac = mac_token(t);
        }
    }
    Some(agent)
}

/// `W52P 25.30.0.2 00:15:65:44:b3:7c`, `VP530P 23.70.0.40 00:15:65:31:4b:c0`: devices that
/// omit the vendor word. The vendor is left to the MAC's OUI.
fn vendorless(ua: &str) -> Option<UserAgent<'_>> {
    let mut it = tokens(ua);
    let (model, firmware, mac) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || !is_model_token(model) || !is_version(firmware) {
        return None;
    }
    Some(UserAgent {
        vendor: None,
        model: Some(model),
        firmware: Some(firmware),
        mac: Some(mac_token(mac)?),
    })
}
