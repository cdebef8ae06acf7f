//! Gigaset redirect server stand-in: XML-RPC `autoprov.registerDevice`,
//! `autoprov.deregisterDevice` and `autoprov.checkDevice` on `/apxml/rpc.do`, HTTP Basic
//! authentication, devices keyed by MAC-ID (`MAC-CODE`). Answers are `[success, text]`
//! arrays; errors are `<word>:<argument>` texts. Its XML-RPC reading and writing are its own.

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::request::Parts;
use http::StatusCode;
use zerotouch::domain::mac::Mac;

use super::Shared;

fn xml(body: String) -> Response {
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "text/xml")],
        body,
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn pair(success: bool, text: &str) -> Response {
    xml(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse><params><param><value><array><data>\
         <value><boolean>{}</boolean></value><value><string>{}</string></value>\
         </data></array></value></param></params></methodResponse>",
        u8::from(success),
        escape(text)
    ))
}

fn fault(code: i32, text: &str) -> Response {
    xml(format!(
        "<?xml version=\"1.0\"?>\n<methodResponse><fault><value><struct>\
         <member><name>faultCode</name><value><int>{code}</int></value></member>\
         <member><name>faultString</name><value><string>{}</string></value></member>\
         </struct></value></fault></methodResponse>",
        escape(text)
    ))
}

/// The method name and string parameters of a call.
fn parse_call(body: &[u8]) -> Option<(String, Vec<String>)> {
    let text = std::str::from_utf8(body).ok()?;
    let doc = roxmltree::Document::parse(text).ok()?;
    let root = doc.root_element();
    if !root.has_tag_name("methodCall") {
        return None;
    }
    let method = root
        .children()
        .find(|n| n.has_tag_name("methodName"))?
        .text()?
        .trim()
        .to_owned();
    let params = root
        .children()
        .find(|n| n.has_tag_name("params"))
        .map(|ps| {
            ps.children()
                .filter(|n| n.has_tag_name("param"))
                .filter_map(|p| p.children().find(|n| n.has_tag_name("value")))
                .map(|v| {
                    // A value is <string>text</string> or bare text.
                    match v.children().find(|n| n.is_element()) {
                        Some(inner) => inner.text().unwrap_or("").to_owned(),
                        None => v.text().unwrap_or("").to_owned(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Some((method, params))
}

/// `MAC-CODE` → (MAC, code).
fn parse_mac_id(id: &str) -> Option<(Mac, String)> {
    let (mac, code) = id.split_once('-')?;
    if mac.len() != 12 || code.len() != 4 || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((Mac::parse(mac).ok()?, code.to_ascii_uppercase()))
}

pub(super) async fn handle(shared: &Arc<Shared>, parts: &Parts, body: Bytes) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", shared.key_id, shared.secret))
    );
    let given = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        shared.refuse();
        return (
            StatusCode::UNAUTHORIZED,
            [("WWW-Authenticate", "Basic realm=\"autoprov\"")],
            "Unauthorized",
        )
            .into_response();
    }
    if parts.uri.path() != "/apxml/rpc.do" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some((method, params)) = parse_call(&body) else {
        return fault(-32700, "parse error: not well formed");
    };
    let id = params.first().cloned().unwrap_or_default();
    let parsed = parse_mac_id(&id);
    let _flight = shared.begin(&method, parsed.iter().map(|(m, _)| *m).collect());
    shared.latency().await;

    let mut b = shared.books();
    let expected_params = match method.as_str() {
        "autoprov.registerDevice" => 3,
        "autoprov.deregisterDevice" | "autoprov.checkDevice" => 1,
        _ => return fault(-32601, "requested method not found"),
    };
    if params.len() != expected_params {
        return fault(-32602, "invalid method parameters");
    }
    let Some((mac, code)) = parsed else {
        return pair(false, &format!("mac_invalid:{id}"));
    };
    if b.codes.get(&mac).is_some_and(|known| *known != code) {
        return pair(false, &format!("mac_not_exist:{id}"));
    }
    match method.as_str() {
        "autoprov.registerDevice" => {
            let (url, name) = (&params[1], &params[2]);
            if b.ours.contains_key(&mac) || b.elsewhere.contains(&mac) {
                return pair(false, &format!("mac_already_in_use:{id}"));
            }
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return pair(false, &format!("url_invalid:{url}"));
            }
            if name.trim().is_empty() {
                return pair(false, &format!("name_invalid:{name}"));
            }
            b.codes.insert(mac, code);
            b.ours.insert(mac, url.clone());
            pair(true, &id)
        }
        "autoprov.deregisterDevice" => {
            if b.ours.remove(&mac).is_some() {
                pair(true, "ok")
            } else {
                pair(false, &format!("mac_not_found:{id}"))
            }
        }
        _ => {
            if b.ours.contains_key(&mac) {
                pair(true, &id)
            } else {
                pair(false, &format!("mac_not_found:{id}"))
            }
        }
    }
}
