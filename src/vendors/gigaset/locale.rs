//! Gigaset's spelling of languages, time zones and tones, per profile family.
//!
//! Every value is one of Gigaset's own, each list quoted with its sources in
//! `vendor-templates/gigaset/SOURCES.md` (a unit test holds each table against those lists).
//! Keyed by the tenant's ISO 639-1 language code and IANA time zone name. A tenant value
//! missing here has no verified Gigaset spelling: its key is left out and the base keeps its
//! own (SOURCES.md, "Fallbacks").

/// ISO 639-1 code → N510 `BS_IP_Data1.ucI_HTTPLANGUAGE` (the web interface's language).
pub const N510_LANGUAGES: &[(&str, u8)] = &[
    ("en", 0x1),
    ("de", 0x2),
    ("es", 0x4),
    ("it", 0x7),
    ("fr", 0x9),
    ("nl", 0xa),
    ("pl", 0x11),
];

/// IANA name → N510/N720 `uiI_TIME_TIMEZONE` entry, and whether the base's automatic
/// daylight saving is to be used. The codes index a zone list of their own; a zone whose
/// offset has no verified entry of its own takes a verified entry of the same offset with
/// automatic daylight saving off, which is right wherever the zone has none.
pub const ZONE_CODES: &[(&str, u8, bool)] = &[
    ("Etc/UTC", 0x1a, false),
    ("Europe/London", 0x1a, true),
    ("Europe/Dublin", 0x1a, true),
    ("Europe/Lisbon", 0x1a, true),
    ("Europe/Paris", 0x1b, true),
    ("Europe/Berlin", 0x1b, true),
    ("Europe/Madrid", 0x1b, true),
    ("Europe/Rome", 0x1b, true),
    ("Europe/Amsterdam", 0x1b, true),
    ("Europe/Brussels", 0x1b, true),
    ("Europe/Luxembourg", 0x1b, true),
    ("Europe/Vienna", 0x1b, true),
    ("Europe/Zurich", 0x1b, true),
    ("Europe/Stockholm", 0x1b, true),
    ("Europe/Oslo", 0x1b, true),
    ("Europe/Copenhagen", 0x1b, true),
    ("Europe/Warsaw", 0x1b, true),
    ("Europe/Prague", 0x1b, true),
    ("Europe/Budapest", 0x1b, true),
    ("Europe/Helsinki", 0x20, true),
    ("Europe/Athens", 0x20, true),
    ("Europe/Bucharest", 0x20, true),
    ("Europe/Istanbul", 0x28, false),
    ("Europe/Moscow", 0x28, false),
    ("America/New_York", 0x0d, true),
    ("America/Chicago", 0x09, true),
    ("America/Denver", 0x07, true),
    ("America/Los_Angeles", 0x04, true),
    ("America/Toronto", 0x0d, true),
    ("America/Vancouver", 0x04, true),
    ("America/Sao_Paulo", 0x14, false),
    ("America/Mexico_City", 0x09, false),
    ("Africa/Johannesburg", 0x20, false),
    ("Asia/Dubai", 0x2b, false),
    ("Asia/Kolkata", 0x30, false),
    ("Asia/Singapore", 0x38, false),
    ("Asia/Shanghai", 0x38, false),
    ("Asia/Hong_Kong", 0x38, false),
    ("Australia/Perth", 0x38, false),
];

/// IANA name → N510/N720 `BS_AE_SwConfig.ucCountryCodeTone`.
pub const TONE_CODES: &[(&str, u8)] = &[
    ("Europe/London", 8),
    ("Europe/Paris", 7),
    ("Europe/Berlin", 12),
    ("Europe/Madrid", 6),
    ("Europe/Rome", 13),
    ("Europe/Amsterdam", 9),
    ("Europe/Zurich", 2),
    ("Europe/Warsaw", 10),
    ("Europe/Moscow", 11),
    ("America/New_York", 1),
    ("America/Chicago", 1),
    ("America/Denver", 1),
    ("America/Los_Angeles", 1),
];

