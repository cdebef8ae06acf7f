//! The phones' HTTP surface: turns a hyper request into a [`Fetch`] and an [`Answer`] into a
//! response. Every response carries `Cache-Control: no-store`: configs hold credentials and
//! change when a partner changes a tenant. The partner API and metrics are not reachable here.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

use super::{Fetch, Provisioner};
use crate::server::ConnInfo;

/// The response body type of the phones listener.
pub type Body = Full<Bytes>;

/// A hyper service answering phones on one connection.
#[derive(Clone)]
pub struct PhoneService {
    provisioner: Arc<Provisioner>,
    conn: ConnInfo,
}

impl PhoneService {
    /// The service for one connection.
    pub fn new(provisioner: Arc<Provisioner>, conn: ConnInfo) -> Self {
        Self { provisioner, conn }
    }
}

impl<B> hyper::service::Service<Request<B>> for PhoneService {
    type Response = Response<Body>;
    type Error = Infallible;
    // The answer is computed synchronously: no state machine, no allocation for the future.
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn call(&self, req: Request<B>) -> Self::Future {
        ready(Ok(answer(&self.provisioner, &self.conn, &req)))
    }
}

fn answer<B>(provisioner: &Provisioner, conn: &ConnInfo, req: &Request<B>) -> Response<Body> {
    let headers = req.headers();
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let method = req.method();
    let fetch = Fetch {
        readable_method: method == Method::GET || method == Method::HEAD,
        path_and_query: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        user_agent: text(USER_AGENT),
        host: text(HOST).or_else(|| req.uri().authority().map(|a| a.as_str())),
        source: conn.remote.ip(),
        local: conn.local,
        tls: conn.tls,
    };
    let answer = provisioner.handle(&fetch);
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        answer.body
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        StatusCode::from_u16(answer.outcome.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if answer.outcome == super::Outcome::MethodNotAllowed {
        h.insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}
