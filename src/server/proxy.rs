//! The PROXY protocol (versions 1 and 2, as HAProxy specifies it): the header a load balancer
//! writes before a client's first byte to say whose connection it relays. Parsing and writing
//! headers; pure, no I/O.
//!
//! Knows nothing of sockets, of who may send a header (the listener decides that before it
//! asks), or of what the client's address is used for. Only what zerotouch can act on is
//! accepted: TCP over IPv4 or IPv6, and the balancer's own connections (v2 `LOCAL`, v1
//! `UNKNOWN`, v2 `PROXY` with an unspecified family). v2 TLVs are skipped unread.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The twelve bytes every v2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// What every v1 header starts with.
const V1_PREFIX: &[u8] = b"PROXY ";

/// The longest v1 header, CRLF included (the specification's bound).
pub const V1_MAX: usize = 107;

/// The longest v2 header accepted, TLVs included. The format allows 64 KiB; balancers send a
/// few dozen bytes (a few hundred with every TLV HAProxy, AWS or GCP add), so this bounds what
/// a trusted peer can make the server buffer without refusing any of them.
pub const V2_MAX: usize = 16 + 4096;

/// Bytes of v2 header before its variable part.
const V2_FIXED: usize = 16;

/// What a complete header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// A relayed client connection: the client's address and the address it connected to.
    Proxied {
        /// The client.
        source: SocketAddr,
        /// Where the client connected (the balancer's front).
        destination: SocketAddr,
    },
    /// The balancer's own connection (a health check, or a client it cannot describe): the
    /// connection's own addresses stand.
    Local,
}

/// The outcome of parsing the bytes received so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header, `length` bytes long; the client's own bytes follow it.
    Complete {
        /// What it says.
        header: Header,
        /// Its length in bytes.
        length: usize,
    },
    /// A valid beginning of a header: more bytes are needed.
    Incomplete,
}

/// Why bytes are not a header zerotouch accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes do not start with either version's signature.
    #[error("no PROXY protocol header")]
    Missing,
    /// A v1 line or v2 block that breaks the format.
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
    /// Longer than [`V1_MAX`] or [`V2_MAX`].
    #[error("PROXY protocol header too long")]
    TooLong,
    /// Well formed, but for a transport zerotouch does not serve (UDP, UNIX sockets).
    #[error("PROXY protocol header for an unsupported transport: {0}")]
    Unsupported(&'static str),
}

/// How a connection's first bytes start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// With a PROXY protocol signature (v1's `PROXY ` or v2's twelve bytes).
    Header,
    /// With anything else.
    Other,
    /// Too few bytes to tell: they begin a signature.
    Undecided,
}

/// How `bytes`, a connection's first bytes, start.
pub fn start(bytes: &[u8]) -> Start {
    let begins = |signature: &[u8]| {
        let n = bytes.len().min(signature.len());
        bytes[..n] == signature[..n]
    };
    let v1 = begins(V1_PREFIX);
    let v2 = begins(&V2_SIGNATURE);
    if (v1 && bytes.len() >= V1_PREFIX.len()) || (v2 && bytes.len() >= V2_SIGNATURE.len()) {
        Start::Header
    } else if v1 || v2 {
        Start::Undecided
    } else {
        Start::Other
    }
}

/// Parses the header at the start of `bytes`, a connection's first bytes (more may follow the
/// header). Never reads past the header, so what follows it can be handed on untouched.
pub fn parse(bytes: &[u8]) -> Result<Parsed, Error> {
    match start(bytes) {
        Start::Other => Err(Error::Missing),
        Start::Undecided => Ok(Parsed::Incomplete),
        Start::Header if bytes.starts_with(V1_PREFIX) => parse_v1(bytes),
        Start::Header => parse_v2(bytes),
    }
}