/// IANA name → Nx70 `DmGlobal.0.TimeZone`. Zones the base's list lacks take a listed zone
/// with the same offset and daylight-saving rule (Toronto → New York, Vancouver → Los Angeles,
/// Singapore/Shanghai/Perth → Hong Kong).
pub const NX70_ZONES: &[(&str, &str)] = &[
    ("Etc/UTC", "Greenwich"),
    ("Europe/London", "Europe/London"),
    ("Europe/Dublin", "Europe/Dublin"),
    ("Europe/Lisbon", "Europe/Lisbon"),
    ("Europe/Paris", "Europe/Paris"),
    ("Europe/Berlin", "Europe/Berlin"),
    ("Europe/Madrid", "Europe/Madrid"),
    ("Europe/Rome", "Europe/Rome"),
    ("Europe/Amsterdam", "Europe/Amsterdam"),
    ("Europe/Brussels", "Europe/Brussels"),
    ("Europe/Luxembourg", "Europe/Luxembourg"),
    ("Europe/Vienna", "Europe/Vienna"),
    ("Europe/Zurich", "Europe/Zurich"),
    ("Europe/Stockholm", "Europe/Stockholm"),
    ("Europe/Oslo", "Europe/Oslo"),
    ("Europe/Copenhagen", "Europe/Copenhagen"),
    ("Europe/Warsaw", "Europe/Warsaw"),
    ("Europe/Prague", "Europe/Prague"),
    ("Europe/Budapest", "Europe/Budapest"),
    ("Europe/Helsinki", "Europe/Helsinki"),
    ("Europe/Athens", "Europe/Athens"),
    ("Europe/Bucharest", "Europe/Bucharest"),
    ("Europe/Istanbul", "Europe/Istanbul"),
    ("Europe/Moscow", "Europe/Moscow"),
    ("America/New_York", "America/New_York"),
    ("America/Chicago", "America/Chicago"),
    ("America/Denver", "America/Denver"),
    ("America/Los_Angeles", "America/Los_Angeles"),
    ("America/Toronto", "America/New_York"),
    ("America/Vancouver", "America/Los_Angeles"),
    ("America/Sao_Paulo", "America/Sao_Paulo"),
    ("Asia/Dubai", "Asia/Dubai"),
    ("Asia/Singapore", "Asia/Hong_Kong"),
    ("Asia/Shanghai", "Asia/Hong_Kong"),
    ("Asia/Hong_Kong", "Asia/Hong_Kong"),
    ("Asia/Tokyo", "Asia/Tokyo"),
    ("Australia/Perth", "Asia/Hong_Kong"),
    ("Australia/Sydney", "Australia/Sydney"),
];

/// IANA name → Nx70 `Telephony.0.ToneScheme`.
pub const NX70_TONES: &[(&str, &str)] = &[("Europe/Berlin", "Germany")];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::source_list;

    const SOURCES: &str = include_str!("../../../vendor-templates/gigaset/SOURCES.md");

    /// A list of numbers written in hex (`0x1b`) or decimal.
    fn numbers(name: &str) -> Vec<u8> {
        source_list(SOURCES, name)
            .iter()
            .map(|v| match v.strip_prefix("0x") {
                Some(hex) => u8::from_str_radix(hex, 16),
                None => v.parse(),
            })
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn every_value_is_gigasets_own() {
        let languages = numbers("BS_IP_Data1.ucI_HTTPLANGUAGE");
        for (code, value) in N510_LANGUAGES {
            assert!(languages.contains(value), "{code}: {value:#x}");
        }
        let zones = numbers("uiI_TIME_TIMEZONE");
        for (zone, value, _) in ZONE_CODES {
            assert!(zones.contains(value), "{zone}: {value:#x}");
        }
        let tones = numbers("BS_AE_SwConfig.ucCountryCodeTone");
        for (zone, value) in TONE_CODES {
            assert!(tones.contains(value), "{zone}: {value}");
        }
        let names = source_list(SOURCES, "DmGlobal.0.TimeZone");
        for (zone, name) in NX70_ZONES {
            assert!(names.iter().any(|l| l == name), "{zone}: {name}");
        }
        let schemes = source_list(SOURCES, "Telephony.0.ToneScheme");
        for (zone, scheme) in NX70_TONES {
            assert!(schemes.iter().any(|l| l == scheme), "{zone}: {scheme}");
        }
    }

    #[test]
    fn every_key_is_an_accepted_language_or_zone() {
        use crate::domain::{Language, TimeZone};
        for (code, _) in N510_LANGUAGES {
            assert!(Language::parse(code).is_ok(), "{code}");
        }
        let zones = ZONE_CODES.iter().map(|r| r.0);
        let zones = zones.chain(TONE_CODES.iter().map(|r| r.0));
        let zones = zones.chain(NX70_ZONES.iter().chain(NX70_TONES).map(|r| r.0));
        for zone in zones {
            assert!(TimeZone::parse(zone).is_ok(), "{zone}");
        }
    }
}
