//! The phones' HTTP surface: turns a hyper request into a [`Fetch`] and an [`Answer`] into a
//! response. Every response carries `Cache-Control: no-store`: configs hold credentials and
//! change when a partner changes a tenant. The partner API and metrics are not reachable here.
//!
//! A connection whose answers serve nothing several times in a row (optional files, refusals,
//! challenges) is closed after the last of them: a phone's boot sequence asks for at most a
//! few such files before its config, so only a client holding the connection open for its
//! own sake keeps asking.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{
    ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HOST, RETRY_AFTER, USER_AGENT,
    WWW_AUTHENTICATE,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

use super::{Answer, Fetch, Handled, Outcome, Provisioner};
use crate::server::{CloseConnection, ConnInfo, Refusal};

/// The response body type of the phones listener.
pub type Body = Full<Bytes>;

/// A hyper service answering phones on one connection.
#[derive(Clone)]
pub struct PhoneService {
    provisioner: Arc<Provisioner>,
    conn: ConnInfo,
    unserved: Unserved,
}

impl PhoneService {
    /// The service for one connection, closed after `max_unserved` answers in a row that
    /// serve nothing.
    pub fn new(provisioner: Arc<Provisioner>, conn: ConnInfo, max_unserved: u32) -> Self {
        Self {
            provisioner,
            conn,
            unserved: Unserved {
                limit: max_unserved,
                streak: Cell::new(0),
            },
        }
    }
}

/// Answers in a row on one connection that served nothing. A `Cell`: a connection's requests
/// are answered one after another, by one task.
#[derive(Clone)]
struct Unserved {
    limit: u32,
    streak: Cell<u32>,
}

impl Unserved {
    /// Counts an answer; whether it is to be the connection's last.
    fn after(&self, outcome: Outcome) -> bool {
        if matches!(outcome, Outcome::Served | Outcome::Enrolled) {
            self.streak.set(0);
            return false;
        }
        let streak = self.streak.get().saturating_add(1);
        self.streak.set(streak);
        streak >= self.limit
    }
}

/// The future of one phone request: ready at once on the hot path; a store write only when
/// the answer hands out credentials.
pub enum PhoneFuture {
    /// Answered synchronously.
    Ready(Option<Response<Body>>),
    /// Waiting for issued credentials to be committed.
    Issuing(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

impl Future for PhoneFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            // Taken once; a second poll (a hyper contract violation) gets an empty answer.
            PhoneFuture::Ready(response) => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| Response::new(Full::new(Bytes::new()))))),
            PhoneFuture::Issuing(f) => f.as_mut().poll(cx).map(Ok),
        }
    }
}

impl<B> hyper::service::Service<Request<B>> for PhoneService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = PhoneFuture;

    fn call(&self, req: Request<B>) -> Self::Future {
        let headers = req.headers();
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let head = req.method() == Method::HEAD;
        let fetch = Fetch {
            method: req.method().as_str(),
            path_and_query: req.uri().path_and_query().map_or("/", |p| p.as_str()),
            user_agent: text(USER_AGENT),
            host: text(HOST).or_else(|| req.uri().authority().map(|a| a.as_str())),
            authorization: text(AUTHORIZATION),
            source: self.conn.remote.ip(),
            local: self.conn.local,
            tls: self.conn.tls,
        };
        match self.provisioner.handle(&fetch) {
            Handled::Done(answer) => {
                let last = self.unserved.after(answer.outcome);
                let mut response = respond(answer, head);
                if last {
                    response
                        .extensions_mut()
                        .insert(CloseConnection(Refusal::NothingServed));
                }
                PhoneFuture::Ready(Some(response))
            }
            Handled::Issue(ticket) => {
                // Credentials for the phone's own file: it is served (or told to come back).
                self.unserved.after(Outcome::Enrolled);
                let provisioner = self.provisioner.clone();
                PhoneFuture::Issuing(Box::pin(async move {
                    respond(provisioner.issue(*ticket).await, head)
                }))
            }
        }
    }
}

fn respond(answer: Answer, head: bool) -> Response<Body> {
    let body = if head { Bytes::new() } else { answer.body };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        StatusCode::from_u16(answer.outcome.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if answer.outcome == Outcome::MethodNotAllowed {
        h.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    if let Some(challenges) = answer.challenge {
        for c in challenges {
            h.append(WWW_AUTHENTICATE, c);
        }
    }
    if let Some(seconds) = answer.retry_after {
        h.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_closes_after_the_limit_of_answers_in_a_row_that_serve_nothing() {
        let u = Unserved {
            limit: 3,
            streak: Cell::new(0),
        };
        assert!(!u.after(Outcome::OptionalAbsent));
        assert!(!u.after(Outcome::Challenged));
        assert!(!u.after(Outcome::Served), "a served answer starts over");
        assert!(!u.after(Outcome::OptionalAbsent));
        assert!(!u.after(Outcome::UnknownDevice));
        assert!(u.after(Outcome::Throttled));
    }
}
