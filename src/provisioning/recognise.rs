//! Recognising a phone's request: which vendor, which file, which MAC, from the path and the
//! User-Agent.
//!
//! The table of recognised paths lives here (and in README). Matching looks at the last path
//! segment only, case-insensitively, so any directory layout an operator configures on the
//! phones works. Pure and allocation-free: no HTTP types, no registry, no I/O.

use crate::domain::{Mac, OuiTable, Vendor};

use super::user_agent::UserAgent;

/// The kinds of file phones ask for. A closed set: also a metric label.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FileKind {
    /// Yealink `<mac>.boot` or `y000000000000.boot`: optional, not served (the phone then
    /// falls back to the common and per-device files).
    YealinkBoot,
    /// Yealink per-model common file `y000000000<code>.cfg`.
    YealinkCommon,
    /// Yealink per-device file `<mac>.cfg`.
    YealinkDevice,
    /// Snom per-model file `snom<model>.htm`.
    SnomModel,
    /// Snom per-device settings `snom<model>-<MAC>.htm`, `<MAC>.xml` or `…?mac=<MAC>`.
    SnomDevice,
    /// Gigaset Nx70 `provisioning.xml`, asked before `<MAC>.xml`: optional, not served.
    GigasetIndex,
    /// Gigaset per-device profile `<MAC>.xml`.
    GigasetProfile,
}

impl FileKind {
    /// Every kind, in label-slot order.
    pub const ALL: [FileKind; 7] = [
        FileKind::YealinkBoot,
        FileKind::YealinkCommon,
        FileKind::YealinkDevice,
        FileKind::SnomModel,
        FileKind::SnomDevice,
        FileKind::GigasetIndex,
        FileKind::GigasetProfile,
    ];

    /// The vendor whose file this is.
    pub const fn vendor(self) -> Vendor {
        match self {
            FileKind::YealinkBoot | FileKind::YealinkCommon | FileKind::YealinkDevice => {
                Vendor::Yealink
            }
            FileKind::SnomModel | FileKind::SnomDevice => Vendor::Snom,
            FileKind::GigasetIndex | FileKind::GigasetProfile => Vendor::Gigaset,
        }
    }

    /// Metric label and log field.
    pub const fn label(self) -> &'static str {
        match self {
            FileKind::YealinkBoot => "boot",
            FileKind::YealinkCommon => "common",
            FileKind::YealinkDevice => "device",
            FileKind::SnomModel => "model",
            FileKind::SnomDevice => "device",
            FileKind::GigasetIndex => "index",
            FileKind::GigasetProfile => "device",
        }
    }

    /// Position in [`FileKind::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Files a phone asks for speculatively; a 404 for them is a normal step of its boot
    /// sequence, never a sign of scanning.
    pub const fn is_optional(self) -> bool {
        matches!(
            self,
            FileKind::YealinkBoot
                | FileKind::GigasetIndex
                | FileKind::YealinkCommon
                | FileKind::SnomModel
        )
    }

    /// Files zerotouch answers with a rendered config.
    pub const fn is_served(self) -> bool {
        !matches!(self, FileKind::YealinkBoot | FileKind::GigasetIndex)
    }
}

/// A request recognised as a phone's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PhoneRequest<'a> {
    /// The file asked for (its vendor is the request's vendor).
    pub file: FileKind,
    /// The MAC in the path or query, if any.
    pub path_mac: Option<Mac>,
    /// Yealink common file: the model code from the file name.
    pub yealink_code: Option<u16>,
    /// Snom model or device file: the model from the file name.
    pub path_model: Option<&'a str>,
    /// What the User-Agent says, if it is a phone's.
    pub agent: Option<UserAgent<'a>>,
}

impl PhoneRequest<'_> {
    /// The request's vendor.
    pub fn vendor(&self) -> Vendor {
        self.file.vendor()
    }

    /// The model: the User-Agent's, else the one the file name implies.
    pub fn model(&self) -> Option<&str> {
        self.agent
            .and_then(|a| a.model)
            .or(self.path_model)
            .or_else(|| {
                self.yealink_code
                    .and_then(crate::domain::model::yealink_model_for_code)
            })
    }

    /// The firmware the phone reports.
    pub fn firmware(&self) -> Option<&str> {
        self.agent.and_then(|a| a.firmware)
    }
}

