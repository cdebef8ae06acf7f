//! The files Snom phones ask for: the per-model `snom<model>.htm`, the per-device
//! `snom<model>-<MAC>.htm` and `<MAC>.xml` (MAC upper-case in Snom's own examples; matched in
//! any case), any name carrying `?mac=<MAC>` from a `{mac}` placeholder in the phone's
//! `setting_server`, and the firmware file zerotouch names in `firmware_status`,
//! `snom<model>-<MAC>-firmware.xml`.

use crate::domain::{Mac, Vendor};
use crate::vendors::spelling::{strip_prefix_ci, strip_suffix_ci};
use crate::vendors::{FileKind, FileMatch, FileName, UserAgent};

/// Recognises a Snom file name.
pub fn recognise<'a>(name: &FileName<'a>, agent: Option<&UserAgent<'a>>) -> Option<FileMatch<'a>> {
    if !name.has_ext("htm") && !name.has_ext("xml") {
        return None;
    }
    if let Some(rest) = strip_prefix_ci(name.stem, "snom") {
        if let Some((model, mac)) =
            strip_suffix_ci(rest, "-firmware").and_then(|r| r.rsplit_once('-'))
        {
            return Some(FileMatch {
                mac: Some(Mac::from_hex12(mac.as_bytes())?),
                model: Some(model).filter(|m| is_model(m)),
                ..FileMatch::bare(FileKind::Firmware)
            });
        }
        return match rest.rsplit_once('-') {
            Some((model, mac)) if mac.len() == 12 => Some(FileMatch {
                mac: Some(Mac::from_hex12(mac.as_bytes())?),
                model: Some(model).filter(|m| is_model(m)),
                ..FileMatch::bare(FileKind::Device)
            }),
            _ if is_model(rest) => Some(match name.query_mac() {
                Some(mac) => FileMatch {
                    mac: Some(mac),
                    model: Some(rest),
                    ..FileMatch::bare(FileKind::Device)
                },
                None => FileMatch {
                    model: Some(rest),
                    ..FileMatch::bare(FileKind::Model)
                },
            }),
            _ => None,
        };
    }
    if !name.has_ext("xml") {
        return None;
    }
    let mac = match Mac::from_hex12(name.stem.as_bytes()) {
        Some(mac) => mac,
        // `setting_server` may carry `?mac={mac}` on any file name.
        None if agent.and_then(|a| a.vendor) == Some(Vendor::Snom) => name.query_mac()?,
        None => return None,
    };
    Some(FileMatch {
        mac: Some(mac),
        ..FileMatch::bare(FileKind::Device)
    })
}

fn is_model(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 && s.bytes().all(|c| c.is_ascii_alphanumeric())
}
