//! The Audit tab. A partner's people see what their partner's people and tokens changed
//! (claims, moves, releases, customers, instances, users); the store keeps the partner of each
//! entry's caller, so entries of the operator, of phones and of other partners are not shown.
//! An administrator sees every entry, of every partner, and may narrow them to one partner.
//! Both filter by a device's MAC, the actor, the action and a range of UTC days, oldest first
//! a page at a time.
//!
//! Must not know SQL.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Serialize;

use super::pages::Pages;
use super::session::AnyUser;
use super::PortalState;
use crate::domain::Mac;
use crate::partner_api::wire::{parse_time, AuditOut};
use crate::store::{AuditQuery, Millis};

/// Entries on one page.
const PAGE: usize = 100;

/// The longest actor or action text a filter takes: longer ones match nothing anyway.
const MAX_FILTER: usize = 300;

/// One day, for a range of days that includes its last day.
const DAY_MS: Millis = 86_400_000;

/// A partner in the administrator's partner menu.
#[derive(Serialize)]
struct PartnerChoice {
    id: i64,
    name: String,
    selected: bool,
}

/// The filters as typed (trimmed, empty ones left out), to show them again and to carry them
/// to the next page.
#[derive(Default, Serialize)]
struct Typed {
    mac: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    partner: Option<String>,
}

impl Typed {
    fn read(q: &HashMap<String, String>, admin: bool) -> Self {
        let get = |name: &str| {
            q.get(name)
                .map(|v| v.trim().chars().take(MAX_FILTER).collect::<String>())
                .filter(|v| !v.is_empty())
        };
        Typed {
            mac: get("mac"),
            actor: get("actor"),
            action: get("action"),
            since: get("since"),
            until: get("until"),
            // Only the administrator chooses a partner; a partner's people see their own.
            partner: get("partner").filter(|_| admin),
        }
    }

    /// The filters as a query string (`mac=…&actor=…`), for the next page's link.
    fn query(&self) -> String {
        [
            ("mac", &self.mac),
            ("actor", &self.actor),
            ("action", &self.action),
            ("since", &self.since),
            ("until", &self.until),
            ("partner", &self.partner),
        ]
        .iter()
        .filter_map(|(name, value)| Some(format!("{name}={}", encode(value.as_deref()?))))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The start of a UTC day typed as `YYYY-MM-DD` (what a date field sends); `None` if it is
/// not one.
fn day_start(day: &str) -> Option<Millis> {
    let well_formed = day.len() == 10 && day.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    well_formed
        .then(|| parse_time("day", &format!("{day}T00:00:00Z")).ok())
        .flatten()
}

/// The audit entries the user may see, filtered.
pub async fn list(
    State(state): State<PortalState>,
    AnyUser(user): AnyUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let admin = user.is_admin();
    let typed = Typed::read(&q, admin);
    let mac = match typed.mac.as_deref().map(Mac::parse) {
        Some(Ok(mac)) => Some(mac),
        Some(Err(_)) => return state.pages.message(user.lang, 422, "mac_invalid"),
        None => None,
    };
    let (since, until) = match (
        typed.since.as_deref().map(day_start),
        typed.until.as_deref().map(day_start),
    ) {
        (Some(None), _) | (_, Some(None)) => {
            return state.pages.message(user.lang, 422, "date_invalid")
        }
        (since, until) => (since.flatten(), until.flatten().map(|d| d + DAY_MS)),
    };
    let partner = if admin {
        match typed.partner.as_deref().map(str::parse::<i64>) {
            Some(Ok(id)) => Some(id),
            Some(Err(_)) => return state.pages.message(user.lang, 404, "not_found"),
            None => None,
        }
    } else {
        user.user.partner
    };
    let query = AuditQuery {
        after: q.get("after").and_then(|a| a.parse().ok()),
        mac,
        tenant: None,
        partner,
        action: typed.action.clone(),
        actor: typed.actor.clone(),
        since,
        until,
        limit: PAGE,
    };
    let entries: Vec<AuditOut> = match state.api.store.audit_log(query).await {
        Ok(rows) => rows.into_iter().map(Into::into).collect(),
        Err(e) => return state.pages.api_error(&user, &e.into()),
    };
    let mut c = Pages::context(user.lang, Some(&user), "audit");
    if admin {
        let partners: Vec<PartnerChoice> = match state.api.store.partners().await {
            Ok(rows) => rows
                .into_iter()
                .map(|p| PartnerChoice {
                    selected: partner == Some(p.id),
                    id: p.id,
                    name: p.name,
                })
                .collect(),
            Err(e) => return state.pages.api_error(&user, &e.into()),
        };
        c.insert("partners", &partners);
    }
    if entries.len() == PAGE {
        c.insert("next", &entries.last().map(|e| e.id));
    }
    c.insert("entries", &entries);
    c.insert("filters", &typed);
    c.insert("filter_query", &typed.query());
    state.pages.render(200, "audit.html", &c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_midnights() {
        assert_eq!(day_start("1970-01-02"), Some(DAY_MS));
        for bad in [
            "",
            "2026-13-01",
            "2026-11-31",
            "yesterday",
            "2026-11-29T00:00:00Z",
        ] {
            assert_eq!(day_start(bad), None, "{bad}");
        }
    }

    #[test]
    fn filters_travel_to_the_next_page_encoded() {
        let typed = Typed {
            actor: Some("ann@x.test & co".into()),
            action: Some("device.claim".into()),
            ..Typed::default()
        };
        assert_eq!(
            typed.query(),
            "actor=ann%40x.test%20%26%20co&action=device.claim"
        );
    }

    #[test]
    fn only_the_administrator_chooses_a_partner() {
        let q = HashMap::from([("partner".to_owned(), "3".to_owned())]);
        assert_eq!(Typed::read(&q, true).partner.as_deref(), Some("3"));
        assert_eq!(Typed::read(&q, false).partner, None);
    }
}