/// Recognises `path` (with its query) and `user_agent`. `None`: not a file any supported phone
/// asks for.
pub fn recognise<'a>(
    path_and_query: &'a str,
    user_agent: Option<&'a str>,
    ouis: &OuiTable,
) -> Option<PhoneRequest<'a>> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let name = path.rsplit('/').next().unwrap_or(path);
    let agent = user_agent.and_then(UserAgent::parse);
    let (stem, ext) = name.rsplit_once('.')?;
    let ext = ext.as_bytes();
    let mut req = PhoneRequest {
        file: FileKind::YealinkDevice,
        path_mac: None,
        yealink_code: None,
        path_model: None,
        agent,
    };

    if ext.eq_ignore_ascii_case(b"boot") {
        req.file = FileKind::YealinkBoot;
        if !stem.eq_ignore_ascii_case("y000000000000") {
            req.path_mac = Some(Mac::from_hex12(stem.as_bytes())?);
        }
    } else if ext.eq_ignore_ascii_case(b"cfg") {
        if let Some(code) = yealink_common_code(stem) {
            req.file = FileKind::YealinkCommon;
            req.yealink_code = Some(code);
        } else {
            req.file = FileKind::YealinkDevice;
            req.path_mac = Some(Mac::from_hex12(stem.as_bytes())?);
        }
    } else if ext.eq_ignore_ascii_case(b"htm") || ext.eq_ignore_ascii_case(b"xml") {
        if let Some(rest) = strip_prefix_ci(stem, "snom") {
            match rest.rsplit_once('-') {
                Some((model, mac)) if mac.len() == 12 => {
                    req.file = FileKind::SnomDevice;
                    req.path_model = Some(model).filter(|m| is_model(m));
                    req.path_mac = Some(Mac::from_hex12(mac.as_bytes())?);
                }
                _ if is_model(rest) => {
                    req.file = FileKind::SnomModel;
                    req.path_model = Some(rest);
                    if let Some(mac) = query.and_then(query_mac) {
                        req.file = FileKind::SnomDevice;
                        req.path_mac = Some(mac);
                    }
                }
                _ => return None,
            }
        } else if ext.eq_ignore_ascii_case(b"xml") && stem.eq_ignore_ascii_case("provisioning") {
            req.file = FileKind::GigasetIndex;
        } else if ext.eq_ignore_ascii_case(b"xml") {
            let mac = match Mac::from_hex12(stem.as_bytes()) {
                Some(mac) => mac,
                // Snom's `setting_server` may carry `?mac={mac}` on any file name.
                None if agent.and_then(|a| a.vendor) == Some(Vendor::Snom) => {
                    query.and_then(query_mac)?
                }
                None => return None,
            };
            req.path_mac = Some(mac);
            // Snom and Gigaset both ask for `<MAC>.xml`: the User-Agent tells them apart, and
            // without one the MAC's maker does.
            let vendor = match agent.and_then(|a| a.vendor) {
                Some(v @ (Vendor::Snom | Vendor::Gigaset)) => v,
                _ => ouis.vendor_of(mac)?,
            };
            req.file = match vendor {
                Vendor::Snom => FileKind::SnomDevice,
                Vendor::Gigaset => FileKind::GigasetProfile,
                Vendor::Yealink => return None,
            };
        } else {
            return None;
        }
    } else {
        return None;
    }
    Some(req)
}

/// `y000000000066` → 66. Yealink writes the code zero-padded to 12 digits after the `y`.
fn yealink_common_code(stem: &str) -> Option<u16> {
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

fn query_mac(query: &str) -> Option<Mac> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("mac"))
        .and_then(|(_, v)| Mac::from_hex12(v.as_bytes()))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let n = prefix.len();
    (s.len() >= n && s.is_char_boundary(n) && s[..n].eq_ignore_ascii_case(prefix)).then(|| &s[n..])
}

