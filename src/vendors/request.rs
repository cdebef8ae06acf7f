//! What a phone's request says about the phone: the file it asks for, its MAC, model and
//! firmware. The shapes every vendor's recognition fills in.
//!
//! Borrowed from the request, allocation-free. Knows no vendor's spelling (that is in each
//! vendor's module) and nothing of HTTP.

use crate::domain::{Mac, Vendor};

/// What a phone says about itself in its User-Agent.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct UserAgent<'a> {
    /// The vendor, when the User-Agent names it; `None` for Yealink's vendor-less form
    /// (`W52P 25.30.0.2 00:15:65:44:b3:7c`), where the MAC's OUI decides.
    pub vendor: Option<Vendor>,
    /// Model as the phone names it (`T46S`, `D785`, `N870 IP PRO`, `N720-DM-PRO`).
    pub model: Option<&'a str>,
    /// Firmware version.
    pub firmware: Option<&'a str>,
    /// The MAC, when the phone sends it.
    pub mac: Option<Mac>,
}

/// The kinds of file phones ask for, across vendors. A closed set: also a metric label.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FileKind {
    /// A boot file that only names other files (Yealink `<mac>.boot`, `y000000000000.boot`;
    /// Gigaset N510/N720 `/<product>/<n>/master.bin`): optional, not served; the phone then
    /// asks for the files it would have named, or keeps its profile.
    Boot,
    /// A per-model common file (Yealink `y000000000<code>.cfg`): optional, served.
    Common,
    /// A per-model settings file (Snom `snom<model>.htm`): optional, served.
    Model,
    /// The per-device file, the one that carries the device's secrets.
    Device,
    /// A directory index asked before the per-device file (Gigaset Nx70 `provisioning.xml`):
    /// optional, not served.
    Index,
    /// A file naming the firmware image to run (Snom `firmware_status`): optional, served.
    Firmware,
}

impl FileKind {
    /// Every kind, in label-slot order.
    pub const ALL: [FileKind; 6] = [
        FileKind::Boot,
        FileKind::Common,
        FileKind::Model,
        FileKind::Device,
        FileKind::Index,
        FileKind::Firmware,
    ];

    /// Metric label and log field.
    pub const fn label(self) -> &'static str {
        match self {
            FileKind::Boot => "boot",
            FileKind::Common => "common",
            FileKind::Model => "model",
            FileKind::Device => "device",
            FileKind::Index => "index",
            FileKind::Firmware => "firmware",
        }
    }

    /// Position in [`FileKind::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Files a phone asks for speculatively or as a normal step that needs no answer from us;
    /// a 404 for them is part of its boot sequence, never a sign of scanning.
    pub const fn is_optional(self) -> bool {
        !matches!(self, FileKind::Device)
    }

    /// Files zerotouch answers with a rendered config.
    pub const fn is_served(self) -> bool {
        matches!(
            self,
            FileKind::Common | FileKind::Model | FileKind::Device | FileKind::Firmware
        )
    }
}

/// The last segment of a request path split for matching, and the query.
#[derive(Clone, Copy, Debug)]
pub struct FileName<'a> {
    /// The name before its last `.` (`805ec017de13`, `snomD785`, `y000000000066`).
    pub stem: &'a str,
    /// The extension after the last `.`, as sent (`cfg`, `XML`).
    pub ext: &'a str,
    /// The directories before the name, with leading and trailing `/` (`/prov/`, `/42/2/`).
    pub dir: &'a str,
    /// The query after `?`, if any.
    pub query: Option<&'a str>,
}

impl<'a> FileName<'a> {
    /// Splits a request target. `None` when the last segment has no extension.
    pub fn of(path_and_query: &'a str) -> Option<Self> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let (dir, name) = match path.rfind('/') {
            Some(i) => (&path[..=i], &path[i + 1..]),
            None => ("", path),
        };
        let (stem, ext) = name.rsplit_once('.')?;
        Some(Self {
            stem,
            ext,
            dir,
            query,
        })
    }

    /// Whether the extension is `ext` (case-insensitive).
    pub fn has_ext(&self, ext: &str) -> bool {
        self.ext.eq_ignore_ascii_case(ext)
    }

    /// The MAC in a `mac=` query parameter, as Snom's `{mac}` placeholders produce.
    pub fn query_mac(&self) -> Option<Mac> {
        self.query?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| k.eq_ignore_ascii_case("mac"))
            .and_then(|(_, v)| Mac::from_hex12(v.as_bytes()))
    }
}

/// A file name one vendor's phones ask for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FileMatch<'a> {
    /// Which file.
    pub kind: FileKind,
    /// The MAC the name (or its query) carries.
    pub mac: Option<Mac>,
    /// The model the name implies (Snom `snom<model>.htm`, Yealink's common-file code looked
    /// up in its table).
    pub model: Option<&'a str>,
    /// A numeric model code the name carries (Yealink `y000000000<code>.cfg`).
    pub model_code: Option<u16>,
}

impl FileMatch<'_> {
    /// A match of `kind` that names nothing else.
    pub const fn bare(kind: FileKind) -> Self {
        Self {
            kind,
            mac: None,
            model: None,
            model_code: None,
        }
    }
}

/// A request recognised as a phone's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PhoneRequest<'a> {
    /// Whose file it is.
    pub vendor: Vendor,
    /// The file asked for.
    pub file: FileKind,
    /// The MAC in the path or query, if any.
    pub path_mac: Option<Mac>,
    /// The model the file name implies.
    pub path_model: Option<&'a str>,
    /// A numeric model code the file name carries.
    pub model_code: Option<u16>,
    /// What the User-Agent says, if it is a phone's.
    pub agent: Option<UserAgent<'a>>,
}

impl<'a> PhoneRequest<'a> {
    /// The model: the User-Agent's, else the one the file name implies.
    pub fn model(&self) -> Option<&'a str> {
        self.agent.and_then(|a| a.model).or(self.path_model)
    }

    /// The firmware the phone reports.
    pub fn firmware(&self) -> Option<&'a str> {
        self.agent.and_then(|a| a.firmware)
    }

    /// The MAC the request names: the path's, else the User-Agent's.
    pub fn mac(&self) -> Option<Mac> {
        self.path_mac.or(self.agent.and_then(|a| a.mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_split_at_the_last_segment() {
        let n = FileName::of("/prov/y/805ec017de13.cfg?x=/a.b").unwrap();
        assert_eq!((n.dir, n.stem, n.ext), ("/prov/y/", "805ec017de13", "cfg"));
        assert_eq!(n.query, Some("x=/a.b"));
        let n = FileName::of("a.tar.gz").unwrap();
        assert_eq!((n.dir, n.stem, n.ext), ("", "a.tar", "gz"));
        assert!(FileName::of("/").is_none());
        assert!(FileName::of("/dir.d/file").is_none());
        let n = FileName::of("/s.xml?a=1&MAC=000413922D24").unwrap();
        assert_eq!(n.query_mac(), Mac::parse("000413922D24").ok());
    }

    #[test]
    fn only_device_files_are_required() {
        for kind in FileKind::ALL {
            assert_eq!(kind.is_optional(), kind != FileKind::Device, "{kind:?}");
        }
        assert!(FileKind::Common.is_served() && !FileKind::Boot.is_served());
    }
}
