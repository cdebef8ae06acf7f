//! Snom User-Agents: `Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 <build> 000413922D24
//! …)`, M-series DECT bases `Snom M900 <version> <mac>` (capital S, lower-case MAC), and very
//! old phones' `snom lid NNNN` with neither model nor MAC. The build part may hold spaces and
//! a date, so the MAC is whichever later token is 12 hex digits.

use crate::domain::Vendor;
use crate::vendors::spelling::{
    is_model_token, is_version, mac_token, strip_prefix_ci, strip_suffix_ci, tokens,
};
use crate::vendors::UserAgent;

/// Parses a Snom User-Agent.
pub fn parse(ua: &str) -> Option<UserAgent<'_>> {
    let mut it = tokens(ua).map(|t| t.trim_matches(|c| c == '(' || c == ')' || c == ';'));
    let rest = it.by_ref().find_map(|t| strip_prefix_ci(t, "snom"))?;
    let model = if rest.is_empty() {
        // `Snom M900 …` or `snom lid NNNN`: the model, if any, is the next token.
        None
    } else {
        Some(strip_suffix_ci(rest, "-SIP").unwrap_or(rest)).filter(|m| is_model_token(m))
    };
    let mut agent = UserAgent {
        vendor: Some(Vendor::Snom),
        model,
        ..UserAgent::default()
    };
    let mut expect_model = rest.is_empty();
    for t in it {
        if expect_model {
            expect_model = false;
            if t.eq_ignore_ascii_case("lid") {
                return Some(agent);
            }
            if is_model_token(t) && !is_version(t) {
                agent.model = Some(t);
                continue;
            }
        }
        if agent.firmware.is_none() && is_version(t) {
            agent.firmware = Some(t);
        } else if agent.mac.is_none() && agent.firmware.is_some() {
            agent.mac = mac_token(t);
        }
    }
    Some(agent)
}
