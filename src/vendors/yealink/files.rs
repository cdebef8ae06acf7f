//! The files Yealink phones ask for (firmware v81 and later): `<mac>.boot`, else
//! `y000000000000.boot`; without a boot file, the per-model common file
//! `y000000000<code>.cfg`, then the per-device `<mac>.cfg`. Matched case-insensitively on
//! the last path segment.

use crate::domain::Mac;
use crate::vendors::spelling::strip_prefix_ci;
use crate::vendors::{FileKind, FileMatch, FileName};

use super::models;

/// Recognises a Yealink file name.
pub fn recognise<'a>(name: &FileName<'a>) -> Option<FileMatch<'a>> {
    if name.has_ext("boot") {
        if name.stem.eq_ignore_ascii_case("y000000000000") {
            return Some(FileMatch::bare(FileKind::Boot));
        }
        return Some(FileMatch {
            mac: Some(Mac::from_hex12(name.stem.as_bytes())?),
            ..FileMatch::bare(FileKind::Boot)
        });
    }
    if !name.has_ext("cfg") {
        return None;
    }
    if let Some(code) = common_code(name.stem) {
        return Some(FileMatch {
            model: models::model_for_code(code),
            model_code: Some(code),
            ..FileMatch::bare(FileKind::Common)
        });
    }
    Some(FileMatch {
        mac: Some(Mac::from_hex12(name.stem.as_bytes())?),
        ..FileMatch::bare(FileKind::Device)
    })
}

/// `y000000000066` → 66. Yealink writes the code zero-padded to 12 digits after the `y`.
fn common_code(stem: &str) -> Option<u16> {
    let digits = strip_prefix_ci(stem, "y")?;
    if digits.len() != 12 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (zeros, code) = digits.split_at(9);
    if zeros.bytes().any(|c| c != b'0') {
        return None;
    }
    code.parse().ok()
}
