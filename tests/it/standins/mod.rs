//! Stand-ins for the vendors' redirect services: small in-process HTTP servers on
//! 127.0.0.1:0 that speak each vendor's wire protocol as the vendor documents it (not as our
//! adapters do), verify each request's credentials with an implementation of their own
//! (hmac/sha2/md-5 for Yealink, the `hawk` crate for Snom, Basic for Gigaset), refuse stale
//! time stamps and reused nonces, and keep state a test can inspect. Faults can be switched
//! on: latency, a hang, 5xx, a malformed body, rate limiting, and down (connections dropped).

#![allow(dead_code)]

mod gigaset;
mod snom;
mod yealink;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use zerotouch::domain::mac::Mac;
use zerotouch::domain::vendor::Vendor;

/// What a stand-in does instead of answering normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answers normally.
    None,
    /// Answers normally after this delay (while the request counts as in flight).
    Latency(Duration),
    /// Never answers.
    Hang,
    /// 503 Service Unavailable.
    ServerError,
    /// 200 with a body that is neither JSON nor XML.
    Malformed,
    /// 429 Too Many Requests with `Retry-After: 7`.
    RateLimited,
    /// Drops every connection unanswered.
    Down,
}

/// One authenticated request as the stand-in understood it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The vendor's operation (`device/add`, `PUT endpoint`, `autoprov.registerDevice`, …).
    pub op: String,
    /// The MACs it named.
    pub macs: Vec<Mac>,
}

/// The `Retry-After` a rate-limited stand-in sends.
pub const RETRY_AFTER_SECS: u64 = 7;

/// The state every stand-in keeps.
#[derive(Default)]
pub(crate) struct Books {
    /// Our account's devices: MAC → URL the vendor holds.
    pub ours: BTreeMap<Mac, String>,
    /// Devices of another provider's account.
    pub elsewhere: BTreeSet<Mac>,
    pub calls: Vec<Call>,
    pub in_flight: HashMap<Mac, usize>,
    pub concurrent_max: usize,
    pub nonces: HashSet<String>,
    /// Requests refused by the credential check.
    pub refusals: usize,
    /// Yealink: RPS ids of our devices, and our server entries (id, name, url).
    pub ids: BTreeMap<Mac, String>,
    pub servers: Vec<(String, String, String)>,
    /// Snom: company, profiles (uuid, name, setting_server), endpoint → profile.
    pub profiles: Vec<(String, String, String)>,
    pub endpoint_profile: BTreeMap<Mac, String>,
    /// Gigaset: the label code each known device has.
    pub codes: BTreeMap<Mac, String>,
    pub next_id: u64,
}

impl Books {
    pub fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:08x}", self.next_id)
    }
}

pub(crate) struct Shared {
    pub vendor: Vendor,
    pub key_id: String,
    pub secret: String,
    pub company: String,
    pub books: Mutex<Books>,
    pub fault: Mutex<Fault>,
}

impl Shared {
    pub fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap()
    }

    /// Records an authenticated call and counts its MACs as in flight until the guard drops.
    pub fn begin(self: &Arc<Self>, op: &str, macs: Vec<Mac>) -> InFlight {
        let mut b = self.books();
        b.calls.push(Call {
            op: op.to_owned(),
            macs: macs.clone(),
        });
        for m in &macs {
            let n = b.in_flight.entry(*m).or_default();
            *n += 1;
            let n = *n;
            b.concurrent_max = b.concurrent_max.max(n);
        }
        InFlight {
            shared: self.clone(),
            macs,
        }
    }

    /// Remembers a nonce; false when it was seen before (a replay).
    pub fn fresh_nonce(&self, nonce: &str) -> bool {
        self.books().nonces.insert(nonce.to_owned())
    }

    pub fn refuse(&self) {
        self.books().refusals += 1;
    }

    /// Waits out the latency fault, if any.
    pub async fn latency(&self) {
        let fault = *self.fault.lock().unwrap();
        if let Fault::Latency(d) = fault {
            tokio::time::sleep(d).await;
        }
    }
}

