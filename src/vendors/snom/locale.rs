//! Snom's spelling of languages, time zones and tone schemes.
//!
//! Every value is one of Snom's own, each list quoted with its sources in
//! `vendor-templates/snom/SOURCES.md` (a unit test holds each table against those lists).
//! Keyed by the tenant's ISO 639-1 language code and IANA time zone name. A tenant value
//! missing here has no verified Snom spelling: its key is left out and the phone keeps its own
//! (SOURCES.md, "Fallbacks").

/// ISO 639-1 code → `language` (phone screen) and, where confirmed, `web_language`.
pub const LANGUAGES: &[(&str, &str, Option<&str>)] = &[
    ("en", "English", Some("English")),
    ("de", "Deutsch", Some("Deutsch")),
    ("es", "Espanol", Some("Espanol")),
    ("it", "Italiano", Some("Italiano")),
    ("fr", "Francais", Some("Francais")),
    ("nl", "Nederlands", Some("Nederlands")),
    ("pl", "Polski", None),
    ("cs", "Cestina", Some("Cestina")),
    ("sv", "Svenska", Some("Svenska")),
    ("da", "Dansk", Some("Dansk")),
    ("no", "Norsk", Some("Norsk")),
    ("fi", "Suomi", Some("Suomi")),
];

/// IANA name → `timezone`. A code carries its zone's daylight-saving rule; a zone whose own
/// code has stale rules uses a code of the same offset without daylight saving (Moscow,
/// Istanbul → `EAT+3`; Shanghai, Hong Kong → `SGP+8`), and one with no such code is left out
/// (UTC; Mexico City, which dropped daylight saving in 2022 after Snom's `MEX-6`).
pub const TIME_ZONES: &[(&str, &str)] = &[
    ("Europe/London", "GBR-0"),
    ("Europe/Dublin", "IRL-0"),
    ("Europe/Lisbon", "PRT-0"),
    ("Europe/Paris", "FRA+1"),
    ("Europe/Berlin", "GER+1"),
    ("Europe/Madrid", "ESP+1"),
    ("Europe/Rome", "ITA+1"),
    ("Europe/Amsterdam", "NLD+1"),
    ("Europe/Brussels", "BEL+1"),
    ("Europe/Luxembourg", "LUX+1"),
    ("Europe/Vienna", "AUT+1"),
    ("Europe/Zurich", "CHE+1"),
    ("Europe/Stockholm", "SWE+1"),
    ("Europe/Oslo", "NOR+1"),
    ("Europe/Copenhagen", "DNK+1"),
    ("Europe/Warsaw", "POL+1"),
    ("Europe/Prague", "CZE+1"),
    ("Europe/Budapest", "HUN+1"),
    ("Europe/Helsinki", "FIN+2"),
    ("Europe/Athens", "GRC+2"),
    ("Europe/Bucharest", "ROU+2"),
    ("Europe/Istanbul", "EAT+3"),
    ("Europe/Moscow", "EAT+3"),
    ("America/New_York", "USA-5"),
    ("America/Chicago", "USA-6"),
    ("America/Denver", "USA-7"),
    ("America/Los_Angeles", "USA-8"),
    ("America/Toronto", "CAN-5"),
    ("America/Vancouver", "CAN-8"),
    ("America/Sao_Paulo", "BRA2-3"),
    ("Africa/Johannesburg", "CAT+2"),
    ("Asia/Dubai", "UAE+4"),
    ("Asia/Kolkata", "IND+5.5"),
    ("Asia/Singapore", "SGP+8"),
    ("Asia/Shanghai", "SGP+8"),
    ("Asia/Hong_Kong", "SGP+8"),
    ("Asia/Tokyo", "JPN+9"),
    ("Australia/Perth", "AUS+8"),
    ("Australia/Sydney", "AUS+10"),
    ("Pacific/Auckland", "NZL+12"),
];

/// IANA name → `tone_scheme`: the country of the zone, where Snom lists it.
pub const TONE_SCHEMES: &[(&str, &str)] = &[
    ("Europe/London", "GBR"),
    ("Europe/Paris", "FRA"),
    ("Europe/Berlin", "GER"),
    ("Europe/Madrid", "ESP"),
    ("Europe/Rome", "ITA"),
    ("Europe/Amsterdam", "NLD"),
    ("Europe/Vienna", "AUT"),
    ("Europe/Zurich", "SWI"),
    ("Europe/Stockholm", "SWE"),
    ("Europe/Oslo", "NOR"),
    ("Europe/Copenhagen", "DNK"),
    ("America/New_York", "USA"),
    ("America/Chicago", "USA"),
    ("America/Denver", "USA"),
    ("America/Los_Angeles", "USA"),
    ("America/Mexico_City", "MEX"),
    ("Asia/Kolkata", "IND"),
    ("Asia/Shanghai", "CHN"),
    ("Asia/Tokyo", "JPN"),
    ("Australia/Perth", "AUS"),
    ("Australia/Sydney", "AUS"),
    ("Pacific/Auckland", "NZL"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::source_list;

    const SOURCES: &str = include_str!("../../../vendor-templates/snom/SOURCES.md");

    #[test]
    fn every_value_is_snoms_own() {
        let language = source_list(SOURCES, "language");
        let web = source_list(SOURCES, "web_language");
        for (code, gui, web_value) in LANGUAGES {
            assert!(language.iter().any(|l| l == gui), "{code}: {gui}");
            if let Some(w) = web_value {
                assert!(web.iter().any(|l| l == w), "{code}: web {w}");
            }
        }
        let codes = source_list(SOURCES, "timezone");
        for (zone, code) in TIME_ZONES {
            assert!(codes.iter().any(|l| l == code), "{zone}: {code}");
        }
        let schemes = source_list(SOURCES, "tone_scheme");
        for (zone, scheme) in TONE_SCHEMES {
            assert!(schemes.iter().any(|l| l == scheme), "{zone}: {scheme}");
        }
    }

    #[test]
    fn every_key_is_an_accepted_language_or_zone() {
        use crate::domain::{Language, TimeZone};
        for (code, _, _) in LANGUAGES {
            assert!(Language::parse(code).is_ok(), "{code}");
        }
        for (zone, _) in TIME_ZONES.iter().chain(TONE_SCHEMES) {
            assert!(TimeZone::parse(zone).is_ok(), "{zone}");
        }
    }
}
