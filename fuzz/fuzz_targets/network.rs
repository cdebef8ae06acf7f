//! `Network::from_str` (the CIDR lists of `enrolment_networks` and `proxy_protocol_from`) on
//! arbitrary text.
//!
//! Asserts: an accepted network's written form parses back to the same network; it contains its
//! own first address and admits it through `admits`; a refused one names the text it refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::domain::network::admits;
use zerotouch::domain::Network;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match s.parse::<Network>() {
        Ok(n) => {
            let written = n.to_string();
            assert_eq!(written.parse::<Network>(), Ok(n), "{s:?} → {written:?}");
            assert!(n.contains(n.first()), "{written}");
            assert!(admits(&[n], n.first()));
            assert!(admits(&[], n.first()), "an empty list admits everyone");
        }
        Err(e) => {
            // The error message is shown to partners: it must not be empty.
            assert!(!e.to_string().is_empty());
        }
    }
});
