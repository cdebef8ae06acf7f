//! Serving HTTP/1.1 over TCP or TLS: accept, handshake, hyper connections, limits, drain.
//!
//! The server is a function of (bound listener, TLS config, service, limits, shutdown token).
//! It owns the rustls and hyper connection types and knows nothing of phones or partners:
//! callers hand it a service per connection. Before anything else a connection gets its slots
//! (per address and per network, `slots`); from a trusted balancer it first reads the PROXY
//! header (`proxy`, `inbound`) so the client, not the balancer, is who the slots, the service
//! and the logs see. On shutdown it stops accepting, asks every connection to finish its
//! in-flight request, and returns when all have closed or the grace period is over.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::Duration;

use http::header::{HeaderValue, CONNECTION};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::Network;

pub mod certificates;
pub mod inbound;
pub mod proxy;
pub mod slots;
pub mod tls;

use inbound::{HeaderError, Inbound, Watcher};
use slots::{Full, Slots};
use tls::HandshakeFailure;

/// Who is on the other end of a connection. Behind a trusted balancer, what its PROXY header
/// says: everything downstream sees the client, not the balancer.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    /// The client's address.
    pub remote: SocketAddr,
    /// The address the client connected to (ours, or the balancer's front).
    pub local: SocketAddr,
    /// Whether the connection to this server is TLS.
    pub tls: bool,
    /// The balancer the connection came through, if it came with a PROXY header.
    pub via: Option<SocketAddr>,
}

/// Connection limits, so slow, silent or greedy clients cannot exhaust the server, and the
/// peers trusted to say who their clients are.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open connections at most; further clients wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Time for a TLS handshake to complete; also for a trusted balancer's PROXY header to
    /// arrive.
    pub handshake_timeout: Duration,
    /// Time for a request's header to arrive; also how long an idle keep-alive connection
    /// waits for its next request.
    pub header_read_timeout: Duration,
    /// Bytes of request line and header at most.
    pub max_header_bytes: usize,
    /// Open connections from one client address at most; more are closed at once, so one
    /// greedy client cannot take every slot from the others.
    pub max_connections_per_address: usize,
    /// Open connections from one IPv4 /24 at most, so a few addresses of one network cannot
    /// either.
    pub max_connections_per_ipv4_network: usize,
    /// Open connections from one IPv6 /64 at most (one site: its addresses cost nothing).
    pub max_connections_per_ipv6_network: usize,
    /// Peers whose connections must start with a PROXY protocol header (v1 or v2) naming the
    /// client; anyone else's PROXY header ends the connection.
    pub proxy_protocol_from: Arc<[Network]>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(15),
            max_header_bytes: 16 * 1024,
            max_connections_per_address: 1024,
            max_connections_per_ipv4_network: 2048,
            max_connections_per_ipv6_network: 1024,
            proxy_protocol_from: Arc::from([]),
        }
    }
}

/// Why the server refused a connection or closed it before the client did. A closed set:
/// also a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The client's address holds `max_connections_per_address` connections already.
    AddressCap,
    /// The client's /24 or /64 holds its cap already.
    NetworkCap,
    /// A PROXY header from a peer not trusted to send one.
    ProxyUntrusted,
    /// A trusted peer's connection without a PROXY header (or one that did not arrive in time).
    ProxyMissing,
    /// A trusted peer's PROXY header that is malformed or for a transport not served.
    ProxyInvalid,
    /// Closed by the service after answers that served nothing ([`CloseConnection`]).
    NothingServed,
}

impl Refusal {
    /// Every reason, in label order.
    pub const ALL: [Refusal; 6] = [
        Refusal::AddressCap,
        Refusal::NetworkCap,
        Refusal::ProxyUntrusted,
        Refusal::ProxyMissing,
        Refusal::ProxyInvalid,
        Refusal::NothingServed,
    ];

    /// Metric label and log field.
    pub const fn label(self) -> &'static str {
        match self {
            Refusal::AddressCap => "address_cap",
            Refusal::NetworkCap => "network_cap",
            Refusal::ProxyUntrusted => "proxy_untrusted",
            Refusal::ProxyMissing => "proxy_missing",
            Refusal::ProxyInvalid => "proxy_invalid",
            Refusal::NothingServed => "nothing_served",
        }
    }
}

