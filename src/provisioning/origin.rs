//! Where phones reach this server: the provisioning URL written into configs, from the
//! configured public URL or the request's Host header, and the directory the phone fetched
//! from (so any layout an operator gives phones keeps working).
//!
//! Knows nothing of phones or vendors.

use std::net::SocketAddr;

use super::Fetch;

/// Where this request reached the server.
#[derive(Hash, Clone, Copy)]
pub enum Origin<'a> {
    /// `public_url` from the configuration, without a trailing `/`.
    Configured(&'a str),
    /// The request's Host header, on the listener's scheme.
    Host {
        /// Over TLS.
        tls: bool,
        /// `name[:port]`.
        host: &'a str,
    },
    /// The listener's address, when the Host header is absent or unusable.
    Local {
        /// Over TLS.
        tls: bool,
        /// The bound address.
        addr: SocketAddr,
    },
}

impl<'a> Origin<'a> {
    /// The origin of `fetch`.
    pub fn of(fetch: &Fetch<'a>, configured: Option<&'a str>) -> Self {
        if let Some(url) = configured {
            return Origin::Configured(url.trim_end_matches('/'));
        }
        match fetch.host.filter(|h| is_host_header(h)) {
            Some(host) => Origin::Host {
                tls: fetch.tls,
                host,
            },
            None => Origin::Local {
                tls: fetch.tls,
                addr: fetch.local,
            },
        }
    }

    /// The URL of directory `dir` (which starts and ends with `/`).
    pub fn url(&self, dir: &str) -> String {
        let scheme = |tls: bool| if tls { "https" } else { "http" };
        match self {
            Origin::Configured(base) => format!("{base}{dir}"),
            Origin::Host { tls, host } => format!("{}://{host}{dir}", scheme(*tls)),
            Origin::Local { tls, addr } => format!("{}://{addr}{dir}", scheme(*tls)),
        }
    }
}

/// The directory part of the request path, with its trailing `/` (`/prov/yealink/`).
pub fn directory_of(path_and_query: &str) -> &str {
    let path = path_and_query.split('?').next().unwrap_or("");
    match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    }
}

/// A Host header that can go into a URL unchanged: a name or address and an optional port.
fn is_host_header(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_origins() {
        assert_eq!(
            directory_of("/prov/yealink/805ec017de13.cfg"),
            "/prov/yealink/"
        );
        assert_eq!(directory_of("/805ec017de13.cfg?x=/y"), "/");
        assert_eq!(directory_of("x"), "/");
        assert!(is_host_header("prov.example:8443"));
        assert!(is_host_header("[::1]:8443"));
        assert!(!is_host_header("evil\"host"));
        assert!(!is_host_header("a b"));
    }
}
