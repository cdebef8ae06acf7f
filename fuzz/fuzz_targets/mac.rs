//! `Mac::parse` and the hot path's `Mac::from_hex12` / `Mac::from_colon17` on arbitrary bytes.
//!
//! Asserts: an accepted MAC's canonical form (and upper-case and colon forms) re-parses to the
//! same MAC; the hot-path parsers agree with `Mac::parse` on what they accept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::domain::Mac;

fuzz_target!(|data: &[u8]| {
    if let Some(m) = Mac::from_hex12(data) {
        assert_eq!(m.to_lower_hex().as_bytes(), data.to_ascii_lowercase());
    }
    if let Some(m) = Mac::from_colon17(data) {
        let s = std::str::from_utf8(data).expect("from_colon17 accepts ASCII only");
        assert_eq!(Mac::parse(s), Ok(m), "{s:?}");
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Mac::parse(s) else {
        return;
    };
    for form in [m.to_lower_hex(), m.to_upper_hex(), m.to_string()] {
        assert_eq!(Mac::parse(&form), Ok(m), "{s:?} → {form:?}");
        assert_eq!(Mac::from_hex12(form.as_bytes()), Some(m));
    }
    let b = m.bytes();
    let colons = format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    );
    assert_eq!(Mac::from_colon17(colons.as_bytes()), Some(m));
    assert_eq!(Mac::parse(&colons), Ok(m));
    // The 12 hex digits of the input, in order, are the MAC's.
    let digits: Vec<u8> = s.trim().bytes().filter(u8::is_ascii_hexdigit).collect();
    assert_eq!(Mac::from_hex12(&digits), Some(m), "{s:?}");
});