fn parse_v1(bytes: &[u8]) -> Result<Parsed, Error> {
    let window = &bytes[..bytes.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if bytes.len() >= V1_MAX {
            Err(Error::TooLong)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let length = end + 2;
    let line = std::str::from_utf8(&bytes[..end]).map_err(|_| Error::Malformed("not text"))?;
    let mut fields = line.split(' ');
    // `start` checked the prefix: the first field is `PROXY`.
    fields.next();
    let header = match fields.next() {
        // The rest of an UNKNOWN line is to be ignored (the specification's words).
        Some("UNKNOWN") => Header::Local,
        Some(family @ ("TCP4" | "TCP6")) => {
            let v4 = family == "TCP4";
            let mut next = || fields.next().ok_or(Error::Malformed("missing field"));
            let source_ip = v1_address(next()?, v4)?;
            let destination_ip = v1_address(next()?, v4)?;
            let source_port = v1_port(next()?)?;
            let destination_port = v1_port(next()?)?;
            if fields.next().is_some() {
                return Err(Error::Malformed("extra field"));
            }
            Header::Proxied {
                source: SocketAddr::new(source_ip, source_port),
                destination: SocketAddr::new(destination_ip, destination_port),
            }
        }
        _ => return Err(Error::Malformed("unknown protocol")),
    };
    Ok(Parsed::Complete { header, length })
}

fn v1_address(field: &str, v4: bool) -> Result<IpAddr, Error> {
    let bad = Error::Malformed("bad address");
    if v4 {
        field.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| bad)
    } else {
        field.parse::<Ipv6Addr>().map(IpAddr::V6).map_err(|_| bad)
    }
}

fn v1_port(field: &str) -> Result<u16, Error> {
    let bad = Error::Malformed("bad port");
    // Decimal digits only, no leading zero: `u16::from_str` would also take a `+`.
    let digits = !field.is_empty() && field.len() <= 5 && field.bytes().all(|b| b.is_ascii_digit());
    if !digits || (field.len() > 1 && field.starts_with('0')) {
        return Err(bad);
    }
    field.parse().map_err(|_| bad)
}

fn parse_v2(bytes: &[u8]) -> Result<Parsed, Error> {
    if bytes.len() < V2_FIXED {
        return Ok(Parsed::Incomplete);
    }
    let version = bytes[12] >> 4;
    let command = bytes[12] & 0x0f;
    let family = bytes[13] >> 4;
    let transport = bytes[13] & 0x0f;
    let declared = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
    if version != 2 {
        return Err(Error::Malformed("version is not 2"));
    }
    if command > 1 {
        return Err(Error::Malformed("unknown command"));
    }
    if family > 3 || transport > 2 {
        return Err(Error::Malformed("unknown address family or transport"));
    }
    let length = V2_FIXED + declared;
    if length > V2_MAX {
        return Err(Error::TooLong);
    }
    let Some(block) = bytes.get(V2_FIXED..length) else {
        return Ok(Parsed::Incomplete);
    };
    // LOCAL: the balancer speaks for itself; whatever address block follows is to be ignored.
    if command == 0 || family == 0 {
        return Ok(Parsed::Complete {
            header: Header::Local,
            length,
        });
    }
    if family == 3 {
        return Err(Error::Unsupported("UNIX socket"));
    }
    if transport != 1 {
        return Err(Error::Unsupported("not TCP"));
    }
    let header = if family == 1 {
        let a = block
            .get(..12)
            .ok_or(Error::Malformed("address block too short"))?;
        let ip = |at: usize| IpAddr::V4(Ipv4Addr::new(a[at], a[at + 1], a[at + 2], a[at + 3]));
        Header::Proxied {
            source: SocketAddr::new(ip(0), u16::from_be_bytes([a[8], a[9]])),
            destination: SocketAddr::new(ip(4), u16::from_be_bytes([a[10], a[11]])),
        }
    } else {
        let a = block
            .get(..36)
            .ok_or(Error::Malformed("address block too short"))?;
        let ip = |at: usize| {
            let mut o = [0u8; 16];
            o.copy_from_slice(&a[at..at + 16]);
            IpAddr::V6(Ipv6Addr::from(o))
        };
        Header::Proxied {
            source: SocketAddr::new(ip(0), u16::from_be_bytes([a[32], a[33]])),
            destination: SocketAddr::new(ip(16), u16::from_be_bytes([a[34], a[35]])),
        }
    };
    Ok(Parsed::Complete { header, length })
}

impl Header {
    /// The header as a v1 line, as a balancer writes it (tests and tools). Addresses of two
    /// families are written as IPv6, the IPv4 one mapped.
    pub fn to_v1(&self) -> String {
        match *self {
            Header::Local => "PROXY UNKNOWN\r\n".to_owned(),
            Header::Proxied {
                source,
                destination,
            } => {
                let (s, d, family) = same_family(source.ip(), destination.ip());
                let family = if family == 1 { "TCP4" } else { "TCP6" };
                format!(
                    "PROXY {family} {s} {d} {} {}\r\n",
                    source.port(),
                    destination.port()
                )
            }
        }
    }

    /// The header as a v2 block, as a balancer writes it (tests and tools), followed by
    /// `tlvs` (raw type-length-value bytes, which a reader skips).
    pub fn to_v2(&self, tlvs: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        let mut block = Vec::with_capacity(36 + tlvs.len());
        match *self {
            Header::Local => out.extend_from_slice(&[0x20, 0x00]),
            Header::Proxied {
                source,
                destination,
            } => {
                let (s, d, family) = same_family(source.ip(), destination.ip());
                out.extend_from_slice(&[0x21, family << 4 | 1]);
                match (s, d) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => {
                        block.extend_from_slice(&s.octets());
                        block.extend_from_slice(&d.octets());
                    }
                    (s, d) => {
                        block.extend_from_slice(&v6(s).octets());
                        block.extend_from_slice(&v6(d).octets());
                    }
                }
                block.extend_from_slice(&source.port().to_be_bytes());
                block.extend_from_slice(&destination.port().to_be_bytes());
            }
        }
        block.extend_from_slice(tlvs);
        let length = u16::try_from(block.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&block);
        out
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Both addresses in one family (1: IPv4, 2: IPv6), as both versions of the header need.
fn same_family(s: IpAddr, d: IpAddr) -> (IpAddr, IpAddr, u8) {
    match (s, d) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (s, d, 1),
        _ => (IpAddr::V6(v6(s)), IpAddr::V6(v6(d)), 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn proxied(source: &str, destination: &str) -> Header {
        Header::Proxied {
            source: addr(source),
            destination: addr(destination),
        }
    }

    fn complete(bytes: &[u8]) -> (Header, usize) {
        match parse(bytes) {
            Ok(Parsed::Complete { header, length }) => (header, length),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
        }
    }

    #[test]
    fn v1_lines_from_the_specification() {
        let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            complete(line),
            (proxied("192.168.0.1:56324", "192.168.0.11:443"), 47)
        );
        let line = b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n";
        assert_eq!(
            complete(line),
            (
                proxied("[2001:db8::1]:65535", "[2001:db8::2]:0"),
                line.len()
            )
        );
        assert_eq!(complete(b"PROXY UNKNOWN\r\n"), (Header::Local, 15));
        let unknown = b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
        assert_eq!(complete(unknown), (Header::Local, unknown.len()));
    }

    #[test]
    fn malformed_v1_lines_are_refused() {
        for line in [
            &b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n"[..],
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 1\r\n",
            b"PROXY TCP4  192.168.0.1 192.168.0.11 56324 443\r\n",
            b"PROXY TCP4 2001:db8::1 192.168.0.11 56324 443\r\n",
            b"PROXY TCP6 192.168.0.1 2001:db8::2 56324 443\r\n",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 +5632 443\r\n",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 08 443\r\n",
            b"PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n",
            b"PROXY tcp4 192.168.0.1 192.168.0.11 56324 443\r\n",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n\r\n",
            b"PROXY \xff\r\n",
        ] {
            assert!(
                matches!(parse(line), Err(Error::Malformed(_))),
                "{:?}: {:?}",
                String::from_utf8_lossy(line),
                parse(line)
            );
        }
        let long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(100));
        assert_eq!(parse(long.as_bytes()), Err(Error::TooLong));
        assert_eq!(
            parse(&long.as_bytes()[..V1_MAX]),
            Err(Error::TooLong),
            "no CRLF within the bound"
        );
        assert_eq!(
            parse(&long.as_bytes()[..V1_MAX - 1]),
            Ok(Parsed::Incomplete)
        );
    }

    #[test]
    fn v2_blocks_for_tcp_and_local() {
        let h = proxied("203.0.113.7:5060", "198.51.100.1:443");
        let bytes = h.to_v2(&[]);
        assert_eq!(bytes.len(), 28);
        assert_eq!(complete(&bytes), (h, 28));
        let h6 = proxied("[2001:db8::7]:5060", "[2001:db8::1]:443");
        assert_eq!(complete(&h6.to_v2(&[])), (h6, 52));
        assert_eq!(complete(&Header::Local.to_v2(&[])), (Header::Local, 16));
        // A LOCAL block's addresses, and TLVs after a PROXY block's, are skipped.
        let mut local = Header::Local.to_v2(&[0; 12]);
        local.extend_from_slice(b"GET");
        assert_eq!(complete(&local), (Header::Local, 28));
        let tlvs = [0x04, 0x00, 0x03, b'a', b'b', b'c'];
        assert_eq!(complete(&h.to_v2(&tlvs)), (h, 34));
        // PROXY with an unspecified family: the connection's own addresses stand.
        let mut unspec = V2_SIGNATURE.to_vec();
        unspec.extend_from_slice(&[0x21, 0x00, 0x00, 0x00]);
        assert_eq!(complete(&unspec), (Header::Local, 16));
    }

    #[test]
    fn malformed_or_unsupported_v2_blocks_are_refused() {
        let good = proxied("203.0.113.7:5060", "198.51.100.1:443").to_v2(&[]);
        let with = |at: usize, byte: u8| {
            let mut b = good.clone();
            b[at] = byte;
            b
        };
        assert!(matches!(parse(&with(12, 0x11)), Err(Error::Malformed(_))));
        assert!(matches!(parse(&with(12, 0x22)), Err(Error::Malformed(_))));
        assert!(matches!(parse(&with(13, 0x41)), Err(Error::Malformed(_))));
        assert!(matches!(parse(&with(13, 0x13)), Err(Error::Malformed(_))));
        assert!(matches!(parse(&with(13, 0x12)), Err(Error::Unsupported(_))));
        assert!(matches!(parse(&with(13, 0x31)), Err(Error::Unsupported(_))));
        // An IPv6 family with an IPv4-sized block.
        let short = with(13, 0x21);
        assert!(matches!(parse(&short), Err(Error::Malformed(_))));
        let mut huge = good[..14].to_vec();
        huge.extend_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(parse(&huge), Err(Error::TooLong));
    }

    #[test]
    fn anything_else_is_no_header() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(Error::Missing));
        assert_eq!(parse(&[0x16, 0x03, 0x01]), Err(Error::Missing));
        assert_eq!(parse(b"PROXYTCP4"), Err(Error::Missing));
        assert_eq!(parse(b"\r\n\r\n\0\r\nQUIT!"), Err(Error::Missing));
        assert_eq!(parse(b""), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"PRO"), Ok(Parsed::Incomplete));
        assert_eq!(start(b"PUT /"), Start::Other);
        assert_eq!(start(b"PROXY"), Start::Undecided);
        assert_eq!(start(b"PROXY "), Start::Header);
        assert_eq!(start(&V2_SIGNATURE[..11]), Start::Undecided);
        assert_eq!(start(&V2_SIGNATURE), Start::Header);
    }

    fn socket() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
        prop_oneof![
            (
                any::<[u8; 4]>(),
                any::<[u8; 4]>(),
                any::<u16>(),
                any::<u16>()
            )
                .prop_map(|(s, d, sp, dp)| (
                    SocketAddr::new(IpAddr::from(s), sp),
                    SocketAddr::new(IpAddr::from(d), dp)
                )),
            (
                any::<[u8; 16]>(),
                any::<[u8; 16]>(),
                any::<u16>(),
                any::<u16>()
            )
                .prop_map(|(s, d, sp, dp)| (
                    SocketAddr::new(IpAddr::from(s), sp),
                    SocketAddr::new(IpAddr::from(d), dp)
                )),
        ]
    }

    proptest! {
        #[test]
        fn written_headers_parse_back_and_leave_what_follows(
            (source, destination) in socket(),
            v2 in any::<bool>(),
            tlvs in proptest::collection::vec(any::<u8>(), 0..64),
            rest in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let header = Header::Proxied { source, destination };
            let mut bytes = if v2 { header.to_v2(&tlvs) } else { header.to_v1().into_bytes() };
            let length = bytes.len();
            bytes.extend_from_slice(&rest);
            prop_assert_eq!(parse(&bytes), Ok(Parsed::Complete { header, length }));
            // Every shorter prefix asks for more; none is mistaken for a header.
            for cut in 0..length {
                prop_assert_eq!(parse(&bytes[..cut]), Ok(Parsed::Incomplete));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_a_header_never_overruns(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            signature in 0u8..3,
        ) {
            let mut input = match signature {
                0 => V2_SIGNATURE.to_vec(),
                1 => V1_PREFIX.to_vec(),
                _ => Vec::new(),
            };
            input.extend_from_slice(&bytes);
            if let Ok(Parsed::Complete { header, length }) = parse(&input) {
                prop_assert!(length <= input.len());
                prop_assert_eq!(
                    parse(&input[..length]),
                    Ok(Parsed::Complete { header, length })
                );
            }
        }
    }
}
