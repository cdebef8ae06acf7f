//! `vendors::parse_user_agent` on arbitrary strings.
//!
//! Asserts: the parse ignores surrounding white space; what it returns is borrowed from the
//! header (model and firmware are substrings of it, the model at most 32 bytes); a MAC it
//! finds is written in the header, in hex with or without colons.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::vendors::parse_user_agent;

fn within(part: &str, whole: &str) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

fuzz_target!(|ua: &str| {
    let parsed = parse_user_agent(ua);
    let padded = format!(" \t{ua}  ");
    assert_eq!(
        parse_user_agent(&padded),
        parsed,
        "white space changed {ua:?}"
    );
    let Some(agent) = parsed else {
        return;
    };
    if let Some(model) = agent.model {
        assert!(within(model, ua), "model {model:?} not from {ua:?}");
        assert!(!model.is_empty() && model.len() <= 32, "model {model:?}");
    }
    if let Some(firmware) = agent.firmware {
        assert!(
            within(firmware, ua),
            "firmware {firmware:?} not from {ua:?}"
        );
        assert!(!firmware.is_empty());
    }
    if let Some(mac) = agent.mac {
        let flat: String = ua
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        assert!(
            flat.contains(&mac.to_lower_hex()),
            "MAC {mac} not in {ua:?}"
        );
    }
});
