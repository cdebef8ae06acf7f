//! The metrics listener: `/metrics` for Prometheus, `/healthz` (alive), `/readyz` (serving
//! phones) and `/readyz/api` (serving the partner API, which needs the database).
//!
//! Plain HTTP on an internal address, started first so liveness answers while the rest starts.
//! Never reachable on the phones' or partners' listeners.
//!
//! A database outage does not make `/readyz` fail: phones are answered from the in-memory
//! registry, and since every node shares the database, failing readiness would take every node
//! out of the phones' load balancer at once. Its body says `database: down`; `/readyz/api`
//! answers 503 then, for a load balancer in front of the partner API.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::metrics::Metrics;

/// Whether this node serves phones, and whether its database answers.
#[derive(Debug, Default)]
pub struct Readiness {
    state: AtomicU8,
    database: AtomicU8,
}

const READY: u8 = 1;
const DRAINING: u8 = 2;

const DATABASE_UNKNOWN: u8 = 0;
const DATABASE_UP: u8 = 1;
const DATABASE_DOWN: u8 = 2;

impl Readiness {
    /// Records whether the database answers.
    pub fn set_database_up(&self, up: bool) {
        let v = if up { DATABASE_UP } else { DATABASE_DOWN };
        self.database.store(v, Ordering::Release);
    }

    /// `Some(up)` once the database's state is known.
    pub fn database_up(&self) -> Option<bool> {
        match self.database.load(Ordering::Acquire) {
            DATABASE_UP => Some(true),
            DATABASE_DOWN => Some(false),
            _ => None,
        }
    }

    fn database_line(&self) -> &'static str {
        match self.database.load(Ordering::Acquire) {
            DATABASE_UP => "database: up\n",
            DATABASE_DOWN => {
                "database: down (phones are served from memory; partner API answers 503)\n"
            }
            DATABASE_UNKNOWN => "database: unknown\n",
            _ => "",
        }
    }

    /// Marks the node ready (every listener bound, registry loaded).
    pub fn set_ready(&self) {
        self.state.store(READY, Ordering::Release);
    }

    /// Marks the node draining: load balancers should stop sending traffic.
    pub fn set_draining(&self) {
        self.state.store(DRAINING, Ordering::Release);
    }

    /// `None` when ready, else why not.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        match self.state.load(Ordering::Acquire) {
            READY => None,
            DRAINING => Some("draining"),
            _starting => Some("starting"),
        }
    }
}

/// The admin service.
#[derive(Clone)]
pub struct AdminService {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

impl AdminService {
    /// The service.
    pub fn new(metrics: Arc<Metrics>, readiness: Arc<Readiness>) -> Self {
        Self { metrics, readiness }
    }
}

fn text(
    status: StatusCode,
    body: impl Into<Bytes>,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

impl<B> hyper::service::Service<Request<B>> for AdminService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn call(&self, req: Request<B>) -> Self::Future {
        const PLAIN: &str = "text/plain; charset=utf-8";
        let response = if req.method() != Method::GET && req.method() != Method::HEAD {
            text(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed\n",
                PLAIN,
            )
        } else {
            match req.uri().path() {
                "/metrics" => text(
                    StatusCode::OK,
                    self.metrics.encode(),
                    "text/plain; version=0.0.4; charset=utf-8",
                ),
                "/healthz" => text(StatusCode::OK, "ok\n", PLAIN),
                "/readyz" => {
                    let database = self.readiness.database_line();
                    match self.readiness.not_ready_reason() {
                        // Phones are served whatever the database's state (see the module doc).
                        None => text(StatusCode::OK, format!("ready\n{database}"), PLAIN),
                        Some(why) => text(
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {why}\n{database}"),
                            PLAIN,
                        ),
                    }
                }
                "/readyz/api" => {
                    let database = self.readiness.database_line();
                    match (
                        self.readiness.not_ready_reason(),
                        self.readiness.database_up(),
                    ) {
                        (None, Some(true)) => {
                            text(StatusCode::OK, format!("ready\n{database}"), PLAIN)
                        }
                        (Some(why), _) => text(
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {why}\n{database}"),
                            PLAIN,
                        ),
                        (None, _) => text(
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: the database is unreachable\n{database}"),
                            PLAIN,
                        ),
                    }
                }
                _ => text(StatusCode::NOT_FOUND, "not found\n", PLAIN),
            }
        };
        ready(Ok(response))
    }
}
