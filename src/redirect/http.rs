//! The HTTP plumbing every vendor adapter shares: one reqwest client per adapter with its
//! time-out, credentials that never show in `Debug`, and the mapping of what the network and
//! the status line say (time-out, refused connection, 5xx, 429 with `Retry-After`) to
//! [`Failure`]. It knows no vendor's wire format.
//!
//! Failure texts are built from fixed sentences and the vendor's status code, never from
//! reqwest's error text (which names the URL) and never from a request's headers, so no
//! credential can reach them.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::Failure;

/// The longest vendor message kept in a [`Failure::Refused`] reason.
const REASON_MAX: usize = 200;

/// A credential given to an adapter (a secret key or a password). `Debug` prints `***`; the
/// value leaves only through [`Secret::expose`], where a request is signed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself, for signing a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why an adapter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The HTTP client could not be built (the TLS backend failed to start).
    #[error("the HTTP client for the {0} redirect service could not be built")]
    Client(&'static str),
    /// A configured URL is not an absolute http(s) URL.
    #[error("the {what} is not an absolute http(s) URL")]
    Url {
        /// Which URL.
        what: &'static str,
    },
    /// A setting is out of range.
    #[error("{0}")]
    Setting(&'static str),
}

/// Builds the client one adapter uses for all its calls.
pub(crate) fn client(
    vendor: &'static str,
    timeout: Duration,
) -> Result<reqwest::Client, SetupError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("zerotouch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|_| SetupError::Client(vendor))
}

/// Checks that `url` is an absolute http(s) URL.
pub(crate) fn check_url(url: &str, what: &'static str) -> Result<(), SetupError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(SetupError::Url { what }),
    }
}

/// One answer, read whole.
pub(crate) struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

/// The largest answer body read; a vendor's answers are small JSON or XML documents.
const BODY_MAX: usize = 4 << 20;

/// Sends a request and reads the whole answer (at most [`BODY_MAX`] bytes); a network
/// failure or an oversized body is [`Failure::Transient`].
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Result<Answer, Failure> {
    let mut response = request.send().await.map_err(|e| network_failure(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| network_failure(&e))? {
        if body.len() + chunk.len() > BODY_MAX {
            return Err(transient("the vendor's answer was too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body: Bytes::from(body),
    })
}

/// A failure of the exchange itself, in a fixed sentence (reqwest's own text names the URL).
pub(crate) fn network_failure(error: &reqwest::Error) -> Failure {
    let reason = if error.is_timeout() {
        "the vendor did not answer in time"
    } else if error.is_connect() {
        "could not connect to the vendor"
    } else if error.is_body() || error.is_decode() {
        "the vendor's answer was cut off"
    } else {
        "the exchange with the vendor failed"
    };
    transient(reason)
}

/// A [`Failure::Transient`] without a hint.
pub(crate) fn transient(reason: &str) -> Failure {
    Failure::Transient {
        reason: reason.to_owned(),
        retry_after: None,
    }
}

/// The failure a status says by itself, whatever the vendor: 429 and 503 (with the vendor's
/// `Retry-After` when it gave one), 408 and other 5xx are worth another try; 401 and 403 mean
/// our credentials were refused. `None` for every other status: the vendor's body decides.
pub(crate) fn status_failure(answer: &Answer) -> Option<Failure> {
    let status = answer.status;
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        let reason = if status == StatusCode::TOO_MANY_REQUESTS {
            "the vendor is limiting our request rate".to_owned()
        } else {
            format!("the vendor answered {}", status.as_u16())
        };
        return Some(Failure::Transient {
            reason,
            retry_after: retry_after(&answer.headers),
        });
    }
    if status == StatusCode::REQUEST_TIMEOUT {
        return Some(transient("the vendor answered 408"));
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Some(Failure::Refused {
            code: status.as_u16().to_string(),
            reason: "the vendor refused our credentials".to_owned(),
        });
    }
    None
}

/// The `Retry-After` header in its delay-seconds form (the HTTP-date form is not used by
/// the vendors we know of and counts as no hint).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A vendor's message as a [`Failure::Refused`] reason: its first line, trimmed and cut to
/// [`REASON_MAX`] characters.
pub(crate) fn reason_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    line.chars().take(REASON_MAX).collect()
}

/// A [`Failure::Refused`] from a code and a vendor message.
pub(crate) fn refused(code: impl Into<String>, message: &str) -> Failure {
    Failure::Refused {
        code: code.into(),
        reason: reason_line(message),
    }
}

/// Random bytes as lower-case hex, for nonces.
pub(crate) fn nonce_hex(len: usize) -> Result<String, Failure> {
    use ring::rand::SecureRandom;
    let mut bytes = vec![0u8; len];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| transient("the system's random source failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry: Option<&str>) -> Answer {
        let mut headers = HeaderMap::new();
        if let Some(r) = retry {
            headers.insert(http::header::RETRY_AFTER, r.parse().unwrap());
        }
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: Bytes::new(),
        }
    }

    #[test]
    fn rate_limiting_carries_the_vendors_hint() {
        assert_eq!(
            status_failure(&answer(429, Some("7"))),
            Some(Failure::Transient {
                reason: "the vendor is limiting our request rate".into(),
                retry_after: Some(Duration::from_secs(7)),
            })
        );
        let date = status_failure(&answer(429, Some("Wed, 21 Oct 2015 07:28:00 GMT")));
        assert!(matches!(
            date,
            Some(Failure::Transient {
                retry_after: None,
                ..
            })
        ));
    }

    #[test]
    fn statuses_map_to_failures() {
        assert!(matches!(
            status_failure(&answer(503, None)),
            Some(Failure::Transient { .. })
        ));
        assert!(matches!(
            status_failure(&answer(500, None)),
            Some(Failure::Transient { .. })
        ));
        assert!(matches!(
            status_failure(&answer(401, None)),
            Some(Failure::Refused { .. })
        ));
        assert!(matches!(
            status_failure(&answer(403, None)),
            Some(Failure::Refused { .. })
        ));
        assert_eq!(status_failure(&answer(200, None)), None);
        assert_eq!(status_failure(&answer(404, None)), None);
    }

    #[test]
    fn secrets_do_not_show() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn reasons_are_one_short_line() {
        assert_eq!(reason_line("  first\nsecond"), "first");
        assert_eq!(reason_line(&"x".repeat(500)).len(), REASON_MAX);
    }
}
