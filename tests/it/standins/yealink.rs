//! Yealink RPS stand-in: the signed JSON API (`/api/open/v1/...`), every request verified
//! with hmac + sha2 + md-5, independently of the adapter's ring-based signer. Replay
//! protection as the API gateway documents it: a time stamp (milliseconds) more than 15
//! minutes off, or a nonce seen before, is refused.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::response::Response;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac as _};
use http::request::Parts;
use http::StatusCode;
use md5::Digest as _;
use serde_json::{json, Value};
use sha2::Sha256;
use zerotouch::domain::mac::Mac;

use super::{body_json, json, Shared};

/// How far a request's time stamp may be from the stand-in's clock.
const WINDOW: Duration = Duration::from_secs(15 * 60);

fn refusal(status: StatusCode, msg: &str) -> Response {
    json(
        status,
        json!({"ret": -1, "data": null, "error": {"msg": msg}}),
    )
}

fn ok(data: Value) -> Response {
    json(StatusCode::OK, json!({"ret": 0, "data": data}))
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks the request's signature, time stamp and nonce; `Err` is the vendor's message key.
fn verify(shared: &Shared, parts: &Parts, body: &Bytes) -> Result<(), &'static str> {
    let bad = |msg: &'static str| Err(msg);
    let (Some(key), Some(nonce), Some(ts), Some(signature)) = (
        header(parts, "x-ca-key"),
        header(parts, "x-ca-nonce"),
        header(parts, "x-ca-timestamp"),
        header(parts, "x-ca-signature"),
    ) else {
        return bad("signature.headers.missing");
    };
    if key != shared.key_id {
        return bad("accesskey.invalid");
    }
    let md5 = header(parts, "content-md5");
    if !body.is_empty() {
        let expected = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
        if md5 != Some(expected.as_str()) {
            return bad("content.md5.mismatch");
        }
    }
    let mut text = format!("{}\n", parts.method.as_str());
    if let Some(m) = md5 {
        text += &format!("Content-MD5:{m}\n");
    }
    text += &format!("X-Ca-Key:{key}\nX-Ca-Nonce:{nonce}\nX-Ca-Timestamp:{ts}\n");
    text += parts
        .uri
        .path()
        .strip_prefix('/')
        .unwrap_or(parts.uri.path());
    if let Some(q) = parts.uri.query() {
        let mut pairs: Vec<&str> = q.split('&').filter(|p| !p.is_empty()).collect();
        pairs.sort();
        text += "\n";
        text += &pairs.join("&");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(shared.secret.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if expected != signature {
        return bad("signature.invalid");
    }
    let Ok(ts_ms) = ts.parse::<u64>() else {
        return bad("timestamp.invalid");
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    if now.abs_diff(ts_ms) > WINDOW.as_millis() as u64 {
        return bad("timestamp.expired");
    }
    if !shared.fresh_nonce(nonce) {
        return bad("nonce.used");
    }
    Ok(())
}

fn mac_of(v: &Value) -> Option<Mac> {
    Mac::parse(v.as_str()?).ok()
}

fn device_json(b: &super::Books, mac: Mac) -> Value {
    let server = b.servers.first().map(|s| s.2.clone()).unwrap_or_default();
    json!({
        "id": b.ids.get(&mac).cloned().unwrap_or_default(),
        "mac": mac.to_lower_hex(),
        "serverUrl": server,
        "uniqueServerUrl": b.ours.get(&mac).cloned().unwrap_or_default(),
    })
}

pub(super) async fn handle(shared: &Arc<Shared>, parts: &Parts, body: Bytes) -> Response {
    if let Err(msg) = verify(shared, parts, &body) {
        shared.refuse();
        return refusal(StatusCode::UNAUTHORIZED, msg);
    }
    let path = parts
        .uri
        .path()
        .trim_start_matches("/api/open/v1/")
        .to_owned();
    let req = if body.is_empty() {
        Some(json!({}))
    } else {
        body_json(&body)
    };
    let Some(req) = req else {
        return refusal(StatusCode::BAD_REQUEST, "body.invalid");
    };
    // The MACs the call names, for the call log and the in-flight count.
    let macs: Vec<Mac> = {
        let b = shared.books();
        let mut macs: Vec<Mac> = req
            .get("macs")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(mac_of).collect())
            .unwrap_or_default();
        if let Some(m) = req.get("key").and_then(mac_of) {
            macs.push(m);
        }
        if let Some(q) = parts.uri.query() {
            macs.extend(
                q.split('&')
                    .filter_map(|p| p.strip_prefix("mac="))
                    .filter_map(|m| Mac::parse(m).ok()),
            );
        }
        let ids: Vec<String> = req
            .get("ids")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let id = req.get("id").and_then(Value::as_str).map(str::to_owned);
        for (mac, mid) in &b.ids {
            if ids.contains(mid) || id.as_ref() == Some(mid) {
                macs.push(*mac);
            }
        }
        macs
    };
    let _flight = shared.begin(&path, macs);
    shared.latency().await;

    let mut b = shared.books();
    match path.as_str() {
        "server/list" => {
            let key = req.get("key").and_then(Value::as_str).unwrap_or("");
            let data: Vec<Value> = b
                .servers
                .iter()
                .filter(|s| s.1.contains(key))
                .map(|s| json!({"id": s.0, "serverName": s.1, "url": s.2}))
                .collect();
            let total = data.len();
            ok(json!({"data": data, "total": total}))
        }
        "server/add" => {
            let (Some(name), Some(url)) = (
                req.get("serverName").and_then(Value::as_str),
                req.get("url").and_then(Value::as_str),
            ) else {
                return refusal(StatusCode::BAD_REQUEST, "param.invalid");
            };
            if b.servers.iter().any(|s| s.1 == name) {
                return refusal(StatusCode::OK, "server.name.existed");
            }
            let id = b.fresh_id("srv");
            b.servers
                .push((id.clone(), name.to_owned(), url.to_owned()));
            ok(json!({"id": id}))
        }
        "device/add" => {
            let Some(list) = req.get("macs").and_then(Value::as_array) else {
                return refusal(StatusCode::BAD_REQUEST, "param.invalid");
            };
            let Some(macs) = list.iter().map(mac_of).collect::<Option<Vec<Mac>>>() else {
                return refusal(StatusCode::OK, "mac.invalid");
            };
            let server = req.get("serverId").and_then(Value::as_str).unwrap_or("");
            let Some(server_url) = b
                .servers
                .iter()
                .find(|s| s.0 == server)
                .map(|s| s.2.clone())
            else {
                return refusal(StatusCode::OK, "server.not.found");
            };
            if macs
                .iter()
                .any(|m| b.ours.contains_key(m) || b.elsewhere.contains(m))
            {
                return refusal(StatusCode::OK, "device.mac.existed");
            }
            let url = req
                .get("uniqueServerUrl")
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())
                .map_or(server_url, str::to_owned);
            for m in macs {
                let id = b.fresh_id("dev");
                b.ids.insert(m, id);
                b.ours.insert(m, url.clone());
            }
            ok(Value::Null)
        }
        "device/edit" => {
            let id = req.get("id").and_then(Value::as_str).unwrap_or("");
            let Some(mac) = b.ids.iter().find(|(_, v)| *v == id).map(|(m, _)| *m) else {
                return refusal(StatusCode::OK, "device.not.found");
            };
            let url = req
                .get("uniqueServerUrl")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            b.ours.insert(mac, url);
            ok(Value::Null)
        }
        "device/list" => {
            let key = req
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            let skip = req.get("skip").and_then(Value::as_u64).unwrap_or(0) as usize;
            let limit = req.get("limit").and_then(Value::as_u64).unwrap_or(10) as usize;
            let all: Vec<Value> = b
                .ours
                .keys()
                .filter(|m| m.to_lower_hex().contains(&key))
                .map(|m| device_json(&b, *m))
                .collect();
            let total = all.len();
            let page: Vec<Value> = all.into_iter().skip(skip).take(limit).collect();
            ok(json!({"data": page, "total": total, "skip": skip, "limit": limit}))
        }
        "device/delete" => {
            let ids: Vec<String> = req
                .get("ids")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let doomed: Vec<Mac> = b
                .ids
                .iter()
                .filter(|(_, id)| ids.contains(id))
                .map(|(m, _)| *m)
                .collect();
            if doomed.is_empty() {
                return refusal(StatusCode::OK, "device.not.found");
            }
            for m in doomed {
                b.ids.remove(&m);
                b.ours.remove(&m);
            }
            ok(Value::Null)
        }
        "device/checkMac" => {
            let mac = parts
                .uri
                .query()
                .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("mac=")))
                .and_then(|m| Mac::parse(m).ok());
            let Some(mac) = mac else {
                return refusal(StatusCode::OK, "mac.invalid");
            };
            ok(json!({"existed": b.ours.contains_key(&mac) || b.elsewhere.contains(&mac)}))
        }
        _ => refusal(StatusCode::NOT_FOUND, "api.not.found"),
    }
}
