//! The files Gigaset bases ask for: `<MAC>.xml` (the profile; upper-case MAC from N510/N720,
//! either case accepted), `provisioning.xml` (Nx70, before the profile) and, from N510/N720
//! pointed at a data server, files of Gigaset's firmware tree `/<product>/<n>/master.bin`.

use crate::domain::Mac;
use crate::vendors::{FileKind, FileMatch, FileName};

/// Recognises a Gigaset file name.
pub fn recognise<'a>(name: &FileName<'a>) -> Option<FileMatch<'a>> {
    if name.has_ext("bin") && name.stem.eq_ignore_ascii_case("master") && is_firmware_tree(name.dir)
    {
        return Some(FileMatch::bare(FileKind::Boot));
    }
    if !name.has_ext("xml") {
        return None;
    }
    if name.stem.eq_ignore_ascii_case("provisioning") {
        return Some(FileMatch::bare(FileKind::Index));
    }
    Some(FileMatch {
        mac: Some(Mac::from_hex12(name.stem.as_bytes())?),
        ..FileMatch::bare(FileKind::Device)
    })
}

/// `/42/2/` (and with a prefix, `/gigaset/42/2/`): the last two directories are numbers.
fn is_firmware_tree(dir: &str) -> bool {
    let mut parts = dir.trim_end_matches('/').rsplit('/');
    let number = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|c| c.is_ascii_digit()))
    };
    number(parts.next()) && number(parts.next())
}
