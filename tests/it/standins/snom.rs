//! Snom SRAPS stand-in: the REST API under `/api/v1` (companies, provisioning profiles,
//! endpoints), every request verified with the `hawk` crate (header MAC over the full URL,
//! payload hash required for bodies, 60 s time stamp window, nonces never reused),
//! independently of the adapter's ring-based signer.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use hawk::{DigestAlgorithm, Header, Key, PayloadHasher, RequestBuilder};
use http::request::Parts;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use zerotouch::domain::mac::Mac;

use super::{body_json, json, Shared};

/// Hawk's default allowed clock skew.
const SKEW: Duration = Duration::from_secs(60);

fn unauthorized(shared: &Shared, why: &str) -> Response {
    shared.refuse();
    (
        StatusCode::UNAUTHORIZED,
        [("WWW-Authenticate", format!("Hawk error=\"{why}\""))],
        json!({"detail": why}).to_string(),
    )
        .into_response()
}

/// Checks the request's Hawk header and nonce; `Err` is Hawk's error text.
fn verify(shared: &Shared, parts: &Parts, body: &Bytes) -> Result<(), &'static str> {
    let Some(auth) = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    else {
        return Err("Missing authentication");
    };
    let Some(fields) = auth.strip_prefix("Hawk ") else {
        return Err("Not Hawk");
    };
    let Ok(header) = Header::from_str(fields) else {
        return Err("Bad header");
    };
    if header.id.as_deref() != Some(shared.key_id.as_str()) {
        return Err("Unknown credentials");
    }
    let host_header = parts
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (host, port) = match host_header.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().unwrap_or(80)),
        None => (host_header, 80),
    };
    let resource = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let hash = if body.is_empty() {
        None
    } else {
        if header.hash.is_none() {
            return Err("Missing required payload hash");
        }
        let content_type = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        Some(PayloadHasher::hash(content_type, DigestAlgorithm::Sha256, body).unwrap())
    };
    let key = Key::new(shared.secret.as_bytes(), DigestAlgorithm::Sha256).unwrap();
    let request = RequestBuilder::new(parts.method.as_str(), host, port, resource)
        .hash(hash.as_deref())
        .request();
    if !request.validate_header(&header, &key, SKEW) {
        return Err("Bad mac or stale timestamp");
    }
    let nonce = header.nonce.clone().unwrap_or_default();
    if !shared.fresh_nonce(&nonce) {
        return Err("Invalid nonce");
    }
    Ok(())
}

fn page(items: Vec<Value>) -> Response {
    json(
        StatusCode::OK,
        json!({"count": items.len(), "next": null, "previous": null, "results": items}),
    )
}

fn query_param<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .uri
        .query()?
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

pub(super) async fn handle(shared: &Arc<Shared>, parts: &Parts, body: Bytes) -> Response {
    if let Err(why) = verify(shared, parts, &body) {
        return unauthorized(shared, why);
    }
    let path = parts.uri.path().trim_start_matches("/api/v1").to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mac = match segments.as_slice() {
        ["companies", _, "endpoints", m] => Mac::parse(m).ok(),
        _ => None,
    };
    let op = format!(
        "{} {}",
        parts.method,
        segments
            .get(2)
            .copied()
            .unwrap_or(segments.first().copied().unwrap_or(""))
    );
    let _flight = shared.begin(&op, mac.into_iter().collect());
    shared.latency().await;

    let req = body_json(&body).unwrap_or(Value::Null);
    let mut b = shared.books();
    match (parts.method.clone(), segments.as_slice()) {
        (Method::GET, ["companies"]) => page(vec![
            json!({"uuid": shared.company, "name": "Stand-in Ltd"}),
        ]),
        (_, ["companies", c, ..]) if *c != shared.company => json(
            StatusCode::FORBIDDEN,
            json!({"detail": "You do not have permission to perform this action."}),
        ),
        (Method::GET, ["companies", _, "provisioning-profiles"]) => page(
            b.profiles
                .iter()
                .map(|p| json!({"uuid": p.0, "name": p.1}))
                .collect(),
        ),
        (Method::POST, ["companies", _, "provisioning-profiles"]) => {
            let Some(name) = req.get("name").and_then(Value::as_str) else {
                return json(
                    StatusCode::BAD_REQUEST,
                    json!({"name": ["This field is required."]}),
                );
            };
            let server = req
                .pointer("/settings_manager/setting_server/value")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let uuid = b.fresh_id("prof");
            b.profiles.push((uuid.clone(), name.to_owned(), server));
            json(StatusCode::CREATED, json!({"uuid": uuid, "name": name}))
        }
        (Method::PUT, ["companies", _, "endpoints", _]) => {
            let Some(mac) = mac else {
                return json(StatusCode::BAD_REQUEST, json!({"detail": "Invalid MAC."}));
            };
            if b.elsewhere.contains(&mac) {
                return json(
                    StatusCode::CONFLICT,
                    json!({"detail": "This endpoint is owned by another company."}),
                );
            }
            let profile = req
                .get("provisioning_profile")
                .and_then(Value::as_str)
                .unwrap_or("");
            let Some(url) = b
                .profiles
                .iter()
                .find(|p| p.0 == profile)
                .map(|p| p.2.clone())
            else {
                return json(
                    StatusCode::BAD_REQUEST,
                    json!({"detail": "Unknown provisioning profile."}),
                );
            };
            b.ours.insert(mac, url);
            b.endpoint_profile.insert(mac, profile.to_owned());
            json(
                StatusCode::OK,
                json!({"mac": mac.to_lower_hex(), "provisioning_profile": profile, "autoprovisioning_enabled": true}),
            )
        }
        (Method::GET, ["companies", _, "endpoints", _]) => match mac {
            Some(m) if b.ours.contains_key(&m) => json(
                StatusCode::OK,
                json!({"mac": m.to_lower_hex(), "provisioning_profile": b.endpoint_profile.get(&m)}),
            ),
            _ => json(StatusCode::NOT_FOUND, json!({"detail": "Not found."})),
        },
        (Method::DELETE, ["companies", _, "endpoints", _]) => match mac {
            Some(m) if b.ours.remove(&m).is_some() => {
                b.endpoint_profile.remove(&m);
                StatusCode::NO_CONTENT.into_response()
            }
            _ => json(StatusCode::NOT_FOUND, json!({"detail": "Not found."})),
        },
        (Method::GET, ["companies", c, "endpoints"]) => {
            let size: usize = query_param(parts, "page_size")
                .and_then(|s| s.parse().ok())
                .unwrap_or(50);
            let number: usize = query_param(parts, "page")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1);
            let all: Vec<Value> = b
                .ours
                .keys()
                .map(|m| json!({"mac": m.to_lower_hex(), "provisioning_profile": b.endpoint_profile.get(m)}))
                .collect();
            let count = all.len();
            let items: Vec<Value> = all
                .into_iter()
                .skip((number - 1) * size)
                .take(size)
                .collect();
            let host = parts
                .headers
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let next = (number * size < count).then(|| {
                format!(
                    "http://{host}/api/v1/companies/{c}/endpoints/?page={}&page_size={size}",
                    number + 1
                )
            });
            json(
                StatusCode::OK,
                json!({"count": count, "next": next, "results": items}),
            )
        }
        _ => json(StatusCode::NOT_FOUND, json!({"detail": "Not found."})),
    }
}