pub(crate) struct InFlight {
    shared: Arc<Shared>,
    macs: Vec<Mac>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut b = self.shared.books();
        for m in &self.macs {
            if let Some(n) = b.in_flight.get_mut(m) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

/// A running stand-in.
pub struct StandIn {
    /// The vendor it stands in for.
    pub vendor: Vendor,
    /// The base URL to give the adapter (Yealink: API base; Snom: API root with `/api/v1`;
    /// Gigaset: the XML-RPC endpoint).
    pub url: String,
    /// Our account's key id / Hawk id / user name.
    pub key_id: String,
    /// Our account's secret / Hawk key / password.
    pub secret: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    /// Starts a stand-in for `vendor` on 127.0.0.1:0.
    pub async fn start(vendor: Vendor) -> StandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (key_id, secret) = match vendor {
            Vendor::Yealink => ("yk-key-0042", "yk-secret-5e6f7a8b9c"),
            Vendor::Snom => ("ck_standin0042", "hawk-key-9fed0906a599"),
            Vendor::Gigaset => ("provider0042", "gs-password-4c49927"),
        };
        let shared = Arc::new(Shared {
            vendor,
            key_id: key_id.to_owned(),
            secret: secret.to_owned(),
            company: "c0ffee00c0ffee00c0ffee00c0ffee00".to_owned(),
            books: Mutex::new(Books::default()),
            fault: Mutex::new(Fault::None),
        });
        let router = axum::Router::new()
            .fallback(dispatch)
            .with_state(shared.clone());
        let accept_shared = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                if *accept_shared.fault.lock().unwrap() == Fault::Down {
                    drop(stream);
                    continue;
                }
                let service = TowerToHyperService::new(router.clone());
                tokio::spawn(async move {
                    // No keep-alive: each request is its own connection, so "down" takes
                    // effect at once even for a client that pools connections.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let base = format!("http://{addr}");
        let url = match vendor {
            Vendor::Yealink => base,
            Vendor::Snom => format!("{base}/api/v1"),
            Vendor::Gigaset => format!("{base}/apxml/rpc.do"),
        };
        StandIn {
            vendor,
            url,
            key_id: key_id.to_owned(),
            secret: secret.to_owned(),
            shared,
            task,
        }
    }

    /// Our account's devices: MAC → the URL the vendor would send the phone to.
    pub fn registered(&self) -> BTreeMap<Mac, String> {
        self.shared.books().ours.clone()
    }

    /// Removes `mac` from our account, as someone using the vendor's own portal would.
    pub fn forget(&self, mac: Mac) {
        self.shared.books().ours.remove(&mac);
    }

    /// Marks `mac` as registered by another provider's account.
    pub fn seed_elsewhere(&self, mac: Mac) {
        self.shared.books().elsewhere.insert(mac);
    }

    /// Gigaset: the label code the vendor knows for `mac` (its factory data).
    pub fn seed_label(&self, mac: Mac, code: &str) {
        self.shared
            .books()
            .codes
            .insert(mac, code.to_ascii_uppercase());
    }

    /// Switches a fault on (or off with [`Fault::None`]).
    pub fn set_fault(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
    }

    /// Every authenticated request, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.books().calls.clone()
    }

    /// The most requests ever in flight at once for one MAC.
    pub fn concurrent_max(&self) -> usize {
        self.shared.books().concurrent_max
    }

    /// How many requests the credential check refused (bad signature, stale, replayed).
    pub fn refusals(&self) -> usize {
        self.shared.books().refusals
    }

    /// Sets the knobs that point a zerotouch server at this stand-in.
    pub fn configure(&self, k: &mut zerotouch::config::Knobs) {
        for (knob, value) in self.knobs() {
            let v = Some(value);
            match knob {
                "redirect_yealink_url" => k.redirect_yealink_url = v,
                "redirect_yealink_key_id" => k.redirect_yealink_key_id = v,
                "redirect_yealink_secret" => k.redirect_yealink_secret = v,
                "redirect_snom_url" => k.redirect_snom_url = v,
                "redirect_snom_hawk_id" => k.redirect_snom_hawk_id = v,
                "redirect_snom_hawk_key" => k.redirect_snom_hawk_key = v,
                "redirect_gigaset_url" => k.redirect_gigaset_url = v,
                "redirect_gigaset_user" => k.redirect_gigaset_user = v,
                "redirect_gigaset_password" => k.redirect_gigaset_password = v,
                other => unreachable!("knobs() names only redirect knobs, not {other}"),
            }
        }
    }

    /// The config knobs a zerotouch server needs to use this stand-in.
    pub fn knobs(&self) -> Vec<(&'static str, String)> {
        match self.vendor {
            Vendor::Yealink => vec![
                ("redirect_yealink_url", self.url.clone()),
                ("redirect_yealink_key_id", self.key_id.clone()),
                ("redirect_yealink_secret", self.secret.clone()),
            ],
            Vendor::Snom => vec![
                ("redirect_snom_url", self.url.clone()),
                ("redirect_snom_hawk_id", self.key_id.clone()),
                ("redirect_snom_hawk_key", self.secret.clone()),
            ],
            Vendor::Gigaset => vec![
                ("redirect_gigaset_url", self.url.clone()),
                ("redirect_gigaset_user", self.key_id.clone()),
                ("redirect_gigaset_password", self.secret.clone()),
            ],
        }
    }
}

/// Every request: faults first, then the vendor's protocol.
async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let fault = *shared.fault.lock().unwrap();
    match fault {
        Fault::Hang => std::future::pending::<()>().await,
        Fault::ServerError => {
            return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response()
        }
        Fault::RateLimited => {
            return Response::builder()
                .status(StatusCode::TOO_MANY_REQUESTS)
                .header("Retry-After", RETRY_AFTER_SECS.to_string())
                .body(Body::from("slow down"))
                .unwrap();
        }
        Fault::Malformed => return (StatusCode::OK, "<<%% this is not a document").into_response(),
        Fault::None | Fault::Latency(_) | Fault::Down => {}
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match shared.vendor {
        Vendor::Yealink => yealink::handle(&shared, &parts, body).await,
        Vendor::Snom => snom::handle(&shared, &parts, body).await,
        Vendor::Gigaset => gigaset::handle(&shared, &parts, body).await,
    }
}

/// JSON answer helper.
pub(crate) fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

pub(crate) fn body_json(body: &Bytes) -> Option<serde_json::Value> {
    serde_json::from_slice(body).ok()
}