fn is_model(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 && s.bytes().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec<'a>(path: &'a str, ua: Option<&'a str>) -> Option<PhoneRequest<'a>> {
        recognise(path, ua, &OuiTable::default())
    }

    fn mac(s: &str) -> Mac {
        Mac::parse(s).unwrap()
    }

    const YEALINK_UA: &str = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:17:de:13";
    const SNOM_UA: &str = "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)";
    const GIGASET_UA: &str = "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605";

    #[test]
    fn yealink_paths() {
        let r = rec("/805ec017de13.cfg", Some(YEALINK_UA)).unwrap();
        assert_eq!(r.file, FileKind::YealinkDevice);
        assert_eq!(r.path_mac, Some(mac("805ec017de13")));
        assert_eq!(r.model(), Some("T46S"));
        assert_eq!(r.firmware(), Some("66.86.0.15"));

        let r = rec("/prov/yealink/805EC017DE13.CFG", None).unwrap();
        assert_eq!(r.file, FileKind::YealinkDevice);

        let r = rec("/y000000000066.cfg", None).unwrap();
        assert_eq!(
            (r.file, r.yealink_code),
            (FileKind::YealinkCommon, Some(66))
        );
        assert_eq!(r.model(), Some("T46S"));

        let r = rec("/y000000000123.cfg", Some(YEALINK_UA)).unwrap();
        assert_eq!(r.yealink_code, Some(123));

        assert_eq!(
            rec("/805ec017de13.boot", None).unwrap().file,
            FileKind::YealinkBoot
        );
        assert_eq!(
            rec("/y000000000000.boot", None).unwrap().file,
            FileKind::YealinkBoot
        );
        assert!(rec("/y100000000066.cfg", None).is_none());
        assert!(rec("/805ec017de1.cfg", None).is_none());
    }

    #[test]
    fn snom_paths() {
        let r = rec("/snomD785.htm", Some(SNOM_UA)).unwrap();
        assert_eq!((r.file, r.path_model), (FileKind::SnomModel, Some("D785")));
        let r = rec("/snomD785-000413922D24.htm", Some(SNOM_UA)).unwrap();
        assert_eq!(r.file, FileKind::SnomDevice);
        assert_eq!(r.path_mac, Some(mac("000413922D24")));
        let r = rec("/snom/000413922D24.xml", Some(SNOM_UA)).unwrap();
        assert_eq!(r.file, FileKind::SnomDevice);
        let r = rec("/snom/000413922d24.xml", None).unwrap();
        assert_eq!(r.file, FileKind::SnomDevice, "no UA: the OUI decides");
        let r = rec("/snom/settings.xml?mac=000413922D24", Some(SNOM_UA)).unwrap();
        assert_eq!(
            (r.file, r.path_mac),
            (FileKind::SnomDevice, Some(mac("000413922D24")))
        );
        let r = rec("/snomD785.htm?mac=000413922D24", Some(SNOM_UA)).unwrap();
        assert_eq!(r.file, FileKind::SnomDevice);
    }

    #[test]
    fn gigaset_paths() {
        let r = rec("/7C2F80E0D605.xml", Some(GIGASET_UA)).unwrap();
        assert_eq!(r.file, FileKind::GigasetProfile);
        assert_eq!(r.model(), Some("N870 IP PRO"));
        let r = rec("/gigaset/7c2f80e0d605.xml", None).unwrap();
        assert_eq!(r.file, FileKind::GigasetProfile, "lower-case MAC, no UA");
        assert_eq!(
            rec("/provisioning.xml", Some(GIGASET_UA)).unwrap().file,
            FileKind::GigasetIndex
        );
    }

    #[test]
    fn the_user_agent_decides_between_snom_and_gigaset() {
        // A Snom phone asking for a Gigaset MAC's file is still a Snom request.
        let r = rec("/7C2F80E0D605.xml", Some(SNOM_UA)).unwrap();
        assert_eq!(r.file, FileKind::SnomDevice);
    }

    #[test]
    fn other_paths_are_not_recognised() {
        for p in [
            "/",
            "",
            "/index.html",
            "/42/2/master.bin",
            "/001122334455.xml",
            "/etc/passwd",
            "/../805ec017de13",
            "/snom.htm",
            "/snom-x.htm",
            "/805ec017de13.xml.bak",
        ] {
            assert!(rec(p, None).is_none(), "{p:?}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_requests_never_panic(path in "\\PC{0,120}", ua in proptest::option::of("\\PC{0,120}")) {
            let _ = rec(&path, ua.as_deref());
        }

        #[test]
        fn phone_shaped_paths_never_panic(
            dir in "(/[a-z]{0,6}){0,3}",
            stem in "(y|snom|Snom|[0-9a-fA-F]{12}|snom[A-Z0-9]{0,5}-)[0-9a-fA-F.ä-]{0,14}",
            ext in prop::sample::select(vec!["cfg", "boot", "htm", "xml", "CFG", ""]),
            query in "(\\?[a-z]{0,3}=?[0-9A-F]{0,12})?",
        ) {
            let _ = rec(&format!("{dir}/{stem}.{ext}{query}"), None);
        }

        #[test]
        fn any_device_mac_in_a_yealink_path_is_found(bytes in any::<[u8; 6]>(), upper in any::<bool>()) {
            let m = Mac::from_bytes(bytes);
            let hex = if upper { m.to_upper_hex() } else { m.to_lower_hex() };
            let path = format!("/p/{hex}.cfg");
            let r = rec(&path, None).unwrap();
            prop_assert_eq!(r.path_mac, Some(m));
        }
    }
}
