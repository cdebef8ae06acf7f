//! The metrics listener: `/metrics` for Prometheus, `/healthz` (alive) and `/readyz` (serving).
//!
//! Plain HTTP on an internal address, started first so liveness answers while the rest starts.
//! Never reachable on the phones' or partners' listeners.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::metrics::Metrics;

/// Whether this node serves phones.
#[derive(Debug, Default)]
pub struct Readiness(AtomicU8);

const READY: u8 = 1;
const DRAINING: u8 = 2;

impl Readiness {
    /// Marks the node ready (every listener bound, registry loaded).
    pub fn set_ready(&self) {
        self.0.store(READY, Ordering::Release);
    }

    /// Marks the node draining: load balancers should stop sending traffic.
    pub fn set_draining(&self) {
        self.0.store(DRAINING, Ordering::Release);
    }

    /// `None` when ready, else why not.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        match self.0.load(Ordering::Acquire) {
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
                "/readyz" => match self.readiness.not_ready_reason() {
                    None => text(StatusCode::OK, "ready\n", PLAIN),
                    Some(why) => text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {why}\n"),
                        PLAIN,
                    ),
                },
                _ => text(StatusCode::NOT_FOUND, "not found\n", PLAIN),
            }
        };
        ready(Ok(response))
    }
}
