//! Gigaset User-Agents: Nx70 `Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;<MAC>[;Handset=3]`
//! (the version also in git-describe form or with `-release`), N510/N720
//! `N510 IP PRO/42.245.00.000.000;<MAC>`, `Gigaset N720 DM PRO/70.089.00.000.000;<MAC>`,
//! sometimes without the MAC or with dashes (`N720-DM-PRO/…`), Maxwell
//! `Maxwell 3 PRO/<version>;<MAC>`. Split at the last `/`: the model on the left, then the
//! version, an optional MAC and an optional `Handset=N`, separated by `;`.

use crate::domain::Vendor;
use crate::vendors::spelling::{mac_token, strip_prefix_ci};
use crate::vendors::UserAgent;

/// Parses a Gigaset User-Agent.
pub fn parse(ua: &str) -> Option<UserAgent<'_>> {
    let (left, right) = ua.rsplit_once('/')?;
    let named = strip_prefix_ci(left, "gigaset");
    let model_part = named.unwrap_or(left).trim();
    let looks_like_gigaset_model = {
        let b = model_part.as_bytes();
        (b.len() >= 4 && b[0].is_ascii_alphabetic() && b[1..4].iter().all(u8::is_ascii_digit))
            || strip_prefix_ci(model_part, "maxwell").is_some()
    };
    if named.is_none() && !looks_like_gigaset_model {
        return None;
    }
    let mut fields = right.split(';').map(str::trim);
    let firmware = fields.next().filter(|v| !v.is_empty() && !v.contains(' '));
    let mac = fields.find_map(mac_token);
    Some(UserAgent {
        vendor: Some(Vendor::Gigaset),
        model: Some(model_part).filter(|m| !m.is_empty() && m.len() <= 32),
        firmware,
        mac,
    })
}
