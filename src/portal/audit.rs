//! The Audit tab: what the partner's own people and tokens changed (claims, moves, releases,
//! customers, instances, users), oldest first a page at a time, filtered by a device's MAC.
//! The store keeps the partner of each entry's caller; entries of the operator and of phones
//! are not shown.
//!
//! Must not know SQL.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;

use super::pages::Pages;
use super::session::PortalUser;
use super::PortalState;
use crate::domain::Mac;
use crate::partner_api::wire::AuditOut;
use crate::store::AuditQuery;

/// Entries on one page.
const PAGE: usize = 100;

/// The partner's audit entries.
pub async fn list(
    State(state): State<PortalState>,
    user: PortalUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let typed = q.get("mac").map(|m| m.trim()).filter(|m| !m.is_empty());
    let mac = match typed.map(Mac::parse) {
        Some(Ok(mac)) => Some(mac),
        Some(Err(_)) => return state.pages.message(user.lang, 422, "mac_invalid"),
        None => None,
    };
    let query = AuditQuery {
        after: q.get("after").and_then(|a| a.parse().ok()),
        mac,
        tenant: None,
        partner: Some(user.user.partner),
        limit: PAGE,
    };
    let entries: Vec<AuditOut> = match state.api.store.audit_log(query).await {
        Ok(rows) => rows.into_iter().map(Into::into).collect(),
        Err(e) => return state.pages.api_error(&user, &e.into()),
    };
    let mut c = Pages::context(user.lang, Some(&user), "audit");
    if entries.len() == PAGE {
        c.insert("next", &entries.last().map(|e| e.id));
    }
    c.insert("entries", &entries);
    c.insert("mac", &typed);
    state.pages.render(200, "audit.html", &c)
}
