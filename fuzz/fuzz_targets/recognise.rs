//! `recognise`: a request's path (with query) and User-Agent → a phone's request.
//!
//! Input: the path and query up to the first newline, the User-Agent after it (none without a
//! newline). Asserts: never panics; only the last path segment matters (a directory prefix
//! changes nothing); a MAC the request names is written in it; each file kind carries what it
//! must (a device file its MAC, a common file its model code, …).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::domain::OuiTable;
use zerotouch::vendors::{recognise, FileKind};

fuzz_target!(|input: &str| {
    let ouis = OuiTable::default();
    let (path, ua) = match input.split_once('\n') {
        Some((p, u)) => (p, Some(u)),
        None => (input, None),
    };
    let Some(req) = recognise(path, ua, &ouis) else {
        if path.starts_with('/') {
            assert!(recognise(&format!("/prov/x{path}"), ua, &ouis).is_none());
        }
        return;
    };
    if path.starts_with('/') {
        let nested = format!("/prov/x{path}");
        assert_eq!(
            recognise(&nested, ua, &ouis),
            Some(req),
            "directory changed {path:?}"
        );
    }
    if let Some(mac) = req.path_mac {
        let lower = path.to_ascii_lowercase();
        assert!(
            lower.contains(&mac.to_lower_hex()),
            "MAC {mac} not in {path:?}"
        );
    }
    match req.file {
        FileKind::Device => {
            assert!(
                req.path_mac.is_some(),
                "{path:?}: device file without a MAC"
            )
        }
        FileKind::Common => {
            assert!(req.model_code.is_some() && req.path_mac.is_none())
        }
        FileKind::Model => assert!(req.path_model.is_some() && req.path_mac.is_none()),
        FileKind::Boot | FileKind::Index | FileKind::Firmware => {}
    }
    if let (Some(model), None) = (req.path_model, req.model_code) {
        assert!(path.contains(model));
    }
    // What the request reports comes from the request.
    if let (Some(model), Some(ua)) = (req.model(), ua) {
        assert!(ua.contains(model) || path.contains(model) || req.model_code.is_some());
    }
});
