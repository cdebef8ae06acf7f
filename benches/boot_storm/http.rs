//! A minimal HTTP/1.1 exchange over TLS, as phones need it: one GET, the whole response read
//! into a reused buffer, its status, length or end of connection, `Connection: close`, and
//! the Digest challenge of a 401.
//!
//! Must not know phones, files or credentials.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::digest::{parse_challenge, Challenge};

/// A TLS connection to the server.
pub(crate) type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// One response: status, where the body is in the buffer, whether the server closes, and
/// the Digest challenge of a 401.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: std::ops::Range<usize>,
    pub(crate) close: bool,
    pub(crate) challenge: Option<Challenge>,
}

/// Sends one request and reads the whole response into `buf`.
pub(crate) async fn exchange(
    stream: &mut Tls,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<Response, String> {
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    stream.flush().await.map_err(|e| format!("write: {e}"))?;
    buf.clear();
    let header_end = loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8192);
        }
        let searched = buf.len().saturating_sub(3);
        let n = stream
            .read_buf(buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before the response header".into());
        }
        if let Some(i) = find(&buf[searched..], b"\r\n\r\n") {
            break searched + i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err("response header larger than 64 KiB".into());
        }
    };
    let head = std::str::from_utf8(&buf[..header_end])
        .map_err(|_| "response header is not UTF-8".to_owned())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut length = None;
    let mut challenge = None;
    let mut close = status_line.starts_with("HTTP/1.0");
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad content-length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!("transfer-encoding {value} is not supported"));
        } else if status == 401
            && challenge.is_none()
            && name.eq_ignore_ascii_case("www-authenticate")
        {
            challenge = parse_challenge(value);
        }
    }
    match length {
        Some(length) => {
            let end = header_end + length;
            while buf.len() < end {
                buf.reserve(end - buf.len());
                let n = stream
                    .read_buf(buf)
                    .await
                    .map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("connection closed before the body was complete".into());
                }
            }
            Ok(Response {
                status,
                body: header_end..end,
                close,
                challenge,
            })
        }
        None => {
            // No length: the body runs to the end of the connection.
            loop {
                buf.reserve(8192);
                match stream.read_buf(buf).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
            Ok(Response {
                status,
                body: header_end..buf.len(),
                close: true,
                challenge,
            })
        }
    }
}

/// Where `needle` first stands in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
