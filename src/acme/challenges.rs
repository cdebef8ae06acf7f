//! The HTTP-01 responder: what the plain listener answers at
//! `/.well-known/acme-challenge/{token}` while an order is in progress, and the service that
//! puts it in front of the phones' service.
//!
//! The node that orders keeps its answers in memory and in the store, so whichever node the
//! CA's request reaches (behind a balancer, on a shared name) can answer: an answer not in this
//! node's memory is looked up in the store, a few lookups at a time. Must not know how an
//! order is placed, or anything of phones: every other request goes to the inner service
//! untouched.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use tokio::sync::Semaphore;

use super::stored::HTTP01_PREFIX;
use super::Error;
use crate::store::Store;

/// Where the CA asks for an HTTP-01 answer (RFC 8555, section 8.3).
const PATH_PREFIX: &str = "/.well-known/acme-challenge/";

/// Store lookups for answers not in memory at once, at most: the path is open to anyone, so
/// it must not turn into a way to load the database.
const MAX_LOOKUPS: usize = 4;

/// The HTTP-01 answers this node knows, and the store to ask for other nodes'.
pub struct Challenges {
    answers: Mutex<HashMap<String, String>>,
    store: Arc<dyn Store>,
    lookups: Semaphore,
}

impl Challenges {
    /// No answers yet.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            answers: Mutex::new(HashMap::new()),
            store,
            lookups: Semaphore::new(MAX_LOOKUPS),
        }
    }

    /// Publishes the answer to `token` on every node: in memory, then in the store.
    pub(super) async fn publish(&self, token: &str, key_authorization: &str) -> Result<(), Error> {
        self.memory()
            .insert(token.to_owned(), key_authorization.to_owned());
        let name = format!("{HTTP01_PREFIX}{token}");
        let current = self.store.stored_secret(&name).await?;
        self.store
            .swap_secret(
                &name,
                current.as_deref(),
                Some(key_authorization.as_bytes()),
            )
            .await?;
        Ok(())
    }

    /// Withdraws the answer to `token`, in memory and in the store (best effort: a left-over
    /// row only answers a token the CA no longer asks for).
    pub(super) async fn withdraw(&self, token: &str) {
        self.memory().remove(token);
        let name = format!("{HTTP01_PREFIX}{token}");
        if let Ok(Some(current)) = self.store.stored_secret(&name).await {
            let _ = self.store.swap_secret(&name, Some(&current), None).await;
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // The map is only ever inserted into or removed from whole: a poisoned lock holds a
        // consistent map.
        self.answers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer to `token`, if any node published one.
    async fn answer(&self, token: &str) -> Answer {
        // Tokens are base64url (RFC 8555, section 8.1): anything else is not a token.
        if token.is_empty()
            || token.len() > 256
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Answer::Unknown;
        }
        if let Some(answer) = self.memory().get(token) {
            return Answer::Known(answer.clone());
        }
        let Ok(_permit) = self.lookups.try_acquire() else {
            return Answer::Busy;
        };
        match self
            .store
            .stored_secret(&format!("{HTTP01_PREFIX}{token}"))
            .await
        {
            Ok(Some(bytes)) => String::from_utf8(bytes).map_or(Answer::Unknown, Answer::Known),
            Ok(None) => Answer::Unknown,
            Err(_) => Answer::Busy,
        }
    }
}

enum Answer {
    Known(String),
    Unknown,
    Busy,
}

/// `inner`, with HTTP-01 answers in front of it.
#[derive(Clone)]
pub struct Http01<S> {
    challenges: Arc<Challenges>,
    inner: S,
}

impl<S> Http01<S> {
    /// Answers HTTP-01 requests from `challenges`, everything else with `inner`.
    pub fn new(challenges: Arc<Challenges>, inner: S) -> Self {
        Self { challenges, inner }
    }
}

/// The future of one request: the inner service's, or an HTTP-01 answer.
pub enum Http01Future<F> {
    /// Anything but an HTTP-01 request.
    Inner(F),
    /// An HTTP-01 answer (may read the store).
    Answer(Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>),
}

impl<F> Future for Http01Future<F>
where
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Unpin,
{
    type Output = Result<Response<Full<Bytes>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Http01Future::Inner(f) => Pin::new(f).poll(cx),
            Http01Future::Answer(f) => f.as_mut().poll(cx).map(Ok),
        }
    }
}

impl<S, B> hyper::service::Service<Request<B>> for Http01<S>
where
    S: hyper::service::Service<Request<B>, Response = Response<Full<Bytes>>, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Http01Future<S::Future>;

    fn call(&self, req: Request<B>) -> Self::Future {
        let Some(token) = req.uri().path().strip_prefix(PATH_PREFIX) else {
            return Http01Future::Inner(self.inner.call(req));
        };
        let token = token.to_owned();
        let challenges = self.challenges.clone();
        Http01Future::Answer(Box::pin(async move {
            let (status, body) = match challenges.answer(&token).await {
                Answer::Known(answer) => (StatusCode::OK, answer),
                Answer::Unknown => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
                Answer::Busy => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "try again later\n".to_owned(),
                ),
            };
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/octet-stream"),
            );
            response
        }))
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use hyper::service::Service;

    use super::*;
    use crate::store::sqlite::SqliteStore;

    /// An inner service that answers everything 204.
    #[derive(Clone)]
    struct Inner;

    impl Service<Request<()>> for Inner {
        type Response = Response<Full<Bytes>>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;
        fn call(&self, _: Request<()>) -> Self::Future {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NO_CONTENT;
            std::future::ready(Ok(response))
        }
    }

    async fn get(service: &Http01<Inner>, path: &str) -> (StatusCode, String) {
        let request = Request::builder().uri(path).body(()).unwrap();
        let response = service.call(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn an_answer_published_by_one_node_is_given_by_another() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open_migrated(&dir.path().join("z.db"))
                .unwrap()
                .0,
        );
        let ordering = Arc::new(Challenges::new(store.clone()));
        let other = Http01::new(Arc::new(Challenges::new(store.clone())), Inner);
        let path = "/.well-known/acme-challenge/tok-EN_1";
        assert_eq!(get(&other, path).await.0, StatusCode::NOT_FOUND);

        ordering
            .publish("tok-EN_1", "tok-EN_1.thumb")
            .await
            .unwrap();
        assert_eq!(
            get(&other, path).await,
            (StatusCode::OK, "tok-EN_1.thumb".to_owned())
        );
        let own = Http01::new(ordering.clone(), Inner);
        assert_eq!(get(&own, path).await.0, StatusCode::OK);

        ordering.withdraw("tok-EN_1").await;
        assert_eq!(get(&other, path).await.0, StatusCode::NOT_FOUND);
        assert_eq!(
            get(&other, "/.well-known/acme-challenge/../x").await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get(&other, "/y000000000000.cfg").await.0,
            StatusCode::NO_CONTENT
        );
    }
}