impl From<Full> for Refusal {
    fn from(full: Full) -> Self {
        match full {
            Full::Address => Refusal::AddressCap,
            Full::Network => Refusal::NetworkCap,
        }
    }
}

/// Put in a response's extensions by a service to have this response be the connection's
/// last: the server adds `Connection: close` and reports the reason.
#[derive(Clone, Copy, Debug)]
pub struct CloseConnection(pub Refusal);

/// Events a listener reports, for metrics and logs.
pub trait ConnectionEvents: Send + Sync + 'static {
    /// A TLS handshake failed or timed out; `detail` is the library's own words.
    fn handshake_failed(&self, _remote: SocketAddr, _reason: HandshakeFailure, _detail: &str) {}
    /// A connection opened (after TLS).
    fn opened(&self) {}
    /// A connection closed.
    fn closed(&self) {}
    /// A connection was refused, or closed by the server before the client closed it.
    fn refused(&self, _remote: SocketAddr, _reason: Refusal) {}
}

/// Ignores every event.
pub struct NoEvents;
impl ConnectionEvents for NoEvents {}

/// Accepts connections on `listener` until `shutdown`, serving each with the service built
/// by `make_service`. Returns once every connection has finished or `grace` has passed after
/// shutdown.
pub async fn serve<F, S, B>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    make_service: F,
    limits: Limits,
    events: Arc<dyn ConnectionEvents>,
    shutdown: CancellationToken,
    grace: Duration,
) where
    F: Fn(ConnInfo) -> S + Send + Sync + 'static,
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "listener has no local address");
            return;
        }
    };
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let slots = Slots::new(slots::Caps {
        per_address: limits.max_connections_per_address,
        per_ipv4_network: limits.max_connections_per_ipv4_network,
        per_ipv6_network: limits.max_connections_per_ipv6_network,
    });
    let tracker = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let shared = Arc::new(Shared {
        local,
        tls,
        make_service,
        http,
        events,
        slots,
        handshake_timeout: limits.handshake_timeout,
        shutdown: shutdown.clone(),
    });

    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, %local, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let balancer = limits
            .proxy_protocol_from
            .iter()
            .any(|n| n.contains(peer.ip()));
        if balancer {
            // Who the client is arrives with the header: slots are taken once it has.
            let shared = shared.clone();
            tracker.spawn(async move {
                let _permit = permit;
                shared.balanced(stream, peer).await;
            });
        } else {
            // Refused before a task is spawned: a flood from one network costs little.
            let slot = match shared.slots.take(peer.ip()) {
                Ok(slot) => slot,
                Err(full) => {
                    shared.events.refused(peer, full.into());
                    continue;
                }
            };
            let info = ConnInfo {
                remote: peer,
                local,
                tls: shared.tls.is_some(),
                via: None,
            };
            let shared = shared.clone();
            tracker.spawn(async move {
                let _permit = permit;
                let _slot = slot;
                let (inbound, watcher) = Inbound::direct(stream);
                shared.connection(inbound, info, Some(watcher)).await;
            });
        }
    }

    drop(listener);
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(%local, open = tracker.len(), "grace period over; closing remaining connections");
    }
}

/// What every connection of one listener shares.
struct Shared<F> {
    local: SocketAddr,
    tls: Option<TlsAcceptor>,
    make_service: F,
    http: hyper::server::conn::http1::Builder,
    events: Arc<dyn ConnectionEvents>,
    slots: Arc<Slots>,
    handshake_timeout: Duration,
    shutdown: CancellationToken,
}

