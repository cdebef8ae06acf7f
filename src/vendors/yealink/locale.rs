//! Yealink's spelling of languages, time-zone names and call-progress tones.
//!
//! Every value is one of Yealink's own, each list quoted with its sources in
//! `vendor-templates/yealink/SOURCES.md` (a unit test holds each table against those lists).
//! Keyed by the tenant's ISO 639-1 language code and IANA time zone name. A tenant value
//! missing here has no verified Yealink spelling: its key is left out and the phone keeps its
//! own (SOURCES.md, "Fallbacks").

/// ISO 639-1 code → `lang.gui` (phone screen) and `lang.wui` (web interface). Only the
/// languages two sources confirm for both keys.
pub const LANGUAGES: &[(&str, &str)] = &[
    ("en", "English"),
    ("de", "German"),
    ("es", "Spanish"),
    ("fr", "French"),
];

/// IANA name → `local_time.time_zone_name`. The name only labels the zone on the phone:
/// zerotouch writes the offset and the daylight-saving rule explicitly
/// (`local_time.summer_time` 0 or 1), so a zone without a verified name is still right.
pub const TIME_ZONE_NAMES: &[(&str, &str)] = &[
    ("Etc/UTC", "GMT"),
    ("Europe/London", "United Kingdom(London)"),
    ("Europe/Dublin", "Ireland(Dublin)"),
    ("Europe/Lisbon", "Portugal(Lisboa,Porto,Funchal)"),
    ("Europe/Paris", "France(Paris)"),
    ("Europe/Berlin", "Germany(Berlin)"),
    ("Europe/Madrid", "Spain(Madrid)"),
    ("Europe/Rome", "Italy(Rome)"),
    ("Europe/Amsterdam", "Netherlands(Amsterdam)"),
    ("Europe/Brussels", "Belgium(Brussels)"),
    ("Europe/Luxembourg", "Luxembourg(Luxembourg)"),
    ("Europe/Vienna", "Austria(Vienna)"),
    ("Europe/Prague", "Czech Republic(Prague)"),
    ("Europe/Budapest", "Hungary(Budapest)"),
    ("Europe/Helsinki", "Finland(Helsinki)"),
    ("Europe/Athens", "Greece(Athens)"),
    ("Europe/Bucharest", "Romania(Bucharest)"),
    ("Europe/Moscow", "Russia(Moscow)"),
    ("America/New_York", "United States-Eastern Time"),
    ("America/Chicago", "United States-Central Time"),
    ("America/Denver", "United States-Mountain Time"),
    ("America/Los_Angeles", "United States-Pacific Time"),
    ("America/Vancouver", "Canada(Vancouver,Whitehorse)"),
    ("America/Sao_Paulo", "Brazil(no DST)"),
    ("America/Mexico_City", "Mexico(Mexico City,Acapulco)"),
    ("Asia/Kolkata", "India(Calcutta)"),
    ("Asia/Singapore", "Singapore(Singapore)"),
    ("Asia/Shanghai", "China(Beijing)"),
    ("Asia/Tokyo", "Japan(Tokyo)"),
    ("Australia/Perth", "Australia(Perth)"),
    ("Australia/Sydney", "Australia(Sydney,Melbourne,Canberra)"),
];

/// IANA name → `voice.tone.country`: the country of the zone, where Yealink lists it.
pub const TONES: &[(&str, &str)] = &[
    ("Europe/London", "Great Britain"),
    ("Europe/Lisbon", "Portugal"),
    ("Europe/Paris", "France"),
    ("Europe/Berlin", "Germany"),
    ("Europe/Madrid", "Spain"),
    ("Europe/Rome", "Italy"),
    ("Europe/Amsterdam", "Netherlands"),
    ("Europe/Brussels", "Belgium"),
    ("Europe/Vienna", "Austria"),
    ("Europe/Zurich", "Switzerland"),
    ("Europe/Stockholm", "Sweden"),
    ("Europe/Oslo", "Norway"),
    ("Europe/Copenhagen", "Denmark"),
    ("Europe/Prague", "Czech"),
    ("Europe/Budapest", "Hungary"),
    ("Europe/Helsinki", "Finland"),
    ("Europe/Athens", "Greece"),
    ("Europe/Moscow", "Russia"),
    ("America/New_York", "United States"),
    ("America/Chicago", "United States"),
    ("America/Denver", "United States"),
    ("America/Los_Angeles", "United States"),
    ("America/Sao_Paulo", "Brazil"),
    ("America/Mexico_City", "Mexico"),
    ("Asia/Kolkata", "India"),
    ("Asia/Shanghai", "China"),
    ("Asia/Tokyo", "Japan"),
    ("Australia/Perth", "Australia"),
    ("Australia/Sydney", "Australia"),
    ("Pacific/Auckland", "New Zealand"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendors::source_list;

    const SOURCES: &str = include_str!("../../../vendor-templates/yealink/SOURCES.md");

    #[test]
    fn every_value_is_yealinks_own() {
        let languages = source_list(SOURCES, "lang.gui");
        for (code, value) in LANGUAGES {
            assert!(languages.iter().any(|l| l == value), "{code}: {value}");
        }
        let names = source_list(SOURCES, "local_time.time_zone_name");
        for (zone, value) in TIME_ZONE_NAMES {
            assert!(names.iter().any(|l| l == value), "{zone}: {value}");
        }
        let tones = source_list(SOURCES, "voice.tone.country");
        for (zone, value) in TONES {
            assert!(tones.iter().any(|l| l == value), "{zone}: {value}");
        }
    }

    #[test]
    fn every_key_is_an_accepted_language_or_zone() {
        use crate::domain::{Language, TimeZone};
        for (code, _) in LANGUAGES {
            assert!(Language::parse(code).is_ok(), "{code}");
        }
        for (zone, _) in TIME_ZONE_NAMES.iter().chain(TONES) {
            assert!(TimeZone::parse(zone).is_ok(), "{zone}");
        }
    }
}
