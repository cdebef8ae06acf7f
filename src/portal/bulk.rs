//! Bulk add: many phones pasted one per line (`MAC[;Gigaset ID]`, any notation) for one
//! instance. "Check" shows each row's verdict without changing anything (valid, invalid with
//! the reason, in use, already yours — the claim rules' own check); "Register" imports the
//! rows through the partner API's import, committed together, and shows each row's result.
//!
//! Must not know SQL or the claim rules themselves.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::header;
use axum::response::Response;
use axum::{Form, Json};
use serde::Serialize;
use serde_json::json;

use super::csrf_refused;
use super::i18n::Lang;
use super::pages::Pages;
use super::session::PortalUser;
use super::PortalState;
use crate::partner_api::check::check_many;
use crate::partner_api::devices::import_devices;
use crate::store::Page;

type Fields = Form<HashMap<String, String>>;

/// Most lines one paste may hold: as many as a bulk move or release of the API takes.
pub const MAX_LINES: usize = 10_000;

/// One pasted line and its verdict.
#[derive(Serialize)]
struct Row {
    line: usize,
    mac: String,
    claim_code: Option<String>,
    state: String,
    label: String,
    reason: Option<String>,
}

/// The non-empty lines of a paste: (line number, MAC text, Gigaset ID).
fn lines(text: &str) -> Vec<(usize, String, Option<String>)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.trim();
            if line.is_empty() {
                return None;
            }
            let mut fields = line.split([';', ',']).map(|f| f.trim().trim_matches('"'));
            let mac = fields.next().unwrap_or("");
            let code = fields.next().filter(|c| !c.is_empty());
            // A CSV file's header row names its columns.
            if i == 0 && mac.eq_ignore_ascii_case("mac") {
                return None;
            }
            Some((i + 1, mac.to_owned(), code.map(str::to_owned)))
        })
        .collect()
}

fn row_reason(lang: Lang, code: Option<&str>, message: Option<&str>) -> Option<String> {
    let code = code?;
    lang.error(code, None)
        .or_else(|| lang.error("could_not_be_registered", Some(code)))
        .or_else(|| message.map(str::to_owned))
}

async fn instance_names(state: &PortalState, user: &PortalUser) -> Vec<String> {
    let Ok(partner) = user.partner() else {
        return Vec::new();
    };
    state
        .api
        .store
        .tenants_of(Some(partner), Page::all())
        .await
        .map(|ts| ts.into_iter().map(|t| t.name.to_string()).collect())
        .unwrap_or_default()
}

fn render(
    state: &PortalState,
    user: &PortalUser,
    status: u16,
    instances: &[String],
    form: Option<&HashMap<String, String>>,
    rows: &[Row],
    committed: bool,
) -> Response {
    let mut c = Pages::context(user.lang, Some(user), "bulk");
    c.insert("instances", instances);
    c.insert("form", &form);
    c.insert("rows", rows);
    c.insert("committed", &committed);
    c.insert("max_lines", &MAX_LINES);
    state.pages.render(status, "bulk.html", &c)
}

/// The posted form's fields, from either encoding. A file chosen (field `file`) replaces the
/// box's lines. Errs with the message key of what was wrong with the post.
async fn read_form(req: Request) -> Result<HashMap<String, String>, &'static str> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
    if !multipart {
        let Form(form): Fields = Form::from_request(req, &())
            .await
            .map_err(|_| "bulk_bad_form")?;
        return Ok(form);
    }
    let mut parts = Multipart::from_request(req, &())
        .await
        .map_err(|_| "bulk_bad_form")?;
    let mut form = HashMap::new();
    let mut file = None;
    while let Some(part) = parts.next_field().await.map_err(|_| "bulk_bad_form")? {
        let Some(name) = part.name().map(str::to_owned) else {
            continue;
        };
        let bytes = part.bytes().await.map_err(|_| "bulk_bad_form")?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| "bulk_bad_file")?;
        match name.as_str() {
            "file" => file = Some(text),
            _ => {
                form.insert(name, text);
            }
        }
    }
    // A file input left empty still posts an empty part.
    if let Some(text) = file.filter(|t| !t.trim().is_empty()) {
        form.insert("lines".to_owned(), text);
    }
    Ok(form)
}