impl<F, S, B> Shared<F>
where
    F: Fn(ConnInfo) -> S + Send + Sync + 'static,
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// A trusted balancer's connection: its PROXY header first, then the client's slots, then
    /// the connection as the client's.
    async fn balanced(&self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let header = tokio::time::timeout(self.handshake_timeout, Inbound::from_balancer(stream));
        let read = tokio::select! {
            () = self.shutdown.cancelled() => return,
            r = header => r,
        };
        let (header, inbound) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => {
                let reason = match e {
                    HeaderError::Proxy(proxy::Error::Missing) => Refusal::ProxyMissing,
                    HeaderError::Proxy(_) | HeaderError::Truncated => Refusal::ProxyInvalid,
                    // A balancer's TCP health check, or a reset: nothing was refused.
                    HeaderError::Silent | HeaderError::Io(_) => return,
                };
                tracing::debug!(%peer, error = %e, "connection from a trusted balancer refused");
                self.events.refused(peer, reason);
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "no PROXY header from a trusted balancer in time");
                self.events.refused(peer, Refusal::ProxyMissing);
                return;
            }
        };
        let info = match header {
            proxy::Header::Proxied {
                source,
                destination,
            } => ConnInfo {
                remote: source,
                local: destination,
                tls: self.tls.is_some(),
                via: Some(peer),
            },
            proxy::Header::Local => ConnInfo {
                remote: peer,
                local: self.local,
                tls: self.tls.is_some(),
                via: None,
            },
        };
        let _slot = match self.slots.take(info.remote.ip()) {
            Ok(slot) => slot,
            Err(full) => {
                self.events.refused(info.remote, full.into());
                return;
            }
        };
        self.connection(inbound, info, None).await;
    }

    /// TLS (if the listener has it), then HTTP until either side closes. `watcher`, for a
    /// direct client, tells whether a PROXY header it was not trusted to send ended it.
    async fn connection(&self, inbound: Inbound, info: ConnInfo, watcher: Option<Watcher>) {
        let sent_header = || watcher.as_ref().is_some_and(Watcher::saw_header);
        let Some(acceptor) = &self.tls else {
            self.http(inbound, info).await;
            if sent_header() {
                self.events.refused(info.remote, Refusal::ProxyUntrusted);
            }
            return;
        };
        let handshake = tokio::time::timeout(self.handshake_timeout, acceptor.accept(inbound));
        let stream = tokio::select! {
            () = self.shutdown.cancelled() => return,
            r = handshake => match r {
                Ok(Ok(s)) => s,
                Ok(Err(_)) if sent_header() => {
                    self.events.refused(info.remote, Refusal::ProxyUntrusted);
                    return;
                }
                Ok(Err(e)) => {
                    let reason = HandshakeFailure::of(&e);
                    self.events.handshake_failed(info.remote, reason, &e.to_string());
                    return;
                }
                Err(_) => {
                    self.events.handshake_failed(info.remote, HandshakeFailure::Timeout, "timed out");
                    return;
                }
            },
        };
        self.http(stream, info).await;
    }

    async fn http<IO>(&self, io: IO, info: ConnInfo)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let service = Watched {
            inner: (self.make_service)(info),
            connection: Arc::new(Connection {
                events: self.events.clone(),
                remote: info.remote,
            }),
        };
        self.events.opened();
        let conn = self.http.serve_connection(TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = self.shutdown.cancelled() => {
                // Finish the request in flight, then close; the caller bounds how long.
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            // Timeouts, resets and malformed requests are the client's business.
            tracing::debug!(error = %e, remote = %info.remote, "connection ended with an error");
        }
        self.events.closed();
    }
}

/// One connection, as the responses on it see it.
struct Connection {
    events: Arc<dyn ConnectionEvents>,
    remote: SocketAddr,
}

/// A connection's service, watched for responses marked [`CloseConnection`].
struct Watched<S> {
    inner: S,
    // Per connection, so cloning it per request never contends with other connections.
    connection: Arc<Connection>,
}

impl<S, B> hyper::service::Service<http::Request<Incoming>> for Watched<S>
where
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = WatchedFuture<S::Future>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        WatchedFuture {
            inner: self.inner.call(request),
            connection: self.connection.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A response on its way, checked for [`CloseConnection`] when ready.
    struct WatchedFuture<F> {
        #[pin]
        inner: F,
        connection: Arc<Connection>,
    }
}

impl<F, B, E> std::future::Future for WatchedFuture<F>
where
    F: std::future::Future<Output = Result<http::Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.inner.poll(cx));
        if let Ok(response) = &mut result {
            if let Some(CloseConnection(reason)) = response.extensions_mut().remove() {
                // hyper closes the connection after a response that says so.
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                this.connection
                    .events
                    .refused(this.connection.remote, reason);
            }
        }
        Poll::Ready(result)
    }
}

/// Binds a listener; kept here so every listener is created the same way.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    // A boot storm opens thousands of connections at once: a deep accept queue absorbs it.
    socket.listen(4096)
}
