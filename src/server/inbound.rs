//! A connection's bytes as the listener hands them to TLS or HTTP: after the PROXY header a
//! trusted balancer sends (the bytes read past the header replayed first), or watched for such a
//! header from anyone else, which ends the connection.
//!
//! Owns reading the header off the socket and watching for one; the header's format is
//! `proxy`'s. Knows nothing of
//! which peers are trusted (the listener decides which constructor to call) or of what the
//! addresses are used for.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::proxy::{self, Header, Parsed, Start};

/// A connection's byte stream.
pub struct Inbound {
    stream: TcpStream,
    /// Bytes read past the PROXY header, handed out before anything else.
    replay: Bytes,
    watch: Watch,
}

/// Whether the first bytes are still watched for a PROXY header.
enum Watch {
    /// The first `len` bytes seen so far.
    Looking {
        seen: [u8; 12],
        len: usize,
        found: Watcher,
    },
    Done,
}

/// The error a read fails with when an untrusted peer's first bytes are a PROXY header.
#[derive(Debug, thiserror::Error)]
#[error("PROXY protocol header from a peer not in proxy_protocol_from")]
pub struct UntrustedHeader;

/// Says, once a directly connected client's connection has ended, whether a PROXY header
/// ended it. (TLS and HTTP see only a failed read; HTTP even takes a failed first read for
/// the client closing.)
#[derive(Clone, Default)]
pub struct Watcher(Arc<AtomicBool>);

impl Watcher {
    /// Whether the client sent a PROXY header.
    pub fn saw_header(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a trusted peer's connection did not start with a usable PROXY header.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The bytes are not a header zerotouch accepts.
    #[error(transparent)]
    Proxy(#[from] proxy::Error),
    /// The peer closed the connection without sending a byte (a balancer's TCP health check).
    #[error("closed before sending anything")]
    Silent,
    /// The peer closed the connection in the middle of a header.
    #[error("closed in the middle of a PROXY protocol header")]
    Truncated,
    /// Reading failed.
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] io::Error),
}

impl Inbound {
    /// A connection straight from a client: its first bytes are watched, and a PROXY header
    /// among them fails the read with [`UntrustedHeader`] and shows on the [`Watcher`].
    pub fn direct(stream: TcpStream) -> (Self, Watcher) {
        let found = Watcher::default();
        let inbound = Self {
            stream,
            replay: Bytes::new(),
            watch: Watch::Looking {
                seen: [0; 12],
                len: 0,
                found: found.clone(),
            },
        };
        (inbound, found)
    }

    /// A connection from a trusted balancer: reads its PROXY header (nothing else is
    /// accepted), and hands on whatever the client sent after it. The caller bounds the time.
    pub async fn from_balancer(mut stream: TcpStream) -> Result<(Header, Self), HeaderError> {
        let mut buf = BytesMut::with_capacity(256);
        loop {
            // `parse` bounds what it waits for (a v1 line or a declared v2 length, both
            // capped), so the buffer never grows past that plus one read.
            if let Parsed::Complete { header, length } = proxy::parse(&buf)? {
                let replay = buf.split_off(length).freeze();
                let inbound = Self {
                    stream,
                    replay,
                    watch: Watch::Done,
                };
                return Ok((header, inbound));
            }
            buf.reserve(512);
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(if buf.is_empty() {
                    HeaderError::Silent
                } else {
                    HeaderError::Truncated
                });
            }
        }
    }
}

impl AsyncRead for Inbound {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay[..n]);
            this.replay.advance(n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        if let Watch::Looking { seen, len, found } = &mut this.watch {
            let new = &buf.filled()[before..];
            let take = new.len().min(seen.len() - *len);
            seen[*len..*len + take].copy_from_slice(&new[..take]);
            *len += take;
            match proxy::start(&seen[..*len]) {
                Start::Header => {
                    found.0.store(true, Ordering::Relaxed);
                    // Hand nothing of it on.
                    buf.set_filled(before);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        UntrustedHeader,
                    )));
                }
                Start::Other => this.watch = Watch::Done,
                // End of stream, or a signature's first bytes: they pass, the next read tells.
                Start::Undecided if new.is_empty() => this.watch = Watch::Done,
                Start::Undecided => {}
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Inbound {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// A connected pair: what the client writes, and the server's end of it.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn the_bytes_after_a_header_are_handed_on_untouched() {
        let (mut client, server) = pair().await;
        let header = Header::Proxied {
            source: "203.0.113.9:40000".parse().unwrap(),
            destination: "198.51.100.1:443".parse().unwrap(),
        };
        let mut sent = header.to_v2(&[1, 0, 1, 9]);
        sent.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        client.write_all(&sent).await.unwrap();
        client.shutdown().await.unwrap();
        let (got, mut inbound) = Inbound::from_balancer(server).await.unwrap();
        assert_eq!(got, header);
        let mut rest = Vec::new();
        inbound.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"GET / HTTP/1.1\r\n\r\n");
    }

    #[tokio::test]
    async fn a_header_split_over_several_writes_is_read_whole() {
        let (mut client, server) = pair().await;
        let line = b"PROXY TCP4 203.0.113.9 198.51.100.1 40000 443\r\nhello";
        let writer = tokio::spawn(async move {
            for part in line.chunks(7) {
                client.write_all(part).await.unwrap();
                client.flush().await.unwrap();
            }
            client
        });
        let (got, mut inbound) = Inbound::from_balancer(server).await.unwrap();
        assert!(matches!(got, Header::Proxied { .. }));
        drop(writer.await.unwrap());
        let mut rest = Vec::new();
        inbound.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"hello");
    }

    #[tokio::test]
    async fn a_trusted_peer_without_a_header_is_refused() {
        let (mut client, server) = pair().await;
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let err = Inbound::from_balancer(server).await.err().unwrap();
        assert!(
            matches!(err, HeaderError::Proxy(proxy::Error::Missing)),
            "{err}"
        );
        let (mut client, server) = pair().await;
        client.write_all(b"PROXY TCP4").await.unwrap();
        client.shutdown().await.unwrap();
        let err = Inbound::from_balancer(server).await.err().unwrap();
        assert!(matches!(err, HeaderError::Truncated), "{err}");
        let (client, server) = pair().await;
        drop(client);
        let err = Inbound::from_balancer(server).await.err().unwrap();
        assert!(matches!(err, HeaderError::Silent), "{err}");
    }

    #[tokio::test]
    async fn a_header_from_an_untrusted_peer_fails_the_read_even_when_split() {
        let (mut client, server) = pair().await;
        let (mut inbound, watcher) = Inbound::direct(server);
        client.write_all(b"PRO").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(inbound.read(&mut buf).await.unwrap(), 3);
        assert!(!watcher.saw_header());
        client
            .write_all(b"XY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")
            .await
            .unwrap();
        let err = inbound.read(&mut buf).await.unwrap_err();
        assert!(
            err.get_ref().is_some_and(|e| e.is::<UntrustedHeader>()),
            "{err}"
        );
        assert!(watcher.saw_header());
    }

    #[tokio::test]
    async fn ordinary_first_bytes_pass_untouched() {
        for first in [
            &b"PUT /x HTTP/1.1\r\n\r\n"[..],
            &[0x16, 0x03, 0x01, 0x00, 0x05],
        ] {
            let (mut client, server) = pair().await;
            let (mut inbound, watcher) = Inbound::direct(server);
            client.write_all(first).await.unwrap();
            client.shutdown().await.unwrap();
            let mut got = Vec::new();
            inbound.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, first);
            assert!(!watcher.saw_header());
        }
    }
}
