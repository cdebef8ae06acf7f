//! `recognise`: a request's path (with query) and User-Agent → a phone's request.
//!
//! Input: the path and query up to the first newline, the User-Agent after it (none without a
//! newline). Asserts: never panics; only the last path segment matters (a directory prefix
//! changes nothing); a MAC the request names is written in it; each file kind carries what it
//! must (a Yealink device file its MAC, a common file its model code, …).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::domain::{OuiTable, Vendor};
use zerotouch::provisioning::{recognise, FileKind};

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
        FileKind::YealinkDevice | FileKind::SnomDevice | FileKind::GigasetProfile => {
            assert!(
                req.path_mac.is_some(),
                "{path:?}: device file without a MAC"
            )
        }
        FileKind::YealinkCommon => {
            assert!(req.yealink_code.is_some() && req.path_mac.is_none())
        }
        FileKind::SnomModel => assert!(req.path_model.is_some() && req.path_mac.is_none()),
        FileKind::YealinkBoot | FileKind::GigasetIndex => {}
    }
    assert!(req.file.is_served() || !matches!(req.file.vendor(), Vendor::Snom));
    if let Some(model) = req.path_model {
        assert!(path.contains(model));
    }
    // What the request reports comes from the request.
    if let (Some(model), Some(ua)) = (req.model(), ua) {
        assert!(ua.contains(model) || path.contains(model) || req.yealink_code.is_some());
    }
});
