//! `server::proxy::parse` (the PROXY protocol header, v1 and v2) on arbitrary bytes: what a
//! trusted balancer's connection starts with, and what an untrusted peer is watched for.
//!
//! Asserts: a complete header's length lies within the input, and the header alone (without
//! what follows it) parses to the same header; any shorter prefix of it asks for more bytes
//! and is never taken for another header; what the parser says a connection starts with
//! agrees with `server::proxy::start`; the header written back in either version parses to
//! what was read (v2 TLVs dropped, addresses of two families written as IPv6).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::server::proxy::{self, Header, Parsed, Start};

fuzz_target!(|data: &[u8]| {
    let parsed = proxy::parse(data);
    match proxy::start(data) {
        Start::Other => assert_eq!(parsed, Err(proxy::Error::Missing)),
        Start::Undecided => assert_eq!(parsed, Ok(Parsed::Incomplete)),
        Start::Header => assert_ne!(parsed, Err(proxy::Error::Missing)),
    }
    let Ok(Parsed::Complete { header, length }) = parsed else {
        return;
    };
    assert!(length <= data.len() && length <= proxy::V2_MAX);
    assert_eq!(
        proxy::parse(&data[..length]),
        Ok(Parsed::Complete { header, length })
    );
    // Every shorter prefix is incomplete (a few cuts: all of them would be quadratic).
    for cut in [0, length / 2, length - 1] {
        assert_eq!(
            proxy::parse(&data[..cut]),
            Ok(Parsed::Incomplete),
            "cut at {cut}"
        );
    }
    for written in [header.to_v1().into_bytes(), header.to_v2(&[])] {
        let Ok(Parsed::Complete {
            header: again,
            length,
        }) = proxy::parse(&written)
        else {
            panic!("{header:?} written as {written:?} does not parse back");
        };
        assert_eq!(length, written.len());
        let same = match (header, again) {
            (
                Header::Proxied {
                    source,
                    destination,
                },
                Header::Proxied {
                    source: s,
                    destination: d,
                },
            ) => {
                // Two families are written as IPv6: compare as IPv6.
                let v6 = |a: std::net::SocketAddr| match a.ip() {
                    std::net::IpAddr::V4(v4) => (v4.to_ipv6_mapped(), a.port()),
                    std::net::IpAddr::V6(v6) => (v6, a.port()),
                };
                (v6(source), v6(destination)) == (v6(s), v6(d))
            }
            (Header::Local, Header::Local) => true,
            _ => false,
        };
        assert!(same, "{header:?} came back as {again:?}");
    }
});
