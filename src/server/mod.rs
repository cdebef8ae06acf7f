//! Serving HTTP/1.1 over TCP or TLS: accept, handshake, hyper connections, limits, drain.
//!
//! The server is a function of (bound listener, TLS config, service, limits, shutdown token).
//! It owns the rustls and hyper connection types and knows nothing of phones or partners:
//! callers hand it a service per connection. On shutdown it stops accepting, asks every
//! connection to finish its in-flight request, and returns when all have closed or the grace
//! period is over.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub mod tls;

/// Who is on the other end of a connection.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    /// The client's address.
    pub remote: SocketAddr,
    /// Our address the client connected to.
    pub local: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// Connection limits, so slow, silent or greedy clients cannot exhaust the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open connections at most; further clients wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Time for a TLS handshake to complete.
    pub handshake_timeout: Duration,
    /// Time for a request's header to arrive; also how long an idle keep-alive connection
    /// waits for its next request.
    pub header_read_timeout: Duration,
    /// Bytes of request line and header at most.
    pub max_header_bytes: usize,
    /// Open connections from one client address at most; more are closed at once, so one
    /// greedy client cannot take every slot from the others.
    pub max_connections_per_address: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(15),
            max_header_bytes: 16 * 1024,
            max_connections_per_address: 1024,
        }
    }
}

/// Events a listener reports, for metrics and logs.
pub trait ConnectionEvents: Send + Sync + 'static {
    /// A TLS handshake failed or timed out.
    fn handshake_failed(&self, _remote: SocketAddr, _reason: &str) {}
    /// A connection opened (after TLS).
    fn opened(&self) {}
    /// A connection closed.
    fn closed(&self) {}
    /// A connection was closed at once: its address holds too many already.
    fn refused_over_address_cap(&self, _remote: SocketAddr) {}
}

/// Open connections per client address; a slot is given back when its guard drops.
#[derive(Default)]
struct PerAddress(dashmap::DashMap<std::net::IpAddr, usize, ahash::RandomState>);

struct AddressSlot {
    map: Arc<PerAddress>,
    ip: std::net::IpAddr,
}

impl PerAddress {
    fn take(self: &Arc<Self>, ip: std::net::IpAddr, cap: usize) -> Option<AddressSlot> {
        let mut count = self.0.entry(ip).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            map: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        // Remove the entry at zero so the map only holds addresses with open connections.
        self.map.0.remove_if_mut(&self.ip, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
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
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let tracker = TaskTracker::new();
    let make_service = Arc::new(make_service);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let http = Arc::new(http);

    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
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
        let Some(address_slot) = per_address.take(remote.ip(), limits.max_connections_per_address)
        else {
            events.refused_over_address_cap(remote);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let info = ConnInfo {
            remote,
            local,
            tls: tls.is_some(),
        };
        let tls = tls.clone();
        let make_service = make_service.clone();
        let http = http.clone();
        let events = events.clone();
        let shutdown = shutdown.clone();
        let handshake_timeout = limits.handshake_timeout;
        tracker.spawn(async move {
            let _permit = permit;
            let _address_slot = address_slot;
            match tls {
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
                    let stream = tokio::select! {
                        () = shutdown.cancelled() => return,
                        r = handshake => match r {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                events.handshake_failed(remote, &e.to_string());
                                return;
                            }
                            Err(_) => {
                                events.handshake_failed(remote, "timed out");
                                return;
                            }
                        },
                    };
                    serve_connection(&http, stream, make_service(info), &*events, shutdown).await;
                }
                None => {
                    serve_connection(&http, stream, make_service(info), &*events, shutdown).await;
                }
            }
        });
    }

    drop(listener);
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(%local, open = tracker.len(), "grace period over; closing remaining connections");
    }
}

async fn serve_connection<IO, S, B>(
    http: &hyper::server::conn::http1::Builder,
    io: IO,
    service: S,
    events: &dyn ConnectionEvents,
    shutdown: CancellationToken,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    events.opened();
    let conn = http.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => log_connection_end(r),
        () = shutdown.cancelled() => {
            // Finish the request in flight, then close; the caller bounds how long.
            conn.as_mut().graceful_shutdown();
            log_connection_end(conn.await);
        }
    }
    events.closed();
}

fn log_connection_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        // Timeouts, resets and malformed requests are the client's business; debug only.
        tracing::debug!(error = %e, "connection ended with an error");
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