/// The paste form.
pub async fn form(
    State(state): State<PortalState>,
    user: PortalUser,
    Query(_): Query<HashMap<String, String>>,
) -> Response {
    let instances = instance_names(&state, &user).await;
    render(&state, &user, 200, &instances, None, &[], false)
}

/// Checks the pasted lines, or registers them. The form comes URL-encoded, or as
/// `multipart/form-data` when it carries a file: the server reads the file itself, so a CSV
/// upload needs no script (with the script, the file is also shown in the box beforehand).
pub async fn submit(State(state): State<PortalState>, user: PortalUser, req: Request) -> Response {
    let form = match read_form(req).await {
        Ok(form) => form,
        Err(key) => return state.pages.message(user.lang, 400, key),
    };
    if let Some(refused) = csrf_refused(&state, &user, &form) {
        return refused;
    }
    let instances = instance_names(&state, &user).await;
    let pasted = lines(form.get("lines").map_or("", String::as_str));
    if pasted.len() > MAX_LINES {
        return state.pages.message(user.lang, 413, "bulk_too_many");
    }
    let tenant = form.get("tenant").cloned().unwrap_or_default();
    if form.get("action").map(String::as_str) == Some("commit") {
        let devices: Vec<_> = pasted
            .iter()
            .map(|(_, mac, code)| json!({"mac": mac, "tenant": tenant, "claim_code": code}))
            .collect();
        let body = json!({ "devices": devices }).to_string();
        let Ok(req) = Request::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
        else {
            return state.pages.message(user.lang, 500, "error_internal");
        };
        return match import_devices(State(state.api.clone()), user.caller(), req).await {
            Ok(Json(out)) => {
                let rows: Vec<Row> = out
                    .results
                    .into_iter()
                    .map(|r| {
                        let (line, claim_code) = pasted
                            .get(r.row)
                            .map_or((r.row + 1, None), |(l, _, c)| (*l, c.clone()));
                        Row {
                            line,
                            label: user.lang.t(&format!("state_{}", r.status)).to_owned(),
                            reason: row_reason(user.lang, r.code.as_deref(), r.message.as_deref()),
                            mac: r.mac,
                            claim_code,
                            state: r.status,
                        }
                    })
                    .collect();
                render(&state, &user, 200, &instances, Some(&form), &rows, true)
            }
            Err(e) => state.pages.api_error(&user, &e),
        };
    }
    // Each MAC as the check takes it: at most 64 bytes, a label code at most 16.
    let asked: Vec<(String, Option<String>)> = pasted
        .iter()
        .map(|(_, mac, code)| {
            (
                mac.chars().take(64).collect(),
                code.as_ref().map(|c| c.chars().take(16).collect()),
            )
        })
        .collect();
    let verdicts = match check_many(&state.api, &user.caller(), &asked).await {
        Ok(verdicts) => verdicts,
        Err(e) => return state.pages.api_error(&user, &e),
    };
    let rows: Vec<Row> = pasted
        .into_iter()
        .zip(verdicts)
        .map(|((line, mac, code), verdict)| {
            let state_name = serde_json::to_value(verdict.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "invalid_mac".to_owned());
            Row {
                line,
                mac,
                claim_code: code,
                label: user.lang.t(&format!("state_{state_name}")).to_owned(),
                state: state_name,
                reason: None,
            }
        })
        .collect();
    render(&state, &user, 200, &instances, Some(&form), &rows, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_lines_split_into_mac_and_id() {
        let got = lines("805ec0123456\n\n  7C:2F:80:E0:D6:05 ; AB12 \n00:04:13,\n");
        assert_eq!(
            lines("mac,claim_code,display_name\n\"805ec0123456\",,Desk\n"),
            vec![(2, "805ec0123456".to_owned(), None)],
            "a CSV file with its header"
        );
        assert_eq!(
            got,
            vec![
                (1, "805ec0123456".to_owned(), None),
                (3, "7C:2F:80:E0:D6:05".to_owned(), Some("AB12".to_owned())),
                (4, "00:04:13".to_owned(), None),
            ]
        );
    }
}
