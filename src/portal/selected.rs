//! Changing the devices selected in the device list at once: moving them to another of the
//! partner's instances, or releasing them after a confirmation page that lists them. Both go
//! through the partner API's bulk handler (one transaction, a result per MAC, each change
//! audited as the single-device change would be).
//!
//! Must not know SQL or the claim rules.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::Response;
use axum::{Form, Json};
use serde::Serialize;
use serde_json::json;

use super::pages::Pages;
use super::session::PortalUser;
use super::PortalState;
use crate::partner_api::devices::bulk_devices;

/// One MAC's result, as the page shows it.
#[derive(Serialize)]
struct Row {
    mac: String,
    outcome: String,
    label: String,
}

/// The selection form's submission: `release` asks for confirmation, `release_confirmed`
/// and `move` change the devices.
pub async fn submit(
    State(state): State<PortalState>,
    user: PortalUser,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if !user.csrf_ok(value("csrf")) {
        return state.pages.message(user.lang, 403, "forbidden");
    }
    let macs: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "mac")
        .map(|(_, v)| v.as_str())
        .take(crate::partner_api::wire::BULK_MAX)
        .collect();
    let mut c = Pages::context(user.lang, Some(&user), "devices");
    c.insert("macs", &macs);
    let body = match value("action") {
        Some("release") => {
            c.insert("confirm", &true);
            return state.pages.render(200, "selected.html", &c);
        }
        Some("release_confirmed") => json!({"action": "release", "macs": macs}),
        Some("move") => json!({"action": "move", "macs": macs, "tenant": value("tenant")}),
        _ => return state.pages.message(user.lang, 422, "error_bad_request"),
    };
    let Ok(req) = Request::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
    else {
        return state.pages.message(user.lang, 500, "error_internal");
    };
    match bulk_devices(State(state.api.clone()), user.caller(), req).await {
        Ok(Json(out)) => {
            let rows: Vec<Row> = out
                .results
                .into_iter()
                .map(|r| {
                    let v = serde_json::to_value(&r).unwrap_or_default();
                    let outcome = v["outcome"].as_str().unwrap_or("refused").to_owned();
                    Row {
                        label: user.lang.t(&format!("state_{outcome}")).to_owned(),
                        mac: r.mac,
                        outcome,
                    }
                })
                .collect();
            c.insert("rows", &rows);
            c.insert("confirm", &false);
            state.pages.render(200, "selected.html", &c)
        }
        Err(e) => state.pages.api_error(&user, &e),
    }
}
