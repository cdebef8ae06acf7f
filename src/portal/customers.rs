//! The Customers tab: the partner's customers, a form to create one and to edit one. Changes go
//! through the partner API's handlers, so their checks, refusals and audit are the API's.
//!
//! Must not know SQL.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};

use super::csrf_refused;
use super::pages::{error_text, Pages};
use super::session::PortalUser;
use super::PortalState;
use crate::partner_api::customers::{create_customer, get_customer, update_customer};
use crate::partner_api::wire::{CustomerIn, CustomerOut, CustomerPatch};
use crate::partner_api::{ApiPath, JsonBody};
use crate::store::Page;

type Fields = Form<HashMap<String, String>>;

/// Customers listed on one page.
const PAGE: usize = 50;

fn text(form: &HashMap<String, String>, name: &str) -> Option<String> {
    form.get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The customer list, a page at a time.
pub async fn list(
    State(state): State<PortalState>,
    user: PortalUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let after = q.get("after").and_then(|a| a.parse::<i64>().ok());
    let partner = match user.partner() {
        Ok(p) => p,
        Err(e) => return state.pages.api_error(&user, &e),
    };
    let page = state
        .api
        .store
        .customers(
            partner,
            Page {
                after,
                limit: Some(PAGE),
            },
        )
        .await;
    let customers: Vec<CustomerOut> = match page {
        Ok(rows) => rows.into_iter().map(Into::into).collect(),
        Err(e) => return state.pages.api_error(&user, &e.into()),
    };
    let mut c = Pages::context(user.lang, Some(&user), "customers");
    if customers.len() == PAGE {
        c.insert("next", &customers.last().map(|c| c.id));
    }
    c.insert("customers", &customers);
    c.insert("saved", &q.contains_key("saved"));
    state.pages.render(200, "customers.html", &c)
}

fn form_page(
    state: &PortalState,
    user: &PortalUser,
    status: u16,
    customer: Option<serde_json::Value>,
    error: Option<String>,
) -> Response {
    let mut c = Pages::context(user.lang, Some(user), "customers");
    c.insert("customer", &customer);
    c.insert("error", &error);
    state.pages.render(status, "customer_form.html", &c)
}

/// The form for a new customer.
pub async fn new_form(State(state): State<PortalState>, user: PortalUser) -> Response {
    form_page(&state, &user, 200, None, None)
}

/// Creates a customer.
pub async fn create(
    State(state): State<PortalState>,
    user: PortalUser,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let body = CustomerIn {
        company: text(&form, "company").unwrap_or_default(),
        contact: text(&form, "contact"),
        address: text(&form, "address"),
        phone: text(&form, "phone"),
        email: text(&form, "email"),
    };
    match create_customer(State(state.api.clone()), user.caller(), JsonBody(body)).await {
        Ok(_) => Redirect::to("/customers?saved=1").into_response(),
        Err(e) => {
            let echo = serde_json::to_value(&form).ok();
            form_page(
                &state,
                &user,
                e.status().as_u16(),
                echo,
                Some(error_text(user.lang, &e)),
            )
        }
    }
}

/// The form to edit one of the partner's customers (404 for anyone else's).
pub async fn edit_form(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return state.pages.message(user.lang, 404, "not_found");
    };
    match get_customer(State(state.api.clone()), user.caller(), ApiPath(id)).await {
        Ok(Json(customer)) => form_page(
            &state,
            &user,
            200,
            serde_json::to_value(customer).ok(),
            None,
        ),
        Err(e) => state.pages.api_error(&user, &e),
    }
}

/// Saves a customer's fields: the form sends them all, so an optional field left empty is
/// cleared, and an empty company is refused as the API refuses it.
pub async fn update(
    State(state): State<PortalState>,
    user: PortalUser,
    Path(id): Path<String>,
    Form(form): Fields,
) -> Response {
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let Ok(id) = id.parse::<i64>() else {
        return state.pages.message(user.lang, 404, "not_found");
    };
    let patch = CustomerPatch {
        company: Some(text(&form, "company").unwrap_or_default()),
        contact: Some(text(&form, "contact")),
        address: Some(text(&form, "address")),
        phone: Some(text(&form, "phone")),
        email: Some(text(&form, "email")),
    };
    match update_customer(
        State(state.api.clone()),
        user.caller(),
        ApiPath(id),
        JsonBody(patch),
    )
    .await
    {
        Ok(_) => Redirect::to("/customers?saved=1").into_response(),
        Err(crate::partner_api::error::ApiError::NotFound(_)) => {
            state.pages.message(user.lang, 404, "not_found")
        }
        Err(e) => {
            let mut echo = serde_json::to_value(&form).unwrap_or_default();
            echo["id"] = serde_json::Value::from(id);
            form_page(
                &state,
                &user,
                e.status().as_u16(),
                Some(echo),
                Some(error_text(user.lang, &e)),
            )
        }
    }
}
